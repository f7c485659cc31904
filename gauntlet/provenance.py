"""``python -m gauntlet.provenance FILE --json``: what an image file says about its origin.

Prints ``{"c2pa": ..., "exif": ..., "png_text": ..., "generator_hints": [...], "summary": "..."}`` (plus
``xmp`` and ``notes``) with ``--json``, else the summary and the hints as text. The reading itself lives in
:mod:`gauntlet.forensics.provenance`; files above the app's upload limit (``GAUNTLET_MAX_UPLOAD_MB``) are
not read, as in the app.
"""
from __future__ import annotations

import argparse

from .forensics.provenance import Provenance, read_provenance, to_json_text
from .settings import get_settings

__all__ = ["Provenance", "read_provenance", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gauntlet.provenance", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="an image file (JPEG, PNG, WebP, GIF, BMP or TIFF)")
    parser.add_argument("--json", action="store_true", help="print every field as JSON")
    args = parser.parse_args(argv)
    result = read_provenance(args.file, max_bytes=int(get_settings().max_upload_mb * 1024 * 1024))
    if args.json:
        print(to_json_text(result))
    else:
        print(result.summary)
        for line in result.generator_hints + result.notes:
            print(f"- {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
