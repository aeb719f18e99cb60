"""The evaluation's instruments, one module each, and their registry.

`INSTRUMENTS` maps each instrument's name to its class, in the order of the table's columns; an instrument
joins it by one `register(...)` line below. Instrument sets: "quick" (latent k-NN scores, Mahalanobis,
radius shell, latent copies, held-out log-likelihood, void share, Haar face rate, where the data have
classes the class instrument, and the copy tests C_T and authenticity in latent space: seconds on a CPU),
"standard" (quick + Inception FID / FID∞ / KID) and "full" (standard + dlib's CNN face rate,
face-embedding FD-face and k-NN scores, face copies, C_T and authenticity among face embeddings): each
instrument's `level` says the smallest set it belongs to. Interval methods: see `evaluation.intervals`.
"""

from __future__ import annotations

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.instruments.base import LEVELS, NEEDS, Instrument, Need, Reference, Row
from latentatlas.evaluation.instruments.classes import ClassInstrument
from latentatlas.evaluation.instruments.cnn_faces import CnnFaceRate
from latentatlas.evaluation.instruments.face_authenticity import FaceAuthenticity
from latentatlas.evaluation.instruments.face_copies import FaceCopies
from latentatlas.evaluation.instruments.face_ct import FaceCt
from latentatlas.evaluation.instruments.face_embeddings import FaceEmbeddingScores
from latentatlas.evaluation.instruments.haar_faces import HaarFaceRate
from latentatlas.evaluation.instruments.inception import InceptionScores
from latentatlas.evaluation.instruments.latent_authenticity import LatentAuthenticity
from latentatlas.evaluation.instruments.latent_copies import LatentCopies
from latentatlas.evaluation.instruments.latent_ct import LatentCt
from latentatlas.evaluation.instruments.latent_knn import LatentKnn
from latentatlas.evaluation.instruments.log_likelihood import HeldOutLogLikelihood, held_out_log_likelihood
from latentatlas.evaluation.instruments.mahalanobis import MahalanobisPercentile
from latentatlas.evaluation.instruments.radius import RadiusShell
from latentatlas.evaluation.instruments.void_share import VoidShare
from latentatlas.evaluation.score import Metric

INSTRUMENTS: dict[str, type[Instrument]] = {}
INSTRUMENT_SETS = LEVELS


def register(instrument: type[Instrument]) -> type[Instrument]:
    """Add an instrument class to the registry (after the others: its columns come last in the table)."""
    if instrument.name in INSTRUMENTS:
        raise LatentAtlasError(f"an instrument named {instrument.name!r} is already registered")
    taken = {metric.key for metric in metrics()}
    clash = [metric.key for metric in instrument.columns if metric.key in taken]
    if clash or not instrument.columns:
        raise LatentAtlasError(f"instrument {instrument.name!r} needs columns of its own (taken: {clash})")
    unknown = set(instrument.needs) - set(NEEDS)
    if unknown or instrument.level not in LEVELS:
        raise LatentAtlasError(f"instrument {instrument.name!r}: unknown needs {sorted(unknown)} or level")
    INSTRUMENTS[instrument.name] = instrument
    return instrument


def unregister(name: str) -> None:
    """Remove an instrument from the registry (tests that register their own)."""
    INSTRUMENTS.pop(name, None)


def metrics() -> tuple[Metric, ...]:
    """Every registered instrument's columns, in registry order: the table's columns."""
    return tuple(metric for instrument in INSTRUMENTS.values() for metric in instrument.columns)


def instrument_set(name: str, fid_scores: bool = True, faces: bool = True) -> list[Instrument]:
    """New instances of the instruments of set `name` (one of INSTRUMENT_SETS); `fid_scores=False` / `faces=False`
    leave out those that --no-fid / --no-faces switch off."""
    if name not in INSTRUMENT_SETS:
        raise LatentAtlasError(f"instrument set must be one of {', '.join(INSTRUMENT_SETS)}, got {name!r}")
    within = INSTRUMENT_SETS[: INSTRUMENT_SETS.index(name) + 1]
    off = {switch for switch, on in (("fid", fid_scores), ("faces", faces)) if not on}
    return [cls() for cls in INSTRUMENTS.values() if cls.level in within and cls.switch not in off]


def needed(instruments: list[Instrument]) -> set[Need]:
    """The shared inputs the instruments read, together."""
    return {need for instrument in instruments for need in instrument.needs}


register(LatentKnn)
register(MahalanobisPercentile)
register(RadiusShell)
register(LatentCopies)
register(HeldOutLogLikelihood)
register(VoidShare)
register(InceptionScores)
register(HaarFaceRate)
register(CnnFaceRate)
register(FaceEmbeddingScores)
register(FaceCopies)
register(ClassInstrument)
register(LatentCt)
register(LatentAuthenticity)
register(FaceCt)
register(FaceAuthenticity)

__all__ = [
    "INSTRUMENTS",
    "INSTRUMENT_SETS",
    "Instrument",
    "Metric",
    "Need",
    "Reference",
    "Row",
    "held_out_log_likelihood",
    "instrument_set",
    "metrics",
    "needed",
    "register",
    "unregister",
]
