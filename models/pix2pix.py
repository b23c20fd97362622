"""Pix2Pix: the U-Net inpainter as generator, trained against a PatchGAN discriminator.

Inference uses the generator alone. In training the ``"model"`` optimiser trains the
generator on the configured loss (``loss.weights``: L1/MSE on the gap ...) plus
``adversarial`` (the generator's non-saturating GAN term); the ``"discriminator"``
optimiser trains the discriminator on its own loss (:meth:`aux_losses`). Both
networks are submodules, so the checkpoint's ``model`` holds both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import Inpainter, register
from models.unet import UNetInpainter, UNetParams


@dataclass
class Pix2PixParams(UNetParams):
    """The generator's params (every field of models.unet.UNetParams) and the discriminator's."""
    residual_interp: bool = True  # the generator corrects linear interpolation
    disc_channels: int = 32       # discriminator: width of its first layer
    disc_layers: int = 3          # stride-2 convolutions: each halves the patch map


class PatchDiscriminator(nn.Module):
    """PatchGAN: (masked, mask, mel), each (B, 1, M, T) -> real/fake logits (B, 1, M', T'),
    one per overlapping patch, conditioned on the masked input."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        blocks, c_in = [], 3
        for i in range(layers):
            c_out = channels * 2 ** i
            groups = 8 if c_out % 8 == 0 and i > 0 else 1     # no normalisation on the first layer, as in Pix2Pix
            blocks += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),
                       nn.GroupNorm(groups, c_out) if i > 0 else nn.Identity(), nn.LeakyReLU(0.2)]
            c_in = c_out
        blocks.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, masked, mask, mel):
        return self.net(torch.cat([masked, mask, mel], dim=1))

    def features(self, masked, mask, mel) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(activations after each stride-2 block, logits): what feature matching compares."""
        x, feats = torch.cat([masked, mask, mel], dim=1), []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        return feats, x


def _gan_bce(logits: torch.Tensor, real: bool, weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of patch logits against all-real or all-fake, averaged with ``weight``."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * weight).sum() / weight.sum().clamp(min=1.0)


def gap_weight(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Which patch logits count: those whose cell overlaps the gap (B, 1, M', T').

    Outside the gap the prediction equals the target, so those patches carry no
    signal; averaging over them would only dilute the adversarial term.
    """
    return F.adaptive_max_pool2d(mask, logits.shape[-2:])


@register("pix2pix", Pix2PixParams)
class Pix2PixInpainter(Inpainter):
    """U-Net generator + PatchGAN discriminator; any (n_mels, T) works (as the U-Net)."""

    model_losses = ("adversarial", "feature_matching")

    def __init__(self, params: Pix2PixParams, n_mels: int, n_frames: int):
        super().__init__()
        unet = UNetParams(**{f.name: getattr(params, f.name) for f in dataclasses.fields(UNetParams)})
        self.generator = UNetInpainter(unet, n_mels, n_frames)
        self.takes_guide, self.searches_corpus = self.generator.takes_guide, self.generator.searches_corpus
        self.discriminator = PatchDiscriminator(params.disc_channels, params.disc_layers)

    def predict(self, masked, mask, guide=None):
        return self.generator.predict(masked, mask, guide)

    def index_corpus(self, mels):
        return self.generator.index_corpus(mels)

    def corpus_guide(self, masked, mask, level: bool = False):
        return self.generator.corpus_guide(masked, mask, level)

    def param_groups(self):
        return {"model": list(self.generator.parameters()), "discriminator": list(self.discriminator.parameters())}

    def model_terms(self, masked, mask, pred, target, weights):
        """The generator's adversarial term (make the discriminator call the fill real) and
        feature matching: L1 between the discriminator's activations on the fill and on the
        truth. Regression losses pull a fill towards the mean of what could be there, which
        sounds blurred; matching the discriminator's features rewards the texture instead
        (as in pix2pixHD and HiFi-GAN). A term of weight 0 is not computed, and with both at 0
        the discriminator does not run at all."""
        adversarial, matching = (weights.get(name, 0.0) > 0 for name in self.model_losses)
        if not (adversarial or matching):
            return {}
        feats, logits = self.discriminator.features(masked, mask, pred)
        terms = {"adversarial": _gan_bce(logits, True, gap_weight(mask, logits))} if adversarial else {}
        if matching:
            with torch.no_grad():
                real, _ = self.discriminator.features(masked, mask, target)
            terms["feature_matching"] = sum(F.l1_loss(f, r) for f, r in zip(feats, real)) / len(feats)
        return terms

    def aux_losses(self, masked, target, mask, pred, weights):
        """The discriminator's loss; none when no generator term uses the discriminator."""
        if not any(weights.get(name, 0.0) > 0 for name in self.model_losses):
            return {}
        real = self.discriminator(masked, mask, target)
        fake = self.discriminator(masked, mask, pred)
        weight = gap_weight(mask, real)
        d_real, d_fake = _gan_bce(real, True, weight), _gan_bce(fake, False, weight)
        loss = 0.5 * (d_real + d_fake)
        return {"discriminator": (loss, {"d": loss, "d_real": d_real, "d_fake": d_fake})}
