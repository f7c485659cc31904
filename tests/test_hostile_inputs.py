"""Hostile and odd uploads: each one gives a sensible verdict or a plain-sentence refusal, never a crash.

The corpus is generated here (nothing downloaded or committed). Every case is
fed to :func:`load_image`, to ``ModelCatalog.analyse`` with a tiny random
model, to a memory-capped child process (bombs must not allocate), and a few
to the running app through ``gradio_client``.
"""
from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image, ImageCms

from conftest import make_checkpoint
from gauntlet.images import ImageError, load_image
from gauntlet.service import ModelCatalog

RED, GREEN, BLUE, GREY, WHITE = (230, 20, 20), (20, 200, 40), (30, 40, 220), (128, 128, 128), (255, 255, 255)
Check = Callable[[Image.Image], None]


@dataclass(frozen=True)
class Case:
    """One upload: its file name, how to make its bytes, and what must come of it."""

    name: str
    filename: str
    make: Callable[[], bytes]
    check: Check | None = None  # None: the upload must be refused
    refusal: str = ""  # a word the refusal must contain (case-insensitive)


# ----------------------------------------------------------------------------- building blocks


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def quadrants(width: int = 64, height: int = 48) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, grey bottom-right: orientation is visible."""
    array = np.empty((height, width, 3), np.uint8)
    half_w, half_h = width // 2, height // 2
    array[:half_h, :half_w], array[:half_h, half_w:] = RED, GREEN
    array[half_h:, :half_w], array[half_h:, half_w:] = BLUE, GREY
    return Image.fromarray(array)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG written by hand, so that its header can declare anything."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra
            + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b""))


def compressed_bomb(side: int = 20000) -> bytes:
    """A genuine 1-bit PNG of side x side black pixels: ~50 kB that would decode to 400 MB and more."""
    stream, row = zlib.compressobj(9), b"\x00" * (1 + (side + 7) // 8)
    body = b"".join(stream.compress(row * 1000) for _ in range(side // 1000)) + stream.flush()
    return raw_png(side, side, 1, 0, body)


def png16_rgb() -> bytes:
    """48-bit RGB PNG (16 bits per channel), pure red."""
    row = b"\x00" + b"\xff\xff\x00\x00\x00\x00" * 40
    return raw_png(40, 30, 16, 2, zlib.compress(row * 30))


def ztxt_bomb() -> bytes:
    """A valid 4x4 PNG carrying a text chunk that inflates to 50 MB."""
    text = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 50_000_000, 9))
    return raw_png(4, 4, 8, 0, zlib.compress(b"\x00\x80\x80\x80\x80" * 4), extra=text)


def cmyk_jpeg() -> bytes:
    return encode(quadrants().convert("CMYK"), "JPEG", quality=95)


def _ycc(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.stack([y, cb, cr], -1).round(), 0, 255).astype(np.uint8)


def ycck_jpeg() -> bytes:
    """An Adobe YCCK JPEG (as Photoshop writes CMYK): Pillow cannot write one, so the planes are built here."""
    cmyk = np.asarray(quadrants().convert("CMYK"))
    planes = np.concatenate([_ycc(cmyk[..., :3]), 255 - cmyk[..., 3:]], axis=-1)
    data = bytearray(encode(Image.fromarray(255 - planes, "CMYK"), "JPEG", quality=100))
    adobe = data.find(b"Adobe")
    data[adobe + 11] = 2  # APP14 transform flag: 2 = YCCK
    return bytes(data)


def palette_with_transparency() -> bytes:
    image = quadrants().quantize(4)
    blue_index = min(range(4), key=lambda i: abs(image.getpalette()[3 * i + 2] - BLUE[2]))
    return encode(image, "PNG", transparency=blue_index)


def frames(*colours: tuple[int, int, int]) -> list[Image.Image]:
    return [Image.new("RGB", (32, 24), colour) for colour in colours]


def animated(fmt: str, **options) -> bytes:
    first, *rest = frames(RED, BLUE, GREEN)
    return encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0, **options)


def oriented_jpeg(orientation: int) -> bytes:
    """Store the quadrants so that a viewer honouring EXIF ``orientation`` shows them upright.

    Built from the EXIF specification's description of where row 0 and column 0
    go (not from Pillow's own transpose table, which is what is being tested).
    """
    shown = np.asarray(quadrants(64, 48))
    stored = {1: shown, 2: shown[:, ::-1], 3: shown[::-1, ::-1], 4: shown[::-1, :],
              5: shown.transpose(1, 0, 2), 6: shown[:, ::-1].transpose(1, 0, 2),
              7: shown[::-1, ::-1].transpose(1, 0, 2), 8: shown[::-1, :].transpose(1, 0, 2)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(np.ascontiguousarray(stored)), "JPEG", quality=95, exif=exif.tobytes())


def with_icc(profile: bytes) -> bytes:
    return encode(quadrants(), "JPEG", quality=95, icc_profile=profile)


def big_photo(width: int = 8000, height: int = 6000) -> bytes:
    """A legal but very large photo: a smooth gradient with the red quadrant marker top-left."""
    array = np.empty((height, width, 3), np.uint8)  # 144 MB, filled by broadcasting (no float copies)
    array[..., 0] = np.linspace(0, 255, width).astype(np.uint8)
    array[..., 1] = np.linspace(0, 255, height).astype(np.uint8)[:, None]
    array[..., 2] = 128
    array[: height // 4, : width // 4] = RED
    return encode(Image.fromarray(array), "JPEG", quality=85)


def multipage_tiff() -> bytes:
    first, *rest = frames(GREEN, RED)
    return encode(first, "TIFF", save_all=True, append_images=rest)


def lab_tiff() -> bytes:
    lab = ImageCms.profileToProfile(quadrants(), ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                    outputMode="LAB")
    return encode(lab, "TIFF")


def mpo() -> bytes:
    return encode(quadrants(), "MPO", save_all=True, append_images=[quadrants().rotate(180)])


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def noise(fmt: str) -> bytes:
    return encode(Image.fromarray(np.random.RandomState(0).randint(0, 255, (96, 128, 3), np.uint8)), fmt)


def gif_declaring(width: int, height: int) -> bytes:
    """A valid 1x1 GIF whose logical screen claims ``width`` x ``height``."""
    data = encode(Image.new("P", (1, 1)), "GIF")
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


# ----------------------------------------------------------------------------- checks on decoded images


def close(actual: tuple, expected: tuple, tolerance: int = 40) -> bool:
    return all(abs(int(a) - int(e)) <= tolerance for a, e in zip(actual, expected))


def shows(size: tuple[int, int], **corners: tuple[int, int, int]) -> Check:
    """The image has ``size`` and the given colours near its corners (top_left, top_right, ...)."""

    def check(image: Image.Image) -> None:
        assert image.mode == "RGB" and image.size == size, (image.mode, image.size)
        width, height = image.size
        spots = {"top_left": (width // 8, height // 8), "top_right": (width - 1 - width // 8, height // 8),
                 "bottom_left": (width // 8, height - 1 - height // 8),
                 "bottom_right": (width - 1 - width // 8, height - 1 - height // 8)}
        for corner, colour in corners.items():
            seen = image.getpixel(spots[corner])
            assert close(seen, colour), f"{corner}: expected about {colour}, got {seen}"

    return check


UPRIGHT = shows((64, 48), top_left=RED, top_right=GREEN, bottom_left=BLUE, bottom_right=GREY)


def uniform(size: tuple[int, int], colour: tuple[int, int, int], tolerance: int = 2) -> Check:
    def check(image: Image.Image) -> None:
        assert image.mode == "RGB" and image.size == size, (image.mode, image.size)
        low, high = np.asarray(image).reshape(-1, 3).min(0), np.asarray(image).reshape(-1, 3).max(0)
        assert close(low, colour, tolerance) and close(high, colour, tolerance), (low, high, colour)

    return check


# ----------------------------------------------------------------------------- the corpus

HTML = b"<!DOCTYPE html>\n<html><head><title>cat</title></head><body><img src='cat.jpg'></body></html>\n"
SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<rect width="10" height="10" fill="red"/></svg>\n')
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >>"
       b" endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\nshowpage\n"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40)

CASES = [
    Case("zero_bytes", "empty.jpg", lambda: b"", refusal="empty"),
    Case("random_bytes", "noise.jpg", lambda: np.random.RandomState(0).bytes(4096), refusal="not an image"),
    Case("text_as_jpg", "notes.jpg", lambda: b"Dear diary,\nthis is not a picture.\n" * 20, refusal="text"),
    Case("html_as_jpg", "page.jpg", lambda: HTML, refusal="web page"),
    Case("svg", "drawing.svg", lambda: SVG, refusal="SVG"),
    Case("pdf", "scan.pdf", lambda: PDF, refusal="PDF"),
    Case("eps_would_run_ghostscript", "figure.jpg", lambda: EPS, refusal="EPS"),
    Case("heic_photo", "IMG_0001.HEIC", lambda: HEIC, refusal="HEIC"),
    Case("zip_archive", "photos.png", lambda: ZIP, refusal="ZIP"),
    Case("truncated_jpeg", "cut.jpg", lambda: truncated(noise("JPEG"), 0.5), refusal="incomplete"),
    Case("truncated_png", "cut.png", lambda: truncated(noise("PNG"), 0.5), refusal="incomplete"),
    Case("jpeg_header_only", "head.jpg", lambda: noise("JPEG")[:200], refusal="incomplete"),
    Case("png_declares_100000x100000", "huge.png", lambda: raw_png(100000, 100000, 8, 2, zlib.compress(b"\x00" * 64)),
         refusal="too large"),
    Case("png_compressed_bomb_20000x20000", "bomb.png", compressed_bomb, refusal="too large"),
    Case("gif_declares_65535x65535", "huge.gif", lambda: gif_declaring(65535, 65535), refusal="too large"),
    Case("png_text_chunk_bomb", "text_bomb.png", ztxt_bomb, refusal="damaged"),
    Case("one_pixel", "dot.png", lambda: encode(Image.new("RGB", (1, 1), RED), "PNG"), uniform((1, 1), RED, 0)),
    Case("one_by_10000", "line.png", lambda: encode(Image.new("RGB", (1, 10000), BLUE), "PNG"),
         uniform((1, 2048), BLUE, 0)),
    Case("10000_by_one", "row.png", lambda: encode(Image.new("RGB", (10000, 1), GREEN), "PNG"),
         uniform((2048, 1), GREEN, 0)),
    Case("grey_16_bit_png", "deep.png",
         lambda: encode(Image.fromarray(np.full((30, 40), 40000, np.uint16)), "PNG"), uniform((40, 30), (156,) * 3)),
    Case("rgb_48_bit_png", "deep_rgb.png", png16_rgb, uniform((40, 30), (255, 0, 0))),
    Case("grey_16_bit_big_endian_tiff", "deep.tif",
         lambda: encode(Image.new("I;16B", (40, 30), 65535), "TIFF"), uniform((40, 30), WHITE)),
    Case("float_tiff_with_nan", "float.tif",
         lambda: encode(Image.fromarray(np.where(np.eye(30, 40) > 0, np.nan, 0.5).astype(np.float32)), "TIFF"),
         shows((40, 30), top_right=(128,) * 3)),
    Case("one_bit_png", "bilevel.png", lambda: encode(Image.new("1", (40, 30), 1), "PNG"), uniform((40, 30), WHITE)),
    Case("one_bit_bmp", "bilevel.bmp", lambda: encode(Image.new("1", (40, 30), 0), "BMP"),
         uniform((40, 30), (0, 0, 0))),
    Case("cmyk_jpeg", "print.jpg", cmyk_jpeg, UPRIGHT),
    Case("ycck_jpeg", "photoshop.jpg", ycck_jpeg, UPRIGHT),
    Case("lab_tiff", "lab.tif", lab_tiff, UPRIGHT),
    Case("palette_with_transparency", "sticker.png", palette_with_transparency,
         shows((64, 48), top_left=RED, bottom_left=WHITE)),
    Case("grey_with_alpha", "ghost.png", lambda: encode(Image.new("LA", (40, 30), (0, 0)), "PNG"),
         uniform((40, 30), WHITE)),
    Case("animated_gif", "anim.gif", lambda: animated("GIF"), uniform((32, 24), RED, 8)),
    Case("animated_webp", "anim.webp", lambda: animated("WEBP", lossless=True), uniform((32, 24), RED, 2)),
    Case("multi_page_tiff", "pages.tif", multipage_tiff, uniform((32, 24), GREEN, 0)),
    Case("mpo_stereo_jpeg", "stereo.jpg", mpo, UPRIGHT),
    *[Case(f"exif_orientation_{o}", f"phone_{o}.jpg", lambda o=o: oriented_jpeg(o), UPRIGHT) for o in range(1, 9)],
    Case("icc_profile_srgb", "icc.jpg", lambda: with_icc(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
                                                          .tobytes()), UPRIGHT),
    Case("icc_profile_garbage", "bad_icc.jpg", lambda: with_icc(b"not a colour profile" * 10), UPRIGHT),
    Case("exif_garbage", "bad_exif.jpg", lambda: encode(quadrants(), "JPEG", quality=95, exif=b"Exif\x00\x00junk"),
         UPRIGHT),
    Case("png_named_jpg", "actually_png.jpg", lambda: encode(quadrants(), "PNG"), UPRIGHT),
    Case("unicode_file_name", "ünïcødé 画像 (1).webp", lambda: encode(quadrants(), "WEBP", lossless=True), UPRIGHT),
    Case("big_legal_photo_8000x6000", "camera.jpg", big_photo, shows((2048, 1536), top_left=RED)),
]
REFUSED = [case for case in CASES if case.check is None]
DECODED = [case for case in CASES if case.check is not None]
BY_NAME = {case.name: case for case in CASES}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Write every case to disk once, under its own folder (file names may repeat)."""
    root = tmp_path_factory.mktemp("hostile")
    paths = {}
    for case in CASES:
        path = root / case.name / case.filename
        path.parent.mkdir()
        path.write_bytes(case.make())
        paths[case.name] = path
    return paths


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> ModelCatalog:
    root = tmp_path_factory.mktemp("catalog")
    make_checkpoint(root / "tiny", "baseline_cnn")
    return ModelCatalog(extra_sources=(), checkpoints_dir=root)


# ----------------------------------------------------------------------------- what a person may be shown

ALLOWED_CAPITALISED = {"WebP", "JPEG", "PNG", "GIF", "BMP", "TIFF", "PDF", "SVG", "HTML", "ZIP", "EPS", "HEIC",
                       "HEIF", "AVIF", "PostScript"}


def assert_human(message: str) -> None:
    """A sentence a person can read: no traceback, exception class, module, code identifier or path."""
    assert message and message[0].isupper() and message.rstrip().endswith("."), message
    assert len(message) < 300, message
    for marker in ("Traceback", "Exception", "Error", "errno", "PIL", "Pillow", "File \"", "/tmp", "0x", "None"):
        assert marker not in message, f"{marker!r} in {message!r}"
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", message)
    technical = [w for w in words if ("_" in w or "." in w.strip(".")
                                      or (re.search(r"[a-z][A-Z]", w) and w not in ALLOWED_CAPITALISED))]
    assert not technical, f"code-like words {technical} in {message!r}"


# ----------------------------------------------------------------------------- the tests


def test_corpus_covers_at_least_thirty_cases():
    assert len(CASES) >= 30 and len(REFUSED) >= 10 and len(DECODED) >= 20
    assert len(BY_NAME) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("case", DECODED, ids=lambda c: c.name)
def test_decodable_upload_gives_the_right_rgb_image(case, corpus):
    case.check(load_image(corpus[case.name]))


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_undecodable_upload_is_refused_in_plain_words(case, corpus):
    with pytest.raises(ImageError) as caught:
        load_image(corpus[case.name])
    assert_human(str(caught.value))
    assert case.refusal.lower() in str(caught.value).lower(), str(caught.value)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_analyse_gives_a_verdict_or_the_same_refusal(case, corpus, catalog):
    if case.check is None:
        with pytest.raises(ImageError):
            catalog.analyse(str(corpus[case.name]), "tiny", ["grad_cam"])
        return
    analysis = catalog.analyse(str(corpus[case.name]), "tiny", ["grad_cam"])
    probabilities = list(analysis.prediction.probabilities.values())
    assert len(probabilities) == 2 and abs(sum(probabilities) - 1) < 1e-5
    assert all(np.isfinite(probabilities))
    (result,) = analysis.results
    heatmap = result.explanation.heatmap
    assert np.isfinite(heatmap).all() and heatmap.min() >= 0 and heatmap.max() <= 1
    assert result.overlay.size == heatmap.shape[::-1]


@pytest.mark.parametrize("name", ["one_pixel", "one_by_10000", "10000_by_one"])
def test_degenerate_shapes_survive_every_explanation_method(name, corpus, catalog):
    analysis = catalog.analyse(str(corpus[name]), "tiny", ["score_cam", "ablation_cam", "lime"])
    assert [r.method for r in analysis.results] == ["score_cam", "ablation_cam", "lime"]
    assert all(np.isfinite(r.explanation.heatmap).all() for r in analysis.results)


def test_verdict_on_a_decoded_upload_equals_the_verdict_on_its_pixels(corpus, catalog):
    """The file path and the decoded picture are classified identically (nothing lost on the way)."""
    path = corpus["rgb_48_bit_png"]
    from_file = catalog.analyse(str(path), "tiny", []).prediction.probabilities
    from_pixels = catalog.detector("tiny").predict(Image.new("RGB", (40, 30), (255, 0, 0))).probabilities
    assert from_file == pytest.approx(from_pixels)


MEMORY_CAPPED_LOADER = """
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from gauntlet.images import ImageError, load_image
results = {}
for path in sys.argv[2:]:
    try:
        results[path] = list(load_image(path).size)
    except ImageError as err:
        results[path] = str(err)
print(json.dumps(results))
"""


def test_whole_corpus_loads_in_one_process_under_a_one_gigabyte_cap(corpus):
    """A bomb that were decoded would need 400 MB to several GB: under the cap it would kill the process."""
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", MEMORY_CAPPED_LOADER, str(1024 ** 3), *map(str, corpus.values())], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).resolve().parents[1], env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    for case in CASES:
        outcome = results[str(corpus[case.name])]
        assert isinstance(outcome, str) == (case.check is None), (case.name, outcome)


THROUGH_THE_APP = ["zero_bytes", "html_as_jpg", "truncated_jpeg", "png_declares_100000x100000", "pdf", "svg"]


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    """The real app (``python app.py``) on a free local port, with one tiny checkpoint."""
    from gradio_client import Client

    from benchmarks.server import AppServer

    root = tmp_path_factory.mktemp("app_checkpoints")
    make_checkpoint(root / "tiny", "baseline_cnn")
    with AppServer({"GAUNTLET_CHECKPOINTS_DIR": str(root)}) as server:
        yield Client(server.url, verbose=False), server


def analyse_through_app(client, path: Path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), "tiny", ["grad_cam"], "fast", "last", api_name="/analyse")


@pytest.mark.parametrize("name", THROUGH_THE_APP)
def test_app_returns_the_refusal_as_clean_text(name, corpus, app_client):
    from gradio_client.exceptions import AppError

    client, server = app_client
    with pytest.raises(AppError) as caught:
        analyse_through_app(client, corpus[name])
    message = caught.value.message if hasattr(caught.value, "message") else str(caught.value)
    assert_human(message)
    assert BY_NAME[name].refusal.lower() in message.lower(), message
    assert "Traceback" not in server.log_text()


def test_app_gives_a_verdict_for_an_odd_but_valid_upload(corpus, app_client):
    client, _ = app_client
    preview, verdict, summary, gallery, notes = analyse_through_app(client, corpus["ycck_jpeg"])
    assert verdict["label"] in ("REAL", "FAKE") and len(gallery) == 1
    assert "The model thinks" in summary


# ----------------------------------------------------------------------------- hostile metadata (provenance panel)
# Each file below is read by gauntlet.forensics.provenance.read_provenance: it must give a clear note or be
# ignored, never raise, never fetch anything, and fit in the memory an upload may take.

FIFTY_MB = 50_000_000


def jpeg_with_app11(payload: bytes) -> bytes:
    """A JPEG carrying ``payload`` as a C2PA JUMBF segment (APP11: "JP", instance 1, sequence 1)."""
    data = encode(quadrants(), "JPEG", quality=90)
    segment = b"JP" + struct.pack(">HI", 1, 1) + payload
    return data[:2] + b"\xff\xeb" + struct.pack(">H", len(segment) + 2) + segment + data[2:]


C2PA_DESCRIPTION = (struct.pack(">I", 31) + b"jumd" + bytes.fromhex("6332706100110010800000aa00389b71") + b"\x03"
                    + b"c2pa\x00\x00")  # a JUMBF description box labelled "c2pa" (the manifest store's)


def png_with_chunks(*chunks: bytes) -> bytes:
    return raw_png(4, 4, 8, 0, zlib.compress(b"\x00\x80\x80\x80\x80" * 4), extra=b"".join(chunks))


def xmp_text(body: str, prolog: str = "") -> bytes:
    return (f'{prolog}<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
            f'syntax-ns#"><rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
            f'<Iptc4xmpExt:DigitalSourceType>{body}</Iptc4xmpExt:DigitalSourceType></rdf:Description></rdf:RDF>'
            '</x:xmpmeta>').encode()


def itxt(key: bytes, text: bytes, compressed: bool = False) -> bytes:
    body = zlib.compress(text, 9) if compressed else text
    return png_chunk(b"iTXt", key + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00") + b"\x00\x00" + body)


def xxe_jpeg(url: str) -> bytes:
    prolog = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY leak SYSTEM "{url}/xxe">]>'
    return encode(quadrants(), "JPEG", xmp=xmp_text("&leak;", prolog))


def parameter_entity_jpeg(url: str) -> bytes:
    prolog = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % remote SYSTEM "{url}/dtd"> %remote;]>'
    return encode(quadrants(), "JPEG", xmp=xmp_text("x", prolog))


def billion_laughs_jpeg(url: str) -> bytes:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    prolog = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY l0 "lol">{entities}]>'
    return encode(quadrants(), "JPEG", xmp=xmp_text("&l9;", prolog))


def odd_exif_jpeg() -> bytes:
    """EXIF strings in Latin-1 and broken UTF-8, with NUL and control characters."""
    exif = Image.Exif()
    exif[0x010F] = b"Ni\xf1o Cam\x00\x07"  # Latin-1 bytes, as old cameras write them
    exif[0x0110] = b"\xff\xfeZ\x00\x00"
    exif[0x0131] = "Soft\x1b[31mware\u202e"
    return encode(quadrants(), "JPEG", exif=exif.tobytes())


def utf16_xmp_jpeg() -> bytes:
    packet = xmp_text("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
                      '<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")
    return encode(quadrants(), "JPEG", xmp=packet)


def latin1_png() -> bytes:
    return png_with_chunks(png_chunk(b"tEXt", b"Software\x00Caf\xe9 \xa9 Diffusion"),
                           itxt(b"Comment", b"\xff\xfe not utf-8"), itxt(b"Title", "画像 🎨".encode()))


@dataclass(frozen=True)
class MetadataCase:
    """A file with hostile metadata, and a check on what read_provenance made of it (a Provenance)."""

    name: str
    make: Callable[[str], bytes]  # gets the URL of a server that must receive no request
    check: Callable[[object], None]
    limit_mb: float | None = 20.0  # the upload limit the reading runs under


def noted(*words: str) -> Callable[[object], None]:
    def check(result) -> None:
        assert any(all(w in note for w in words) for note in result.notes), result.notes

    return check


def ignored(result) -> None:
    assert result.c2pa is None and not result.generator_hints, result


def no_exif(result) -> None:
    assert result.exif == {}, result.exif


def odd_exif_cleaned(result) -> None:
    assert result.exif["make"] == "Niño Cam" and "\x1b" not in result.exif["software"], result.exif
    assert all(c.isprintable() for value in result.exif.values() for c in value), result.exif


def odd_png_text_read(result) -> None:
    assert result.png_text["Software"] == "Café © Diffusion" and result.png_text["Title"] == "画像 🎨"
    assert "Comment" not in result.png_text  # iTXt that is not UTF-8 is dropped by Pillow


METADATA_CASES = [
    MetadataCase("jumbf_garbage", lambda url: jpeg_with_app11(b"\x00\x00\x00\x20jumb" + b"\xff" * 24), ignored),
    MetadataCase("jumbf_box_declares_4_gb", lambda url: jpeg_with_app11(
        struct.pack(">I", 0xFFFFFFF0) + b"jumb" + C2PA_DESCRIPTION), noted("could not be read")),
    MetadataCase("jumbf_box_declares_4_exabytes", lambda url: jpeg_with_app11(
        struct.pack(">I", 1) + b"jumb" + struct.pack(">Q", 2 ** 62) + C2PA_DESCRIPTION), ignored),
    MetadataCase("jumbf_content_box_declares_1_tb", lambda url: jpeg_with_app11(
        struct.pack(">I", 8 + len(C2PA_DESCRIPTION) + 16) + b"jumb" + C2PA_DESCRIPTION + struct.pack(">I", 1)
        + b"json" + struct.pack(">Q", 2 ** 40)), noted("could not be read")),
    MetadataCase("png_cabx_chunk_truncated", lambda url: png_with_chunks(
        png_chunk(b"caBX", struct.pack(">I", 0xFFFFFF00) + b"jumb")), ignored),
    MetadataCase("ztxt_bomb_50_mb", lambda url: ztxt_bomb(), noted("too large to expand")),
    MetadataCase("itxt_xmp_bomb_50_mb", lambda url: png_with_chunks(
        itxt(b"XML:com.adobe.xmp", b" " * FIFTY_MB, compressed=True)), noted("too large to expand")),
    MetadataCase("xmp_50_mb_over_the_upload_limit", lambda url: png_with_chunks(
        itxt(b"XML:com.adobe.xmp", xmp_text("x" * FIFTY_MB))), noted("upload limit")),
    MetadataCase("xmp_50_mb_without_a_limit", lambda url: png_with_chunks(
        itxt(b"XML:com.adobe.xmp", xmp_text("x" * FIFTY_MB))), noted("XMP", "unusually large"), limit_mb=None),
    MetadataCase("exif_50_mb_without_a_limit", lambda url: png_with_chunks(
        png_chunk(b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x00" * FIFTY_MB)),
        no_exif, limit_mb=None),  # an IFD of 65,535 empty entries: nothing to show, no crash, no blow-up
    MetadataCase("xmp_external_entity_xxe", xxe_jpeg, noted("XMP", "document type")),
    MetadataCase("xmp_external_parameter_entity", parameter_entity_jpeg, noted("XMP", "document type")),
    MetadataCase("xmp_billion_laughs", billion_laughs_jpeg, noted("XMP", "document type")),
    MetadataCase("xmp_not_xml", lambda url: encode(quadrants(), "JPEG", xmp=b"<x:xmpmeta <<<\xff\xfe"),
                 noted("XMP", "damaged")),
    MetadataCase("xmp_utf16", lambda url: utf16_xmp_jpeg(),
                 lambda result: result.xmp["digital_source_type"] == "trainedAlgorithmicMedia" or pytest.fail(
                     str(result.xmp))),
    MetadataCase("exif_latin1_broken_utf8_control_characters", lambda url: odd_exif_jpeg(), odd_exif_cleaned),
    MetadataCase("png_text_latin1_emoji_and_invalid_utf8", lambda url: latin1_png(), odd_png_text_read),
    MetadataCase("not_an_image", lambda url: PDF, noted("not an image")),
]


@pytest.fixture(scope="module")
def metadata_corpus(tmp_path_factory) -> tuple[dict[str, Path], list[str]]:
    """Every metadata case on disk, made while a local server records any request; returns paths and requests."""
    from c2pa_helpers import request_recorder

    root = tmp_path_factory.mktemp("metadata")
    with request_recorder() as (url, requests):
        paths = {}
        for case in METADATA_CASES:
            paths[case.name] = root / f"{case.name}.bin"
            paths[case.name].write_bytes(case.make(url))
        yield paths, requests


@pytest.mark.parametrize("case", METADATA_CASES, ids=lambda c: c.name)
def test_hostile_metadata_gives_a_note_or_is_ignored_and_fetches_nothing(case, metadata_corpus):
    from gauntlet.forensics.provenance import read_provenance

    paths, requests = metadata_corpus
    limit = int(case.limit_mb * 1024 * 1024) if case.limit_mb else None
    result = read_provenance(paths[case.name], max_bytes=limit)
    case.check(result)
    for note in result.notes:
        assert_human(note)
    assert result.summary and requests == []


MEMORY_CAPPED_PROVENANCE = """
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from gauntlet.forensics.provenance import read_provenance
print(json.dumps({path: read_provenance(path, max_bytes=None).summary for path in sys.argv[2:]}))
"""


def test_hostile_metadata_reads_in_one_process_under_a_one_gigabyte_cap(metadata_corpus):
    """Even without the upload limit (the command line), no box or chunk makes the reader allocate what it declares."""
    paths, requests = metadata_corpus
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", MEMORY_CAPPED_PROVENANCE, str(1024 ** 3), *map(str, paths.values())],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1], env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(json.loads(done.stdout)) == len(paths) and requests == []


def test_app_provenance_panel_notes_xxe_and_fetches_nothing(metadata_corpus, app_client):
    from gradio_client import handle_file

    paths, requests = metadata_corpus
    client, server = app_client
    for name in ("xmp_external_entity_xxe", "jumbf_box_declares_4_gb", "ztxt_bomb_50_mb"):
        text = client.predict(handle_file(str(paths[name])), api_name="/provenance")
        assert "Note:" in text and "What it does not prove" in text, text
    assert requests == [] and "Traceback" not in server.log_text()
