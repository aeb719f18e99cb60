"""latentatlas: map the latent space of a convolutional autoencoder and decode statistically built latent vectors."""

from latentatlas.errors import LatentAtlasError

__version__ = "0.1.0"
__all__ = ["LatentAtlasError", "__version__"]
