"""Commands that score and show results: evaluate, report, explore, sweep, demo.

Each command is a pair: `_<name>_arguments(parser)` declares its options, `_<name>(args)` runs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from latentatlas.cli.common import (
    _device_argument,
    _int_list,
    _sampler_option_arguments,
    _source_argument,
    _weights_argument,
    listed_option,
    sampler_options_given,
)
from latentatlas.evaluation.instruments import INSTRUMENT_SETS, INSTRUMENTS

COMMANDS: list = []


def _instruments_argument(p: argparse.ArgumentParser, default: str) -> None:
    # the sets and their members come from the instrument registry: a new instrument is listed by itself
    levels = [
        f"{level}: {'+ ' if i else ''}{', '.join(n for n, cls in INSTRUMENTS.items() if cls.level == level)}"
        for i, level in enumerate(INSTRUMENT_SETS)
    ]
    p.add_argument(
        "--instruments",
        choices=INSTRUMENT_SETS,
        default=default,
        help=f"{'; '.join(levels)} (default {default})",
    )


# ----------------------------------------------------------------------------- evaluate
def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    _device_argument(p)
    _weights_argument(p)
    p.add_argument("run_dir", metavar="RUN", help="run folder with z-points and held-out data (`latentatlas encode`)")
    p.add_argument("--samplers", default="all", help="'all' or comma-separated sampler names (default all)")
    p.add_argument(
        "-n", type=int, default=2000, help="samples per sampler and size of every compared set (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for samples and subsets")
    p.add_argument("--k", type=int, default=5, help="neighbours for the k-NN balls (default 5)")
    _instruments_argument(p, default="full")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID (InceptionV3 is slow on CPU)")
    p.add_argument("--no-faces", action="store_true", help="skip the face instruments")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=4096,
        help="rows per k-NN distance block, at most 2048 on the CPU (memory ~ a few chunk² x 4 bytes)",
    )
    p.add_argument(
        "--reencode",
        type=_int_list,
        metavar="K[,K...]",
        help="one row per number of rounds of z <- encode(decode(z)) applied to every sampler's draws, e.g. 0,2 "
        "(pipelines/reencode.py)",
    )
    _sampler_option_arguments(p, lists=EVALUATE_LISTS)


# sampler options that evaluate takes as comma lists, one row per value: the quality-novelty frontier
EVALUATE_LISTS = {"temperature": "one row per temperature for every sampler with one, e.g. 0.7,0.85,1.0"}


def _evaluate(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.evaluate import evaluate_run, evaluation_markdown
    from latentatlas.samplers import SAMPLERS
    from latentatlas.store import Run

    names = None if args.samplers.strip() == "all" else [s.strip() for s in args.samplers.split(",") if s.strip()]
    given = sampler_options_given(args, names or list(SAMPLERS), lists=list(EVALUATE_LISTS))
    options = {name: own for name, own in given.items() if own}
    run = Run(args.run_dir, device=args.device, weights=args.weights)
    result = evaluate_run(
        run,
        samplers=names,
        sampler_options=options,
        n=args.n,
        seed=args.seed,
        k=args.k,
        fid_scores=not args.no_fid,
        faces=not args.no_faces,
        chunk_size=args.chunk_size,
        instruments=args.instruments,
        device=run.device,
        temperatures=listed_option(args, "temperature"),
        reencodes=args.reencode,
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
    p.add_argument("--force", action="store_true", help="overwrite an --out file that is not an earlier report")


def _report(args: argparse.Namespace) -> int:
    from latentatlas.report import write_report
    from latentatlas.report.summary import read_artifacts, run_summary, summary_text
    from latentatlas.store import Run

    run = Run(args.run_dir)
    path = write_report(run, args.out, umap=not args.no_umap, force=args.force)
    print(summary_text(run_summary(read_artifacts(run))))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained: open it in any browser)")
    return 0


def _explore_arguments(p: argparse.ArgumentParser) -> None:
    _device_argument(p)
    _weights_argument(p)
    p.add_argument("run_dir", metavar="RUN", help="run folder with a model and z-points (`latentatlas encode`)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")


def _explore(args: argparse.Namespace) -> int:
    from latentatlas.explorer import serve
    from latentatlas.store import Run

    serve(
        Run(args.run_dir, device=args.device, weights=args.weights),
        host=args.host,
        port=args.port,
        open_browser=not args.no_browser,
    )
    return 0


COMMANDS.append(("report", "write the self-contained RUN/report.html", _report_arguments, _report))


COMMANDS.append(("explore", "interactive explorer of the latent space in the browser", _explore_arguments, _explore))


# ----------------------------------------------------------------------------- summary
def _summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder (what is not computed yet is listed with its command)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (nothing else on stdout)")


def _summary(args: argparse.Namespace) -> int:
    import json

    from latentatlas.io import to_jsonable
    from latentatlas.report.summary import read_artifacts, run_summary, summary_text
    from latentatlas.store import Run

    summary = run_summary(read_artifacts(Run(args.run_dir)))
    if args.json:
        print(json.dumps(to_jsonable(summary.to_dict()), indent=1, ensure_ascii=False))
    else:
        print(summary_text(summary), end="")
    return 0


COMMANDS.append(
    (
        "summary",
        "print what a run shows: every finding's verdict, the sampler ranking, what is missing",
        _summary_arguments,
        _summary,
    )
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
    _instruments_argument(p, default="quick")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID in a full evaluation")
    p.add_argument("--seed", type=int, default=0)


def _demo(args: argparse.Namespace) -> int:
    """The whole pipeline on built-in synthetic faces: every step of the seed's story, then the report."""

    from latentatlas.data import DataConfig
    from latentatlas.model import ModelConfig
    from latentatlas.pipelines.analyze import analyze_run
    from latentatlas.pipelines.evaluate import evaluate_run, evaluation_markdown
    from latentatlas.pipelines.path import path_run
    from latentatlas.pipelines.reconstruct import save_reconstructions
    from latentatlas.pipelines.sample import sample_run
    from latentatlas.report import write_report
    from latentatlas.samplers import SAMPLERS
    from latentatlas.store import Run, encode_run
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
