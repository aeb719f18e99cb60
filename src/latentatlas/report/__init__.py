"""The self-contained HTML report of a run: `build.py` collects typed sections from the run's files
(`artifacts.py` reads them, `blocks.py` types the content, `samples.py` holds the sampler and path
sections), `templates/report.html.j2` renders them with autoescape, `report.css` styles the page."""

from latentatlas.report.build import SECTIONS, build_report, write_report

__all__ = ["SECTIONS", "build_report", "write_report"]
