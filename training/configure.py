"""The whole config check, for scripts and training: the base's value checks
(processors.core.config_checks), every component name against its registry
(models.build.check_components) and the loss weights against the losses.
"""
from __future__ import annotations

from pathlib import Path

from models.build import check_components
from models.registry import MODELS
from processors.core.config import Config
from processors.core.config_io import parse_config, read_config
from processors.core.errors import UserError
from training.losses import INPAINT_LOSSES, LOSS_BUILDERS


def check_losses(cfg: Config, where: str = "config") -> None:
    """Every weighted term of ``loss.weights`` is a registered loss or one the model computes."""
    # a model may compute terms of its own (a GAN's adversarial term): those names are known for it only
    known = set(INPAINT_LOSSES) | set(LOSS_BUILDERS) | set(MODELS[cfg.model.name][0].model_losses)
    for name in cfg.loss.weights:
        if name not in known:
            raise UserError(f"{where}: loss.weights.{name}: unknown loss for model {cfg.model.name!r} "
                            f"(known: {', '.join(sorted(known))})")


def build_config(data: dict, where: str = "config") -> Config:
    """Validated :class:`Config` from a plain dict (as read from YAML or a checkpoint)."""
    cfg = check_components(parse_config(data, where), where)
    check_losses(cfg, where)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply ``--set`` overrides and validate."""
    return build_config(read_config(path, overrides), where=str(path))
