"""The one trainer: every inpainter, every config.

Step-based: logs every ``log_every`` steps, validates every ``val_every``, and
writes ``last.pt`` every ``ckpt_every`` (and ``best.pt`` on a new best validation
masked-MSE). SIGINT/SIGTERM save ``last.pt`` and stop cleanly. Training items are
a pure function of (seed, item index), so a resumed run sees the same batches.

No per-model branches: the inpainter's optional hooks (``models.registry.Inpainter``)
say what differs. ``training_batch`` may rewrite a batch (an MAE's random patch mask),
``warm_start`` loads initial weights, ``param_groups`` gives each group its own AdamW
and schedule (a GAN's generator and discriminator), ``model_terms`` adds weighted terms
to the main loss and ``aux_losses`` gives the other groups theirs.

Under ``torchrun`` (training.distributed) the inpainter runs inside DistributedDataParallel,
each process takes its slice of every global batch, and rank 0 alone logs, validates and
writes checkpoints.
"""
from __future__ import annotations

import gc
import logging
import math
import os
import signal
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets.mel_cache import MelCache
from datasets.guided import build_crops
from datasets.mel_dataset import build_splits, compute_mels
from models import build_model
from models.classical import linear_interpolation
from processors.core.errors import UserError
from models.vocoder_nets import build_vocoder
from processors.core.checkpoint_io import (CheckpointMismatch, rng_state, save_checkpoint, seed_everything, set_rng_state,
                                 weights_mismatch)
from processors.core.config import Config, save_config
from training.distributed import (StepSampler, average_gradients, close_world, init_world, local_device,
                                  mean_over_ranks)
from training.figures import mel_figure
from training.loss_log import truncate_log
from training.losses import INPAINT_LOSSES, build_losses, total_loss

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
        self.world = init_world(self.device, cfg.train.batch_size)
        self.device = local_device(self.device, self.world)
        if cfg.train.amp == "fp16" and self.device.type != "cuda":
            raise UserError(f"train.amp='fp16' needs a CUDA device, not {self.device}; use 'bf16' or 'off'")
        self.ckpt_dir = Path(cfg.train.checkpoints_dir) / cfg.run_name
        self.run_dir = Path(cfg.train.runs_dir) / cfg.run_name
        if resume is None and (self.ckpt_dir / "last.pt").exists():
            raise UserError(f"{self.ckpt_dir} already holds a run: continue it with --resume "
                            f"{self.ckpt_dir / 'last.pt'} or start another with --set run_name=NAME")

        self.model = build_model(cfg).to(self.device)
        t = cfg.train
        if t.compile:      # in place: state_dict keys and the model's own hooks stay as they are
            self.model.compile()
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        # one AdamW and schedule per parameter group: "model" (the inpainter, a GAN's generator)
        # and any group the model trains on a loss of its own (a GAN's discriminator)
        self.optimizers, self.schedulers = {}, {}
        for group, params in self.model.param_groups().items():
            self.optimizers[group] = torch.optim.AdamW(params, lr=t.lr, betas=tuple(t.betas),
                                                       weight_decay=t.weight_decay)
            self.schedulers[group] = torch.optim.lr_scheduler.LambdaLR(self.optimizers[group], lr_lambda(cfg))
        self.optimizer, self.scheduler = self.optimizers["model"], self.schedulers["model"]
        # fp16 needs loss scaling (its small gradients underflow); bf16 has float32's range
        self.scalers = {g: torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16") for g in self.optimizers}
        self.losses = build_losses(cfg, self.device)     # the perceptual loss loads its feature net here
        self.vocoder = build_vocoder(cfg)                # for audio logs; a learned one without its net fails now
        self.step, self.best = 0, float("inf")
        # a checkpoint that does not fit and an unusable output folder fail now, not after the Mels
        if resume is not None:
            self._restore(resume)
        else:
            self.model.warm_start(cfg)                   # e.g. fine-tuning from a pre-trained MAE
        # DDP averages the inpainter's gradients over the processes (and starts every
        # process from rank 0's weights); other groups average theirs in _update
        self.net = self.model
        if self.world.distributed:
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        for folder, key in ((self.ckpt_dir, "train.checkpoints_dir"), (self.run_dir, "train.runs_dir")):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"{key}: cannot create {folder}: {exc.strerror or exc}") from exc

        # no random numbers are drawn from here on: the restored RNG state stays as saved
        splits = build_splits(cfg)
        d = cfg.data
        cache = MelCache(d.cache_dir, cfg.audio, d.dataset) if d.cache_dir else None
        jobs = max(1, d.num_workers)          # decoding hours of music on one core takes minutes
        self.train_mels = compute_mels(splits["train"], cfg.audio, d.min_file_seconds, d.max_bad_fraction,
                                       "train files", cache, jobs)
        self.val_mels = compute_mels(splits["val"], cfg.audio, d.min_file_seconds, d.max_bad_fraction,
                                     "val files", cache, jobs)
        self.split_counts = {k: len(v) for k, v in splits.items()}
        self.val_loader = DataLoader(
            build_crops(self.val_mels, cfg, cfg.seed + VAL_SEED_SALT, d.val_items, self.model.takes_guide),
            batch_size=t.batch_size, shuffle=False, generator=torch.Generator().manual_seed(cfg.seed))
        self.stop_requested = False

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        return {"config": self.cfg.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "aux_optimizers": {g: {"optimizer": o.state_dict(), "scheduler": self.schedulers[g].state_dict()}
                                   for g, o in self.optimizers.items() if g != "model"},
                "scalers": {g: s.state_dict() for g, s in self.scalers.items()},
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
            for group in (g for g in self.optimizers if g != "model"):
                aux = state.get("aux_optimizers", {})[group]
                self.optimizers[group].load_state_dict(aux["optimizer"])
                self.schedulers[group].load_state_dict(aux["scheduler"])
            for group, scaler_state in state.get("scalers", {}).items():   # fp16's loss scale
                if scaler_state:            # empty when saved with fp16 off: start from the default scale
                    self.scalers[group].load_state_dict(scaler_state)
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
        # a model that takes the similarity guide gets it in every item (Inpainter.takes_guide)
        data = build_crops(self.train_mels, cfg, cfg.seed, cfg.train.max_steps * b, self.model.takes_guide)
        return DataLoader(data, batch_size=b // self.world.size,
                          sampler=StepSampler(self.step, cfg.train.max_steps, b, self.world),
                          num_workers=cfg.data.num_workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=cfg.data.num_workers > 0,
                          # its own generator: the loader's base-seed draw must not shift the
                          # global stream that dropout uses (resume would then diverge)
                          generator=torch.Generator().manual_seed(cfg.seed))

    def _on_signal(self, signum, frame):
        log.warning("received %s: saving a checkpoint after this step", signal.Signals(signum).name)
        self.stop_requested = True

    def fit(self) -> dict:
        cfg, t, main = self.cfg, self.cfg.train, self.world.main
        if main:
            save_config(cfg, self.ckpt_dir / "config.yaml")
            save_config(cfg, self.run_dir / "config.yaml")
            truncate_log(self.run_dir / "losses.csv", self.step)
        writer = SummaryWriter(str(self.run_dir)) if main else None
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        if main:
            log.info("run %s: %s on %s x %d, files train/val/test = %s", cfg.run_name, cfg.model.name,
                     self.device, self.world.size, self.split_counts)
        self.net.train()
        bar = tqdm(total=t.max_steps, initial=self.step, desc=cfg.run_name, unit="step", dynamic_ncols=True,
                   disable=not main)
        last_val: dict = {}
        start = time.time()
        # line-buffered: tail -f shows each step; only rank 0 writes it
        loss_log = self.run_dir / "losses.csv" if main else os.devnull
        try:
            with open(loss_log, "a", buffering=1) as losses_file:
                for batch in self._train_loader():
                    loss, terms, stop = self._synced(*self._train_step(batch))
                    self.step += 1
                    losses_file.write(f"{self.step},{loss:.8g}\n")
                    bar.update(1)
                    if writer and (self.step % t.log_every == 0 or self.step == t.max_steps):
                        writer.add_scalar("train/loss", loss, self.step)
                        for name, value in terms.items():
                            writer.add_scalar(f"train/loss_{name}", value, self.step)
                        writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                        bar.set_postfix(loss=f"{loss:.4f}")
                    if main and (self.step % t.val_every == 0 or self.step == t.max_steps):
                        last_val = self.validate(writer)
                    if main and (self.step % t.ckpt_every == 0 or self.step == t.max_steps or stop):
                        losses_file.flush()
                        self.save("last.pt")
                    if stop:
                        if main:
                            log.warning("stopped at step %d of %d: continue with --resume %s",
                                        self.step, t.max_steps, self.ckpt_dir / "last.pt")
                        break
        finally:
            bar.close()
            if writer:
                writer.close()
            for s, handler in old.items():
                signal.signal(s, handler)
        return {"step": self.step, "best_val_mse": self.best, "seconds": time.time() - start, **last_val}

    def close(self) -> None:
        """Leave the process group (a no-op for one process). DDP holds the group, and a gloo
        group still alive when the interpreter shuts down can abort the process (SIGABRT,
        'terminate called without an active exception'), so DDP goes first."""
        if self.world.distributed:
            self.net = self.model
            gc.collect()
            close_world(self.world)

    def _synced(self, loss: float, terms: dict) -> tuple[float, dict, bool]:
        """The step's loss and terms averaged over the processes, and whether any of them was
        asked to stop (all must stop at the same step: the next one would wait forever)."""
        if not self.world.distributed:
            return loss, terms, self.stop_requested
        values = torch.tensor([loss, *terms.values(), float(self.stop_requested)], dtype=torch.float64)
        values = mean_over_ranks(values.to(self.device), self.world).cpu().tolist()
        return values[0], dict(zip(terms, values[1:-1])), values[-1] > 0

    def _train_step(self, batch) -> tuple[float, dict]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        batch = self.model.training_batch(batch)          # e.g. an MAE's own random patch mask
        masked, target, mask = batch["masked"], batch["target"], batch["mask"]
        with self._autocast():
            pred = self.net(masked, mask, batch.get("guide")).float()       # losses are summed in float32
            loss, terms = total_loss(pred, target, mask, self.cfg.loss.weights, self.losses,
                                     self.model.model_terms(masked, mask, pred, target))
        self._update("model", loss)
        # other groups (a GAN's discriminator) after the inpainter, on the same prediction, detached
        with self._autocast():
            aux = self.model.aux_losses(masked, target, mask, pred.detach())
        for group, (aux_loss, aux_terms) in aux.items():
            self._update(group, aux_loss.float())
            terms.update(aux_terms)
        return loss.item(), {k: v.item() for k, v in terms.items()}

    def _autocast(self):
        """Mixed precision for the forward passes (``train.amp``); backward runs outside it."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _update(self, group: str, loss: torch.Tensor) -> None:
        """One optimiser step of ``group`` on ``loss``; its gradients are zeroed first, which
        also drops what another group's loss left in them (a generator's loss reaches the
        discriminator's weights)."""
        if not torch.isfinite(loss):
            which = "loss" if group == "model" else f"{group} loss"
            raise UserError(f"{which} became {loss.item()} at step {self.step + 1}; try a lower train.lr "
                            f"(now {self.cfg.train.lr}) or train.grad_clip")
        optimizer, scaler = self.optimizers[group], self.scalers[group]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()             # both are no-ops unless train.amp is 'fp16'
        if group != "model":                      # DDP averaged the inpainter's gradients already
            average_gradients([p for g in optimizer.param_groups for p in g["params"]], self.world)
        if self.cfg.train.grad_clip > 0:
            scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        self.schedulers[group].step()

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
            guide = batch["guide"].to(self.device) if "guide" in batch else None
            pred = self.model(masked, mask, guide)
            n = masked.shape[0]
            for name, fn in self.losses.items():
                sums[name] = sums.get(name, 0.0) + fn(pred, target, mask).item() * n
            sums["interp_mse"] = sums.get("interp_mse", 0.0) + INPAINT_LOSSES["mse"](
                linear_interpolation(masked, mask), target, mask).item() * n
            if guide is not None:       # the similarity fill alone, the other yardstick of a guided model
                sums["guide_mse"] = sums.get("guide_mse", 0.0) + INPAINT_LOSSES["mse"](
                    guide[:, :1], target, mask).item() * n
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
        for name, mel in (("prediction", pred), ("target", target)):
            # crops have no waveform: every frame is vocoded from random phase
            wave = self.vocoder(mel.float()).clamp(-1, 1)
            writer.add_audio(f"val/audio_{name}", wave[None], self.step, sample_rate=a.sample_rate)
