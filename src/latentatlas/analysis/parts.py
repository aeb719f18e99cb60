"""What an analysis part is: the protocol every finding's module follows, and what it is fitted from.

A part is a fitted object that owns its numbers, its sections of analysis.json (`to_dict()`) and its verdicts
on the seed's claims (`findings()`). `LatentAnalysis` fits the shared statistics once (`Context`), then
every part of `latentatlas.analysis.registry.PARTS` in order, each from the context and the parts before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from latentatlas.findings import Finding
from latentatlas.stats import PCA, BulkStatistics, Mahalanobis, ZView


class Part(Protocol):
    """A fitted analysis part."""

    def to_dict(self) -> dict[str, Any]:
        """Its sections of analysis.json, by key (numpy values allowed: the caller converts them)."""
        ...

    def findings(self) -> list[Finding]:
        """Its verdicts on the seed's claims, in the order they are reported (may be empty)."""
        ...


@dataclass(frozen=True)
class Context:
    """What a part is fitted from: the z-points, the options, the shared fits and the parts fitted before it.

    `statistics`, `pca` and `mahalanobis` are fitted once for every part (each is a pass over the store);
    `options` are `LatentAnalysis.get_params()`; `fitted` maps the names of the parts fitted so far to
    them (None for a part skipped for too few points).
    """

    view: ZView
    options: Mapping[str, Any]
    statistics: BulkStatistics
    pca: PCA
    mahalanobis: Mahalanobis
    progress: bool = False
    fitted: dict[str, Any] = field(default_factory=dict)

    @property
    def common(self) -> dict[str, Any]:
        """The chunking and progress options of the estimators that read the store."""
        return {"chunk_size": self.options["chunk_size"], "progress": self.progress}

    @property
    def random_state(self) -> int:
        return int(self.options["random_state"])

    def part(self, name: str) -> Any:
        """A part fitted before this one (the registry's order guarantees it)."""
        if name not in self.fitted:
            raise KeyError(f"analysis part {name!r} is not fitted before this one: check the order of PARTS")
        return self.fitted[name]


@dataclass(frozen=True)
class AnalysisPart:
    """One line of the registry.

    name : the part's attribute on `LatentAnalysis` (`name + "_"`) and its key in `parts_`.
    fit : builds the fitted part from a `Context` (usually the part's `from_context` class method).
    skipped_section : for a part that too few points cannot support, the analysis.json key that then holds
        {"skipped": reason}; None for a part whose failure is an error.
    """

    name: str
    fit: Callable[[Context], Part]
    skipped_section: str | None = None
