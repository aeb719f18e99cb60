"""Commands that make or change a run's model and z-point store: train, encode, reconstruct, export, import.

Each command is a pair: `_<name>_arguments(parser)` declares its options, `_<name>(args)` runs it.
The package's working modules are imported inside the functions that need them, so that `latentatlas
--help` and a mistyped flag answer without loading numpy or torch (the cli package imports neither).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from latentatlas.cli.common import (
    _device_argument,
    _given,
    _int_list,
    _path_argument,
    _source_argument,
    _weights_argument,
)
from latentatlas.errors import LatentAtlasError

COMMANDS: list = []  # (name, help, add_arguments, run), in the order `latentatlas --help` lists them


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from latentatlas.model import ACTIVATIONS

    p.add_argument("--data", type=_source_argument, help="image folder, zip, CelebA root, synthetic-faces, or digits")
    p.add_argument(
        "--out", required=True, type=_path_argument, help="run folder to create (or to continue with --resume)"
    )
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
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        type=_path_argument,
        help="also log losses, learning rate and reconstructions per epoch for `tensorboard --logdir DIR`",
    )
    p.add_argument("--force", action="store_true", help="with --tensorboard: log into a folder holding other files")
    _device_argument(p)
    p.add_argument(
        "--devices", type=int, help="data-parallel processes (DDP: one per GPU, gloo on CPU); same as torchrun"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        type=_path_argument,
        help="TOML or JSON file with [model], [train], [data] sections; flags given here override it",
    )


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

    from latentatlas import checks
    from latentatlas.config import CONFIG_SECTIONS, SYNTHETIC_SOURCE, read_config_file

    if path is None:
        return {name: {} for name in CONFIG_SECTIONS}
    sections = read_config_file(path)
    source = sections["data"].get("source")
    if isinstance(source, str) and source:
        checks.path_text(source, f"config file {path}: [data] source")
    if isinstance(source, str) and source and source != SYNTHETIC_SOURCE:
        sections["data"]["source"] = str((Path(path).parent / Path(source).expanduser()).resolve())
    return sections


def _train(args: argparse.Namespace) -> int:

    from latentatlas import distributed
    from latentatlas.config import DataConfig, TrainConfig
    from latentatlas.model import ModelConfig
    from latentatlas.run_config import read_run_config
    from latentatlas.store import Run
    from latentatlas.train import train, use_all_cores

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
    log = None
    if args.tensorboard is not None:
        from latentatlas.tensorboard_log import TensorBoardLog, check_log_dir

        log = TensorBoardLog(check_log_dir(args.tensorboard, force=args.force))
    use_all_cores()
    try:
        run = Run(
            distributed.launch(
                args.devices, train, out, data, model, config, args.resume, device=args.device, on_epoch=log
            )
        )
    finally:
        if log is not None:
            log.close()
    if not distributed.is_main():
        return 0  # under torchrun rank 0 alone reports
    if log is not None:
        print(f"TensorBoard log in {log.log_dir}: tensorboard --logdir {log.log_dir}")
    state = run.train_state()
    print(
        f"trained {out}: {state['epochs_done']} epochs on {state['n_train']} images, "
        f"train loss {state['train_loss']:.5f}, validation loss {state['val_loss'] or float('nan'):.5f} "
        f"({state['n_val']} held out); next: latentatlas encode {out}"
    )
    return 0


def _encode_arguments(p: argparse.ArgumentParser) -> None:
    # dest "run" would shadow the `run` callable that build_parser stores in the namespace
    p.add_argument("run_dir", metavar="RUN", type=_path_argument, help="run folder made by `latentatlas train`")
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
    p.add_argument("--force", action="store_true", help="overwrite existing files that are not earlier reconstructions")
    _device_argument(p)
    _weights_argument(p)


def _reconstruct(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.reconstruct import save_reconstructions
    from latentatlas.store import Run

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
        force=args.force,
    )
    png = args.out or run.path / "reconstructions.png"
    print(f"wrote {png}: {summary['figures'][0]['caption']}")
    return 0


COMMANDS.append(("train", "train the autoencoder on an image source into a run folder", _train_arguments, _train))


COMMANDS.append(("encode", "encode the run's images (or --data) into the z-point store", _encode_arguments, _encode))


COMMANDS.append(("reconstruct", "PNG grid of images and their reconstructions", _reconstruct_arguments, _reconstruct))


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder made by `latentatlas train`")
    p.add_argument("--decoder", metavar="FILE", help="TorchScript file to write (e.g. decoder.pt)")
    p.add_argument(
        "--projector",
        metavar="DIR",
        type=_path_argument,
        help="write the z-points, their metadata and a sprite for TensorBoard's projector (tensorboard --logdir DIR)",
    )
    p.add_argument("--projector-limit", type=int, default=10000, help="seeded sample of N z-points (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seeds the --projector-limit sample (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite files that are not an earlier export")
    _weights_argument(p)


def _export(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.reconstruct import export_decoder
    from latentatlas.store import Run

    if args.decoder is None and args.projector is None:
        raise LatentAtlasError("export needs --decoder FILE (TorchScript) or --projector DIR (TensorBoard), or both")
    run = Run(args.run_dir)
    if args.projector is not None:
        from latentatlas.io import check_output_file
        from latentatlas.pipelines.projector import write_projector

        if args.decoder is not None:  # a refused decoder file must not leave a projector export behind
            check_output_file(args.decoder, "export", force=args.force)

        projector = write_projector(
            run, args.projector, limit=args.projector_limit, seed=args.seed, weights=args.weights, force=args.force
        )
        print(
            f"wrote {args.projector}: {projector['points']} of {projector['of']} z-points with "
            f"{len(projector['columns'])} metadata columns; sprite: {projector['sprite']}; {projector['regions']}; "
            f"open with: tensorboard --logdir {args.projector}"
        )
    if args.decoder is None:
        return 0
    info = export_decoder(run, args.decoder, weights=args.weights, force=args.force)
    print(
        f"wrote {args.decoder}: TorchScript decoder, z ({info['latent_dim']},) -> image (3, {info['image_size']}, "
        f"{info['image_size']}) in [0, 1], {args.weights} weights {info['weights_id']}"
    )
    return 0


COMMANDS.append(
    (
        "export",
        "export the decoder as TorchScript (use without latentatlas), or the z-points for TensorBoard's projector",
        _export_arguments,
        _export,
    )
)


# ----------------------------------------------------------------------------- import
def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder to create")
    model = p.add_argument_group(
        "your autoencoder with its images (every command then works as on a trained run)",
        "TorchScript files: the encoder maps float (B, 3, S, S) images in [0, 1] to (B, N), the decoder back",
    )
    model.add_argument("--encoder", metavar="E.pt", help="TorchScript encoder; torch.jit.load runs no Python from it")
    model.add_argument(
        "--data", type=_source_argument, help="the images: folder, zip, CelebA root, synthetic-faces, or digits"
    )
    model.add_argument("--image-size", type=int, help="the models' image side S (default 64; with --zpoints: checked)")
    model.add_argument("--partition", choices=["all", "train", "valid", "test"], help="CelebA partition")
    model.add_argument("--limit", type=int, help="keep only the first N images")
    model.add_argument("--synthetic-count", type=int, help="number of synthetic faces")
    model.add_argument("--synthetic-classes", type=int, help="synthetic faces in N strongly different classes")
    model.add_argument("--batch-size", type=int, default=256, help="images encoded at once")
    _device_argument(p)
    points = p.add_argument_group("z-points of any encoder (latent-space work; images only through --decoder)")
    points.add_argument("--zpoints", metavar="Z.npy", help="float (n, N) z-points of any encoder")
    points.add_argument("--meta", metavar="M.parquet|csv", help="one metadata row per z-point (colour columns, labels)")
    p.add_argument(
        "--decoder",
        metavar="D.pt",
        help="TorchScript decoder (B, N) -> (B, 3, S, S) in [0, 1]; torch.jit.load runs no Python from the file",
    )
    held_out = p.add_mutually_exclusive_group()
    held_out.add_argument("--val-fraction", type=float, help="seeded share of rows held out (default 0.1)")
    held_out.add_argument("--split", metavar="S.npy", help="one 0 (train) or 1 (held out) per z-point / image")
    p.add_argument("--seed", type=int, default=0, help="seeds the --val-fraction split (default 0)")


def _import_model(args: argparse.Namespace) -> int:
    from latentatlas.store import Run

    if args.zpoints is not None or args.meta is not None:
        raise LatentAtlasError("give either --encoder/--decoder/--data (your model and its images) or --zpoints")
    if args.encoder is None or args.decoder is None or args.data is None:
        raise LatentAtlasError("importing a model needs --encoder E.pt, --decoder D.pt and --data SOURCE together")
    options = {"image_size": args.image_size} | _given(
        args, {name: name for name in ("partition", "limit", "synthetic_count", "synthetic_classes")}
    )
    run = Run.from_model(
        args.run_dir,
        encoder=args.encoder,
        decoder=args.decoder,
        data=args.data,
        val_fraction=args.val_fraction,
        split=args.split,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        progress=True,
        **options,
    )
    info = run.zpoints_info()
    print(
        f"imported {info['n']} images of {run.data_config.source} as z-points of dimension {info['latent_dim']} "
        f"into {run.path} (train {info['subsets']['train']}, held out {info['subsets']['val']}, "
        f"{run.image_size}x{run.image_size} images); next: latentatlas analyze {run.path}"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.importer import import_run

    if args.encoder is not None or args.data is not None:
        return _import_model(args)
    if args.zpoints is None:
        raise LatentAtlasError("give --encoder E.pt --decoder D.pt --data SOURCE, or --zpoints Z.npy")
    given = [f"--{name.replace('_', '-')}" for name in ("partition", "limit", "synthetic_count", "synthetic_classes")]
    given = [flag for flag in given if getattr(args, flag[2:].replace("-", "_")) is not None]
    if given:
        raise LatentAtlasError(f"{', '.join(given)} describe images: give them with --data")
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
    (
        "import",
        "make a run of your own autoencoder (--encoder --decoder --data) or of any encoder's z-points",
        _import_arguments,
        _import,
    )
)
