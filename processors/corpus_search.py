"""Corpus search: a speech gap's guide copied from other recordings of the same voice.

A sentence rarely repeats itself, but a speaker does: across half an hour of one voice,
the stretch whose surroundings best match a gap's context is often the same kind of sound
in the same setting (a vowel between the same two consonants). Copied into the gap it is
real, sharp speech, where a network trained on a regression loss predicts a blur; on the
speech validation files, that copy alone (through the same vocoder) rated PLCMOS 4.25 /
4.23 at 200 / 400 ms, against the plain network's 4.19 / 4.06 (lab notebook, "Speech: a
guide from the training corpus").

The corpus is the training clips' normalised log-Mels quantised to one byte (1/255 of the
range), concatenated with one all-zero frame between clips; a match and the context it is
compared on never run over such a frame, so both come from one clip. The search is the similarity
search's (processors.similarity.best_match) over the corpus instead of the song, with the
features centred on the corpus' mean, so a window's frames compare as the corpus' do.
"""
from __future__ import annotations

import numpy as np
import torch

from processors.gaps import gap_runs
from processors.similarity import Match, best_match, pooled_bands, unit_frames


def quantise_corpus(mels: list[np.ndarray], max_frames: int = 0) -> tuple[torch.Tensor, list]:
    """Clips' normalised log-Mels [(n_mels, T_i)] -> (uint8 (n_mels, T), each clip's frame
    span (a, b) in it, or None for a clip left out). Clips are taken in order, one zero frame
    between them; a clip that would take the corpus over ``max_frames`` is left out and the
    next ones are still tried (0: no limit; the first clip is always taken). Values are
    clipped to [0, 1]."""
    n_mels = mels[0].shape[0]
    sep = np.zeros((n_mels, 1), dtype=np.uint8)
    parts, spans, pos = [], [], 0
    for m in mels:
        start = pos + bool(parts)
        if parts and max_frames and start + m.shape[1] > max_frames:
            spans.append(None)
            continue
        if parts:
            parts.append(sep)
        parts.append(np.round(np.clip(np.asarray(m, dtype=np.float32), 0.0, 1.0) * 255).astype(np.uint8))
        spans.append((start, start + m.shape[1]))
        pos = start + m.shape[1]
    return torch.from_numpy(np.concatenate(parts, axis=1)), spans


def gated_copy(pred: torch.Tensor, guide: torch.Tensor, columns: np.ndarray, min_score: float,
               pull: float = 0.0) -> torch.Tensor:
    """The network's fill with a close match copied over it.

    pred: (n_mels, T) the network's log-Mel; guide: (3, n_mels, T) from
    :meth:`CorpusSearch.guide` with ``level``; columns: (T,) bool, the missing frames. Each run
    of missing frames whose match scores at least ``min_score`` takes the match's leveled Mel,
    with each band's mean over the run moved ``pull`` of the way to the network's (a gain
    constant in time: the copy keeps its own dynamics, and its level comes nearer the truth's
    on average). Returns (n_mels, T); every other frame is ``pred``'s.
    """
    out = pred.clone()
    for g0, g1 in gap_runs(columns):
        if float(guide[1, 0, g0]) < min_score:
            continue
        copy = guide[0, :, g0:g1] + guide[2, :, g0:g1]
        out[:, g0:g1] = copy + pull * (pred[:, g0:g1].mean(1, keepdim=True) - copy.mean(1, keepdim=True))
    return out


class CorpusSearch:
    """Search one quantised corpus (uint8 (n_mels, T) from :func:`quantise_corpus`).

    ``bands``: the log-Mel pooled into this many bands for the search; ``context``: frames
    compared on each side of a gap.
    """

    def __init__(self, corpus: torch.Tensor, bands: int, context: int):
        self.mel = corpus.to(torch.float32) / 255.0                       # (n_mels, T)
        self.missing = corpus.amax(0) == 0                                # separators (and digital silence)
        pooled = pooled_bands(self.mel, bands)
        self.mean = pooled[~self.missing].mean(0, keepdim=True)
        self.feats = unit_frames(pooled - self.mean)                      # (T, bands)
        self.bands, self.context = bands, context

    def match(self, window: torch.Tensor, columns: np.ndarray, gap: tuple[int, int],
              exclude: tuple[int, int] | None = None) -> Match:
        """The corpus stretch that fits frames [g0, g1) of ``window`` (n_mels, T_win), a
        normalised log-Mel whose ``columns`` (T_win,) bool are missing; never one that copies
        or compares a frame of corpus span ``exclude`` (a training crop's own clip)."""
        g0, g1 = gap
        cl, cr = min(self.context, g0), min(self.context, window.shape[1] - g1)
        query = unit_frames(pooled_bands(torch.cat([window[:, g0 - cl:g0], window[:, g1:g1 + cr]], 1),
                                         self.bands) - self.mean)
        weight = torch.from_numpy(~np.concatenate([columns[g0 - cl:g0], columns[g1:g1 + cr]])).float()
        missing, length = self.missing, g1 - g0
        if exclude is not None:
            missing = missing.clone()
            missing[exclude[0]:exclude[1]] = True
        # the copy and the context it is compared on lie inside one clip: a context that ran
        # over a separator into the next clip would score a match the clip does not hold
        holes = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(missing.long(), 0)])
        return best_match(self.feats, query, weight, cl, length, missing,
                          lambda starts: holes[starts + length + cr] - holes[starts - cl] == 0)

    def guide(self, window: torch.Tensor, columns: np.ndarray, exclude: tuple[int, int] | None = None,
              level: bool = False) -> torch.Tensor:
        """The guide (2, n_mels, T_win) of a window (n_mels, T_win) whose ``columns`` (T_win,)
        bool are missing: in each gap, the best match's Mel (channel 0) and its score
        (channel 1), as processors.similarity.window_guide; 0 elsewhere and without a match.
        With ``level`` a third channel holds what brings the copy to the window's level
        (:meth:`level_offset`), from the same search."""
        out = torch.zeros((2 + level, *window.shape), dtype=torch.float32)
        for g0, g1 in gap_runs(columns):
            match = self.match(window, columns, (g0, g1), exclude)
            if match.start < 0:
                continue
            out[0, :, g0:g1] = self.mel[:, match.start:match.start + g1 - g0]
            if level:
                out[2, :, g0:g1] = self.level_offset(window, columns, (g0, g1), match.start)
            out[1, :, g0:g1] = match.score
        return out

    def level_offset(self, window: torch.Tensor, columns: np.ndarray, gap: tuple[int, int], start: int) -> torch.Tensor:
        """(n_mels, g1 - g0): per band, the window's context minus the match's own context
        (mean over the compared frames known on both sides), on the left and on the right of
        the gap, ramped linearly from one to the other across it. Another recording of the
        same sound is seldom at the same loudness; a copy at its own level leaves a step at
        the gap's edges that the spectrum distance and PESQ count."""
        g0, g1 = gap
        length, t = g1 - g0, self.mel.shape[1]
        sides = []
        for w0, c0, n in ((g0 - self.context, start - self.context, self.context),
                          (g1, start + length, self.context)):
            idx = [i for i in range(n) if 0 <= w0 + i < window.shape[1] and not columns[w0 + i]
                   and 0 <= c0 + i < t and not self.missing[c0 + i]]
            sides.append((window[:, [w0 + i for i in idx]] - self.mel[:, [c0 + i for i in idx]]).mean(1)
                         if idx else None)
        left, right = sides
        if left is None and right is None:
            return torch.zeros(window.shape[0], length)
        left = right if left is None else left
        right = left if right is None else right
        w = (torch.arange(length, dtype=torch.float32) + 0.5) / length
        return left[:, None] * (1 - w) + right[:, None] * w
