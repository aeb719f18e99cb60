"""Sampler options: every parameter of a sampler is a typed dataclass field declared with `option(...)`.

A field carries its default, the check of a value (run by `Sampler.validate_params`) and, when it has a
help text, a command-line flag: `--<name with dashes>`, its text turned into a value by `parse`. The CLI
derives its sampler flags from these fields alone, so a new sampler's options need no edit elsewhere:

    class Resample(Sampler):
        jitter: float | str = option(0.1, help="fraction of std, or 'scott'", parse=number_or_word("scott"))
        max_points: int | None = option(None, check=optional(checks.positive_int))

Samplers that share a parameter share its flag (`--epochs` for flow and two-stage, both from
`NeuralSampler`); two samplers that declare the same flagged name must declare the same `Option`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from latentatlas import checks
from latentatlas.errors import LatentAtlasError

T = TypeVar("T")
Check = Callable[[Any, str], Any]  # check(value, name): raises LatentAtlasError for a bad value


@dataclass(frozen=True)
class Option:
    """What a sampler parameter declares beyond its type and default.

    `help` is the command-line help (None: a parameter of the Python API only, no flag). `parse` turns the
    flag's text into the value (an argparse type: bad text raises `argparse.ArgumentTypeError` or
    ValueError; a well-formed text of the wrong shape may raise LatentAtlasError, reported with the flag).
    `choices` are the accepted values (checked by `validate_params` and offered by argparse); `check(value,
    name)` raises LatentAtlasError for a bad value.
    """

    help: str | None = None
    parse: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    check: Check | None = None

    def validate(self, value: Any, name: str) -> None:
        """Raise LatentAtlasError when `value` is not one of `choices` or fails `check`."""
        if self.choices is not None and value not in self.choices:
            raise LatentAtlasError(f"{name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.check is not None:
            self.check(value, name)


def option(
    default: T,
    *,
    help: str | None = None,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[Any, ...] | None = None,
    check: Check | None = None,
) -> T:
    """A sampler parameter (a dataclass field) with its default, help text, parser and check."""
    if help is not None and parse is None and choices is None:
        raise TypeError("a flagged option needs parse= (text to value) or choices=")
    return field(default=default, metadata={"option": Option(help, parse, choices, check)})  # type: ignore[return-value]


def options_of(cls: type) -> dict[str, Option]:
    """A sampler class's parameters and their `Option`s: its own first, then the inherited ones (flow: kind,
    transforms, hidden, then `NeuralSampler`'s training options), the order of `get_params`."""
    if not dataclasses.is_dataclass(cls):
        return {}
    declared = {f.name: f.metadata.get("option", Option()) for f in dataclasses.fields(cls)}
    ordered: dict[str, Option] = {}
    for klass in cls.__mro__:
        for name in klass.__dict__.get("__annotations__", {}):
            if name in declared and name not in ordered:
                ordered[name] = declared[name]
    return ordered


def temperature_option() -> float:
    """The `temperature` parameter, one declaration for every sampler that has one (so they share the
    `--temperature` flag): the factor on the standard deviation of the sampler's base noise. 1 draws from
    the fitted law; below 1 draws nearer its mode (the Gaussians scale their covariance by T², a mixture
    each component's, the flow and the diffusion sampler their base noise), trading variety for quality."""
    return option(
        1.0,
        help="factor on the base noise's standard deviation (1: the fitted law; below 1: nearer its mode)",
        parse=float,
        check=_positive_temperature,
    )


def _positive_temperature(value: Any, name: str) -> None:
    checks.positive_number(value, name, limit=100.0)


# ----------------------------------------------------------------------------- checks


def optional(check: Check) -> Check:
    """`check`, letting None through (an option whose None means "not set": use the other way)."""

    def check_unless_none(value: Any, name: str) -> None:
        if value is not None:
            check(value, name)

    return check_unless_none


# ----------------------------------------------------------------------------- parsers (argparse types)


def int_list(text: str) -> list[int]:
    """Comma-separated integers, e.g. "1,2,4"."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def float_list(text: str) -> list[float]:
    """Comma-separated numbers, e.g. "1,99" or "-3,3"."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def int_tuple(text: str) -> tuple[int, ...]:
    """Comma-separated integers as a tuple (the type of a sampler's sequence parameter)."""
    return tuple(int_list(text))


def number_pair(text: str) -> tuple[float, float]:
    """Two comma-separated numbers, e.g. "1,99"."""
    values = float_list(text)
    if len(values) != 2:
        raise LatentAtlasError(f"needs two numbers like 1,99, got {values}")
    return values[0], values[1]


def number_or_word(word: str) -> Callable[[str], float | str]:
    """A number, or the one keyword an option also accepts (--b matched, --jitter scott)."""

    def parse(text: str) -> float | str:
        if text == word:
            return text
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or {word!r}, got {text!r}") from None

    return parse
