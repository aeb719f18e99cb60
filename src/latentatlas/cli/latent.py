"""Commands on the latent space: analyze, sample, path, attributes.

Each command is a pair: `_<name>_arguments(parser)` declares its options, `_<name>(args)` runs it.
"""

from __future__ import annotations

import argparse

from latentatlas.cli.common import (
    _device_argument,
    _float_list,
    _path_argument,
    _plane,
    _sampler_option_arguments,
    _weights_argument,
    sampler_options_given,
)
from latentatlas.errors import LatentAtlasError

COMMANDS: list = []  # (name, help, add_arguments, run), in the order `latentatlas --help` lists them


# ----------------------------------------------------------------------------- analyze
def _analyze_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir", metavar="RUN", type=_path_argument, help="run folder with z-points (`latentatlas encode`)"
    )
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


def _sample_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--save-images", action="store_true", help="also write every decoded sample as images/NNNNNN.png")
    _device_argument(p)
    _weights_argument(p)
    from latentatlas.samplers import SAMPLERS

    # dest "run" would shadow the `run` callable that build_parser stores in the namespace
    p.add_argument(
        "run_dir", metavar="RUN", type=_path_argument, help="run folder with z-points (`latentatlas encode`)"
    )
    p.add_argument(
        "--sampler", required=True, choices=list(SAMPLERS), metavar="NAME", help=f"one of: {', '.join(SAMPLERS)}"
    )
    p.add_argument("-n", type=int, default=64, help="number of latent vectors (default 64)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same vectors and images")
    p.add_argument(
        "--out",
        type=_path_argument,
        help="output folder (default RUN/samples/<sampler>[-options][-reencodeK][-val][-where-...]-seed<seed>)",
    )
    p.add_argument("--subset", choices=["train", "val"], default="train", help="z-points the sampler is fitted on")
    p.add_argument("--grid", type=int, default=64, help="at most this many images in grid.png (default 64)")
    p.add_argument(
        "--where",
        metavar="CONDITION",
        help="fit only on z-points whose attributes satisfy it, e.g. Male=1,Eyeglasses=1",
    )
    p.add_argument(
        "--reencode",
        type=int,
        default=0,
        metavar="K",
        help="carry the draws K times through z <- encode(decode(z)), onto the encoder's range (default 0)",
    )
    _sampler_option_arguments(p)


def _sample(args: argparse.Namespace) -> int:
    from latentatlas.pipelines.sample import sample_run
    from latentatlas.store import Run

    options = sampler_options_given(args, [args.sampler])[args.sampler]
    run = Run(args.run_dir, device=args.device, weights=args.weights)
    info = sample_run(
        run,
        args.sampler,
        n=args.n,
        seed=args.seed,
        out=args.out,
        subset=args.subset,
        grid_limit=args.grid,
        where=args.where,
        save_images=args.save_images,
        progress=True,
        reencode=args.reencode,
        **options,
    )
    print(f"wrote {info['path']}: {info['n']} {args.sampler} vectors (z.npy), grid.png, sampler/, info.json")
    return 0


def _path_arguments(p: argparse.ArgumentParser) -> None:
    _device_argument(p)
    _weights_argument(p)
    from latentatlas.paths import INTERPOLATIONS, KINDS

    p.add_argument(
        "run_dir", metavar="RUN", type=_path_argument, help="run folder with z-points (`latentatlas encode`)"
    )
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--steps", type=int, default=8, help="points on the path, >= 2 (default 8)")
    p.add_argument("--out", type=_path_argument, help="output folder (default RUN/paths/<kind>-<options>)")
    p.add_argument("--subset", choices=["train", "val"], default="train", help="z-points giving centre and spread")
    p.add_argument("--plane", type=_plane, help="plane: two components J1,J2")
    p.add_argument("--angle", type=float, help="plane: direction in degrees from the J1 axis (default 0)")
    p.add_argument("--length", type=float, help="plane/attribute: half-length in the bulk's spread (default 2)")
    p.add_argument(
        "--from",
        dest="from_index",
        metavar="ID",
        help="between/attribute: start at this z-point: its image id as zpoints.parquet names it (e.g. "
        "000123.jpg, synthetic-000012) or its row number; row:N or id:X where both readings fit",
    )
    p.add_argument("--to", dest="to_index", metavar="ID", help="between: end at this z-point (as --from)")
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
    run = Run(args.run_dir, device=args.device, weights=args.weights)
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
    (
        "path",
        "decode z-points along a latent path (origin to centre, plane, between, traverse, attribute)",
        _path_arguments,
        _path,
    )
)


# ----------------------------------------------------------------------------- attributes
def _attributes_arguments(p: argparse.ArgumentParser) -> None:
    _device_argument(p)
    _weights_argument(p)
    p.add_argument(
        "run_dir", metavar="RUN", type=_path_argument, help="run folder with z-points (`latentatlas encode`)"
    )
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
    from latentatlas.store import Run

    result = attributes_run(
        Run(args.run_dir, device=args.device, weights=args.weights),
        where=args.where,
        n=args.n,
        seed=args.seed,
        strips=args.strips,
        sampler=args.sampler,
        progress=True,
    )
    print("\n".join(attributes_summary(result)))
    return 0


COMMANDS.append(
    ("attributes", "attribute probes, directions and conditional samples", _attributes_arguments, _attributes)
)
