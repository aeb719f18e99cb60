"""The `latentatlas` command: flags -> config -> pipelines.

User mistakes raise LatentAtlasError anywhere below; `main` prints them as one line and exits 2.
The commands live in `model` (train, encode, reconstruct, export, import), `latent` (analyze, sample,
path, attributes) and `results` (evaluate, report, explore, sweep, demo); `common` holds the shared
argument types.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from latentatlas import __version__
from latentatlas.cli import latent, model, results
from latentatlas.cli.common import _attach_negative_lists, _Parser
from latentatlas.errors import LatentAtlasError
from latentatlas.extras import missing_extra_hint

COMMANDS = [*model.COMMANDS, *latent.COMMANDS, *results.COMMANDS]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="latentatlas",
        description="Train a convolutional autoencoder, map the region its encoder fills in latent space, "
        "and decode statistically built latent vectors. Every command takes a run folder.",
    )
    parser.add_argument("--version", action="version", version=f"latentatlas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text, add_arguments, run in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the command unwinds like an interrupt: unfinished artifact
    folders are removed, locks released and the face-model worker processes stopped at exit. Without it the
    default action ended the process at once and left its workers (and their forkserver) running, orphaned."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_negative_lists(sys.argv[1:] if argv is None else argv))
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return args.run(args) or 0
    except Terminated:
        print("latentatlas: stopped by SIGTERM", file=sys.stderr)
        return 128 + signal.SIGTERM
    except LatentAtlasError as exc:
        print(f"latentatlas: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional part (an extra) that is not installed: its install line
        hint = missing_extra_hint(exc)
        if hint is None:
            raise
        print(f"latentatlas: error: {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentatlas: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
