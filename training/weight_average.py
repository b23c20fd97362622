"""An exponential moving average of the main group's weights (``train.ema_decay``).

A GAN's generator, or any net trained on small batches, wanders from step to step; the
average of its recent weights is usually a better model than any one of them (Yazici et al.,
"The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019). The loop validates and
checkpoints the averaged weights, so ``best.pt`` and what ``init_from`` or an export take are
the average; the raw weights travel beside them in the checkpoint, for ``--resume``.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


class WeightAverage:
    """``avg = WeightAverage(model, params, decay)``; ``avg.update(step)`` after each optimiser
    step; ``with avg.swapped_in(): ...`` runs with the averaged weights in ``model``.

    ``params`` are the averaged ones (the main group's: a discriminator is not averaged).
    The decay ramps up as ``min(decay, (1 + step) / (10 + step))``, so a run from scratch is
    not held back by its random initial weights for thousands of steps.
    """

    def __init__(self, model: torch.nn.Module, params: list[torch.nn.Parameter], decay: float):
        self.params = dict(named_in(model, params))
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the current weights; ``step`` is the number of steps done."""
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(list(self.shadow.values()), [p.detach() for p in self.params.values()], 1 - d)

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the model for the duration of the block, the raw ones after."""
        raw = self.raw()
        self._load(self.shadow)
        try:
            yield
        finally:
            self._load(raw)

    def raw(self) -> dict[str, torch.Tensor]:
        """The current (trained, not averaged) weights: {name: tensor}, copies."""
        return {n: p.detach().clone() for n, p in self.params.items()}

    def _load(self, values: dict[str, torch.Tensor]) -> None:
        load_weights(self.params, values)


@torch.no_grad()
def load_weights(params: dict[str, torch.nn.Parameter], values: dict[str, torch.Tensor]) -> None:
    """Copy ``values[name]`` into each of ``params`` ({name: parameter}); every name must be there."""
    missing = sorted(set(params) - set(values))
    if missing:
        raise KeyError(f"no weights for {missing[0]}")
    for n, p in params.items():
        p.copy_(values[n])


def named_in(model: torch.nn.Module, params: list[torch.nn.Parameter]) -> list[tuple[str, torch.nn.Parameter]]:
    """``model``'s (name, parameter) pairs for the parameters in ``params``."""
    ids = {id(p) for p in params}
    return [(n, p) for n, p in model.named_parameters() if id(p) in ids]
