"""The interactive explorer: a local web app (FastAPI) over one run folder.

`state.py` computes what a click needs from the run, `app.py` serves it (routes, hardening in
`security.py`), `static/` holds the plain-JavaScript front end.
"""

from latentatlas.explorer.app import MAX_BODY_BYTES, allowed_hosts, create_app, serve
from latentatlas.explorer.state import MAX_DISPLAY_POINTS, MAX_SAMPLES, MAX_STEPS, Explorer, ExplorerState

__all__ = [
    "Explorer",
    "ExplorerState",
    "create_app",
    "serve",
    "allowed_hosts",
    "MAX_BODY_BYTES",
    "MAX_SAMPLES",
    "MAX_STEPS",
    "MAX_DISPLAY_POINTS",
]
