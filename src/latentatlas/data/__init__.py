"""Image sources (CelebA folder/zip, any image folder/zip, built-in synthetic faces) and the pre-decoded cache.

- `synthetic`: the procedural face renderer (`synthetic_faces`)
- `sources`: listing CelebA / folder / zip sources and planning their meta rows
- `decode`: the one centre crop and `decode_image(bytes, size, crop_fraction)`
- `cache`: the memory-mapped uint8 cache (`load_images`)
- `meta`: the bookkeeping columns of the image and z-point metadata (`BOOKKEEPING_COLUMNS`)
"""

from latentatlas.config import DIGITS_SOURCE, PARTITIONS, SYNTHETIC_SOURCE, DataConfig
from latentatlas.data.cache import CACHE_FORMAT_VERSION, ImageSet, default_cache_dir, load_images
from latentatlas.data.decode import crop_box, decode_image
from latentatlas.data.meta import BOOKKEEPING_COLUMNS, IMAGE_COLUMNS, image_rows
from latentatlas.data.sources import CELEBA_CROP_FRACTION, IMAGE_EXTENSIONS
from latentatlas.data.synthetic import synthetic_faces

__all__ = [
    "BOOKKEEPING_COLUMNS",
    "IMAGE_COLUMNS",
    "CACHE_FORMAT_VERSION",
    "CELEBA_CROP_FRACTION",
    "DIGITS_SOURCE",
    "IMAGE_EXTENSIONS",
    "PARTITIONS",
    "SYNTHETIC_SOURCE",
    "DataConfig",
    "ImageSet",
    "crop_box",
    "decode_image",
    "image_rows",
    "default_cache_dir",
    "load_images",
    "synthetic_faces",
]
