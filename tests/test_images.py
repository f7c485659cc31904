"""load_image's contract: every kind of source, the limits, and the colour conversions (hostile files: test_hostile_inputs)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gauntlet.images import MAX_SIDE, ImageError, describe_unreadable, load_image, to_rgb


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def picture() -> Image.Image:
    return Image.fromarray(np.random.RandomState(0).randint(0, 255, (30, 40, 3), np.uint8))


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "stream", "pil", "array"])
def test_every_source_kind_gives_the_same_pixels(kind, picture, tmp_path):
    path = tmp_path / "p.png"
    path.write_bytes(png_bytes(picture))
    source = {"path": path, "str": str(path), "bytes": path.read_bytes(), "stream": io.BytesIO(path.read_bytes()),
              "pil": picture, "array": np.asarray(picture)}[kind]
    loaded = load_image(source)
    assert loaded.mode == "RGB" and np.array_equal(np.asarray(loaded), np.asarray(picture))


def test_a_pil_image_passed_in_is_not_modified(picture):
    big = picture.resize((4000, 3000))
    loaded = load_image(big)
    assert big.size == (4000, 3000) and loaded.size == (MAX_SIDE, 1536)


def test_max_side_keeps_the_aspect_ratio_and_none_keeps_the_size():
    wide = Image.new("RGB", (5000, 1000))
    assert load_image(wide).size == (MAX_SIDE, 410)
    assert load_image(wide, max_side=100).size == (100, 20)
    assert load_image(wide, max_side=None).size == (5000, 1000)


def test_pixel_limit_is_checked_before_decoding_and_names_the_numbers():
    data = png_bytes(Image.new("RGB", (300, 200)))
    assert load_image(data, max_pixels=60_000).size == (300, 200)
    with pytest.raises(ImageError, match=r"too large \(300 x 200 pixels"):
        load_image(data, max_pixels=59_999)


def test_missing_file_is_a_human_message(tmp_path):
    with pytest.raises(ImageError, match="could not be found"):
        load_image(tmp_path / "gone.png")


@pytest.mark.parametrize("array", [np.zeros((2, 2, 2, 2)), np.array([[object()]]), np.zeros((3, 0, 3), np.uint8)])
def test_arrays_that_are_not_images_are_refused(array):
    with pytest.raises(ImageError):
        load_image(array)


def test_transparency_is_composited_over_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgb = to_rgb(rgba)
    assert rgb.getpixel((0, 0)) == (255, 0, 0) and rgb.getpixel((3, 3)) == (255, 255, 255)


@pytest.mark.parametrize("mode, values, expected", [
    ("F", [0.0, 0.5, 1.0], [0, 128, 255]),           # floats in [0, 1]
    ("F", [0.0, 100.0, 200.0], [0, 100, 200]),       # floats already on the 8-bit scale
    ("I", [0, 32896, 65535], [0, 128, 255]),         # 16-bit range
    ("I", [-10, 0, 10], [0, 128, 255]),              # anything else is stretched
    ("F", [float("nan"), 0.0, 1.0], [0, 0, 255]),    # NaN becomes black, not an error
])
def test_high_bit_depth_keeps_its_meaning(mode, values, expected):
    image = Image.fromarray(np.array([values], dtype=np.float32 if mode == "F" else np.int32), mode=mode)
    assert [p[0] for p in to_rgb(image).getdata()] == expected


@pytest.mark.parametrize("head, words", [
    (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'>", "SVG"),
    (b"<!-- saved page --><HTML>", "web page"),
    (b"%PDF-1.7", "PDF"),
    (b"just some words\n", "text"),
    (b"\x00\x01\x02\x03binary", "not an image"),
    (b"\x00\x00\x00\x1cftypavif", "AVIF"),
])
def test_unreadable_files_are_named_for_what_they_are(head, words):
    assert words in describe_unreadable(head)
