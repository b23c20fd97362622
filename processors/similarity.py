"""Similarity search: where else in the same recording does the music around a gap recur?

The classical long-gap method for music (Perraudin, Holighaus, Majdak, Balazs, "Inpainting
of long audio segments with similarity graphs", IEEE/ACM TASLP 2018): describe every frame
by a feature vector, compare the known context on each side of the gap with the context
around every other stretch of the same length, and copy the stretch whose surroundings
match best into the gap. Songs repeat (bars, riffs, choruses), so the copy is often the
very passage that is missing.

Features here are the normalised log-Mel pooled into a few bands, each band centred on
its mean over the song and every frame scaled to unit length, so a dot product is a
cosine similarity. A candidate's score is the mean cosine over the context frames, left
and right together: one matrix product of the song's features with the context's, then
sums along diagonals (a strided view), so a 4-minute song is searched in milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from processors.gaps import gap_runs


@dataclass
class Match:
    """The best source of one gap: its first frame, and how well its surroundings matched."""
    start: int        # first source frame; -1 when no stretch of the song qualifies
    score: float      # mean cosine similarity of the contexts, in [-1, 1]; 0.0 without a match


NO_MATCH = Match(-1, 0.0)


def search_features(mel, bands: int) -> torch.Tensor:
    """Per-frame search features of a song's normalised log-Mel.

    mel: (n_mels, T), numpy or torch. The Mel bands are averaged in ``bands`` contiguous
    groups (the last takes the remainder), each group is centred on its mean over time
    (so frames compare by their shape, not by the song's average spectrum), and each frame
    is scaled to unit L2 norm (a frame that is flat after centring stays zero).
    Returns float32 (T, bands), contiguous.
    """
    pooled = pooled_bands(mel, bands)
    return unit_frames(pooled - pooled.mean(0, keepdim=True))


def pooled_bands(mel, bands: int) -> torch.Tensor:
    """(n_mels, T) numpy or torch -> float32 (T, bands): the Mel bands averaged in ``bands``
    contiguous groups (the last takes the remainder)."""
    m = torch.as_tensor(np.asarray(mel), dtype=torch.float32)
    n_mels = m.shape[0]
    edges = np.linspace(0, n_mels, max(1, min(bands, n_mels)) + 1).astype(int)
    return torch.stack([m[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:])], dim=1)


def unit_frames(x: torch.Tensor) -> torch.Tensor:
    """(T, D) -> each frame scaled to unit L2 norm (an all-zero frame stays zero); contiguous."""
    return (x / x.norm(dim=1, keepdim=True).clamp(min=1e-6)).contiguous()


def _diagonal_sums(g: torch.Tensor) -> torch.Tensor:
    """(T, K) -> (T - K + 1,): ``out[j] = sum_i g[j + i, i]``, without a copy (strided view)."""
    t, k = g.shape
    if k == 0:
        return torch.zeros(t + 1, dtype=g.dtype)
    g = g.contiguous()
    return g.as_strided((t - k + 1, k), (k, k + 1)).sum(1)


def find_match(feats: torch.Tensor, gap: tuple[int, int], context: int,
               known: torch.Tensor | None = None) -> Match:
    """The stretch of the song whose surroundings best match the gap's.

    feats: (T, D) from :func:`search_features`; gap: half-open frame range (g0, g1);
    context: frames compared on each side (fewer where the song ends sooner);
    known: (T,) bool, False for frames that are themselves missing (other gaps); the
    gap's own frames always count as missing. A candidate start ``s`` copies frames
    [s, s + L) (L = g1 - g0); its context is [s - cl, s) and [s + L, s + L + cr). It must
    lie inside the song, copy known frames only, and its span with context must not
    overlap the gap (the gap's neighbourhood). Missing frames contribute nothing to a
    score; the score is the mean cosine over the gap's known context frames.
    """
    t = feats.shape[0]
    g0, g1 = max(0, gap[0]), min(t, gap[1])
    length = g1 - g0
    cl, cr = min(context, g0), min(context, t - g1)
    if length <= 0 or cl + cr == 0 or t < length + cl + cr:
        return NO_MATCH
    missing = torch.zeros(t, dtype=torch.bool) if known is None else ~known.to(torch.bool)
    missing[g0:g1] = True
    query = torch.cat([feats[g0 - cl:g0], feats[g1:g1 + cr]])        # (cl + cr, D)
    weight = (~torch.cat([missing[g0 - cl:g0], missing[g1:g1 + cr]])).float()
    # stay clear of the gap with the copy and its context
    return best_match(feats, query, weight, cl, length, missing,
                      lambda starts: (starts + length + cr <= g0) | (starts - cl >= g1))


def best_match(feats: torch.Tensor, query: torch.Tensor, weight: torch.Tensor, cl: int, length: int,
               missing: torch.Tensor, allowed) -> Match:
    """The start in ``feats`` (T, D) whose surroundings best match a gap's context.

    query: (cl + cr, D) features of the gap's context, ``cl`` frames before it and the rest
    after; weight: (cl + cr,) 1 for a known context frame, 0 for a missing one; length: the
    gap's frames; missing: (T,) bool, frames of ``feats`` that may be neither copied nor
    compared; allowed(starts (S,) long) -> (S,) bool: the caller's own rule on candidates.
    The score is the mean cosine over the gap's known context frames.
    """
    t, cr = feats.shape[0], query.shape[0] - cl
    if weight.sum() == 0 or t < length + cl + cr:
        return NO_MATCH
    g = feats @ (query * weight[:, None]).T                           # (T, cl + cr)
    g[missing] = 0.0
    left, right = _diagonal_sums(g[:, :cl]), _diagonal_sums(g[:, cl:])
    starts = torch.arange(cl, t - length - cr + 1)                    # candidate s
    score = (left[starts - cl] + right[starts + length]) / weight.sum()
    # a candidate may copy no missing frame
    holes = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(missing.long(), 0)])
    ok = (holes[starts + length] - holes[starts] == 0) & allowed(starts)
    if not ok.any():
        return NO_MATCH
    score = torch.where(ok, score, torch.full_like(score, -torch.inf))
    best = int(torch.argmax(score))
    return Match(int(starts[best]), float(score[best]))


def aligned_match(found: list[tuple[int, int, Match]], g0: int, g1: int) -> Match | None:
    """Of gaps already searched, ``(f0, f1, match)`` in song frames, the match of the one that
    overlaps frames [g0, g1), its start moved by g0 - f0 (the same stretch, aligned to g0);
    None when none or several overlap (gaps so close that their frames run together)."""
    hits = [(f0, match) for f0, f1, match in found if f0 < g1 and g0 < f1]
    if len(hits) != 1:
        return None
    f0, match = hits[0]
    return match if match.start < 0 else Match(match.start + g0 - f0, match.score)


def window_guide(song_mel: np.ndarray, feats: torch.Tensor, offset: int, columns: np.ndarray,
                 context: int, known: torch.Tensor | None = None,
                 found: list[tuple[int, int, Match]] | None = None) -> np.ndarray:
    """The guide of one window: each gap's best match from the whole song, in place.

    song_mel: (n_mels, T) normalised log-Mel of the song (maybe memory-mapped: only the
    copied frames are read); feats: its (T, D) search features; window frame f is song frame
    f + offset; columns: (T_win,) bool, the window's missing frames; found: matches already
    searched for the song's gaps (:func:`aligned_match`), taken instead of searching again
    (the window may place a gap's edge a frame off the song's). Returns float32
    (2, n_mels, T_win): channel 0 the matched source's Mel in every gap frame, channel 1
    the match score there; both 0 outside the gaps and for a gap without a match.
    """
    n_mels, t = song_mel.shape
    out = np.zeros((2, n_mels, len(columns)), dtype=np.float32)
    for a, b in gap_runs(columns):
        a2, b2 = max(a, -offset), min(b, t - offset)                 # the part inside the song
        if b2 <= a2:
            continue
        match = aligned_match(found, a2 + offset, b2 + offset) if found else None
        if match is None:
            match = find_match(feats, (a2 + offset, b2 + offset), context, known)
        if match.start < 0:
            continue
        start = min(max(match.start, 0), t - (b2 - a2))              # an aligned match may sit a frame off
        out[0, :, a2:b2] = song_mel[:, start:start + b2 - a2]
        out[1, :, a2:b2] = match.score
    return out
