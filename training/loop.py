"""The one training loop: inpainters, the vocoders' nets and the reassigned corrector alike.

Step-based: logs every ``train.log_every`` steps (TensorBoard under ``<runs_dir>/<run>``, one
``step,loss`` row per step in its ``losses.csv``), validates every ``train.val_every`` and
writes ``<checkpoints_dir>/<run>/last.pt`` every ``train.ckpt_every`` (and ``best.pt`` on a
new best validation score), each atomically. SIGINT/SIGTERM save ``last.pt`` after the
current step and stop cleanly; ``--resume last.pt`` continues bit for bit on the CPU, because
every batch is a pure function of (seed, step) and the checkpoint holds every random stream
(on a GPU as closely as cuDNN's non-deterministic kernels allow).

What is trained comes from a :class:`training.task.Task`: the model, its data, its loss and its
validation.
The loop owns the rest: seeding, device, AdamW and the warm-up/cosine schedule per parameter
group, mixed precision, gradient clipping, DistributedDataParallel under ``torchrun``
(training.distributed: rank 0 alone logs, validates and writes), checkpoints and signals.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import logging
import math
import os
import signal
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from processors.core.checkpoint_io import (CheckpointMismatch, config_changes, load_checkpoint, rng_state,
                                           save_checkpoint, seed_everything, set_rng_state, weights_mismatch)
from processors.core.config import Config
from processors.core.config_io import apply_overrides, save_config
from processors.core.errors import UserError
from training.configure import build_config, load_config
from training.distributed import World, average_gradients, close_world, init_world, local_device, mean_over_ranks
from training.loss_log import truncate_log
from training.weight_average import WeightAverage, load_weights, named_in

log = logging.getLogger(__name__)
VAL_SEED_SALT = 1_000_003   # validation crops come from their own stream


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device={name!r} but CUDA is not available here")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"train.device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def lr_lambda(cfg: Config):
    """Linear warm-up over ``train.warmup_steps``, then constant or cosine down to 5 %."""
    t = cfg.train

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.schedule == "constant":
            return 1.0
        progress = (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


class Loop:
    """``Loop(cfg, TaskClass, resume=state).fit()``: trains a new run, or continues ``resume``."""

    def __init__(self, cfg: Config, make_task, resume: dict | None = None):
        self.cfg = cfg
        t = cfg.train
        if t.num_threads > 0:
            torch.set_num_threads(t.num_threads)
        seed_everything(cfg.seed)
        cpu_only = getattr(make_task, "cpu_only", False)
        if cpu_only:       # say so, rather than train on the CPU in float32 what was asked otherwise
            asked = [f"train.{k}={v!r}" for k, v, plain in (("device", t.device, t.device in ("auto", "cpu")),
                                                            ("amp", t.amp, t.amp == "off"),
                                                            ("compile", t.compile, not t.compile)) if not plain]
            if asked:
                raise UserError(f"{cfg.run_name}: this {make_task.what} trains on the CPU in float32 only; "
                                f"remove {', '.join(asked)}")
        self.device = torch.device("cpu") if cpu_only else pick_device(t.device)
        if getattr(make_task, "distributed", True):
            self.world = init_world(self.device, t.batch_size)
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UserError(f"{cfg.run_name}: this net trains in one process; run it without torchrun")
        else:
            self.world = World()
        self.device = local_device(self.device, self.world)
        if t.amp == "fp16" and self.device.type != "cuda":
            raise UserError(f"train.amp='fp16' needs a CUDA device, not {self.device}; use 'bf16' or 'off'")
        if t.amp == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError(f"train.amp='bf16': {torch.cuda.get_device_name(self.device)} has no bfloat16; use 'fp16'")
        self.ckpt_dir = Path(t.checkpoints_dir) / cfg.run_name
        self.run_dir = Path(t.runs_dir) / cfg.run_name
        if resume is None and any((self.ckpt_dir / name).exists() for name in make_task.run_files):
            raise UserError(f"{self.ckpt_dir} already holds a run: continue it with --resume "
                            f"{self.ckpt_dir / 'last.pt'} or start another with --set run_name=NAME")

        self.task = make_task(cfg, self.device, self.world)
        self.model = self.task.model
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        # one AdamW and schedule per parameter group: "model" (the inpainter, a GAN's generator)
        # and any group the model trains on a loss of its own (a GAN's discriminator)
        self.optimizers, self.schedulers = {}, {}
        for group, params in self.task.param_groups().items():
            self.optimizers[group] = torch.optim.AdamW(params, lr=t.lr, betas=tuple(t.betas),
                                                       weight_decay=t.weight_decay)
            self.schedulers[group] = torch.optim.lr_scheduler.LambdaLR(self.optimizers[group], lr_lambda(cfg))
        self.optimizer, self.scheduler = self.optimizers["model"], self.schedulers["model"]
        # fp16 needs loss scaling (its small gradients underflow); bf16 has float32's range
        self.scalers = {g: torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16") for g in self.optimizers}
        self.step, self.best = 0, float("inf")
        # a checkpoint that does not fit and an unusable output folder fail now, not after the data
        if resume is not None:
            self._restore(resume)
        else:
            self.task.warm_start()                  # e.g. fine-tuning from a pre-trained MAE
        # the main group's weights averaged over the steps (train.ema_decay): validated, saved as
        # the checkpoint's "model" and so what best.pt, an export and init_from take; a resumed
        # run's "model" is the average and its "raw_weights" what training goes on from
        main_params = named_in(self.model, self.task.param_groups()["model"])
        self.average = WeightAverage(main_params, t.ema_decay) if t.ema_decay else None
        if resume is not None and resume.get("raw_weights"):
            try:
                load_weights(main_params, resume["raw_weights"])
            except (KeyError, RuntimeError) as exc:
                raise CheckpointMismatch(f"checkpoint's raw_weights do not match the {self.task.what}: "
                                         f"{str(exc).splitlines()[0]}") from exc
        # DDP averages the main group's gradients over the processes (and starts every
        # process from rank 0's weights); other groups average theirs in update()
        self.net = self.model
        if self.world.distributed:
            # DDP must not wait for the other groups' gradients: a GAN's discriminator gets none in
            # a step whose adversarial weight is 0, and DDP would hang for them at the next step
            main = {id(p) for p in self.task.param_groups()["model"]}
            # nor broadcast a corpus (models.unet) at every step: each process builds it from the data
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.model, [n for n, p in self.model.named_parameters() if id(p) not in main]
                + [n for n, _ in self.model.named_buffers() if n.split(".")[-1] == "corpus"])
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # the folders this run creates, deepest first (to remove them again if it never starts)
        made = sorted({p for folder in (self.ckpt_dir, self.run_dir) for p in (folder, *folder.parents)
                       if not p.exists()}, key=lambda p: len(p.parts), reverse=True)
        for folder, key in ((self.ckpt_dir, "train.checkpoints_dir"), (self.run_dir, "train.runs_dir")):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"{key}: cannot create {folder}: {exc.strerror or exc}") from exc
        try:
            self.task.load_data()         # draws no random numbers: the restored RNG state stays as saved
        except BaseException:
            for folder in made:           # a run that never started leaves no empty run folders behind
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise
        self.stop_requested = False

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        model, extra = self.model.state_dict(), {}
        if self.average:      # copies of the average: the swap back writes the raw weights into these tensors
            with self.average.swapped_in() as raw:
                model = {k: v.clone() for k, v in self.model.state_dict().items()}
            extra["raw_weights"] = raw
        return {"config": self.cfg.to_dict(), "model": model, **extra,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "aux_optimizers": {g: {"optimizer": o.state_dict(), "scheduler": self.schedulers[g].state_dict()}
                                   for g, o in self.optimizers.items() if g != "model"},
                "scalers": {g: s.state_dict() for g, s in self.scalers.items()},
                "step": self.step, "best": self.best, "rng": rng_state(), **self.task.state()}

    def _restore(self, state: dict) -> None:
        if "optimizer" not in state or "rng" not in state:
            raise CheckpointMismatch("checkpoint holds weights only (no optimiser or random state), so it cannot "
                                     "be resumed (an exported or shipped model is one); an inpainter's can start a "
                                     "new run: --config <its config> --set train.init_from=<it>")
        problem = weights_mismatch(self.model, state["model"])
        if problem:
            raise CheckpointMismatch(f"checkpoint does not match the {self.task.what} of this config "
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
            self.task.restore(state)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointMismatch(f"checkpoint does not match the model of this config: "
                                     f"{str(exc).splitlines()[0]}") from exc
        self.step, self.best = int(state["step"]), float(state["best"])
        set_rng_state(state["rng"])

    def save(self, name: str) -> None:
        save_checkpoint(self.ckpt_dir / name, self.state())

    # ------------------------------------------------------------------ loop

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
            log.info("run %s: %s on %s x %d%s", cfg.run_name, self.task.describe(), self.device, self.world.size,
                     self.task.data_note())
            if self.step >= t.max_steps:
                log.warning("run %s is already at step %d of train.max_steps %d: nothing to train (raise "
                            "it with --set train.max_steps=N to go on)", cfg.run_name, self.step, t.max_steps)
        self.net.train()
        bar = tqdm(total=t.max_steps, initial=self.step, desc=cfg.run_name, unit="step", dynamic_ncols=True,
                   disable=not main)
        last_val: dict = {}
        start = time.time()
        # line-buffered: tail -f shows each step; only rank 0 writes it
        loss_log = self.run_dir / "losses.csv" if main else os.devnull
        try:
            if main and self.step == 0 and self.task.validate_first:
                last_val = self.validate(writer)
            with open(loss_log, "a", buffering=1) as losses_file:
                for batch in self.task.train_batches(self.step):
                    loss, terms, stop = self._synced(*self.train_step(batch))
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
        return self.task.summary(self, last_val, time.time() - start)

    def validate(self, writer: SummaryWriter | None = None) -> dict:
        """The task's validation metrics; ``best.pt`` on a new best ``task.best_key``."""
        self.model.eval()
        with torch.no_grad(), self.average.swapped_in() if self.average else contextlib.nullcontext():
            metrics = self.task.validate(self, writer)
        self.model.train()
        if metrics[self.task.best_key] < self.best:
            self.best = metrics[self.task.best_key]
            self.save("best.pt")
        if writer is not None:
            for k, v in metrics.items():
                writer.add_scalar(f"val/{k.removeprefix('val_')}", v, self.step)
        return metrics

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

    def train_step(self, batch) -> tuple[float, dict]:
        """One optimisation step of the task on ``batch``: (loss, {term: value})."""
        return self.task.train_step(self, batch)

    def autocast(self):
        """Mixed precision for the forward passes (``train.amp``); backward runs outside it."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def update(self, group: str, loss: torch.Tensor) -> None:
        """One optimiser step of ``group`` on ``loss``; its gradients are zeroed first, which
        also drops what another group's loss left in them (a generator's loss reaches the
        discriminator's weights)."""
        if not torch.isfinite(loss):
            which = "loss" if group == "model" else f"{group} loss"
            raise UserError(f"{which} became {loss.item()} at step {self.step + 1}; try a lower train.lr "
                            f"(now {self.cfg.train.lr}) or train.grad_clip")
        optimizer, scaler = self.optimizers[group], self.scalers[group]
        params = [p for g in optimizer.param_groups for p in g["params"]]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()             # both are no-ops unless train.amp is 'fp16'
        if group != "model":                      # DDP averaged the main group's gradients already
            average_gradients(params, self.world)
        if self.cfg.train.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        self.schedulers[group].step()
        if group == "model" and self.average:
            self.average.update(self.step + 1)


def open_run(make_task, config: str | None, sets: list[str], resume: str | None) -> Loop:
    """The loop of a script's run: a new one from ``config`` (a YAML file) with ``sets`` (``--set``
    overrides), or ``resume`` (a checkpoint of the run, ``last.pt``) continued under its own config
    with ``sets`` applied. A checkpoint that does not fit its config is a one-line UserError
    naming what ``--set`` changed; so is one older than the run's ``last.pt``, whose later steps
    continuing it would overwrite."""
    if resume and config:
        raise UserError(f"--config {config} with --resume {resume}: a resumed run keeps the config saved in its "
                        f"checkpoint; change it with --set (or start a new run with --config alone)")
    if resume:
        state = load_checkpoint(resume)
        saved = copy.deepcopy(state["config"])
        cfg = build_config(apply_overrides(state["config"], sets), where=f"{resume} (config)")
    elif config:
        state, cfg = None, load_config(config, sets)
    else:
        raise UserError("give --config FILE (or --resume CHECKPOINT)")
    try:
        loop = Loop(cfg, make_task, resume=state)
    except CheckpointMismatch as exc:
        if state is None:
            raise
        # only what --set changed: the defaults a newer version fills in are not the user's doing
        keys = tuple(s.split("=", 1)[0].strip() for s in sets)
        changed = [c for c in config_changes(saved, cfg.to_dict())
                   if keys and c.split(":", 1)[0].startswith(keys) and
                   c.startswith(("model.", "audio.", "data.", "vocoder.", "reassigned."))]
        more = f" (+{len(changed) - 2} more)" if len(changed) > 3 else ""
        hint = f"; --set changed {', '.join(changed[:2] if more else changed)}{more}" if changed else ""
        raise UserError(f"{resume}: {exc}{hint}") from exc
    if state is not None:
        last = loop.ckpt_dir / "last.pt"
        if last.is_file() and last.resolve() != Path(resume).resolve():
            newer = int(load_checkpoint(last)["step"])
            if newer > loop.step:
                raise UserError(f"--resume {resume}: step {loop.step}, but the run's {last} is at step {newer}, "
                                f"and continuing would overwrite it; resume {last}, or start a new run from "
                                f"these weights: --config FILE --set train.init_from={resume} --set run_name=NAME")
    return loop
