"""The self-contained HTML report of a run: `build.py` collects typed sections from the run's files in the order
of the series after a summary (`summary.py` computes it, `ranking.py` ranks the samplers, `summary_section.py`
adds its figures; `common.py` lists the sections; `artifacts.py` reads the files, `blocks.py` types the
content, `analysis_sections.py` gives each finding of the analysis its sub-section, `samples.py` the sampler
and path sections, `attributes.py` the attribute probes, `sweep.py` the sweep a run belongs to, `maps.py` the
UMAP map), `templates/report.html.j2` renders them with autoescape, `report.css` styles the page."""

from latentatlas.report.build import SECTIONS, build_report, write_report

__all__ = ["SECTIONS", "build_report", "write_report"]
