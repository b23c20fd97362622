"""Checkpoints: written atomically, loaded with clear errors, carrying their config."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from processors.core.atomic import atomic_path
from processors.core.errors import UserError

FORMAT_VERSION = 1   # bump when the checkpoint layout changes incompatibly
# The trained models that ship with the repo (tracked in git; model card: checkpoints/README.md),
# named on the command line by these words instead of a path.
PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "checkpoints" / "pretrained"
PRETRAINED = ("speech", "music")


class CheckpointMismatch(UserError):
    """A checkpoint's weights or optimizer state do not fit the model built from the config."""


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` through :func:`atomic_path`: a kill at any moment leaves either the old file
    or the new one, never half of one, and the file gets the permissions any new file would."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint on the CPU; UserError if missing, truncated, foreign or of another version."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder; give the file inside it, e.g. {path / 'best.pt'}")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"cannot read checkpoint {path}: truncated or not a checkpoint ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise UserError(f"{path}: not a checkpoint of this toolkit (no config/model inside)")
    version = state.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format version {version}, this toolkit reads version {FORMAT_VERSION}")
    return state


def inference_state(state: dict, half: bool = True) -> dict:
    """What inference needs from a training checkpoint: its config and weights (fp16 when
    ``half``), without optimiser, scheduler or RNG state: a third of the size, or a sixth in fp16.
    Loading casts the weights back to the model's float32."""
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in state["model"].items()}
    return {"config": state["config"], "model": weights, "step": state.get("step")}


def rng_state() -> dict:
    """Every random stream a run touches (Python, NumPy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        # the current device's stream only: under torchrun every rank draws the same shapes on
        # its own GPU, and a list of every visible GPU's would not fit a machine with fewer
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if isinstance(cuda, (list, tuple)):          # written before: one state per visible GPU
        cuda = cuda[0] if cuda else None
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def weights_mismatch(model: torch.nn.Module, weights) -> str | None:
    """None when ``weights`` (a state dict) fit ``model``; else a one-line summary of the difference.

    torch's own message lists every tensor on its own line; this names the count and the first one.
    """
    if not isinstance(weights, dict):
        return f"the weights are a {type(weights).__name__}, not a state dict"
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    # a tensor the model leaves empty until data fills it (a corpus: (n_mels, 0)) takes the
    # checkpoint's size along its empty dimension, and must fit along the others
    def fits(mine: tuple, theirs: tuple) -> bool:
        return len(mine) == len(theirs) and all(m in (t, 0) for m, t in zip(mine, theirs))

    shapes = [k for k in own if k in weights and not fits(tuple(own[k].shape), tuple(getattr(weights[k], "shape", ())))]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors of the model are missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} are not in the model (e.g. {unexpected[0]})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} differ in shape (e.g. {k}: {tuple(weights[k].shape)} in the checkpoint, "
                     f"{tuple(own[k].shape)} in the model)")
    return "; ".join(parts) or None


def config_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``'key: old -> new'`` for every leaf that differs between two config dicts (``Config.to_dict``)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def resolve_checkpoint(name: str | Path) -> Path:
    """A checkpoint path, or a shipped model's name ('speech', 'music') -> its file."""
    if str(name) in PRETRAINED and not Path(name).exists():
        return PRETRAINED_DIR / f"{name}.pt"
    return Path(name)


def load_resolved(name: str | Path) -> tuple[Path, dict]:
    """(path, state) of :func:`resolve_checkpoint`'s file; a shipped model's absence or damage
    says how to restore it."""
    path = resolve_checkpoint(name)
    if path.parent != PRETRAINED_DIR:
        return path, load_checkpoint(path)
    try:
        return path, load_checkpoint(path)
    except UserError as exc:
        raise UserError(f"the shipped {path.stem} model is unusable ({exc}); restore it with: "
                        f"git checkout checkpoints/pretrained") from None
