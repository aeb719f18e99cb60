"""The sampler and path sections of the report: sample folders with the scores of exactly that sample, the evaluation
table, and the paths.

A sample folder's scores are the evaluation rows made with the same (sampler, options, n, seed) as the
sample; a folder without such a row says "not evaluated" and gives the command that evaluates it.
"""

from __future__ import annotations

from latentatlas.evaluation.table import evaluation_notes
from latentatlas.report.artifacts import (
    Evaluation,
    EvaluationRow,
    Problems,
    Sample,
    as_records,
    read_evaluation,
    read_paths,
    read_samples,
)
from latentatlas.report.blocks import (
    Block,
    Details,
    Group,
    Heading,
    Missing,
    Table,
    Text,
    cell,
    is_scalar,
    key_values,
    records,
)
from latentatlas.report.common import APPENDIX, SAMPLERS, UNIFORM, figure, stale_note, verdicts
from latentatlas.store import Run

UNIFORM_SAMPLER = "uniform-box"
SAMPLE_BOOKKEEPING = (
    "command",
    "run",
    "path",
    "files",
    "figures",
    "findings",
    "weights",
    "weights_id",
    "sampler",
    "options",
)
PATH_BOOKKEEPING = ("name", "command", "run", "path", "files", "figures", "findings", "weights", "weights_id", "points")
EXPLANATION = (
    "Precision / recall / density / coverage compare the sampled latent vectors with held-out real z-points "
    "(k nearest neighbours); the Mahalanobis column is the median percentile among the training z-points "
    "(50 for points like the real ones); FID / KID and the face rate judge the decoded images. "
    "The latent scores depend on n: compare rows of the same n only."
)


def _shown(value: object) -> bool:
    """A sample's fact worth a row: a scalar, or a small dict of scalars (such as mean_radius)."""
    return is_scalar(value) or (isinstance(value, dict) and bool(value) and all(is_scalar(v) for v in value.values()))


def option_flags(options: dict) -> str:
    """Sampler options as command-line flags: {"b": 1.5, "k_sigma": 2} -> " --b 1.5 --k-sigma 2"."""
    parts = []
    for key, value in options.items():
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f" --{str(key).replace('_', '-')} {text}")
    return "".join(parts)


def evaluate_command(run: Run, sample: Sample) -> str:
    name = sample.sampler or "SAMPLER"
    n = sample.n if sample.n is not None else "N"
    seed = sample.seed if sample.seed is not None else "SEED"
    return f"latentatlas evaluate {run.path} --samplers {name} -n {n} --seed {seed}{option_flags(sample.options)}"


def sample_command(run: Run, sample: Sample) -> str:
    """The `latentatlas sample` line that draws this sample again (from the z-points the store holds now)."""
    name = sample.sampler or "SAMPLER"
    n = sample.n if sample.n is not None else "N"
    seed = sample.seed if sample.seed is not None else "SEED"
    return f"latentatlas sample {run.path} --sampler {name} -n {n} --seed {seed}{option_flags(sample.options)}"


def path_command(run: Run, info: dict) -> str:
    """The `latentatlas path` line of a path folder, as far as its info.json records it."""
    kind = info.get("kind") if isinstance(info.get("kind"), str) else "KIND"
    steps = f" --steps {info['steps']}" if isinstance(info.get("steps"), int) else ""
    options = info.get("options")
    options = options if isinstance(options, dict) else {}
    given = {k: v for k, v in options.items() if k not in ("kind", "steps", "run_dir", "out") and v is not None}
    return f"latentatlas path {run.path} --kind {kind}{steps}{option_flags(given)}"


def _score_table(rows: list[EvaluationRow]) -> Table:
    return records([row.scores() for row in rows])


def sample_group(run: Run, sample: Sample, evaluation: Evaluation | None) -> Group:
    blocks: list[Block] = [figure(file) for file in sample.figures]
    facts = {k: v for k, v in sample.info.items() if k not in SAMPLE_BOOKKEEPING and _shown(v)}
    if sample.options:
        facts = {"parameters": ", ".join(f"{k}={cell(v)}" for k, v in sample.options.items()), **facts}
    if facts:
        blocks.append(key_values(facts))
    key = sample.key()
    matching = [row for row in (evaluation.rows if evaluation else []) if key is not None and row.key() == key]
    if matching and evaluation is not None:
        blocks.append(Heading("Scores of this sample (evaluation/evaluation.json, same sampler, options, n and seed)"))
        note = stale_note("the evaluation", evaluation.weights, run, evaluate_command(run, sample))
        if note is not None:
            blocks.append(note)
        blocks.append(_score_table(matching))
    else:
        blocks.append(Missing("This sample", evaluate_command(run, sample), state="was not evaluated"))
    note = stale_note("this sample", sample.weights, run, sample_command(run, sample))
    stale = note is not None
    if note is not None:
        blocks.insert(0, note)
    title = sample.sampler or sample.folder.name
    return Group(title, sample.folder.name, blocks, ["stale"] if stale else [])


def _evaluation_blocks(run: Run, evaluation: Evaluation | None) -> list[Block]:
    if evaluation is None or not evaluation.rows:
        return [Missing("The evaluation table", f"latentatlas evaluate {run.path}")]
    blocks: list[Block] = [Heading("Evaluation of all samplers"), Text(EXPLANATION)]
    blocks += [Text(note) for note in evaluation_notes(evaluation.settings)]
    note = stale_note("the evaluation", evaluation.weights, run, f"latentatlas evaluate {run.path}")
    if note is not None:
        blocks.append(note)
    blocks.append(Text(f"The full table ({len(evaluation.rows)} rows) and the settings are in the appendix."))
    if evaluation.other_n:
        others = ", ".join(map(str, evaluation.other_n))
        blocks.append(
            Text(
                f"Also evaluated at n = {others}: kept, not shown (scores of different n are not comparable); "
                f"`latentatlas evaluate {run.path} -n N` shows those."
            )
        )
    blocks += [figure(file) for file in evaluation.figures]
    return blocks


def evaluation_table(evaluation: Evaluation | None) -> list[Block]:
    """The evaluation's full table and its settings, for the appendix."""
    if evaluation is None or not evaluation.rows:
        return []
    table = records([row.record for row in evaluation.rows])
    blocks: list[Block] = [Heading("The evaluation table (evaluation/evaluation.json)")]
    blocks += [Text(note) for note in evaluation_notes(evaluation.settings)]
    blocks.append(Table(table.columns, table.rows, [row.kind == "reference" for row in evaluation.rows]))
    if evaluation.settings:
        blocks.append(Details("evaluation settings", key_values(evaluation.settings)))
    return blocks


def sampler_sections(run: Run, problems: Problems) -> dict[str, list[Block]]:
    """Blocks of the uniform-box section, the statistical-sampler section and the appendix's evaluation table."""
    samples = read_samples(run.path / "samples", problems)
    evaluation = read_evaluation(run.path / "evaluation", problems)
    stale = evaluation is not None and stale_note("", evaluation.weights, run, "") is not None
    uniform_findings = [f for f in (evaluation.findings if evaluation else []) if "uniform" in f.key]
    other_findings = [f for f in (evaluation.findings if evaluation else []) if "uniform" not in f.key]
    uniform: list[Block] = verdicts(uniform_findings, stale)
    statistical: list[Block] = verdicts(other_findings, stale)
    if other_findings:  # verdicts without real images rest on the decoder's images: said beside them
        statistical[:0] = [Text(note) for note in evaluation_notes(evaluation.settings if evaluation else None)]
    for sample in samples:
        group = sample_group(run, sample, evaluation)
        (uniform if sample.sampler == UNIFORM_SAMPLER else statistical).append(group)
    if not any(isinstance(b, Group) for b in uniform):
        uniform.append(Missing("A uniform-box sample", f"latentatlas sample {run.path} --sampler {UNIFORM_SAMPLER}"))
    if not any(isinstance(b, Group) for b in statistical):
        statistical.append(
            Missing(
                "Samples of the statistical samplers",
                f"latentatlas sample {run.path} --sampler gaussian",
                state="are missing",
            )
        )
    statistical += _evaluation_blocks(run, evaluation)
    return {UNIFORM.anchor: uniform, SAMPLERS.anchor: statistical, APPENDIX.anchor: evaluation_table(evaluation)}


def path_section(run: Run, problems: Problems) -> list[Block]:
    folders = read_paths(run.path / "paths", problems)
    if not folders:
        return [Missing("Paths", f"latentatlas path {run.path}", state="are missing")]
    groups: list[Block] = []
    for path in folders:
        blocks: list[Block] = [figure(file) for file in path.figures]
        numbers = {k: v for k, v in path.info.items() if k not in PATH_BOOKKEEPING}
        if numbers:
            blocks.append(key_values(numbers))
        points = as_records(path.info.get("points"))
        if points:
            blocks += [Heading("Per step"), records(points)]
        note = stale_note("this path", path.weights, run, path_command(run, path.info))
        stale = note is not None
        if note is not None:
            blocks.insert(0, note)
        groups.append(Group(path.folder.name, "", blocks, ["stale"] if stale else []))
    return groups


__all__ = ["sampler_sections", "path_section", "option_flags"]
