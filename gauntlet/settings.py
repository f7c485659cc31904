"""Every setting GAUNTLET reads from the environment, in one place.

Only entry points call :func:`get_settings` (``app.launch`` and the command-line
``main`` functions) and pass the values down: the library (``gauntlet/``) takes
folders, limits and flags as parameters and never reads the environment, so a
deployment is configured by environment variables alone (a Hugging Face Space
sets them in its settings) and a test or a script can use the library with any values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SPACE_STORAGE = Path("/data")  # a Hugging Face Space's persistent storage, mounted there when enabled
BUNDLED_CHECKPOINTS = REPO_ROOT / "checkpoints"  # what the library uses unless given another folder


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in {"1", "true", "yes", "on"}


def _user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "gauntlet"


def persistent_dir(space_storage: Path = SPACE_STORAGE) -> Path:
    """Where files that must outlive a restart go: the Space's persistent storage when mounted, else the
    user data folder (a Space's own disk is wiped on every restart)."""
    return space_storage / "gauntlet" if space_storage.is_dir() else _user_data_dir()


def _default_data_dir() -> Path | None:
    configured = os.environ.get("GAUNTLET_DATA_DIR", "").strip()
    if configured:
        return Path(configured)
    shared = REPO_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


@dataclass(frozen=True)
class Settings:
    """Deployment settings; see README "Configuration" for each variable."""

    host: str
    port: int
    data_dir: Path | None
    checkpoints_dir: Path
    quiz_dir: Path
    cache_dir: Path
    classroom_db: Path
    hub_offline: bool
    max_upload_mb: float
    max_pixels: int
    explain_timeout_s: float
    queue_max_size: int
    concurrency_limit: int
    predict_concurrency: int
    analyse_concurrency: int
    explain_processes: bool
    torch_threads: int
    explanation_cache: int
    default_models: tuple[str, ...]
    room_ttl_hours: float = 48.0
    join_max_failures: int = 20
    join_window_s: float = 60.0
    precompute_reveals: bool = True


def get_settings() -> Settings:
    """Read the settings from the environment (entry points only; see the module docstring)."""
    kept = persistent_dir(SPACE_STORAGE)
    models = os.environ.get("GAUNTLET_MODELS", "").strip()
    return Settings(
        host=os.environ.get("GAUNTLET_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        port=_env_int("GAUNTLET_PORT", _env_int("GRADIO_SERVER_PORT", _env_int("PORT", 7860))),
        data_dir=_default_data_dir(),
        checkpoints_dir=Path(os.environ.get("GAUNTLET_CHECKPOINTS_DIR", BUNDLED_CHECKPOINTS)),
        quiz_dir=Path(os.environ.get("GAUNTLET_QUIZ_DIR", REPO_ROOT / "quiz_data")),
        cache_dir=Path(os.environ.get("GAUNTLET_CACHE_DIR", kept / "cache")),
        classroom_db=Path(os.environ.get("GAUNTLET_CLASSROOM_DB", kept / "classroom.sqlite3")),
        hub_offline=_env_bool("HF_HUB_OFFLINE", False),
        max_upload_mb=_env_float("GAUNTLET_MAX_UPLOAD_MB", 20.0),
        max_pixels=_env_int("GAUNTLET_MAX_PIXELS", 50_000_000),
        explain_timeout_s=_env_float("GAUNTLET_EXPLAIN_TIMEOUT_S", 120.0),
        queue_max_size=_env_int("GAUNTLET_QUEUE_MAX_SIZE", 64),
        concurrency_limit=_env_int("GAUNTLET_CONCURRENCY", 1),
        predict_concurrency=_env_int("GAUNTLET_PREDICT_CONCURRENCY", 8),
        analyse_concurrency=_env_int("GAUNTLET_ANALYSE_CONCURRENCY", 8),
        explain_processes=_env_bool("GAUNTLET_EXPLAIN_PROCESS", False),
        torch_threads=_env_int("GAUNTLET_TORCH_THREADS", 1),
        explanation_cache=_env_int("GAUNTLET_EXPLANATION_CACHE", 256),
        default_models=tuple(m.strip() for m in models.split(",") if m.strip()),
        room_ttl_hours=_env_float("GAUNTLET_ROOM_TTL_HOURS", 48.0),
        join_max_failures=_env_int("GAUNTLET_JOIN_MAX_FAILURES", 20),
        join_window_s=_env_float("GAUNTLET_JOIN_WINDOW_S", 60.0),
        precompute_reveals=_env_bool("GAUNTLET_PRECOMPUTE_REVEALS", True),
    )
