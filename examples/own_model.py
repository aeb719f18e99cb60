"""Bring your own autoencoder: train one in plain PyTorch, then hand it to latentatlas.

    OMP_NUM_THREADS=1 python examples/own_model.py --out runs/own [--seconds 60] [--images 2000]

Everything up to the hand-over is what you would write without latentatlas: 32x32 toy faces drawn with
numpy and saved as PNG files in OUT-images/ (your own image folder), a small convolutional autoencoder, a
training loop with Adam for about --seconds. The last step is the only latentatlas code:

    latentatlas.Run.from_model(OUT, encoder=model.encoder, decoder=model.decoder, data=OUT-images, image_size=32)

which saves the two modules as TorchScript (no pickle), encodes every image of the folder into the run's
z-point store and holds 10 % of them out. From then on every command works on OUT as on a trained run:

    latentatlas analyze OUT && latentatlas evaluate OUT --instruments standard && latentatlas report OUT
    latentatlas path OUT --from OUT-images/face-0000.png --to OUT-images/face-0001.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

SIZE = 32


def draw_faces(n: int, seed: int) -> np.ndarray:
    """n toy faces (n, 32, 32, 3) uint8: a skin-coloured ellipse with two eyes and a mouth on a plain background,
    each with its own colours, position, size and expression."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    faces = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        background, skin = rng.uniform(0, 255, 3), rng.uniform([140, 90, 60], [255, 210, 180])
        cx, cy = rng.uniform(13, 19, 2)
        rx, ry = rng.uniform(7, 10), rng.uniform(9, 12)
        image = np.broadcast_to(background, (SIZE, SIZE, 3)).copy()
        image[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = skin
        eye_dx, eye_y, eye_r = rx * rng.uniform(0.3, 0.5), cy - ry * rng.uniform(0.15, 0.35), rng.uniform(1, 2)
        for ex in (cx - eye_dx, cx + eye_dx):
            image[(xx - ex) ** 2 + (yy - eye_y) ** 2 <= eye_r**2] = rng.uniform(0, 60, 3)
        mouth_y, smile = cy + ry * rng.uniform(0.35, 0.55), rng.uniform(-0.08, 0.12)
        mouth = (np.abs(xx - cx) <= rx * 0.4) & (np.abs(yy - mouth_y - smile * (xx - cx) ** 2) <= 0.8)
        image[mouth] = rng.uniform([120, 0, 0], [200, 60, 60])
        faces[i] = np.clip(image, 0, 255).astype(np.uint8)
    return faces


class Encoder(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2)
        )
        self.to_latent = nn.Linear(64 * 8 * 8, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 32, 32) in [0, 1] -> (B, latent_dim)
        return self.to_latent(self.convs(x).flatten(1))


class Decoder(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.from_latent = nn.Linear(latent_dim, 64 * 8 * 8)
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Sigmoid()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent_dim) -> (B, 3, 32, 32) in [0, 1]
        return self.convs(self.from_latent(z).view(-1, 64, 8, 8))


class AutoEncoder(nn.Module):
    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.encoder, self.decoder = Encoder(latent_dim), Decoder(latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def train(images: np.ndarray, seconds: float, latent_dim: int, seed: int) -> tuple[AutoEncoder, int, float]:
    """Adam on the pixel MSE until `seconds` have passed (at least one epoch); returns the model, epochs, loss."""
    torch.manual_seed(seed)
    model = AutoEncoder(latent_dim)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    start, epochs, loss = time.perf_counter(), 0, float("nan")
    while epochs == 0 or time.perf_counter() - start < seconds:
        for batch in x_all[torch.randperm(len(x_all))].split(32):
            optimiser.zero_grad()
            mse = nn.functional.mse_loss(model(batch), batch)
            mse.backward()
            optimiser.step()
            loss = mse.item()
        epochs += 1
    return model.eval(), epochs, loss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run folder to create (images go to OUT-images/)")
    parser.add_argument("--seconds", type=float, default=60, help="training time (default 60)")
    parser.add_argument("--images", type=int, default=2000, help="number of toy faces (default 2000)")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    folder = args.out.parent / f"{args.out.name}-images"
    folder.mkdir(parents=True, exist_ok=True)
    images = draw_faces(args.images, args.seed)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"face-{i:04d}.png")
    model, epochs, loss = train(images, args.seconds, args.latent_dim, args.seed)
    print(f"trained a plain-PyTorch autoencoder: {epochs} epochs on {len(images)} faces, training MSE {loss:.5f}")

    # The hand-over: the only latentatlas code in this file.
    import latentatlas

    run = latentatlas.Run.from_model(
        args.out, encoder=model.encoder, decoder=model.decoder, data=folder, image_size=SIZE, seed=args.seed
    )
    info = run.zpoints_info()
    print(
        f"made run {run.path}: {info['n']} z-points of dimension {info['latent_dim']} "
        f"(train {info['subsets']['train']}, held out {info['subsets']['val']}); "
        f"next: latentatlas analyze {run.path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
