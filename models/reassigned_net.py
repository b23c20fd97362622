"""The learned inverse of the reassigned spectrogram: a correction of the classical one.

``learned`` (processors.reassigned_inverse.INVERSIONS) runs ``pghi_reassigned`` for the
``classical_iter`` iterations its net was trained after, then one more projection of
reassigned Griffin-Lim in which :class:`PhaseCorrector` turns each bin's phase by a learned
angle, then ``n_iter`` more iterations of reassigned Griffin-Lim (a few: the net's phase
is the better start for them; alone it is not quite consistent with the magnitude). The net sees only relative quantities
(processors.reassigned_features), has no notion of absolute phase or sign, and starts as the
classical projection (its last layer is zero), so it can only learn what the projection
misses on real speech; ``scripts/train_reassigned.py`` trains it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from processors.core.checkpoint_io import load_checkpoint
from processors.core.config_io import from_dict
from processors.core.errors import UserError
from processors.reassigned import signal_length
from processors.reassigned_features import N_FEATURES, correction_inputs
from processors.reassigned_gl import reassigned_griffin_lim, unit_windows
from processors.reassigned_inverse import inversion, pghi_phase, reassigned_iterations, phase_derivatives


@dataclass
class CorrectorParams:
    channels: int = 24
    dilations: list = dataclasses.field(default_factory=lambda: [1, 2, 4, 8, 1])   # in time, one per block
    max_turn: float = 1.0        # the largest correction, in units of pi


class PhaseCorrector(nn.Module):
    """(B, N_FEATURES, F, T) -> (B, F, T) phase corrections in radians, at most max_turn * pi.

    Residual blocks of 3 x 3 convolutions over (frequency, time), dilated in time so that a
    bin sees +-18 frames (22.5 ms at the published settings) with the default dilations.
    """

    def __init__(self, p: CorrectorParams):
        super().__init__()
        c = p.channels
        self.max_turn = p.max_turn
        self.inp = nn.Conv2d(N_FEATURES, c, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.GELU(), nn.Conv2d(c, c, 3, padding=(1, d), dilation=(1, d)), nn.GELU(),
                          nn.Conv2d(c, c, 1)) for d in p.dilations)
        self.out = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)          # starts as the classical projection
        nn.init.zeros_(self.out.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.inp(features)
        for block in self.blocks:
            h = h + block(h)
        return math.pi * self.max_turn * torch.tanh(self.out(h)[:, 0])


def validate_net_params(params: dict, where: str) -> dict:
    p = from_dict(CorrectorParams, params, where)
    if not p.dilations or not all(isinstance(d, int) and d >= 1 for d in p.dilations):
        raise UserError(f"{where}.dilations: need integers >= 1, got {p.dilations!r}")
    if p.channels < 1 or not 0 < p.max_turn <= 1:
        raise UserError(f"{where}: need channels >= 1 and 0 < max_turn <= 1")
    return dataclasses.asdict(p)


# --------------------------------------------------------------------------- synthesis (torch)

def corrected_triple(theta, zd, zt, mags, g_d, g_t, use_d, use_t):
    """The projection's triple (B, 3, F, T) complex with each bin's phase ``theta`` (B, F, T):
    S_h = M e^{i theta}, and S_dh, S_th meeting the reassignment where it is defined (as
    processors.reassigned_gl.Targets.project does for its own theta)."""
    unit = torch.polar(torch.ones_like(theta), theta)
    sd = unit * torch.complex((zd * unit.conj()).real, g_d)
    st = unit * torch.complex(g_t, (zt * unit.conj()).imag)
    sd = torch.where(use_d > 0, sd, zd)
    st = torch.where(use_t > 0, st, zt)
    return torch.stack([mags * unit, sd, st], dim=1)


def synthesise(triples: torch.Tensor, windows: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, W, F, T) STFTs with ``windows`` (W, n) -> (B, (T - 1) hop + n): their least-squares
    signal (processors.reassigned.istfts for center=False, differentiable)."""
    n = windows.shape[-1]
    frames = torch.fft.irfft(triples.transpose(-1, -2), n=n)                  # (B, W, T, n)
    frames = (frames * windows[None, :, None, :]).sum(dim=1)                 # (B, T, n)
    count = frames.shape[1]
    size = (count - 1) * hop + n
    fold = lambda x: nn.functional.fold(x, (1, size), (1, n), stride=(1, hop))[:, 0, 0]
    out = fold(frames.transpose(1, 2))
    norm = fold((windows ** 2).sum(0)[None, :, None].expand(1, n, count).contiguous())
    return out / norm.clamp(min=1e-10)


def analysis_stft(wave: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, N) -> (B, F, T): the analysis STFT (center=False), differentiable."""
    frames = wave.unfold(-1, window.shape[0], hop) * window
    return torch.fft.rfft(frames, dim=-1).transpose(-1, -2)


# --------------------------------------------------------------------------- the learned inversion

_NETS: dict[str, tuple[PhaseCorrector, dict]] = {}


def load_corrector(path: str, rc) -> tuple[PhaseCorrector, dict]:
    """The trained net and the ``reassigned`` section it was trained with (UserError when the file
    is missing, not such a net, or trained for other analysis settings)."""
    if not path:
        raise UserError("reassigned.checkpoint: the 'learned' inversion needs a trained net; train one with "
                        "python scripts/train_reassigned.py --config configs/reassigned_ljspeech.yaml")
    if path not in _NETS:
        state = load_checkpoint(path)
        trained = state.get("config", {}).get("reassigned")
        if not trained or state.get("kind") != "reassigned_corrector":
            raise UserError(f"reassigned.checkpoint {path}: not a learned reassigned inverse (scripts/train_reassigned.py)")
        net = PhaseCorrector(CorrectorParams(**trained["params"]))
        net.load_state_dict(state["model"])
        _NETS[path] = (net.eval(), trained)
    net, trained = _NETS[path]
    for key in ("sample_rate", "n_fft", "win_length", "hop_length", "window", "center", "ref_power", "clip"):
        if trained[key] != getattr(rc, key):
            raise UserError(f"reassigned.checkpoint {path}: trained for reassigned.{key}={trained[key]!r}, "
                            f"not {getattr(rc, key)!r}")
    return net, trained


def apply_corrector(net: PhaseCorrector, inputs: dict, rc) -> np.ndarray:
    """The wave of the net-corrected projection, from :func:`correction_inputs`' arrays."""
    t = {k: torch.from_numpy(v)[None] for k, v in inputs.items()}
    with torch.no_grad():
        theta = t["theta"] + net(t["features"])
        triple = corrected_triple(theta, t["zd"], t["zt"], t["mags"], t["g_d"], t["g_t"], t["use_d"], t["use_t"])
        wave = synthesise(triple, torch.from_numpy(unit_windows(rc)).float(), rc.hop_length)[0]
    return wave.double().numpy()


@inversion("learned")
def _learned(r, rc, seed: int = 0) -> np.ndarray:
    if rc.center:
        raise UserError("reassigned.center: the learned inverse supports center=False only")
    net, trained = load_corrector(rc.checkpoint, rc)
    wave = reassigned_iterations(r, rc, pghi_phase(r, rc, True, seed), trained["classical_iter"])
    dm, dk = phase_derivatives(r, rc)
    out = apply_corrector(net, correction_inputs(wave, r, rc, dm, dk), rc)
    out = np.pad(out, (0, max(0, signal_length(r.mags.shape[1], rc) - len(out))))
    return reassigned_griffin_lim(r, rc, rc.n_iter, rc.momentum, wave=out)
