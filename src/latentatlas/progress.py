"""Progress on stderr, the one way every command shows it: a tqdm bar on a terminal, plain lines otherwise.

A batch job's log (stderr not a terminal) gets the same content as the bar, as one line per update at most
every `line_every` seconds plus the last one: count, total, elapsed time and time left.
"""

from __future__ import annotations

import sys
import time
from typing import Any

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
    `line_every` seconds and always the last.
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
    ):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.line_every = line_every
        self.done = 0
        self.started = time.perf_counter()
        self._last_line = -float("inf")
        self._bar: Any = None
        if enabled and self.terminal:
            self._bar = tqdm(total=self.total, desc=desc, unit=unit, leave=leave, mininterval=0, file=sys.stderr)

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
        if now - self._last_line < self.line_every and self.done < self.total:
            return
        self._last_line = now
        print(self.line(note, now), file=sys.stderr, flush=True)

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
