"""The `latentatlas` command: flags -> config -> pipelines.

User mistakes raise LatentAtlasError anywhere below; `main` prints them as one line and exits 2.
The commands live in `model` (train, encode, reconstruct, export, import), `latent` (analyze, sample,
path, attributes) and `results` (evaluate, report, explore, sweep, demo); `common` holds the shared
argument types.
"""

from __future__ import annotations

import argparse
import sys
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_negative_lists(sys.argv[1:] if argv is None else argv))
    try:
        return args.run(args) or 0
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
