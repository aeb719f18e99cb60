"""report.html in a real headless Chromium: the summary is the first section, one row per finding of the
run's JSON files with the JSON's verdict, it fits one 1280 x 800 screen, and nothing scrolls sideways at
390 px. Skipped like the explorer's browser tests when Playwright or Chromium is missing (not under CI)."""

from __future__ import annotations

import json
import shutil

import pytest

from latentatlas.report import write_report
from latentatlas.store import Run
from test_explorer_browser import browser  # noqa: F401  (the fixture: one Chromium for the module)

pytestmark = pytest.mark.browser


def finding(key: str, verdict: str) -> dict:
    return {"key": key, "claim": f"the claim of {key}", "verdict": verdict, "evidence": f"numbers of {key}"}


def score(value: float, half: float) -> dict:
    return {"": value, "_low": value - half, "_high": value + half}


def record(name: str, kind: str, **scores: tuple[float, float]) -> dict:
    out: dict = {"name": name, "kind": kind, "n": 60, "seed": 0, "options": {}}
    if kind == "sampler":
        out["sampler"] = name
    for key, (value, half) in scores.items():
        out.update({f"{key}{suffix}": v for suffix, v in score(value, half).items()})
    return out


@pytest.fixture(scope="module")
def report_run(tiny_analysed_run, tmp_path_factory) -> Run:
    """The analysed tiny run with a hand-made evaluation and attribute analysis, each with findings."""
    run = Run(shutil.copytree(tiny_analysed_run.path, tmp_path_factory.mktemp("report-browser") / "run"))
    rows = [
        record("real (held-out)", "reference", precision=(0.9, 0.04), coverage=(0.9, 0.04)),
        record("reconstruction", "reference", fid=(20.0, 2.0)),
        record("gaussian", "sampler", precision=(0.7, 0.05), coverage=(0.8, 0.05), fid=(21.0, 2.0)),
        record("uniform-box", "sampler", precision=(0.0, 0.01), coverage=(0.05, 0.02), fid=(90.0, 4.0)),
    ]
    evaluation = {
        "settings": {"n": 60},
        "rows": rows,
        "findings": [finding("uniform-box-misses", "agrees"), finding("full-covariance-hits", "undecided")],
    }
    (run.path / "evaluation").mkdir()
    (run.path / "evaluation" / "evaluation.json").write_text(json.dumps(evaluation))
    attributes = {
        "attributes": [{"name": "class", "auc": 0.97}],
        "findings": [finding("attributes-linear", "mixed")],
    }
    (run.path / "attributes").mkdir()
    (run.path / "attributes" / "attributes.json").write_text(json.dumps(attributes))
    write_report(run, umap=False)
    return run


def findings_in_json(run: Run) -> dict[str, str]:
    out = {}
    for file in ("analysis/analysis.json", "evaluation/evaluation.json", "attributes/attributes.json"):
        out.update({f["key"]: f["verdict"] for f in json.loads((run.path / file).read_text())["findings"]})
    return out


@pytest.fixture
def open_report(browser, report_run):  # noqa: F811  (the imported fixture)
    contexts = []

    def opened(width: int, height: int):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.goto((report_run.path / "report.html").as_uri())
        return page

    yield opened
    for context in contexts:
        context.close()


def test_the_summary_comes_first_with_one_row_per_finding(open_report, report_run):
    page = open_report(1280, 800)
    assert page.eval_on_selector("main > section", "e => e.id") == "summary"
    cells = page.eval_on_selector_all(
        "#summary table.findings tbody tr",
        "rows => rows.map(r => [r.dataset.key, r.querySelector('td.v').textContent.trim()])",
    )
    expected = findings_in_json(report_run)
    measured = [(key, verdict) for key, verdict in cells if verdict != "not measured"]
    assert sorted(measured) == sorted(expected.items())  # one row each, the JSON's verdict as its text
    assert len(expected) == 9 + 2 + 1
    links = page.eval_on_selector_all("#summary table.findings a", "links => links.map(a => a.hash)")
    for link in links:  # every link lands on an element of the page
        assert page.locator(link).count() == 1, link
    sentence = page.text_content("#summary p.ranking")
    assert sentence.startswith("At n = 60, by FID: gaussian is indistinguishable from the reconstruction ceiling")
    assert "uniform-box misses the data" in sentence
    assert page.locator("#summary a[href='#appendix']").count() == 1


def test_the_summary_fits_one_screen_and_nothing_scrolls_sideways(open_report):
    page = open_report(1280, 800)
    bottom = page.eval_on_selector("#summary table.findings", "e => e.getBoundingClientRect().bottom")
    assert bottom <= 800
    narrow = open_report(390, 844)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 390
