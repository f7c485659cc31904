"""Checkpoints: a folder with ``config.json`` beside ``model.safetensors``.

The config carries everything needed to use the weights (architecture, labels,
input size, normalisation, target layers) and to trust them (training data,
measured metrics, the command that produced them). :func:`save_checkpoint` and
:func:`load_checkpoint` are symmetric: training writes exactly what the app reads.

Sources accepted by :func:`resolve_checkpoint`:

* a bundled checkpoint name (a folder under ``checkpoints/`` in this repository),
* a local folder path,
* ``hf://owner/name[@revision]``: a Hugging Face Hub model repository, downloaded
  through ``huggingface_hub`` (cached; ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` honoured).
"""
from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from safetensors.torch import load_file, save_file

from .errors import UserError
from .models import Classifier, build_model, get_architecture
from .settings import BUNDLED_CHECKPOINTS

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
HUB_PREFIX = "hf://"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint could not be found, downloaded or read; the message says which and why."""


# Each config field's group in config.json, by role (as timm's pretrained config groups its own). A new field is one
# row here; put it in a VERDICT_GROUPS group when it changes verdicts (caches of verdicts then follow it).
FIELD_GROUPS = {
    "architecture": "model", "input_size": "model", "target_layers": "model",
    "mean": "preprocessing", "std": "preprocessing", "resize": "preprocessing",
    "labels": "labels",
    "test_time_flip": "verdict", "calibration": "verdict",
    "name": "provenance", "display_name": "provenance", "description": "provenance", "trained_on": "provenance",
    "datasets": "provenance", "sources": "provenance", "class_balance": "provenance", "recipe": "provenance",
    "default_rank": "provenance", "command": "provenance",
    "lineage": "provenance",
    "metrics": "metrics",
    "hub_repo": "hub", "hub_revision": "hub",
}
GROUPS = tuple(dict.fromkeys(FIELD_GROUPS.values()))
VERDICT_GROUPS = ("model", "preprocessing", "labels", "verdict")


@dataclass
class CheckpointConfig:
    """Everything that travels with the weights (``config.json``)."""

    architecture: str
    input_size: int
    labels: list[str] = field(default_factory=lambda: ["REAL", "FAKE"])
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    resize: str = "pad_square"
    target_layers: dict[str, list[str]] = field(default_factory=dict)
    name: str = ""
    display_name: str = ""
    description: str = ""
    trained_on: str = ""  # the training data in a sentence, for people
    datasets: list[str] = field(default_factory=list)  # the collections it learned from, e.g. ["rvaa", "cifake"]
    recipe: dict[str, Any] = field(default_factory=dict)  # how: the training options, as data (training.train/soup)
    default_rank: int | None = None  # place in the model selector, lowest first (the app's default); None: after
    metrics: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    lineage: list[str] = field(default_factory=list)  # commands behind the ``--init`` weights, oldest first
    test_time_flip: bool = False  # verdicts average the image and its mirror (chosen on validation: training.flip)
    sources: list[dict[str, Any]] = field(default_factory=list)  # per training source: name, weight, images per split
    class_balance: bool = False  # training drew (or weighted) both classes equally
    calibration: dict[str, Any] = field(default_factory=dict)  # temperature, not_sure band (training.calibrate)
    hub_repo: str = ""
    hub_revision: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckpointConfig":
        """From ``config.json``: grouped (as :meth:`to_dict` writes it) or flat (older checkpoints)."""
        if isinstance(data.get("model"), dict):  # grouped; a flat config has no "model" key
            data = {name: value for group in GROUPS for name, value in (data.get(group) or {}).items()}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Fields grouped by role (see :data:`FIELD_GROUPS`), as ``config.json`` holds them."""
        grouped: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
        for name, value in asdict(self).items():
            grouped[FIELD_GROUPS[name]][name] = value
        return grouped

    def verdict_part(self) -> dict[str, Any]:
        """The fields that change what the model answers (caches of verdicts must key on them)."""
        grouped = self.to_dict()
        return {group: grouped[group] for group in VERDICT_GROUPS}

    def __post_init__(self) -> None:
        if not self.target_layers:
            self.target_layers = dict(get_architecture(self.architecture).target_layers)

    @property
    def title(self) -> str:
        return self.display_name or self.name or self.architecture


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network in eval mode, its config and where it came from."""

    model: Classifier
    config: CheckpointConfig
    source: str


def save_checkpoint(model: Classifier, config: CheckpointConfig, folder: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"architecture": config.architecture})
    write_config(config, folder)
    return folder


def write_config(config: CheckpointConfig, folder: str | os.PathLike) -> None:
    """Write a checkpoint folder's ``config.json`` (the weights stay as they are)."""
    (Path(folder) / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")


def read_config(folder: str | os.PathLike) -> CheckpointConfig:
    """Read a checkpoint folder's ``config.json``."""
    path = Path(folder) / CONFIG_NAME
    try:
        return CheckpointConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: not a GAUNTLET checkpoint folder.") from None
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{path} is not a valid checkpoint config: {err}") from None


def load_folder(folder: str | os.PathLike, source: str | None = None) -> Checkpoint:
    """Load a checkpoint folder; half-precision weights are cast back to float32."""
    folder = Path(folder)
    config = read_config(folder)
    model = build_model(config.architecture, config.input_size)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing.")
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(model=model, config=config, source=source or str(folder))


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """``hf://owner/name@rev`` -> (``owner/name``, ``rev``)."""
    spec = source[len(HUB_PREFIX):]
    repo_id, _, revision = spec.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise CheckpointError(f"{source!r} is not of the form hf://owner/name[@revision].")
    return repo_id, revision or None


def hub_endpoint() -> str:
    """The Hub address in force (``HF_ENDPOINT`` is read at call time, not import time)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hub_reachable(endpoint: str, timeout_s: float = 2.0) -> bool:
    """Can a TCP connection to the Hub be opened quickly? (huggingface_hub itself retries for ~30 s.)"""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def hub_download(repo_id: str, filename: str, revision: str | None, offline: bool, repo_type: str = "model") -> Path:
    """One file of a Hub repository, through the Hugging Face cache (only the cache when ``offline``)."""
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, repo_type=repo_type,
                                endpoint=hub_endpoint(), local_files_only=offline,
                                cache_dir=os.environ.get("HF_HUB_CACHE") or None, etag_timeout=5))


def download_from_hub(repo_id: str, revision: str | None = None, offline: bool = False) -> Path:
    """Fetch a checkpoint from the Hub, or from its local cache when ``offline`` or the Hub is unreachable."""
    offline = offline or not hub_reachable(hub_endpoint())
    try:
        config_path = hub_download(repo_id, CONFIG_NAME, revision, offline)
        hub_download(repo_id, WEIGHTS_NAME, revision, offline)
    except Exception as err:  # noqa: BLE001 - network, auth, missing repo: all become one clear error
        where = "the local Hub cache (Hub offline or unreachable)" if offline else "the Hugging Face Hub"
        raise CheckpointError(f"Could not get {repo_id}@{revision or 'main'} from {where}: {type(err).__name__}") from err
    return Path(config_path).parent


def bundled_names(checkpoints_dir: Path = BUNDLED_CHECKPOINTS) -> list[str]:
    """Names of the checkpoints in a checkpoints folder (its subfolders with a config.json)."""
    if not checkpoints_dir.is_dir():
        return []
    return sorted(p.name for p in checkpoints_dir.iterdir() if (p / CONFIG_NAME).is_file())


def resolve_checkpoint(source: str, checkpoints_dir: Path = BUNDLED_CHECKPOINTS, hub_offline: bool = False) -> Path:
    """Turn any accepted source (a name in ``checkpoints_dir``, a folder, ``hf://``) into a local folder."""
    if source.startswith(HUB_PREFIX):
        return download_from_hub(*parse_hub_source(source), offline=hub_offline)
    bundled = checkpoints_dir / source
    if "/" not in source and (bundled / CONFIG_NAME).is_file():
        return bundled
    folder = Path(source)
    if (folder / CONFIG_NAME).is_file():
        return folder
    known = ", ".join(bundled_names(checkpoints_dir)) or "none"
    raise CheckpointError(f"No checkpoint {source!r}: not a bundled name (bundled: {known}), folder or hf:// source.")


def load_checkpoint(source: str, checkpoints_dir: Path = BUNDLED_CHECKPOINTS, hub_offline: bool = False) -> Checkpoint:
    """Load a checkpoint from a name in ``checkpoints_dir``, a folder or ``hf://owner/name[@revision]``."""
    return load_folder(resolve_checkpoint(source, checkpoints_dir, hub_offline), source=source)


def load_preferring_hub(bundled_name: str, checkpoints_dir: Path = BUNDLED_CHECKPOINTS,
                        hub_offline: bool = False) -> Checkpoint:
    """Load a bundled checkpoint's Hub version when reachable, else the bundled copy.

    The bundled ``config.json`` names the production Hub repository and the
    pinned revision (``hub_repo``, ``hub_revision``). Any failure to reach the
    Hub is logged as one line and the bundled weights are used, so the app
    always starts, also offline.
    """
    folder = checkpoints_dir / bundled_name
    config = read_config(folder)
    if config.hub_repo:
        try:
            hub_folder = download_from_hub(config.hub_repo, config.hub_revision or None, hub_offline)
            return load_folder(hub_folder, source=f"{HUB_PREFIX}{config.hub_repo}@{config.hub_revision or 'main'}")
        except CheckpointError as err:
            log.warning("%s; using the bundled checkpoint %r instead.", err, bundled_name)
    return load_folder(folder, source=bundled_name)


def to_half(folder: str | os.PathLike) -> None:
    """Rewrite a checkpoint's weights in float16 (halves the size; loading casts back)."""
    path = Path(folder) / WEIGHTS_NAME
    state = load_file(str(path))
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(half, str(path), metadata={"dtype": "float16"})


__all__ = [
    "Checkpoint", "CheckpointConfig", "CheckpointError", "save_checkpoint", "load_checkpoint", "load_folder",
    "load_preferring_hub", "resolve_checkpoint", "bundled_names", "read_config", "to_half",
]
