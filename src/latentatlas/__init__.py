"""latentatlas: map the latent space of a convolutional autoencoder and decode statistically built latent vectors."""

from importlib.metadata import PackageNotFoundError, version

from latentatlas.errors import LatentAtlasError

try:
    __version__ = version("latentatlas")  # the installed distribution's, so one number lives in pyproject.toml
except PackageNotFoundError:  # a source tree on sys.path without any install
    __version__ = "0+unknown"
__all__ = ["LatentAtlasError", "__version__"]
