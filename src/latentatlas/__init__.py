"""latentatlas: map the latent space of a convolutional autoencoder and decode statistically built latent vectors."""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from latentatlas.errors import LatentAtlasError

if TYPE_CHECKING:
    from latentatlas.store import Run

try:
    __version__ = version("latentatlas")  # the installed distribution's, so one number lives in pyproject.toml
except PackageNotFoundError:  # a source tree on sys.path without any install
    __version__ = "0+unknown"
__all__ = ["LatentAtlasError", "Run", "__version__"]


def __getattr__(name: str):
    # Lazy: `latentatlas --help` and the CLI's imports stay free of torch until a run is actually opened.
    if name == "Run":
        from latentatlas.store import Run

        return Run
    raise AttributeError(f"module 'latentatlas' has no attribute {name!r}")
