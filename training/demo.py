"""``make demo``: make a corpus, train a small U-Net, fill a gap in an unseen clip."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from datasets.mel_dataset import build_splits
from datasets.synthetic import make_corpus
from processors.audio_io import load_mono, write_audio
from processors.inpaint import inpaint_audio
from processors.mel import MelSpectrogram
from processors.vocoders import build_vocoder
from training.checkpoint import load_checkpoint, load_inpainter
from training.config import Config
from training.evaluation import EXAMPLE_CONTEXT_S, Example, build_systems
from training.figures import mel_figure, save_figure
from training.report import build_report, save_examples
from training.scoring import score_gap
from training.trainer import Trainer

log = logging.getLogger(__name__)


def prepare_corpus(cfg: Config, out: Path, n_clips: int = 60, seconds: float = 4.0) -> str:
    """Point the config at LJSPEECH_DIR if set, else at a synthetic corpus under ``out``."""
    lj = os.environ.get("LJSPEECH_DIR")
    if lj:
        cfg.data.dataset, cfg.data.root = "ljspeech", lj
        return f"LJSpeech-1.1 at {lj}"
    make_corpus(cfg.data.root, n_clips, seconds, cfg.audio.sample_rate, seed=cfg.seed)
    return f"{n_clips} synthetic speech-like clips in {cfg.data.root}"


def pick_gap(wave: np.ndarray, sr: int, gap_ms: float) -> tuple[int, int]:
    """A gap of ``gap_ms`` over the loudest stretch of the clip's middle half (a gap in
    silence would show nothing)."""
    n = int(gap_ms * sr / 1000)
    mid = wave[len(wave) // 4: 3 * len(wave) // 4]
    energy = np.convolve(mid ** 2, np.ones(n), mode="valid")
    start = len(wave) // 4 + int(np.argmax(energy))
    return start, start + n


def listening_report(out: Path, clip: Path, original: np.ndarray, gapped: np.ndarray, gap: tuple[int, int],
                     gap_ms: float, filled: np.ndarray, cfg: Config) -> Path:
    """``out/report.html``: the clip's original, gapped input and U-Net fill, with linear
    interpolation and the oracle beside it for scale, each scored on the gap as in evaluation."""
    sr, (s, e) = cfg.audio.sample_rate, gap
    mel_fn = MelSpectrogram(cfg.audio)
    fills = {"U-Net": filled, **{b.name: b.fill(gapped, gap, original)
                                 for b in build_systems([], cfg, ["linear", "oracle"])}}
    context = round(EXAMPLE_CONTEXT_S * sr)
    crop = slice(max(0, s - context), e + context)
    example = Example(clip.name, gap_ms, (s - crop.start, e - crop.start), crop.start,
                      {"original": original[crop], "gapped": gapped[crop], **{k: w[crop] for k, w in fills.items()}},
                      score_gap(original, fills, gap, cfg, mel_fn))
    save_examples([example], cfg.audio, out / "report", EXAMPLE_CONTEXT_S)
    return build_report(out, "Listening report: make demo")


def run_demo(cfg: Config, out: Path, gap_ms: float = 150.0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    log.info("corpus: %s", prepare_corpus(cfg, out))
    last = Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt"
    resume = load_checkpoint(last) if last.exists() else None   # a re-run reuses finished training
    summary = Trainer(cfg, resume=resume).fit()

    best = last.with_name("best.pt")
    model, mcfg = load_inpainter(best if best.exists() else last)   # no best.pt if stopped before validating
    clip = build_splits(cfg)["test"][0]                   # never seen in training or validation
    sr = mcfg.audio.sample_rate
    original = load_mono(clip, sr)
    original = np.round(original * 32767) / 32767        # as 16-bit, so the splice check is exact
    s, e = pick_gap(original, sr, gap_ms)
    gapped = original.copy()
    gapped[s:e] = 0.0
    mel_fn = MelSpectrogram(mcfg.audio)
    vocoder = build_vocoder(mcfg)
    filled, details = inpaint_audio(gapped, sr, [(s, e)], model, mcfg, mel_fn, vocoder)
    write_audio(out / "original.wav", original, sr, subtype="PCM_16")
    write_audio(out / "gapped.wav", gapped, sr, subtype="PCM_16")
    write_audio(out / "filled.wav", filled, sr, subtype="PCM_16")

    with torch.no_grad():
        mels = [mel_fn(torch.from_numpy(w.astype(np.float32))).numpy() for w in (original, gapped, filled)]
    hop_s = mcfg.audio.hop_length / sr
    fig = mel_figure([("original", mels[0]), (f"gapped ({gap_ms:.0f} ms)", mels[1]), ("filled by the U-Net", mels[2])],
                     hop_s, [(s / sr, e / sr)])
    save_figure(fig, out / "comparison.png")
    report = listening_report(out, clip, original, gapped, (s, e), gap_ms, filled, mcfg)
    outside_same = bool(np.array_equal(np.delete(filled, np.s_[s:e]), np.delete(gapped, np.s_[s:e])))
    return {**summary, "clip": str(clip), "gap": f"{s / sr:.3f}-{e / sr:.3f} s", "outside_gap_identical": outside_same,
            "listening_report": str(report)}
