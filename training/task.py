"""The contract between the training loop (training.loop.Loop) and what it trains: the
inpainters (training.trainer), the vocoders' nets and the reassigned corrector."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import torch
from torch.utils.tensorboard import SummaryWriter

if TYPE_CHECKING:      # the loop imports this module: only its type is needed here
    from training.loop import Loop


class Task:
    """What the loop trains. A subclass is built as ``Task(cfg, device, world)`` after the loop
    has seeded every random stream, so its model's initial weights follow ``cfg.seed``.

    ``model`` is what checkpoints hold under ``"model"``; ``train_batches(step)`` yields this
    process's batches of steps ``step + 1 .. train.max_steps``; ``train_step(loop, batch)`` runs
    one step through ``loop.net``, ``loop.autocast()`` and ``loop.update(group, loss)`` and
    returns (loss, {term: value}) as floats; ``validate(loop, writer)`` returns metrics,
    ``best_key`` among them, whose minimum goes to ``best.pt``.
    """
    model: torch.nn.Module
    what = "net"                  # what the model is, in messages: "unet model"
    best_key = "val_loss"
    validate_first = False        # validate (and write best.pt) before the first step: the untrained net
    distributed = True            # runs under torchrun; False: one process only
    cpu_only = False              # trains on the CPU whatever train.device says
    run_files = ("last.pt",)      # any of them in the checkpoint folder: the run exists

    def param_groups(self) -> dict[str, list]:
        """Parameter groups, each with its own AdamW and schedule; "model" is the main one."""
        return {"model": list(self.model.parameters())}

    def warm_start(self) -> None:
        """Initial weights of a new run (not of a resumed one)."""

    def load_data(self) -> None:
        """Read the data; called once the checkpoint and the output folders are known to be fine."""

    def describe(self) -> str:
        """What is trained, for the log line that starts a run."""
        return type(self).__name__

    def data_note(self) -> str:
        """Appended to that line once the data is loaded (e.g. ", files train/val/test = ...")."""
        return ""

    def train_batches(self, step: int) -> Iterable:
        raise NotImplementedError

    def train_step(self, loop: "Loop", batch) -> tuple[float, dict]:
        raise NotImplementedError

    def validate(self, loop: "Loop", writer: SummaryWriter | None) -> dict:
        raise NotImplementedError

    def state(self) -> dict:
        """Checkpoint entries of the task's own, beside the loop's."""
        return {}

    def restore(self, state: dict) -> None:
        """Take back what :meth:`state` saved."""

    def summary(self, loop: "Loop", metrics: dict, seconds: float) -> dict:
        return {"step": loop.step, "best": loop.best, "seconds": seconds, **metrics}
