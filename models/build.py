"""Build what a config names, and check those names against the registries.

Importing this module registers every model, vocoder net and the reassigned phase corrector,
so :data:`MODELS` and processors' ``VOCODERS`` and ``INVERSIONS`` are complete here.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from datasets.sources import SOURCES
from models import fc, mae, pix2pix, unet  # noqa: F401  (registration side effect)
from models.reassigned_net import validate_net_params
from models.registry import MODELS, Inpainter
from models.vocoder_nets import VOCODERS, validate_vocoder_params
from processors.core.checkpoint_io import CheckpointMismatch, config_changes, load_resolved, weights_mismatch
from processors.core.config import Config
from processors.core.config_io import from_dict, parse_config
from processors.core.config_checks import require
from processors.core.errors import UserError
from processors.excerpt_metrics import DOMAIN_METRICS
from processors.mel import MEL_INVERSES
from processors.reassigned import check_window
from processors.reassigned_inverse import INVERSIONS


def validate_model_config(name: str, params: dict, where: str) -> dict:
    """Check ``model.params`` against the model's dataclass; returns them with defaults filled."""
    _, params_cls = MODELS.lookup(name, f"{where}.name")
    return dataclasses.asdict(from_dict(params_cls, params, f"{where}.params"))


def check_components(cfg: Config, where: str = "config") -> Config:
    """Every component ``cfg`` names (dataset, vocoder, Mel inverse, eval metrics, reassigned
    inversion, model) is a registered one. Returns a copy whose model, vocoder and reassigned
    net params are complete (their defaults filled in); ``cfg`` is not changed."""
    d, v, rc = cfg.data, cfg.vocoder, cfg.reassigned
    SOURCES.lookup(d.dataset, f"{where}: data.dataset")
    VOCODERS.lookup(v.method, f"{where}: vocoder.method")
    MEL_INVERSES.lookup(v.mel_inverse, f"{where}: vocoder.mel_inverse")
    vocoder_params = validate_vocoder_params(v.method, v.params, f"{where}: vocoder.params")
    require(cfg.eval.domain in DOMAIN_METRICS, f"{where}: eval.domain",
            f"unknown domain {cfg.eval.domain!r} (known: {', '.join(sorted(DOMAIN_METRICS))})")
    unknown = [m for m in cfg.eval.metrics if m not in DOMAIN_METRICS.get(cfg.eval.domain, ())]
    require(not unknown, f"{where}: eval.metrics", f"{unknown[0] if unknown else ''!r} is not a {cfg.eval.domain} metric "
            f"(known: {', '.join(DOMAIN_METRICS.get(cfg.eval.domain, ()))})")
    check_window(rc, f"{where}: reassigned.window")
    INVERSIONS.lookup(rc.method, f"{where}: reassigned.method")
    net_params = validate_net_params(rc.params, f"{where}: reassigned.params")
    model_params = validate_model_config(cfg.model.name, cfg.model.params, f"{where}: model")
    require(not (model_params.get("guide") and model_params.get("corpus")), f"{where}: model.params",
            "guide and corpus are two sources for the same two input channels: set one of them")
    for key in ("corpus_bands", "corpus_context"):
        require(model_params.get(key, 1) >= 1, f"{where}: model.params.{key}", f"must be >= 1, got {model_params.get(key)}")
    require(model_params.get("corpus_max_frames", 0) >= 0, f"{where}: model.params.corpus_max_frames",
            "must be >= 0 (0 = every training clip)")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, params=model_params),
                               vocoder=dataclasses.replace(v, params=vocoder_params),
                               reassigned=dataclasses.replace(rc, params=net_params))


def build_model(cfg: Config) -> Inpainter:
    """The inpainter named by ``cfg.model.name`` with its params, for ``cfg``'s audio and crop sizes."""
    cls, params_cls = MODELS.lookup(cfg.model.name, "model.name")
    return cls(params_cls(**cfg.model.params), n_mels=cfg.audio.n_mels, n_frames=cfg.data.crop_frames)


def load_initial_weights(model: Inpainter, cfg: Config, name: str) -> None:
    """Put the weights of checkpoint ``name`` (a path or a shipped model's name) into ``model``,
    built for ``cfg``: fine-tuning. The checkpoint must hold the same model, architecture
    and audio settings; anything else (recipe, data, masks) may differ. Each problem is a
    one-line UserError that names ``train.init_from``, the key that asks for it."""
    key = "train.init_from"
    try:
        path, state = load_resolved(name)
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None
    theirs = state.get("config", {}).get("model", {}).get("name")
    if theirs != cfg.model.name:
        raise UserError(f"{key}: {path} holds a {theirs!r} model, not a {cfg.model.name!r} one")
    audio = config_changes(state["config"].get("audio", {}), dataclasses.asdict(cfg.audio), "audio.")
    if audio:
        raise UserError(f"{key}: {path} was trained on other audio settings ({audio[0]})")
    weights = with_new_inputs(model, state["model"], state["config"]["model"].get("params", {}))
    problem = weights_mismatch(model, weights)
    if problem:
        raise UserError(f"{key}: {path} does not fit this {cfg.model.name} model ({problem})")
    model.load_state_dict(weights)         # a shipped model's fp16 weights become float32 here


def with_new_inputs(model: Inpainter, weights: dict, their_params: dict) -> dict:
    """``weights`` of a model without a guide made to fit ``model``, the same model with one
    (``takes_guide`` or ``searches_corpus``; ``their_params``: the checkpoint's model.params):
    the convolution that takes the inputs gets zeros for the guide's two channels (stacked
    last), so the model starts out computing what the checkpoint did, and the corpus it
    lacks stays empty until the training data fills it. Anything else is left to the
    mismatch check."""
    guided = lambda p: p.get("guide") or p.get("corpus")
    if not (model.takes_guide or model.searches_corpus) or guided(their_params):
        return weights
    own, out = model.state_dict(), dict(weights)
    for k, mine in own.items():
        theirs = out.get(k)
        if theirs is None:
            if mine.numel() == 0:
                out[k] = mine
        elif (mine.ndim == 4 and theirs.ndim == 4 and mine.shape[0] == theirs.shape[0]
              and mine.shape[2:] == theirs.shape[2:] and mine.shape[1] == theirs.shape[1] + 2):
            pad = torch.zeros((mine.shape[0], 2, *mine.shape[2:]), dtype=theirs.dtype)
            out[k] = torch.cat([theirs, pad], dim=1)
    return out


def load_inpainter(path: str | Path):
    """(model in eval mode, its Config) rebuilt from a checkpoint alone; ``path`` may name a
    shipped model ('speech', 'music'), whose absence or damage says how to restore it."""
    path, state = load_resolved(path)
    cfg = check_components(parse_config(state["config"], where=f"{path} (config)"), f"{path} (config)")
    model = build_model(cfg)
    problem = weights_mismatch(model, state["model"])
    if problem:
        raise CheckpointMismatch(f"{path}: its weights do not fit the {cfg.model.name} model of its own config "
                                 f"({problem})")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError) as exc:
        raise CheckpointMismatch(f"{path}: cannot load its weights ({str(exc).splitlines()[0]})") from exc
    return model.eval(), cfg
