"""Trainable parts of the learned vocoders, and loading them from their checkpoints.

- ``melspec2spec``: :class:`MagnitudeRefiner`, normalised log-Mel -> linear magnitude,
  a correction to the filterbank's pseudo-inverse (the mel-speech-reconstruction idea:
  the pseudo-inverse smears each Mel band flat across its bins; a network that has seen
  speech puts the harmonics and the band above ``f_max`` back).
- ``degli``: :class:`DeGLIDenoiser`, the trainable step of Deep Griffin-Lim (Masuyama et
  al., ICASSP 2019): ``x <- z - net(x, y, z)`` with ``y`` the magnitude projection of
  ``x`` and ``z`` the consistency projection (istft -> stft) of ``y``.

Both start as their classical counterpart (last layer zero-initialised), are trained by
``scripts/train_vocoder.py`` and are used by the vocoders of the same names through
``vocoder.checkpoint``: those are registered here, beside their nets, in the registry of the
classical ones (processors.vocoders.VOCODERS), so :func:`build_vocoder` builds any of them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import torch
from torch import nn

from processors.core.checkpoint_io import config_changes, load_checkpoint
from processors.core.config_io import from_dict
from processors.core.errors import UserError
from processors.core.registry import Registry
from processors.vocoders import LOG_FLOOR, VOCODERS, ContextGriffinLim, vocoder  # noqa: F401  (LOG_FLOOR: nets' floor)

VOCODER_NETS = Registry("vocoder net")   # vocoder method -> (network class, params dataclass)


def vocoder_net(name: str, params_cls: type):
    """Class decorator: ``@vocoder_net("degli", DeGLIParams)``."""
    return lambda cls: VOCODER_NETS.add(name, (cls, params_cls))[0]


@dataclass
class RefinerParams:
    channels: int = 256
    layers: int = 4              # residual blocks
    kernel: int = 5              # frames each convolution sees


@vocoder_net("melspec2spec", RefinerParams)
class MagnitudeRefiner(nn.Module):
    """(B, n_mels, T) normalised log-Mel and (B, F, T) pseudo-inverse magnitude ->
    (B, F, T) log magnitude, log(m + LOG_FLOOR).

    1-D convolutions over time with the bins as channels: the smearing the pseudo-inverse
    leaves differs from band to band, so each output bin gets its own weights.
    """

    def __init__(self, p: RefinerParams, n_mels: int, n_freq: int):
        super().__init__()
        pad = p.kernel // 2
        self.inp = nn.Conv1d(n_mels, p.channels, p.kernel, padding=pad)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.GELU(), nn.Conv1d(p.channels, p.channels, p.kernel, padding=pad),
                          nn.GELU(), nn.Conv1d(p.channels, p.channels, 1)) for _ in range(p.layers))
        self.out = nn.Conv1d(p.channels, n_freq, 1)
        nn.init.zeros_(self.out.weight)          # starts as the pseudo-inverse
        nn.init.zeros_(self.out.bias)

    def forward(self, norm_mel: torch.Tensor, pinv_magnitude: torch.Tensor) -> torch.Tensor:
        h = self.inp(norm_mel)
        for block in self.blocks:
            h = h + block(h)
        return torch.log(pinv_magnitude + LOG_FLOOR) + self.out(h)


@dataclass
class DeGLIParams:
    channels: int = 32
    layers: int = 3              # 3x3 convolutions over (frequency, time) before the output


@vocoder_net("degli", DeGLIParams)
class DeGLIDenoiser(nn.Module):
    """``forward(x, y, z, magnitude)`` -> the complex residual (F, T) to subtract from ``z``.

    x, y, z: complex (F, T); magnitude: (F, T). Inputs are divided by the magnitude's RMS
    and the output multiplied back, so the net works the same at every level.
    """

    def __init__(self, p: DeGLIParams, n_mels: int, n_freq: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(7, p.channels, 3, padding=1), nn.GELU()]
        for _ in range(p.layers - 1):
            layers += [nn.Conv2d(p.channels, p.channels, 3, padding=1), nn.GELU()]
        self.net = nn.Sequential(*layers)
        self.out = nn.Conv2d(p.channels, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)          # starts as plain Griffin-Lim
        nn.init.zeros_(self.out.bias)

    def forward(self, x, y, z, magnitude):
        scale = magnitude.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp(min=LOG_FLOOR)
        parts = [t / scale for t in (x, y, z)]
        feats = torch.stack([*(c for t in parts for c in (t.real, t.imag)),
                             torch.log(magnitude / scale + LOG_FLOOR)], dim=-3)
        out = self.out(self.net(feats))
        return torch.complex(out[..., 0, :, :], out[..., 1, :, :]) * scale


def build_vocoder_net(method: str, params: dict, audio) -> nn.Module:
    cls, params_cls = VOCODER_NETS[method]
    return cls(params_cls(**params), audio.n_mels, audio.n_fft // 2 + 1)


def validate_vocoder_params(method: str, params: dict, where: str) -> dict:
    """``vocoder.params`` checked against the net's dataclass (empty for the classical vocoders)."""
    if method not in VOCODER_NETS:
        if params:
            raise UserError(f"{where}: vocoder {method!r} has no params (only {', '.join(sorted(VOCODER_NETS))} do)")
        return params
    return dataclasses.asdict(from_dict(VOCODER_NETS[method][1], params, where))


def load_vocoder_net(method: str, path: str, audio) -> tuple[nn.Module, dict]:
    """The trained net of ``method`` from a ``scripts/train_vocoder.py`` checkpoint, in eval
    mode, and the ``vocoder`` section it was trained with (its Mel inverse, its params).

    UserError when the file is missing or unreadable, holds another method's net, or was
    trained for other audio settings (its Mels would not be this model's Mels).
    """
    if not path:
        raise UserError(f"vocoder.checkpoint: the {method!r} vocoder needs a trained net: give its file "
                        f"(--vocoder-checkpoint PATH in inference and evaluation), or train one with "
                        f"python scripts/train_vocoder.py --config configs/{method}_ljspeech.yaml")
    state = load_checkpoint(path)
    trained = state["config"].get("vocoder", {})
    if trained.get("method") != method:
        raise UserError(f"vocoder.checkpoint {path}: holds a {trained.get('method')!r} net, not {method!r}")
    changes = config_changes(state["config"].get("audio", {}), dataclasses.asdict(audio), "audio.")
    if changes:
        raise UserError(f"vocoder.checkpoint {path}: trained for other audio settings ({changes[0]})")
    net = build_vocoder_net(method, trained.get("params", {}), audio)
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"vocoder.checkpoint {path}: cannot load its weights ({str(exc).splitlines()[0]})") from exc
    return net.eval(), trained


def vocoder_checkpoints(paths: list[str] | None) -> dict[str, str]:
    """``{method: path}`` for ``--vocoder-checkpoint`` files, each routed by the method it was trained for."""
    out = {}
    for path in paths or []:
        method = load_checkpoint(path)["config"].get("vocoder", {}).get("method")
        if method not in VOCODER_NETS:
            raise UserError(f"--vocoder-checkpoint {path}: not a vocoder net (scripts/train_vocoder.py writes those); "
                            f"its config's vocoder is {method!r}")
        out[method] = str(path)
    return out


# --------------------------------------------------------------------------- the learned vocoders

@vocoder("melspec2spec")
def _melspec2spec(audio, v) -> nn.Module:
    """context_griffinlim on the magnitude of a trained :class:`MagnitudeRefiner`."""
    refiner, trained = load_vocoder_net("melspec2spec", v.checkpoint, audio)
    # the net corrects the inverse it was trained on, whatever vocoder.mel_inverse says
    return ContextGriffinLim(audio, v.n_iter, v.momentum, trained["mel_inverse"], refiner=refiner)


@vocoder("degli")
def _degli(audio, v) -> nn.Module:
    """context_griffinlim whose iterations are Deep Griffin-Lim's (a trained denoiser in each)."""
    return ContextGriffinLim(audio, v.n_iter, v.momentum, v.mel_inverse,
                             denoiser=load_vocoder_net("degli", v.checkpoint, audio)[0])


def build_vocoder(cfg) -> nn.Module:
    """The vocoder ``cfg.vocoder.method`` names (classical or learned), built for ``cfg.audio``."""
    return VOCODERS.lookup(cfg.vocoder.method, "vocoder.method")(cfg.audio, cfg.vocoder)
