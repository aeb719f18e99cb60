"""Running the CLI in-process from tests."""

from __future__ import annotations


def exit_status(argv: list[str]) -> int:
    """main's return value, or the status of argparse's own exit (it exits on unknown choices)."""
    from latentatlas.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)
