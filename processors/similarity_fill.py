"""Filling gaps from the recording's own repetitions: the search over a whole recording, and
the waveform copy (processors.similarity holds the search itself).

Two fills use the same search:
- in the Mel domain, the guide (``song_guide``): the matched stretch's Mel placed in the
  gap, for the vocoder (models.classical.SimilarityMelFill) or as a guided network's input;
- in the waveform domain (``similarity_wave_fill``): the matched stretch's samples copied
  into the gap at the file's own rate, every channel from its own samples (true phase and
  fine structure, stereo kept), aligned to the sample on the context and joined to it by
  short crossfades from the context's linear-prediction continuation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal
import torch

from processors.audio_io import resample, to_mono
from processors.gaps import gap_frames
from processors.lpc import lpc_edges, lpc_fill
from processors.mel import log_mel
from processors.similarity import Match, find_match, search_features, window_guide

SEAM_LPC_ORDER_MS = 1.5      # predictor for the seam crossfade: it only has to carry on for ~10 ms
SEAM_LPC_CONTEXT_MS = 40.0
FALLBACK_LPC_ORDER_MS = 10.0   # no stretch of the recording qualifies (too short): LPC from both sides


@dataclass
class SongSearch:
    """A recording prepared once for every gap's search, at the model's rate."""
    mel: np.ndarray          # (n_mels, T) normalised log-Mel of the gapped recording
    feats: torch.Tensor      # (T, bands) search features
    known: torch.Tensor      # (T,) bool: False for frames whose window touches a gap
    context: int             # frames compared on each side of a gap


def context_frames(cfg) -> int:
    """``similarity.context_s`` in Mel frames of ``cfg.audio`` (at least 1): what a search
    compares on each side of a gap."""
    return max(1, round(cfg.similarity.context_s * cfg.audio.sample_rate / cfg.audio.hop_length))


def song_search(mono: np.ndarray, sr: int, gaps: list[tuple[int, int]], cfg, mel_fn) -> SongSearch:
    """Analyse a gapped recording (N,) at rate ``sr`` for the search (its cost is the recording's
    Mel, once; each gap's search is then one matrix product)."""
    a = cfg.audio
    wave = resample(np.asarray(mono, dtype=np.float32), sr, a.sample_rate)
    mel = log_mel(mel_fn, wave)
    known = torch.ones(mel.shape[1], dtype=torch.bool)
    for f0, f1 in model_frames(gaps, sr, cfg, mel.shape[1]):
        known[f0:f1] = False
    return SongSearch(mel, search_features(mel, cfg.similarity.bands), known, context_frames(cfg))


def model_frames(gaps: list[tuple[int, int]], sr: int, cfg, n_frames: int) -> list[tuple[int, int]]:
    """Sample ranges at rate ``sr`` -> the Mel frames (model rate) whose windows touch them."""
    a, ratio = cfg.audio, cfg.audio.sample_rate / sr
    return [gap_frames(int(s * ratio), math.ceil(e * ratio), a.hop_length, a.n_fft, n_frames) for s, e in gaps]


def gap_matches(search: SongSearch, gaps: list[tuple[int, int]], sr: int, cfg) -> list[tuple[int, int, Match]]:
    """Each gap's best source, searched once: ``(f0, f1, match)``, the gap's frames in the
    recording (model rate) and its processors.similarity.Match."""
    return [(f0, f1, find_match(search.feats, (f0, f1), search.context, search.known))
            for f0, f1 in model_frames(gaps, sr, cfg, search.mel.shape[1])]


def song_guide(search: SongSearch, window_start: int, sr: int, cfg, columns: np.ndarray,
               found: list[tuple[int, int, Match]] | None = None) -> np.ndarray:
    """The guide (2, n_mels, len(columns)) of a crop window that starts at sample
    ``window_start`` (rate ``sr``), searched over the whole recording, or taken from
    ``found`` (:func:`gap_matches`): see processors.similarity.window_guide. The window's
    frames sit within half a hop of the recording's frames; the nearest are used (a copy
    from elsewhere has no phase to keep)."""
    offset = round(window_start * cfg.audio.sample_rate / sr / cfg.audio.hop_length)
    return window_guide(search.mel, search.feats, offset, columns, search.context, search.known, found)


def refine_lag(mono: np.ndarray, gap: tuple[int, int], lag: int, radius: int, width: int) -> int:
    """The lag (samples, within ``lag +- radius``) whose source best matches the gap's context.

    mono: (N,), or (N, C) read as its downmix (only the stretches compared are mixed);
    gap: (s, e). Compares the ``width`` samples before s and after e with the
    same stretches around the source [s + lag, e + lag) by normalised cross-correlation,
    so the copy continues the context in phase. Lags whose windows leave the recording are
    not considered; returns ``lag`` when none is left or the context is silent.
    """
    s, e = gap
    n = len(mono)
    wl, wr = min(width, s), min(width, n - e)
    lo = max(lag - radius, wl - s)
    hi = min(lag + radius, n - e - wr)
    if hi < lo or wl + wr == 0:
        return lag
    def x(a: int, b: int) -> np.ndarray:
        part = np.asarray(mono[a:b], dtype=np.float64)
        return part.mean(axis=1) if part.ndim == 2 else part
    corr = np.zeros(hi - lo + 1)
    energy = np.zeros(hi - lo + 1)
    ref_energy = 0.0
    for template, first in ((x(s - wl, s), s - wl), (x(e, e + wr), e)):
        if len(template) == 0:
            continue
        region = x(first + lo, first + hi + len(template))                # every candidate's window
        corr += scipy.signal.correlate(region, template, mode="valid", method="auto")
        sq = np.concatenate([[0.0], np.cumsum(region ** 2)])
        energy += sq[len(template):] - sq[:-len(template)]
        ref_energy += float(template @ template)
    if ref_energy <= 0:
        return lag
    score = corr / np.sqrt(ref_energy * np.maximum(energy, 1e-12))
    return lo + int(np.argmax(score))


def similarity_wave_fill(samples: np.ndarray, sr: int, gaps: list[tuple[int, int]], cfg, mel_fn,
                         search: SongSearch | None = None,
                         found: list[tuple[int, int, Match]] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Fill every gap of ``samples`` (N,) or (N, C) at rate ``sr`` by copying the stretch of
    the same recording whose surroundings match best (searched on the downmix at the model's
    rate, then aligned to the sample at ``sr``); each channel copies its own samples.

    ``found``: the gaps' matches already searched (:func:`gap_matches`, in ``gaps``' order).
    Returns the filled copy (same shape and dtype, every sample outside the gaps
    bit-identical) and, per gap, ``{"gap", "source" (start sample or -1), "score"}``. A gap
    with no candidate (a recording too short to search) is filled by LPC from both sides.
    """
    search = search or song_search(to_mono(samples), sr, gaps, cfg, mel_fn)
    found = found or gap_matches(search, gaps, sr, cfg)
    a, sim = cfg.audio, cfg.similarity
    to_native = sr / a.sample_rate
    fade = round(sim.crossfade_ms * sr / 1000)
    order = max(2, round(SEAM_LPC_ORDER_MS * sr / 1000))
    n_ctx = round(SEAM_LPC_CONTEXT_MS * sr / 1000)
    out = samples.copy()
    channels = out.reshape(len(out), -1)          # a view: (N, C), mono as one channel
    source = samples.reshape(len(samples), -1)
    details = []
    for (s, e), (f0, f1, match) in zip(gaps, found):
        if match.start < 0:
            order_fb = round(FALLBACK_LPC_ORDER_MS * sr / 1000)
            for c in range(channels.shape[1]):
                piece = lpc_fill(source[max(0, s - 4 * order_fb):s, c], source[e:e + 4 * order_fb, c], e - s, order_fb)
                channels[s:e, c] = np.clip(piece, -1, 1).astype(out.dtype)
            details.append({"gap": (s, e), "source": -1, "score": 0.0})
            continue
        lag = round((match.start - f0) * a.hop_length * to_native)
        lag = refine_lag(samples, (s, e), lag, math.ceil(a.hop_length * to_native),
                         round(sim.align_ms * sr / 1000))
        for c in range(channels.shape[1]):
            piece = lpc_edges(source[s + lag:e + lag, c], source[max(0, s - n_ctx):s, c],
                              source[e:e + n_ctx, c], 0, fade, order)
            channels[s:e, c] = np.clip(piece, -1, 1).astype(out.dtype)
        details.append({"gap": (s, e), "source": s + lag, "score": match.score})
    return out, details
