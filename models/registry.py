"""One contract for every inpainter, and the registry of them by name (built by models.build)."""
from __future__ import annotations

import torch
from torch import nn

from processors.core.errors import UserError
from processors.core.registry import Registry

MODELS = Registry("model")   # name -> (model class, params dataclass)


def register(name: str, params_cls: type):
    """Class decorator: ``@register("unet", UNetParams)``."""
    def wrap(cls):
        cls.registry_name = name
        return MODELS.add(name, (cls, params_cls))[0]
    return wrap


class Inpainter(nn.Module):
    """Base of every inpainter.

    ``forward(masked_mel (B, 1, n_mels, T), mask (B, 1, n_mels, T)) -> (B, 1, n_mels, T)``
    with mask 1 where missing. Subclasses implement :meth:`predict`; the known
    context is passed through unchanged, only the masked region is the network's.

    A model that sets ``takes_guide`` also receives ``guide`` (B, 2, n_mels, T), the
    similarity search's fill (processors.similarity.window_guide: channel 0 the best-matching
    stretch of the same recording's Mel in each gap frame, channel 1 its match score there,
    both 0 elsewhere), as ``predict(masked, mask, guide)``. Datasets, the trainer and
    inference supply it to every model that declares it and to no other.
    """

    takes_guide: bool = False
    # A model that ``searches_corpus`` builds the same guide itself, from the training clips it
    # keeps (processors.corpus_search), so callers need give it nothing more than any other
    # model (training gives the crop's own, and inference one it searched already).
    searches_corpus: bool = False

    # Names of loss terms the model computes itself (``model_terms``), so that
    # ``loss.weights`` may weight them like the registered losses.
    model_losses: tuple[str, ...] = ()

    def predict(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, masked: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        if self.searches_corpus:      # its own guide, unless training gives one (that skips the crop's clip)
            return masked * (1 - mask) + self.predict(masked, mask, guide) * mask
        if not self.takes_guide:
            return masked * (1 - mask) + self.predict(masked, mask) * mask
        if guide is None:
            raise UserError(f"model {self.registry_name!r} needs the similarity guide as input")
        return masked * (1 - mask) + self.predict(masked, mask, guide) * mask

    def index_corpus(self, mels: list) -> tuple | None:
        """A model that ``searches_corpus`` keeps the training clips' log-Mels [(n_mels, T_i)]
        and returns (its processors.corpus_search.CorpusSearch, each clip's frame span in
        it), for the training crops' guides; any other model returns None."""
        return None

    # ---- optional training hooks; the defaults make an ordinary one-network inpainter.
    # The trainer calls them for every model, so it needs no per-model branches.

    def training_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rewrite a training batch (``masked``, ``target``, ``mask``) before the step, e.g.
        to train on a mask of the model's own choosing. Validation never calls it."""
        return batch

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimiser. ``"model"`` is trained on the configured loss; every
        other group on its own loss from :meth:`aux_losses`, with its own optimiser."""
        return {"model": list(self.parameters())}

    def model_terms(self, masked, mask, pred, target, weights: dict[str, float]) -> dict[str, torch.Tensor]:
        """Extra terms of the ``"model"`` group's loss (names in ``model_losses``); ``weights`` are
        ``loss.weights``: a term of weight 0 need not be computed."""
        return {}

    def aux_losses(self, masked, target, mask, pred,
                   weights: dict[str, float]) -> dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """``{group: (loss, terms to log)}`` for the groups but ``"model"`` that train this step;
        ``pred`` is detached, ``weights`` are ``loss.weights``."""
        return {}
