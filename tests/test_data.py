"""Tests for latentatlas.data: the image sources, the synthetic faces and the pre-decoded cache."""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentatlas import data
from latentatlas.data import DataConfig, ImageSet, default_cache_dir, load_images, synthetic_faces
from latentatlas.errors import LatentAtlasError

CELEBA_10K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-10k"
ATTRIBUTE_NAMES = [f"Attr_{i:02d}" for i in range(40)]
PARTITION_CODES = [0, 0, 1, 1, 2, 0]  # six CelebA images: ids 1, 2, 6 train; 3, 4 valid; 5 test


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LATENTATLAS_CACHE", str(cache))
    return cache


def _jpeg_bytes(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image_size": 30}, "image size must be a positive multiple of 16, got 30"),
        ({"image_size": 0}, "image size must be a positive multiple of 16, got 0"),
        ({"image_size": -16}, "image size must be a positive multiple of 16, got -16"),
        ({"image_size": 64.0}, "data.image_size must be an integer, got 64.0"),
        ({"partition": "training"}, "partition must be one of all, train, valid, test, got 'training'"),
        ({"synthetic_count": 0}, "synthetic count must be an integer >= 1, got 0"),
        ({"synthetic_seed": -1}, "synthetic seed must be an integer >= 0, got -1"),
        ({"limit": 0}, "limit must be an integer >= 1, got 0"),
        ({"limit": -5}, "limit must be an integer >= 1, got -5"),
        ({"source": ""}, "data source is empty"),
    ],
)
def test_config_rejects_bad_values(options: dict, message: str) -> None:
    with pytest.raises(LatentAtlasError, match=re.escape(message)):
        DataConfig(**options)


def test_config_round_trips_through_dict() -> None:
    config = DataConfig(source="/some/where", image_size=32, partition="valid", limit=7, synthetic_seed=3)
    assert DataConfig.from_dict(config.to_dict()) == config
    with pytest.raises(LatentAtlasError, match="unknown data config keys: colour"):
        DataConfig.from_dict({**config.to_dict(), "colour": 1})


def test_default_cache_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENTATLAS_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("LATENTATLAS_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "latentatlas"


# ----------------------------------------------------------------------------- synthetic faces

FACTOR_COLUMNS = [
    "face_width",
    "face_height",
    "skin_tone",
    "skin_r",
    "skin_g",
    "skin_b",
    "eye_y",
    "eye_size",
    "eye_spacing",
    "brow_tilt",
    "mouth_curve",
    "mouth_width",
    "hair_r",
    "hair_g",
    "hair_b",
    "hair_length",
    "bg_r",
    "bg_g",
    "bg_b",
    "light_angle",
    "light_strength",
    "shift_x",
    "shift_y",
]


@pytest.mark.parametrize("size", [16, 32, 64])
def test_synthetic_faces_are_deterministic_per_seed(size: int) -> None:
    images, meta = synthetic_faces(24, image_size=size, seed=5)
    again, meta_again = synthetic_faces(24, image_size=size, seed=5)
    other, _ = synthetic_faces(24, image_size=size, seed=6)
    assert images.shape == (24, size, size, 3) and images.dtype == np.uint8
    assert images.tobytes() == again.tobytes()
    pd.testing.assert_frame_equal(meta, meta_again)
    assert images.tobytes() != other.tobytes()
    # Faces differ from one another, and a smaller set is the prefix of a larger one.
    assert len({image.tobytes() for image in images}) == 24
    prefix, prefix_meta = synthetic_faces(10, image_size=size, seed=5)
    assert np.array_equal(prefix, images[:10])
    pd.testing.assert_frame_equal(prefix_meta, meta.iloc[:10])


def test_synthetic_meta_has_ids_and_float_factors() -> None:
    _, meta = synthetic_faces(12, image_size=32, seed=0)
    assert list(meta.columns[:3]) == ["image_id", "path", "partition"]
    assert meta["image_id"].tolist()[:2] == ["synthetic-000000", "synthetic-000001"]
    assert (meta["partition"] == "all").all()
    assert set(FACTOR_COLUMNS) <= set(meta.columns)
    for column in FACTOR_COLUMNS:
        assert meta[column].dtype == np.float32, column
    assert (meta["face_height"] > meta["face_width"]).all()
    assert meta["mouth_curve"].between(-1, 1).all()


def test_synthetic_face_centre_has_the_lit_skin_colour() -> None:
    """Known answer: the face centre shows nothing but skin, scaled by the lighting gradient there."""
    size = 64
    images, meta = synthetic_faces(40, image_size=size, seed=2)
    for image, row in zip(images, meta.itertuples()):
        x, y = row.shift_x, row.shift_y + 0.06  # the renderer's face centre
        light = 1 + row.light_strength * (np.cos(row.light_angle) * x + np.sin(row.light_angle) * y) / np.sqrt(2)
        expected = np.clip(np.array([row.skin_r, row.skin_g, row.skin_b]) * light * 255, 0, 255)
        col, line = (x + 1) / 2 * size - 0.5, (y + 1) / 2 * size - 0.5
        pixel = image[int(round(line)), int(round(col))].astype(float)
        assert np.abs(pixel - expected).max() < 6, (row.Index, pixel, expected)
        # The face is brighter than the background corner behind it.
        assert pixel.mean() > image[0, 0].astype(float).mean() or image[0, 0].mean() > 200


def test_synthetic_smile_and_frown_bend_the_mouth() -> None:
    _, meta = synthetic_faces(1, image_size=64, seed=0)
    base = meta.iloc[:1].copy()
    base[["light_strength", "shift_x", "shift_y"]] = 0.0
    smile, frown = base.copy(), base.copy()
    smile["mouth_curve"], frown["mouth_curve"] = 1.0, -1.0
    rendered = data.synthetic._render_faces(pd.concat([smile, frown], ignore_index=True), 64)
    luma = rendered.astype(float).mean(axis=3)
    face_height = float(base["face_height"].iloc[0])
    mouth_y = 0.06 + 0.5 * face_height  # the renderer's mouth line, in [-1, 1] coordinates

    def to_row(y: float) -> int:
        return int(round((y + 1) / 2 * 64 - 0.5))

    zone = slice(to_row(mouth_y - 0.15 * face_height), to_row(mouth_y + 0.15 * face_height) + 1)
    smile_row = zone.start + int(np.argmin(luma[0, zone, 31]))
    frown_row = zone.start + int(np.argmin(luma[1, zone, 31]))
    # A smile's middle sits below the straight line, a frown's above it, by about 0.1 face heights each.
    assert smile_row > to_row(mouth_y) > frown_row
    assert smile_row - frown_row >= 0.2 * face_height * 32 - 2


def test_synthetic_faces_are_detected_by_haar_cascade() -> None:
    images, _ = synthetic_faces(30, image_size=64, seed=11)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = 0
    for image in images:
        grey = cv2.cvtColor(cv2.resize(image, (256, 256), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2GRAY)
        found += len(cascade.detectMultiScale(grey)) > 0
    assert found / len(images) > 0.6


def test_synthetic_faces_rejects_bad_arguments() -> None:
    with pytest.raises(LatentAtlasError):
        synthetic_faces(0)
    with pytest.raises(LatentAtlasError):
        synthetic_faces(4, image_size=20)


def test_synthetic_source_loads_through_cache(cache_in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = DataConfig(image_size=32, synthetic_count=40, synthetic_seed=4)
    first = load_images(config, progress=False)
    direct, meta = synthetic_faces(40, image_size=32, seed=4)
    assert isinstance(first.images, np.memmap) and first.images.shape == (40, 32, 32, 3)
    assert np.array_equal(first.images, direct)
    pd.testing.assert_frame_equal(first.meta, meta, check_dtype=False)

    def must_not_render(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(data.synthetic, "_render_faces", must_not_render)
    second = load_images(config, progress=False)
    assert isinstance(second.images, np.memmap) and np.array_equal(second.images, direct)
    assert Path(second.images.filename).parent == cache_in_tmp
    monkeypatch.undo()
    limited = load_images(DataConfig(image_size=32, synthetic_count=40, synthetic_seed=4, limit=15))
    assert np.array_equal(limited.images, direct[:15]) and len(limited.meta) == 15


# ----------------------------------------------------------------------------- CelebA layout


def _celeba_image(index: int, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int, int]]:
    """Black outside the expected face crop, a per-image colour inside it, and a white disc at its centre."""
    width, height = size
    side = round(width * 148 / 178)
    left, top = (width - side) // 2, (height - side) // 2
    colour = (40 + 30 * index, 200 - 25 * index, 90)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[top : top + side, left : left + side] = colour
    rows, cols = np.mgrid[0:height, 0:width]
    disc = (rows - (top + (side - 1) / 2)) ** 2 + (cols - (left + (side - 1) / 2)) ** 2 <= (0.15 * side) ** 2
    pixels[disc] = 255
    return Image.fromarray(pixels), colour


def _write_celeba(root: Path, size: tuple[int, int], form: str, attributes: np.ndarray) -> Path:
    """A six-image CelebA in the official layout; returns the path to pass as the source."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(PARTITION_CODES))]
    files = {name: _jpeg_bytes(_celeba_image(i, size)[0]) for i, name in enumerate(names)}
    if form in ("folder", "image-folder"):
        (root / "img_align_celeba").mkdir()
        for name, blob in files.items():
            (root / "img_align_celeba" / name).write_bytes(blob)
    else:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as archive:
            archive.writestr("img_align_celeba/", b"")
            for name, blob in files.items():
                archive.writestr(f"img_align_celeba/{name}", blob)
    rows = ["  ".join([name, *(f"{v:2d}" for v in values)]) for name, values in zip(names, attributes)]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(names)), " ".join(ATTRIBUTE_NAMES), *rows]) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {c}\n" for n, c in zip(names, PARTITION_CODES)))
    if form == "image-folder":
        return root / "img_align_celeba"
    return root / "img_align_celeba.zip" if form == "zip-path" else root


@pytest.fixture
def attributes() -> np.ndarray:
    return np.where(np.random.default_rng(0).random((len(PARTITION_CODES), 40)) < 0.5, -1, 1).astype(np.int8)


@pytest.mark.parametrize("size", [(178, 218), (89, 109)])
@pytest.mark.parametrize("form", ["folder", "image-folder", "zip-root", "zip-path"])
def test_celeba_layout_crops_the_face_and_keeps_attributes(
    tmp_path: Path, size: tuple[int, int], form: str, attributes: np.ndarray
) -> None:
    source = _write_celeba(tmp_path / "celeba", size, form, attributes)
    loaded = load_images(DataConfig(source=str(source), image_size=32), progress=False)
    assert loaded.images.shape == (6, 32, 32, 3) and loaded.images.dtype == np.uint8
    assert loaded.skipped == []
    meta = loaded.meta
    assert meta["image_id"].tolist() == [f"{i:06d}.jpg" for i in range(1, 7)]
    assert meta["path"].tolist() == [f"img_align_celeba/{i:06d}.jpg" for i in range(1, 7)]
    assert meta["partition"].tolist() == ["train", "train", "valid", "valid", "test", "train"]
    assert list(meta.columns[3:]) == ATTRIBUTE_NAMES
    assert all(meta[name].dtype == np.int8 for name in ATTRIBUTE_NAMES)
    assert np.array_equal(meta[ATTRIBUTE_NAMES].to_numpy(), attributes)
    for index, image in enumerate(np.asarray(loaded.images, dtype=float)):
        colour = np.array(_celeba_image(index, size)[1], dtype=float)
        # The crop holds no black border: the corners (one pixel in, past JPEG edge ringing) have the colour.
        for row, col in [(1, 1), (1, -2), (-2, 1), (-2, -2)]:
            assert np.abs(image[row, col] - colour).max() < 30, (index, row, col, image[row, col], colour)
        # The white disc drawn at the crop's centre stays centred, and keeps its size relative to the crop
        # (radius 0.15 of the side): a crop that is too small would magnify it.
        whiteness = np.clip((image - colour).sum(axis=2) / (3 * 255 - colour.sum()), 0, 1)
        rows, cols = np.mgrid[0:32, 0:32]
        area = whiteness.sum()
        assert abs(area - np.pi * (0.15 * 32) ** 2) < 0.12 * np.pi * (0.15 * 32) ** 2, area
        assert abs((rows * whiteness).sum() / area - 15.5) < 0.5
        assert abs((cols * whiteness).sum() / area - 15.5) < 0.5


@pytest.mark.parametrize(("partition", "ids"), [("train", [1, 2, 6]), ("valid", [3, 4]), ("test", [5])])
def test_celeba_partition_selects_rows(tmp_path: Path, partition: str, ids: list[int], attributes: np.ndarray) -> None:
    source = _write_celeba(tmp_path / "celeba", (89, 109), "folder", attributes)
    everything = load_images(DataConfig(source=str(source), image_size=16), progress=False)
    chosen = load_images(DataConfig(source=str(source), image_size=16, partition=partition), progress=False)
    assert chosen.meta["image_id"].tolist() == [f"{i:06d}.jpg" for i in ids]
    assert (chosen.meta["partition"] == partition).all()
    rows = [i - 1 for i in ids]
    assert np.array_equal(chosen.images, everything.images[rows])
    assert np.array_equal(chosen.meta[ATTRIBUTE_NAMES].to_numpy(), attributes[rows])
    limited = load_images(DataConfig(source=str(source), image_size=16, partition=partition, limit=1))
    assert limited.meta["image_id"].tolist() == [f"{ids[0]:06d}.jpg"]


def test_celeba_without_text_files_has_no_attributes(tmp_path: Path, attributes: np.ndarray) -> None:
    source = _write_celeba(tmp_path / "celeba", (89, 109), "folder", attributes)
    (source / "list_attr_celeba.txt").unlink()
    (source / "list_eval_partition.txt").unlink()
    loaded = load_images(DataConfig(source=str(source), image_size=16), progress=False)
    assert list(loaded.meta.columns) == ["image_id", "path", "partition"]
    assert (loaded.meta["partition"] == "all").all()
    with pytest.raises(LatentAtlasError, match="list_eval_partition.txt"):
        load_images(DataConfig(source=str(source), image_size=16, partition="train"))


def test_celeba_partition_without_images_is_an_error(tmp_path: Path, attributes: np.ndarray) -> None:
    source = _write_celeba(tmp_path / "celeba", (89, 109), "folder", attributes)
    (source / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg 0\n" for i in range(1, 7)))
    with pytest.raises(LatentAtlasError, match="no images in partition 'test'"):
        load_images(DataConfig(source=str(source), image_size=16, partition="test"))


def test_celeba_malformed_attribute_file_is_an_error(tmp_path: Path, attributes: np.ndarray) -> None:
    source = _write_celeba(tmp_path / "celeba", (89, 109), "folder", attributes)
    (source / "list_attr_celeba.txt").write_text("6\nA B\n000001.jpg 1 maybe\n")
    with pytest.raises(LatentAtlasError, match="attribute"):
        load_images(DataConfig(source=str(source), image_size=16))


# ----------------------------------------------------------------------------- any image folder or zip


def _generic_files() -> dict[str, tuple[bytes, tuple[int, int, int]]]:
    """Relative path -> (file bytes, the colour the loaded image must have), in mixed sizes and formats."""

    def encode(image: Image.Image, fmt: str) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return buffer.getvalue()

    wide = np.zeros((30, 60, 3), dtype=np.uint8)
    wide[:, :] = (255, 0, 0)  # side bands the centre square crop must cut away
    wide[:, 15:45] = (0, 90, 200)
    palette = Image.new("P", (33, 33), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    return {
        "a_wide.png": (encode(Image.fromarray(wide), "PNG"), (0, 90, 200)),
        "b_grey.JPG": (encode(Image.new("L", (50, 70), 90), "JPEG"), (90, 90, 90)),
        "c_rgba.png": (encode(Image.new("RGBA", (40, 40), (200, 100, 50, 255)), "PNG"), (200, 100, 50)),
        "d_clear.png": (encode(Image.new("RGBA", (24, 24), (255, 0, 0, 0)), "PNG"), (255, 255, 255)),
        "notes.txt": (b"not an image and not an image name", (0, 0, 0)),
        "sub/e_palette.png": (encode(palette, "PNG"), (10, 200, 30)),
        "sub/deeper/f_tiny.bmp": (encode(Image.new("RGB", (8, 12), (30, 60, 90)), "BMP"), (30, 60, 90)),
        "sub/deeper/g_large.webp": (encode(Image.new("RGB", (300, 200), (220, 220, 20)), "WEBP"), (220, 220, 20)),
    }


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_generic_source_reads_mixed_formats_recursively(tmp_path: Path, form: str) -> None:
    files = _generic_files()
    if form == "folder":
        source = tmp_path / "pictures"
        for name, (blob, _) in files.items():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(blob)
    else:
        source = tmp_path / "pictures.zip"
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("sub/", b"")
            for name, (blob, _) in files.items():
                archive.writestr(name, blob)
    loaded = load_images(DataConfig(source=str(source), image_size=16), progress=False)
    expected = {name: colour for name, (_, colour) in files.items() if not name.endswith(".txt")}
    assert loaded.meta["image_id"].tolist() == sorted(expected)
    assert loaded.meta["path"].tolist() == sorted(expected)
    assert (loaded.meta["partition"] == "all").all()
    assert loaded.images.shape == (len(expected), 16, 16, 3) and loaded.skipped == []
    for image, name in zip(loaded.images, loaded.meta["image_id"]):
        assert np.abs(image.astype(float) - expected[name]).max() <= 8, (name, image.reshape(-1, 3)[:3])


def test_generic_source_ignores_partition_only_for_all(tmp_path: Path) -> None:
    (tmp_path / "pictures").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "pictures" / "x.png")
    with pytest.raises(LatentAtlasError, match="CelebA"):
        load_images(DataConfig(source=str(tmp_path / "pictures"), image_size=16, partition="train"))


def test_corrupt_files_are_skipped_and_listed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    full = _jpeg_bytes(Image.fromarray(noise))
    (folder / "good.jpg").write_bytes(full)
    Image.new("RGB", (20, 30), (10, 20, 30)).save(folder / "good2.png")
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 3])
    (folder / "text.jpg").write_text("hello, I am a text file")
    (folder / "empty.png").write_bytes(b"")
    loaded = load_images(DataConfig(source=str(folder), image_size=16), progress=False)
    assert loaded.skipped[:2] == [
        "empty.png (not an image, or a damaged one)",
        "text.jpg (not an image, or a damaged one)",
    ]
    assert loaded.skipped[2].startswith("truncated.jpg (image file is truncated (") and len(loaded.skipped) == 3
    assert loaded.meta["image_id"].tolist() == ["good.jpg", "good2.png"]
    assert loaded.images.shape == (2, 16, 16, 3)
    assert np.abs(loaded.images[1].astype(int) - (10, 20, 30)).max() <= 2
    assert "skipped 3 file(s): empty.png (not an image, or a damaged one), text.jpg (" in capsys.readouterr().err
    # The skipped list survives in the cache.
    assert load_images(DataConfig(source=str(folder), image_size=16)).skipped == loaded.skipped


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_parallel_decoding_matches_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    rng = np.random.default_rng(1)
    files = {}
    for i in range(150):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(buffer, format="PNG")
        files[f"{i:03d}.png"] = buffer.getvalue()
    files["075.png"] = b"broken"
    if form == "folder":
        source = tmp_path / "many"
        source.mkdir()
        for name, blob in files.items():
            (source / name).write_bytes(blob)
    else:
        source = tmp_path / "many.zip"
        with zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, blob in files.items():
                archive.writestr(name, blob)
    config = DataConfig(source=str(source), image_size=16)
    serial = load_images(config, cache_dir=tmp_path / "a", progress=False, workers=1)
    monkeypatch.setattr(data.cache, "_DECODE_BLOCK", 16)  # ten blocks over two worker processes
    threaded = load_images(config, cache_dir=tmp_path / "b", progress=False, workers=2)
    assert threaded.skipped == serial.skipped == ["075.png (not an image, or a damaged one)"]
    assert threaded.images.shape == (149, 16, 16, 3)
    assert np.array_equal(np.asarray(threaded.images), np.asarray(serial.images))
    assert threaded.meta["image_id"].tolist() == [name for name in sorted(files) if name != "075.png"]


@pytest.mark.parametrize("case", ["missing", "empty-folder", "zip-without-images", "not-a-zip", "all-corrupt"])
def test_unusable_sources_raise_clear_errors(tmp_path: Path, case: str, cache_in_tmp: Path) -> None:
    source = tmp_path / "source"
    if case == "empty-folder":
        (source / "nested").mkdir(parents=True)
        (source / "nested" / "readme.txt").write_text("no pictures here")
    elif case == "zip-without-images":
        source = tmp_path / "source.zip"
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("readme.txt", "no pictures here")
    elif case == "not-a-zip":
        source = tmp_path / "source.jpg"
        Image.new("RGB", (20, 20)).save(source)
    elif case == "all-corrupt":
        source.mkdir()
        (source / "a.jpg").write_text("nope")
    messages = {
        "missing": "not found",
        "empty-folder": "no images",
        "zip-without-images": "no images",
        "not-a-zip": "not a zip",
        "all-corrupt": "could be decoded",
    }
    with pytest.raises(LatentAtlasError, match=messages[case]):
        load_images(DataConfig(source=str(source), image_size=16), progress=False)
    # Nothing half-written is left behind in the cache.
    leftovers = list(cache_in_tmp.glob("*")) if cache_in_tmp.exists() else []
    assert leftovers == []


# ----------------------------------------------------------------------------- the cache


def test_cache_is_reused_without_decoding(tmp_path: Path, cache_in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (30, 20), (60 * i, 50, 50)).save(folder / f"{i}.png")
    config = DataConfig(source=str(folder), image_size=16)
    first = load_images(config, progress=False)
    entries = sorted(p.suffix for p in cache_in_tmp.iterdir())
    assert entries == [".json", ".npy", ".parquet"]  # no temporary files left behind
    manifest = next(cache_in_tmp.glob("*.json"))
    written = manifest.stat().st_mtime_ns

    def must_not_decode(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(data.cache, "decode_image", must_not_decode)
        second = load_images(config, progress=False)
    assert isinstance(second.images, np.memmap) and not second.images.flags.writeable
    assert np.array_equal(second.images, first.images)
    pd.testing.assert_frame_equal(second.meta, first.meta)
    assert manifest.stat().st_mtime_ns == written

    # Changing a file changes the cache key: the new content is decoded into a second entry.
    Image.new("RGB", (30, 20), (0, 0, 250)).save(folder / "2.png")
    os.utime(folder / "2.png", ns=(written + 10**9, written + 10**9))
    third = load_images(config, progress=False)
    assert np.abs(third.images[2].astype(int) - (0, 0, 250)).max() <= 2
    assert len(list(cache_in_tmp.glob("*.npy"))) == 2
    # So do the image size and the limit.
    assert load_images(DataConfig(source=str(folder), image_size=32, limit=3)).images.shape == (3, 32, 32, 3)
    assert len(list(cache_in_tmp.glob("*.npy"))) == 3


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path, cache_in_tmp: Path) -> None:
    config = DataConfig(image_size=16, synthetic_count=8)
    first = np.array(load_images(config, progress=False).images)
    next(cache_in_tmp.glob("*.npy")).write_bytes(b"garbage")
    rebuilt = load_images(config, progress=False)
    assert np.array_equal(rebuilt.images, first)


def test_explicit_cache_dir_wins_over_environment(tmp_path: Path, cache_in_tmp: Path) -> None:
    loaded = load_images(DataConfig(image_size=16, synthetic_count=3), cache_dir=tmp_path / "mine")
    assert isinstance(loaded, ImageSet) and len(loaded) == 3
    assert len(list((tmp_path / "mine").glob("*.npy"))) == 1
    assert not cache_in_tmp.exists()


# ----------------------------------------------------------------------------- real data


@pytest.fixture
def celeba_10k() -> Path:
    if not (CELEBA_10K / "img_align_celeba").is_dir():
        pytest.skip(f"real CelebA subset not found at {CELEBA_10K}")
    return CELEBA_10K


@pytest.mark.realdata
def test_real_celeba_subset_loads(celeba_10k: Path) -> None:
    loaded = load_images(DataConfig(source=str(celeba_10k), image_size=64, limit=200), progress=False)
    assert loaded.images.shape == (200, 64, 64, 3) and loaded.skipped == []
    meta = loaded.meta
    assert meta["image_id"].iloc[0] == "000001.jpg" and meta["image_id"].iloc[-1] == "000200.jpg"
    assert (meta["partition"] == "train").all()
    attributes = meta.columns[3:]
    assert len(attributes) == 40 and "Smiling" in attributes and "Male" in attributes
    assert set(np.unique(meta[attributes].to_numpy())) == {-1, 1}
    # Real photos: plenty of variation within and between images.
    assert loaded.images.std() > 40 and len({image.tobytes() for image in loaded.images}) == 200
    valid = load_images(DataConfig(source=str(celeba_10k), image_size=64, partition="train", limit=5))
    assert np.array_equal(valid.images, loaded.images[:5])
