"""Average the weights of fine-tuned checkpoints into one (a uniform "model soup", Wortsman et al. 2022).

    python -m training.soup --checkpoints checkpoints/lite0-cifake /work/runs/ck/lite0-cifake-128-hflip \
        --data cifake --out /work/runs/ck/lite0-cifake-soup --half

Runs that continue one another (``--init``) end in nearby minima of the same
basin; their average often generalises a little better than either, at no
cost when predicting. The ingredients must share architecture, input size and
labels. The soup is judged like a training run: its validation accuracy (the
split of ``--data``) and test metrics go into ``config.json``; decide
test-time flipping afterwards with ``training.flip``.

``--greedy`` makes a greedy soup instead (Wortsman et al.'s recipe): the
candidates are ranked by their own validation accuracy, the best starts the
soup, and each next one joins only if the soup's validation accuracy does not
fall. Candidates saved with ``training.train --keep last`` were not chosen on
validation themselves, so validation is looked at only by this one rule.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from gauntlet.checkpoint import Checkpoint, load_checkpoint
from gauntlet.detector import Detector
from gauntlet.settings import get_settings
from training import data, train
from training.evaluate import evaluate_items


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Average the weights of GAUNTLET checkpoints (a model soup).")
    parser.add_argument("--checkpoints", nargs="+", required=True, help="two or more checkpoints (name or folder)")
    parser.add_argument("--data", required=True, help="their training data: cifake, rvaa, mixed or a REAL/FAKE folder")
    parser.add_argument("--data-dir", default=None, help="data directory (default: settings)")
    parser.add_argument("--out", required=True, help="folder of the averaged checkpoint")
    parser.add_argument("--name", default=None, help="checkpoint name (default: the first ingredient's)")
    parser.add_argument("--description", default=None, help="what the soup is (default: the first ingredient's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument("--greedy", action="store_true",
                        help="keep only the candidates that do not lower validation accuracy (best first)")
    return parser


def average_weights(checkpoints: list[Checkpoint]) -> dict[str, torch.Tensor]:
    """Uniform average of floating-point tensors; counters (BatchNorm's batch count) come from the first."""
    first, keys = checkpoints[0].config, ("architecture", "input_size", "labels")
    for other in checkpoints[1:]:
        if any(getattr(other.config, k) != getattr(first, k) for k in keys):
            raise SystemExit(f"{other.source} differs from {checkpoints[0].source} in architecture, input size "
                             "or labels; only checkpoints of one kind can be averaged.")
    states = [c.model.state_dict() for c in checkpoints]
    return {key: torch.stack([s[key].float() for s in states]).mean(0).to(tensor.dtype)
            if tensor.is_floating_point() else tensor for key, tensor in states[0].items()}


def as_stored(state: dict[str, torch.Tensor], half: bool) -> dict[str, torch.Tensor]:
    """The weights as ``--half`` will store them (float16, read back as float32), so they are judged as saved."""
    return {k: v.half().float() if half and v.is_floating_point() else v for k, v in state.items()}


def _val_accuracy(checkpoint: Checkpoint, items: list[data.Item], batch_size: int) -> float:
    return evaluate_items(Detector(checkpoint), items, batch_size, "validation")["accuracy"]


def greedy_selection(candidates: list[Checkpoint], items: list[data.Item], batch_size: int,
                     half: bool = False) -> tuple[list[Checkpoint], float]:
    """The candidates a greedy soup keeps, best first, and their average's validation accuracy.

    Ties in rank keep the order given (list the incumbent first)."""
    scores = [_val_accuracy(c, items, batch_size) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    kept, best = [candidates[order[0]]], scores[order[0]]
    trial = copy.deepcopy(kept[0])
    for i in order[1:]:
        trial.model.load_state_dict(as_stored(average_weights([*kept, candidates[i]]), half))
        accuracy = _val_accuracy(trial, items, batch_size)
        print(json.dumps({"candidate": candidates[i].source, "alone": scores[i], "soup_before": best,
                          "soup_with_it": accuracy, "kept": accuracy >= best}))
        if accuracy >= best:
            kept, best = [*kept, candidates[i]], accuracy
    return kept, best


def _lineage(checkpoints: list[Checkpoint]) -> list[str]:
    """Every command behind the ingredients, oldest first, each once."""
    commands = [c for checkpoint in checkpoints for c in [*checkpoint.config.lineage, checkpoint.config.command]]
    return list(dict.fromkeys(filter(None, commands)))


def main(args: argparse.Namespace) -> Path:
    if len(args.checkpoints) < 2:
        raise SystemExit("--checkpoints: a soup needs at least two checkpoints.")
    checkpoints_dir = get_settings().checkpoints_dir
    ingredients = [load_checkpoint(source, checkpoints_dir) for source in args.checkpoints]
    for ingredient in ingredients:
        ingredient.config.test_time_flip = False  # judged as averaged, plain; training.flip decides later
    val_items = data.dataset_items(args.data, args.data_dir, "val")
    accuracy = None
    if args.greedy:
        ingredients, accuracy = greedy_selection(ingredients, val_items, args.batch_size, args.half)
    soup = copy.deepcopy(ingredients[0])
    soup.model.load_state_dict(as_stored(average_weights(ingredients), args.half))
    names = ", ".join(c.config.name or c.source for c in ingredients)
    lineage, trained_on = _lineage(ingredients), " | ".join(c.config.trained_on for c in ingredients)
    config = soup.config  # the first ingredient's preprocessing, labels and target layers
    config.name = args.name or config.name
    config.description = args.description or config.description
    config.command = train.command_line(get_args_parser(), args, "training.soup", always={"data"})
    kind = f"greedy soup of {len(args.checkpoints)} candidates, kept" if args.greedy else "uniform weight average of"
    config.lineage, config.trained_on = lineage, f"{kind} {names}; each: {trained_on}"
    config.datasets = list(dict.fromkeys(d for c in ingredients for d in c.config.datasets)) or data.collections(
        args.data)
    config.recipe = {"soup": "greedy" if args.greedy else "uniform", "data": args.data, "half": args.half,
                     "ingredients": [c.config.recipe for c in ingredients]}
    if accuracy is None:  # a greedy soup was measured while it was chosen
        accuracy = _val_accuracy(soup, val_items, args.batch_size)
    finish_args = argparse.Namespace(half=args.half, data=args.data, data_dir=args.data_dir, limit=None,
                                     val_size=None, batch_size=args.batch_size)
    return train.finish(soup.model, config, finish_args, Path(args.out),  # averages were judged as stored
                        {"val_accuracy": accuracy, "val_accuracy_as_saved": accuracy, "epoch": None})


if __name__ == "__main__":
    main(get_args_parser().parse_args())
