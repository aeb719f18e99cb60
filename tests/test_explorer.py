"""The explorer's JSON API against the tiny run: known answers for good requests, 4xx + message for bad ones."""

from __future__ import annotations

import base64
import io
import json
import socket

import numpy as np
import pytest
from PIL import Image

from latentatlas import explorer as explorer_module


@pytest.fixture(scope="module")
def client(tiny_run):
    from fastapi.testclient import TestClient

    with TestClient(explorer_module.create_app(tiny_run.path), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def state(client):
    return client.app.state.explorer


def png_pixels(data: bytes | str) -> np.ndarray:
    if isinstance(data, str):
        assert data.startswith("data:image/png;base64,")
        data = base64.b64decode(data.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def train_z(run) -> np.ndarray:
    return np.asarray(run.zpoints("train"), dtype=np.float64)


# ----------------------------------------------------------------------------- good requests


def test_info_describes_the_run(client, tiny_run):
    info = client.get("/api/info").json()
    assert info["latent_dim"] == 16 and info["image_size"] == 32
    assert info["n_points"] == len(tiny_run.zpoints()) == info["n_display"]
    assert info["n_fit"] == len(tiny_run.zpoints("train"))
    assert "gaussian" in info["samplers"] and "uniform-box" in info["samplers"]
    std = np.asarray(info["std"])
    assert info["default_plane"] == list(np.argsort(std)[::-1][:2])  # the two widest axes
    assert info["std"] == pytest.approx(train_z(tiny_run).std(axis=0, ddof=1), rel=1e-6)


def test_index_and_static_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "css")):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert "http://" not in client.get("/static/app.js").text  # no CDN or other outside resource


def test_plane_geometry_in_axes_basis(client, tiny_run):
    z = train_z(tiny_run)
    answer = client.get("/api/plane", params={"basis": "axes", "x": 3, "y": 7}).json()
    assert answer["centre"] == pytest.approx(z.mean(axis=0)[[3, 7]])
    assert answer["origin"] == [0.0, 0.0]
    assert answer["labels"] == ["z[3]", "z[7]"]
    ellipses = answer["ellipses"]
    assert [e["confidence"] for e in ellipses] == [0.5, 0.9, 0.99]
    majors = [e["half_axes"][0] for e in ellipses]
    assert majors == sorted(majors) and majors[0] > 0
    x0, x1, y0, y1 = answer["bounds"]
    assert x0 <= 0 <= x1 and y0 <= 0 <= y1  # the origin's border position stays in view


def test_plane_geometry_in_pca_basis(client, tiny_run, state):
    z = train_z(tiny_run)
    answer = client.get("/api/plane", params={"basis": "pca", "x": 0, "y": 1}).json()
    assert answer["centre"] == [0.0, 0.0]
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(z, rowvar=False)))[::-1]
    from scipy.stats import chi2

    ellipse = answer["ellipses"][1]  # 90 %: principal axes are the ellipse axes, so no tilt beyond 0/90 degrees
    assert ellipse["half_axes"][0] == pytest.approx(np.sqrt(chi2.ppf(0.9, 2) * eigenvalues[0]), rel=1e-5)
    assert ellipse["angle_deg"] % 90 == pytest.approx(0, abs=1e-6) or ellipse["angle_deg"] % 90 == pytest.approx(90)
    # The origin seen from the centre, along the first two principal axes.
    assert answer["origin"] == pytest.approx(-z.mean(axis=0) @ state.pca_axes[:, :2], abs=1e-9)


@pytest.mark.parametrize("basis", ["axes", "pca"])
def test_points_are_the_projected_zpoints(client, tiny_run, state, basis):
    rows = np.frombuffer(client.get("/api/rows").content, dtype="<i4")
    points = np.frombuffer(client.get("/api/points", params={"basis": basis, "x": 2, "y": 5}).content, dtype="<f4")
    points = points.reshape(-1, 2)
    z = np.asarray(tiny_run.zpoints(), dtype=np.float64)[rows]
    expected = z[:, [2, 5]] if basis == "axes" else (z - state.centre) @ state.pca_axes[:, [2, 5]]
    np.testing.assert_allclose(points, expected, rtol=1e-5, atol=1e-5)


def test_decode_a_vector_matches_the_run_decoder(client, tiny_run, state):
    vector = np.array(tiny_run.zpoints()[11], dtype=np.float32)
    answer = client.post("/api/decode", json={"vector": vector.tolist()}).json()
    np.testing.assert_array_equal(png_pixels(answer["image"]), tiny_run.decode(vector[None])[0])
    assert answer["percentile"] == pytest.approx(
        float(state.mahalanobis.percentile(vector[None].astype(np.float64))[0])
    )
    assert isinstance(answer["face"], bool)


def test_decode_plane_point_holds_other_components_at_a_real_point(client, tiny_run):
    base_row = 7
    vector = np.asarray(tiny_run.zpoints()[base_row], dtype=np.float32).copy()
    vector[[1, 4]] = [0.25, -0.5]
    request = {"basis": "axes", "plane": [1, 4], "coords": [0.25, -0.5], "base": base_row, "detect_face": False}
    answer = client.post("/api/decode", json=request).json()
    np.testing.assert_array_equal(png_pixels(answer["image"]), tiny_run.decode(vector[None])[0])
    assert answer["face"] is None


def test_decoding_the_centre_gives_the_lowest_percentile(client, state):
    centre = state.centre
    answer = client.post("/api/decode", json={"plane": [0, 1], "coords": centre[[0, 1]].tolist(), "detect_face": False})
    assert answer.json()["percentile"] == 0.0 and answer.json()["distance"] == pytest.approx(0.0, abs=1e-6)
    far = client.post("/api/decode", json={"plane": [0, 1], "coords": [100.0, -100.0], "detect_face": False}).json()
    assert far["percentile"] == 100.0


def test_pca_plane_coordinates_round_trip(state):
    coords = np.array([[0.3, -0.2], [1.0, 2.0]])
    for base in ("centre", 5):
        vectors = state.from_plane("pca", (2, 0), coords, base)
        np.testing.assert_allclose(state.to_plane(vectors, "pca", (2, 0)), coords, atol=1e-10)
        # Components along the other principal axes are those of the base.
        others = [k for k in range(state.latent_dim) if k not in (0, 2)]
        base_pca = (state.base_vector(base) - state.centre) @ state.pca_axes[:, others]
        np.testing.assert_allclose(
            (vectors - state.centre) @ state.pca_axes[:, others], np.repeat(base_pca[None], 2, 0), atol=1e-10
        )


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_path_strip(client, tiny_run, method):
    request = {"plane": [0, 3], "start": [-1.0, 0.5], "end": [0.8, -0.2], "steps": 5, "method": method}
    answer = client.post("/api/path", json=request).json()
    assert len(answer["images"]) == len(answer["percentiles"]) == len(answer["faces"]) == 5
    points = np.asarray(answer["points"])
    np.testing.assert_allclose(points[0], [-1.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(points[-1], [0.8, -0.2], atol=1e-9)
    # by hand: the ends are the training centre with coordinates 0 and 3 set; a linear path moves evenly,
    # a spherical one turns at a constant angle while its norm moves evenly (White's slerp)
    start, end = train_z(tiny_run).mean(axis=0), train_z(tiny_run).mean(axis=0)
    start[[0, 3]], end[[0, 3]] = [-1.0, 0.5], [0.8, -0.2]
    t = np.linspace(0.0, 1.0, 5)[:, None]
    if method == "linear":
        expected = start + t * (end - start)
    else:
        angle = np.arccos(start @ end / (np.linalg.norm(start) * np.linalg.norm(end)))
        unit_start, unit_end = start / np.linalg.norm(start), end / np.linalg.norm(end)
        direction = (np.sin((1 - t) * angle) * unit_start + np.sin(t * angle) * unit_end) / np.sin(angle)
        expected = direction * ((1 - t) * np.linalg.norm(start) + t * np.linalg.norm(end))
    np.testing.assert_allclose(points, expected[:, [0, 3]], atol=1e-9)
    assert all(png_pixels(image).shape == (32, 32, 3) for image in answer["images"])


def test_slerp_and_lerp_differ_in_the_middle(client):
    request = {"plane": [0, 3], "start": [-1.0, 0.5], "end": [0.8, -0.2], "steps": 5}
    linear = np.asarray(client.post("/api/path", json={**request, "method": "linear"}).json()["points"])
    spherical = np.asarray(client.post("/api/path", json={**request, "method": "slerp"}).json()["points"])
    assert np.abs(linear[2] - spherical[2]).max() > 1e-4


def independent_draws(name: str, z: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The draws of each sampler family, written out with numpy from the training z-points."""
    rng = np.random.default_rng(seed)
    if name == "uniform-box":  # common half-width b whose mean radius b * sqrt(N / 3) is the data's
        b = np.linalg.norm(z, axis=1).mean() / np.sqrt(z.shape[1] / 3)
        return rng.uniform(-b, b, size=(n, z.shape[1]))
    if name == "diagonal-gaussian":
        return z.mean(axis=0) + rng.standard_normal((n, z.shape[1])) * z.std(axis=0, ddof=1)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(z, rowvar=False))  # a factor A with A A^T = cov
    return z.mean(axis=0) + rng.standard_normal((n, z.shape[1])) @ (eigenvectors * np.sqrt(eigenvalues)).T


@pytest.mark.parametrize("name", ["gaussian", "diagonal-gaussian", "uniform-box"])
def test_sample_matches_the_fitted_sampler(client, tiny_run, name):
    answer = client.post("/api/sample", json={"sampler": name, "n": 6, "seed": 3, "plane": [2, 9]}).json()
    expected = independent_draws(name, train_z(tiny_run), 6, seed=3).astype(np.float32)
    np.testing.assert_allclose(answer["points"], expected[:, [2, 9]], rtol=1e-5, atol=1e-5)
    assert len(answer["images"]) == 6
    np.testing.assert_array_equal(png_pixels(answer["images"][0]), tiny_run.decode(expected[:1])[0])
    again = client.post(
        "/api/sample", json={"sampler": name, "n": 6, "seed": 3, "plane": [2, 9], "images": False}
    ).json()
    assert again["points"] == answer["points"] and "images" not in again


def test_sampler_is_fitted_once_and_cached(client, state):
    client.post("/api/sample", json={"sampler": "diagonal-gaussian", "n": 1, "plane": [0, 1], "images": False})
    fitted = state._samplers["diagonal-gaussian"]
    client.post("/api/sample", json={"sampler": "diagonal-gaussian", "n": 1, "plane": [0, 1], "images": False})
    assert state._samplers["diagonal-gaussian"] is fitted


def test_image_of_a_real_point_is_the_source_image(client, tiny_run):
    response = client.get("/api/image/12")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-image-kind"] == "real"
    np.testing.assert_array_equal(png_pixels(response.content), np.asarray(tiny_run.images().images[12]))


def test_point_details(client, tiny_run, state):
    answer = client.get("/api/point/12").json()
    assert answer["index"] == 12
    assert answer["subset"] == tiny_run.metadata()["subset"].iloc[12]
    z = np.asarray(tiny_run.zpoints()[12], dtype=np.float64)[None]
    assert answer["percentile"] == pytest.approx(float(state.mahalanobis.percentile(z)[0]))


# ----------------------------------------------------------------------------- bad requests


def test_no_api_schema_is_served(client):
    """The docs are off, and so is the schema they would be built from."""
    for url in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(url).status_code == 404, url


NAN_VECTOR = '{"vector": [' + ", ".join(["NaN"] * 16) + "]}"
INF_VECTOR = '{"vector": [' + ", ".join(["1.0"] * 15 + ["Infinity"]) + "]}"


@pytest.mark.parametrize(
    "method, url, body, status, fragment",
    [
        ("post", "/api/decode", {"vector": [0.0] * 15}, 400, "15 components"),
        ("post", "/api/decode", NAN_VECTOR, 422, "finite"),
        ("post", "/api/decode", INF_VECTOR, 422, "finite"),
        ("post", "/api/decode", {"vector": [1e30] * 16}, 422, "less than or equal"),
        ("post", "/api/decode", {}, 422, "either"),
        ("post", "/api/decode", {"vector": [0.0] * 16, "plane": [0, 1], "coords": [0, 0]}, 422, "either"),
        ("post", "/api/decode", {"coords": [0, 0]}, 422, "plane"),
        ("post", "/api/decode", {"plane": [2, 2], "coords": [0, 0]}, 400, "differ"),
        ("post", "/api/decode", {"plane": [0, 16], "coords": [0, 0]}, 400, "out of range"),
        ("post", "/api/decode", {"plane": [0, -1], "coords": [0, 0]}, 422, "greater than or equal"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [0, 0], "base": 400}, 400, "out of range"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [0, 0], "base": "origin"}, 422, "centre"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [0, 0], "basis": "tsne"}, 422, "axes"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [0, 0], "colour": 1}, 422, "extra"),
        ("post", "/api/decode", "not json", 422, "JSON"),
        ("post", "/api/path", {"plane": [0, 1], "start": [0, 0], "end": [1, 1], "steps": 1000}, 422, "steps"),
        ("post", "/api/path", {"plane": [0, 1], "start": [0, 0], "end": [1, 1], "steps": 1}, 422, "steps"),
        ("post", "/api/path", {"plane": [0, 1], "start": [0, 0], "end": [1, 1], "method": "cubic"}, 422, "method"),
        ("post", "/api/path", {"plane": [1, 1], "start": [0, 0], "end": [1, 1]}, 400, "differ"),
        ("post", "/api/sample", {"sampler": "nonsense", "plane": [0, 1]}, 400, "unknown sampler"),
        ("post", "/api/sample", {"sampler": "gaussian", "n": 100000, "plane": [0, 1]}, 422, "n:"),
        ("post", "/api/sample", {"sampler": "gaussian", "n": 0, "plane": [0, 1]}, 422, "n:"),
        ("post", "/api/sample", {"sampler": "gaussian", "seed": -1, "plane": [0, 1]}, 422, "seed"),
        # strict types (issue 22): JSON true is not 1, "5" is not 5, 1.0 is not an index
        ("post", "/api/sample", {"sampler": "gaussian", "n": True, "plane": [0, 1]}, 422, "n:"),
        ("post", "/api/sample", {"sampler": "gaussian", "n": "5", "plane": [0, 1]}, 422, "n:"),
        ("post", "/api/sample", {"sampler": "gaussian", "seed": "5", "plane": [0, 1]}, 422, "seed"),
        ("post", "/api/sample", {"sampler": "gaussian", "plane": [0, 1], "images": 1}, 422, "images"),
        ("post", "/api/decode", {"plane": [True, 1], "coords": [0, 0]}, 422, "plane"),
        ("post", "/api/decode", {"plane": ["0", 1], "coords": [0, 0]}, 422, "plane"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": ["5", 0]}, 422, "coords"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [True, 0]}, 422, "coords"),
        ("post", "/api/decode", {"vector": [True] * 16}, 422, "vector"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [0, 0], "base": "5"}, 422, "base"),
        ("post", "/api/decode", {"plane": [0, 1], "coords": [0, 0], "detect_face": "yes"}, 422, "detect_face"),
        ("post", "/api/path", {"plane": [0, 1], "start": [0, 0], "end": [1, 1], "steps": "8"}, 422, "steps"),
        ("post", "/api/path", {"plane": [0, 1], "start": [0, 0], "end": [1, 1], "steps": 8.0}, 422, "steps"),
        ("get", "/api/plane?x=3&y=3", None, 400, "differ"),
        ("get", "/api/plane?x=0&y=99", None, 400, "out of range"),
        ("get", "/api/points?x=0", None, 422, "y"),
        ("get", "/api/points?x=0&y=1&basis=tsne", None, 422, "basis"),
        ("get", "/api/image/400", None, 400, "out of range"),
        ("get", "/api/image/-3", None, 400, "out of range"),
        ("get", "/api/image/abc", None, 422, "integer"),
        ("get", "/api/point/99999", None, 400, "out of range"),
    ],
)
def test_bad_requests_get_4xx_and_a_message(client, method, url, body, status, fragment):
    if method == "get":
        response = client.get(url)
    elif isinstance(body, str):
        response = client.post(url, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(url, json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and fragment.lower() in detail.lower(), detail
    assert "\n" not in detail


def test_many_invalid_components_give_one_short_message(client):
    response = client.post("/api/decode", content=NAN_VECTOR, headers={"content-type": "application/json"})
    assert "and 13 more errors" in response.json()["detail"]


def test_oversized_body_is_refused(client):
    body = json.dumps({"vector": [0.0] * 300_000})
    response = client.post("/api/decode", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/static/../config.json",
        "/static/%2e%2e/config.json",
        "/static/..%2fconfig.json",
        "/static/%2e%2e%2f%2e%2e%2fconfig.json",
        "/static/..%5cconfig.json",
        "/static//etc/passwd",
        "/config.json",
        "/zpoints.npy",
        "/api/image/..%2fconfig.json",
    ],
)
def test_no_file_outside_the_static_folder_is_served(client, url):
    response = client.get(url)
    assert 400 <= response.status_code < 500
    assert '"model"' not in response.text and "root:" not in response.text


def test_a_run_without_zpoints_is_refused_with_the_command_to_run(tiny_run, tmp_path):
    import shutil

    from latentatlas.errors import LatentAtlasError

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_run.path / name, bare / name)
    with pytest.raises(LatentAtlasError, match="latentatlas encode"):
        explorer_module.create_app(bare)


def test_cli_explore_refuses_a_busy_port(tiny_run, capsys):
    import socket

    from latentatlas.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["explore", str(tiny_run.path), "--port", str(port), "--no-browser"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("latentatlas: error: cannot serve on 127.0.0.1") and "\n" not in error


def test_cli_explore_rejects_a_bad_port(tiny_run, capsys):
    from latentatlas.cli import main

    assert main(["explore", str(tiny_run.path), "--port", "70000", "--no-browser"]) == 2
    assert "port must be in 1..65535" in capsys.readouterr().err


def test_display_points_are_a_seeded_subsample(tiny_run):
    from fastapi.testclient import TestClient

    with TestClient(explorer_module.create_app(tiny_run.path, max_points=50), base_url="http://127.0.0.1") as small:
        info = small.get("/api/info").json()
        rows = np.frombuffer(small.get("/api/rows").content, dtype="<i4")
        points = np.frombuffer(small.get("/api/points?x=0&y=1").content, dtype="<f4").reshape(-1, 2)
    assert info["n_display"] == 50 == len(rows) == len(points) and info["n_points"] == len(tiny_run.zpoints())
    assert len(np.unique(rows)) == 50 and np.all(np.diff(rows) > 0)
    np.testing.assert_allclose(points, np.asarray(tiny_run.zpoints())[rows][:, [0, 1]], rtol=1e-6)
    assert info["n_fit"] == len(tiny_run.zpoints("train"))  # statistics still use every training point


# ----------------------------------------------------------------------------- exposure: Host, headers, bodies


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8765", "127.0.0.1.evil.example.com"])
def test_a_foreign_host_header_is_refused(client, host):
    response = client.get("/api/image/0", headers={"Host": host})
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/plain")
    assert "Invalid host header" in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8765", "localhost:8765"])
def test_the_bound_host_names_are_answered(client, host):
    assert client.get("/api/info", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "bound, accepted, refused",
    [
        ("127.0.0.1", ["127.0.0.1", "localhost"], ["evil.example.com", "0.0.0.0"]),
        ("192.168.1.20", ["192.168.1.20", "127.0.0.1", "localhost"], ["evil.example.com"]),
        ("0.0.0.0", ["127.0.0.1", "localhost", socket.gethostname()], ["evil.example.com", "0.0.0.0"]),
    ],
)
def test_allowed_hosts_follow_the_bound_address(bound, accepted, refused):
    hosts = explorer_module.allowed_hosts(bound)
    assert all(name in hosts for name in accepted) and not any(name in hosts for name in refused)


@pytest.mark.parametrize("url", ["/", "/api/info", "/static/app.js", "/api/point/99999", "/no-such-page"])
def test_every_answer_carries_the_security_headers(client, url):
    headers = client.get(url).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_a_body_with_a_false_content_length_is_refused(client):
    response = client.post("/api/decode", content=b"{}", headers={"content-length": "abc"})
    assert response.status_code == 413


def test_a_chunked_body_over_the_limit_is_refused_in_the_app(client):
    """No Content-Length at all: the bytes are counted as they arrive (TestClient streams a generator)."""
    chunk = b" " * 65536
    sent = [0]

    def body():
        for _ in range(64):  # 4 MiB, four times the limit
            sent[0] += len(chunk)
            yield chunk

    response = client.post("/api/decode", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than 1048576 bytes" in response.json()["detail"]


def test_a_chunked_upload_of_120_mb_is_cut_off_without_buffering_it(tiny_run):
    """A real socket speaking chunked HTTP/1.1 to uvicorn: the answer is 413 after about the limit, and
    the server never holds more than the limit (peak of Python allocations while it reads)."""
    import select
    import socket as sockets
    import tracemalloc

    from explorer_server import serving

    total = 120 * 2**20
    chunk = b"[" + b"0," * 32767 + b"0"  # 64 KiB of a JSON array

    def body():
        for _ in range(total // len(chunk)):
            yield chunk

    app = explorer_module.create_app(tiny_run.path)
    with serving(app) as port:
        tracemalloc.start()
        sent = 0
        answer = b""
        with sockets.create_connection(("127.0.0.1", port), timeout=20) as connection:
            connection.sendall(
                b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for piece in body():
                if select.select([connection], [], [], 0)[0]:
                    break  # the server has answered
                try:
                    connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(piece)
            try:
                answer = connection.recv(65536)
            except ConnectionResetError:
                pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"nosniff" in answer.lower()
    assert sent < 24 * 2**20, f"{sent / 2**20:.0f} MiB went in before the refusal"
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB of Python allocations"


# ----------------------------------------------------------------------------- concurrent decoding


def test_concurrent_decodes_share_forward_passes_and_get_their_own_rows():
    import threading
    import time

    from latentatlas.explorer.batching import DecodeBatcher

    calls: list[int] = []

    def slow_decode(vectors: np.ndarray) -> np.ndarray:
        calls.append(len(vectors))
        time.sleep(0.05)  # a forward pass: requests arriving meanwhile must wait for the next one together
        return np.repeat(vectors[:, :1, None, None], 3, axis=3).astype(np.float32) * np.ones((1, 2, 2, 3))

    batcher = DecodeBatcher(slow_decode)
    start = threading.Barrier(12)
    results: dict[int, np.ndarray] = {}

    def client(i: int) -> None:
        start.wait()
        results[i] = batcher.decode(np.full((i % 3 + 1, 4), float(i)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(calls) == sum(i % 3 + 1 for i in range(12)) == batcher.rows
    assert len(calls) <= 4 and batcher.batches == len(calls)  # 12 requests, a handful of forward passes
    for i, images in results.items():
        assert images.shape == (i % 3 + 1, 2, 2, 3) and np.all(images == i)


def _gated_batcher():
    """A batcher whose forward passes wait for `gate` and record the values (column 0) of the rows they decode."""
    import threading

    from latentatlas.explorer.batching import DecodeBatcher

    calls: list[list[float]] = []
    gate = threading.Event()

    def decode(vectors: np.ndarray) -> np.ndarray:
        gate.wait(5)
        calls.append(sorted(set(vectors[:, 0].tolist())))
        return np.repeat(vectors[:, :1, None, None], 3, axis=3) * np.ones((1, 2, 2, 3))

    return DecodeBatcher(decode, max_rows=32), calls, gate


def test_a_click_waits_for_one_forward_pass_not_for_the_queued_sampler_draws():
    """Mixed load (issue 22, item 8): clicks (1 vector) go before queued draws (16 vectors), a batch holds at
    most max_rows vectors, and the draws still all come back, in their order of arrival."""
    import threading
    import time

    batcher, calls, gate = _gated_batcher()
    results: dict[int, np.ndarray] = {}

    def request(i: int, rows: int) -> None:
        results[i] = batcher.decode(np.full((rows, 4), float(i)))

    threads = [threading.Thread(target=request, args=(0, 16))]  # in flight while the rest queue up
    threads[0].start()
    time.sleep(0.2)
    for i, rows in [(1, 16), (2, 16), (3, 16), (4, 1), (5, 1)]:
        threads.append(threading.Thread(target=request, args=(i, rows)))
        threads[-1].start()
        time.sleep(0.05)
    gate.set()
    for thread in threads:
        thread.join()
    assert calls == [[0.0], [1.0, 4.0, 5.0], [2.0, 3.0]]  # the clicks ride with the first draw that fits
    assert all(np.all(results[i] == i) for i in range(6)) and batcher.rows == 4 * 16 + 2


def test_a_queued_draw_is_not_starved_by_a_stream_of_clicks():
    """Mixed load (issue 22, item 8): the oldest job rides in the next batch; the clicks fill the rest of it."""
    import threading
    import time

    batcher, calls, gate = _gated_batcher()
    threads = [threading.Thread(target=batcher.decode, args=(np.full((1, 4), 0.0),))]  # in flight
    threads[0].start()
    time.sleep(0.2)
    for i, rows in [(1, 16)] + [(i, 1) for i in range(2, 22)]:  # a draw, then 20 clicks
        threads.append(threading.Thread(target=batcher.decode, args=(np.full((rows, 4), float(i)),)))
        threads[-1].start()
        time.sleep(0.02)
    gate.set()
    for thread in threads:
        thread.join()
    assert calls[1] == [float(i) for i in range(1, 18)]  # the draw and the 16 oldest clicks that fit beside it
    assert calls[2] == [float(i) for i in range(18, 22)] and batcher.rows == 1 + 16 + 20


def test_a_slow_first_fit_does_not_hold_up_fitted_samplers(state, monkeypatch):
    import threading
    import time

    import latentatlas.explorer.state as state_module

    state.sampler("diagonal-gaussian")  # fitted before
    started, release = threading.Event(), threading.Event()
    real = state_module.make_sampler

    class SlowFit:
        def fit(self, z):
            started.set()
            release.wait(5)
            return real("gaussian").fit(z)

    monkeypatch.setattr(state_module, "make_sampler", lambda name: SlowFit() if name == "gaussian" else real(name))
    state._samplers.pop("gaussian", None)
    slow = threading.Thread(target=state.sampler, args=("gaussian",))
    slow.start()
    assert started.wait(5)
    t0 = time.perf_counter()
    assert state.sampler("diagonal-gaussian") is not None
    assert time.perf_counter() - t0 < 1.0  # not behind the fit that is still running
    release.set()
    slow.join()


def test_a_decode_error_reaches_every_waiting_request_and_the_batcher_lives_on():
    from latentatlas.errors import LatentAtlasError
    from latentatlas.explorer.batching import DecodeBatcher

    def decode(vectors: np.ndarray) -> np.ndarray:
        if np.isnan(vectors).any():
            raise LatentAtlasError("cannot decode NaN")
        return np.zeros((len(vectors), 2, 2, 3), np.uint8)

    batcher = DecodeBatcher(decode)
    with pytest.raises(LatentAtlasError, match="cannot decode NaN"):
        batcher.decode(np.full((1, 4), np.nan))
    assert batcher.decode(np.zeros((3, 4))).shape == (3, 2, 2, 3)


def test_concurrent_clicks_decode_exactly_what_one_click_decodes(client, state, tiny_run):
    from concurrent.futures import ThreadPoolExecutor

    from latentatlas.store import decode_latents

    z = np.asarray(tiny_run.zpoints()[:8], dtype=np.float64)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda v: client.post("/api/decode", json={"vector": v.tolist()}).json(), z))
    expected = decode_latents(tiny_run.load_model(), z.astype(np.float32))
    for answer, image in zip(answers, expected):
        np.testing.assert_array_equal(png_pixels(answer["image"]), image)


# ----------------------------------------------------------------------------- colouring by attributes, the UMAP map


def test_columns_list_the_generating_factors_and_subsets(client, tiny_run):
    columns = {c["name"]: c for c in client.get("/api/columns").json()["columns"]}
    meta = tiny_run.metadata()
    assert {"index", "image_id", "path"}.isdisjoint(columns)
    assert columns["subset"] == {"name": "subset", "kind": "category", "labels": ["train", "val"]}
    assert columns["skin_tone"]["kind"] == "numeric"
    assert columns["skin_tone"]["min"] == pytest.approx(float(meta["skin_tone"].min()))
    assert columns["skin_tone"]["max"] == pytest.approx(float(meta["skin_tone"].max()))
    assert columns == {c["name"]: c for c in client.get("/api/info").json()["columns"]}


@pytest.mark.parametrize("name", ["skin_tone", "mouth_curve", "subset"])
def test_column_values_follow_the_display_points(client, tiny_run, state, name):
    values = np.frombuffer(client.get(f"/api/column/{name}").content, dtype="<f4")
    expected = tiny_run.metadata()[name].to_numpy()[state.display_rows]
    if name == "subset":
        expected = (expected == "val").astype(np.float32)  # codes of the sorted labels train, val
    np.testing.assert_allclose(values, expected.astype(np.float32), rtol=1e-6)


def test_an_unknown_column_is_refused_with_the_nearest_name(client):
    response = client.get("/api/column/skin_tones")
    assert response.status_code == 400 and "did you mean 'skin_tone'" in response.json()["detail"]


def test_binary_columns_are_told_apart_from_numeric_ones():
    import pandas as pd

    from latentatlas.embedding import colour_columns

    meta = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "Male": [1, -1, 1],
            "Smiling": [True, False, False],
            "age": [20.0, 33.0, 40.5],
            "path": ["x", "y", "z"],
            "note": ["one", "two", "three"],
        }
    )
    columns = colour_columns(meta)
    assert [columns[n]["kind"] for n in ("Male", "Smiling", "age", "note")] == [
        "binary",
        "binary",
        "numeric",
        "category",
    ]
    assert columns["Male"]["min"] == -1 and columns["age"]["max"] == 40.5 and "image_id" not in columns


# ----------------------------------------------------------------------------- colouring by region and class


def test_points_are_coloured_by_the_analysis_regions(tiny_analysed_run):
    from latentatlas.explorer.state import ExplorerState

    run = tiny_analysed_run
    analysis = json.loads((run.path / "analysis" / "analysis.json").read_text())
    k = analysis["regions"]["n_regions"]
    stored = np.load(run.path / "analysis" / analysis["arrays"]["region_labels"])
    assert stored.shape == (len(run.zpoints()),) and set(np.unique(stored)) == set(range(k))
    # the labels are the analysis's own assignment: on the training rows they give its region shares
    train = run.metadata()["subset"].to_numpy() == "train"
    shares = np.bincount(stored[train], minlength=k) / train.sum()
    np.testing.assert_allclose(shares, [r["share"] for r in analysis["regions"]["regions"]], atol=1e-12)
    state = ExplorerState(run, max_points=150, seed=3)
    assert state.regions_note is None
    column = state.info()["columns"][0]  # offered first
    assert column == {"name": "region", "kind": "category", "labels": [f"region {r}" for r in range(k)]}
    values = state.column_values("region")
    assert values.dtype == np.float32 and len(values) == 150
    np.testing.assert_array_equal(values, stored[state.display_rows].astype(np.float32))


@pytest.mark.parametrize(
    "damage, note",
    [
        ("stale", "the analysis is stale"),
        ("short", "region_labels.npy does not match the 400 z-points"),
        ("absent", "no regions: the run has no analysis; run `latentatlas analyze"),
    ],
)
def test_regions_of_another_store_are_not_offered(tiny_analysed_run, tmp_path, damage, note):
    import shutil

    from latentatlas.explorer.state import ExplorerState
    from latentatlas.store import Run

    run = Run(shutil.copytree(tiny_analysed_run.path, tmp_path / "run"))
    path = run.path / "analysis" / "analysis.json"
    if damage == "stale":
        path.write_text(json.dumps({**json.loads(path.read_text()), "weights_id": "0f0f0f0f0f0f"}))
    elif damage == "short":
        np.save(run.path / "analysis" / "region_labels.npy", np.zeros(399, np.int16))
    else:
        shutil.rmtree(run.path / "analysis")
    state = ExplorerState(run)
    assert "region" not in state.columns and note in (state.regions_note or "")
    assert state.info()["regions_note"] == state.regions_note


def test_points_are_coloured_by_class(tiny_run, tmp_path):
    import shutil

    import pandas as pd

    from latentatlas.explorer.state import ExplorerState
    from latentatlas.store import Run

    run = Run(shutil.copytree(tiny_run.path, tmp_path / "run"))
    meta_path = run.zpoints_file("zpoints.parquet")
    meta = pd.read_parquet(meta_path)
    classes = (np.arange(len(meta)) * 7) % 12  # 12 classes: "10" and "11" sort after "9"
    meta["class"] = classes
    meta.to_parquet(meta_path)
    state = ExplorerState(run, max_points=200, seed=1)
    assert state.columns["class"] == {"name": "class", "kind": "category", "labels": [str(c) for c in range(12)]}
    np.testing.assert_array_equal(state.column_values("class"), classes[state.display_rows].astype(np.float32))


@pytest.mark.parametrize(
    "values, kind, labels",
    [
        ([3, 1, 2, 1], "category", ["1", "2", "3"]),
        ([1.0, None, 2.0, 2.0], "category", ["1", "2"]),  # float with a gap: labels without ".0"
        ([0, 1, 1, 0], "category", ["0", "1"]),  # two classes stay classes, not a yes/no column
        (list(range(30)), "numeric", None),  # more classes than colours: a number
    ],
)
def test_a_class_column_is_a_category(values, kind, labels):
    import pandas as pd

    from latentatlas.embedding import colour_columns

    column = colour_columns(pd.DataFrame({"class": values}))["class"]
    assert column["kind"] == kind and column.get("labels") == labels


@pytest.mark.slow
def test_the_umap_map_places_every_point_and_clicks_decode_the_nearest_real_one(client, state, tiny_run):
    from latentatlas.store import decode_latents

    geometry = client.get("/api/plane", params={"basis": "umap", "x": 0, "y": 1}).json()
    assert geometry["labels"] == ["UMAP[0]", "UMAP[1]"] and geometry["origin"] is None and geometry["ellipses"] == []
    points = np.frombuffer(client.get("/api/points?basis=umap&x=0&y=1").content, dtype="<f4").reshape(-1, 2)
    assert points.shape == (len(state.display_rows), 2) and np.isfinite(points).all()
    x0, x1, y0, y1 = geometry["bounds"]
    inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    assert inside.mean() > 0.99
    k = 17
    click = (points[k] + 1e-4).tolist()
    answer = client.post("/api/decode", json={"basis": "umap", "plane": [0, 1], "coords": click}).json()
    row = int(state.display_rows[k])
    assert answer["row"] == row
    expected = decode_latents(tiny_run.load_model(), np.asarray(tiny_run.zpoints()[row : row + 1], np.float32))[0]
    np.testing.assert_array_equal(png_pixels(answer["image"]), expected)
    # Nothing but real points can be placed on the map: paths and samples say so.
    path = {"basis": "umap", "plane": [0, 1], "start": [0, 0], "end": [1, 1], "steps": 3}
    for url, body in (("/api/path", path), ("/api/sample", {"sampler": "gaussian", "basis": "umap", "plane": [0, 1]})):
        response = client.post(url, json=body)
        assert response.status_code == 400 and "linear basis" in response.json()["detail"]
    assert client.get("/api/plane", params={"basis": "umap", "x": 0, "y": 2}).status_code == 400
