"""Speed of the similarity search and of the waveform copy on one real recording."""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from processors.audio_io import read_audio, to_mono
from processors.core.errors import UserError
from processors.gaps import sample_gaps
from processors.mel import MelSpectrogram
from processors.similarity import find_match
from processors.similarity_fill import model_frames, similarity_wave_fill, song_search


CONTEXT_S = 2      # seconds of recording each side of a benchmark gap


def _ms(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def benchmark_similarity(path, cfg, gap_s: list[float], count: int, seed: int = 0) -> dict:
    """Time, on the recording at ``path`` (its own rate and channels), the analysis of the
    whole recording (Mel and search features, once per file), the search of one gap, and the
    waveform copy of one gap (search + alignment + seam crossfades, every channel), for
    ``count`` seeded gaps of each length in ``gap_s`` seconds.
    Returns ``{"seconds", "channels", "rate", "analysis_ms", "rows": [{gap_s, search_ms, fill_ms, score}]}``,
    times in wall-clock milliseconds (medians over the gaps). UserError for a gap of no samples,
    or one too long for the recording to hold it with its context (it would time nothing).
    """
    samples, sr = read_audio(path)
    mel_fn = MelSpectrogram(cfg.audio)
    rows = []
    analysis = []
    context = CONTEXT_S * sr
    for g in gap_s:
        n = round(g * sr)
        if n < 1:
            raise UserError(f"{path}: a gap of {g:g} s is shorter than one sample at {sr} Hz")
        if n + 2 * context > len(samples):
            longest = math.floor((len(samples) - 2 * context) / sr * 1000) / 1000    # down: it must fit
            fits = f"gaps of at most {longest:.3f} s" if longest > 0 else "no gap"
            raise UserError(f"{path}: a gap of {g:g} s does not fit: the recording ({len(samples) / sr:.2f} s) "
                            f"takes {fits} with {CONTEXT_S} s of context on each side")
        searches, fills, scores = [], [], []
        # the gap's window: CONTEXT_S on each side, all inside the recording
        for s, _ in sample_gaps(len(samples), n, n + 2 * context, count, seed, str(path)):
            gapped = samples.copy()
            gapped[s:s + n] = 0
            ms, search = _ms(lambda: song_search(to_mono(gapped), sr, [(s, s + n)], cfg, mel_fn))
            analysis.append(ms)
            (f0, f1), = model_frames([(s, s + n)], sr, cfg, search.mel.shape[1])
            ms, match = _ms(lambda: find_match(search.feats, (f0, f1), search.context, search.known))
            searches.append(ms)
            scores.append(match.score)
            ms, _ = _ms(lambda: similarity_wave_fill(gapped, sr, [(s, s + n)], cfg, mel_fn, search))
            fills.append(ms)
        rows.append({"gap_s": g, "search_ms": float(np.median(searches)), "fill_ms": float(np.median(fills)),
                     "score": float(np.median(scores))})
    return {"seconds": len(samples) / sr, "channels": samples.shape[1], "rate": sr,
            "analysis_ms": float(np.median(analysis)), "threads": torch.get_num_threads(), "rows": rows}
