"""The instrument registry: columns derived from it, instrument sets, a plug-in instrument, name-derived seeds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation import table
from latentatlas.evaluation.instruments import (
    INSTRUMENTS,
    Instrument,
    Reference,
    Row,
    instrument_set,
    metrics,
    register,
    unregister,
)
from latentatlas.evaluation.intervals import mean_interval, stream_seed
from latentatlas.evaluation.score import Metric, Score
from latentatlas.pipelines.evaluate import evaluate_run

QUICK = ["latent_knn", "mahalanobis", "radius", "latent_copies", "log_likelihood", "void_share", "haar_faces"]


def test_every_registered_column_is_a_table_column_in_registry_order():
    keys = [metric.key for cls in INSTRUMENTS.values() for metric in cls.columns]
    assert list(table.metric_keys()) == keys == [metric.key for metric in metrics()]
    assert len(set(keys)) == len(keys)
    assert table.METRIC_KEYS[:4] == ("precision", "recall", "density", "coverage")  # today's column order kept
    assert set(table.METRIC_KEYS) == set(keys)


def test_instrument_sets_select_by_level_and_switches():
    def names(*args, **kwargs) -> list[str]:
        return [instrument.name for instrument in instrument_set(*args, **kwargs)]

    copy_tests = ["latent_ct", "latent_authenticity"]
    assert names("quick") == [*QUICK, "classes", *copy_tests]
    assert names("standard") == [*QUICK[:6], "inception", "haar_faces", "classes", *copy_tests]
    full = names("full")
    assert full == [*QUICK[:6], "inception", "haar_faces", "cnn_faces", "face_embeddings", "face_copies", *full[-5:]]
    assert full[-5:] == ["classes", *copy_tests, "face_ct", "face_authenticity"]
    assert set(names("full", fid_scores=False)) == set(full) - {"inception"}
    assert set(names("full", faces=False)) == set(full) - {
        "haar_faces",
        "cnn_faces",
        "face_embeddings",
        "face_copies",
        "face_ct",
        "face_authenticity",
    }
    assert instrument_set("quick")[0] is not instrument_set("quick")[0]  # fresh instances: prepared per evaluation
    with pytest.raises(LatentAtlasError, match="instrument set must be one of quick, standard, full, got 'fast'"):
        instrument_set("fast")


class MedianNorm(Instrument):
    """A plug-in for the test: the median norm of the row's z-points over the held-out median norm."""

    name = "median_norm"
    columns = (Metric("norm_ratio", None, "median norm of the row's z-points / of the held-out z-points"),)

    def prepare(self, reference: Reference) -> None:
        self.held = float(np.median(np.linalg.norm(reference.z, axis=1)))
        self.seed = stream_seed(reference.seed, self.name)

    def score(self, row: Row) -> dict[str, Score]:
        ratio = np.linalg.norm(row.z, axis=1) / self.held
        return {"norm_ratio": mean_interval(ratio, seed=self.seed)}

    def settings(self) -> dict:
        return {"median_norm": {"held_out_median": self.held}}


@pytest.fixture
def plug_in():
    register(MedianNorm)
    yield MedianNorm
    unregister(MedianNorm.name)


def test_a_registered_instrument_is_a_column_and_a_setting(plug_in, tiny_run_copy):
    result = evaluate_run(
        tiny_run_copy, samplers=["gaussian"], n=100, k=3, instruments="quick", faces=False, progress=False, write=False
    )
    norms = np.linalg.norm(tiny_run_copy.zpoints("val").astype(np.float64), axis=1)  # n = 100: every held-out point
    assert result.settings["median_norm"]["held_out_median"] == pytest.approx(np.median(norms))
    reconstruction = result.row("reconstruction").scores["norm_ratio"]  # its z-points are the held-out ones
    assert reconstruction.value == pytest.approx(norms.mean() / np.median(norms))
    for row in result.rows:
        record = row.record()
        assert record["norm_ratio_low"] <= record["norm_ratio"] <= record["norm_ratio_high"], row.name
    assert "norm_ratio" in result.table.columns and "| norm_ratio |" in table.table_markdown(result.rows)


def test_register_refuses_taken_names_and_columns(plug_in):
    with pytest.raises(LatentAtlasError, match="already registered"):
        register(MedianNorm)

    class Clash(MedianNorm):
        name = "clash"
        columns = (Metric("precision", True, "a second precision"),)

    with pytest.raises(LatentAtlasError, match=r"columns of its own \(taken: \['precision'\]\)"):
        register(Clash)
    assert "clash" not in INSTRUMENTS


def test_random_streams_derive_from_the_seed_and_the_name():
    names = {metric.key for metric in metrics()} | set(INSTRUMENTS)  # (some instruments are named as their column)
    seeds = [stream_seed(0, name) for name in names]
    assert len(set(seeds)) == len(seeds)  # one stream per column and per instrument
    assert stream_seed(0, "precision") == 3045342385  # fixed for good: the same in every process and release
    assert stream_seed(1, "precision") != stream_seed(0, "precision")
    other = subprocess.run(  # a fresh interpreter (another hash salt) derives the same stream
        [
            sys.executable,
            "-c",
            "from latentatlas.evaluation.intervals import stream_seed; print(stream_seed(7, 'fid'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(other.stdout) == stream_seed(7, "fid")
