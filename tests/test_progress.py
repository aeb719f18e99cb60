"""Progress on stderr: a bar on a terminal, lines in a log, for counts, epochs and the training loop."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from latentatlas import progress
from latentatlas.progress import Progress, epoch_progress, log_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_off_a_terminal_at_most_every_interval_and_always_the_last(capsys, monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 12.0, 13.0])  # started, then one reading per update
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    with Progress(4, "encode", "img", terminal=False) as bar:
        for note in ("a", "b", "c", "d"):
            bar.update(1, note)
    assert capsys.readouterr().err.splitlines() == [
        "latentatlas: encode: 1/4 img, 00:01 elapsed, 00:03 left (a)",
        "latentatlas: encode: 3/4 img, 00:12 elapsed, 00:04 left (c)",
        "latentatlas: encode: 4/4 img, 00:13 elapsed (d)",
    ]


def test_without_a_final_line_the_caller_prints_the_summary(capsys):
    with Progress(2, "epoch 1/1", "img", terminal=False, final_line=False) as bar:
        bar.update(1)
        bar.update(1)
    log_line("epoch 1/1: train loss 0.1")
    assert capsys.readouterr().err.splitlines() == [
        "latentatlas: epoch 1/1: 1/2 img, 00:00 elapsed, 00:00 left",
        "epoch 1/1: train loss 0.1",
    ]


def test_disabled_progress_shows_nothing_but_counts(capsys):
    with Progress(3, "decode", enabled=False, terminal=False) as bar:
        bar.update(3)
    assert bar.done == 3 and capsys.readouterr().err == ""


def test_a_bar_only_progress_is_silent_in_a_log_and_a_bar_on_a_terminal(capsys, monkeypatch):
    with Progress(3, "moments", "rows", lines=False, terminal=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with Progress(3, "moments", "rows", lines=False) as bar:
        bar.update(3)
    assert "moments" in terminal.getvalue() and "3/3" in terminal.getvalue()


def _epoch(epoch: int, epochs: int, done: bool) -> SimpleNamespace:
    return SimpleNamespace(
        sampler="flow", epoch=epoch, epochs=epochs, train_loss=1.0 / epoch, val_loss=2.0 / epoch,
        best_epoch=epoch, seconds=3.0, done=done, loss_unit="nats/dim",
    )  # fmt: skip


@pytest.mark.parametrize("stop", [2, 3])
def test_epoch_progress_lines_mark_an_early_stop(capsys, stop):
    report = epoch_progress(terminal=False)
    for epoch in range(1, stop + 1):
        report(_epoch(epoch, 3, epoch == stop))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "latentatlas: flow epoch 1/3: train 1.0000, val 2.0000 nats/dim, best epoch 1, 3.0 s"
    assert len(lines) == stop and lines[-1].endswith("(early stop)") == (stop < 3)


def test_a_diffusion_fit_reports_its_loss_in_its_own_unit(capsys):
    from latentatlas.samplers import make_sampler

    z = np.random.default_rng(0).standard_normal((64, 3))
    make_sampler("diffusion", epochs=2, width=16, blocks=1).fit(z, progress=epoch_progress(terminal=False))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all("MSE/dim (flow matching)" in line and "nats" not in line for line in lines)


def test_epoch_progress_on_a_terminal_is_one_bar_that_goes_at_the_end(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    report = epoch_progress()
    for epoch in (1, 2):
        report(_epoch(epoch, 2, epoch == 2))
    shown = terminal.getvalue()
    assert "fit flow" in shown and "2/2" in shown and "best epoch 2" in shown
    assert "latentatlas: flow epoch" not in shown
