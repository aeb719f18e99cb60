"""The `latentatlas` command. Each subcommand parses its options, then calls the Python API.

User mistakes raise LatentAtlasError anywhere below; `main` prints them as one line and exits 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from latentatlas.errors import LatentAtlasError

# A comma list starting with a negative number ("-3,3", "-1.5,2"): argparse would read it as an option.
_NEGATIVE_LIST = re.compile(r"^-[\d.]+(,-?[\d.]*)+$")


def _attach_negative_lists(argv: Sequence[str]) -> list[str]:
    """Rewrite `--flag -3,3` as `--flag=-3,3` (and `-f -3,3` as `-f-3,3`), so every command receives its
    comma lists, negative ones included, and answers them with its own validation."""
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            out.extend(tokens[i:])
            break
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        is_flag = token.startswith("-") and "=" not in token and not _NEGATIVE_LIST.match(token)
        if is_flag and len(token) > 1 and following is not None and _NEGATIVE_LIST.match(following):
            out.append(f"{token}={following}" if token.startswith("--") else f"{token}{following}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"latentatlas: error: {message} (see --help)\n")


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _plane(text: str) -> tuple[int, int]:
    values = _int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"a plane is two axis indices like 151,195, got {text!r}")
    return values[0], values[1]


# Each section below defines `_<name>_arguments(parser)` and `_<name>(args) -> int | None`, then registers them.
COMMANDS: list = []  # (name, help, add_arguments, run)


# ----------------------------------------------------------------------------- core: train, encode, reconstruct
def _source_argument(text: str) -> str:
    """Paths are stored absolute in config.json so a run folder works from any working directory."""
    from pathlib import Path

    from latentatlas.config import BUILTIN_SOURCES

    if not text.strip():
        raise argparse.ArgumentTypeError("the data source is empty: give a folder, a zip or 'synthetic-faces'")
    return text if text in BUILTIN_SOURCES else str(Path(text).expanduser().resolve())


def _device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU when torch sees one, else cpu)")


def _weights_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights", choices=["best", "last"], default="best", help="best (lowest validation loss) or last epoch"
    )


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from latentatlas.model import ACTIVATIONS

    p.add_argument("--data", type=_source_argument, help="image folder, zip, CelebA root, synthetic-faces, or digits")
    p.add_argument("--out", required=True, help="run folder to create (or to continue with --resume)")
    model = p.add_argument_group("model (defaults: 64, 256, 32,64,128,256, batch norm, leaky_relu)")
    model.add_argument("--image-size", type=int, help="square image side, a multiple of 16")
    model.add_argument("--latent-dim", type=int, help="length of the latent vector z")
    model.add_argument("--channels", type=_int_list, help="conv widths, one per halving stage, e.g. 32,64,128,256")
    model.add_argument(
        "--no-batch-norm",
        dest="batch_norm",
        action="store_const",
        const=False,
        default=None,
        help="conv stages without batch normalisation",
    )
    model.add_argument("--activation", choices=sorted(ACTIVATIONS))
    training = p.add_argument_group("training (defaults: 15 epochs, batch 64, lr 1e-3, seed 0, val 0.1)")
    training.add_argument("--epochs", type=int, help="total epochs (with --resume: the new total)")
    training.add_argument("--batch-size", type=int)
    training.add_argument("--lr", type=float, help="Adam learning rate")
    training.add_argument("--seed", type=int, help="seeds weights, split and shuffling")
    training.add_argument("--val-fraction", type=float, help="share of images held out for validation")
    training.add_argument(
        "--lr-schedule", choices=["none", "cosine", "plateau"], help="cosine decay, or halve after 2 flat epochs"
    )
    training.add_argument("--patience", type=int, help="stop after N epochs without a better validation loss")
    data = p.add_argument_group("data")
    data.add_argument("--partition", choices=["all", "train", "valid", "test"], help="CelebA partition")
    data.add_argument("--limit", type=int, help="keep only the first N images")
    data.add_argument("--synthetic-count", type=int, help="number of synthetic faces")
    data.add_argument("--synthetic-classes", type=int, help="synthetic faces in N strongly different classes")
    p.add_argument("--resume", action="store_true", help="continue RUN from its last checkpoint")
    _device_argument(p)
    p.add_argument(
        "--devices", type=int, help="data-parallel processes (DDP: one per GPU, gloo on CPU); same as torchrun"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML or JSON file with [model], [train], [data] sections; flags given here override it",
    )


def _given(args: argparse.Namespace, names: dict[str, str]) -> dict:
    """The options the user actually gave, renamed to config fields."""
    return {field: getattr(args, option) for option, field in names.items() if getattr(args, option) is not None}


_MODEL_FLAGS = {name: name for name in ("image_size", "latent_dim", "channels", "batch_norm", "activation")}
_TRAIN_FLAGS = {
    name: name for name in ("epochs", "batch_size", "lr", "seed", "val_fraction", "lr_schedule", "patience")
}
_DATA_FLAGS = {name: name for name in ("partition", "limit", "synthetic_count", "synthetic_classes")} | {
    "data": "source"
}


def _config_file_sections(path: str | None) -> dict[str, dict]:
    """The [model], [train], [data] sections of --config (empty without one). A relative data source in the
    file is taken relative to the file's folder, so the file works from any working directory."""
    from pathlib import Path

    from latentatlas.config import CONFIG_SECTIONS, SYNTHETIC_SOURCE, read_config_file

    if path is None:
        return {name: {} for name in CONFIG_SECTIONS}
    sections = read_config_file(path)
    source = sections["data"].get("source")
    if isinstance(source, str) and source and source != SYNTHETIC_SOURCE:
        sections["data"]["source"] = str((Path(path).parent / Path(source).expanduser()).resolve())
    return sections


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from latentatlas import distributed
    from latentatlas.config import DataConfig, TrainConfig
    from latentatlas.model import ModelConfig
    from latentatlas.store import Run
    from latentatlas.train import read_run_config, train, use_all_cores

    out = Path(args.out)
    from_file = _config_file_sections(args.config)
    if args.resume:
        if not (out / "config.json").is_file():
            raise LatentAtlasError(f"cannot resume: {out} holds no checkpoint; train without --resume first")
        saved = read_run_config(out).to_dict()  # options not given again are taken from the run
        model_base, data_base, train_base = saved["model"], saved["data"], saved["train"]
    else:
        if args.data is None and "source" not in from_file["data"]:
            raise LatentAtlasError("--data is required: an image folder, a zip, a CelebA root or synthetic-faces")
        model_base, data_base, train_base = ModelConfig().to_dict(), DataConfig().to_dict(), TrainConfig().to_dict()
    # Precedence: flags given on the command line, then the --config file, then the run (resume) or defaults.
    model = ModelConfig.from_dict({**model_base, **from_file["model"], **_given(args, _MODEL_FLAGS)})
    data_values = {**data_base, "image_size": model.image_size, **from_file["data"], **_given(args, _DATA_FLAGS)}
    data = DataConfig.from_dict(data_values)
    config = TrainConfig.from_dict({**train_base, **from_file["train"], **_given(args, _TRAIN_FLAGS)})
    use_all_cores()
    run = Run(distributed.launch(args.devices, train, out, data, model, config, args.resume, device=args.device))
    if not distributed.is_main():
        return 0  # under torchrun rank 0 alone reports
    state = run.train_state()
    print(
        f"trained {out}: {state['epochs_done']} epochs on {state['n_train']} images, "
        f"train loss {state['train_loss']:.5f}, validation loss {state['val_loss'] or float('nan'):.5f} "
        f"({state['n_val']} held out); next: latentatlas encode {out}"
    )
    return 0


def _encode_arguments(p: argparse.ArgumentParser) -> None:
    # dest "run" would shadow the `run` callable that build_parser stores in the namespace
    p.add_argument("run_dir", metavar="RUN", help="run folder made by `latentatlas train`")
    p.add_argument("--data", type=_source_argument, help="encode another source instead (its rows are 'external')")
    p.add_argument("--partition", choices=["all", "train", "valid", "test"], default="all", help="with --data")
    p.add_argument("--limit", type=int, help="with --data: keep only the first N images")
    p.add_argument("--synthetic-count", type=int, default=2000, help="with --data synthetic-faces")
    p.add_argument("--synthetic-classes", type=int, default=1, help="with --data synthetic-faces")
    p.add_argument("--batch-size", type=int, default=256)
    _device_argument(p)
    _weights_argument(p)


def _encode(args: argparse.Namespace) -> int:
    from latentatlas.config import DataConfig
    from latentatlas.store import Run, encode_run
    from latentatlas.train import use_all_cores

    run = Run(args.run_dir)
    run.load_model(args.device, args.weights)  # fail on a run without a model before touching any data
    data = None
    if args.data is not None:
        data = DataConfig(
            source=args.data,
            image_size=run.model_config.image_size,
            partition=args.partition,
            limit=args.limit,
            synthetic_count=args.synthetic_count,
            synthetic_classes=args.synthetic_classes,
        )
    use_all_cores()
    path = encode_run(run, data, batch_size=args.batch_size, device=args.device, weights=args.weights)
    counts = run.zpoints_info()["subsets"]
    shape = run.zpoints().shape
    summary = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    print(f"wrote {shape[0]} z-points of dimension {shape[1]} to {path} (+ zpoints.parquet): {summary}")
    return 0


def _reconstruct_arguments(p: argparse.ArgumentParser) -> None:
    # dest "run" would shadow the `run` callable that build_parser stores in the namespace
    p.add_argument("run_dir", metavar="RUN", help="run folder made by `latentatlas train`")
    p.add_argument("-n", type=int, default=32, help="number of images")
    p.add_argument("--subset", choices=["val", "train", "all"], default="val")
    p.add_argument("--out", help="PNG file (default RUN/reconstructions.png); a .json summary is written beside it")
    p.add_argument("--columns", type=int, default=8, help="images per row")
    p.add_argument("--seed", type=int, default=0, help="which images are picked")
    _device_argument(p)
    _weights_argument(p)


def _reconstruct(args: argparse.Namespace) -> int:
    from latentatlas.store import Run, save_reconstructions

    if args.columns < 1:
        raise LatentAtlasError(f"--columns must be >= 1, got {args.columns}")
    run = Run(args.run_dir)
    run.load_model(args.device, args.weights)
    summary = save_reconstructions(
        run,
        args.out,
        n=args.n,
        subset=args.subset,
        seed=args.seed,
        ncols=args.columns,
        device=args.device,
        weights=args.weights,
    )
    png = args.out or run.path / "reconstructions.png"
    print(f"wrote {png}: {summary['figures'][0]['caption']}")
    return 0


COMMANDS.append(("train", "train the autoencoder on an image source into a run folder", _train_arguments, _train))
COMMANDS.append(("encode", "encode the run's images (or --data) into the z-point store", _encode_arguments, _encode))
COMMANDS.append(("reconstruct", "PNG grid of images and their reconstructions", _reconstruct_arguments, _reconstruct))


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder made by `latentatlas train`")
    p.add_argument("--decoder", required=True, metavar="FILE", help="TorchScript file to write (e.g. decoder.pt)")
    _weights_argument(p)


def _export(args: argparse.Namespace) -> int:
    from latentatlas.store import Run, export_decoder

    run = Run(args.run_dir)
    info = export_decoder(run, args.decoder, weights=args.weights)
    print(
        f"wrote {args.decoder}: TorchScript decoder, z ({info['latent_dim']},) -> image (3, {info['image_size']}, "
        f"{info['image_size']}) in [0, 1], {args.weights} weights {info['weights_id']}"
    )
    return 0


COMMANDS.append(
    ("export", "export the decoder as TorchScript, for use without latentatlas", _export_arguments, _export)
)


# ----------------------------------------------------------------------------- analyze
def _analyze_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder with z-points (`latentatlas encode`)")
    p.add_argument("--subset", choices=("all", "train", "val"), default="train", help="rows to fit (default train)")
    p.add_argument(
        "--percentiles",
        type=_float_list,
        default=[1.0, 99.0],
        metavar="LO,HI",
        help="per-component value interval (default 1,99)",
    )
    p.add_argument(
        "--dominant-k", type=float, default=1.0, metavar="K", help="dominant if |mean|/std >= K (default 1.0)"
    )
    p.add_argument(
        "--dominant-width",
        type=float,
        default=None,
        metavar="W",
        help="dominant if std >= W (absolute; default: --dominant-relative-width x median std)",
    )
    p.add_argument("--dominant-relative-width", type=float, default=1.5, metavar="F", help="default 1.5")
    p.add_argument(
        "--dominant-rule",
        choices=("or", "and"),
        default="or",
        help="combine the offset and width rules (the seed's wording is 'and'; default or)",
    )
    p.add_argument("--top-pairs", type=int, default=10, help="strongest correlation pairs to report (default 10)")
    p.add_argument(
        "--planes",
        type=_plane,
        action="append",
        default=None,
        metavar="J1,J2",
        help="coordinate plane for ellipses, slices and projections (repeatable; default: 4 chosen)",
    )
    p.add_argument(
        "--confidences",
        type=_float_list,
        default=[0.5, 0.9, 0.99],
        metavar="C,...",
        help="confidence levels of the ellipses (default 0.5,0.9,0.99)",
    )
    p.add_argument(
        "--radius-b",
        type=_float_list,
        default=[0.5, 1.0, 1.5, 2.0, 5.0],
        metavar="B,...",
        help="b of the uniform [-b,b]^N comparison vectors (default 0.5,1,1.5,2,5)",
    )
    p.add_argument(
        "--slice-b",
        type=_float_list,
        default=None,
        metavar="B,...",
        help="half widths of the flat slices (default 1.5 and b_match)",
    )
    p.add_argument("--mcd-samples", type=int, default=5000, help="subsample for the robust MCD core (default 5000)")
    p.add_argument("--ks-samples", type=int, default=20000, help="subsample for the KS test (default 20000)")
    p.add_argument("--chunk-size", type=int, default=16384, help="rows read per chunk (default 16384)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-figures", action="store_true", help="write only analysis.json and the arrays")


def _analyze(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.analyze import analyze_run

    if len(args.percentiles) != 2:
        raise LatentAtlasError(f"--percentiles takes two numbers LO,HI, got {args.percentiles}")
    result = analyze_run(
        args.run_dir,
        subset=args.subset,
        figures=not args.no_figures,
        percentiles=tuple(args.percentiles),
        offset_k=args.dominant_k,
        width=args.dominant_width,
        relative_width=args.dominant_relative_width,
        combine=args.dominant_rule,
        top_pairs=args.top_pairs,
        planes=args.planes,
        confidences=args.confidences,
        radius_b=args.radius_b,
        slice_b=args.slice_b,
        mcd_samples=args.mcd_samples,
        ks_samples=args.ks_samples,
        chunk_size=args.chunk_size,
        seed=args.seed,
        progress=True,
    )
    origin, radii, pca = result["origin"], result["radii"], result["pca"]
    dominant = [c["index"] for c in result["dominant"]["components"]]
    print(f"analysed {result['n_points']} z-points ({result['subset']}), N = {result['latent_dim']}")
    print(
        f"dominant components ({len(dominant)}): {', '.join(map(str, dominant[:12]))}"
        f"{' ...' if len(dominant) > 12 else ''}"
    )
    print(
        f"origin: Mahalanobis {origin['mahalanobis']:.2f}, farther out than {origin['percentile']:.1f} % of the points"
    )
    print(
        f"radii: mean {radii['data']['mean']:.3f}, b_match {radii['b_match']:.3f}; "
        f"PCA: {pca['n_components_90']} components for 90 %, participation ratio {pca['participation_ratio']:.1f}"
    )
    core, regions = result["core_normality"], result["regions"]
    if "core_fraction" in core:
        print(f"normal core: {100 * core['core_fraction']:.1f} % of the points within 3σ (robust Mahalanobis)")
    if "n_regions" in regions:
        print(f"regions: {regions['n_regions']} (mixture BIC), {regions['hdbscan']['n_regions']} (HDBSCAN)")
    print("seed claims: " + ", ".join(f"{f['key']} {f['verdict']}" for f in result["findings"]))
    print(f"wrote {result['run']}/analysis/analysis.json and {len(result['figures'])} figures")
    return 0


COMMANDS.append(
    (
        "analyze",
        "statistics of the z-point region: distributions, correlations, ellipses, radii, slices",
        _analyze_arguments,
        _analyze,
    )
)


# ----------------------------------------------------------------------------- sample, path
def _number_or_word(word: str):
    """A number, or the one keyword an option also accepts (--b matched, --jitter scott)."""

    def parse(text: str) -> float | str:
        if text == word:
            return text
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or {word!r}, got {text!r}") from None

    return parse


# Sampler-option flags: argparse dest (= sampler parameter name) -> the flag the user types. Only the flags
# the user gives are passed on.
_SAMPLER_FLAGS = {
    "b": "--b",
    "percentiles": "--percentiles",
    "k_sigma": "--k-sigma",
    "components": "--components",
    "confidence": "--confidence",
    "jitter": "--jitter",
    "support_fraction": "--support-fraction",
    "candidates": "--candidates",
    "criterion": "--criterion",
    "epochs": "--epochs",
}


def _sample_options(name: str, flags: dict) -> dict:
    """The sampler options from the CLI's flags that were given; a flag the sampler lacks is an error."""
    from latentatlas.samplers import sampler_options

    accepted = sampler_options(name)
    given = {key: value for key, value in flags.items() if value is not None}
    stray = [_SAMPLER_FLAGS.get(key) or key for key in given if key not in accepted]
    if stray:
        own = [_SAMPLER_FLAGS[key] for key in accepted if key in _SAMPLER_FLAGS]
        raise LatentAtlasError(
            f"{', '.join(stray)} does not apply to sampler {name} (its options: {', '.join(own) or 'none'})"
        )
    if "percentiles" in given:
        if len(given["percentiles"]) != 2:
            raise LatentAtlasError(f"--percentiles needs two numbers like 1,99, got {given['percentiles']}")
        given["percentiles"] = tuple(given["percentiles"])
    if "candidates" in given:
        given["candidates"] = tuple(given["candidates"])
    return given


def _sample_arguments(p: argparse.ArgumentParser) -> None:
    from latentatlas.samplers import SAMPLERS

    # dest "run" would shadow the `run` callable that build_parser stores in the namespace
    p.add_argument("run_dir", metavar="RUN", help="run folder with z-points (`latentatlas encode`)")
    p.add_argument(
        "--sampler", required=True, choices=list(SAMPLERS), metavar="NAME", help=f"one of: {', '.join(SAMPLERS)}"
    )
    p.add_argument("-n", type=int, default=64, help="number of latent vectors (default 64)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same vectors and images")
    p.add_argument("--out", help="output folder (default RUN/samples/<sampler>[-options]-seed<seed>)")
    p.add_argument("--subset", choices=["train", "val"], default="train", help="z-points the sampler is fitted on")
    p.add_argument("--grid", type=int, default=64, help="at most this many images in grid.png (default 64)")
    p.add_argument(
        "--where",
        metavar="CONDITION",
        help="fit only on z-points whose attributes satisfy it, e.g. Male=1,Eyeglasses=1",
    )
    options = p.add_argument_group("sampler options (only for the samplers that have them)")
    options.add_argument("--b", type=_number_or_word("matched"), help="uniform-box: half-width, or 'matched'")
    options.add_argument("--percentiles", type=_float_list, help="component-box: interval percentiles, e.g. 1,99")
    options.add_argument("--k-sigma", type=float, help="component-box: intervals mean ± k·std instead")
    options.add_argument("--components", type=int, help="gmm: number of mixture components (default 10)")
    options.add_argument("--confidence", type=float, help="ellipsoid: confidence level in (0, 1) (default 0.9)")
    options.add_argument("--jitter", type=_number_or_word("scott"), help="resample: fraction of std, or 'scott'")
    options.add_argument("--support-fraction", type=float, help="robust-gaussian: MCD support fraction in (0, 1]")
    options.add_argument("--candidates", type=_int_list, help="gmm-bic: component counts to sweep, e.g. 1,2,4,8,16")
    options.add_argument("--criterion", choices=["bic", "heldout"], help="gmm-bic: how to choose (default bic)")
    options.add_argument("--epochs", type=int, help="flow, two-stage: at most this many epochs (default 100)")


def _sample(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.sample import sample_run
    from latentatlas.store import Run

    options = _sample_options(args.sampler, {flag: getattr(args, flag) for flag in _SAMPLER_FLAGS})
    run = Run(args.run_dir)
    info = sample_run(
        run,
        args.sampler,
        n=args.n,
        seed=args.seed,
        out=args.out,
        subset=args.subset,
        grid_limit=args.grid,
        where=args.where,
        **options,
    )
    print(f"wrote {info['path']}: {info['n']} {args.sampler} vectors (z.npy), grid.png, sampler/, info.json")
    return 0


def _path_arguments(p: argparse.ArgumentParser) -> None:
    from latentatlas.paths import INTERPOLATIONS, KINDS

    p.add_argument("run_dir", metavar="RUN", help="run folder with z-points (`latentatlas encode`)")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--steps", type=int, default=8, help="points on the path, >= 2 (default 8)")
    p.add_argument("--out", help="output folder (default RUN/paths/<kind>-<options>)")
    p.add_argument("--subset", choices=["train", "val"], default="train", help="z-points giving centre and spread")
    p.add_argument("--plane", type=_plane, help="plane: two components J1,J2")
    p.add_argument("--angle", type=float, help="plane: direction in degrees from the J1 axis (default 0)")
    p.add_argument("--length", type=float, help="plane/attribute: half-length in the bulk's spread (default 2)")
    p.add_argument("--from", dest="from_index", type=int, metavar="I", help="between/attribute: start z-point row")
    p.add_argument("--to", dest="to_index", type=int, metavar="J", help="between: end z-point row")
    p.add_argument("--from-image", metavar="PATH", help="between: start at the encoding of this image")
    p.add_argument("--to-image", metavar="PATH", help="between: end at the encoding of this image")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, help="between: linear (default) or slerp")
    p.add_argument("--component", type=int, metavar="J", help="traverse: the component to sweep")
    p.add_argument(
        "--range",
        dest="value_range",
        type=_float_list,
        metavar="LO,HI",
        help="traverse: sweep in units of the component's std around the base (default -3,3)",
    )
    p.add_argument("--base", help="plane/traverse: 'centre' (default) or a z-point row index for the other components")
    p.add_argument("--attribute", metavar="NAME", help="attribute: the attribute or factor whose direction to follow")


# Path-option flags: path_run keyword -> the flag the user types.
_PATH_FLAGS = {
    "plane": "--plane",
    "angle": "--angle",
    "length": "--length",
    "base": "--base",
    "from_index": "--from",
    "to_index": "--to",
    "from_image": "--from-image",
    "to_image": "--to-image",
    "interpolation": "--interpolation",
    "component": "--component",
    "value_range": "--range",
    "attribute": "--attribute",
}


def _path(args: argparse.Namespace) -> int:
    from latentatlas.paths import KIND_OPTIONS
    from latentatlas.pipelines.path import path_run
    from latentatlas.store import Run

    # a flag the kind does not use is a mistake worth reporting, not silently ignoring
    used = KIND_OPTIONS[args.kind]
    stray = [flag for key, flag in _PATH_FLAGS.items() if getattr(args, key) is not None and key not in used]
    if stray:
        raise LatentAtlasError(f"{', '.join(stray)} does not apply to --kind {args.kind}")
    run = Run(args.run_dir)
    info = path_run(
        run,
        args.kind,
        steps=args.steps,
        out=args.out,
        subset=args.subset,
        plane=args.plane,
        angle=args.angle,
        length=args.length,
        base=args.base,
        from_index=args.from_index,
        to_index=args.to_index,
        from_image=args.from_image,
        to_image=args.to_image,
        interpolation=args.interpolation,
        component=args.component,
        value_range=args.value_range,
        attribute=args.attribute,
    )
    print(f"wrote {info['path']}: {info['steps']} images along a {args.kind} path (grid.png, z.npy, projection.png)")
    return 0


COMMANDS.append(
    ("sample", "decode latent vectors drawn by a fitted sampler into an image grid", _sample_arguments, _sample)
)
COMMANDS.append(
    ("path", "decode z-points along a latent path (origin to centre, plane, between, traverse)", _path_arguments, _path)
)


# ----------------------------------------------------------------------------- evaluate
def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder with z-points and held-out data (`latentatlas encode`)")
    p.add_argument("--samplers", default="all", help="'all' or comma-separated sampler names (default all)")
    p.add_argument(
        "-n", type=int, default=2000, help="samples per sampler and size of every compared set (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for samples and subsets")
    p.add_argument("--k", type=int, default=5, help="neighbours for the k-NN balls (default 5)")
    p.add_argument(
        "--instruments",
        choices=("full", "standard", "quick"),
        default="full",
        help="quick: latent scores and Haar faces; standard: + FID/FID∞/KID; full: + dlib CNN faces and "
        "face embeddings (default)",
    )
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID (InceptionV3 is slow on CPU)")
    p.add_argument("--no-faces", action="store_true", help="skip the face instruments")
    p.add_argument(
        "--chunk-size", type=int, default=4096, help="rows per k-NN distance block (memory ~ chunk² x 8 bytes)"
    )


def _evaluate(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.evaluate import evaluate_run, evaluation_markdown
    from latentatlas.store import Run

    names = None if args.samplers.strip() == "all" else [s.strip() for s in args.samplers.split(",") if s.strip()]
    run = Run(args.run_dir)
    result = evaluate_run(
        run,
        samplers=names,
        n=args.n,
        seed=args.seed,
        k=args.k,
        fid_scores=not args.no_fid,
        faces=not args.no_faces,
        chunk_size=args.chunk_size,
        instruments=args.instruments,
    )
    print(evaluation_markdown(result), end="")
    print(f"wrote {run.path / 'evaluation'}/evaluation.json, evaluation.csv, evaluation.md")
    return 0


COMMANDS.append(
    (
        "evaluate",
        "score samplers against held-out data (precision/recall, density/coverage, FID/KID, faces)",
        _evaluate_arguments,
        _evaluate,
    )
)


# ----------------------------------------------------------------------------- report, explore
def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder (sections whose inputs are missing name their command)")
    p.add_argument("--out", help="HTML file to write (default RUN/report.html)")
    p.add_argument("--no-umap", action="store_true", help="leave out the UMAP map of the bulk (it takes a while)")


def _report(args: argparse.Namespace) -> int:
    from latentatlas.report import write_report

    path = write_report(args.run_dir, args.out, umap=not args.no_umap)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained: open it in any browser)")
    return 0


def _explore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder with a model and z-points (`latentatlas encode`)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")


def _explore(args: argparse.Namespace) -> int:
    from latentatlas.explorer import serve

    serve(args.run_dir, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0


COMMANDS.append(("report", "write the self-contained RUN/report.html", _report_arguments, _report))
COMMANDS.append(("explore", "interactive explorer of the latent space in the browser", _explore_arguments, _explore))


# ----------------------------------------------------------------------------- import
def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder to create from the z-points")
    p.add_argument("--zpoints", required=True, metavar="Z.npy", help="float (n, N) z-points of any encoder")
    p.add_argument("--meta", metavar="M.parquet|csv", help="one metadata row per z-point (colour columns, labels)")
    p.add_argument(
        "--decoder",
        metavar="D.pt",
        help="TorchScript decoder (B, N) -> (B, 3, S, S) in [0, 1]; torch.jit.load runs no Python from the file",
    )
    held_out = p.add_mutually_exclusive_group()
    held_out.add_argument("--val-fraction", type=float, help="seeded share of rows held out (default 0.1)")
    held_out.add_argument("--split", metavar="S.npy", help="one 0 (train) or 1 (held out) per z-point")
    p.add_argument("--image-size", type=int, help="the decoder's image side, checked against its output")
    p.add_argument("--seed", type=int, default=0, help="seeds the --val-fraction split (default 0)")


def _import(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.importer import import_run

    run = import_run(
        args.run_dir,
        args.zpoints,
        meta=args.meta,
        decoder=args.decoder,
        val_fraction=args.val_fraction,
        split=args.split,
        image_size=args.image_size,
        seed=args.seed,
    )
    info = run.zpoints_info()
    decoder = f"decoder {run.image_size}x{run.image_size}" if args.decoder else "no decoder (latent-space only)"
    print(
        f"imported {info['n']} z-points of dimension {info['latent_dim']} into {run.path} "
        f"(train {info['subsets']['train']}, held out {info['subsets']['val']}, {decoder}); "
        f"next: latentatlas analyze {run.path}"
    )
    return 0


COMMANDS.append(
    ("import", "create a run from z-points of any encoder (+ TorchScript decoder)", _import_arguments, _import)
)


# ----------------------------------------------------------------------------- sweep
def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for one run per model and the sweep table")
    p.add_argument("--data", type=_source_argument, action="append", help="source (repeatable; default synthetic)")
    p.add_argument("--latent-dims", type=_int_list, default=[16, 64, 256], help="default 16,64,256")
    p.add_argument("--batch-norm", choices=("both", "on", "off"), default="both", help="default both")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=_int_list, default=[16, 32, 64], help="conv widths (default 16,32,64)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--synthetic-count", type=int, default=2000)
    p.add_argument("--limit", type=int, help="keep only the first N images of each source")
    p.add_argument("--seed", type=int, default=0)


def _sweep(args: argparse.Namespace) -> int:
    from latentatlas.config import SYNTHETIC_SOURCE
    from latentatlas.pipelines.sweep import sweep, sweep_frame, sweep_markdown
    from latentatlas.train import use_all_cores

    use_all_cores()
    rows = sweep(
        args.out,
        sources=args.data or [SYNTHETIC_SOURCE],
        latent_dims=args.latent_dims,
        batch_norm={"both": (True, False), "on": (True,), "off": (False,)}[args.batch_norm],
        image_size=args.image_size,
        channels=args.channels,
        epochs=args.epochs,
        synthetic_count=args.synthetic_count,
        limit=args.limit,
        seed=args.seed,
    )
    print(sweep_markdown(sweep_frame(rows)), end="")
    print(f"wrote {args.out}/sweep.csv, sweep.md, sweep.json, sweep.png")
    return 0


COMMANDS.append(("sweep", "train and analyse models over latent dim x batch norm x data", _sweep_arguments, _sweep))


# ----------------------------------------------------------------------------- demo
def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo; an existing demo run is reused)")
    p.add_argument("--synthetic-count", type=int, default=2000, help="synthetic faces to train on (default 2000)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=256)
    p.add_argument("--channels", type=_int_list, default=None, help="conv widths (default 32,64,128,256)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("-n", type=int, default=200, help="samples per sampler in the evaluation (default 200)")
    p.add_argument("--grid", type=int, default=36, help="images per sampler grid (default 36)")
    p.add_argument(
        "--instruments",
        choices=("quick", "standard", "full"),
        default="quick",
        help="evaluation instruments: quick (latent scores, Haar faces; default), standard (+ FID) or full "
        "(+ dlib faces)",
    )
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID in a full evaluation")
    p.add_argument("--seed", type=int, default=0)


def _demo(args: argparse.Namespace) -> int:
    """The whole pipeline on built-in synthetic faces: every step of the seed's story, then the report."""
    from pathlib import Path

    from latentatlas.analysis import analyze_run
    from latentatlas.data import DataConfig
    from latentatlas.model import ModelConfig
    from latentatlas.pipelines.evaluate import evaluate_run, evaluation_markdown
    from latentatlas.pipelines.path import path_run
    from latentatlas.pipelines.sample import sample_run
    from latentatlas.report import write_report
    from latentatlas.samplers import SAMPLERS
    from latentatlas.store import Run, encode_run, save_reconstructions
    from latentatlas.train import TrainConfig, train, use_all_cores

    out = Path(args.out)
    model = ModelConfig(
        image_size=args.image_size,
        latent_dim=args.latent_dim,
        channels=tuple(args.channels) if args.channels else ModelConfig().channels,
    )
    data = DataConfig(
        source="synthetic-faces",
        image_size=args.image_size,
        synthetic_count=args.synthetic_count,
        synthetic_seed=args.seed,
    )
    config = TrainConfig(epochs=args.epochs, seed=args.seed)
    resume = (out / "config.json").is_file()
    use_all_cores()

    print(
        f"[1/8] training on {args.synthetic_count} synthetic faces -> {out}" + (" (reusing the run)" if resume else "")
    )
    run = Run(train(out, data, model, config, resume=resume))
    print("[2/8] encoding every image into the z-point store")
    encode_run(run)
    save_reconstructions(run, None, n=32, subset="val", seed=args.seed, ncols=8)
    print("[3/8] analysing the z-point bulk")
    analysis = analyze_run(run.path, seed=args.seed, progress=True)
    dominant = [c["index"] for c in analysis["dominant"]["components"]]
    print("[4/8] decoding a grid per sampler")
    samples = []
    for name in SAMPLERS:
        options: dict[str, Any] = {"b": 1.5} if name == "uniform-box" else {}  # the seed's "optimal" interval
        samples.append(sample_run(run, name, n=args.grid, seed=args.seed, **options)["path"])
    samples.append(sample_run(run, "uniform-box", n=args.grid, seed=args.seed, b="matched")["path"])
    print("[5/8] paths: origin -> centre, and a plane through the centre at two angles")
    plane = tuple(dominant[:2]) if len(dominant) >= 2 else (0, 1)
    paths = [path_run(run, "origin-to-centre", steps=8)["path"]]
    paths += [path_run(run, "plane", steps=8, plane=plane, angle=angle)["path"] for angle in (0.0, 60.0)]
    print("[6/8] evaluating every sampler against held-out data")
    n = min(args.n, int((run.split() == 1).sum()))
    evaluation = evaluate_run(
        run, samplers=None, n=n, seed=args.seed, fid_scores=not args.no_fid, instruments=args.instruments
    )
    print("[7/8] writing the report")
    report = write_report(run.path)
    print("[8/8] done\n")
    print(evaluation_markdown(evaluation), end="")
    print(f"\nrun folder:     {run.path}")
    print(f"analysis:       {run.path / 'analysis'}/analysis.json and figures:")
    for figure in analysis["figures"]:
        print(f"                  {figure['file']}: {figure['caption']}")
    print(f"sampler grids:  {len(samples)} folders under {run.path / 'samples'}")
    print(f"path figures:   {len(paths)} folders under {run.path / 'paths'}")
    print(f"evaluation:     {run.path / 'evaluation' / 'evaluation.md'}")
    print(f"report:         {report}")
    print(f"explore it:     latentatlas explore {run.path}")
    return 0


COMMANDS.append(
    ("demo", "the whole pipeline on built-in synthetic faces, ending with the report", _demo_arguments, _demo)
)


# ----------------------------------------------------------------------------- attributes
def _attributes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder with z-points (`latentatlas encode`)")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COND",
        help="condition like Male=1,Eyeglasses=1: fit a sampler on its rows, decode, re-encode, probe (repeatable)",
    )
    p.add_argument("-n", type=int, default=256, help="samples per condition (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seeds the probes and the samplers")
    p.add_argument("--strips", type=int, default=3, help="image strips along the top attribute directions")
    p.add_argument("--sampler", default="gaussian", help="sampler fitted on a condition's rows (default gaussian)")


def _attributes(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.attributes import attributes_run, attributes_summary

    result = attributes_run(
        args.run_dir, where=args.where, n=args.n, seed=args.seed, strips=args.strips, sampler=args.sampler
    )
    print("\n".join(attributes_summary(result)))
    return 0


COMMANDS.append(
    ("attributes", "attribute probes, directions and conditional samples", _attributes_arguments, _attributes)
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="latentatlas",
        description="Train a convolutional autoencoder, map the region its encoder fills in latent space, "
        "and decode statistically built latent vectors. Every command takes a run folder.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text, add_arguments, run in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_negative_lists(sys.argv[1:] if argv is None else argv))
    try:
        return args.run(args) or 0
    except LatentAtlasError as exc:
        print(f"latentatlas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentatlas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
