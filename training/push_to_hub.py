"""Publish a GAUNTLET checkpoint folder to a Hugging Face Hub model repository.

    python -m training.push_to_hub --checkpoint checkpoints/baseline-cifake --repo owner/name [--tag v1]

Uploads ``config.json``, ``model.safetensors`` and a generated ``README.md``
(model card with the config's metrics and training command), then prints the
pinned source to use in the app: ``hf://owner/name@<commit>``. ``HF_ENDPOINT``
and ``HF_TOKEN`` are honoured.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from gauntlet.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointConfig, hub_endpoint, read_config


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Publish a checkpoint folder to the Hugging Face Hub.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (config.json + model.safetensors)")
    parser.add_argument("--repo", required=True, help="Hub model repository, owner/name")
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


def main(args: argparse.Namespace) -> None:
    commit = push(Path(args.checkpoint), args.repo, args.tag, args.private, args.message)
    print(f"Published {args.checkpoint} to {args.repo} at commit {commit}.")
    print(f"Use it as: hf://{args.repo}@{args.tag or commit}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
