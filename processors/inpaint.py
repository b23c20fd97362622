"""Inpainting a waveform: each gap is filled from a crop-sized Mel window around it.

Cost depends on the number of gaps, not the file's length: only a window of
``crop_frames`` Mel frames around each gap is resampled, inpainted and vocoded,
and only the gap's own samples are replaced.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from processors.audio_io import resample, to_mono
from processors.core.errors import UserError
from processors.corpus_search import gated_copy
from processors.gaps import gap_frames, splice
from processors.lpc import lpc_edges, lpc_sizes
from processors.similarity_fill import gap_matches, similarity_wave_fill, song_guide, song_search

# samples either side of a gap that torchaudio's sinc resampler (6 zero crossings of
# the lower rate) lets the gap's zeros reach, in units of the lower rate's samples
RESAMPLE_REACH = 8


@dataclass
class GapWindow:
    """Where one gap's crop window sits in the original file."""
    start: int            # window start, original-rate samples (>= 0; the window may run past the file's end)
    length: int           # window length, original-rate samples


def _fmt(samples: int, sr: int) -> str:
    return f"{samples / sr:.3f} s"


def window_samples(cfg) -> int:
    """Length in samples, at the model's rate, of the crop window a gap is filled from:
    ``crop_frames`` centred frames span ``(crop_frames - 1) * hop_length`` samples."""
    return (cfg.data.crop_frames - 1) * cfg.audio.hop_length


def longest_gap_ms(cfg, spare_frames: int = 0) -> float:
    """Longest gap a window holds: its frames (at most ceil((g + n_fft) / hop)) must fit
    between the crop's margins, less ``spare_frames`` (1: room for rounding at any position)."""
    a = cfg.audio
    frames = cfg.data.crop_frames - 2 * cfg.data.mask.margin_frames - spare_frames
    return (frames * a.hop_length - a.n_fft) * 1000.0 / a.sample_rate


def check_gap_fits(ms: float, cfg, who: str) -> None:
    """UserError ``--gap-ms <ms>: ...`` unless a gap of ``ms`` milliseconds is at least one sample
    at ``cfg``'s rate and fits ``who``'s window at any position (``longest_gap_ms`` with one
    frame spare for rounding)."""
    if round(ms * cfg.audio.sample_rate / 1000) < 1:
        raise UserError(f"--gap-ms {ms:g}: shorter than one sample at {cfg.audio.sample_rate} Hz")
    longest = longest_gap_ms(cfg, spare_frames=1)
    if ms > longest:
        raise UserError(f"--gap-ms {ms:g}: {who} fills gaps of at most {longest:.0f} ms "
                        f"(crop_frames={cfg.data.crop_frames})")


def locate(gap: tuple[int, int], n_samples: int, sr: int, cfg) -> GapWindow:
    """The crop window centred on ``gap`` (clamped to the file), or a UserError if the
    gap has too little context on either side or is longer than the model can fill."""
    a, crop, margin = cfg.audio, cfg.data.crop_frames, cfg.data.mask.margin_frames
    length = math.ceil(window_samples(cfg) * (sr / a.sample_rate))
    s, e = gap
    where = f"gap {_fmt(s, sr)}-{_fmt(e, sr)}"
    start = (s + e) // 2 - length // 2
    start = max(0, min(start, n_samples - length)) if n_samples >= length else 0
    to_model = a.sample_rate / sr
    frames = gap_frames(int((s - start) * to_model), math.ceil((e - start) * to_model),
                        a.hop_length, a.n_fft, crop)
    if frames[1] - frames[0] > crop - 2 * margin:
        raise UserError(f"{where} is longer than this model can fill (at most {longest_gap_ms(cfg):.0f} ms)")
    if s == 0 or frames[0] < margin:
        raise UserError(f"{where} touches the start of the file: the model needs context before a gap")
    if e >= n_samples or frames[1] > crop - margin:
        raise UserError(f"{where} touches the end of the file: the model needs context after a gap")
    return GapWindow(start, length)


def window_wave(mono: np.ndarray, sr: int, win: GapWindow, cfg) -> torch.Tensor:
    """The window's waveform (window_samples(cfg),) at the model's rate, zero beyond the file."""
    a = cfg.audio
    segment = np.zeros(win.length, dtype=np.float32)
    lo, hi = win.start, min(len(mono), win.start + win.length)          # locate keeps start >= 0
    segment[lo - win.start:hi - win.start] = mono[lo:hi]
    wave = resample(segment, sr, a.sample_rate)
    n = window_samples(cfg)
    return torch.from_numpy(np.ascontiguousarray(np.pad(wave, (0, max(0, n - len(wave))))[:n]))


def window_mels(mono: np.ndarray, sr: int, win: GapWindow, cfg, mel_fn) -> torch.Tensor:
    """Normalised log-Mel (n_mels, crop_frames) of the window, at the model's rate."""
    with torch.no_grad():
        return mel_fn(window_wave(mono, sr, win, cfg))


@torch.no_grad()
def inpaint_audio(samples: np.ndarray, sr: int, gaps: list[tuple[int, int]], model, cfg,
                  mel_fn, vocoder) -> tuple[np.ndarray, list[dict]]:
    """Fill every gap of ``samples`` (N,) or (N, C) at rate ``sr``.

    ``vocoder(pred_mel, context, hole) -> wave`` (processors.vocoders) gets the window's
    waveform at the model's rate and which of its samples lie in a gap; its fill is faded
    in and out over ``inference.crossfade_ms`` unless the vocoder ``joins_context``. A model
    that ``takes_guide`` also gets each window's similarity guide, searched over the whole
    recording (its Mel is computed once; each gap adds one search), and with
    ``inference.guide_detail`` its fill keeps the matched stretch's fine structure under
    the model's Mel envelope (the vocoder's ``detail``). With ``inference.lpc_hold_ms`` /
    ``lpc_fade_ms`` the fill's edges are the context's linear prediction
    (processors.lpc.lpc_edges). With ``inference.stereo: per_channel`` every channel is
    filled on its own.

    Returns the filled copy (same shape and dtype; samples outside the gaps are
    bit-identical) and, per gap, the window's masked, predicted Mel and mask (each
    (n_mels, crop_frames)) for figures and metrics.
    """
    if not gaps:
        raise UserError("no gap to fill")
    if samples.ndim == 2 and samples.shape[1] > 1 and cfg.inference.stereo == "per_channel":
        out, details = samples.copy(), []
        for c in range(samples.shape[1]):       # each channel from its own context: twice the cost
            out[:, c], channel_details = inpaint_audio(np.ascontiguousarray(samples[:, c]), sr, gaps, model, cfg,
                                                        mel_fn, vocoder)
            details = details or channel_details
        return out, details
    mono = to_mono(samples).astype(np.float32)
    a, fill = cfg.audio, cfg.data.mask.fill_value
    windows = [locate(g, len(mono), sr, cfg) for g in gaps]
    n = window_samples(cfg)
    # resampling smears a gap's zeros a few samples into its context: those are not true audio
    smear = 0 if sr == a.sample_rate else math.ceil(RESAMPLE_REACH * max(1.0, a.sample_rate / sr))
    hold, lpc_fade = (round(ms * sr / 1000) for ms in (cfg.inference.lpc_hold_ms, cfg.inference.lpc_fade_ms))
    # a fill that continues the context (a context vocoder's, or LPC's at its edges) needs no
    # fade; a fade from the silent gap would dim its edges
    edges = hold + lpc_fade > 0
    fade = 0 if edges or getattr(vocoder, "joins_context", False) else int(cfg.inference.crossfade_ms * sr / 1000)
    n_ctx, order = lpc_sizes(sr)
    search = song_search(mono, sr, gaps, cfg, mel_fn) if getattr(model, "takes_guide", False) else None
    copy_score = cfg.inference.corpus_copy_score if getattr(model, "searches_corpus", False) else 0.0
    copied = found = None
    if search is not None and cfg.inference.guide_detail:
        if not getattr(vocoder, "takes_detail", False):
            raise UserError(f"inference.guide_detail: the {cfg.vocoder.method} vocoder cannot keep a copy's "
                            f"detail; use context_griffinlim (or set inference.guide_detail=false)")
        # one search per gap for the copy and the guide alike: the model's envelope must shape
        # the very stretch it was shown (a window can place a gap's edge a frame off the song's)
        found = gap_matches(search, gaps, sr, cfg)
        copied = similarity_wave_fill(mono, sr, gaps, cfg, mel_fn, search, found)[0]
    out, details = samples, []
    for (s, e), win in zip(gaps, windows):
        context = window_wave(mono, sr, win, cfg)
        mel = mel_fn(context)
        mask = torch.zeros_like(mel)
        hole = torch.zeros(n, dtype=torch.bool)
        for s2, e2 in gaps:                           # every gap inside this window is unknown
            lo = int((s2 - win.start) * a.sample_rate / sr)
            hi = math.ceil((e2 - win.start) * a.sample_rate / sr)
            if hi > 0 and lo < n:
                f0, f1 = gap_frames(lo, hi, a.hop_length, a.n_fft, cfg.data.crop_frames)
                mask[:, f0:f1] = 1.0
                hole[max(0, lo - smear):hi + smear] = True
        masked = mel * (1 - mask) + fill * mask
        extra = {}
        if search is not None:
            guide = song_guide(search, win.start, sr, cfg, mask[0].numpy() > 0.5, found)
            extra["guide"] = torch.from_numpy(guide)[None]
        # a gap long enough may take a close match from the corpus instead of the network's fill
        copies = copy_score > 0 and (e - s) * 1000 >= cfg.inference.corpus_copy_min_ms * sr
        if copies:                    # one corpus search for the network's input and the copy alike
            extra["guide"] = model.corpus_guide(masked[None, None], mask[None, None], level=True)
        pred = model(masked[None, None], mask[None, None], **extra)[0, 0].float()
        if copies:
            pred = gated_copy(pred, extra["guide"][0], mask[0].numpy() > 0.5, copy_score,
                              cfg.inference.corpus_copy_pull)
        # context vocoders keep the true audio around the hole and the frames clear of it
        if copied is None:
            wave = vocoder(pred, context, hole).numpy()
        else:
            wave = vocoder(pred, context, hole, detail=window_wave(copied, sr, win, cfg)).numpy()
        wave = resample(wave, a.sample_rate, sr)
        piece = np.zeros(e - s, dtype=np.float32)
        avail = wave[s - win.start:e - win.start]
        piece[:len(avail)] = avail
        if edges:                     # the prediction fits true context only: stop at a neighbouring gap
            first = max([s - n_ctx, 0] + [e2 for s2, e2 in gaps if e2 <= s])
            last = min([e + n_ctx, len(mono)] + [s2 for s2, e2 in gaps if s2 >= e])
            piece = lpc_edges(piece, mono[first:s], mono[e:last], hold, lpc_fade, order)
        out = splice(out, piece, s, e, fade)
        details.append({"masked": masked.numpy(), "pred": pred.numpy(), "mask": mask.numpy()})
    return out, details
