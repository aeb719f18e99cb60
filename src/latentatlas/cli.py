"""The `latentatlas` command. Each subcommand parses its options, then calls the Python API.

User mistakes raise LatentAtlasError anywhere below; `main` prints them as one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from latentatlas.errors import LatentAtlasError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"latentatlas: error: {message} (see --help)\n")


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _plane(text: str) -> tuple[int, int]:
    values = _int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"a plane is two axis indices like 151,195, got {text!r}")
    return values[0], values[1]


# Each section below defines `_<name>_arguments(parser)` and `_<name>(args) -> int | None`, then registers them.
COMMANDS: list = []  # (name, help, add_arguments, run)

# ----------------------------------------------------------------------------- core: train, encode, reconstruct
# ----------------------------------------------------------------------------- analyze
# ----------------------------------------------------------------------------- sample, path
# ----------------------------------------------------------------------------- evaluate
# ----------------------------------------------------------------------------- report, explore
# ----------------------------------------------------------------------------- demo


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="latentatlas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text, add_arguments, run in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except LatentAtlasError as exc:
        print(f"latentatlas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentatlas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
