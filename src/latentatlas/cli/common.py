"""Argument types and option groups shared by the commands: one line per user mistake, no usage dump."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentatlas.errors import LatentAtlasError
from latentatlas.samplers import SAMPLERS, sampler_options
from latentatlas.samplers.options import Option, float_list, int_list, options_of

# A comma list starting with a negative number ("-3,3", "-1.5,2"): argparse would read it as an option.
_NEGATIVE_LIST = re.compile(r"^-[\d.]+(,-?[\d.]*)+$")


def _attach_negative_lists(argv: Sequence[str]) -> list[str]:
    """Rewrite `--flag -3,3` as `--flag=-3,3` (and `-f -3,3` as `-f-3,3`), so every command receives its
    comma lists, negative ones included, and answers them with its own validation."""
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            out.extend(tokens[i:])
            break
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        is_flag = token.startswith("-") and "=" not in token and not _NEGATIVE_LIST.match(token)
        if is_flag and len(token) > 1 and following is not None and _NEGATIVE_LIST.match(following):
            out.append(f"{token}={following}" if token.startswith("--") else f"{token}{following}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


# The comma-list argument types, for the commands' own flags; the sampler flags' parsers live with the samplers.
_int_list = int_list
_float_list = float_list


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"latentatlas: error: {message} (see --help)\n")


def _plane(text: str) -> tuple[int, int]:
    values = _int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"a plane is two axis indices like 151,195, got {text!r}")
    return values[0], values[1]


# Each section below defines `_<name>_arguments(parser)` and `_<name>(args) -> int | None`, then registers them.
COMMANDS: list = []  # (name, help, add_arguments, run)


# ----------------------------------------------------------------------------- core: train, encode, reconstruct
def _path_argument(text: str) -> str:
    """A file or folder argument: refused at parse time when no file name could hold it (a NUL character)."""
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} contains a NUL character, which no file name can hold")
    return text


_path_argument.__name__ = "path"  # argparse names the type in its message: "invalid path value"


def _source_argument(text: str) -> str:
    """Paths are stored absolute in config.json so a run folder works from any working directory."""

    from latentatlas.config import BUILTIN_SOURCES

    if not text.strip():
        raise argparse.ArgumentTypeError("the data source is empty: give a folder, a zip or 'synthetic-faces'")
    _path_argument(text)
    return text if text in BUILTIN_SOURCES else str(Path(text).expanduser().resolve())


def _device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU when torch sees one, else cpu)")


def _weights_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights", choices=["best", "last"], default="best", help="best (lowest validation loss) or last epoch"
    )


def _given(args: argparse.Namespace, names: dict[str, str]) -> dict:
    """The options the user actually gave, renamed to config fields."""
    return {field: getattr(args, option) for option, field in names.items() if getattr(args, option) is not None}


# ----------------------------------------------------------------------------- sample, evaluate: sampler options
# The flags come from the registered samplers' options (`samplers.options`): every option with a help text
# is a flag --<name with dashes>, shared by all samplers that have it. Only the flags given are passed on,
# each to the samplers that have that parameter.


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _sampler_flags() -> dict[str, tuple[Option, list[str]]]:
    """Per flagged parameter name: its option and the samplers that have it, in the registry's order."""
    flags: dict[str, tuple[Option, list[str]]] = {}
    for sampler, cls in SAMPLERS.items():
        for name, spec in options_of(cls).items():
            if spec.help is None:
                continue
            known, owners = flags.setdefault(name, (spec, []))
            if known != spec:
                raise TypeError(f"samplers {owners[0]} and {sampler} declare option {name!r} differently")
            owners.append(sampler)
    return flags


@dataclass(frozen=True)
class _Refused:
    """A flag value its parser refused with a LatentAtlasError: reported with the flag once the command runs
    (argparse would turn the error into a traceback; `main` prints it as one line)."""

    message: str


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except LatentAtlasError as exc:
            return _Refused(str(exc))

    convert.__name__ = getattr(parse, "__name__", "value")  # argparse names it: "invalid int value: 'x'"
    return convert


def _list_of(parse: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """A comma list of values of one option (`evaluate --temperature 0.7,0.85,1.0`), each parsed by its parser."""

    def parse_list(text: str) -> list[Any]:
        return [parse(part.strip()) for part in text.split(",") if part.strip()]

    parse_list.__name__ = f"{getattr(parse, '__name__', 'value')} list"
    return parse_list


def _sampler_option_arguments(p: argparse.ArgumentParser, lists: dict[str, str] | None = None) -> None:
    """The sampler flags; `lists` maps the options this command takes as a comma list (one row per value) to
    what the list does (the command reads them itself: `sampler_options_given` leaves them out)."""
    lists = lists or {}
    options = p.add_argument_group("sampler options (only for the samplers that have them)")
    for name, (spec, owners) in _sampler_flags().items():
        parse = spec.parse or str
        listed = name in lists
        options.add_argument(
            _flag(name),
            dest=name,
            type=_argument_type(_list_of(parse) if listed else parse),
            choices=None if listed else spec.choices,
            help=f"{', '.join(owners)}: {spec.help}" + (f"; a comma list: {lists[name]}" if listed else ""),
        )


def sampler_options_given(args: argparse.Namespace, names: Sequence[str], lists: Sequence[str] = ()) -> dict[str, dict]:
    """Per sampler in `names`: the option flags given that it accepts. A flag that none of them accepts is an
    error (with one sampler: naming that sampler's own flags). The flags in `lists` (comma lists the command
    reads itself, `listed_option`) are left out."""
    flagged = {key: value for key, value in _sampler_flags().items() if key not in lists}
    given = {key: getattr(args, key) for key in flagged if getattr(args, key, None) is not None}
    for key, value in given.items():
        if isinstance(value, _Refused):
            raise LatentAtlasError(f"{_flag(key)} {value.message}")
    accepted = {name: sampler_options(name) for name in names}
    stray = [_flag(key) for key in given if not any(key in own for own in accepted.values())]
    if stray:
        if len(names) == 1:
            own = [_flag(key) for key in accepted[names[0]] if key in flagged]
            raise LatentAtlasError(
                f"{', '.join(stray)} does not apply to sampler {names[0]} (its options: {', '.join(own) or 'none'})"
            )
        raise LatentAtlasError(f"{', '.join(stray)} applies to none of the samplers {', '.join(names)}")
    return {name: {key: value for key, value in given.items() if key in own} for name, own in accepted.items()}


def listed_option(args: argparse.Namespace, name: str) -> list[Any] | None:
    """The values of a sampler flag taken as a comma list (`_sampler_option_arguments(lists=...)`); None when
    not given; a value its parser refused is reported with the flag."""
    value = getattr(args, name, None)
    if isinstance(value, _Refused):
        raise LatentAtlasError(f"{_flag(name)} {value.message}")
    return value
