"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) without dlib: the file read
in NumPy, the network rebuilt in PyTorch, exported once to ONNX and run through ONNX Runtime in batches.

dlib's own descriptor (`face_recognition_model_v1.compute_face_descriptor`) is about 98 % of a face
embedding's cost in the dlib-bin wheel, which has no BLAS; through ONNX Runtime whole embeddings ran 13-26x
faster on the 2-core CPU (docs/evaluation.md gives the figures), descriptors within 5.4e-7 of dlib's
(tests/test_dlib_resnet.py holds them within 1e-5).

The file format, from dlib's source (serialize.h, dnn/core.h, dnn/layers.h, dnn/input.h, cuda/tensor.h):
integers are a control byte (low 4 bits: byte count; 0x80: negative) then little-endian bytes; floats are a
mantissa and a base-2 exponent, both such integers; strings are a length then bytes; bools are ASCII '1' /
'0'; a tensor is a version, four sizes and raw little-endian float32. A network serializes from its loss
layer inwards: every wrapper writes its version on the way in, then the input layer, then each layer's
settings and parameters on the way back out. The architecture is dnn_face_recognition_ex.cpp's `anet_type`,
and the reader checks the file against it layer by layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentatlas.data.cache import default_cache_dir
from latentatlas.errors import LatentAtlasError
from latentatlas.evaluation.onnx_export import export_once, file_digest, session

CHIP_SIDE = 150  # input_rgb_image_sized<150>; get_face_chip_details(shape, 150, 0.25) makes such chips
CHIP_PADDING = 0.25
DESCRIPTOR_DIM = 128
BATCH = 32  # chips per ONNX Runtime call


# ----------------------------------------------------------------------------- the architecture


@dataclass(frozen=True)
class Layer:
    """One layer of the network, outermost first as dlib writes them. `kind`: con, affine, relu, max_pool,
    avg_pool, add_prev, tag, skip or fc; `tag`: the tag a tag / skip / add_prev layer names."""

    kind: str
    filters: int = 0
    size: int = 0  # window / kernel side; 0: the whole input (avg_pool_everything)
    stride: int = 1
    tag: int = 0

    @property
    def padding(self) -> int:
        # dlib's default for con, max_pool and avg_pool: none when striding, else half the window
        return 0 if self.stride != 1 else self.size // 2


def _block(filters: int, stride: int) -> list[Layer]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [
        Layer("affine"),
        Layer("con", filters, 3, 1),
        Layer("relu"),
        Layer("affine"),
        Layer("con", filters, 3, stride),
    ]


def _ares(filters: int) -> list[Layer]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [Layer("relu"), Layer("add_prev", tag=1), *_block(filters, 1), Layer("tag", tag=1)]


def _ares_down(filters: int) -> list[Layer]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        Layer("relu"),
        Layer("add_prev", tag=2),
        Layer("avg_pool", size=2, stride=2),
        Layer("skip", tag=1),
        Layer("tag", tag=2),
        *_block(filters, 2),
        Layer("tag", tag=1),
    ]


def face_resnet_layers() -> list[Layer]:
    """dnn_face_recognition_ex.cpp's anet_type below its loss layer, outermost first."""
    levels = (
        _ares_down(256)
        + _ares(256) * 2
        + _ares_down(256)
        + _ares(128) * 2
        + _ares_down(128)
        + _ares(64) * 3
        + _ares_down(64)
        + _ares(32) * 3
    )
    return [
        Layer("fc", DESCRIPTOR_DIM),
        Layer("avg_pool", size=0, stride=1),
        *levels,
        Layer("max_pool", size=3, stride=2),
        Layer("relu"),
        Layer("affine"),
        Layer("con", 32, 7, 2),
    ]


# ----------------------------------------------------------------------------- reading dlib's format


class _Reader:
    """dlib's serialization primitives over the file's bytes; every failure names the file and the offset."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.at = 0

    def fail(self, what: str) -> LatentAtlasError:
        return LatentAtlasError(f"{self.name} is not dlib's face-recognition ResNet: {what} at byte {self.at}")

    def take(self, count: int, what: str) -> bytes:
        if self.at + count > len(self.data):
            raise self.fail(f"file ends inside {what} (truncated?)")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def integer(self, what: str = "an integer") -> int:
        control = self.take(1, what)[0]
        count = control & 0x0F
        if count == 0 or count > 8 or control & 0x70:
            raise self.fail(f"bad integer control byte {control:#04x} for {what}")
        value = int.from_bytes(self.take(count, what), "little")
        return -value if control & 0x80 else value

    def real(self, what: str = "a float") -> float:
        mantissa = self.integer(what)
        exponent = self.integer(what)
        if exponent >= 32000:  # float_details' markers for inf, -inf and nan
            return (float("inf"), float("-inf"), float("nan"))[min(exponent - 32000, 2)]
        return float(np.ldexp(float(mantissa), exponent))

    def text(self, what: str = "a name") -> str:
        length = self.integer(what)
        if not 0 <= length <= 256:
            raise self.fail(f"implausible string length {length} for {what}")
        return self.take(length, what).decode("latin-1")

    def flag(self, what: str = "a flag") -> bool:
        char = self.take(1, what)
        if char not in (b"0", b"1"):
            raise self.fail(f"expected '0' or '1' for {what}, found {char!r}")
        return char == b"1"

    def version(self, expected: tuple[int, ...], what: str) -> int:
        version = self.integer(what)
        if version not in expected:
            raise self.fail(f"{what} has version {version}, expected {' or '.join(map(str, expected))}")
        return version

    def name_in(self, expected: tuple[str, ...], what: str) -> str:
        start = self.at
        name = self.text(what)
        if name not in expected:
            self.at = start
            raise self.fail(f"expected {what} ({' / '.join(expected)}), found {name!r}")
        return name

    def tensor(self, what: str) -> np.ndarray:
        self.version((2,), f"the tensor of {what}")
        shape = tuple(self.integer(what) for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"negative tensor shape {shape} in {what}")
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count, what), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_shape(self, what: str) -> tuple[int, ...]:
        self.version((1,), f"the tensor view of {what}")
        return tuple(self.integer(what) for _ in range(4))

    def expect(self, found: Any, wanted: Any, what: str) -> None:
        if found != wanted:
            raise self.fail(f"{what} is {found}, expected {wanted}")


@dataclass
class ResNetWeights:
    """The network's parameters as read from the file: the input's channel means (RGB, 0..255) and, per
    layer innermost first, its Layer and arrays (con: weight (out, in, k, k), bias (out,); affine: gamma,
    beta (c,); fc: weight (in, out))."""

    mean_rgb: np.ndarray
    layers: list[tuple[Layer, dict[str, np.ndarray]]] = field(default_factory=list)


def _read_details(reader: _Reader, layer: Layer, index: int) -> dict[str, np.ndarray]:
    what = f"layer {index} ({layer.kind})"
    if layer.kind == "con":
        version = reader.name_in(("con_4", "con_5", "con_6"), f"a convolution for {what}")
        params = reader.tensor(what)
        reader.expect(reader.integer(what), layer.filters, f"{what}'s filter count")
        reader.expect((reader.integer(what), reader.integer(what)), (layer.size, layer.size), f"{what}'s kernel")
        reader.expect((reader.integer(what), reader.integer(what)), (layer.stride,) * 2, f"{what}'s stride")
        reader.expect((reader.integer(what), reader.integer(what)), (layer.padding,) * 2, f"{what}'s padding")
        filters, biases = reader.alias_shape(what), reader.alias_shape(what)
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.real(what)
        use_bias = reader.flag(what) if version in ("con_5", "con_6") else True
        if version == "con_6" and reader.flag(what):
            raise reader.fail(f"{what} has a fused relu, which this network does not")
        count = int(np.prod(filters))
        flat = params.reshape(-1)
        if flat.size != count + (int(np.prod(biases)) if use_bias else 0) or filters[0] != layer.filters:
            raise reader.fail(f"{what}'s parameters do not fit its shapes {filters} and {biases}")
        bias = flat[count:] if use_bias else np.zeros(layer.filters, np.float32)
        return {"weight": flat[:count].reshape(filters), "bias": bias.reshape(layer.filters)}
    if layer.kind == "affine":
        version = reader.name_in(("affine_", "affine_2"), f"an affine layer for {what}")
        params = reader.tensor(what).reshape(-1)
        gamma, beta = reader.alias_shape(what), reader.alias_shape(what)
        reader.expect(reader.integer(what), 0, f"{what}'s mode (0: per channel)")
        if version == "affine_2" and reader.flag(what):
            return {}  # disabled: the identity
        channels = int(np.prod(gamma))
        if gamma != beta or params.size != 2 * channels:
            raise reader.fail(f"{what}'s parameters do not fit its shapes {gamma} and {beta}")
        return {"gamma": params[:channels], "beta": params[channels:]}
    if layer.kind == "relu":
        if reader.name_in(("relu_", "relu_2"), f"a relu for {what}") == "relu_2" and reader.flag(what):
            return {"disabled": np.ones(1)}
        return {}
    if layer.kind in ("max_pool", "avg_pool"):
        reader.name_in((f"{layer.kind}_2",), f"a {layer.kind} for {what}")
        reader.expect((reader.integer(what), reader.integer(what)), (layer.size, layer.size), f"{what}'s window")
        reader.expect((reader.integer(what), reader.integer(what)), (layer.stride,) * 2, f"{what}'s stride")
        reader.expect((reader.integer(what), reader.integer(what)), (layer.padding,) * 2, f"{what}'s padding")
        return {}
    if layer.kind == "add_prev":
        reader.name_in(("add_prev_",), f"an add_prev layer for {what}")
        return {}
    if layer.kind == "fc":
        version = reader.name_in(("fc_2", "fc_3"), f"a fully connected layer for {what}")
        reader.expect(reader.integer(what), layer.filters, f"{what}'s output count")
        inputs = reader.integer(what)
        params = reader.tensor(what).reshape(-1)
        weights, _ = reader.alias_shape(what), reader.alias_shape(what)
        reader.expect(reader.integer(what), 1, f"{what}'s bias mode (1: no bias)")
        for _ in range(4):
            reader.real(what)
        if version == "fc_3":
            reader.flag(what)
        if params.size != inputs * layer.filters or int(np.prod(weights)) != params.size:
            raise reader.fail(f"{what}'s parameters do not fit {inputs} x {layer.filters}")
        return {"weight": params.reshape(inputs, layer.filters)}
    raise AssertionError(layer.kind)


def read_face_resnet(path: str | Path) -> ResNetWeights:
    """Parse dlib's serialized face-recognition ResNet, checking every layer against `face_resnet_layers()`;
    a file that is truncated or holds another network fails with one LatentAtlasError line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LatentAtlasError(f"cannot read the dlib face model {path}: {exc.strerror or exc}") from None
    reader = _Reader(data, path.name)
    layers = face_resnet_layers()
    reader.version((1,), "the loss layer")
    if reader.name_in(("loss_metric_", "loss_metric_2"), "the metric loss") == "loss_metric_2":
        reader.real("the loss margin")
        reader.real("the loss distance threshold")
    versions = []
    for index, layer in enumerate(layers):  # wrappers write their versions on the way in
        innermost = index == len(layers) - 1
        if layer.kind in ("tag", "skip"):
            versions.append(reader.version((1,), f"layer {index} ({layer.kind}{layer.tag})"))
        else:
            versions.append(reader.version((2, 3) if innermost else (1, 2), f"layer {index} ({layer.kind})"))
    reader.name_in(("input_rgb_image_sized",), "the input layer")
    mean_rgb = np.array([reader.real("the input's channel mean") for _ in range(3)], dtype=np.float32)
    side = (reader.integer("the input's side"), reader.integer("the input's side"))
    reader.expect(side, (CHIP_SIDE, CHIP_SIDE), "the input's size")
    weights = ResNetWeights(mean_rgb)
    for index in reversed(range(len(layers))):  # then settings and parameters on the way out
        layer = layers[index]
        if layer.kind in ("tag", "skip"):
            weights.layers.append((layer, {}))
            continue
        arrays = _read_details(reader, layer, index)
        for _ in range(3):  # setup done, gradient stale, output disabled
            reader.flag(f"layer {index}'s state")
        for _ in range(3):  # gradient buffers, empty in a saved network
            reader.tensor(f"layer {index}'s buffers")
        if index == len(layers) - 1 and versions[index] == 3:
            reader.integer("the sample expansion factor")
        weights.layers.append((layer, arrays))
    if reader.at != len(data):
        raise reader.fail(f"{len(data) - reader.at} bytes left after the last layer")
    return weights


# ----------------------------------------------------------------------------- the network in PyTorch


class FaceResNet(nn.Module):
    """The network of `ResNetWeights`: (n, 150, 150, 3) float RGB chips, 0..255 -> (n, 128) descriptors.

    Each affine layer is folded into the convolution before it (they always pair). dlib's add_prev adds
    tensors of different shapes by zero-padding the smaller at the end of each axis (cpu_dlib.cpp's add):
    the shapes are fixed by the 150 px input, so the pads are worked out here, once.
    """

    mean: torch.Tensor
    fc: torch.Tensor

    def __init__(self, weights: ResNetWeights) -> None:
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(weights.mean_rgb).reshape(1, 3, 1, 1))
        self.convs = nn.ModuleList()
        self.steps: list[tuple[Any, ...]] = []
        shape: tuple[int, ...] = (3, CHIP_SIDE, CHIP_SIDE)  # channels, rows, columns
        tags: dict[int, tuple[int, ...]] = {}
        pending: tuple[nn.Conv2d, np.ndarray, np.ndarray] | None = None
        for layer, arrays in weights.layers:
            if layer.kind == "con":
                conv = nn.Conv2d(shape[0], layer.filters, layer.size, layer.stride, layer.padding)
                if tuple(conv.weight.shape) != arrays["weight"].shape:
                    raise LatentAtlasError(f"convolution weights {arrays['weight'].shape} do not fit input {shape}")
                pending = (conv, arrays["weight"], arrays["bias"])
                _set_conv(*pending)
                self.steps.append(("conv", len(self.convs)))
                self.convs.append(conv)
                side = (shape[1] + 2 * layer.padding - layer.size) // layer.stride + 1
                shape = (layer.filters, side, side)
            elif layer.kind == "affine":
                if pending is None:
                    raise LatentAtlasError("an affine layer without a convolution before it")
                if arrays:
                    conv, weight, bias = pending
                    gamma, beta = arrays["gamma"], arrays["beta"]
                    _set_conv(conv, weight * gamma.reshape(-1, 1, 1, 1), bias * gamma + beta)
                pending = None
            elif layer.kind == "relu":
                if "disabled" not in arrays:
                    self.steps.append(("relu",))
            elif layer.kind in ("max_pool", "avg_pool"):
                size = layer.size or shape[1]
                self.steps.append((layer.kind, size, layer.stride))
                side = (shape[1] - size) // layer.stride + 1
                shape = (shape[0], side, side)
            elif layer.kind == "tag":
                tags[layer.tag] = shape
                self.steps.append(("tag", layer.tag))
            elif layer.kind == "skip":
                shape = tags[layer.tag]
                self.steps.append(("skip", layer.tag))
            elif layer.kind == "add_prev":
                other = tags[layer.tag]
                out = tuple(max(a, b) for a, b in zip(shape, other))
                self.steps.append(("add", layer.tag, _pads(shape, out), _pads(other, out)))
                shape = out
            elif layer.kind == "fc":
                if arrays["weight"].shape[0] != int(np.prod(shape)):
                    raise LatentAtlasError(f"fc weights {arrays['weight'].shape} do not fit input {shape}")
                self.register_buffer("fc", torch.from_numpy(arrays["weight"].copy()))
                self.steps.append(("fc",))
                shape = (layer.filters, 1, 1)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2) - self.mean) / 256.0
        saved: dict[int, torch.Tensor] = {}
        for step in self.steps:
            kind = step[0]
            if kind == "conv":
                x = self.convs[step[1]](x)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "max_pool":
                x = F.max_pool2d(x, step[1], step[2])
            elif kind == "avg_pool":
                x = F.avg_pool2d(x, step[1], step[2])
            elif kind == "tag":
                saved[step[1]] = x
            elif kind == "skip":
                x = saved[step[1]]
            elif kind == "add":
                x = _padded(x, step[2]) + _padded(saved[step[1]], step[3])
            else:
                x = x.flatten(1) @ self.fc
        return x


def _set_conv(conv: nn.Conv2d, weight: np.ndarray, bias: np.ndarray) -> None:
    conv.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight, np.float32)), requires_grad=False)
    conv.bias = nn.Parameter(torch.from_numpy(np.ascontiguousarray(bias, np.float32)), requires_grad=False)


def _pads(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, ...]:
    """F.pad's (last axis first) amounts that grow `shape` (c, h, w) to `out` at the end of each axis."""
    return (0, out[2] - shape[2], 0, out[1] - shape[1], 0, out[0] - shape[0])


def _padded(x: torch.Tensor, pads: tuple[int, ...]) -> torch.Tensor:
    return F.pad(x, pads) if any(pads) else x


# ----------------------------------------------------------------------------- ONNX export and sessions


def onnx_model_path(model: Path) -> Path:
    """The ONNX export of dlib's `model` file in the user cache dir ($LATENTATLAS_CACHE/dlib/), keyed by the
    file's SHA-256: built now (a few seconds, written atomically) when it is not there yet."""
    model = Path(model)
    path = default_cache_dir() / "dlib" / f"face-resnet-{file_digest(model)}.onnx"
    return export_once(
        path,
        lambda: FaceResNet(read_face_resnet(model)),
        torch.zeros(2, CHIP_SIDE, CHIP_SIDE, 3),
        ("chips", "descriptors"),
        "dlib's face ResNet",
    )


def describe_chips(onnx: Path, chips: np.ndarray, threads: int) -> np.ndarray:
    """128-d descriptors (float64, as dlib returns them) of aligned 150 x 150 RGB chips (uint8, as
    `dlib.get_face_chip(image, shape, 150, 0.25)` cuts them), through ONNX Runtime on `threads` threads,
    BATCH chips a call."""
    chips = np.asarray(chips)
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIDE, CHIP_SIDE, 3):
        raise LatentAtlasError(f"face chips must be (n, {CHIP_SIDE}, {CHIP_SIDE}, 3), got {chips.shape}")
    runner = session(Path(onnx), threads)
    out = np.empty((len(chips), DESCRIPTOR_DIM))
    for start in range(0, len(chips), BATCH):
        out[start : start + BATCH] = runner.run(None, {"chips": chips[start : start + BATCH].astype(np.float32)})[0]
    return out
