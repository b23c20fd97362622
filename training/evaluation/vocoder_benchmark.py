"""Vocoder benchmark: the true Mel of each gap's window through every vocoder method.

Oracle Mel only, so what is measured is the vocoder alone (Mel inversion and phase),
not any inpainter. Each clip gets a few seeded gaps; every method fills them through
``processors.inpaint.inpaint_audio`` exactly as inference does (same window, splice
and fades), and is scored with the evaluation's metrics: LSD on each gap, PESQ-WB of
the whole clip. Only the vocoder call is timed. librosa's ``mel_to_audio`` (NNLS +
librosa's fast Griffin-Lim from seeded random phase) on the same window is the outside reference.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from processors.audio_io import load_mono
from processors.gaps import sample_gaps
from processors.inpaint import inpaint_audio, locate, window_mels, window_samples
from processors.mel import MelInverse, MelSpectrogram, normalised_to_amplitude
from processors.metrics import bins_up_to, centre_frames, log_spectral_distance, pesq_wb, spectral_distance_db
from models.vocoder_nets import build_vocoder
from processors.vocoders import PHASE_INITS, ContextGriffinLim, stft, with_vocoder

REFERENCE = "librosa mel_to_audio"


@dataclass
class Variant:
    """One row group of the table: a name and ``build(n_iter) -> vocoder``."""
    name: str
    build: Callable[[int], Callable]


class LibrosaMelToAudio:
    """librosa.feature.inverse.mel_to_audio as a vocoder (it ignores the context)."""

    def __init__(self, audio, n_iter: int):
        self.audio, self.n_iter = audio, n_iter

    def __call__(self, norm_mel, context=None, hole=None, seed: int = 0) -> torch.Tensor:
        import librosa
        a = self.audio
        amp = normalised_to_amplitude(norm_mel, a.min_db, a.max_db).numpy()
        # mel_to_audio's two steps, called apart so that Griffin-Lim gets the seed: mel_to_audio
        # passes no random_state, and griffinlim then draws its phase from a fresh
        # np.random.default_rng() (which np.random.seed does not reach): a new result every run
        magnitude = librosa.feature.inverse.mel_to_stft(
            amp, sr=a.sample_rate, n_fft=a.n_fft, power=1.0, fmin=a.f_min, fmax=a.f_max,
            htk=a.mel_scale == "htk", norm=None if a.mel_norm == "none" else a.mel_norm)
        wave = librosa.griffinlim(
            magnitude, n_iter=self.n_iter, hop_length=a.hop_length, win_length=a.win_length, n_fft=a.n_fft,
            window="hann", center=True, dtype=np.float32, length=(amp.shape[-1] - 1) * a.hop_length,
            pad_mode="reflect", random_state=seed)
        return torch.from_numpy(wave)


class Timed:
    """Wraps a vocoder and records the wall-clock and process CPU seconds of each call
    (on a shared machine wall time includes waiting for a core; CPU time does not)."""

    def __init__(self, vocoder):
        self.vocoder, self.seconds, self.cpu_seconds = vocoder, [], []
        self.joins_context = getattr(vocoder, "joins_context", False)     # the splice asks

    def __call__(self, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        out = self.vocoder(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        self.cpu_seconds.append(time.process_time() - cpu)
        return out


def variants(cfg, methods: list[str], inverses: list[str], ablate: bool = False,
             nets: dict[str, str] | None = None) -> list[Variant]:
    """Every method x Mel inverse, then the reference; ``ablate`` adds context_griffinlim
    with each phase init, with and without holding the known samples. ``nets``: the
    learned vocoders' checkpoints, ``{method: path}``; melspec2spec has its own inverse."""
    out = []
    for method in methods:
        own_inverse = method == "melspec2spec"      # its net refines the inverse it was trained on
        for inv in inverses[:1] if own_inverse else inverses:
            name = method + (f"/{inv}" if len(inverses) > 1 and not own_inverse else "")
            out.append(Variant(name, _builder(with_vocoder(cfg, method, nets), method, inv)))
            if ablate and method == "context_griffinlim":
                out += [Variant(f"{name} [{init}{', hold' if hold else ''}]", _builder(cfg, method, inv, init, hold))
                        for init in PHASE_INITS for hold in (False, True)]
    return out + [Variant(REFERENCE, lambda n_iter: LibrosaMelToAudio(cfg.audio, n_iter))]


def _builder(cfg, method: str, inverse: str, init: str | None = None, hold: bool = True):
    def build(n_iter: int):
        v = dataclasses.replace(cfg.vocoder, method=method, mel_inverse=inverse, n_iter=n_iter)
        if init is not None:
            return ContextGriffinLim(cfg.audio, n_iter, v.momentum, inverse, init=init, hold_samples=hold)
        return build_vocoder(dataclasses.replace(cfg, vocoder=v))
    return build


def prepare_clips(files, count: int, cfg, gap_ms: float, gaps_per_clip: int, seed: int) -> list[dict]:
    """The first ``count`` clips long enough for their gaps, at the model's rate, with their gaps."""
    sr = cfg.audio.sample_rate
    window = window_samples(cfg)
    clips = []
    for path in files:
        if len(clips) == count:
            break
        wave = load_mono(path, sr)
        gaps = sample_gaps(len(wave), round(gap_ms * sr / 1000), window, gaps_per_clip, seed, path.name,
                           disjoint=True)
        if gaps:
            clips.append({"name": path.name, "wave": wave, "gaps": gaps})
    return clips


def run_variant(clips: list[dict], vocoder, cfg, mel_fn) -> dict:
    """Fill every clip's gaps with the oracle Mel through ``vocoder``: mean gap LSD (dB),
    mean clip PESQ-WB, median wall and CPU milliseconds per gap (vocoder call only)."""
    a, sr = cfg.audio, cfg.audio.sample_rate
    timed = Timed(vocoder)
    lsd, pesq = [], []
    for clip in clips:
        clean, gaps = clip["wave"], clip["gaps"]
        gapped = clean.copy()
        for s, e in gaps:
            gapped[s:e] = 0.0
        truths = iter([window_mels(clean, sr, locate(g, len(clean), sr, cfg), cfg, mel_fn) for g in gaps])
        oracle = lambda masked, mask: next(truths)[None, None]   # windows come in gap order
        filled = inpaint_audio(gapped, sr, gaps, oracle, cfg, mel_fn, timed)[0]
        lsd += [log_spectral_distance(clean, filled, g, sr, a.n_fft, a.win_length, a.hop_length, a.f_max)
                for g in gaps]
        pesq.append(pesq_wb(clean, filled, sr)[0])
    return {"lsd_db": float(np.mean(lsd)), "pesq_wb": float(np.nanmean(pesq)),
            "ms_median": 1000 * statistics.median(timed.seconds),
            "cpu_ms_median": 1000 * statistics.median(timed.cpu_seconds), "gaps": len(lsd)}


def magnitude_estimators(cfg, inverses: list[str], nets: dict[str, str] | None = None) -> dict[str, Callable]:
    """``{name: fn(normalised log-Mel (n_mels, T)) -> linear magnitude (F, T)}``: each Mel
    inverse, and the melspec2spec refiner when ``nets`` has one."""
    a = cfg.audio
    out = {name: (lambda m, inv=MelInverse(a, name): inv(normalised_to_amplitude(m, a.min_db, a.max_db)))
           for name in inverses}
    if nets and "melspec2spec" in nets:
        out["melspec2spec"] = build_vocoder(with_vocoder(cfg, "melspec2spec", nets)).linear_magnitude
    return out


def magnitude_errors(clips: list[dict], cfg, mel_fn, estimators: dict[str, Callable], context: int = 32) -> dict[str, dict]:
    """Per estimator: LSD (dB, processors.metrics.spectral_distance_db) of the linear magnitude
    it recovers from the true Mel against the true |STFT|, on the gap frames (bins up to f_max,
    floored below the clip's peak), and ms per gap. Each sees the gap's frames and ``context``
    frames on each side (a refiner's convolutions use them)."""
    a = cfg.audio
    window = torch.hann_window(a.win_length)
    bins = bins_up_to(a.f_max, a.n_fft, a.sample_rate)
    out = {}
    for name, estimate in estimators.items():
        errors, ms = [], []
        for clip in clips:
            wave = torch.from_numpy(clip["wave"])
            true = stft(wave, a, window).abs()[:bins]
            mel = mel_fn(wave)
            power = (true ** 2).double().numpy()
            for s, e in clip["gaps"]:
                f0, f1 = centre_frames(s, e, a.hop_length, true.shape[1])
                w0, w1 = max(0, f0 - context), min(true.shape[1], f1 + context)
                start = time.perf_counter()
                with torch.no_grad():
                    est = estimate(mel[:, w0:w1])[:bins, f0 - w0:f1 - w0]
                ms.append(1000 * (time.perf_counter() - start))
                errors.append(spectral_distance_db(power[:, f0:f1], (est ** 2).double().numpy(), power.max()))
        out[name] = {"mag_lsd_db": float(np.mean(errors)), "ms_median": statistics.median(ms)}
    return out


def markdown_table(results: dict[tuple[str, int], dict], iters: list[int]) -> str:
    """Rows: variant; for each n_iter: LSD, PESQ-WB, ms per gap."""
    head = "| method | " + " | ".join(f"LSD dB @{n} | PESQ @{n} | ms/gap @{n} | CPU ms @{n}" for n in iters) + " |"
    rule = "|---|" + "---:|" * (4 * len(iters))
    names = list(dict.fromkeys(name for name, _ in results))
    lines = [head, rule]
    for name in names:
        cells = []
        for n in iters:
            r = results[(name, n)]
            cells += [f"{r['lsd_db']:.2f}", f"{r['pesq_wb']:.2f}", f"{r['ms_median']:.1f}", f"{r['cpu_ms_median']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_vocoders(files, count, cfg, methods, inverses, iters, gap_ms, gaps_per_clip, seed, ablate=False,
                  log=print, nets: dict[str, str] | None = None) -> str:
    """The whole benchmark on ``count`` of ``files`` as markdown (tables of vocoders and of Mel inverses)."""
    mel_fn = MelSpectrogram(cfg.audio)
    clips = prepare_clips(files, count, cfg, gap_ms, gaps_per_clip, seed)
    if not clips:
        return ""
    results = {}
    for variant in variants(cfg, methods, inverses, ablate, nets):
        for n in iters:
            results[(variant.name, n)] = r = run_variant(clips, variant.build(n), cfg, mel_fn)
            log(f"{variant.name} @{n}: LSD {r['lsd_db']:.2f} dB, PESQ {r['pesq_wb']:.2f}, "
                f"{r['ms_median']:.1f} ms/gap ({r['cpu_ms_median']:.1f} CPU ms)")
    mags = magnitude_errors(clips, cfg, mel_fn, magnitude_estimators(cfg, inverses, nets))
    n_gaps = sum(len(c["gaps"]) for c in clips)
    lines = [f"{len(clips)} clips, {n_gaps} gaps of {gap_ms:g} ms, oracle Mel (true Mel of each window); "
             "LSD: mean over gaps; PESQ-WB: mean over clips; ms/gap and CPU ms: median wall-clock and "
             "process CPU time of the vocoder call per gap.", "",
             markdown_table(results, iters), "",
             "Mel -> linear magnitude on the gap frames (true Mel in, true |STFT| as reference):", "",
             "| Mel inverse | magnitude LSD dB | ms/gap (its window) |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['mag_lsd_db']:.2f} | {v['ms_median']:.1f} |" for k, v in mags.items()]
    return "\n".join(lines)
