"""Train a GAUNTLET checkpoint (resumable, best-on-validation, test metrics recorded).

    python -m training.train --arch baseline_cnn --data cifake --epochs 8 --optimizer adamw \\
        --batch-size 128 --out checkpoints/baseline-cifake --name baseline-cifake

Pretrained backbones use the study's two-step schedule: ``--head-epochs`` with
the backbone frozen (only the new head learns, at ``--head-lr``), then
``--epochs`` with every layer unfrozen (at ``--lr``); the learning rate follows
a cosine curve inside each step. After every epoch the full training state goes
to ``--run-dir`` (outside git); rerunning the same command resumes there. The
epoch with the best validation accuracy is kept; its test metrics, measured by
:mod:`training.evaluate`'s code on the saved weights, and the command line go
into the checkpoint's ``config.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from gauntlet.checkpoint import Checkpoint, CheckpointConfig, load_checkpoint, load_folder, save_checkpoint, to_half
from gauntlet.detector import Detector
from gauntlet.models import build_model, get_architecture
from gauntlet.settings import get_settings
from training import data
from training.augment import REFRAME_COPY, augment, cutmix, degrade_arrays, mirror, random_crops, transformed_arrays
from training.evaluate import confusion_metrics, evaluate_benchmarks, evaluate_items

log = logging.getLogger(__name__)
RUN_STATE = "last.pt"
RESUME_IGNORES = {"workers", "threads", "run_dir", "device", "keep"}
ALWAYS = {"arch", "data", "optimizer", "lr", "batch_size", "epochs"}
# options that say where or how fast a run happened, not what was learned: left out of the recorded recipe
NOT_RECIPE = {"data_dir", "workers", "threads", "device", "run_dir", "out", "name", "display_name", "description"}


def share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a GAUNTLET detector checkpoint.")
    parser.add_argument("--arch", default="baseline_cnn", help="architecture name (gauntlet.models)")
    parser.add_argument("--data", nargs="+", default=["cifake"],
                        help="one or more training collections: cifake, rvaa, mixed, generators, real_photos, "
                             "generators_real, or folders with REAL/ and FAKE/ (several are joined)")
    parser.add_argument("--weights", nargs="*", default=[], metavar="NAME=W",
                        help="sampling share of each --data collection (default: in proportion to its size)")
    parser.add_argument("--balance", action="store_true",
                        help="draw REAL and FAKE training images equally often (pairs single-class collections)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: GAUNTLET_DATA_DIR or ../shared/data)")
    parser.add_argument("--input-size", type=int, default=None, help="square input side (default: the architecture's)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs with every layer trainable")
    parser.add_argument("--head-epochs", type=int, default=0, help="epochs before those with the backbone frozen")
    parser.add_argument("--epoch-size", type=int, default=None, help="images drawn per epoch (default: all)")
    parser.add_argument("--pretrained", action="store_true", help="start from ImageNet weights")
    parser.add_argument("--init", default=None, help="start from this GAUNTLET checkpoint's weights (same architecture)")
    parser.add_argument("--optimizer", choices=["adam", "adamw"], default="adamw")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the full-network epochs")
    parser.add_argument("--head-lr", type=float, default=None, help="learning rate of the head epochs (default: 10 x lr)")
    parser.add_argument("--weight-decay", type=float, default=None, help="default: the optimizer's own")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--augment", action="store_true", help="random rotations up to 90 degrees and flips")
    parser.add_argument("--hflip", action="store_true",
                        help="mirror training images left-right at random (flips without --augment's rotations)")
    parser.add_argument("--degrade", type=share, default=0.0,
                        help="share of drawn training images blurred and/or JPEG re-compressed (Wang et al. 2020)")
    parser.add_argument("--reframe", action="store_true",
                        help="add a reframed copy of every training image (square ones cut to 4:3 or 3:4, others to "
                             "their central square), so that padding bars stop telling the classes apart")
    parser.add_argument("--cutmix", type=share, default=0.0,
                        help="share of batches mixed with CutMix (after --augment), 0 to 1")
    parser.add_argument("--crop", type=int, default=None,
                        help="train on random N px windows of the --input-size images (validation and the app "
                             "see the whole image)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="processes decoding images into the cache")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--bf16", action="store_true",
                        help="train in bfloat16 autocast (about 2.5x faster on CPUs with AVX512-BF16; "
                             "validation and the saved weights stay float32)")
    parser.add_argument("--device", default="cpu", help="where the network trains: cpu, or cuda for a GPU")
    parser.add_argument("--limit", type=int, default=None, help="at most N images per split (for quick tests)")
    parser.add_argument("--val-size", type=int, default=None, help="validate on the first N validation images only")
    parser.add_argument("--keep", choices=("best", "last"), default="best",
                        help="save the epoch with the best validation accuracy, or the last one "
                             "(an ingredient for training.soup --greedy, chosen without looking at validation)")
    parser.add_argument("--run-dir", default=None, help="per-epoch state for resuming (default: cache dir/runs/NAME)")
    parser.add_argument("--out", required=True, help="final checkpoint folder")
    parser.add_argument("--name", default=None, help="checkpoint name (default: the --out folder's name)")
    parser.add_argument("--display-name", default="")
    parser.add_argument("--description", default="")
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    return parser


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace, module: str = "training.train",
                 always: set[str] = ALWAYS) -> str:
    """The command that reproduces ``args`` (options left at their defaults are omitted, except ``always``)."""
    words = ["python", "-m", module]
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest == "help" or (value == action.default and action.dest not in always):
            continue
        values = [] if isinstance(value, bool) else value if isinstance(value, list) else [value]
        words += [action.option_strings[0], *map(str, values)]
    return shlex.join(words)


def recipe(args: argparse.Namespace, input_size: int) -> dict[str, Any]:
    """The training options as data (``config.json``'s ``recipe``), without where or how fast the run happened."""
    return {**{k: v for k, v in vars(args).items() if k not in NOT_RECIPE}, "input_size": input_size}


def sources_of(args: argparse.Namespace) -> list[str]:
    """The ``--data`` collections as a list (older runs and ``training.soup`` pass one name)."""
    return [args.data] if isinstance(args.data, str) else list(args.data)


def source_items(args: argparse.Namespace, source: str, split: str) -> list[data.Item]:
    items = data.dataset_items(source, args.data_dir, split)
    val_size = getattr(args, "val_size", None) if split == "val" else None
    limit = min(filter(None, [args.limit, val_size]), default=None)
    return data.interleave(items, limit) if limit else items


def _items(args: argparse.Namespace, split: str) -> list[data.Item]:
    return [item for source in sources_of(args) for item in source_items(args, source, split)]


def _collections(args: argparse.Namespace, split: str) -> list[str]:
    """The collection of each of ``_items(args, split)``, in the same order."""
    return [source for source in sources_of(args) for _ in source_items(args, source, split)]


def _tag(args: argparse.Namespace, split: str) -> str:
    return f"{'+'.join(Path(source).name for source in sources_of(args))}-{split}"


def parse_weights(pairs: list[str]) -> dict[str, float]:
    """``["generators=2", "rvaa=1"]`` -> ``{"generators": 2.0, "rvaa": 1.0}`` (a clear exit on a typo)."""
    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            raise SystemExit(f"--weights {pair!r}: write NAME=NUMBER, e.g. rvaa=2.") from None
    return weights


def epoch_order(args: argparse.Namespace, epoch: int, count: int, weights: np.ndarray | None) -> np.ndarray:
    """Indices of one epoch: a seeded permutation, or (with per-image ``weights``) a seeded weighted draw."""
    size = args.epoch_size or count
    if weights is None:
        generator = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        return torch.randperm(count, generator=generator)[:size].numpy()
    rng = np.random.default_rng(args.seed * 1000 + epoch)
    return rng.choice(count, size=size, replace=True, p=weights / weights.sum())


def sampling_weights(args: argparse.Namespace, labels: np.ndarray) -> np.ndarray | None:
    """Per-image draw weights for ``--weights`` / ``--balance`` (None: a plain permutation)."""
    if not args.weights and not args.balance:
        return None
    return data.source_weights(_collections(args, "train"), labels, parse_weights(args.weights) or None,
                               args.balance)


def _with_reframed(args: argparse.Namespace, items: list[data.Item], arrays: np.ndarray, labels: np.ndarray,
                   weights: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The training set plus a reframed copy of each image (same label, same draw weight as its original)."""
    reframed = data.cached_arrays(items, size, f"{_tag(args, 'train')}-reframed",
                           lambda: transformed_arrays(items, size, REFRAME_COPY))
    return (np.concatenate([arrays, reframed]), np.concatenate([labels, labels]),
            None if weights is None else np.concatenate([weights, weights]))


def make_optimizer(args: argparse.Namespace, params, lr: float) -> torch.optim.Optimizer:
    """Adam or AdamW over ``params`` (weight decay: ``--weight-decay`` or the optimizer's default)."""
    kwargs = {} if args.weight_decay is None else {"weight_decay": args.weight_decay}
    optimizer = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[args.optimizer]
    return optimizer(params, lr=lr, **kwargs)


def _phase(args: argparse.Namespace, epoch: int) -> tuple[str, int, int, float]:
    """(name, first epoch, number of epochs, peak learning rate) of the step ``epoch`` belongs to."""
    if epoch < args.head_epochs:
        return "head", 0, args.head_epochs, args.head_lr or 10 * args.lr
    return "full", args.head_epochs, args.epochs, args.lr


def _set_trainable(model: nn.Module, phase: str) -> list[nn.Parameter]:
    frozen = phase == "head"
    model.train()
    model.features.requires_grad_(not frozen)
    if frozen:
        model.features.eval()
    return [p for p in model.parameters() if p.requires_grad]


def train_epoch(model: nn.Module, detector: Detector, optimizer: torch.optim.Optimizer, arrays: np.ndarray,
                labels: np.ndarray, args: argparse.Namespace, epoch: int, weights: np.ndarray | None = None) -> float:
    """One pass over a seeded permutation or weighted draw (``--epoch-size`` images); returns the mean loss."""
    phase, first, count, peak = _phase(args, epoch)
    generator = torch.Generator().manual_seed(args.seed * 1000 + epoch)
    order = epoch_order(args, epoch, len(arrays), weights)
    steps = math.ceil(len(order) / args.batch_size)
    total, losses = steps * count, []
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1} ({phase})", unit="batch")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = peak * 0.5 * (1 + math.cos(math.pi * ((epoch - first) * steps + step) / total))
        index = np.sort(order[step * args.batch_size:(step + 1) * args.batch_size])
        drawn = arrays[index]
        if args.degrade:
            drawn = degrade_arrays(drawn, random.Random(f"{args.seed}:{epoch}:{step}"), args.degrade)
        batch = detector.to_tensor(drawn)
        if args.crop:
            batch = random_crops(batch, args.crop, generator)
        if args.augment:
            batch = augment(batch, generator)
        if args.hflip:
            batch = mirror(batch, generator)
        target = torch.from_numpy(labels[index]).to(args.device)
        loss = batch_loss(model, batch, target, args, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
    return float(np.mean(losses))


def batch_loss(model: nn.Module, batch: torch.Tensor, target: torch.Tensor, args: argparse.Namespace,
               generator: torch.Generator) -> torch.Tensor:
    """Cross-entropy of a training batch; with ``--cutmix`` some batches mix images and labels by area."""
    batch = batch.contiguous(memory_format=torch.channels_last)  # the network's layout (see fit)
    with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=args.bf16):
        return _batch_loss(model, batch, target, args, generator)


def _batch_loss(model: nn.Module, batch: torch.Tensor, target: torch.Tensor, args: argparse.Namespace,
                generator: torch.Generator) -> torch.Tensor:
    if not args.cutmix or torch.rand(1, generator=generator).item() >= args.cutmix:
        return nn.functional.cross_entropy(model(batch.to(args.device)), target)
    mixed, partner, keep = cutmix(batch, generator)
    logits = model(mixed.to(args.device))
    return keep * nn.functional.cross_entropy(logits, target) + \
        (1 - keep) * nn.functional.cross_entropy(logits, target[partner.to(args.device)])


@torch.no_grad()
def validate(model: nn.Module, detector: Detector, arrays: np.ndarray, labels: np.ndarray,
             batch_size: int, device: str = "cpu") -> dict[str, Any]:
    """Loss and metrics on preprocessed arrays (no augmentation)."""
    model.eval()
    logits = torch.cat([model(detector.to_tensor(arrays[i:i + batch_size]).to(device)).cpu()
                        for i in range(0, len(arrays), batch_size)])
    result = confusion_metrics(labels, logits.argmax(1).numpy())
    result["loss"] = nn.functional.cross_entropy(logits, torch.from_numpy(labels)).item()
    return result


def _load_state(run_dir: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    path = run_dir / RUN_STATE
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    before, now = dict(state["args"]), vars(args)
    if isinstance(before.get("data"), str):  # runs begun when --data took one name
        before["data"] = [before["data"]]
    defaults = vars(get_args_parser().parse_args(["--out", now["out"]]))  # options added since the run began
    changed = sorted(k for k in (set(before) | set(now)) - RESUME_IGNORES
                     if before.get(k, defaults.get(k)) != now.get(k))
    if changed:
        raise SystemExit(f"{run_dir} holds a run with other settings ({', '.join(changed)}); use another --run-dir.")
    return state


def _save_state(run_dir: Path, state: dict[str, Any]) -> None:
    partial = run_dir / (RUN_STATE + ".partial")
    torch.save(state, partial)
    partial.replace(run_dir / RUN_STATE)
    (run_dir / "history.json").write_text(json.dumps(state["history"], indent=2) + "\n")


def _describe(args: argparse.Namespace, sizes: dict[str, int]) -> str:
    source = " + ".join(s if s in data.DATASETS else f"folder {Path(s).name}" for s in sources_of(args))
    if args.weights:
        source += f" (shares {', '.join(args.weights)})"
    if args.balance:
        source += ", classes balanced"
    schedule = f"{args.head_epochs} head + {args.epochs} full epochs" if args.head_epochs else f"{args.epochs} epochs"
    extras = ", ImageNet start" if args.pretrained else ""
    extras += f", started from checkpoint {args.init}" if args.init else ""
    extras += f", random {args.crop} px crops" if args.crop else ""
    extras += f", blur/JPEG on {args.degrade:.0%} of drawn images" if args.degrade else ""
    extras += ", plus a reframed copy of each training image" if args.reframe else ""
    extras += ", rotation/flip augmentation" if args.augment else ""
    extras += ", random left-right mirroring" if args.hflip else ""
    extras += f", CutMix on {args.cutmix:.0%} of batches" if args.cutmix else ""
    return (f"{source}: {sizes['train']} training and {sizes['val']} validation images ({args.keep} epoch kept); "
            f"{schedule}, {args.optimizer} lr {args.lr}, batch {args.batch_size}{extras}")


def fit(args: argparse.Namespace, model: nn.Module, detector: Detector, run_dir: Path) -> dict[str, Any]:
    """Train with resume; returns the run state (``best_model`` holds the selected weights).

    The network trains in channels-last layout: the same arithmetic, about twice as fast on a CPU.
    """
    model.to(memory_format=torch.channels_last)
    sets = {split: _items(args, split) for split in ("train", "val")}
    arrays = {s: data.decode_arrays(i, detector.input_size, _tag(args, s), args.workers) for s, i in sets.items()}
    labels = {s: data.labels_of(i) for s, i in sets.items()}
    weights = sampling_weights(args, labels["train"])
    if args.reframe:
        arrays["train"], labels["train"], weights = _with_reframed(args, sets["train"], arrays["train"],
                                                                   labels["train"], weights, detector.input_size)
    state = _load_state(run_dir, args) or {"epoch": 0, "history": [], "best": None, "args": vars(args),
                                            "sizes": {s: len(i) for s, i in sets.items()}}
    if state["epoch"]:
        model.load_state_dict(state["model"])
        torch.set_rng_state(state["rng"])
        print(f"resuming {run_dir} after epoch {state['epoch']}")
    optimizer, optimizer_phase = None, None
    for epoch in range(state["epoch"], args.head_epochs + args.epochs):
        phase = _phase(args, epoch)[0]
        params = _set_trainable(model, phase)
        if phase != optimizer_phase:
            optimizer, optimizer_phase = make_optimizer(args, params, _phase(args, epoch)[3]), phase
            if state.get("optimizer_phase") == phase:
                optimizer.load_state_dict(state["optimizer"])
        loss = train_epoch(model, detector, optimizer, arrays["train"], labels["train"], args, epoch,
                           weights=weights)
        val = validate(model, detector, arrays["val"], labels["val"], args.batch_size, args.device)
        record = {"epoch": epoch + 1, "phase": phase, "train_loss": loss, "val_loss": val["loss"],
                  "val_accuracy": val["accuracy"]}
        print(json.dumps(record))
        state["history"].append(record)
        if state["best"] is None or (val["accuracy"], -val["loss"]) > (state["best"]["val_accuracy"], -state["best"]["val_loss"]):
            state["best"], state["best_model"] = record, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state.update(epoch=epoch + 1, model=model.state_dict(), optimizer=optimizer.state_dict(), optimizer_phase=phase,
                     rng=torch.get_rng_state())
        _save_state(run_dir, state)
    return state


def _prepare_device(device: str) -> None:
    """Fail early with a clear message when a GPU was asked for but is absent; let cuDNN pick fast kernels."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {device}: no CUDA GPU is visible to PyTorch here; use --device cpu.")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


def _check_crop(args: argparse.Namespace, size: int) -> None:
    """``--crop`` needs a network that pools globally and a window smaller than the image."""
    if not args.crop:
        return
    if get_architecture(args.arch).fixed_input_size:
        raise SystemExit(f"--crop: {args.arch} only takes {size} px inputs, so it cannot train on smaller windows.")
    if not 0 < args.crop < size:
        raise SystemExit(f"--crop {args.crop} must be smaller than the input size ({size} px).")


def main(args: argparse.Namespace) -> Path:
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    name = args.name or out.name
    run_dir = Path(args.run_dir) if args.run_dir else get_settings().cache_dir / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    size = args.input_size or get_architecture(args.arch).default_input_size
    _check_crop(args, size)
    model = build_model(args.arch, size, pretrained=args.pretrained)
    config = CheckpointConfig(architecture=args.arch, input_size=size, name=name, display_name=args.display_name,
                              description=args.description, command=command_line(get_args_parser(), args),
                              datasets=data.collections(*sources_of(args)), recipe=recipe(args, size))
    if args.init:
        start = load_checkpoint(args.init, get_settings().checkpoints_dir)
        model.load_state_dict(start.model.state_dict())
        config.lineage = [*start.config.lineage, start.config.command]
    _prepare_device(args.device)
    state = fit(args, model.to(args.device), Detector(Checkpoint(model, config, "training")), run_dir)
    kept, weights = ((state["best"], state["best_model"]) if args.keep == "best"
                     else (state["history"][-1], state["model"]))
    model.cpu().load_state_dict(weights)
    config.trained_on = _describe(args, state["sizes"])
    config.sources = sources_record(args)
    config.class_balance = args.balance
    return finish(model, config, args, out, kept)


def sources_record(args: argparse.Namespace) -> list[dict[str, Any]]:
    """What ``config.sources`` records: each ``--data`` source, its sampling weight and its images per split."""
    weights = parse_weights(args.weights)
    return [{"name": source, "weight": weights.get(source),
             **{split: len(source_items(args, source, split)) for split in ("train", "val")}}
            for source in sources_of(args)]


def test_items(args: argparse.Namespace) -> dict[str, list[data.Item]]:
    """The test sets of every training collection (single-class ones are measured as their pair)."""
    sources = ["generators_real" if s in data.SINGLE_CLASS else s for s in sources_of(args)]
    sets = {name: items for source in dict.fromkeys(sources) for name, items in data.test_sets(source, args.data_dir).items()}
    if args.limit:
        sets = {n: data.interleave(i, args.limit) for n, i in sets.items()}
    return sets


def finish(model: nn.Module, config: CheckpointConfig, args: argparse.Namespace, out: Path,
           best: dict[str, Any]) -> Path:
    """Save the selected weights, then measure them as saved and record the test metrics in config.json.

    With ``--half`` the validation accuracy of the float16 weights is recorded too (``accuracy_as_saved``), unless
    ``best`` already holds it (``val_accuracy_as_saved``: a soup judged as stored).
    """
    save_checkpoint(model, config, out)
    if args.half:
        to_half(out)
    saved = load_folder(out)
    items = test_items(args)
    validation = {"accuracy": best["val_accuracy"], "epoch": best["epoch"]}
    if args.half:  # epochs are validated in float32; the checkpoint holds float16 weights, which can differ
        validation["accuracy_as_saved"] = best["val_accuracy_as_saved"] if "val_accuracy_as_saved" in best else \
            evaluate_items(Detector(saved), _items(args, "val"), args.batch_size, "validation as saved")["accuracy"]
    config.metrics = {"validation": validation, **evaluate_benchmarks(Detector(saved), items, args.batch_size)}
    save_checkpoint(saved.model, config, out)
    if args.half:
        to_half(out)
    print(json.dumps({k: v.get("accuracy") for k, v in config.metrics.items()}))
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
