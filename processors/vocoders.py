"""Pluggable vocoders: the normalised log-Mel of a gap's window -> the window's waveform.

Every vocoder is an ``nn.Module`` called as ``vocoder(mel, context, hole, seed=0) -> wave``:

- ``mel``: normalised log-Mel (n_mels, T), the inpainter's output for the window;
- ``context``: the window's observed waveform (N,) at the model's rate, N = (T - 1) * hop,
  with zeros in the gaps; None when there is none (train-time audio logging);
- ``hole``: bool (N,), True for the samples in a gap; every other sample of ``context``
  is true audio. None means nothing is known;
- ``detail`` (context vocoders only, ``takes_detail``): optional (N,), ``context`` with the
  hole filled by a waveform method, whose fine structure the fill keeps (:func:`detail_start`);
- returns the waveform (N,) at the model's rate; inpainting keeps only the gap's samples.

A vocoder whose ``joins_context`` is True continues the context sample for sample at
the hole's edges, so inpainting splices its fill without a fade (``inference.crossfade_ms``
is for the others: a fade from the silent gap hides their seam and dims the fill's edges).

``vocoder.method`` in the config picks one of :data:`VOCODERS`: the classical ones are
registered here, the learned ones ('melspec2spec', 'degli') where their nets are defined,
models.vocoder_nets, whose ``build_vocoder(cfg)`` builds any of them.
"""
from __future__ import annotations

import dataclasses
import math
import torch
import torchaudio.transforms as T
from torch import nn

from processors.core.registry import Registry
from processors.mel import MelInverse, amplitude_to_normalised, normalised_to_amplitude

VOCODERS = Registry("vocoder")   # name -> builder(audio config, vocoder config) -> nn.Module
vocoder = VOCODERS.register
PHASE_INITS = ("random", "copy", "advance", "own")
# detail_start ignores Mel gains within this many dB: where model and copy agree the copy is
# kept as it is (chosen on the music model's validation tracks, 1 and 3 s gaps: ViSQOL up
# 0.02-0.06 over no dead zone, gap LSD no worse than vocoding from the Mel; 6 dB and more cost LSD)
DETAIL_DEAD_ZONE_DB = 3.0
LOG_FLOOR = 1e-5   # the learned nets see magnitudes as log(m + LOG_FLOOR)


def with_vocoder(cfg, method: str, nets: dict[str, str] | None = None):
    """A copy of ``cfg`` whose vocoder.method is ``method`` (and vocoder.checkpoint its trained
    net from ``nets``, ``{method: path}``, for a learned vocoder)."""
    checkpoint = (nets or {}).get(method, cfg.vocoder.checkpoint)
    return dataclasses.replace(cfg, vocoder=dataclasses.replace(cfg.vocoder, method=method, checkpoint=checkpoint))


@vocoder("griffinlim")
def _griffinlim(audio, v) -> nn.Module:
    return MelToWave(audio, v.n_iter, v.momentum, v.mel_inverse)


@vocoder("context_griffinlim")
def _context_griffinlim(audio, v) -> nn.Module:
    return ContextGriffinLim(audio, v.n_iter, v.momentum, v.mel_inverse)


# --------------------------------------------------------------------------- plain Griffin-Lim

class MelToWave(nn.Module):
    """The 'griffinlim' vocoder: normalised log-Mel (n_mels, T) -> waveform ((T - 1) * hop,).

    Mel -> linear magnitude (:class:`MelInverse`), then torchaudio ``GriffinLim`` with
    momentum (fast Griffin-Lim) from a seeded random phase over the whole input. The
    vocoder interface also passes the window's waveform and its hole; plain
    Griffin-Lim ignores them (``context_griffinlim`` below uses them).
    """

    joins_context = False       # its fill ignores the context: inpainting fades it in and out

    def __init__(self, audio, n_iter: int = 32, momentum: float = 0.99, mel_inverse: str = "lstsq"):
        super().__init__()
        self.audio = audio
        self.inverse_mel = MelInverse(audio, mel_inverse)
        self.griffin_lim = T.GriffinLim(
            n_fft=audio.n_fft, n_iter=n_iter, win_length=audio.win_length,
            hop_length=audio.hop_length, window_fn=torch.hann_window, power=1.0,
            momentum=momentum, rand_init=True)

    def linear_magnitude(self, norm_mel: torch.Tensor) -> torch.Tensor:
        """(..., n_mels, frames) -> linear magnitude (..., n_fft/2+1, frames), >= 0."""
        return self.inverse_mel(normalised_to_amplitude(norm_mel, self.audio.min_db, self.audio.max_db))

    def forward(self, norm_mel: torch.Tensor, context: torch.Tensor | None = None,
                hole: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        # GriffinLim draws its initial phase from the global RNG: fork it so
        # vocoding is repeatable and does not disturb training's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.griffin_lim(self.linear_magnitude(norm_mel))


# --------------------------------------------------------------------------- pure functions

def stft(wave: torch.Tensor, audio, window: torch.Tensor) -> torch.Tensor:
    """(N,) -> complex (n_fft/2+1, N // hop + 1): the Mel's own analysis (Hann, centred, reflect)."""
    return torch.stft(wave, audio.n_fft, audio.hop_length, audio.win_length, window, center=True,
                      pad_mode="reflect", return_complex=True)


def istft(spec: torch.Tensor, audio, window: torch.Tensor) -> torch.Tensor:
    """complex (n_fft/2+1, L) -> ((L - 1) * hop,), sample 0 at the centre of frame 0."""
    return torch.istft(spec, audio.n_fft, audio.hop_length, audio.win_length, window, center=True)


def unknown_span(known: torch.Tensor, n_fft: int, hop: int) -> tuple[int, int] | None:
    """Frames [a, b) to iterate on: every unknown frame plus k = ceil(n_fft / hop) known ones
    on each side (clamped), or None when every frame is known.

    Why k: a sample is rebuilt from every frame within n_fft of it, so with k known frames
    on each side the inverse STFT of the slice gives the unknown frames exactly the samples
    a whole-window iteration would, and its outermost n_fft/2 samples are the true ones.
    """
    unknown = torch.nonzero(~known).flatten()
    if len(unknown) == 0:
        return None
    k = math.ceil(n_fft / hop)
    return max(0, int(unknown[0]) - k), min(len(known), int(unknown[-1]) + 1 + k)


def initial_phase(truth: torch.Tensor, known: torch.Tensor, init: str, hop: int, n_fft: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit phasors (F, L) to start from: the true phase on known frames; on unknown ones

    - 'random': uniform in [0, 2 pi);
    - 'copy': the nearest known frame's phase;
    - 'advance': the nearest known frame's phase, advanced by each bin's centre
      frequency over the frames between (2 pi k hop / n_fft per frame), which is
      exact for a steady partial at a bin centre;
    - 'own': ``truth``'s own phase on every frame (a start whose unknown frames are set).
    Without any known frame every init is 'random'. truth: complex (F, L); known: bool (L,).
    """
    F, L = truth.shape
    if init == "own":
        return torch.polar(torch.ones(F, L, dtype=torch.float64), truth.angle().double()).to(truth.dtype)
    phase = torch.rand(F, L, generator=generator, dtype=torch.float64) * (2 * math.pi)
    idx = torch.nonzero(known).flatten()
    if init != "random" and len(idx):
        frames = torch.arange(L)
        nearest = idx[(frames[:, None] - idx[None, :]).abs().argmin(dim=1)]     # (L,)
        phase = truth[:, nearest].angle().double()
        if init == "advance":
            step = 2 * math.pi * hop / n_fft * torch.arange(F, dtype=torch.float64)
            phase = phase + step[:, None] * (frames - nearest)[None, :].double()
    phase[:, known] = truth[:, known].angle().double()
    return torch.polar(torch.ones_like(phase), phase).to(truth.dtype)


def mel_gain_to_linear(gain_db: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Per-band gains (n_mels, L) in dB -> per-bin gains (F, L) in dB: each bin the
    filterbank-weighted mean of the bands over it; a bin outside every band (beyond f_max)
    takes its nearest covered bin's. fb: (F, n_mels), torchaudio's filterbank."""
    weight = fb.sum(dim=1)                                                   # (F,)
    covered = torch.nonzero(weight > 0).flatten()
    bins = torch.arange(len(weight))
    nearest = covered[(bins[:, None] - covered[None, :]).abs().argmin(dim=1)]
    return ((fb @ gain_db) / weight.clamp(min=1e-12)[:, None])[nearest]


def detail_start(norm_mel: torch.Tensor, detail_spec: torch.Tensor, fb: torch.Tensor, min_db: float,
                 max_db: float, dead_zone_db: float = DETAIL_DEAD_ZONE_DB) -> torch.Tensor:
    """The detail's complex STFT (F, L), each bin scaled by the dB gain that takes the
    detail's own Mel (fb (F, n_mels) applied to its magnitude, as processors.mel computes it)
    to the predicted one (``norm_mel``, normalised, (n_mels, L)), gains within
    ``dead_zone_db`` of 0 left out: the predicted envelope over the detail's harmonics,
    transients and phase. ``min_db``, ``max_db``: the normalisation's.

    Why: a Mel inverse has no harmonics above a few hundred Hz, so Griffin-Lim from it sounds
    smooth; a copy from elsewhere in the song has them, right where the song repeats, and
    the model's envelope corrects it where it does not.
    """
    detail_mel = amplitude_to_normalised(fb.T @ detail_spec.abs(), min_db, max_db)
    gain = (norm_mel - detail_mel) * (max_db - min_db)
    gain = torch.sign(gain) * (gain.abs() - dead_zone_db).clamp(min=0.0)
    return detail_spec * 10.0 ** (mel_gain_to_linear(gain, fb) / 20.0)


def known_frames(hole: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """bool (N // hop + 1,): the centred frames whose analysis window, samples
    [t * hop - n_fft/2, t * hop + n_fft/2), holds no ``hole`` sample (bool (N,)); as
    ``processors.gaps.gap_frames``, whose frames are the complement for a single gap."""
    half = n_fft // 2
    padded = torch.cat([torch.zeros(half), hole.float(), torch.zeros(half)])
    frames = len(hole) // hop + 1
    return padded[:(frames - 1) * hop + n_fft].unfold(0, n_fft, hop).amax(dim=1) == 0


def context_griffin_lim(magnitude: torch.Tensor, truth: torch.Tensor, known: torch.Tensor, audio,
                        window: torch.Tensor, n_iter: int, momentum: float, init: str = "advance",
                        generator: torch.Generator | None = None,
                        hold: tuple[torch.Tensor, torch.Tensor] | None = None,
                        denoiser: nn.Module | None = None) -> torch.Tensor:
    """Fast Griffin-Lim with known frames: complex spectrogram (F, L) whose known columns
    are exactly ``truth``.

    magnitude: linear magnitude (F, L) for the unknown frames (ignored on known ones);
    truth: the observed complex STFT (F, L); known: bool (L,); hold: optional
    (mask, samples), both ((L - 1) * hop,), samples known in the time domain. Each
    iteration is istft -> (known samples reset to ``samples``) -> stft -> momentum
    (Perraudin et al. 2013, as torchaudio's ``griffinlim``) -> unit phase x magnitude,
    then the known frames are reset to ``truth``, so the fill's phase stays consistent
    with the true context around it.

    With a ``denoiser`` (models.vocoder_nets.DeGLIDenoiser) each iteration is Deep
    Griffin-Lim's instead of the momentum step: ``x <- z - denoiser(x, y, z, magnitude)``,
    y the magnitude projection of x and z its istft -> stft; the unknown frames of the
    result are the last x, whose magnitude is the net's too.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    alpha = momentum / (1 + momentum)
    angles = initial_phase(truth, known, init, audio.hop_length, audio.n_fft, generator)
    spec = torch.where(known[None, :], truth, magnitude * angles)
    previous, x = torch.zeros_like(spec), spec
    for _ in range(n_iter):
        wave = istft(spec, audio, window)
        if hold is not None:
            wave = torch.where(hold[0], hold[1], wave)
        rebuilt = stft(wave, audio, window)
        if denoiser is not None:
            x = angles = rebuilt - denoiser(x, spec, rebuilt, magnitude)
        else:
            angles = rebuilt - alpha * previous
            previous = rebuilt
        angles = angles / (angles.abs() + 1e-16)
        spec = torch.where(known[None, :], truth, magnitude * angles)
    return spec if denoiser is None else torch.where(known[None, :], truth, x)


class ContextGriffinLim(nn.Module):
    """The 'context_griffinlim' vocoder: Griffin-Lim on the gap's frames only, started from
    and held to the true STFT of the known context (see :func:`context_griffin_lim`).

    Frames whose window touches the hole are unknown (:func:`known_frames`); only frames
    [first unknown - k, last unknown + k] are iterated (:func:`unknown_span`), so the cost
    grows with the gap, not the window. ``hold_samples`` also resets every sample outside
    the hole in every iteration; they, and every sample no unknown frame reaches, are the
    context bit for bit in the output. With a ``detail`` waveform the unknown frames start
    from :func:`detail_start` (magnitude and phase) instead of the Mel inverse.
    ``init`` is the unknown frames' start phase (:func:`initial_phase`). The learned
    vocoders are this one with a trained ``refiner`` of the Mel-inverted magnitude
    ('melspec2spec') or ``denoiser`` in each iteration ('degli'), models.vocoder_nets.
    """

    takes_detail = True

    def __init__(self, audio, n_iter: int = 32, momentum: float = 0.99, mel_inverse: str = "lstsq",
                 init: str = "advance", hold_samples: bool = True, refiner: nn.Module | None = None,
                 denoiser: nn.Module | None = None):
        super().__init__()
        if init not in PHASE_INITS:
            raise ValueError(f"unknown phase init {init!r} (known: {', '.join(PHASE_INITS)})")
        self.audio, self.n_iter, self.momentum = audio, n_iter, momentum
        self.init, self.hold_samples = init, hold_samples
        self.joins_context = hold_samples          # every sample outside the hole is the context's
        self.inverse_mel = MelInverse(audio, mel_inverse)
        self.refiner, self.denoiser = refiner, denoiser
        self.register_buffer("window", torch.hann_window(audio.win_length))

    def linear_magnitude(self, norm_mel: torch.Tensor) -> torch.Tensor:
        """(n_mels, L) normalised log-Mel -> (n_fft/2+1, L) linear magnitude, >= 0."""
        magnitude = self.inverse_mel(normalised_to_amplitude(norm_mel, self.audio.min_db, self.audio.max_db))
        if self.refiner is None:
            return magnitude
        return (torch.exp(self.refiner(norm_mel[None], magnitude[None])[0]) - LOG_FLOOR).clamp(min=0.0)

    @torch.no_grad()
    def forward(self, norm_mel: torch.Tensor, context: torch.Tensor | None = None,
                hole: torch.Tensor | None = None, seed: int = 0, detail: torch.Tensor | None = None) -> torch.Tensor:
        a, hop = self.audio, self.audio.hop_length
        frames = norm_mel.shape[-1]
        n = (frames - 1) * hop
        context = torch.zeros(n) if context is None else context.float()
        hole = torch.ones(n, dtype=torch.bool) if hole is None else hole.bool()
        if context.shape != (n,) or hole.shape != (n,):
            raise ValueError(f"context {tuple(context.shape)} / hole {tuple(hole.shape)} do not match "
                             f"{frames} frames: expected ({n},)")
        known = known_frames(hole, a.n_fft, hop)
        span = unknown_span(known, a.n_fft, hop)
        if span is None:
            return context.clone()
        lo, hi = span
        samples = slice(lo * hop, (hi - 1) * hop)
        surely_known = ~hole[samples] if self.hold_samples else None
        # the Mel inverses work frame by frame: invert the span alone, unless a refiner's
        # convolutions need the frames around it
        truth, init = stft(context, a, self.window)[:, lo:hi], self.init
        if detail is None:
            magnitude = (self.linear_magnitude(norm_mel)[:, lo:hi] if self.refiner is not None
                         else self.linear_magnitude(norm_mel[:, lo:hi]))
        else:
            shaped = detail_start(norm_mel[:, lo:hi], stft(detail.float(), a, self.window)[:, lo:hi],
                                  self.inverse_mel.fb, a.min_db, a.max_db)
            truth, init = torch.where(known[lo:hi][None, :], truth, shaped), "own"
            magnitude = truth.abs()
        spec = context_griffin_lim(
            magnitude, truth, known[lo:hi], a,
            self.window, self.n_iter, self.momentum, init, torch.Generator().manual_seed(seed),
            None if surely_known is None else (surely_known, context[samples]), self.denoiser)
        wave = istft(spec, a, self.window)
        if surely_known is not None:
            wave = torch.where(surely_known, context[samples], wave)
        # write back only the samples some unknown frame reaches: elsewhere the inverse
        # STFT of true frames equals the context only up to rounding
        unknown = torch.nonzero(~known).flatten()
        first = max(lo * hop, int(unknown[0]) * hop - a.n_fft // 2)
        last = min((hi - 1) * hop, int(unknown[-1]) * hop + a.n_fft // 2)
        out = context.clone()
        out[first:last] = wave[first - lo * hop:last - lo * hop]
        return out
