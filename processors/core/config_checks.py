"""Config checks: every impossible value is a one-line UserError that names its key and file.

These are the checks of values alone; a field with a fixed set of values has it as its
``Literal`` type (processors.core.config), checked as the YAML is read. The names of components (models, datasets, vocoders, Mel
inverses, metrics, inversions, losses) are checked against their registries by the layers that
hold them: models.build.check_components and training.configure.check_losses.
"""
from __future__ import annotations

from processors.core.errors import UserError

MAX_ITEMS = 65536      # crops in one batch or in the validation set


def require(ok: bool, where: str, message: str) -> None:
    """UserError ``where: message`` unless ``ok``: a config check's one line."""
    if not ok:
        raise UserError(f"{where}: {message}")


def validate(cfg, where: str = "config") -> None:
    """Reject impossible values of ``cfg`` (a processors.core.config.Config) with a message naming the key."""
    a, d, m, t = cfg.audio, cfg.data, cfg.data.mask, cfg.train
    # a run's folders are checkpoints/<run_name> and runs/<run_name>: a path would write elsewhere,
    # and checkpoints/pretrained holds the tracked, shipped models
    require(bool(cfg.run_name) and not cfg.run_name.startswith(".") and "/" not in cfg.run_name
            and "\\" not in cfg.run_name and cfg.run_name != "pretrained", f"{where}: run_name",
            f"must be a plain folder name (no '/', not starting with '.', not 'pretrained'), got {cfg.run_name!r}")
    require(a.sample_rate >= 4000, f"{where}: audio.sample_rate", f"must be >= 4000, got {a.sample_rate}")
    require(a.n_fft >= 64, f"{where}: audio.n_fft", f"must be >= 64, got {a.n_fft}")
    require(0 < a.win_length <= a.n_fft, f"{where}: audio.win_length", f"must be in 1..n_fft ({a.n_fft})")
    require(0 < a.hop_length <= a.win_length, f"{where}: audio.hop_length", "must be in 1..win_length")
    require(0 <= a.f_min < a.f_max <= a.sample_rate / 2, f"{where}: audio.f_max",
            f"need 0 <= f_min < f_max <= sample_rate/2 ({a.sample_rate / 2:g}), got {a.f_min:g}..{a.f_max:g}")
    require(0 < a.n_mels <= a.n_fft // 2 + 1, f"{where}: audio.n_mels",
            f"{a.n_mels} mel bands need n_fft >= {2 * (a.n_mels - 1)}, got n_fft {a.n_fft}")
    require(a.min_db < a.max_db, f"{where}: audio.min_db", "must be below audio.max_db")

    require(d.crop_frames >= 16, f"{where}: data.crop_frames", f"must be >= 16, got {d.crop_frames}")
    require(d.val_fraction > 0, f"{where}: data.val_fraction", "must be > 0 (validation picks best.pt)")
    require(d.val_fraction < 1, f"{where}: data.val_fraction", f"must be < 1, got {d.val_fraction:g}")
    require(0 <= d.test_fraction < 1, f"{where}: data.test_fraction", f"must be in [0, 1), got {d.test_fraction:g}")
    require(d.val_fraction + d.test_fraction < 1, f"{where}: data.val_fraction + data.test_fraction",
            f"must be < 1 (files must be left to train on), got {d.val_fraction + d.test_fraction:g}")
    # a typo of a few zeros would build (and collate) that many crops before the first step: a
    # machine-filling hang rather than an error, so the bounds are far past any real run's
    require(1 <= d.val_items <= MAX_ITEMS, f"{where}: data.val_items", f"must be in 1..{MAX_ITEMS}, got {d.val_items}")
    require(0 <= d.max_bad_fraction <= 1, f"{where}: data.max_bad_fraction", "must be in [0, 1]")
    require(d.num_workers >= 0, f"{where}: data.num_workers", "must be >= 0")
    usable = d.crop_frames - 2 * m.margin_frames
    require(m.margin_frames >= 1, f"{where}: data.mask.margin_frames", "must be >= 1 (inference always has context)")
    require(m.max_gaps >= 1, f"{where}: data.mask.max_gaps", "must be >= 1")
    if m.mode == "random":
        require(0 < m.min_fraction <= m.max_fraction < 1, f"{where}: data.mask.min_fraction",
                "need 0 < min_fraction <= max_fraction < 1")
        require(m.max_fraction * d.crop_frames + m.max_gaps <= usable, f"{where}: data.mask.max_fraction",
                f"gaps of {m.max_fraction:g} x {d.crop_frames} frames do not fit in the crop between its margins")
    elif m.mode == "range":
        require(0 < m.min_gap_frames <= m.max_gap_frames, f"{where}: data.mask.min_gap_frames",
                "need 0 < min_gap_frames <= max_gap_frames")
        require(m.max_gap_frames <= usable, f"{where}: data.mask.max_gap_frames",
                f"gap of {m.max_gap_frames} frames is longer than the crop allows ({usable} = crop_frames - 2 x margin_frames)")
    else:
        require(0 < m.gap_frames <= usable, f"{where}: data.mask.gap_frames",
                f"gap of {m.gap_frames} frames is longer than the crop allows ({usable} = crop_frames - 2 x margin_frames)")

    require(1 <= t.batch_size <= MAX_ITEMS, f"{where}: train.batch_size", f"must be in 1..{MAX_ITEMS}, got {t.batch_size}")
    require(t.lr > 0, f"{where}: train.lr", f"must be > 0, got {t.lr}")
    require(t.max_steps >= 1, f"{where}: train.max_steps", "must be >= 1")
    require(min(t.log_every, t.val_every, t.ckpt_every) >= 1, f"{where}: train.val_every", "log/val/ckpt intervals must be >= 1")
    require(len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas), f"{where}: train.betas", "need two values in [0, 1)")
    require(t.amp != "fp16" or t.device.startswith(("cuda", "auto")), f"{where}: train.amp",
            f"'fp16' needs a CUDA device (train.device is {t.device!r}); use 'bf16' or 'off' on the CPU")
    require(t.grad_clip >= 0, f"{where}: train.grad_clip", "must be >= 0 (0 = off)")
    require(0 <= t.ema_decay < 1, f"{where}: train.ema_decay", f"must be in [0, 1) (0 = off), got {t.ema_decay}")

    require(all(isinstance(f, str) and f for f in d.test_files), f"{where}: data.test_files",
            "must be a list of file names")
    sim = cfg.similarity
    require(sim.context_s > 0, f"{where}: similarity.context_s", f"must be > 0, got {sim.context_s}")
    require(sim.bands >= 1, f"{where}: similarity.bands", f"must be >= 1, got {sim.bands}")
    require(sim.align_ms >= 0, f"{where}: similarity.align_ms", "must be >= 0")
    require(sim.crossfade_ms >= 0, f"{where}: similarity.crossfade_ms", "must be >= 0")

    v = cfg.vocoder
    require(v.n_iter >= 1, f"{where}: vocoder.n_iter", "must be >= 1")
    require(0 <= v.momentum < 1, f"{where}: vocoder.momentum", f"must be in [0, 1), got {v.momentum}")
    require(cfg.inference.min_gap_ms > 0, f"{where}: inference.min_gap_ms", "must be > 0")
    require(cfg.inference.edge_ms >= 0, f"{where}: inference.edge_ms", "must be >= 0 (0 = off)")
    require(cfg.inference.edge_db < 0, f"{where}: inference.edge_db", "must be < 0 (dB under the file's RMS)")
    require(cfg.inference.edge_local_db < 0, f"{where}: inference.edge_local_db",
            "must be < 0 (dB under the level beside the gap)")
    require(cfg.inference.crossfade_ms >= 0, f"{where}: inference.crossfade_ms", "must be >= 0")
    for key in ("lpc_hold_ms", "lpc_fade_ms"):
        require(getattr(cfg.inference, key) >= 0, f"{where}: inference.{key}", "must be >= 0 (0 = off)")
    require(cfg.inference.lpc_fade_ms > 0 or cfg.inference.lpc_hold_ms == 0, f"{where}: inference.lpc_fade_ms",
            "must be > 0 when inference.lpc_hold_ms is (a hold without a fade clicks)")
    require(0 <= cfg.inference.corpus_copy_score <= 1, f"{where}: inference.corpus_copy_score",
            f"must be in [0, 1] (a cosine match score; 0 = never copy), got {cfg.inference.corpus_copy_score:g}")
    require(0 <= cfg.inference.corpus_copy_pull <= 1, f"{where}: inference.corpus_copy_pull",
            f"must be in [0, 1] (the share of the way to the network's band levels), got {cfg.inference.corpus_copy_pull:g}")
    require(cfg.inference.corpus_copy_min_ms >= 0, f"{where}: inference.corpus_copy_min_ms",
            f"must be >= 0 (0 = any length), got {cfg.inference.corpus_copy_min_ms:g}")
    require(cfg.eval.excerpt_seconds >= 0, f"{where}: eval.excerpt_seconds",
            f"must be >= 0 (0 = the domain's default), got {cfg.eval.excerpt_seconds:g}")

    validate_reassigned(cfg.reassigned, f"{where}: reassigned")
    for name, w in cfg.loss.weights.items():
        require(isinstance(w, (int, float)) and w >= 0, f"{where}: loss.weights.{name}", f"must be a number >= 0, got {w!r}")
    require(any(w > 0 for w in cfg.loss.weights.values()), f"{where}: loss.weights", "at least one weight must be > 0")
    p = cfg.loss.perceptual
    require(cfg.loss.weights.get("perceptual", 0) == 0 or p.checkpoint != "", f"{where}: loss.weights.perceptual",
            "needs loss.perceptual.checkpoint, the checkpoint of an MAE run (its encoder is the feature network)")
    require(len(p.layers) > 0 and all(isinstance(x, int) and x >= 1 for x in p.layers),
            f"{where}: loss.perceptual.layers", f"need encoder block numbers >= 1, got {p.layers!r}")


def validate_reassigned(rc, where: str) -> None:
    """The ``reassigned`` section's values (its window, inversion and net params: check_components)."""
    require(rc.sample_rate >= 1000, f"{where}.sample_rate", f"must be >= 1000, got {rc.sample_rate}")
    require(rc.n_fft >= 4, f"{where}.n_fft", f"must be >= 4, got {rc.n_fft}")
    require(0 <= rc.win_length <= rc.n_fft, f"{where}.win_length", f"must be in 0..n_fft ({rc.n_fft}); 0 = n_fft")
    require(1 <= rc.hop_length <= (rc.win_length or rc.n_fft), f"{where}.hop_length",
            f"must be in 1..win_length ({rc.win_length or rc.n_fft}), got {rc.hop_length}")
    require(rc.ref_power >= 0, f"{where}.ref_power", f"must be >= 0, got {rc.ref_power}")
    require(rc.n_iter >= 0, f"{where}.n_iter", f"must be >= 0, got {rc.n_iter}")
    require(rc.classical_iter >= 0, f"{where}.classical_iter", f"must be >= 0, got {rc.classical_iter}")
    require(0 <= rc.momentum < 1, f"{where}.momentum", f"must be in [0, 1), got {rc.momentum}")
    require(rc.tol_db > 0, f"{where}.tol_db", f"must be > 0, got {rc.tol_db}")
