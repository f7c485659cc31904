"""Content-matched FAKE images: real training photographs passed through a small up-sampling autoencoder.

    python -m training.reconstruct --data real_photos rvaa --out DIR [--steps 1500]

Every FAKE source so far differs from the REAL ones in content and style (prompted scenes against photographs),
so a network can tell them apart without looking at how an image was made. After Zhang et al. 2019 (AutoGAN: the
up-sampling layers of a generator leave traces that an autoencoder with the same layers reproduces, no GAN
needed) and Rajan et al. 2024 (real images passed through a generator's autoencoder as aligned fakes), this trains
an autoencoder whose decoder up-samples with transposed convolutions, as image generators do, on the REAL
training images, and writes each one's reconstruction as FAKE: the same content, framing and encoding on both
sides, so only traces of generation tell them apart. Only training-split images are reconstructed (no validation
or test content enters training); the folder (``FAKE/`` + ``manifest.csv`` naming each original) stays outside
git like its sources, and is passed to ``training.train --data`` as a folder.
"""
from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from gauntlet.settings import get_settings
from training import data

QUALITY = 92  # as real_photos/ and generators/ (see ../shared/data/README.md)
STRIDE = 8  # the autoencoder's total down-sampling: images are padded to a multiple of it


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write autoencoder reconstructions of REAL training images as a "
                                                 "FAKE folder (content-matched fakes).")
    parser.add_argument("--data", nargs="+", default=["real_photos", "rvaa"],
                        help="collections whose REAL training images are reconstructed")
    parser.add_argument("--data-dir", default=None, help="data directory (default: settings)")
    parser.add_argument("--out", default=None, help="output folder (default: the cache dir's reconstructions/)")
    parser.add_argument("--steps", type=int, default=1500, help="autoencoder training steps")
    parser.add_argument("--crop", type=int, default=128, help="training window side (a multiple of 8)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=48, help="channels of the first layer")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser


class UpsamplingAutoencoder(nn.Module):
    """Three stride-2 convolutions down, three stride-2 transposed convolutions up (the generators' up-sampling)."""

    def __init__(self, width: int = 48) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(w, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, 3, 3, 1, 1), nn.Sigmoid())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def train_autoencoder(images: list[torch.Tensor], args: argparse.Namespace) -> UpsamplingAutoencoder:
    """Fit the autoencoder (L1 loss) on random ``args.crop`` px windows of ``images``."""
    rng = random.Random(args.seed)
    model = UpsamplingAutoencoder(args.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    usable = [image for image in images if min(image.shape[1:]) >= args.crop]
    progress = tqdm(range(args.steps), desc="autoencoder", unit="step")
    for _ in progress:
        batch = torch.stack([random_window(rng.choice(usable), args.crop, rng) for _ in range(args.batch_size)])
        loss = F.l1_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        progress.set_postfix(l1=f"{loss.item():.4f}")
    return model.eval()


def random_window(image: torch.Tensor, side: int, rng: random.Random) -> torch.Tensor:
    top, left = rng.randint(0, image.shape[1] - side), rng.randint(0, image.shape[2] - side)
    return image[:, top:top + side, left:left + side]


@torch.no_grad()
def reconstruct(model: UpsamplingAutoencoder, image: torch.Tensor) -> Image.Image:
    """The autoencoder's output for a whole image (reflect-padded to a multiple of :data:`STRIDE`, cut back)."""
    height, width = image.shape[1:]
    padded = F.pad(image[None], (0, -width % STRIDE, 0, -height % STRIDE), mode="reflect")
    output = model(padded)[0, :, :height, :width]
    return Image.fromarray((output.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8))


def real_training_items(sources: list[str], data_dir: Path | None) -> list[tuple[str, data.Item]]:
    """(source, item) of every REAL image of the sources' training splits."""
    return [(source, item) for source in sources for item in data.dataset_items(source, data_dir, "train")
            if item.label == 0]


def main(args: argparse.Namespace) -> Path:
    settings = get_settings()
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    out = Path(args.out) if args.out else settings.cache_dir / "reconstructions"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    items = real_training_items(args.data, data_dir)
    images = [to_tensor(data.read_item(item)) for _, item in tqdm(items, desc="reading", unit="img")]
    model = train_autoencoder(images, args)
    (out / "FAKE").mkdir(parents=True, exist_ok=True)
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "source", "original", "size"])
        for index, ((source, item), image) in enumerate(tqdm(list(zip(items, images)), desc="writing", unit="img")):
            name = f"FAKE/{Path(source).name}_{index:05d}.jpg"
            picture = reconstruct(model, image)
            picture.save(out / name, quality=QUALITY)
            writer.writerow([name, "FAKE", source, item.name, f"{picture.width}x{picture.height}"])
    print(f"Wrote {len(items)} reconstructions to {out}")
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
