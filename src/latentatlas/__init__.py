"""latentatlas: map the latent space of a convolutional autoencoder and decode statistically built latent vectors."""

from typing import TYPE_CHECKING

from latentatlas.errors import LatentAtlasError

if TYPE_CHECKING:
    from latentatlas.store import Run

__version__ = "0.1.0"
__all__ = ["LatentAtlasError", "Run", "__version__"]


def __getattr__(name: str):
    # Lazy: `latentatlas --help` and the CLI's imports stay free of torch until a run is actually opened.
    if name == "Run":
        from latentatlas.store import Run

        return Run
    raise AttributeError(f"module 'latentatlas' has no attribute {name!r}")
