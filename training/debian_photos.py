"""Real photographs shipped in Debian's wallpaper packages, as an extra REAL training collection.

    python -m training.debian_photos [--out DIR] [--crops 3]

Downloads the packages named in :data:`PHOTOS` with ``apt-get download`` (Debian's registry is reachable where
the app trains), unpacks them with ``dpkg -x``, and writes the photographs listed there (the wallpapers that
are camera pictures; the drawn and rendered ones are left out, so that "smooth and painterly" is not taught
as REAL) encoded like ``real_photos/``: RGB, long side 320 px, JPEG quality 92, no metadata. Each photo also
gives ``--crops`` random windows (40-70 % of its side) at the same size, so the collection shows close-ups too.
The folder (``REAL/`` + ``manifest.csv`` with package, version, path and the licence its copyright file
states) lives outside git (default: the cache dir) and is passed to ``training.train --data`` as a folder.
Nothing here is committed: the packages are rebuilt from Debian on every machine.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import random
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from gauntlet.settings import get_settings

LONG_SIDE, QUALITY = 320, 92  # as real_photos/ and generators/ (see ../shared/data/README.md)
PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "ukui-wallpapers", "mate-backgrounds",
            "plasma-workspace-wallpapers")
PHOTOS = (  # the photographs among their wallpapers (paths below a package's root; which package holds one is found)
    *(f"usr/share/backgrounds/{name}.jpg" for name in (
        "Picture_1A_by_freespace", "Picture_0B_by_freespace", "Wine_by_Jakkub_Mede", "seeding_by_Clements_Engelhardt",
        "aitzgorri_by_Aitzol_Berasategi", "Kleiber_by_Lukas_Baubkus", "Dragonfly_by_Bolly",
        "friends_by_Aitzol_Berasategi", "sunset_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "life_by_Aitzol_Berasategi", "Bridge_by_Sander_Klootwijk")),
    *(f"usr/share/backgrounds/mate/nature/{name}.jpg" for name in (
        "Garden", "Dune", "Wood", "Aqua", "TwoWings", "Storm", "GreenMeadow", "RainDrops", "Blinds", "FreshFlower",
        "LadyBird", "YellowFlower")),
    *(f"usr/share/wallpapers/{name}/contents/images/{size}.jpg" for name, size in (
        ("FallenLeaf", "1920x1080"), ("Path", "1920x1080"), ("DarkestHour", "1920x1080"),
        ("summer_1am", "1920x1080"), ("EveningGlow", "1920x1080"), ("Grey", "1920x1080"), ("Kite", "1920x1080"),
        ("ColorfulCups", "2560x1600"), ("OneStandsOut", "1920x1080"), ("ColdRipple", "1920x1080"),
        ("BytheWater", "1920x1080"))),
)
MANIFEST_COLUMNS = ("file", "label", "source", "package", "version", "source_path", "licence", "size")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build a REAL folder from the photographs in Debian's wallpaper "
                                                 "packages.")
    parser.add_argument("--out", default=None, help="output folder (default: the cache dir's debian_photos/)")
    parser.add_argument("--crops", type=int, default=3, help="random windows per photo, besides the whole picture")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def unpack(packages: list[str], root: Path) -> dict[str, str]:
    """Download and unpack ``packages`` under ``root``/<package>; returns each package's version."""
    subprocess.run(["apt-get", "download", *packages], cwd=root, check=True, capture_output=True)
    versions = {}
    for deb in root.glob("*.deb"):
        package, version = deb.name.split("_")[:2]
        subprocess.run(["dpkg", "-x", str(deb), str(root / package)], check=True)
        versions[package] = version.replace("%3a", ":")
    return versions


def licence_of(copyright_file: Path, path: str) -> str:
    """The ``License:`` of the last machine-readable copyright paragraph whose ``Files:`` names ``path``'s file
    (patterns there are relative to the upstream tree, so file names are compared; an exact name beats a
    wildcard, and a wildcard under a folder, such as ``debian/*``, covers none of the photos)."""
    found, best = "", 0
    if not copyright_file.is_file():
        return "see the package's copyright file"
    for paragraph in copyright_file.read_text(errors="replace").split("\n\n"):
        fields, key = {}, None
        for line in paragraph.splitlines():
            if line[:1].isspace() and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        patterns = fields.get("Files", "").split()
        score = 2 if Path(path).name in {Path(p).name for p in patterns} else \
            int(any("/" not in p and fnmatch.fnmatch(Path(path).name, p) for p in patterns))
        if "License" in fields and score and score >= best:
            found, best = fields["License"].split()[0], score
    return found or "see the package's copyright file"


def views(image: Image.Image, crops: int, rng: random.Random) -> list[Image.Image]:
    """The whole picture and ``crops`` random windows, each with its long side at :data:`LONG_SIDE`."""
    shown = [image]
    for _ in range(crops):
        share = rng.uniform(0.4, 0.7)
        w, h = round(image.width * share), round(image.height * share)
        left, top = rng.randrange(image.width - w + 1), rng.randrange(image.height - h + 1)
        shown.append(image.crop((left, top, left + w, top + h)))
    for view in shown:
        view.thumbnail((LONG_SIDE, LONG_SIDE), Image.LANCZOS)
    return shown


def photo_name(path: str) -> str:
    """A file name for a photo: the wallpaper's folder name (Plasma keeps one folder per wallpaper) or its stem."""
    parts = Path(path).parts
    return parts[3] if parts[2] == "wallpapers" else Path(path).stem


def build(out: Path, crops: int, seed: int) -> int:
    """Write ``out``/REAL/*.jpg and ``out``/manifest.csv; returns the number of images."""
    (out / "REAL").mkdir(parents=True, exist_ok=True)
    rng, rows = random.Random(seed), []
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        versions = unpack(list(PACKAGES), root)
        for path in PHOTOS:
            package = next(p for p in PACKAGES if (root / p / path).is_file())
            licence = licence_of(root / package / "usr/share/doc" / package / "copyright", path)
            with Image.open(root / package / path) as image:
                for index, view in enumerate(views(image.convert("RGB"), crops, rng)):
                    name = f"REAL/{photo_name(path)}_{index}.jpg"
                    view.save(out / name, quality=QUALITY)
                    rows.append({"file": name, "label": "REAL", "source": "debian_wallpapers", "package": package,
                                 "version": versions[package], "source_path": "/" + path, "licence": licence,
                                 "size": f"{view.width}x{view.height}"})
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(args: argparse.Namespace) -> Path:
    out = Path(args.out) if args.out else get_settings().cache_dir / "debian_photos"
    print(f"Wrote {build(out, args.crops, args.seed)} images to {out}")
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
