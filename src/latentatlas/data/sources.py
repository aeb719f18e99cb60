"""File sources: CelebA (folder or zip, with its attribute and partition files), any image folder or zip.

A source is resolved into a `Source` (how to list and read its images, what identifies their content)
and planned into meta rows (image_id, path, partition, attributes) before anything is decoded.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

import numpy as np
import pandas as pd

from latentatlas.config import DataConfig
from latentatlas.data.meta import image_rows
from latentatlas.errors import LatentAtlasError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CELEBA_FOLDER = "img_align_celeba"
CELEBA_ATTRIBUTES = "list_attr_celeba.txt"
CELEBA_PARTITIONS = "list_eval_partition.txt"
# The usual CelebA face crop: a centred 148 x 148 square of the official 178 x 218 image.
CELEBA_CROP_FRACTION = 148 / 178
_PARTITION_CODES = {"0": "train", "1": "valid", "2": "test"}
# The most bytes one image file (or zip member) may have; read before decoding, so a zip bomb stays packed.
MAX_FILE_BYTES = 256 * 2**20


@dataclass
class Source:
    """A resolved file source: how to list and read its images, and what identifies its content."""

    kind: str  # "celeba-folder" | "celeba-zip" | "folder" | "zip"
    root: Path  # folder or zip file holding the images
    members: list[str]  # image paths relative to `root` (or names inside the zip), sorted
    fingerprint: list  # stat data that changes when the content does
    text_root: Path | None = None  # CelebA: folder holding the attribute / partition files
    prefix: str = ""  # CelebA: the images' path prefix ("img_align_celeba/"), for the `path` column
    skipped: list[str] = field(default_factory=list)  # listed but not usable: dangling links, loops, bad names

    @property
    def text_folder(self) -> Path:
        """Where the CelebA attribute / partition files are looked for."""
        return self.text_root if self.text_root is not None else self.root

    @property
    def is_celeba(self) -> bool:
        return self.kind.startswith("celeba")

    @property
    def crop_fraction(self) -> float | None:
        return CELEBA_CROP_FRACTION if self.is_celeba else None

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], bytes]]:
        """A function returning a member's bytes. Zip handles are per thread: one ZipFile shared by decoding
        threads would serialise every read on its file lock."""
        if not self.kind.endswith("zip"):
            root = self.root

            def read_file(name: str) -> bytes:
                _check_file_size(name, (root / name).stat().st_size)
                return (root / name).read_bytes()

            yield read_file
            return
        local, handles, lock = threading.local(), [], threading.Lock()

        def read_zip(name: str) -> bytes:
            if not hasattr(local, "archive"):
                local.archive = zipfile.ZipFile(self.root)
                with lock:
                    handles.append(local.archive)
            # The declared size, checked before reading: a zip bomb member never gets inflated into memory.
            _check_file_size(name, local.archive.getinfo(name).file_size)
            return local.archive.read(name)

        try:
            yield read_zip
        finally:
            for archive in handles:
                archive.close()


def _check_file_size(name: str, size: int) -> None:
    if size > MAX_FILE_BYTES:
        # The skipped list puts the name before this reason, so the reason does not repeat it.
        raise ValueError(f"{size / 2**20:.1f} MiB, more than the {MAX_FILE_BYTES / 2**20:.1f} MiB read per image")


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def _stat_entry(path: Path) -> list:
    stat = path.stat()
    return [path.name, stat.st_size, stat.st_mtime_ns]


def _printable(name: str) -> str:
    return os.fsencode(name).decode("utf-8", "replace")


def _list_folder(folder: Path) -> tuple[list[str], list, list[str]]:
    """Image files under `folder` (relative, sorted), their (name, size, mtime) listing for the cache key,
    and the names skipped. Symbolic links are followed, but every real folder and file is taken once:
    a link loop or a second link to the same file adds nothing. Dangling links and names that are not
    UTF-8 are skipped and listed."""
    fingerprint, skipped = [], []
    seen_folders: set[str] = set()
    seen_files: set[tuple[int, int]] = set()
    for current, dirs, files in os.walk(folder, followlinks=True):
        rel_dir = Path(current).relative_to(folder)
        real = os.path.realpath(current)
        if real in seen_folders:
            dirs[:] = []
            skipped.append(f"{_printable(rel_dir.as_posix())}/ (a folder already listed: symbolic link loop)")
            continue
        seen_folders.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # sorted: the first link to a file wins
        for name in sorted(files):
            rel = (rel_dir / name).as_posix()
            if not _is_image_name(rel):
                continue
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                skipped.append(f"{_printable(rel)} (file name is not UTF-8)")
                continue
            try:
                stat = os.stat(os.path.join(current, name))
            except OSError as exc:
                skipped.append(f"{rel} ({exc.strerror or 'unreadable'})")
                continue
            identity = (stat.st_dev, stat.st_ino)
            if not S_ISREG(stat.st_mode) or identity in seen_files:
                skipped.append(f"{rel} ({'not a regular file' if not S_ISREG(stat.st_mode) else 'a second link'})")
                continue
            seen_files.add(identity)
            fingerprint.append([rel, stat.st_size, stat.st_mtime_ns])
    fingerprint.sort()
    return [entry[0] for entry in fingerprint], fingerprint, skipped


def _list_zip(path: Path) -> tuple[list[str], list[str]]:
    """Image members of the zip (sorted) and the names skipped: a name the archive holds twice is one image
    (the zip module reads its last copy), so it is listed once and its other copies are skipped."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise LatentAtlasError(f"cannot read zip file {path}: {exc}") from None
    images = sorted(name for name in names if _is_image_name(name) and "__MACOSX/" not in name)
    members = sorted(set(images))
    skipped = [
        f"{name} ({count - 1} more zip member(s) of this name; the last one is used)"
        for name, count in sorted(Counter(images).items())
        if count > 1
    ]
    return members, skipped


def resolve_source(source: str) -> Source:
    path = Path(source).expanduser()
    if not path.exists():
        raise LatentAtlasError(f"data source not found: {source} (give a folder, a zip or 'synthetic-faces')")
    path = path.resolve()
    try:
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise LatentAtlasError(f"data source {path} is a file but not a zip archive")
            members, skipped = _list_zip(path)
            if path.name == f"{CELEBA_FOLDER}.zip":
                return Source("celeba-zip", path, members, [_stat_entry(path)], text_root=path.parent, skipped=skipped)
            return Source("zip", path, members, [_stat_entry(path)], skipped=skipped)
        if not path.is_dir():
            raise LatentAtlasError(f"data source {path} is neither a folder nor a zip file")
        if path.name == CELEBA_FOLDER:  # the image folder itself was given; the text files sit beside it
            members, fingerprint, skipped = _list_folder(path)
            return Source(
                "celeba-folder", path, members, fingerprint, path.parent, f"{CELEBA_FOLDER}/", skipped=skipped
            )
        if (path / CELEBA_FOLDER).is_dir():
            members, fingerprint, skipped = _list_folder(path / CELEBA_FOLDER)
            return Source(
                "celeba-folder", path / CELEBA_FOLDER, members, fingerprint, path, f"{CELEBA_FOLDER}/", skipped=skipped
            )
        if (path / f"{CELEBA_FOLDER}.zip").is_file():
            archive = path / f"{CELEBA_FOLDER}.zip"
            members, skipped = _list_zip(archive)
            return Source("celeba-zip", archive, members, [_stat_entry(archive)], text_root=path, skipped=skipped)
        members, fingerprint, skipped = _list_folder(path)
        return Source("folder", path, members, fingerprint, skipped=skipped)
    except PermissionError as exc:
        raise LatentAtlasError(f"cannot read data source {path}: {exc.strerror}") from None


def _read_celeba_attributes(path: Path) -> pd.DataFrame:
    try:
        with open(path, encoding="utf-8") as f:
            f.readline()  # image count
            names = f.readline().split()
            table = pd.read_csv(f, sep=r"\s+", header=None, names=["image_id", *names], dtype={"image_id": str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise LatentAtlasError(f"cannot read CelebA attributes {path}: {exc}") from None
    if not names or bool(table[names].isna().to_numpy().any()):
        raise LatentAtlasError(f"malformed CelebA attribute file {path}: expected a count, names, then rows")
    try:
        return table.set_index("image_id")[names].astype(np.int8)
    except (ValueError, TypeError):
        raise LatentAtlasError(f"malformed CelebA attribute file {path}: attribute values must be 1 / -1") from None


def _read_celeba_partitions(path: Path) -> pd.Series:
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, names=["image_id", "code"], dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise LatentAtlasError(f"cannot read CelebA partitions {path}: {exc}") from None
    labels = table["code"].map(_PARTITION_CODES)
    if labels.isna().any():
        raise LatentAtlasError(f"malformed CelebA partition file {path}: codes must be 0, 1 or 2")
    return pd.Series(labels.to_numpy(), index=table["image_id"].to_numpy())


def celeba_text_fingerprint(source: Source) -> list:
    entries = []
    for name in (CELEBA_ATTRIBUTES, CELEBA_PARTITIONS):
        path = source.text_folder / name
        if path.is_file():
            entries.append(_stat_entry(path))
    return entries


def plan_file_source(source: Source, config: DataConfig) -> pd.DataFrame:
    """Meta rows (image_id, path, partition, attributes) for the images to decode, in sorted order."""
    if not source.members:
        skipped = f" ({len(source.skipped)} skipped, e.g. {source.skipped[0]})" if source.skipped else ""
        raise LatentAtlasError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {source.root}{skipped}")
    if source.is_celeba:
        ids = [name.rsplit("/", 1)[-1] if source.kind == "celeba-zip" else name for name in source.members]
        paths = [source.prefix + name for name in source.members]
        meta = image_rows(ids, paths)
        partition_file = source.text_folder / CELEBA_PARTITIONS
        if partition_file.is_file():
            labels = _read_celeba_partitions(partition_file)
            meta["partition"] = meta["image_id"].map(labels).fillna("all").to_numpy()
        elif config.partition != "all":
            raise LatentAtlasError(f"partition {config.partition!r} needs {partition_file}, which is missing")
        attribute_file = source.text_folder / CELEBA_ATTRIBUTES
        if attribute_file.is_file():
            attributes = _read_celeba_attributes(attribute_file)
            joined = attributes.reindex(meta["image_id"]).fillna(0).astype(np.int8).reset_index(drop=True)
            meta = pd.concat([meta, joined], axis=1)
    else:
        meta = image_rows(source.members, source.members)
    if config.partition != "all":
        meta = meta.loc[meta["partition"] == config.partition].reset_index(drop=True)
        if meta.empty:
            raise LatentAtlasError(f"no images in partition {config.partition!r} of {source.root}")
    if config.limit is not None:
        meta = meta.iloc[: config.limit].reset_index(drop=True)
    return meta
