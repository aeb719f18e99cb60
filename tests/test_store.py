"""The run folder, the z-point store, batched encoding / decoding and the reconstruction grid."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from latentatlas.data import DataConfig
from latentatlas.errors import LatentAtlasError
from latentatlas.io import array_id, read_json, write_json
from latentatlas.model import Autoencoder, ModelConfig
from latentatlas.pipelines.reconstruct import save_reconstructions
from latentatlas.store import Run, decode_latents, default_device, encode_images, encode_run


def test_the_default_device_is_the_gpu_when_torch_sees_one_and_runs_load_there(tiny_run, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    model = Run(tiny_run.path).load_model()  # no device given: the default one
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}
    with pytest.raises(LatentAtlasError, match="device 'cuda' asked for, but torch sees no CUDA GPU here"):
        Run(tiny_run.path, device="cuda")


def test_run_exposes_its_configuration(tiny_run):
    assert tiny_run.model_config == ModelConfig(image_size=32, channels=(16, 32), latent_dim=16)
    assert tiny_run.latent_dim == 16
    assert tiny_run.train_config.epochs == 3 and tiny_run.train_config.val_fraction == 0.25
    assert tiny_run.data_config.source == "synthetic-faces" and tiny_run.data_config.synthetic_count == 400
    model = tiny_run.load_model("cpu")
    assert not model.training
    assert tiny_run.load_model("cpu") is model  # loaded once


def test_zpoint_store_shape_dtype_and_memmap(tiny_run):
    z = tiny_run.zpoints()
    assert isinstance(z, np.memmap)
    assert z.shape == (400, 16) and z.dtype == np.float32
    assert np.isfinite(z).all()
    assert tiny_run.zpoints("train").shape == (300, 16)
    assert tiny_run.zpoints("val").shape == (100, 16)
    # Row i of the store is image i of the source.
    np.testing.assert_allclose(
        tiny_run.encode(np.asarray(tiny_run.images().images[[5, 17]])), z[[5, 17]], rtol=1e-5, atol=1e-5
    )


def test_metadata_columns_and_subsets(tiny_run):
    meta = tiny_run.metadata()
    assert isinstance(meta, pd.DataFrame) and len(meta) == 400
    assert list(meta.columns[:5]) == ["index", "image_id", "path", "subset", "partition"]
    assert np.array_equal(meta["index"].to_numpy(), np.arange(400))
    assert meta["subset"].value_counts().to_dict() == {"train": 300, "val": 100}
    assert np.array_equal(meta["subset"].eq("val").to_numpy(), tiny_run.split() == 1)
    factors = tiny_run.images().meta.columns.drop(["image_id", "path", "partition"])
    assert len(factors) > 0 and set(factors) <= set(meta.columns)  # the synthetic generating factors travel along
    info = tiny_run.zpoints_info()
    assert (info["n"], info["latent_dim"], info["external"]) == (400, 16, False)


def test_encode_images_is_batch_size_independent_and_matches_the_model(tiny_run):
    model = tiny_run.load_model("cpu")
    images = np.array(tiny_run.images().images[:23])  # a writable copy of the memmap rows
    z_big = encode_images(model, images, batch_size=256)
    z_small = encode_images(model, images, batch_size=5)
    np.testing.assert_allclose(z_small, z_big, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        direct = model.encode(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_allclose(z_big, direct, rtol=1e-5, atol=1e-5)


def test_decode_latents_gives_uint8_images_matching_the_model(tiny_run):
    model = tiny_run.load_model("cpu")
    z = np.array(tiny_run.zpoints()[:9])  # a writable copy of the memmap rows
    images = decode_latents(model, z, batch_size=4)
    assert images.shape == (9, 32, 32, 3) and images.dtype == np.uint8
    with torch.no_grad():
        direct = model.decode(torch.from_numpy(z)).permute(0, 2, 3, 1).numpy() * 255
    assert np.abs(images.astype(np.float32) - direct).max() <= 0.5 + 1e-3  # rounding only
    assert np.array_equal(tiny_run.decode(z[0]), images[:1])  # a single vector is accepted too


@pytest.mark.parametrize(
    "z, message",
    [
        (np.zeros((2, 7), np.float32), "shape"),
        (np.full((1, 16), np.nan, np.float32), "NaN"),
        (np.zeros((2, 2, 16)), "shape"),
    ],
)
def test_decode_rejects_bad_latents(tiny_run, z, message):
    with pytest.raises(LatentAtlasError, match=message):
        tiny_run.decode(z)


def test_encode_rejects_images_of_the_wrong_size(tiny_run):
    with pytest.raises(LatentAtlasError, match="expected uint8 images"):
        tiny_run.encode(np.zeros((2, 64, 64, 3), np.uint8))


def test_reconstruction_is_good_for_training_images_too(tiny_run):
    images = np.asarray(tiny_run.images().images[:50])
    recon = tiny_run.decode(tiny_run.encode(images))
    mse = np.mean((images / 255.0 - recon / 255.0) ** 2)
    history = tiny_run.history()
    assert mse < history["train_loss"].iloc[0]  # better than after the first epoch


def test_external_source_is_marked_external(tiny_run_copy):
    data = DataConfig(image_size=32, synthetic_count=30, synthetic_seed=7)
    encode_run(tiny_run_copy, data, progress=False)
    run = Run(tiny_run_copy.path)
    assert run.zpoints().shape == (30, 16)
    assert set(run.metadata()["subset"]) == {"external"}
    assert run.zpoints("external").shape == (30, 16)
    info = read_json(run.zpoints_file("zpoints.json"))
    assert info["external"] is True and DataConfig.from_dict(info["source"]) == data
    with pytest.raises(LatentAtlasError, match="no z-points in subset 'val'"):
        run.zpoints("val")


def test_reconstruction_grid_png_and_summary(tiny_run_copy):
    summary = save_reconstructions(tiny_run_copy, n=10, subset="val", ncols=8)
    png = tiny_run_copy.path / "reconstructions.png"
    with Image.open(png) as picture:
        # 2 blocks of (originals row, reconstructions row) of 8 columns; 32 px images, 2 px gutters, scale 2.
        assert picture.size == ((8 * 34 + 2) * 2, (4 * 34 + 2) * 2)
    assert summary["n"] == 10 and 0 < summary["mse"] < 0.05
    assert summary["figures"][0]["file"] == "reconstructions.png" and "originals" in summary["figures"][0]["caption"]
    assert read_json(tiny_run_copy.path / "reconstructions.json") == summary


@pytest.mark.parametrize(
    "options, message",
    [({"n": 0}, "the number of images must be an integer >= 1, got 0"), ({"subset": "test"}, "unknown subset")],
)
def test_reconstruction_rejects_bad_options(tiny_run_copy, options, message):
    with pytest.raises(LatentAtlasError, match=message):
        save_reconstructions(tiny_run_copy, **options)
    assert not (tiny_run_copy.path / "reconstructions.png").exists()


# ----------------------------------------------------------------------------- incomplete run folders


def test_not_a_run_folder(tmp_path):
    with pytest.raises(LatentAtlasError, match="not a latentatlas run folder"):
        Run(tmp_path)
    with pytest.raises(LatentAtlasError, match="does not exist"):
        Run(tmp_path / "missing")


def test_run_without_model_names_the_command(tiny_run_copy):
    import shutil

    shutil.rmtree(tiny_run_copy.path / "checkpoints")
    (tiny_run_copy.path / "model.safetensors").unlink()
    with pytest.raises(LatentAtlasError, match="no trained model.*latentatlas train"):
        Run(tiny_run_copy.path).load_model()


def test_run_without_zpoints_names_the_command(tiny_run_copy):
    shutil.rmtree(tiny_run_copy.path / "zpoints")
    run = Run(tiny_run_copy.path)
    for call in (run.zpoints, run.metadata):
        with pytest.raises(LatentAtlasError, match="has no z-points: run `latentatlas encode"):
            call()


@pytest.mark.parametrize(
    "section, change, message",
    [
        ("model", {"latent_dims": 3}, "unknown model config keys: latent_dims"),
        ("model", {"image_size": 40}, "image size must be a positive multiple of 16, got 40"),
        ("model", {"latent_dim": 16.0}, "model.latent_dim must be an integer, got 16.0"),
        ("model", {"batch_norm": "no"}, "model.batch_norm must be true or false, got 'no'"),
        ("model", {"channels": "16,32"}, "model.channels must be a list"),
        ("train", {"lr": "fast"}, "train.lr must be a number"),
        ("data", {"limit": 2.5}, "data.limit must be an integer"),
    ],
)
def test_invalid_config_json_is_one_clear_error(tiny_run_copy, section, change, message):
    config = read_json(tiny_run_copy.path / "config.json")
    config[section] = {**config[section], **change}
    write_json(tiny_run_copy.path / "config.json", config)
    run = Run(tiny_run_copy.path)
    with pytest.raises(LatentAtlasError, match=f"invalid .*config.json: {re.escape(message)}"):
        _ = run.config
    with pytest.raises(LatentAtlasError, match="config.json"):
        run.load_model()


def test_config_json_with_a_section_that_is_not_a_table(tiny_run_copy):
    config = read_json(tiny_run_copy.path / "config.json")
    config["data"] = [1, 2]
    write_json(tiny_run_copy.path / "config.json", config)
    with pytest.raises(LatentAtlasError, match="config.json: the data config must be a table of keys, got list"):
        _ = Run(tiny_run_copy.path).data_config


def test_unknown_subset(tiny_run):
    with pytest.raises(LatentAtlasError, match="unknown subset"):
        tiny_run.zpoints("test")


@pytest.mark.realdata
def test_real_celeba_train_and_encode(celeba_dir, tmp_path):
    from latentatlas.train import TrainConfig, train

    data = DataConfig(source=str(celeba_dir), image_size=32, limit=300)
    run_dir = train(
        tmp_path / "run",
        data,
        ModelConfig(image_size=32, channels=(16, 32), latent_dim=16),
        TrainConfig(epochs=1, batch_size=32, val_fraction=0.1),
        progress=False,
        device="cpu",
    )
    run = Run(run_dir)
    encode_run(run, progress=False)
    meta = run.metadata()
    assert run.zpoints().shape == (300, 16)
    assert meta["subset"].value_counts().to_dict() == {"train": 270, "val": 30}
    assert meta["image_id"].iloc[0] == "000001.jpg"
    assert {"Smiling", "Male", "Eyeglasses"} <= set(meta.columns)
    assert set(meta["Smiling"].unique()) <= {-1, 1}
    assert np.isfinite(run.history()["val_loss"]).all()


def test_models_of_other_runs_do_not_fit(tiny_run_copy):
    other = Autoencoder(ModelConfig(image_size=32, channels=(8, 16), latent_dim=16))
    from latentatlas.model import save_model

    save_model(other, Run(tiny_run_copy.path).weights_path("best"))
    with pytest.raises(LatentAtlasError, match="does not fit config.json"):
        Run(tiny_run_copy.path).load_model()


def test_a_failed_encode_leaves_the_previous_store_whole(tiny_run_copy, monkeypatch):
    before = np.array(tiny_run_copy.zpoints())
    meta_before = tiny_run_copy.metadata()

    def fail_after_npy(*args, **kwargs):
        raise RuntimeError("killed between the writes of the store")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail_after_npy)
    with pytest.raises(RuntimeError, match="killed between"):
        encode_run(Run(tiny_run_copy.path), progress=False)
    run = Run(tiny_run_copy.path)
    np.testing.assert_array_equal(run.zpoints(), before)
    pd.testing.assert_frame_equal(run.metadata(), meta_before)
    assert sorted(p.name for p in (run.path / "zpoints").iterdir()) == [
        ".artifact.json",
        "zpoints.json",
        "zpoints.npy",
        "zpoints.parquet",
    ]
    assert not [p for p in run.path.iterdir() if p.name.startswith(".zpoints.")]


def test_a_mixed_store_is_detected_with_one_line(tiny_run_copy):
    from latentatlas.io import save_npy

    z = np.array(tiny_run_copy.zpoints())
    save_npy(tiny_run_copy.zpoints_file("zpoints.npy"), z[:-3])
    with pytest.raises(LatentAtlasError, match=r"inconsistent \(\d+ rows in zpoints.npy, \d+ in zpoints.parquet"):
        Run(tiny_run_copy.path).zpoints("train")
    save_npy(tiny_run_copy.zpoints_file("zpoints.npy"), np.zeros((len(z), 3), np.float32))
    with pytest.raises(LatentAtlasError, match="has 3 components but the model's latent dimension is"):
        Run(tiny_run_copy.path).zpoints()


def test_encode_waits_for_the_run_lock(tiny_run_copy, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("LATENTATLAS_LOCK_TIMEOUT", "0.5")
    with Run(tiny_run_copy.path).lock():
        result = subprocess.run(
            [sys.executable, "-m", "latentatlas.cli", "encode", str(tiny_run_copy.path)],
            capture_output=True,
            text=True,
            env={**os.environ, "LATENTATLAS_LOCK_TIMEOUT": "0.5"},
        )
    assert result.returncode == 2
    assert "is still in use by another latentatlas command" in result.stderr.strip().splitlines()[-1]


def test_zpoints_of_earlier_weights_are_refused_after_more_training(tiny_run_copy):
    run = Run(tiny_run_copy.path)
    info = read_json(run.zpoints_file("zpoints.json"))
    assert run.stale_zpoints() is None
    recorded = {"weights": info["weights"], "weights_id": info["weights_id"], "store_id": info["store_id"]}
    assert run.provenance() == recorded
    assert info["store_id"] == array_id(np.asarray(run.zpoints()))
    assert info["weights_id"] == run.weights_id(info["weights"])
    write_json(run.zpoints_file("zpoints.json"), {**info, "weights_id": "000000000000"})
    stale = Run(tiny_run_copy.path)
    assert "were encoded with" in stale.stale_zpoints()
    assert stale.provenance()["weights_id"] == "000000000000" != stale.weights_id(info["weights"])
    with pytest.raises(LatentAtlasError, match="encoded with .* weights 000000000000, now .*run `latentatlas encode"):
        stale.zpoints("train")
