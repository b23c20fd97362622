"""The one trainer: every inpainter, every config.

Step-based: logs every ``log_every`` steps, validates every ``val_every``, and
writes ``last.pt`` every ``ckpt_every`` (and ``best.pt`` on a new best validation
masked-MSE). SIGINT/SIGTERM save ``last.pt`` and stop cleanly. Training items are
a pure function of (seed, item index), so a resumed run sees the same batches.
"""
from __future__ import annotations

import logging
import math
import signal
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets.mel_dataset import MaskedMelCrops, OffsetSampler, build_splits, compute_mels
from models import build_model
from models.classical import linear_interpolation
from processors.errors import UserError
from processors.mel import MelToWave
from processors.atomic import write_text_atomic
from training.checkpoint import (CheckpointMismatch, rng_state, save_checkpoint, seed_everything, set_rng_state,
                                 weights_mismatch)
from training.config import Config, save_config
from training.figures import mel_figure
from training.losses import LOSSES, total_loss

log = logging.getLogger(__name__)
VAL_SEED_SALT = 1_000_003   # validation crops come from their own stream


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device={name!r} but CUDA is not available here")
    return torch.device(name)


def lr_lambda(cfg: Config):
    t = cfg.train

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.schedule == "constant":
            return 1.0
        progress = (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


class Trainer:
    def __init__(self, cfg: Config, resume: dict | None = None):
        self.cfg = cfg
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(cfg.seed)
        self.device = pick_device(cfg.train.device)
        self.ckpt_dir = Path(cfg.train.checkpoints_dir) / cfg.run_name
        self.run_dir = Path(cfg.train.runs_dir) / cfg.run_name
        if resume is None and (self.ckpt_dir / "last.pt").exists():
            raise UserError(f"{self.ckpt_dir} already holds a run: continue it with --resume "
                            f"{self.ckpt_dir / 'last.pt'} or start another with --set run_name=NAME")

        self.model = build_model(cfg).to(self.device)
        t = cfg.train
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t.lr, betas=tuple(t.betas),
                                           weight_decay=t.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        self.step, self.best = 0, float("inf")
        # a checkpoint that does not fit and an unusable output folder fail now, not after the Mels
        if resume is not None:
            self._restore(resume)
        for folder, key in ((self.ckpt_dir, "train.checkpoints_dir"), (self.run_dir, "train.runs_dir")):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"{key}: cannot create {folder}: {exc.strerror or exc}") from exc

        # no random numbers are drawn from here on: the restored RNG state stays as saved
        splits = build_splits(cfg)
        d = cfg.data
        self.train_mels = compute_mels(splits["train"], cfg.audio, d.min_file_seconds, d.max_bad_fraction, "train files")
        self.val_mels = compute_mels(splits["val"], cfg.audio, d.min_file_seconds, d.max_bad_fraction, "val files")
        self.split_counts = {k: len(v) for k, v in splits.items()}
        self.val_loader = DataLoader(
            MaskedMelCrops(self.val_mels, d.crop_frames, d.mask, cfg.seed + VAL_SEED_SALT, d.val_items),
            batch_size=t.batch_size, shuffle=False, generator=torch.Generator().manual_seed(cfg.seed))
        self.stop_requested = False

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        return {"config": self.cfg.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "step": self.step, "best": self.best, "rng": rng_state()}

    def _restore(self, state: dict) -> None:
        problem = weights_mismatch(self.model, state["model"])
        if problem:
            raise CheckpointMismatch(f"checkpoint does not match the {self.cfg.model.name} model of this config "
                                     f"({problem})")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointMismatch(f"checkpoint does not match the model of this config: "
                                     f"{str(exc).splitlines()[0]}") from exc
        self.step, self.best = int(state["step"]), float(state["best"])
        set_rng_state(state["rng"])

    def save(self, name: str) -> None:
        save_checkpoint(self.ckpt_dir / name, self.state())

    # ------------------------------------------------------------------ loop

    def _train_loader(self):
        cfg = self.cfg
        b = cfg.train.batch_size
        data = MaskedMelCrops(self.train_mels, cfg.data.crop_frames, cfg.data.mask, cfg.seed, cfg.train.max_steps * b)
        return DataLoader(data, batch_size=b, sampler=OffsetSampler(self.step * b, cfg.train.max_steps * b),
                          num_workers=cfg.data.num_workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=cfg.data.num_workers > 0,
                          # its own generator: the loader's base-seed draw must not shift the
                          # global stream that dropout uses (resume would then diverge)
                          generator=torch.Generator().manual_seed(cfg.seed))

    def _on_signal(self, signum, frame):
        log.warning("received %s: saving a checkpoint after this step", signal.Signals(signum).name)
        self.stop_requested = True

    def fit(self) -> dict:
        cfg, t = self.cfg, self.cfg.train
        save_config(cfg, self.ckpt_dir / "config.yaml")
        save_config(cfg, self.run_dir / "config.yaml")
        writer = SummaryWriter(str(self.run_dir))
        loss_log = self.run_dir / "losses.csv"
        _truncate_log(loss_log, self.step)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        log.info("run %s: %s on %s, files train/val/test = %s", cfg.run_name, cfg.model.name, self.device,
                 self.split_counts)
        self.model.train()
        bar = tqdm(total=t.max_steps, initial=self.step, desc=cfg.run_name, unit="step", dynamic_ncols=True)
        last_val: dict = {}
        start = time.time()
        try:
            with open(loss_log, "a", buffering=1) as losses_file:   # line-buffered: tail -f shows each step
                for batch in self._train_loader():
                    loss, terms = self._train_step(batch)
                    self.step += 1
                    losses_file.write(f"{self.step},{loss:.8g}\n")
                    bar.update(1)
                    if self.step % t.log_every == 0 or self.step == t.max_steps:
                        writer.add_scalar("train/loss", loss, self.step)
                        for name, value in terms.items():
                            writer.add_scalar(f"train/loss_{name}", value, self.step)
                        writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                        bar.set_postfix(loss=f"{loss:.4f}")
                    if self.step % t.val_every == 0 or self.step == t.max_steps:
                        last_val = self.validate(writer)
                    if self.step % t.ckpt_every == 0 or self.step == t.max_steps or self.stop_requested:
                        losses_file.flush()
                        self.save("last.pt")
                    if self.stop_requested:
                        log.warning("stopped at step %d of %d: continue with --resume %s",
                                    self.step, t.max_steps, self.ckpt_dir / "last.pt")
                        break
        finally:
            bar.close()
            writer.close()
            for s, handler in old.items():
                signal.signal(s, handler)
        return {"step": self.step, "best_val_mse": self.best, "seconds": time.time() - start, **last_val}

    def _train_step(self, batch) -> tuple[float, dict]:
        masked, target, mask = (batch[k].to(self.device, non_blocking=True) for k in ("masked", "target", "mask"))
        pred = self.model(masked, mask)
        loss, terms = total_loss(pred, target, mask, self.cfg.loss.weights)
        if not torch.isfinite(loss):
            raise UserError(f"loss became {loss.item()} at step {self.step + 1}; try a lower train.lr "
                            f"(now {self.cfg.train.lr}) or train.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item(), {k: v.item() for k, v in terms.items()}

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, writer: SummaryWriter | None = None) -> dict:
        """Mean of every loss term over the fixed validation crops, and linear interpolation's MSE."""
        self.model.eval()
        sums: dict[str, float] = {}
        count = 0
        first = None
        for batch in self.val_loader:
            masked, target, mask = (batch[k].to(self.device) for k in ("masked", "target", "mask"))
            pred = self.model(masked, mask)
            n = masked.shape[0]
            for name, fn in LOSSES.items():
                if name in self.cfg.loss.weights or name == "mse":
                    sums[name] = sums.get(name, 0.0) + fn(pred, target, mask).item() * n
            sums["interp_mse"] = sums.get("interp_mse", 0.0) + LOSSES["mse"](
                linear_interpolation(masked, mask), target, mask).item() * n
            count += n
            if first is None:
                first = (masked[0, 0].cpu(), pred[0, 0].cpu(), target[0, 0].cpu())
        self.model.train()
        metrics = {f"val_{k}": v / count for k, v in sums.items()}
        if metrics["val_mse"] < self.best:
            self.best = metrics["val_mse"]
            self.save("best.pt")
        if writer is not None:
            for k, v in metrics.items():
                writer.add_scalar(f"val/{k[4:]}", v, self.step)
            self._log_example(writer, *first)
        return metrics

    def _log_example(self, writer, masked, pred, target) -> None:
        a = self.cfg.audio
        fig = mel_figure([("masked input", masked.numpy()), ("prediction", pred.numpy()),
                          ("target", target.numpy())])
        writer.add_figure("val/mel", fig, self.step)
        vocoder = MelToWave(a, self.cfg.vocoder.n_iter, self.cfg.vocoder.momentum)
        for name, mel in (("prediction", pred), ("target", target)):
            wave = vocoder(mel.float()).clamp(-1, 1)
            writer.add_audio(f"val/audio_{name}", wave[None], self.step, sample_rate=a.sample_rate)


def _truncate_log(path: Path, step: int) -> None:
    """Keep only rows up to ``step`` (a resumed run rewrites what came after its checkpoint).

    A run killed mid-write may leave a partial last line; it is dropped, like any row that
    does not read as ``step,loss``. The rewrite is atomic: a kill now loses nothing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    lines = text.split("\n")[:-1]          # the piece after the last newline is incomplete
    rows = []
    for line in lines:
        fields = line.split(",")
        if len(fields) == 2 and fields[0].isdigit() and 0 < int(fields[0]) <= step and _is_float(fields[1]):
            rows.append(line)
    write_text_atomic(path, "".join(r + "\n" for r in rows))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
