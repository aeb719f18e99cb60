"""Latent paths: exact endpoints, in-plane geometry, slerp norms, validation."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from cli_helpers import exit_status
from latentatlas.errors import LatentAtlasError
from latentatlas.paths import (
    between,
    lerp,
    most_moving_plane,
    origin_to_centre,
    plane_path,
    plane_spread,
    slerp,
    traverse,
)

DIM = 12


@pytest.fixture()
def bulk() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(DIM, DIM))
    return rng.normal(size=DIM) * 2, mixing @ mixing.T / DIM + np.eye(DIM) * 0.1


def test_lerp_endpoints_and_even_spacing():
    a, b = np.arange(DIM, dtype=float), -np.ones(DIM) * 3
    path = lerp(a, b, 5)
    assert path.shape == (5, DIM)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(np.diff(path, axis=0), np.tile((b - a) / 4, (4, 1)), atol=1e-12)


def test_origin_to_centre(bulk):
    centre, _ = bulk
    path = origin_to_centre(centre, 6)
    np.testing.assert_array_equal(path[0], np.zeros(DIM))
    np.testing.assert_array_equal(path[-1], centre)
    # Every point lies on the ray towards the centre, at fractions 0, 0.2, ..., 1.
    np.testing.assert_allclose(path, np.linspace(0, 1, 6)[:, None] * centre, atol=1e-12)


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0, -60.0])
def test_plane_path_geometry(angle, bulk):
    centre, cov = bulk
    plane = (3, 7)
    length = 2.0
    path = plane_path(centre, cov, plane, angle, steps=9, length=length)
    others = [j for j in range(DIM) if j not in plane]
    np.testing.assert_array_equal(path[:, others], np.tile(centre[others], (9, 1)))  # only j1, j2 vary
    np.testing.assert_allclose(path[4], centre, atol=1e-12)  # passes through the centre (odd steps: middle point)
    displacement = path[-1] - path[0]
    assert math.degrees(math.atan2(displacement[7], displacement[3])) == pytest.approx(angle)
    # Half-length = length * sqrt(u^T C_plane u).
    u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    spread = math.sqrt(u @ cov[np.ix_(plane, plane)] @ u)
    assert np.linalg.norm(displacement) == pytest.approx(2 * length * spread)
    assert plane_spread(cov, plane, angle) == pytest.approx(spread)


def test_plane_path_accepts_a_plane_covariance_and_a_base_point(bulk):
    centre, cov = bulk
    plane = (0, 5)
    base = np.full(DIM, 0.5)
    path = plane_path(centre, cov[np.ix_(plane, plane)], plane, 45.0, steps=4, length=1.0, base=base)
    full = plane_path(centre, cov, plane, 45.0, steps=4, length=1.0, base=base)
    np.testing.assert_allclose(path, full, atol=1e-12)
    others = [j for j in range(DIM) if j not in plane]
    np.testing.assert_array_equal(path[:, others], np.full((4, DIM - 2), 0.5))  # off-plane: the base point
    np.testing.assert_allclose(path[[0, -1]][:, plane].mean(axis=0), centre[list(plane)], atol=1e-12)


def test_plane_angle_180_reverses_the_path(bulk):
    centre, cov = bulk
    forward = plane_path(centre, cov, (1, 2), 20.0, steps=5)
    backward = plane_path(centre, cov, (1, 2), 200.0, steps=5)
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-9)


def test_slerp_keeps_equal_norm_endpoints_on_their_sphere():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=DIM), rng.normal(size=DIM)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = slerp(a, b, 11)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    # Constant angular speed: equal angles between neighbours, summing to the endpoints' angle.
    units = path / np.linalg.norm(path, axis=1, keepdims=True)
    steps = np.arccos(np.clip(np.einsum("ij,ij->i", units[:-1], units[1:]), -1, 1))
    total = math.acos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    np.testing.assert_allclose(steps, total / 10, rtol=1e-6)
    # Linear interpolation, by contrast, cuts inside the sphere.
    assert np.linalg.norm(lerp(a, b, 11), axis=1)[5] < np.linalg.norm(a) * 0.999


def test_slerp_norm_interpolates_between_endpoint_norms():
    a = np.zeros(DIM)
    a[0] = 2.0
    b = np.zeros(DIM)
    b[1] = 6.0
    path = slerp(a, b, 5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(2.0, 6.0, 5), rtol=1e-12)
    # Quarter circle in the (0, 1) plane: the angles advance by 22.5 degrees.
    np.testing.assert_allclose(np.degrees(np.arctan2(path[:, 1], path[:, 0])), [0, 22.5, 45, 67.5, 90], atol=1e-9)


@pytest.mark.parametrize("scale", [1.0, 3.0, -1.0])
def test_slerp_handles_parallel_and_antiparallel_vectors(scale):
    a = np.linspace(1, 2, DIM)
    b = a * scale
    path = slerp(a, b, 4)
    assert np.isfinite(path).all()
    np.testing.assert_allclose(path, lerp(a, b, 4), atol=1e-12)


def test_slerp_from_the_origin_is_linear():
    b = np.ones(DIM)
    np.testing.assert_allclose(slerp(np.zeros(DIM), b, 3), lerp(np.zeros(DIM), b, 3))


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_between_has_exact_endpoints(method):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=DIM), rng.normal(size=DIM)
    path = between(a, b, 7, method=method)
    assert path.shape == (7, DIM)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)


def test_traverse_changes_one_component():
    base = np.arange(DIM, dtype=float)
    path = traverse(base, 4, [-3.0, 0.0, 3.0])
    np.testing.assert_array_equal(path[:, 4], [-3.0, 0.0, 3.0])
    np.testing.assert_array_equal(np.delete(path, 4, axis=1), np.tile(np.delete(base, 4), (3, 1)))


def test_most_moving_plane():
    path = traverse(np.zeros(DIM), 9, [-1.0, 1.0])
    spread = np.ones(DIM)
    spread[2] = 5.0
    assert most_moving_plane(path, spread) == (9, 2)  # tie among static components -> the widest one
    assert most_moving_plane(lerp(np.zeros(DIM), np.eye(DIM)[3] * 2 + np.eye(DIM)[8], 3)) == (3, 8)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, C: lerp(c, c, 1), "steps must be an integer >= 2"),
        (lambda c, C: between(c, c, 2.5), "steps must be an integer >= 2"),
        (lambda c, C: origin_to_centre(c, 0), "steps must be"),
        (lambda c, C: between(c, c[:-1], 4), "dimension 11, expected 12"),
        (lambda c, C: between(c, c, 4, method="cubic"), "unknown interpolation"),
        (lambda c, C: slerp(c, np.full(DIM, np.nan), 4), "NaN"),
        (lambda c, C: plane_path(c, C, (3, 3), 0.0, 5), "repeats an axis"),
        (lambda c, C: plane_path(c, C, (0, DIM), 0.0, 5), "out of range"),
        (lambda c, C: plane_path(c, C, (-1, 2), 0.0, 5), "out of range"),
        (lambda c, C: plane_path(c, C, (0, 1, 2), 0.0, 5), "two integer axis indices"),
        (lambda c, C: plane_path(c, C, (0, 1), 0.0, 5, length=0), "length must be a finite number > 0"),
        (lambda c, C: plane_path(c, C, (0, 1), math.inf, 5), "angle must be a finite number"),
        (lambda c, C: plane_path(c, C[:3, :3], (0, 1), 0.0, 5), "covariance must have shape"),
        (lambda c, C: plane_path(c, np.zeros_like(C), (0, 1), 0.0, 5), "no spread"),
        (lambda c, C: plane_path(c, C, (0, 1), 0.0, 5, base=c[:5]), "base point has dimension"),
        (lambda c, C: traverse(c, DIM, [1.0, 2.0]), "out of range"),
        (lambda c, C: traverse(c, 0, [1.0, np.inf]), "NaN or infinite"),
    ],
)
def test_bad_path_arguments_raise(call, message, bulk):
    centre, cov = bulk
    with pytest.raises(LatentAtlasError, match=message):
        call(centre, cov)


# ----------------------------------------------------------------------------- CLI: latentatlas path


def _written(run_path) -> list[str]:
    return sorted(str(p.relative_to(run_path)) for p in run_path.rglob("*") if "paths" in p.parts)


def _check_outputs(run, out, steps: int) -> tuple[np.ndarray, dict]:
    """The folder's files and their values, each recomputed here independently of the pipeline."""
    from matplotlib.colors import to_rgb
    from PIL import Image
    from scipy.spatial.distance import cdist

    from latentatlas.io import read_json
    from latentatlas.plots import CENTRE, ORIGIN, PATH, image_grid

    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "grid.png",
        "info.json",
        "projection.png",
        "z.npy",
    ]
    vectors = np.load(out / "z.npy")
    assert vectors.shape == (steps, run.latent_dim) and vectors.dtype == np.float32
    info = read_json(out / "info.json")
    assert info["steps"] == steps and info["command"] == "path"
    assert [f["file"] for f in info["figures"]] == ["grid.png", "projection.png"]
    assert f"{steps} images decoded along a path" in info["figures"][0]["caption"]
    # The grid is exactly the decoded path, one row, each image enlarged 4x (32 px images).
    with Image.open(out / "grid.png") as grid:
        expected = Image.fromarray(image_grid(run.decode(vectors), ncols=steps))
        expected = expected.resize((expected.width * 4, expected.height * 4), Image.NEAREST)
        np.testing.assert_array_equal(np.asarray(grid.convert("RGB")), np.asarray(expected))
    # The projection shows the origin (yellow), the centre (orange) and the path (black).
    with Image.open(out / "projection.png") as projection:
        pixels = np.asarray(projection.convert("RGB")).astype(int)
    for colour in (ORIGIN, CENTRE, PATH):
        target = np.array(to_rgb(colour)) * 255
        assert (np.abs(pixels - target).max(axis=2) <= 3).sum() >= 20, colour
    plane = info["projection_plane"]
    assert f"plane ({plane[0]}, {plane[1]})" in info["figures"][1]["caption"]
    # Distances of each step from the centre of the training z-points, in the bulk's spread.
    z_train = run.zpoints("train").astype(np.float64)
    precision = np.linalg.inv(np.cov(z_train, rowvar=False))
    centred = vectors.astype(np.float64) - z_train.mean(axis=0)
    sq = np.einsum("ij,ij->i", centred @ precision, centred)
    np.testing.assert_allclose(info["mahalanobis"], np.sqrt(sq), rtol=1e-4, atol=1e-4)
    # Every step is scored: its Mahalanobis percentile among the training points, its norm, and how many
    # held-out points' 5-NN balls hold it.
    train_centred = z_train - z_train.mean(axis=0)
    train_sq = np.einsum("ij,ij->i", train_centred @ precision, train_centred)
    held = run.zpoints("val").astype(np.float64)
    held_d = cdist(held, held)
    radii = np.sort(held_d, axis=1)[:, 5]  # column 0 is the point itself
    # a step that is itself a held-out point sits exactly on its neighbours' ball boundaries: allow rounding
    step_d = cdist(vectors.astype(np.float64), held)
    fewest, most = (step_d < radii * (1 - 1e-6)).sum(axis=1), (step_d < radii * (1 + 1e-6)).sum(axis=1)
    assert len(info["points"]) == steps
    for step, point in enumerate(info["points"]):
        assert point["mahalanobis_pct"] == pytest.approx(100 * np.mean(train_sq < sq[step]), abs=100 / len(z_train))
        assert point["norm"] == pytest.approx(np.linalg.norm(vectors[step].astype(np.float64)), rel=1e-6)
        assert fewest[step] <= point["real_balls"] <= most[step]
        assert point["in_real_support"] == (point["real_balls"] > 0) and isinstance(point["face"], bool)
    return vectors, info


def test_cli_plane_path(tiny_run_copy):
    run = tiny_run_copy
    assert (
        exit_status(
            [
                "path",
                str(run.path),
                "--kind",
                "plane",
                "--plane",
                "2,9",
                "--angle",
                "-30",
                "--steps",
                "5",
                "--length",
                "1.5",
            ]
        )
        == 0
    )
    vectors, info = _check_outputs(run, run.path / "paths" / "plane-2-9-angle-30-length1.5-steps5", 5)
    centre = run.zpoints("train").astype(np.float64).mean(axis=0)
    others = [j for j in range(run.latent_dim) if j not in (2, 9)]
    np.testing.assert_allclose(vectors[:, others], np.tile(centre[others], (5, 1)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vectors[2], centre, rtol=1e-5, atol=1e-6)
    displacement = vectors[-1].astype(np.float64) - vectors[0]
    assert math.degrees(math.atan2(displacement[9], displacement[2])) == pytest.approx(-30, abs=1e-3)
    assert info["projection_plane"] == [2, 9]


def test_cli_origin_to_centre_and_traverse(tiny_run_copy):
    run = tiny_run_copy
    assert exit_status(["path", str(run.path), "--kind", "origin-to-centre", "--steps", "4"]) == 0
    vectors, _ = _check_outputs(run, run.path / "paths" / "origin-to-centre-steps4", 4)
    z = run.zpoints("train").astype(np.float64)
    np.testing.assert_array_equal(vectors[0], 0)
    np.testing.assert_allclose(vectors[-1], z.mean(axis=0), rtol=1e-5, atol=1e-6)

    assert (
        exit_status(
            [
                "path",
                str(run.path),
                "--kind",
                "traverse",
                "--component",
                "3",
                "--range",
                "-2,2",
                "--steps",
                "3",
                "--base",
                "7",
            ]
        )
        == 0
    )
    vectors, info = _check_outputs(run, run.path / "paths" / "traverse-c3-from-2-to2-steps3-base7", 3)
    base = run.zpoints()[7]
    np.testing.assert_array_equal(np.delete(vectors, 3, axis=1), np.tile(np.delete(base, 3), (3, 1)))
    std = z[:, 3].std(ddof=1)
    np.testing.assert_allclose(vectors[:, 3], base[3] + np.array([-2, 0, 2]) * std, rtol=1e-5, atol=1e-6)
    assert info["projection_plane"][0] == 3


def test_cli_between_rows_and_images(tiny_run_copy, tmp_path):
    from PIL import Image

    run = tiny_run_copy
    z_all = run.zpoints()
    assert (
        exit_status(
            [
                "path",
                str(run.path),
                "--kind",
                "between",
                "--from",
                "0",
                "--to",
                "5",
                "--interpolation",
                "slerp",
                "--steps",
                "6",
            ]
        )
        == 0
    )
    vectors, _ = _check_outputs(run, run.path / "paths" / "between-0-5-slerp-steps6", 6)
    np.testing.assert_array_equal(vectors[0], z_all[0])
    np.testing.assert_array_equal(vectors[-1], z_all[5])

    # An image of the run's own source encodes to (nearly) its stored z-point.
    Image.fromarray(np.asarray(run.images().images[3])).save(tmp_path / "face three.png")
    out = tmp_path / "between-out"
    assert (
        exit_status(
            [
                "path",
                str(run.path),
                "--kind",
                "between",
                "--from-image",
                str(tmp_path / "face three.png"),
                "--to",
                "5",
                "--steps",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    vectors, _ = _check_outputs(run, out, 2)
    np.testing.assert_allclose(vectors[0], z_all[3], atol=1e-4)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--kind", "origin-to-centre", "--steps", "1"], "steps must be an integer >= 2"),
        (["--kind", "plane", "--plane", "3,3"], "repeats an axis"),
        (["--kind", "plane", "--plane", "0,16"], "out of range"),
        (["--kind", "plane"], "needs --plane"),
        (["--kind", "plane", "--plane", "0,1", "--length", "0"], "length must be a finite number > 0"),
        (["--kind", "between", "--from", "0"], "exactly one end point"),
        (["--kind", "between", "--from", "0", "--to", "100000"], "out of range"),
        (["--kind", "between", "--from-image", "missing.png", "--to", "1"], "does not exist"),
        (["--kind", "traverse", "--component", "16"], "out of range"),
        (["--kind", "traverse", "--component", "1", "--angle", "30"], "--angle does not apply"),
        (["--kind", "traverse", "--component", "1", "--base", "middle"], "--base must be"),
        (["--kind", "spiral"], "invalid choice"),
        (["--kind", "attribute"], "needs --attribute NAME"),
        (["--kind", "attribute", "--attribute", "skin_tnoe"], "unknown attribute 'skin_tnoe'; did you mean"),
        (["--kind", "attribute", "--attribute", "skin_tone", "--angle", "3"], "--angle does not apply"),
        (
            ["--kind", "attribute", "--attribute", "skin_tone", "--from", "synthetic-00007"],
            "no z-point has image id 'synthetic-00007'; did you mean synthetic-000007 or",
        ),
        (["--kind", "attribute", "--attribute", "skin_tone", "--from", "400"], "--from 400 is out of range"),
        (
            ["--kind", "between", "--from", "id:3", "--to", "1"],
            "no z-point has image id '3'; ids look like synthetic-000000, ",
        ),
        (["--kind", "between", "--from", "0", "--to", "row:x"], "--to 'row:x': row: needs a z-point row number"),
    ],
)
def test_cli_path_errors_exit_2_and_write_nothing(flags, message, tiny_run_copy, capsys):
    status = exit_status(["path", str(tiny_run_copy.path), *flags])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert _written(tiny_run_copy.path) == []


def test_cli_path_endpoints_of_the_wrong_dimension(tiny_run_copy, tmp_path, capsys):
    from PIL import Image

    run = tiny_run_copy
    Image.fromarray(np.asarray(run.images().images[0])).save(tmp_path / "face.png")
    # z-points that no longer match the model: an image encodes to 16 numbers, the stored rows have 3.
    np.save(run.zpoints_file("zpoints.npy"), np.zeros((len(run.zpoints()), 3), np.float32))
    args = ["path", str(run.path), "--kind", "between", "--from-image", str(tmp_path / "face.png"), "--to", "1"]
    assert exit_status(args) == 2
    err = capsys.readouterr().err
    assert "dimension" in err and err.count("\n") == 1
    assert _written(run.path) == []


def test_load_image_file_crops_before_resizing(tmp_path):
    """The centred square is cut out first: no pixel of the blue side strips may leak into the red square."""
    from PIL import Image

    from latentatlas.pipelines.path import load_image_file

    picture = np.zeros((40, 64, 3), np.uint8)
    picture[:, :, 2] = 255  # blue strips left and right
    picture[:, 12:52] = (255, 0, 0)  # the centred 40 x 40 square is pure red
    Image.fromarray(picture).save(tmp_path / "wide.png")
    pixels = load_image_file(tmp_path / "wide.png", 8)
    assert pixels.shape == (1, 8, 8, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[0], np.broadcast_to(np.array([255, 0, 0], np.uint8), (8, 8, 3)))


def test_load_image_file_refuses_a_file_that_is_no_image(tmp_path):
    from latentatlas.pipelines.path import load_image_file

    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(LatentAtlasError, match="cannot read image"):
        load_image_file(tmp_path / "notes.png", 8)


# ----------------------------------------------------------------------------- attribute directions


@pytest.mark.parametrize("binary", [True, False])
def test_attribute_direction_recovers_a_planted_direction(binary):
    from latentatlas.paths import attribute_direction

    rng = np.random.default_rng(3)
    planted = rng.normal(size=DIM)
    planted /= np.linalg.norm(planted)
    score = rng.normal(size=2000)
    values = np.where(score > 0, 1.0, -1.0) if binary else score
    z = rng.normal(size=(2000, DIM)) + 1.5 * np.sign(score)[:, None] * planted
    direction, shift = attribute_direction(z, values)
    assert float(direction @ planted) >= 0.95
    np.testing.assert_allclose(np.linalg.norm(direction), 1.0)
    # the class means sit at -1.5 u and +1.5 u: the shift along u is 3 (5 standard errors: 0.15)
    assert float(shift @ planted) == pytest.approx(3.0, abs=0.15)


def test_attribute_direction_needs_two_classes():
    from latentatlas.paths import attribute_direction

    with pytest.raises(LatentAtlasError, match="does not split"):
        attribute_direction(np.zeros((5, 3)), np.ones(5))


def test_direction_path_runs_through_its_base(bulk):
    from latentatlas.paths import direction_path

    centre, _ = bulk
    u = np.eye(DIM)[2]
    path = direction_path(centre, u, spread=0.5, steps=5, length=2.0)
    np.testing.assert_allclose(path[2], centre, atol=1e-12)
    np.testing.assert_allclose(path[-1] - path[0], 2 * 2.0 * 0.5 * u, atol=1e-12)


@pytest.mark.parametrize(
    ("given", "start", "label"),
    [(None, None, "centre"), ("7", 7, "from7"), ("synthetic-000007", 7, "from-synthetic-000007")],
)
def test_cli_attribute_path_follows_the_class_mean_difference(given, start, label, tiny_run_copy):
    run = tiny_run_copy
    flags = ["--from", given] if given is not None else []
    args = ["path", str(run.path), "--kind", "attribute", "--attribute", "skin_tone", "--steps", "5", *flags]
    assert exit_status(args) == 0
    vectors, info = _check_outputs(run, run.path / "paths" / f"attribute-skin_tone-{label}-length2-steps5", 5)
    meta = run.metadata()
    skin = meta[meta["subset"] == "train"]["skin_tone"].to_numpy()
    z = run.zpoints("train").astype(np.float64)
    upper = skin > np.median(skin)
    shift = z[upper].mean(axis=0) - z[~upper].mean(axis=0)
    base = z.mean(axis=0) if start is None else run.zpoints()[start].astype(np.float64)
    np.testing.assert_allclose(vectors[2], base, rtol=1e-5, atol=1e-5)
    step = np.diff(vectors.astype(np.float64), axis=0)
    cosines = step @ shift / (np.linalg.norm(step, axis=1) * np.linalg.norm(shift))
    np.testing.assert_allclose(cosines, 1.0, atol=1e-5)
    # half-length: 2 x the bulk's spread along the direction
    u = shift / np.linalg.norm(shift)
    spread = math.sqrt(u @ np.cov(z, rowvar=False) @ u)
    assert np.linalg.norm(vectors[-1].astype(np.float64) - vectors[0]) == pytest.approx(4 * spread, rel=1e-4)
    assert info["options"]["attribute"] == "skin_tone"
    named = {} if given is None else {"from": {"given": given, "row": 7, "image_id": "synthetic-000007"}}
    assert info["named_points"] == named


# ----------------------------------------------------------------------------- --from / --to: image ids and rows


def _celeba_meta(n: int = 30, **columns) -> pd.DataFrame:
    return pd.DataFrame({"index": np.arange(n), "image_id": [f"{i + 1:06d}.jpg" for i in range(n)], **columns})


@pytest.mark.parametrize(
    ("point", "row"),
    [
        ("000008.jpg", 7),  # CelebA's file name
        (" 000008.jpg ", 7),
        ("id:000008.jpg", 7),
        ("id:000008", 7),  # the stem, forced to be read as an id
        ("8", 8),  # no image id is 8: a row number
        ("row:8", 8),
        (8, 8),  # the Python API's row index
        (np.int64(29), 29),
    ],
)
def test_point_row_reads_image_ids_and_row_numbers(point, row):
    from latentatlas.pipelines.path import point_row

    assert point_row(_celeba_meta(), point, "--from") == (row, f"{row + 1:06d}.jpg")


@pytest.mark.parametrize(
    ("meta", "point", "message"),
    [
        (
            _celeba_meta(),
            "000008",
            "--from 000008 is ambiguous: image 000008.jpg (row 7) or row 8; write --from id:000008 or --from row:8",
        ),
        (_celeba_meta(), "00008.jpg", "no z-point has image id '00008.jpg'; did you mean 000008.jpg or "),
        (_celeba_meta(), "portrait.png", "no z-point has image id 'portrait.png'; ids look like 000001.jpg, "),
        (_celeba_meta(), "id:8", "no z-point has image id '8'"),
        (_celeba_meta(), "row:000008.jpg", "row: needs a z-point row number like row:12"),
        (_celeba_meta(), "30", "--from 30 is out of range: the run has 30 z-points (0..29)"),
        (_celeba_meta(), "-1", "--from -1 is out of range"),
        (_celeba_meta(), " ", "--from needs an image id or a z-point row number"),
        (_celeba_meta(), True, "--from needs an image id or a z-point row number"),
        (pd.DataFrame({"image_id": ["a.png", "b.png", "a.png"]}), "a.png", "names 2 z-points (rows 0, 2)"),
        (
            pd.DataFrame({"index": range(4)}),
            "a.png",
            "'a.png' is not a z-point row number, and this run's z-points carry no image ids",
        ),
    ],
)
def test_point_row_mistakes(meta, point, message):
    from latentatlas.pipelines.path import point_row

    with pytest.raises(LatentAtlasError, match=re.escape(message)):
        point_row(meta, point, "--from")


def test_point_row_without_image_ids_takes_row_numbers():
    from latentatlas.pipelines.path import point_row

    assert point_row(pd.DataFrame({"index": range(4)}), "3") == (3, None)


def test_cli_between_image_ids_of_a_celeba_style_store(tiny_run_copy, capsys):
    run = tiny_run_copy
    meta = run.metadata()
    meta["image_id"] = [f"{i + 1:06d}.jpg" for i in range(len(meta))]
    meta.to_parquet(run.zpoints_file("zpoints.parquet"), index=False)
    args = ["path", str(run.path), "--kind", "between", "--steps", "2"]
    assert exit_status([*args, "--from", "000008", "--to", "3"]) == 2
    err = capsys.readouterr().err
    assert "--from 000008 is ambiguous: image 000008.jpg (row 7) or row 8" in err and err.count("\n") == 1
    assert _written(run.path) == []
    assert exit_status([*args, "--from", "000008.jpg", "--to", "row:3"]) == 0
    vectors, info = _check_outputs(run, run.path / "paths" / "between-id-000008.jpg-3-linear-steps2", 2)
    z_all = run.zpoints()
    np.testing.assert_array_equal(vectors[0], z_all[7])
    np.testing.assert_array_equal(vectors[-1], z_all[3])
    assert info["named_points"]["from"] == {"given": "000008.jpg", "row": 7, "image_id": "000008.jpg"}
    assert info["named_points"]["to"]["row"] == 3


@pytest.mark.parametrize(
    ("keep", "flags", "message"),
    [
        # a store without image ids (e.g. imported z-points): only row numbers name a z-point
        (["index", "subset", "skin_tone"], ["--attribute", "skin_tone", "--from", "face.png"], "carry no image ids"),
        # a source without attributes or factors (an image folder)
        (["index", "image_id", "path", "subset", "partition"], ["--attribute", "Smiling"], "has no attributes"),
    ],
)
def test_cli_attribute_path_on_a_store_that_lacks_it(keep, flags, message, tiny_run_copy, capsys):
    run = tiny_run_copy
    run.metadata()[keep].to_parquet(run.zpoints_file("zpoints.parquet"), index=False)
    assert exit_status(["path", str(run.path), "--kind", "attribute", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert _written(run.path) == []
