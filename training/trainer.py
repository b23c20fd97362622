"""Inpainter training: the inpainters' :class:`InpainterTask` on the shared loop (training.loop).

    Trainer(cfg).fit()                      # a new run
    Trainer(cfg, resume=state).fit()        # continue a checkpoint

No per-model branches: the inpainter's optional hooks (``models.registry.Inpainter``)
say what differs. ``training_batch`` may rewrite a batch (an MAE's random patch mask),
``param_groups`` gives each group its own AdamW and schedule (a GAN's generator and
discriminator), ``model_terms`` adds weighted terms to the main loss and ``aux_losses``
gives the other groups theirs. ``train.init_from`` starts a new run from another
checkpoint's weights (fine-tuning). Training items are a pure function of (seed, item
index), so a resumed run sees the same batches.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter

from datasets.guided import build_crops
from datasets.mel_cache import MelCache
from datasets.mel_dataset import build_splits, compute_mels
from models.build import build_model, load_initial_weights
from models.classical import linear_interpolation
from models.vocoder_nets import build_vocoder
from processors.core.config import Config
from training.distributed import StepSampler, World
from training.figures import mel_figure
from training.loop import VAL_SEED_SALT, Loop
from training.task import Task
from training.losses import INPAINT_LOSSES, build_losses, total_loss


class InpainterTask(Task):
    """``cfg.model`` trained on masked Mel crops of ``cfg.data`` with the losses of ``cfg.loss``;
    validated on fixed crops (every loss term, and linear interpolation's MSE as a yardstick)."""

    best_key = "val_mse"

    def __init__(self, cfg: Config, device: torch.device, world: World):
        self.cfg, self.device, self.world = cfg, device, world
        self.model = build_model(cfg).to(device)
        self.what = f"{cfg.model.name} model"
        if cfg.train.compile:      # in place: state_dict keys and the model's own hooks stay as they are
            self.model.compile()
        self.losses = build_losses(cfg, device)      # the perceptual loss loads its feature net here
        self.vocoder = build_vocoder(cfg)            # for audio logs; a learned one without its net fails now
        self.split_counts: dict = {}

    def param_groups(self) -> dict[str, list]:
        return self.model.param_groups()

    def warm_start(self) -> None:
        if self.cfg.train.init_from:                 # fine-tuning: a pre-trained MAE, a shipped model
            load_initial_weights(self.model, self.cfg, self.cfg.train.init_from)

    def load_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        splits = build_splits(cfg)
        cache = MelCache(d.cache_dir, cfg.audio, d.dataset) if d.cache_dir else None
        jobs = max(1, d.num_workers)          # decoding hours of music on one core takes minutes
        self.train_mels = compute_mels(splits["train"], cfg.audio, d.min_file_seconds, d.max_bad_fraction,
                                       "train files", cache, jobs)
        self.val_mels = compute_mels(splits["val"], cfg.audio, d.min_file_seconds, d.max_bad_fraction,
                                     "val files", cache, jobs)
        self.split_counts = {k: len(v) for k, v in splits.items()}
        # a model that searches a corpus keeps the training clips (after any checkpoint it started from)
        self.corpus = self.model.index_corpus(self.train_mels)
        self.val_loader = DataLoader(
            build_crops(self.val_mels, cfg, cfg.seed + VAL_SEED_SALT, d.val_items, self.model.takes_guide,
                        self.corpus),
            batch_size=cfg.train.batch_size, shuffle=False, generator=torch.Generator().manual_seed(cfg.seed))

    def describe(self) -> str:
        return self.cfg.model.name

    def data_note(self) -> str:
        return f", files train/val/test = {self.split_counts}"

    def train_batches(self, step: int) -> DataLoader:
        """This process's slice of the global batches of steps ``step + 1 .. train.max_steps``."""
        cfg = self.cfg
        b = cfg.train.batch_size
        # a model that takes the similarity guide gets it in every item (Inpainter.takes_guide)
        data = build_crops(self.train_mels, cfg, cfg.seed, cfg.train.max_steps * b, self.model.takes_guide,
                           self.corpus, own_clips=True)
        return DataLoader(data, batch_size=b // self.world.size,
                          sampler=StepSampler(step, cfg.train.max_steps, b, self.world),
                          num_workers=cfg.data.num_workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=cfg.data.num_workers > 0,
                          # its own generator: the loader's base-seed draw must not shift the
                          # global stream that dropout uses (resume would then diverge)
                          generator=torch.Generator().manual_seed(cfg.seed))

    def train_step(self, loop: Loop, batch) -> tuple[float, dict]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        batch = self.model.training_batch(batch)          # e.g. an MAE's own random patch mask
        masked, target, mask = batch["masked"], batch["target"], batch["mask"]
        with loop.autocast():
            pred = loop.net(masked, mask, batch.get("guide")).float()       # losses are summed in float32
            loss, terms = total_loss(pred, target, mask, self.cfg.loss.weights, self.losses,
                                     self.model.model_terms(masked, mask, pred, target, self.cfg.loss.weights))
        loop.update("model", loss)
        # other groups (a GAN's discriminator) after the inpainter, on the same prediction, detached
        with loop.autocast():
            aux = self.model.aux_losses(masked, target, mask, pred.detach(), self.cfg.loss.weights)
        for group, (aux_loss, aux_terms) in aux.items():
            loop.update(group, aux_loss.float())
            terms.update(aux_terms)
        return loss.item(), {k: v.item() for k, v in terms.items()}

    def validate(self, loop: Loop, writer: SummaryWriter | None) -> dict:
        """Mean of every loss term over the fixed validation crops, and linear interpolation's MSE."""
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
        if writer is not None:
            self._log_example(writer, loop.step, *first)
        return {f"val_{k}": v / count for k, v in sums.items()}

    def _log_example(self, writer, step, masked, pred, target) -> None:
        a = self.cfg.audio
        fig = mel_figure([("masked input", masked.numpy()), ("prediction", pred.numpy()),
                          ("target", target.numpy())])
        writer.add_figure("val/mel", fig, step)
        for name, mel in (("prediction", pred), ("target", target)):
            # crops have no waveform: every frame is vocoded from random phase
            wave = self.vocoder(mel.float()).clamp(-1, 1)
            writer.add_audio(f"val/audio_{name}", wave[None], step, sample_rate=a.sample_rate)

    def summary(self, loop: Loop, metrics: dict, seconds: float) -> dict:
        return {"step": loop.step, "best_val_mse": loop.best, "seconds": seconds, **metrics}


class Trainer(Loop):
    """The loop on an :class:`InpainterTask`: ``Trainer(cfg, resume=None).fit()``."""

    def __init__(self, cfg: Config, resume: dict | None = None):
        super().__init__(cfg, InpainterTask, resume)
