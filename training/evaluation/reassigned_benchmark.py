"""Benchmark of the reassigned-spectrogram inversions on real clips, training and held-out files apart.

Every clip is analysed at the config's ``reassigned`` settings (after the edge padding
processors.reassigned_inverse.edge_padding adds) and rebuilt from its reassigned spectrogram
alone by each method, then scored against the original:

- SNR: after turning the rebuilt wave's analytic signal by the best single angle (a sign
  flip is the angle pi): the derivatives do not hold the absolute phase, so a constant turn
  is not an error; stretches of opposite sign still count against it;
- segSNR: the mean SNR of 20 ms segments, each turned by its own best angle (segments
  within 40 dB of the loudest; each capped to [-10, 60] dB): local waveform fidelity;
- SC: spectral convergence of the analysis STFT's magnitude, || |S_est| - |S_ref| || / || |S_ref| ||;
- LSD: log-spectral distance (processors.metrics) over the whole clip with a finer STFT than
  the analysis (512-point Hann, hop 128, up to 8 kHz, 80 dB floor), where harmonics show;
- PESQ-WB of the whole clip at 16 kHz;
- CPU seconds (and wall seconds) of the inversion per second of audio.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from processors.audio_io import load_mono
from processors.core.errors import UserError
from processors.metrics import log_spectral_distance, pesq_wb, rotated_snr_db, segmental_snr_db, spectral_convergence
from processors.reassigned import stft
from processors.reassigned_inverse import roundtrip

COLUMNS = ("snr", "seg_snr", "sc", "lsd", "pesq", "cpu_per_s", "wall_per_s")
HEADERS = ("SNR dB", "segSNR dB", "SC", "LSD dB", "PESQ-WB", "CPU s / s audio", "wall s / s audio")


def parse_methods(specs: list[str], default_iters: int) -> list[tuple[str, int]]:
    """'method' or 'method:iterations' -> (method, iterations); UserError for iterations that
    are not a whole number (the caller checks the name and the sign)."""
    out = []
    for spec in specs:
        name, _, iters = spec.partition(":")
        try:
            out.append((name, int(iters) if iters else default_iters))
        except ValueError:
            raise UserError(f"--methods {spec}: the iterations after ':' must be a whole number, "
                            "as in pghi_reassigned:60") from None
    return out


def score(ref: np.ndarray, est: np.ndarray, rc) -> dict[str, float]:
    """Every metric but the timings for one clip, both (N,) at ``rc.sample_rate``."""
    sr = rc.sample_rate
    return {"snr": rotated_snr_db(ref, est), "seg_snr": segmental_snr_db(ref, est, sr // 50),
            "sc": spectral_convergence(np.abs(stft(ref, rc)), np.abs(stft(est, rc))),
            "lsd": log_spectral_distance(ref, est, (0, len(ref)), sr, 512, 512, 128, min(8000.0, sr / 2)),
            "pesq": pesq_wb(ref, est, sr)[0]}


def benchmark_reassigned(sets: dict[str, list[Path]], rc, methods: list[tuple[str, int]],
                  log: Callable[[str], None] = print) -> dict[str, dict[str, dict[str, float]]]:
    """Mean metrics ``{set: {row label: {metric: value}}}`` over each set's clips (NaN where no
    clip has a finite value). A silent clip is skipped: every metric compares against it, and
    against silence they are undefined (SNR, PESQ) or perfect for any output (SC, LSD 0); a set
    with no clip left is a UserError."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for set_name, files in sets.items():
        rows: dict[str, list[dict]] = {}
        for path in files:
            wave = load_mono(path, rc.sample_rate).astype(np.float64)
            seconds = len(wave) / rc.sample_rate
            if not np.any(wave):
                log(f"{set_name}: {path.name} ({seconds:.1f} s) is silent: skipped")
                continue
            for method, iters in methods:
                label = f"{method}:{iters}"
                settings = dataclasses.replace(rc, method=method, n_iter=iters)
                cpu = time.process_time()
                est, wall = roundtrip(wave, settings)
                cpu = time.process_time() - cpu
                metrics = score(wave, est, rc)
                metrics.update(cpu_per_s=cpu / seconds, wall_per_s=wall / seconds)
                rows.setdefault(label, []).append(metrics)
            log(f"{set_name}: {path.name} ({seconds:.1f} s) " + ", ".join(
                f"{label} {r[-1]['pesq']:.2f}" for label, r in rows.items()))
        if not rows:
            why = (f"all {len(files)} in {', '.join(sorted({str(Path(f).parent) for f in files}))} are silent "
                   "(digital zero throughout; every score compares against the clip)" if files else "it has none")
            raise UserError(f"{set_name}: no clip was usable: {why}")
        results[set_name] = {label: {k: _finite_mean([v[k] for v in r]) for k in COLUMNS}
                             for label, r in rows.items()}
    return results


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite ``values``; NaN if there is none (a metric no clip could score)."""
    finite = [v for v in values if np.isfinite(v)]
    return statistics.fmean(finite) if finite else float("nan")


def markdown(results: dict[str, dict[str, dict[str, float]]], counts: dict[str, int]) -> str:
    """The tables: one per set, and PESQ-WB held-out minus training per method."""
    lines = []
    for set_name, rows in results.items():
        lines += [f"### {set_name} ({counts[set_name]} clips)", "",
                  "| method:iterations | " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * len(HEADERS)]
        for label, m in rows.items():
            lines.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" if k in ("sc", "pesq", "cpu_per_s", "wall_per_s")
                                                       else f"{m[k]:.2f}" for k in COLUMNS) + " |")
        lines.append("")
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        lines += [f"PESQ-WB {b} minus {a}: " + ", ".join(f"{label} {rb[label]['pesq'] - ra[label]['pesq']:+.3f}"
                                                           for label in ra if label in rb)]
    return "\n".join(lines)
