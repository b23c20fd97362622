"""An exponential moving average of the main group's weights (``train.ema_decay``).

A GAN's generator, or any net trained on small batches, wanders from step to step; the
average of its recent weights is often a better model than any one of them (Yazici et al.,
"The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019). The loop validates and
checkpoints the averaged weights, so ``best.pt`` and what ``init_from`` or an export take are
the average; the raw weights travel beside them in the checkpoint, for ``--resume``.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


class WeightAverage:
    """``avg = WeightAverage(params, decay)``; ``avg.update(step)`` after each optimiser step;
    ``with avg.swapped_in() as raw: ...`` runs with the averaged weights in the model.

    ``params`` ({name: parameter}) are the averaged ones (the main group's: a discriminator is
    not averaged). The decay ramps up as ``min(decay, (1 + step) / (10 + step))``, so a run
    from scratch is not held back by its random initial weights for thousands of steps.
    """

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in params.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the current weights; ``step`` is the number of steps done."""
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(list(self.shadow.values()), [p.detach() for p in self.params.values()], 1 - d)

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the model for the duration of the block, which gets a copy of
        the raw ones ({name: tensor}); the raw ones are back in the model after it."""
        raw = {n: p.detach().clone() for n, p in self.params.items()}
        load_weights(self.params, self.shadow)
        try:
            yield raw
        finally:
            load_weights(self.params, raw)


@torch.no_grad()
def load_weights(params: dict[str, torch.nn.Parameter], values: dict[str, torch.Tensor]) -> None:
    """Copy ``values[name]`` into each of ``params`` ({name: parameter}); every name must be there."""
    missing = sorted(set(params) - set(values))
    if missing:
        raise KeyError(f"no weights for {missing[0]}")
    for n, p in params.items():
        p.copy_(values[n])


def named_in(model: torch.nn.Module, params: list[torch.nn.Parameter]) -> dict[str, torch.nn.Parameter]:
    """``model``'s {name: parameter} for the parameters in ``params``."""
    ids = {id(p) for p in params}
    return {n: p for n, p in model.named_parameters() if id(p) in ids}
