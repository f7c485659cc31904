"""training.debian_photos: the licence each photo's copyright paragraph states, and the views it writes."""
from __future__ import annotations

import random

from PIL import Image

from training.debian_photos import LONG_SIDE, PHOTOS, licence_of, photo_name, views

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: wallpapers

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: nature/Aqua.jpg
       nature/Garden.jpg
Copyright: 2008 Photographer
License: CC-BY-4.0

Files: debian/*
Copyright: 2021 Packager
License: Expat
"""


def test_the_licence_is_the_paragraph_naming_the_file_not_a_wildcard(tmp_path):
    path = tmp_path / "copyright"
    path.write_text(COPYRIGHT)
    assert licence_of(path, "usr/share/backgrounds/mate/nature/Garden.jpg") == "CC-BY-4.0", "continuation line"
    assert licence_of(path, "usr/share/backgrounds/other.jpg") == "GPL-2+", "debian/* is the packaging's own"
    assert licence_of(tmp_path / "missing", "a.jpg") == "see the package's copyright file"


def test_each_photo_gives_the_whole_picture_and_windows_at_the_collections_size():
    image = Image.new("RGB", (1600, 900), (10, 20, 30))
    shown = views(image, 3, random.Random(0))
    assert len(shown) == 4 and all(max(view.size) == LONG_SIDE for view in shown)
    assert shown[0].size == (320, 180), "the whole picture keeps its shape"
    assert photo_name("usr/share/wallpapers/Path/contents/images/1920x1080.jpg") == "Path"
    assert len({photo_name(path) for path in PHOTOS}) == len(PHOTOS), "no two photos share a file name"
