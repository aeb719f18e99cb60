"""The top of a run's report.html as a PNG, as a reader sees it in Chromium (README and docs/images pictures).

    python scripts/report_screenshot.py RUN/report.html docs/images/report-summary-NAME.png [--width 1280 --height 800]

Needs Playwright and a Chromium (`chromium` on PATH or LATENTATLAS_CHROMIUM), as the browser tests do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    chromium = os.environ.get("LATENTATLAS_CHROMIUM") or shutil.which("chromium")
    if not args.report.is_file() or chromium is None:
        print(f"needs {args.report} and a chromium on PATH", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.report.resolve().as_uri())
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"wrote {args.out} ({args.width} x {args.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
