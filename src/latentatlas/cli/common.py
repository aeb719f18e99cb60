"""Argument types and option groups shared by the commands: one line per user mistake, no usage dump."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from latentatlas.errors import LatentAtlasError

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
def _source_argument(text: str) -> str:
    """Paths are stored absolute in config.json so a run folder works from any working directory."""

    from latentatlas.config import BUILTIN_SOURCES

    if not text.strip():
        raise argparse.ArgumentTypeError("the data source is empty: give a folder, a zip or 'synthetic-faces'")
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


# ----------------------------------------------------------------------------- sample, path
def _number_or_word(word: str):
    """A number, or the one keyword an option also accepts (--b matched, --jitter scott)."""

    def parse(text: str) -> float | str:
        if text == word:
            return text
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or {word!r}, got {text!r}") from None

    return parse


# Sampler-option flags: argparse dest (= sampler parameter name) -> the flag the user types. Only the flags
# the user gives are passed on, each to the samplers that have that parameter.
_SAMPLER_FLAGS = {
    "b": "--b",
    "percentiles": "--percentiles",
    "k_sigma": "--k-sigma",
    "components": "--components",
    "confidence": "--confidence",
    "jitter": "--jitter",
    "support_fraction": "--support-fraction",
    "candidates": "--candidates",
    "criterion": "--criterion",
    "epochs": "--epochs",
    "max_regions": "--max-regions",
    "pca_dims": "--pca-dims",
}


def _sampler_option_arguments(p: argparse.ArgumentParser) -> None:
    options = p.add_argument_group("sampler options (only for the samplers that have them)")
    options.add_argument("--b", type=_number_or_word("matched"), help="uniform-box: half-width, or 'matched'")
    options.add_argument("--percentiles", type=_float_list, help="component-box: interval percentiles, e.g. 1,99")
    options.add_argument("--k-sigma", type=float, help="component-box: intervals mean ± k·std instead")
    options.add_argument("--components", type=int, help="gmm: number of mixture components (default 10)")
    options.add_argument("--confidence", type=float, help="ellipsoid: confidence level in (0, 1) (default 0.9)")
    options.add_argument("--jitter", type=_number_or_word("scott"), help="resample: fraction of std, or 'scott'")
    options.add_argument("--support-fraction", type=float, help="robust-gaussian: MCD support fraction in (0, 1]")
    options.add_argument("--candidates", type=_int_list, help="gmm-bic: component counts to sweep, e.g. 1,2,4,8,16")
    options.add_argument("--criterion", choices=["bic", "heldout"], help="gmm-bic: how to choose (default bic)")
    options.add_argument("--epochs", type=int, help="flow, two-stage: at most this many epochs (default 100)")
    options.add_argument("--max-regions", type=int, help="regions: most regions tried in the BIC sweep (default 12)")
    options.add_argument("--pca-dims", type=int, help="regions: principal axes the regions are found on (default 10)")


def sampler_options_given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, dict]:
    """Per sampler in `names`: the option flags given that it accepts. A flag that none of them accepts is an
    error (with one sampler: naming that sampler's own flags)."""
    from latentatlas.samplers import sampler_options

    given = {key: getattr(args, key) for key in _SAMPLER_FLAGS if getattr(args, key, None) is not None}
    if "percentiles" in given:
        if len(given["percentiles"]) != 2:
            raise LatentAtlasError(f"--percentiles needs two numbers like 1,99, got {given['percentiles']}")
        given["percentiles"] = tuple(given["percentiles"])
    if "candidates" in given:
        given["candidates"] = tuple(given["candidates"])
    accepted = {name: sampler_options(name) for name in names}
    stray = [_SAMPLER_FLAGS[key] for key in given if not any(key in own for own in accepted.values())]
    if stray:
        if len(names) == 1:
            own = [_SAMPLER_FLAGS[key] for key in accepted[names[0]] if key in _SAMPLER_FLAGS]
            raise LatentAtlasError(
                f"{', '.join(stray)} does not apply to sampler {names[0]} (its options: {', '.join(own) or 'none'})"
            )
        raise LatentAtlasError(f"{', '.join(stray)} applies to none of the samplers {', '.join(names)}")
    return {name: {key: value for key, value in given.items() if key in own} for name, own in accepted.items()}
