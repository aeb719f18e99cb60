"""`latentatlas export RUN --projector DIR`: the z-points for TensorBoard's embedding projector.

DIR gets the projector's own format, openable with `tensorboard --logdir DIR` (Projector tab):

* `projector_config.pbtxt`: a ProjectorConfig (tensorboard's protobuf) naming the files below;
* `tensors.tsv`: one z-point per line, tab-separated (all of them, or a seeded subsample of `limit` rows);
* `metadata.tsv`: a header, then per point the z-point store's metadata (row index, image id, subset,
  partition, attributes, class or factors) and the analysis's region when `analyze` has run;
* `sprite.png`: the points' images in row-major cells of `single_image_dim` pixels (source images, or the
  decodes of the z-points where the source is not at hand), at most SPRITE_MAX_SIDE (4096) pixels a side.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
from PIL import Image

from latentatlas import checks
from latentatlas.data import DataConfig, load_images
from latentatlas.embedding import category_label
from latentatlas.errors import LatentAtlasError
from latentatlas.io import output_mark, png_bytes, write_bytes, write_text
from latentatlas.pipelines.regions import region_labels
from latentatlas.store import Run
from latentatlas.tensorboard_log import PROJECTOR_FILES, check_log_dir

CONFIG_FILE, TENSORS_FILE, METADATA_FILE, SPRITE_FILE = PROJECTOR_FILES
# The projector loads sprites up to 8192 pixels a side, but the 6400-pixel sprite of 10,000 64 px CelebA faces
# was an 82 MB PNG; within 4096 pixels the same faces take 40 px cells and 35 MB.
SPRITE_MAX_SIDE = 4096
DEFAULT_LIMIT = 10000
LEFT_OUT_COLUMNS = ("path",)  # a file path per row says nothing in the projector's colouring menus


def projector_rows(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted row numbers: all `n`, or a seeded sample of `limit` of them."""
    if limit is None or limit >= n:
        return np.arange(n)
    limit = checks.positive_int(limit, "--projector-limit")
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def sprite(images: np.ndarray) -> tuple[np.ndarray, int]:
    """uint8 (n, S, S, 3) -> (square sprite image, cell side): ceil(sqrt(n)) cells a row, row-major, no gaps, as
    the projector expects; images are shrunk (box filter) when S-pixel cells would exceed SPRITE_MAX_SIDE."""
    n, size = len(images), images.shape[1]
    per_row = max(1, int(np.ceil(np.sqrt(n))))
    side = min(size, SPRITE_MAX_SIDE // per_row)
    if side < 1:
        raise LatentAtlasError(f"{n} images do not fit a {SPRITE_MAX_SIDE}-pixel sprite: lower --projector-limit")
    canvas = np.zeros((per_row * side, per_row * side, 3), np.uint8)  # square, as TensorBoard's own examples
    for i, image in enumerate(images):
        if side != size:
            image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((side, side), Image.Resampling.BOX))
        r, c = divmod(i, per_row)
        canvas[r * side : (r + 1) * side, c * side : (c + 1) * side] = image
    return canvas, side


def _tsv_cell(value: object) -> str:
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        return f"{value:.6g}"  # factors to 6 digits: enough to colour and to read
    return " ".join(category_label(value).split())  # tabs and newlines would break the table


def metadata_table(metadata: pd.DataFrame, regions: np.ndarray | None) -> str:
    """The projector's metadata TSV: a header line (several columns), then one line per point."""
    table = metadata.drop(columns=[c for c in LEFT_OUT_COLUMNS if c in metadata.columns])
    if regions is not None:
        table = table.assign(region=regions)
    lines = ["\t".join(_tsv_cell(c) for c in table.columns)]
    lines += ["\t".join(_tsv_cell(v) for v in row) for row in table.itertuples(index=False, name=None)]
    return "\n".join(lines) + "\n"


def _point_images(run: Run, rows: np.ndarray, z: np.ndarray, weights: str) -> tuple[np.ndarray | None, str]:
    """The points' source images, else their decodes, else None; with what they are."""
    try:
        # zpoints.json names the source the rows came from (the run's own or `encode --data`)
        images = load_images(DataConfig.from_dict(run.zpoints_info()["source"]), progress=False).images
        if len(images) == len(run.metadata()) and images.shape[1:] == (run.image_size, run.image_size, 3):
            return np.asarray(images[rows]), "source images"
    except (LatentAtlasError, KeyError, TypeError, OSError):
        pass
    try:
        return run.decode(z, weights=weights), "decoded z-points (the source images are not at hand)"
    except LatentAtlasError as exc:
        return None, f"no sprite: {exc}"


def _config_text(sprite_side: int | None) -> str:
    # tensorboard's own message type and printer, so the projector parses what is written
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import (  # generated protobuf module: no stubs
        ProjectorConfig,  # pyright: ignore[reportAttributeAccessIssue]
    )

    config = ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "z"
    embedding.tensor_path = TENSORS_FILE
    embedding.metadata_path = METADATA_FILE
    if sprite_side is not None:
        embedding.sprite.image_path = SPRITE_FILE
        embedding.sprite.single_image_dim.extend([sprite_side, sprite_side])
    return f"# {output_mark('export')}: z-points for `tensorboard --logdir`\n" + text_format.MessageToString(config)


def write_projector(
    run: Run,
    out_dir: str | os.PathLike,
    limit: int | None = DEFAULT_LIMIT,
    seed: int = 0,
    weights: str = "best",
    force: bool = False,
) -> dict:
    """Write the projector files for `run`'s z-points into `out_dir`; returns what was written."""
    out = check_log_dir(out_dir, force)
    z_all = run.zpoints()
    rows = projector_rows(len(z_all), limit, seed)
    z = np.asarray(z_all[rows], dtype=np.float32)
    metadata = run.metadata().iloc[rows].reset_index(drop=True)
    labels, region_note = region_labels(run, len(z_all))
    images, images_note = _point_images(run, rows, z, weights)
    picture, side = sprite(images) if images is not None else (None, None)

    tensors = io.StringIO()
    np.savetxt(tensors, z, fmt="%.7g", delimiter="\t")  # float32 holds ~7 significant digits
    table = metadata_table(metadata, labels[rows] if labels is not None else None)
    write_text(out / TENSORS_FILE, tensors.getvalue())
    write_text(out / METADATA_FILE, table)
    if picture is not None:
        write_bytes(out / SPRITE_FILE, png_bytes(picture, compress_level=6))
    else:
        (out / SPRITE_FILE).unlink(missing_ok=True)  # an earlier export's sprite would not match these points
    write_text(out / CONFIG_FILE, _config_text(side))  # last: a config names only files that are complete
    return {
        "dir": str(out),
        "points": len(z),
        "of": len(z_all),
        "latent_dim": z.shape[1],
        "columns": table.split("\n", 1)[0].split("\t"),
        "regions": region_note or "regions from the analysis",
        "sprite": images_note,
        "sprite_cell": side,
    }


__all__ = ["DEFAULT_LIMIT", "metadata_table", "projector_rows", "sprite", "write_projector"]
