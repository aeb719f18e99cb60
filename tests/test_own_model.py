"""Your own autoencoder as a run: a plain-PyTorch AE (no latentatlas code in it), trained here on synthetic faces,
imported through the CLI (TorchScript files) and from Python (`Run.from_model` with live modules), then
evaluated, reported and walked from an image like a trained run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import latentatlas
from cli_helpers import exit_status
from latentatlas.io import read_json

REPO = Path(__file__).resolve().parents[1]
DATA = ["--data", "synthetic-faces", "--synthetic-count", "300", "--image-size", "32"]


class Encoder(nn.Module):
    def __init__(self, latent_dim: int = 8):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(3, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU())
        self.to_latent = nn.Linear(32 * 8 * 8, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.convs(x).flatten(1))


class Decoder(nn.Module):
    def __init__(self, latent_dim: int = 8, last: nn.Module | None = None):
        super().__init__()
        self.from_latent = nn.Linear(latent_dim, 32 * 8 * 8)
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(16, 3, 4, 2, 1), last or nn.Sigmoid()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.convs(self.from_latent(z).view(-1, 32, 8, 8))


@pytest.fixture(scope="module")
def plain_ae():
    """A plain-PyTorch AE trained for 4 epochs on 300 synthetic 32x32 faces."""
    from latentatlas.data import DataConfig, load_images

    images = load_images(DataConfig(source="synthetic-faces", image_size=32, synthetic_count=300), progress=False)
    x = torch.from_numpy(np.array(images.images)).permute(0, 3, 1, 2).float() / 255
    torch.manual_seed(0)
    encoder, decoder = Encoder(), Decoder()
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=3e-3)
    for _ in range(4):
        for batch in x[torch.randperm(len(x))].split(16):
            optimiser.zero_grad()
            nn.functional.mse_loss(decoder(encoder(batch)), batch).backward()
            optimiser.step()
    return encoder.eval(), decoder.eval()


@pytest.fixture(scope="module")
def scripted_files(plain_ae, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scripted")
    encoder, decoder = plain_ae
    torch.jit.save(torch.jit.script(encoder), str(folder / "enc.pt"))
    torch.jit.save(torch.jit.trace(decoder, torch.zeros(2, 8)), str(folder / "dec.pt"))
    return folder / "enc.pt", folder / "dec.pt"


@pytest.fixture(scope="module")
def cli_run(scripted_files, tmp_path_factory):
    encoder, decoder = scripted_files
    run = tmp_path_factory.mktemp("cli") / "run"
    argv = ["import", str(run), "--encoder", str(encoder), "--decoder", str(decoder), *DATA, "--val-fraction", "0.25"]
    assert exit_status(argv) == 0
    return latentatlas.Run(run)


@pytest.mark.slow
def test_cli_route_evaluates_reports_and_walks_from_an_image(cli_run, plain_ae, tmp_path):
    run = cli_run
    assert run.imported and run.has_images and run.latent_dim == 8 and run.image_size == 32
    assert run.zpoints().shape == (300, 8) and (run.split() == 1).sum() == 75
    # the store holds exactly the user's encoder's z-points of the source images
    encoder, _ = plain_ae
    images = np.array(run.images().images[:5])
    with torch.no_grad():
        expected = encoder(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    np.testing.assert_allclose(run.zpoints()[:5], expected, atol=1e-5)
    assert "synthetic_count" in run.data_config.to_dict() and run.images().images.shape == (300, 32, 32, 3)

    argv = ["evaluate", str(run.path), "--samplers", "gaussian", "-n", "20", "--instruments", "standard"]
    assert exit_status(argv) == 0
    evaluation = read_json(run.path / "evaluation" / "evaluation.json")
    assert evaluation["settings"]["real_images"] == "source images"
    rows = {row["name"]: row for row in evaluation["rows"]}
    # real held-out images against the user's reconstructions: a blurry 4-epoch AE is far from 0
    assert rows["reconstruction"]["fid"] > 1.0 and "fid" in rows["gaussian"]
    assert exit_status(["report", str(run.path)]) == 0
    assert "gaussian" in (run.path / "report.html").read_text(encoding="utf-8")

    start, end = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(images[0]).save(start)
    Image.fromarray(images[1]).save(end)
    argv = ["path", str(run.path), "--kind", "between", "--from-image", str(start), "--to-image", str(end)]
    assert exit_status([*argv, "--steps", "5"]) == 0
    (path,) = (run.path / "paths").iterdir()
    z = np.load(path / "z.npy")
    np.testing.assert_allclose(z[0], expected[0], atol=1e-4)  # the path starts at the image's encoding
    assert exit_status(["reconstruct", str(run.path), "-n", "4"]) == 0
    assert read_json(run.path / "reconstructions.json")["mse"] > 0


@pytest.mark.slow
def test_from_model_with_live_modules_equals_the_cli_route(cli_run, plain_ae, tmp_path):
    encoder, decoder = plain_ae
    run = latentatlas.Run.from_model(
        tmp_path / "run",
        encoder=encoder,
        decoder=decoder,
        data="synthetic-faces",
        image_size=32,
        synthetic_count=300,
        val_fraction=0.25,
    )
    np.testing.assert_allclose(run.zpoints(), cli_run.zpoints(), atol=1e-5)
    np.testing.assert_array_equal(run.split(), cli_run.split())
    assert not encoder.training and read_json(run.path / "imported.json")["encoder_source"] == "nn.Module Encoder"
    # saved as TorchScript (no pickle): plain torch.jit.load reads both files back
    assert isinstance(torch.jit.load(str(run.path / "encoder.pt")), torch.jit.ScriptModule)
    assert exit_status(["evaluate", str(run.path), "--samplers", "gaussian", "-n", "40", "--instruments", "quick"]) == 0
    assert exit_status(["report", str(run.path)]) == 0


class Flat(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))  # (B, 3): a latent vector per image


class Volume(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :4, :4]  # (B, 3, 4, 4): not one vector per image


@pytest.mark.parametrize(
    "case, message",
    [
        ("encoder_3d", "expected one latent vector per image (1, N)"),
        ("decoder_size", "returned (1, 3, 32, 32) for the encoder's (1, 8) z-point; the images are (1, 3, 64, 64)"),
        ("tanh", "the images are in [0, 1]"),
        ("image_size", "failed on one (1, 3, 64, 64) image in [0, 1] (is --image-size 64 its input size?)"),
        ("not_torchscript", "is not a TorchScript encoder"),
        ("missing_data", "needs --encoder E.pt, --decoder D.pt and --data SOURCE together"),
        ("both_routes", "give either --encoder/--decoder/--data"),
    ],
)
def test_bad_model_is_one_line_exit_2_and_writes_nothing(scripted_files, tmp_path, capsys, case, message):
    encoder, decoder = (str(p) for p in scripted_files)
    data = ["--data", "synthetic-faces", "--synthetic-count", "20", "--image-size", "32"]
    argv = ["--encoder", encoder, "--decoder", decoder, *data]
    if case == "encoder_3d":
        torch.jit.save(torch.jit.script(Volume()), str(tmp_path / "v.pt"))
        argv = ["--encoder", str(tmp_path / "v.pt"), "--decoder", decoder, *data]
    elif case == "decoder_size":
        argv = ["--encoder", encoder, "--decoder", decoder, *data[:-1], "64"]
        torch.jit.save(torch.jit.script(nn.Sequential(nn.AvgPool2d(2), Encoder())), str(tmp_path / "e64.pt"))
        argv[1] = str(tmp_path / "e64.pt")
    elif case == "tanh":
        torch.jit.save(torch.jit.script(Decoder(last=nn.Tanh())), str(tmp_path / "tanh.pt"))
        argv = ["--encoder", encoder, "--decoder", str(tmp_path / "tanh.pt"), *data]
    elif case == "image_size":
        argv = ["--encoder", encoder, "--decoder", decoder, *data[:-1], "64"]
    elif case == "not_torchscript":
        (tmp_path / "fake.pt").write_bytes(b"not a zip archive")
        argv[1] = str(tmp_path / "fake.pt")
    elif case == "missing_data":
        argv = ["--encoder", encoder, "--decoder", decoder]
    elif case == "both_routes":
        np.save(tmp_path / "z.npy", np.zeros((10, 8), np.float32))
        argv += ["--zpoints", str(tmp_path / "z.npy")]
    out = tmp_path / "out"
    assert exit_status(["import", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_flat_encoder_of_three_components_is_accepted(tmp_path):
    """Any (B, N) encoder is a latent space: here N = 3, the mean colour, with a decoder painting it."""

    class Paint(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.clamp(0, 1)[:, :, None, None].repeat(1, 1, 32, 32)

    run = latentatlas.Run.from_model(
        tmp_path / "run", encoder=Flat(), decoder=Paint(), data="synthetic-faces", image_size=32, synthetic_count=20
    )
    assert run.zpoints().shape == (20, 3) and run.decode(run.zpoints()[:2]).shape == (2, 32, 32, 3)


@pytest.mark.slow
def test_the_example_trains_a_plain_model_and_hands_it_over(tmp_path):
    out = tmp_path / "own"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "own_model.py"),
            "--out",
            str(out),
            "--seconds",
            "1",
            "--images",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "120 z-points of dimension 16 (train 108, held out 12)" in done.stdout
    run = latentatlas.Run(out)
    assert run.has_images and len(run.images().images) == 120
    assert exit_status(["analyze", str(out), "--no-figures", "--mcd-samples", "100"]) == 0


@pytest.mark.parametrize(
    "found, withheld",
    [({80: 0.0, 160: 0.03}, "finds a face in 3% of 64 reconstructions"), ({80: 0.02, 160: 0.5}, None)],
)
def test_face_scores_are_withheld_when_the_decoder_makes_no_faces(found, withheld):
    from latentatlas.evaluation.faces import SideCalibration
    from latentatlas.evaluation.instruments.cnn_faces import FACES_WITHHELD, faces_withheld
    from latentatlas.evaluation.table import evaluation_notes

    reason = faces_withheld(SideCalibration(side=160, found=found, images=64, target=0.9))
    if withheld is None:
        assert reason is None and evaluation_notes({"real_images": "source images"}) == []
    else:
        assert reason is not None and withheld in reason
        (note,) = evaluation_notes({"real_images": "source images", FACES_WITHHELD: reason})
        assert note.startswith("Face scores withheld: dlib's CNN face detector finds a face in 3%")


def test_live_modules_in_training_mode_are_imported_as_at_inference_and_left_training(tmp_path):
    torch.manual_seed(1)
    encoder = nn.Sequential(nn.Conv2d(3, 4, 4, 4), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 6))
    decoder = nn.Sequential(nn.Linear(6, 3 * 32 * 32), nn.Sigmoid(), nn.Unflatten(1, (3, 32, 32)))
    with torch.no_grad():  # running statistics that differ from a batch's own
        encoder[1].running_mean.fill_(0.3)
        encoder[1].running_var.fill_(2.0)
    run = latentatlas.Run.from_model(
        tmp_path / "run", encoder=encoder, decoder=decoder, data="synthetic-faces", image_size=32, synthetic_count=20
    )
    assert encoder.training and decoder.training
    images = torch.from_numpy(np.array(run.images().images[:4])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = encoder.eval()(images).numpy()
    np.testing.assert_allclose(run.zpoints()[:4], expected, atol=1e-5)


def test_import_refuses_to_replace_a_trained_run_before_reading_images(tiny_run_copy, scripted_files, capsys):
    encoder, decoder = (str(p) for p in scripted_files)
    argv = ["import", str(tiny_run_copy.path), "--encoder", encoder, "--decoder", decoder, "--data", "/nonexistent"]
    assert exit_status(argv) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert tiny_run_copy.weights_path().is_file()
