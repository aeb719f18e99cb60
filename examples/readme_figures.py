"""The README's figures from a finished run: reconstructions, the analysis figures, a sampler strip and the paths.

Run after the commands of the README's "Results on real faces":
    python examples/readme_figures.py runs/celeba --out docs/images
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SAMPLER_ORDER = (
    "uniform-box-b1.5",
    "uniform-box",
    "component-box",
    "diagonal-gaussian",
    "gaussian",
    "robust-gaussian",
    "ellipsoid",
    "planar-ellipses",
    "gmm",
    "gmm-bic",
    "flow",
    "two-stage",
    "resample",
)


def labelled_rows(grid: Path, label: str, rows: int, width: int = 170) -> np.ndarray:
    """The first `rows` image rows of a grid PNG (8 images a row) with a text label on the left."""
    image = Image.open(grid).convert("RGB")
    side = (image.width - 2) // 8  # grids are 8 wide with a 2-pixel border
    strip = image.crop((0, 0, image.width, min(image.height, rows * side + 2)))
    canvas = Image.new("RGB", (strip.width + width, strip.height), "white")
    canvas.paste(strip, (width, 0))
    ImageDraw.Draw(canvas).text((6, strip.height // 2 - 6), label, fill="black")
    return np.asarray(canvas)


def stack(parts: list[np.ndarray]) -> Image.Image:
    width = max(p.shape[1] for p in parts)
    padded = [np.pad(p, ((0, 4), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in parts]
    return Image.fromarray(np.concatenate(padded))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for source, target in (
        ("reconstructions.png", "celeba_reconstructions.png"),
        ("analysis/projections.png", "celeba_projections.png"),
        ("analysis/radii.png", "celeba_radii.png"),
        ("analysis/core_normality.png", "celeba_core_normality.png"),
        ("evaluation/leaderboard.png", "celeba_leaderboard.png"),
    ):
        if (args.run / source).is_file():
            shutil.copyfile(args.run / source, args.out / target)
    samples = []
    for name in SAMPLER_ORDER:
        grid = args.run / "samples" / f"{name}-seed0" / "grid.png"
        if grid.is_file():
            samples.append(labelled_rows(grid, name.replace("-b1.5", " (b = 1.5)"), rows=1))
    if samples:
        stack(samples).save(args.out / "celeba_samplers.png")
    paths = [
        labelled_rows(folder / "grid.png", folder.name, rows=1, width=260)
        for folder in sorted((args.run / "paths").iterdir())
        if (folder / "grid.png").is_file()
    ]
    if paths:
        stack(paths).save(args.out / "celeba_paths.png")
    print(f"wrote the README figures to {args.out}")


if __name__ == "__main__":
    main()
