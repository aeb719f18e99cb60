"""What the evaluation table says about the seed's claims, and which sampler differences are real.

Every verdict is computed from the rows and their 95 % intervals (latent precision against the held-out
z-points is the deciding score: it needs no image instrument, so quick and full evaluations agree):
* "uniform-box-misses": a common box [-b, b]^N rarely lands in the bulk: agrees when the whole
  precision interval of every uniform-box row lies below 0.1;
* "independent-components-miss": samplers that treat the components as independent
  (diagonal-gaussian, component-box) miss the bulk that a full-covariance Gaussian hits: agrees when
  each one's precision interval lies entirely below the gaussian's;
* "full-covariance-hits": a Gaussian with the measured mean and full covariance lands in the bulk:
  agrees when its precision interval lies above half of the real reference's precision;
* "ceiling-without-copying" (latentatlas's own question, not the seed's): some sampler row reaches the
  reconstruction ceiling within the 95 % intervals without copying (`frontier.ceiling_verdict`: quality FID∞,
  else FD-face, else latent precision; copying by C_T and the authenticity share). Left out when not
  measured (the summary then says "not measured").
"""

from __future__ import annotations

from collections.abc import Sequence

from latentatlas.evaluation.frontier import ceiling_verdict
from latentatlas.evaluation.instruments import metrics
from latentatlas.evaluation.intervals import significantly_different
from latentatlas.evaluation.table import REAL_ROW, EvaluationRow, Score
from latentatlas.findings import Finding
from latentatlas.samplers import SAMPLERS

MISS_PRECISION = 0.1
RANKED_METRICS = ("precision", "coverage", "fid", "cnn_face_rate", "face_rate")


def _precision(rows: Sequence[EvaluationRow], name: str) -> Score | None:
    row = next((r for r in rows if r.name == name), None)
    score = row.scores.get("precision") if row else None
    return score if score is not None and score.has_interval else None


def _cell(name: str, score: Score) -> str:
    return f"{name} precision {score.value:.3g} [{score.low:.3g}, {score.high:.3g}]"


def _uniform_box(rows: Sequence[EvaluationRow]) -> Finding | None:
    boxes = [(r.name, _precision(rows, r.name)) for r in rows if r.name.startswith("uniform-box")]
    boxes = [(name, score) for name, score in boxes if score is not None]
    if not boxes:
        return None
    misses = all(score.high < MISS_PRECISION for _, score in boxes)
    evidence = "; ".join(_cell(name, score) for name, score in boxes)
    return Finding(
        key="uniform-box-misses",
        claim="vectors from a common box [-b, b]^N rarely land in the bulk of real z-points",
        verdict="agrees" if misses else "disagrees",
        evidence=f"{evidence}; the test: the whole 95 % interval below {MISS_PRECISION}",
    )


def _independent_samplers() -> list[str]:
    """The registered samplers with independent components; those with a density first (the diagonal
    Gaussian differs from `gaussian` in the covariance alone), then in the registry's order."""
    names = [name for name, cls in SAMPLERS.items() if cls.independent_components]
    return sorted(names, key=lambda name: not SAMPLERS[name].defines_density)


def _independent(rows: Sequence[EvaluationRow]) -> Finding | None:
    full = _precision(rows, "gaussian")
    others = [(name, _precision(rows, name)) for name in _independent_samplers()]
    others = [(name, score) for name, score in others if score is not None]
    if full is None or not others:
        return None
    below = [score.high < full.low for _, score in others]
    verdict = "agrees" if all(below) else "disagrees" if not any(below) else "mixed"
    evidence = "; ".join(_cell(name, score) for name, score in [*others, ("gaussian", full)])
    return Finding(
        key="independent-components-miss",
        claim="samplers with independent components miss the bulk that a full-covariance Gaussian hits",
        verdict=verdict,
        evidence=f"{evidence}; the test: each interval entirely below the gaussian's",
    )


def _full_covariance(rows: Sequence[EvaluationRow]) -> Finding | None:
    full, real = _precision(rows, "gaussian"), _precision(rows, REAL_ROW)
    if full is None or real is None:
        return None
    target = 0.5 * real.value
    verdict = "agrees" if full.low > target else "disagrees" if full.high < target else "undecided"
    return Finding(
        key="full-covariance-hits",
        claim="a Gaussian with the measured mean and full covariance puts its vectors in the bulk",
        verdict=verdict,
        evidence=f"{_cell('gaussian', full)} vs. half the real reference's {real.value:.3g}; "
        "the test: the interval above that line",
    )


CEILING_KEY = "ceiling-without-copying"
# phrased as what is expected, so that "this run disagrees with the expectation: ..." cannot read as if it happened
CEILING_CLAIM = "some sampler should reach the reconstruction ceiling within the 95 % intervals without copying"


def _ceiling_without_copying(rows: Sequence[EvaluationRow]) -> Finding | None:
    found = ceiling_verdict(rows)
    if found is None:
        return None
    test = (
        "the test: the quality interval overlaps the ceiling's (or lies beyond it), no C_T interval entirely "
        "below 0 and no authenticity interval entirely below the held-out level"
    )
    return Finding(
        key=CEILING_KEY,
        claim=CEILING_CLAIM,
        verdict="agrees" if found.verdict == "agrees" else "undecided" if found.verdict == "undecided" else "disagrees",
        evidence=f"{found.evidence}; {test}",
        source="the expectation",
    )


def evaluation_findings(rows: Sequence[EvaluationRow]) -> list[Finding]:
    """The sampler claims that these rows can decide (a claim whose rows are missing is left out)."""
    candidates = (_uniform_box(rows), _independent(rows), _full_covariance(rows), _ceiling_without_copying(rows))
    return [finding for finding in candidates if finding is not None]


def ranking(rows: Sequence[EvaluationRow]) -> list[str]:
    """Per ranked metric: the samplers from best to worst, with '>' where neighbours differ significantly
    (disjoint 95 % intervals) and '≈' where they do not."""
    better = {m.key: m.higher_is_better for m in metrics()}
    lines = []
    samplers = [r for r in rows if r.kind == "sampler"]
    for key in RANKED_METRICS:
        scored = [(r.name, r.scores[key]) for r in samplers if key in r.scores and r.scores[key].has_interval]
        if len(scored) < 2:
            continue
        scored.sort(key=lambda item: item[1].value, reverse=bool(better[key]))
        text = scored[0][0]
        for (_, previous), (name, score) in zip(scored, scored[1:]):
            text += (" > " if significantly_different(previous, score) else " ≈ ") + name
        lines.append(f"{key} ({'higher' if better[key] else 'lower'} is better): {text}")
    return lines
