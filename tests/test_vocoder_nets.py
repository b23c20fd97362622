"""The learned vocoders: their nets start as the classical vocoder, train, load with clear errors,
and keep context Griffin-Lim's guarantees (known frames exact)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import make_tiny_cfg, run_script
from models.vocoder_nets import (LOG_FLOOR, VOCODER_NETS, DeGLIParams, RefinerParams, build_vocoder_net,
                                 load_vocoder_net, vocoder_checkpoints)
from processors.core.errors import UserError
from processors.mel import MelInverse, normalised_to_amplitude
from processors.vocoders import context_griffin_lim, stft
from test_vocoders import TINY, gapped_window, tiny_known, tiny_vocoder
from processors.core.config_io import save_config
from training.vocoder_training import train_vocoder_net


def test_untrained_refiner_is_the_pseudo_inverse():
    _, _, mel, _ = gapped_window()
    pinv = MelInverse(TINY, "pinv")(normalised_to_amplitude(mel, TINY.min_db, TINY.max_db))
    net = build_vocoder_net("melspec2spec", dataclasses.asdict(RefinerParams(channels=8, layers=1)), TINY)
    torch.testing.assert_close(net(mel[None], pinv[None])[0], torch.log(pinv + LOG_FLOOR))


def test_untrained_degli_step_is_the_consistency_projection():
    clean, _, _, _ = gapped_window()
    z = stft(clean, TINY, torch.hann_window(TINY.win_length))
    net = build_vocoder_net("degli", dataclasses.asdict(DeGLIParams(channels=4, layers=2)), TINY)
    assert torch.equal(net(z, z, z, z.abs()), torch.zeros_like(z))


@pytest.mark.parametrize("method", sorted(VOCODER_NETS))
def test_known_frames_are_exactly_the_true_stft(method, vocoder_nets):
    clean, context, mel, hole = gapped_window()
    known = tiny_known(hole)
    out = tiny_vocoder(method, n_iter=4, nets=vocoder_nets)(mel, context, hole)
    window = torch.hann_window(TINY.win_length)
    # frames no unknown frame's samples reach are the context's, bit for bit
    assert out.shape == context.shape
    assert torch.equal(out[:1500], context[:1500]) and torch.equal(out[-1500:], context[-1500:])
    assert not torch.equal(stft(out, TINY, window)[:, ~known], stft(context, TINY, window)[:, ~known])
    vocoder = tiny_vocoder(method, n_iter=4, nets=vocoder_nets)
    truth = stft(context, TINY, window)
    spec = context_griffin_lim(vocoder.linear_magnitude(mel), truth, known, TINY, window, 4, 0.99,
                               denoiser=vocoder.denoiser)
    assert torch.equal(spec[:, known], truth[:, known])


@pytest.mark.parametrize("method", sorted(VOCODER_NETS))
def test_training_lowers_the_validation_loss(method, tmp_path, ljspeech_dir):
    params = {"melspec2spec": "{channels: 16, layers: 1, kernel: 3}", "degli": "{channels: 8, layers: 2}"}[method]
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, f"vocoder.method={method}", f"vocoder.params={params}",
                        "train.max_steps=150", "train.val_every=50", "train.lr=1e-2", "train.batch_size=4")
    summary = train_vocoder_net(cfg)
    assert summary["val_loss_best"] < 0.95 * summary["val_loss_start"]
    net, trained = load_vocoder_net(method, summary["checkpoint"], cfg.audio)
    assert not net.training and trained["method"] == method
    with pytest.raises(UserError, match="already holds a run"):
        train_vocoder_net(cfg)


def test_load_errors_say_what_is_wrong(vocoder_nets, tmp_path):
    with pytest.raises(UserError, match="vocoder.checkpoint: the 'degli' vocoder needs a trained net"):
        load_vocoder_net("degli", "", TINY)
    with pytest.raises(UserError, match="holds a 'melspec2spec' net, not 'degli'"):
        load_vocoder_net("degli", vocoder_nets["melspec2spec"], TINY)
    with pytest.raises(UserError, match="trained for other audio settings .audio.sample_rate: 16000 -> 22050"):
        load_vocoder_net("degli", vocoder_nets["degli"], dataclasses.replace(TINY, sample_rate=22050))
    with pytest.raises(UserError, match="checkpoint not found"):
        load_vocoder_net("degli", str(tmp_path / "absent.pt"), TINY)
    assert vocoder_checkpoints(list(vocoder_nets.values())) == vocoder_nets


def test_bad_vocoder_net_settings_are_one_line_errors(tmp_path, ljspeech_dir):
    with pytest.raises(UserError, match=r"vocoder.params: unknown key 'width'"):
        make_tiny_cfg(ljspeech_dir, tmp_path, "vocoder.method=melspec2spec", "vocoder.params={width: 3}")
    with pytest.raises(UserError, match="vocoder 'griffinlim' has no params"):
        make_tiny_cfg(ljspeech_dir, tmp_path, "vocoder.method=griffinlim", "vocoder.params={channels: 3}")
    with pytest.raises(UserError, match="'context_griffinlim' has no net to train"):
        train_vocoder_net(make_tiny_cfg(ljspeech_dir, tmp_path))


def test_inference_and_evaluation_take_a_vocoder_checkpoint(trained, vocoder_nets, tmp_path):
    import numpy as np
    import soundfile as sf
    from conftest import synth_clip
    wave = synth_clip(1.5, 16000, seed=5)
    wave[9000:10600] = 0.0
    sf.write(tmp_path / "gapped.wav", wave, 16000)
    proc = run_script("inference.py", "--checkpoint", trained.unet, "--input", tmp_path / "gapped.wav",
                      "--output", tmp_path / "filled.wav", "--vocoder-checkpoint", vocoder_nets["degli"])
    assert proc.returncode == 0, proc.stderr
    filled, _ = sf.read(tmp_path / "filled.wav")
    assert np.abs(filled[9100:10500]).max() > 0
    proc = run_script("inference.py", "--checkpoint", trained.unet, "--input", tmp_path / "gapped.wav",
                      "--output", tmp_path / "other.wav", "--vocoder-checkpoint", trained.unet)
    assert proc.returncode == 2 and "not a vocoder net" in proc.stderr and "Traceback" not in proc.stderr

    out = tmp_path / "eval"
    proc = run_script("evaluate.py", "--checkpoint", trained.unet, "--data", trained.data, "--out", out,
                      "--gap-ms", 50, "--gaps-per-file", 1, "--limit-files", 1, "--baselines", "oracle",
                      "--vocoder", "context_griffinlim", "melspec2spec", "--vocoder-checkpoint", vocoder_nets["melspec2spec"])
    assert proc.returncode == 0, proc.stderr
    summary = (out / "summary.md").read_text()
    assert "| oracle@melspec2spec |" in summary and "| tiny/last@melspec2spec |" in summary


def test_train_vocoder_script_refuses_a_classical_method(tmp_path, ljspeech_dir):
    config = tmp_path / "c.yaml"
    save_config(make_tiny_cfg(ljspeech_dir, tmp_path), config)
    proc = run_script("train_vocoder.py", "--config", config)
    assert proc.returncode == 2 and "has no net to train" in proc.stderr and "Traceback" not in proc.stderr
