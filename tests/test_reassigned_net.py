"""The learned reassigned inverse: it starts as the classical projection, trains, and loads with clear errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import make_tiny_cfg, write_ljspeech
from models.reassigned_net import CorrectorParams, PhaseCorrector, apply_corrector, load_corrector
from processors.core.errors import UserError
from processors.reassigned import istfts, stfts
from processors.reassigned_features import N_FEATURES, correction_inputs
from processors.reassigned_gl import Targets, unit_windows
from processors.reassigned_inverse import analyse, pghi_phase, phase_derivatives, reassigned_iterations, roundtrip
from processors.core.config import ReassignedConfig
from training.reassigned_training import train_reassigned_net

RC = ReassignedConfig()


def speechlike(seconds: float = 0.3, seed: int = 0) -> np.ndarray:
    from conftest import synth_clip
    return synth_clip(seconds, RC.sample_rate, seed).astype(np.float64)


def test_untrained_net_is_one_more_classical_projection():
    wave = speechlike()
    r, _ = analyse(wave, RC)
    rebuilt = reassigned_iterations(r, RC, pghi_phase(r, RC), 3)
    inputs = correction_inputs(rebuilt, r, RC, *phase_derivatives(r, RC))
    assert inputs["features"].shape == (N_FEATURES, *r.mags.shape)
    net = PhaseCorrector(CorrectorParams(channels=4, dilations=[1, 2]))
    out = apply_corrector(net, inputs, RC)
    windows = unit_windows(RC)
    classical = istfts(np.stack(Targets(r, RC).project(*stfts(rebuilt, windows, RC))), windows, RC, len(rebuilt))
    np.testing.assert_allclose(out, classical, atol=2e-5 * np.abs(classical).max())


def test_features_ignore_the_sign_of_the_signal():
    wave = speechlike()
    r, _ = analyse(wave, RC)
    rebuilt = reassigned_iterations(r, RC, pghi_phase(r, RC), 2)
    derivatives = phase_derivatives(r, RC)
    plus, minus = correction_inputs(rebuilt, r, RC, *derivatives), correction_inputs(-rebuilt, r, RC, *derivatives)
    # bins between 0 Hz and Nyquist: at those two (real) the projection's cost is symmetric in
    # the phase, and which of its two minima the search returns may differ with the sign
    np.testing.assert_allclose(plus["features"][:, 1:-1], minus["features"][:, 1:-1], atol=1e-4)


@pytest.fixture(scope="module")
def corrector(tmp_path_factory):
    base = tmp_path_factory.mktemp("reassigned_net")
    data = write_ljspeech(base / "LJSpeech-1.1", n_clips=6)
    cfg = make_tiny_cfg(data, base, "run_name=corrector", "data.crop_frames=32", "data.val_items=8",
                        "train.max_steps=60", "train.val_every=20", "train.lr=3.0e-3", "train.batch_size=4",
                        "reassigned.classical_iter=0", "reassigned.params={channels: 8, dilations: [1, 2]}")
    return cfg, train_reassigned_net(cfg)


def test_training_lowers_the_validation_loss_and_the_net_serves_the_learned_inversion(corrector):
    cfg, summary = corrector
    assert summary["val_loss_best"] < summary["val_loss_start"]
    net, trained = load_corrector(summary["checkpoint"], cfg.reassigned)
    assert not net.training and trained["classical_iter"] == 0
    wave = speechlike(0.4, seed=3)
    out, _ = roundtrip(wave, dataclasses.replace(cfg.reassigned, method="learned", checkpoint=summary["checkpoint"]))
    assert out.shape == wave.shape and np.isfinite(out).all() and np.abs(out).max() > 0.01


def test_checkpoints_that_do_not_fit_are_one_line_errors(corrector, vocoder_nets):
    cfg, summary = corrector
    with pytest.raises(UserError, match="trained for reassigned.hop_length=20"):
        load_corrector(summary["checkpoint"], dataclasses.replace(cfg.reassigned, hop_length=10))
    with pytest.raises(UserError, match="not a learned reassigned inverse"):
        load_corrector(vocoder_nets["degli"], cfg.reassigned)
    with pytest.raises(UserError, match="needs a trained net"):
        load_corrector("", cfg.reassigned)
    with pytest.raises(UserError, match="already holds a run"):
        train_reassigned_net(cfg)
