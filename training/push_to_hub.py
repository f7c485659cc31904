"""Publish GAUNTLET checkpoint folders to Hugging Face Hub model repositories.

    python -m training.push_to_hub --checkpoint checkpoints/baseline-cifake --repo owner/name [--tag v1]
    python -m training.push_to_hub --all --owner OWNER [--tag v1]

Uploads ``config.json``, ``model.safetensors`` and a generated ``README.md``
(model card with the config's metrics and training command), then prints the
pinned source to use in the app: ``hf://owner/name@<commit>``. ``--all`` publishes
every bundled checkpoint to ``OWNER/gauntlet-<name>`` and writes ``hub_repo`` and the
commit as ``hub_revision`` into its bundled ``config.json``, so that the app loads it
from the Hub first and falls back to the bundled copy. ``HF_ENDPOINT`` and
``HF_TOKEN`` are honoured.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from gauntlet.checkpoint import (CONFIG_NAME, WEIGHTS_NAME, CheckpointConfig, bundled_names, hub_endpoint,
                                 read_config, write_config)
from gauntlet.settings import get_settings


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Publish checkpoint folders to the Hugging Face Hub.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="checkpoint folder (config.json + model.safetensors)")
    which.add_argument("--all", action="store_true",
                       help="every bundled checkpoint, each to OWNER/gauntlet-NAME, pinned in its config.json")
    parser.add_argument("--repo", help="Hub model repository, owner/name (with --checkpoint)")
    parser.add_argument("--owner", help="Hub user or organisation (with --all)")
    parser.add_argument("--checkpoints-dir", default=None,
                        help="the bundled checkpoints (with --all; default: GAUNTLET_CHECKPOINTS_DIR or checkpoints/)")
    parser.add_argument("--tag", default="", help="also tag the new commit (e.g. v1)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--message", default="Upload GAUNTLET checkpoint", help="commit message")
    return parser


def hub_readme(config: CheckpointConfig) -> str:
    """A short model card for the Hub page, generated from the checkpoint's own config."""
    metrics = json.dumps(config.metrics, indent=2) if config.metrics else "{}"
    return (f"---\nlibrary_name: gauntlet\ntags: [image-classification, ai-generated-image-detection]\n---\n\n"
            f"# {config.title}\n\n{config.description}\n\n"
            f"- Architecture: `{config.architecture}`, input {config.input_size} px, labels {config.labels}\n"
            f"- Trained on: {config.trained_on or 'unknown'}\n"
            f"- Command: `{config.command or 'not recorded'}`\n\n## Metrics\n\n```json\n{metrics}\n```\n")


def push(checkpoint: Path, repo_id: str, tag: str = "", private: bool = False,
         message: str = "Upload GAUNTLET checkpoint") -> str:
    """Upload the checkpoint and return the commit id it was published at."""
    from huggingface_hub import CommitOperationAdd, HfApi

    config = read_config(checkpoint)
    api = HfApi(endpoint=hub_endpoint(), token=os.environ.get("HF_TOKEN") or None)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    operations = [CommitOperationAdd(name, str(checkpoint / name)) for name in (CONFIG_NAME, WEIGHTS_NAME)]
    operations.append(CommitOperationAdd("README.md", hub_readme(config).encode()))
    commit = api.create_commit(repo_id, operations=operations, commit_message=message, repo_type="model")
    if tag:
        api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="model", exist_ok=True)
    return commit.oid


def push_all(checkpoints_dir: Path, owner: str, tag: str = "", private: bool = False,
             message: str = "Upload GAUNTLET checkpoint") -> dict[str, str]:
    """Publish every bundled checkpoint to ``owner/gauntlet-<name>`` and pin it (``hub_repo``, ``hub_revision``)
    in the bundled ``config.json``; returns ``{name: "owner/gauntlet-<name>@<commit>"}``."""
    published = {}
    for name in bundled_names(checkpoints_dir):
        folder, repo_id = checkpoints_dir / name, f"{owner}/gauntlet-{name}"
        commit = push(folder, repo_id, tag, private, message)
        config = read_config(folder)
        config.hub_repo, config.hub_revision = repo_id, commit
        write_config(config, folder)
        published[name] = f"{repo_id}@{commit}"
    return published


def main(args: argparse.Namespace) -> None:
    if args.all:
        if not args.owner:
            raise SystemExit("error: --all needs --owner (the Hub user or organisation to publish under)")
        checkpoints_dir = Path(args.checkpoints_dir) if args.checkpoints_dir else get_settings().checkpoints_dir
        for name, pinned in push_all(checkpoints_dir, args.owner, args.tag, args.private, args.message).items():
            print(f"Published {name} to hf://{pinned}; its config.json now names that repository and revision.")
        return
    if not args.repo:
        raise SystemExit("error: --checkpoint needs --repo owner/name")
    commit = push(Path(args.checkpoint), args.repo, args.tag, args.private, args.message)
    print(f"Published {args.checkpoint} to {args.repo} at commit {commit}.")
    print(f"Use it as: hf://{args.repo}@{args.tag or commit}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
