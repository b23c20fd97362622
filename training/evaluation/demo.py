"""``make demo``: fill a real gap in real speech with the shipped model (seconds), then make
a corpus, train a small U-Net on it and fill a gap in an unseen clip (minutes)."""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from datasets.mel_dataset import build_splits
from datasets.synthetic import make_corpus
from processors.audio_io import load_mono, write_audio
from processors.inpaint import inpaint_audio
from processors.mel import MelSpectrogram, log_mel
from models.vocoder_nets import build_vocoder
from processors.core.checkpoint_io import PRETRAINED_DIR, load_checkpoint
from models.build import load_inpainter
from processors.core.config import Config
from processors.core.errors import UserError
from training.evaluation.evaluate import EXAMPLE_CONTEXT_S, Example, build_systems
from training.figures import mel_figure, save_figure
from training.evaluation.report import build_report, save_examples
from training.evaluation.scoring import score_gap, with_eval
from training.trainer import Trainer

log = logging.getLogger(__name__)


def prepare_corpus(cfg: Config, n_clips: int = 60, seconds: float = 4.0) -> tuple[Config, str]:
    """(``cfg`` pointed at LJSPEECH_DIR if set, as its own run ``<run_name>_ljspeech``, a
    description); else the synthetic corpus is written to ``cfg.data.root`` and ``cfg`` is
    returned as it is."""
    lj = os.environ.get("LJSPEECH_DIR")
    if lj:
        return dataclasses.replace(cfg, run_name=f"{cfg.run_name}_ljspeech",
                                   data=dataclasses.replace(cfg.data, dataset="ljspeech", root=lj)), \
            f"LJSpeech-1.1 at {lj}"
    make_corpus(cfg.data.root, n_clips, seconds, cfg.audio.sample_rate, seed=cfg.seed)
    return cfg, f"{n_clips} synthetic speech-like clips in {cfg.data.root}"


def pick_gap(wave: np.ndarray, sr: int, gap_ms: float) -> tuple[int, int]:
    """A gap of ``gap_ms`` over the loudest stretch of the clip's middle half (a gap in
    silence would show nothing)."""
    n = int(gap_ms * sr / 1000)
    mid = wave[len(wave) // 4: 3 * len(wave) // 4]
    energy = np.convolve(mid ** 2, np.ones(n), mode="valid")
    start = len(wave) // 4 + int(np.argmax(energy))
    return start, start + n


DEMO_CLIP = PRETRAINED_DIR / "demo_clip.wav"    # LJ001-0016: a test file of the shipped model
# what the demo writes in its output folder (the training demo's under training/)
DEMO_OUTPUTS = frozenset({"original.wav", "gapped.wav", "filled.wav", "comparison.png", "report.html", "report",
                          "training", "corpus"})


def listening_report(out: Path, clip: Path, original: np.ndarray, gapped: np.ndarray, gap: tuple[int, int],
                     gap_ms: float, filled: np.ndarray, cfg: Config, label: str = "U-Net",
                     baselines: tuple[str, ...] = ("linear", "oracle"), title: str = "Listening report: make demo"
                     ) -> tuple[Path, dict]:
    """``out/report.html``: the clip's original, gapped input and the model's fill (``label``),
    with ``baselines`` beside it for scale, each scored on the gap as in evaluation.
    Returns the page and ``{system: scores}``."""
    sr, (s, e) = cfg.audio.sample_rate, gap
    mel_fn = MelSpectrogram(cfg.audio)
    fills = {label: filled, **{b.name: b.fill(gapped, gap, original) for b in build_systems([], cfg, list(baselines))}}
    context = round(EXAMPLE_CONTEXT_S * sr)
    crop = slice(max(0, s - context), e + context)
    example = Example(clip.name, gap_ms, (s - crop.start, e - crop.start), crop.start,
                      {"original": original[crop], "gapped": gapped[crop], **{k: w[crop] for k, w in fills.items()}},
                      score_gap(original, fills, gap, cfg, mel_fn))
    save_examples([example], cfg.audio, out / "report", EXAMPLE_CONTEXT_S)
    return build_report(out, title), example.scores


def fill_clip(model, mcfg: Config, clip: Path, out: Path, gap_ms: float, label: str,
              baselines: tuple[str, ...], title: str) -> dict:
    """Cut a ``gap_ms`` gap into the loudest stretch of ``clip``, fill it with ``model`` and write
    ``out/{original,gapped,filled}.wav``, ``out/comparison.png`` and ``out/report.html``."""
    sr = mcfg.audio.sample_rate
    original = load_mono(clip, sr)
    original = np.round(original * 32767) / 32767        # as 16-bit, so the splice check is exact
    s, e = pick_gap(original, sr, gap_ms)
    gapped = original.copy()
    gapped[s:e] = 0.0
    mel_fn = MelSpectrogram(mcfg.audio)
    filled, _ = inpaint_audio(gapped, sr, [(s, e)], model, mcfg, mel_fn, build_vocoder(mcfg))
    out.mkdir(parents=True, exist_ok=True)
    for name, wave in (("original", original), ("gapped", gapped), ("filled", filled)):
        write_audio(out / f"{name}.wav", wave, sr, subtype="PCM_16")
    mels = [log_mel(mel_fn, w.astype(np.float32)) for w in (original, gapped, filled)]
    fig = mel_figure([("original", mels[0]), (f"gapped ({gap_ms:.0f} ms)", mels[1]), (f"filled by the {label}", mels[2])],
                     mcfg.audio.hop_length / sr, [(s / sr, e / sr)])
    save_figure(fig, out / "comparison.png")
    report, scores = listening_report(out, clip, original, gapped, (s, e), gap_ms, filled, mcfg, label, baselines, title)
    outside_same = bool(np.array_equal(np.delete(filled, np.s_[s:e]), np.delete(gapped, np.s_[s:e])))
    return {"clip": str(clip), "gap": f"{s / sr:.3f}-{e / sr:.3f} s", "outside_gap_identical": outside_same,
            "listening_report": str(report), "scores": scores}


def shipped_demo(out: Path, gap_ms: float = 200.0) -> dict:
    """The shipped speech model on the committed LJSpeech clip, against linear interpolation,
    LPC and the oracle: seconds, no training."""
    model, mcfg = load_inpainter("speech")
    mcfg = with_eval(mcfg, metrics=["pesq", "plcmos"])    # what it is judged by; DNSMOS and STOI cost seconds more
    return fill_clip(model, mcfg, DEMO_CLIP, out, gap_ms, "shipped model", ("linear", "lpc", "oracle"),
                     "make demo: the shipped speech model on a held-out LJSpeech clip")


def training_demo(cfg: Config, out: Path, gap_ms: float = 150.0) -> dict:
    """Train ``cfg``'s small U-Net on a corpus made under ``out`` and fill a gap in one of its test clips."""
    out.mkdir(parents=True, exist_ok=True)
    cfg, corpus = prepare_corpus(cfg)
    log.info("corpus: %s", corpus)
    last = Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt"
    resume = load_checkpoint(last) if last.exists() else None   # a re-run reuses finished training
    if resume is not None and resume["config"]["data"]["root"] != cfg.data.root:
        raise UserError(f"{last.parent} holds a demo trained on {resume['config']['data']['root']}, not "
                        f"{cfg.data.root}: run make clean first")
    summary = Trainer(cfg, resume=resume).fit()
    best = last.with_name("best.pt")
    model, mcfg = load_inpainter(best if best.exists() else last)   # no best.pt if stopped before validating
    clip = build_splits(cfg)["test"][0]                   # never seen in training or validation
    return {**summary, **fill_clip(model, mcfg, clip, out, gap_ms, "U-Net", ("linear", "oracle"),
                                   "Listening report: make demo (training)"),
            "logs": f"{cfg.train.runs_dir}/{cfg.run_name}"}
