"""The run folder and its z-point store.

- `run`: `Run`, read-only access to a run folder (configuration, weights, split, z-points, metadata).
- `encode`: `encode_run`, which writes the z-point store.

Batched encoding and decoding (`encode_images`, `decode_latents`, `decode_with`) live in `decoding` and
are re-exported here, where commands have always imported them.
"""

from latentatlas.decoding import decode_latents, decode_with, encode_images, load_torchscript_decoder
from latentatlas.model import default_device
from latentatlas.store.encode import encode_run
from latentatlas.store.run import DECODER_FILE, IMPORT_FILE, SUBSETS, ZPOINTS_DIR, Run

__all__ = [
    "DECODER_FILE",
    "IMPORT_FILE",
    "SUBSETS",
    "ZPOINTS_DIR",
    "Run",
    "decode_latents",
    "decode_with",
    "default_device",
    "encode_images",
    "encode_run",
    "load_torchscript_decoder",
]
