"""Progress on stderr, the one way every command shows it: a tqdm bar on a terminal, plain lines otherwise.

A batch job's log (stderr not a terminal) gets the same content as the bar, as one line per update at most
every `line_every` seconds plus the last one: count, total, elapsed time and time left.

- `Progress`: the bar / the lines, for any count.
- `epoch_progress()`: a sampler's training (flow, two-stage), epoch by epoch.
- `log_line(text)`: one line that a terminal and a log both get (the autoencoder's epoch summary).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from tqdm.auto import tqdm


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class Progress:
    """`with Progress(total, desc, unit) as bar: bar.update(k, note)`; `enabled=False` shows nothing.

    On a terminal it is a tqdm bar (with `note` as its postfix); off a terminal it prints
    ``latentatlas: DESC: DONE/TOTAL UNIT, ELAPSED elapsed, LEFT left (NOTE)`` lines, at most one every
    `line_every` seconds and always the last (unless `final_line=False`: the caller prints a summary then).
    The bar redraws on every update unless `redraw_every` (seconds) says otherwise (many fast updates).
    `lines=False`: the bar only, nothing off a terminal (short passes, whose lines would only crowd a log).
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "it",
        *,
        enabled: bool = True,
        leave: bool = True,
        line_every: float = 10.0,
        terminal: bool | None = None,
        final_line: bool = True,
        redraw_every: float = 0.0,
        lines: bool = True,
    ):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.enabled = enabled and (lines or self.terminal)
        self.line_every = line_every
        self.final_line = final_line
        self.done = 0
        self.started = time.perf_counter()
        self._last_line = -float("inf")
        self._bar: Any = None
        if enabled and self.terminal:
            self._bar = tqdm(
                total=self.total, desc=desc, unit=unit, leave=leave, mininterval=redraw_every, file=sys.stderr
            )

    def rewind(self, seconds: float) -> None:
        """Count `seconds` already spent before the first update (e.g. an epoch reported after it ended)."""
        self.started -= seconds
        if self._bar is not None:
            self._bar.start_t -= seconds
            self._bar.last_print_t -= seconds

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        last = self.done >= self.total
        if (now - self._last_line < self.line_every and not last) or (last and not self.final_line):
            return
        self._last_line = now
        log_line(self.line(note, now))

    def line(self, note: str = "", now: float | None = None) -> str:
        """The progress line printed off a terminal."""
        elapsed = (time.perf_counter() if now is None else now) - self.started
        timing = f"{_clock(elapsed)} elapsed"
        if 0 < self.done < self.total:
            timing += f", {_clock(elapsed / self.done * (self.total - self.done))} left"
        extra = f" ({note})" if note else ""
        return f"latentatlas: {self.desc}: {self.done}/{self.total} {self.unit}, {timing}{extra}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log_line(text: str) -> None:
    """One line on stderr, flushed at once (a batch job's log shows it as it happens)."""
    print(text, file=sys.stderr, flush=True)


class EpochReportLike(Protocol):
    """What `epoch_progress` reads of an epoch (`samplers.EpochReport`; no import: progress is a foundation)."""

    sampler: str
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    best_epoch: int
    seconds: float
    loss_unit: str
    done: bool


def epoch_progress(terminal: bool | None = None) -> Callable[[Any], None]:
    """Progress of a sampler's training (flow, two-stage: minutes on a CPU), the callback its `fit` takes:
    on a terminal one `Progress` bar over the epochs with the losses as its note (gone when the fit ends),
    else one line per epoch."""
    bar: list[Progress] = []

    def report(epoch: EpochReportLike) -> None:
        losses = (
            f"train {epoch.train_loss:.4f}, val {epoch.val_loss:.4f} {epoch.loss_unit}, best epoch {epoch.best_epoch}"
        )
        on_terminal = sys.stderr.isatty() if terminal is None else terminal
        if on_terminal:
            if not bar:
                bar.append(Progress(epoch.epochs, f"fit {epoch.sampler}", "epoch", leave=False, terminal=True))
                bar[0].rewind(epoch.seconds)  # the first report comes after the first epoch: count its time
            bar[0].update(1, losses)
            if epoch.done:
                bar.pop().close()
        else:
            stopped = " (early stop)" if epoch.done and epoch.epoch < epoch.epochs else ""
            line = f"latentatlas: {epoch.sampler} epoch {epoch.epoch}/{epoch.epochs}: {losses}"
            log_line(f"{line}, {epoch.seconds:.1f} s{stopped}")

    return report
