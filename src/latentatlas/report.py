"""The self-contained report: RUN/report.html, one file that opens offline in any browser.

It follows the seed's story in seven sections: (1) data and training, (2) the bulk of the z-points,
(3) correlations and ellipses, (4) radii against uniform vectors, the origin's border position and
slices, (5) uniform-box samples fail, (6) statistical samplers succeed, (7) paths through the centre.
Every figure is embedded as a base64 data URI with a one-line caption; CSS is inline, there is no
JavaScript. A section whose inputs are missing names the command that produces them.

The other commands' JSON files are read defensively: known numbers get their own tables, any other
scalar field is still shown in a generic key / value table, and unreadable files are reported in
the page instead of stopping it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentatlas.errors import LatentAtlasError
from latentatlas.io import write_text
from latentatlas.store import Run

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml", ".gif": "image/gif"}
MAX_LIST_ITEMS = 12  # longer lists of numbers are summarised, not printed in full

# The figures `latentatlas analyze` writes, placed where the story needs them; any other figure is
# assigned by words in its file name and caption.
ANALYSIS_FIGURE_SECTIONS = {
    "histograms.png": 2,
    "components.png": 2,
    "correlation.png": 3,
    "projections.png": 3,
    "pca_spectrum.png": 3,
    "radii.png": 4,
    "mahalanobis.png": 4,
    "slices.png": 4,
}
# Other analysis figures are assigned to the story's sections by words in their file name and caption.
SECTION_KEYWORDS: dict[int, tuple[str, ...]] = {
    4: ("radi", "radius", "norm", "uniform", "origin", "slice", "border", "shell"),
    3: ("correlat", "ellips", "covarian", "contour", "tilt", "plane", "pca", "princip", "eigen", "mcd", "robust"),
    2: ("distribution", "histogram", "dominant", "component", "mean", "std", "width", "bulk", "spread", "gauss"),
}
SECTION_TITLES = {
    1: "1. Data and training",
    2: "2. The bulk: per-component distributions and dominant components",
    3: "3. Correlations and confidence ellipses",
    4: "4. Radii against uniform vectors, the origin's border position, slices",
    5: "5. Uniform-box samples miss the bulk",
    6: "6. Statistical samplers hit it",
    7: "7. Paths through the centre",
}


# ----------------------------------------------------------------------------- small HTML helpers


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _inside(folder: Path, name: str) -> Path | None:
    """`folder / name` if it stays inside `folder` (a figure list must not point elsewhere on disk)."""
    try:
        path = (folder / name).resolve()
        path.relative_to(folder.resolve())
    except (ValueError, OSError, TypeError):
        return None
    return path if path.is_file() else None


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_html(source: bytes | Path, caption: str, alt: str | None = None) -> str:
    """One embedded figure with its caption; `source` is PNG bytes or an image file."""
    if isinstance(source, Path):
        mime = MIME.get(source.suffix.lower(), "application/octet-stream")
        uri = data_uri(source.read_bytes(), mime)
    else:
        uri = data_uri(source)
    return f'<figure><img src="{uri}" alt="{esc(alt or caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def missing(what: str, command: str) -> str:
    return f'<p class="missing">{esc(what)} is missing: run <code>{esc(command)}</code>.</p>'


def format_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}".replace(",", " ")
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return "—"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, np.generic))


def _short_list(values: list) -> str:
    if all(_is_scalar(v) for v in values):
        shown = ", ".join(format_number(v) for v in values[:MAX_LIST_ITEMS])
        more = f", … ({len(values)} values)" if len(values) > MAX_LIST_ITEMS else ""
        return f"[{shown}{more}]"
    return f"{len(values)} entries"


def value_html(value: Any, depth: int = 0) -> str:
    """Any JSON value as HTML: scalars formatted, lists shortened, dicts as nested tables (2 levels)."""
    if _is_scalar(value):
        return esc(format_number(value))
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and depth < 2:
            return records_table(value)
        return esc(_short_list(value))
    if isinstance(value, dict):
        if depth >= 2:
            return esc(f"{len(value)} fields")
        return key_value_table(value, depth + 1)
    return esc(type(value).__name__)


def key_value_table(data: dict, depth: int = 0, skip: Iterable[str] = ("figures",)) -> str:
    skip = set(skip)
    rows = [
        f"<tr><th>{esc(str(key).replace('_', ' '))}</th><td>{value_html(value, depth)}</td></tr>"
        for key, value in data.items()
        if key not in skip
    ]
    return f'<table class="kv">{"".join(rows)}</table>' if rows else ""


def records_table(records: list[dict], columns: list[str] | None = None, highlight: str | None = None) -> str:
    """A list of flat dicts as one table; `highlight` names the row key (first column) to emphasise."""
    if not records:
        return ""
    if columns is None:
        columns = []
        for record in records:
            columns += [c for c in record if c not in columns and c != "figures"]
    head = "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for record in records:
        first = str(record.get(columns[0], ""))
        attribute = ' class="hl"' if highlight is not None and first == highlight else ""
        cells = "".join(f"<td>{value_html(record.get(c), 2)}</td>" for c in columns)
        body.append(f"<tr{attribute}>{cells}</tr>")
    return f'<div class="scroll"><table class="records"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _read_json(path: Path, problems: list[str]) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.parent.name}/{path.name} could not be read ({exc.__class__.__name__}); it was left out")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.parent.name}/{path.name} is not a JSON object; it was left out")
        return None
    return data


def _figures(data: dict | None, folder: Path) -> list[tuple[Path, str]]:
    """The existing files of a JSON's "figures" list, with their captions."""
    out = []
    for entry in (data or {}).get("figures") or []:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            path = _inside(folder, entry["file"])
            if path is not None:
                out.append((path, str(entry.get("caption") or path.stem.replace("_", " "))))
    return out


# ----------------------------------------------------------------------------- sections


def _training_curves(history: pd.DataFrame) -> bytes | None:
    from latentatlas.plots import plt  # the package's headless matplotlib

    if "epoch" not in history or not {"train_loss", "val_loss"} & set(history.columns) or history.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for column, label in (("train_loss", "training"), ("val_loss", "validation (held out)")):
        if column in history and history[column].notna().any():
            ax.plot(history["epoch"], history[column], "-o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction loss (MSE)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _section_data(run: Run, problems: list[str]) -> str:
    parts = []
    config = _read_json(run.path / "config.json", problems) or {}
    if config:
        blocks = "".join(
            f'<div class="card"><h3>{esc(name)}</h3>{key_value_table(config[name])}</div>'
            for name in ("data", "model", "train")
            if isinstance(config.get(name), dict)
        )
        parts.append(f'<div class="cards">{blocks}</div>')
    state = _read_json(run.path / "train_state.json", problems)
    zinfo = _read_json(run.path / "zpoints.json", problems)
    facts = {}
    if state:
        facts.update(
            {
                k: state[k]
                for k in ("epochs_done", "n_train", "n_val", "train_loss", "val_loss", "best_val_loss")
                if k in state
            }
        )
    if zinfo:
        facts["z-points"] = zinfo.get("n")
        facts["latent dimension"] = zinfo.get("latent_dim")
        if isinstance(zinfo.get("subsets"), dict):
            facts.update({f"{name} z-points": count for name, count in zinfo["subsets"].items() if count})
    if facts:
        parts.append(key_value_table(facts))
    history_path = run.path / "history.csv"
    if history_path.is_file():
        try:
            history = pd.read_csv(history_path).apply(pd.to_numeric, errors="coerce")
        except (OSError, ValueError, pd.errors.ParserError):
            problems.append("history.csv could not be read; the training curves were left out")
            history = None
        png = _training_curves(history) if history is not None else None
        if png is not None:
            speed = ""
            if "images_per_s" in history and history["images_per_s"].notna().any():
                speed = f", {history['images_per_s'].median():.0f} images/s (median)"
            parts.append(figure_html(png, f"Training and validation loss per epoch ({len(history)} epochs{speed})"))
    else:
        parts.append(missing("The training history", f"latentatlas train --data SOURCE --out {run.path}"))
    recon = run.path / "reconstructions.png"
    if recon.is_file():
        summary = _read_json(run.path / "reconstructions.json", problems)
        caption = next((c for p, c in _figures(summary, run.path) if p.name == recon.name), None)
        parts.append(
            figure_html(recon, caption or "Validation images (odd rows) and their reconstructions (even rows)")
        )
    else:
        parts.append(missing("The reconstruction grid", f"latentatlas reconstruct {run.path}"))
    if zinfo is None:
        parts.append(missing("The z-point store", f"latentatlas encode {run.path}"))
    return "".join(parts)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _records(value: Any) -> list[dict]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _without(record: dict, *keys: str) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def _assign_figure(path: Path, caption: str) -> int:
    if path.name in ANALYSIS_FIGURE_SECTIONS:
        return ANALYSIS_FIGURE_SECTIONS[path.name]
    text = f"{path.stem} {caption}".lower()
    for section in (4, 3, 2):  # most specific first: "radii of uniform vectors" is section 4, not 2
        if any(word in text for word in SECTION_KEYWORDS[section]):
            return section
    return 2


def _bulk_numbers(analysis: dict) -> str:
    parts = []
    facts = {k: analysis[k] for k in ("n_points", "latent_dim", "subset") if k in analysis}
    facts.update(_dict(analysis.get("bulk")))
    if facts:
        parts.append(key_value_table(facts))
    dominant = _dict(analysis.get("dominant"))
    ranked = _records(dominant.get("components"))
    if ranked:
        rule = _dict(dominant.get("rule"))
        rule_text = ", ".join(f"{k.replace('_', ' ')} {format_number(v)}" for k, v in rule.items())
        parts.append(f"<h3>Dominant components ({len(ranked)}), ranked by their share of the squared radius</h3>")
        if rule_text:
            parts.append(f"<p>Rule: {esc(rule_text)}.</p>")
        parts.append(records_table(ranked[:16]))
    components = _records(analysis.get("components"))
    if components:
        table = pd.DataFrame(components)
        summary = {}
        for column, label in (
            ("hwhm_ratio", "measured / Gaussian half width"),
            ("ks_statistic", "KS distance to a Gaussian"),
            ("skewness", "skewness"),
            ("excess_kurtosis", "excess kurtosis"),
            ("std", "std"),
        ):
            if column in table and pd.api.types.is_numeric_dtype(table[column]):
                values = table[column].dropna()
                if len(values):
                    summary[f"{label}: median [min, max]"] = (
                        f"{format_number(values.median())} [{format_number(values.min())}, {format_number(values.max())}]"
                    )
        if summary:
            parts.append(f"<h3>All {len(components)} components: how Gaussian their distributions are</h3>")
            parts.append(key_value_table(summary))
    return "".join(parts)


def _correlation_numbers(analysis: dict) -> str:
    parts = []
    correlations = _dict(analysis.get("correlations"))
    if correlations:
        parts.append(key_value_table(_without(correlations, "strongest")))
        strongest = _records(correlations.get("strongest"))
        if strongest:
            parts.append("<h3>Strongest correlations</h3>")
            parts.append(records_table(strongest[:12]))
    planes = _records(analysis.get("planes"))
    if planes:
        rows = []
        for plane in planes:
            row = _without(plane, "ellipses")
            for ellipse in _records(plane.get("ellipses")):
                confidence = ellipse.get("confidence")
                if isinstance(confidence, (int, float)) and isinstance(ellipse.get("half_axes"), list):
                    row[f"{confidence:.0%} half axes"] = ellipse["half_axes"]
                    row[f"{confidence:.0%} tilt (deg)"] = ellipse.get("angle_deg")
            rows.append(row)
        parts.append("<h3>Confidence ellipses in selected planes</h3>")
        parts.append(records_table(rows))
    for key, title in (("pca", "Principal axes"), ("robust_core", "Robust (MCD) core against the plain covariance")):
        if _dict(analysis.get(key)):
            parts.append(f"<h3>{esc(title)}</h3>{key_value_table(analysis[key])}")
    return "".join(parts)


def _radius_numbers(analysis: dict) -> str:
    parts = []
    radii = _dict(analysis.get("radii"))
    if radii:
        parts.append("<h3>Radii |z| of the real z-points and of uniform vectors in [-b, b]^N</h3>")
        parts.append(key_value_table(_without(radii, "uniform", "data")))
        if _dict(radii.get("data")):
            parts.append(records_table([{"vectors": "real z-points", **radii["data"]}]))
        uniform = [_without(r, "simulated_radii") for r in _records(radii.get("uniform"))]
        if uniform:
            parts.append(records_table(uniform))
    origin = _dict(analysis.get("origin"))
    if origin:
        parts.append("<h3>The origin's position relative to the bulk</h3>")
        percentile = origin.get("percentile")
        if isinstance(percentile, (int, float)) and not isinstance(percentile, bool):
            where = (
                "outside the bulk"
                if percentile >= 99
                else "at the bulk's border"
                if percentile >= 90
                else "inside the bulk"
            )
            parts.append(
                f"<p>The origin is farther from the centre (in Mahalanobis distance) than "
                f"<b>{esc(format_number(percentile))} %</b> of the real z-points: it lies {esc(where)}.</p>"
            )
        parts.append(key_value_table(origin))
    if _dict(analysis.get("normality")):
        parts.append(
            f"<h3>Squared Mahalanobis distances against chi-square</h3>{key_value_table(analysis['normality'])}"
        )
    slices = _records(analysis.get("slices"))
    if slices:
        parts.append("<h3>Slices: real z-points with |z_j| &le; b for every component outside the plane</h3>")
        parts.append(records_table(slices))
    return "".join(parts)


ANALYSIS_KEYS = {
    2: ("n_points", "latent_dim", "subset", "bulk", "dominant", "components"),
    3: ("correlations", "planes", "pca", "robust_core"),
    4: ("radii", "origin", "normality", "slices"),
}
ANALYSIS_BOOKKEEPING = ("schema", "run", "options", "arrays", "figures")


def _analysis_sections(run: Run, problems: list[str]) -> dict[int, str]:
    folder = run.path / "analysis"
    analysis = _read_json(folder / "analysis.json", problems)
    command = f"latentatlas analyze {run.path}"
    if analysis is None:
        return {s: missing("The analysis (analysis/analysis.json)", command) for s in (2, 3, 4)}
    figures: dict[int, list[str]] = {2: [], 3: [], 4: []}
    for path, caption in _figures(analysis, folder):
        figures[_assign_figure(path, caption)].append(figure_html(path, caption))
    renderers = {2: _bulk_numbers, 3: _correlation_numbers, 4: _radius_numbers}
    known = {k for keys in ANALYSIS_KEYS.values() for k in keys} | set(ANALYSIS_BOOKKEEPING)
    sections = {}
    for section in (2, 3, 4):
        parts = [renderers[section](analysis)]
        parts += figures[section]
        if section == 4:
            # Fields this report does not know yet still appear, and the settings stay one click away.
            extra = {k: v for k, v in analysis.items() if k not in known}
            if extra:
                parts.append(f"<h3>Further analysis results</h3>{key_value_table(extra)}")
            settings = _dict(analysis.get("options"))
            if settings:
                parts.append(f"<details><summary>analysis options</summary>{key_value_table(settings)}</details>")
        sections[section] = "".join(parts) or '<p class="missing">The analysis recorded nothing for this part.</p>'
    return sections


def _sample_folders(run: Run, problems: list[str]) -> list[tuple[str, Path, dict]]:
    out = []
    root = run.path / "samples"
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            info = _read_json(folder / "info.json", problems) or {}
            if not info:
                info = _read_json(folder / "sampler.json", problems) or {}
            name = str(info.get("sampler") or info.get("name") or folder.name)
            out.append((name, folder, info))
    return out


def _evaluation_rows(run: Run, problems: list[str]) -> tuple[list[dict], dict | None]:
    evaluation = _read_json(run.path / "evaluation" / "evaluation.json", problems)
    rows = (evaluation or {}).get("rows")
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        return rows, evaluation
    csv = run.path / "evaluation" / "evaluation.csv"
    if csv.is_file():
        try:
            return pd.read_csv(csv).to_dict(orient="records"), evaluation
        except (OSError, ValueError, pd.errors.ParserError):
            problems.append("evaluation.csv could not be read; the evaluation table was left out")
    return [], evaluation


def _row_name(row: dict) -> str:
    return str(row.get("name") or row.get("sampler") or "")


def _sampler_block(name: str, folder: Path, info: dict, rows: list[dict]) -> str:
    parts = [f"<h3>{esc(name)}</h3>"]
    if folder.name != name:
        parts[0] = f"<h3>{esc(name)} <small>({esc(folder.name)})</small></h3>"
    figures = _figures(info, folder)
    if not figures and (folder / "grid.png").is_file():
        n = info.get("n")
        figures = [(folder / "grid.png", f"{format_number(n) + ' ' if n else ''}images decoded from {name} samples")]
    parts += [figure_html(path, caption) for path, caption in figures]
    noise = ("sampler", "name", "command", "run", "path")
    numbers = {k: v for k, v in info.items() if _is_scalar(v) and k not in noise}
    numbers.update(
        {
            k: v
            for k, v in info.items()
            if isinstance(v, dict)
            and v
            and all(_is_scalar(x) for x in v.values())
            and k not in ("params", "options", "files")
        }
    )
    params = info.get("params") or info.get("options")
    if isinstance(params, dict) and params:
        numbers["parameters"] = ", ".join(f"{k}={format_number(v)}" for k, v in params.items())
    if numbers:
        parts.append(key_value_table(numbers))
    matching = [r for r in rows if _row_name(r) in (name, folder.name)]
    if matching:
        parts.append(records_table(matching))
    return f'<div class="sampler">{"".join(parts)}</div>'


def _sampler_sections(run: Run, problems: list[str]) -> dict[int, str]:
    samples = _sample_folders(run, problems)
    rows, evaluation = _evaluation_rows(run, problems)
    uniform = [s for s in samples if s[0].startswith("uniform") or s[1].name.startswith("uniform")]
    statistical = [s for s in samples if s not in uniform]
    section5 = "".join(_sampler_block(*s, rows) for s in uniform) or missing(
        "A uniform-box sample", f"latentatlas sample {run.path} --sampler uniform-box"
    )
    parts = [_sampler_block(*s, rows) for s in statistical]
    if not statistical:
        parts.append(
            missing("Samples of the statistical samplers", f"latentatlas sample {run.path} --sampler gaussian")
        )
    if rows:
        reference = next((_row_name(r) for r in rows if "real" in _row_name(r)), None)
        parts.append("<h3>Evaluation of all samplers</h3>")
        parts.append(
            "<p>Precision / recall / density / coverage compare the sampled latent vectors with held-out real z-points "
            "(k nearest neighbours); the Mahalanobis column is the median percentile among the training z-points "
            "(50 for points like the real ones); FID / KID and the face rate judge the decoded images.</p>"
        )
        parts.append(records_table(rows, highlight=reference))
        settings = (evaluation or {}).get("settings")
        if isinstance(settings, dict):
            parts.append(f"<details><summary>evaluation settings</summary>{key_value_table(settings)}</details>")
        for path, caption in _figures(evaluation, run.path / "evaluation"):
            parts.append(figure_html(path, caption))
    else:
        parts.append(missing("The evaluation table", f"latentatlas evaluate {run.path}"))
    return {5: section5, 6: "".join(parts)}


def _path_section(run: Run, problems: list[str]) -> str:
    root = run.path / "paths"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    folders.sort(key=lambda p: not p.name.startswith("origin"))  # the story starts at the origin
    if not folders:
        return missing("Paths", f"latentatlas path {run.path}")
    parts = []
    for folder in folders:
        info = _read_json(folder / "info.json", problems) or {}
        parts.append(f'<div class="path"><h3>{esc(folder.name)}</h3>')
        figures = _figures(info, folder)
        if not figures:
            figures = [
                (folder / file, caption)
                for file, caption in (
                    (
                        "projection.png",
                        "The path (black) in a plane among the real z-points (blue), origin yellow, centre orange",
                    ),
                    ("grid.png", "Images decoded along the path, in order"),
                )
                if (folder / file).is_file()
            ]
        parts += [figure_html(path, caption) for path, caption in figures]
        numbers = {
            k: v
            for k, v in info.items()
            if k not in ("name", "command", "run", "path", "files")
            and (_is_scalar(v) or isinstance(v, list) or (isinstance(v, dict) and v))
        }
        if numbers:
            parts.append(key_value_table(numbers))
        points = info.get("points") if isinstance(info.get("points"), list) else None
        if points and all(isinstance(p, dict) for p in points):
            parts.append(records_table(points))
        parts.append("</div>")
    return "".join(parts)


INTRO = {
    1: "The autoencoder, the data it was trained on and how well it reconstructs held-out images.",
    2: "Each latent component of the real z-points has a nearly Gaussian distribution with its own mean and width; "
    "a few dominant components sit away from 0 and spread wider. Together they put the bulk's centre away from the origin.",
    3: "Components are linearly correlated: in coordinate planes the density forms nested, tilted ellipses.",
    4: "Vectors with independent components uniform in [-b, b] live on a thin spherical shell; the real z-points do not. "
    "The origin lies at the border of the bulk, and slices near the origin are almost empty.",
    5: "Decoding vectors from a common box [-b, b]^N (the naive construction) rarely gives a face: the points fall into voids.",
    6: "Samplers that use the measured centre, widths and correlations put their vectors inside the bulk, and faces appear.",
    7: "Straight paths from the origin to the centre and through the centre inside coordinate planes: faces appear near the centre.",
}

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d232b;background:#f6f7f9;margin:0}
header{background:#1d232b;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;color:#c5ccd6}main{max-width:1180px;margin:0 auto;padding:10px 24px 40px}
nav{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:8px 16px;margin:14px 0;display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{color:#1f6feb;text-decoration:none}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:6px 22px 18px;margin:16px 0}
h2{font-size:20px;border-bottom:1px solid #e3e7eb;padding-bottom:6px}h3{font-size:16px;margin:18px 0 6px}
p.intro{color:#3b444f}p.missing{background:#fff6e5;border-left:4px solid #f0a020;padding:6px 10px}
figure{margin:12px 0;display:inline-block;max-width:100%;vertical-align:top}
figure img{max-width:100%;border:1px solid #e3e7eb;image-rendering:auto}
figcaption{font-size:13px;color:#4a5563;max-width:760px}
table{border-collapse:collapse;font-size:13px;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e3e7eb;padding:3px 8px;text-align:left;vertical-align:top}
table.kv th{background:#f3f5f7;font-weight:600;white-space:nowrap}
table.records thead th{background:#f3f5f7;position:sticky;top:0}tr.hl td{background:#eef6ee;font-weight:600}
.scroll{overflow-x:auto}.cards{display:flex;flex-wrap:wrap;gap:12px}.card{flex:1;min-width:250px}
.sampler,.path{border-top:1px solid #eef0f2;margin-top:10px}code{background:#f0f2f4;padding:1px 4px;border-radius:3px}
.problems{color:#b42318}details{margin:8px 0}
"""


def build_report(run: Run | str | os.PathLike) -> str:
    """The report's HTML text for a run folder (nothing is written)."""
    run = run if isinstance(run, Run) else Run(run)
    problems: list[str] = []
    sections = {1: _section_data(run, problems)}
    sections.update(_analysis_sections(run, problems))
    sections.update(_sampler_sections(run, problems))
    sections[7] = _path_section(run, problems)
    anchors = {n: re.sub(r"[^a-z0-9]+", "-", SECTION_TITLES[n].lower()).strip("-") for n in SECTION_TITLES}
    nav = "".join(f'<a href="#{anchors[n]}">{esc(SECTION_TITLES[n])}</a>' for n in SECTION_TITLES)
    body = "".join(
        f'<section id="{anchors[n]}"><h2>{esc(SECTION_TITLES[n])}</h2><p class="intro">{esc(INTRO[n])}</p>{sections[n]}</section>'
        for n in SECTION_TITLES
    )
    if problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems)
        body += f'<section><h2>Files left out</h2><ul class="problems">{items}</ul></section>'
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>latentatlas report: {esc(run.path.name)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>latentatlas report: {esc(run.path.name)}</h1>"
        f"<p>{esc(str(run.path.resolve()))} · written {esc(stamp)} · "
        "where the encoder puts faces in latent space, and which latent vectors decode to faces</p></header>"
        f"<main><nav>{nav}</nav>{body}</main></body></html>\n"
    )


def write_report(run: Run | str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write RUN/report.html (or `out`) atomically and return its path."""
    run = run if isinstance(run, Run) else Run(run)
    path = Path(out) if out is not None else run.path / "report.html"
    if path.suffix.lower() not in (".html", ".htm"):
        raise LatentAtlasError(f"the report is an HTML file; give a name ending in .html, not {path.name}")
    text = build_report(run)
    write_text(path, text)
    return path


__all__ = ["build_report", "write_report"]
