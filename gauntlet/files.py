"""Files the app serves while other visitors may be reading them."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """``write(temporary_name)``, then rename it to ``path``: readers see the old file or the whole new one, never
    half a file (the temporary file sits in the same folder, so the rename is atomic; it is removed on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
