"""The vocoders' nets and the reassigned corrector train on the inpainters' loop (training.loop):
an interrupted run resumes bit for bit, SIGTERM saves and exits cleanly, TensorBoard gets the
losses, and a checkpoint written before resume existed is a one-line error."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, make_tiny_cfg, run_script, stop_after, write_ljspeech
from processors.core.checkpoint_io import load_checkpoint, save_checkpoint
from processors.core.config_io import apply_overrides, save_config
from processors.core.errors import UserError
from test_crash_safety import Training, _logged_rows
from training.configure import build_config
from training.loop import Loop
from training.reassigned_training import CorrectorTask
from training.vocoder_training import VocoderTask

NETS = {   # name -> (task, script, overrides)
    "degli": (VocoderTask, "train_vocoder.py", ["vocoder.method=degli", "vocoder.params={channels: 4, layers: 2}"]),
    "melspec2spec": (VocoderTask, "train_vocoder.py",
                     ["vocoder.method=melspec2spec", "vocoder.params={channels: 8, layers: 1, kernel: 3}"]),
    "corrector": (CorrectorTask, "train_reassigned.py",
                  ["reassigned.classical_iter=0", "reassigned.params={channels: 4, dilations: [1, 2]}"]),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_ljspeech(tmp_path_factory.mktemp("net_training") / "LJSpeech-1.1", n_clips=6)


def net_cfg(name, data, out, *extra):
    return make_tiny_cfg(data, out, f"run_name={name}", "train.batch_size=2", "train.log_every=1",
                         *NETS[name][2], *extra)


def files(cfg) -> tuple[Path, Path]:
    return Path(cfg.train.checkpoints_dir) / cfg.run_name, Path(cfg.train.runs_dir) / cfg.run_name


@pytest.mark.parametrize("name", ["degli", "corrector"])
def test_interrupted_run_resumes_bit_exactly(name, data, tmp_path):
    """A stop request (what SIGINT/SIGTERM set) at step 3 of 6, then resume: the same losses and
    weights as 6 straight steps (degli draws its training noise from a generator of its own)."""
    task = NETS[name][0]
    steps = ["train.max_steps=6", "train.val_every=2", "train.ckpt_every=2"]
    straight = net_cfg(name, data, tmp_path / "a", *steps)
    Loop(straight, task).fit()
    cfg = net_cfg(name, data, tmp_path / "b", *steps)
    loop = Loop(cfg, task)
    stop_after(loop, 3)
    assert loop.fit()["step"] == 3
    state = load_checkpoint(files(cfg)[0] / "last.pt")
    assert state["step"] == 3
    with pytest.raises(UserError, match="already holds a run: continue it with --resume"):
        Loop(cfg, task)
    summary = Loop(build_config(apply_overrides(state["config"], [])), task, resume=state).fit()
    assert summary["step"] == 6
    (a_ckpt, a_run), (b_ckpt, b_run) = files(straight), files(cfg)
    assert (a_run / "losses.csv").read_text() == (b_run / "losses.csv").read_text()
    for ckpt in ("last.pt", "best.pt"):
        a, b = load_checkpoint(a_ckpt / ckpt), load_checkpoint(b_ckpt / ckpt)
        assert a["step"] == b["step"] and a["val_loss"] == b["val_loss"]
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_tensorboard_gets_training_and_validation_losses(data, tmp_path):
    cfg = net_cfg("melspec2spec", data, tmp_path, "train.max_steps=2", "train.val_every=1")
    summary = Loop(cfg, VocoderTask).fit()
    assert set(summary) == {"step", "val_loss_start", "val_loss_best", "checkpoint"}
    acc = EventAccumulator(str(files(cfg)[1]), size_guidance={"scalars": 0}).Reload()
    assert {"train/loss", "train/lr", "val/loss"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("val/loss")] == [0, 1, 2]
    assert (files(cfg)[1] / "losses.csv").read_text().count("\n") == 2


def test_a_checkpoint_from_before_resume_is_a_one_line_error(data, tmp_path):
    cfg = net_cfg("melspec2spec", data, tmp_path, "train.max_steps=1")
    Loop(cfg, VocoderTask).fit()
    last = files(cfg)[0] / "last.pt"
    state = load_checkpoint(last)
    old = {k: state[k] for k in ("config", "model", "step", "val_loss")}      # what vocoder training wrote
    save_checkpoint(tmp_path / "old.pt", old)
    done = run_script("train_vocoder.py", "--resume", tmp_path / "old.pt")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "cannot be resumed" in done.stderr


@pytest.mark.parametrize("name", ["degli", "corrector"])
def test_sigterm_saves_a_checkpoint_and_resume_continues(name, data, tmp_path):
    cfg = net_cfg(name, data, tmp_path, "train.max_steps=1000", "train.val_every=1000", "train.ckpt_every=1000",
                  "train.schedule=constant")
    config = tmp_path / "net.yaml"
    save_config(cfg, config)
    ckpt_dir, run_dir = files(cfg)
    log, last = run_dir / "losses.csv", ckpt_dir / "last.pt"
    script = NETS[name][1]
    run = Training([sys.executable, str(ROOT / "scripts" / script), "--config", str(config)], tmp_path)
    try:
        run.wait_for_rows(log, 3, timeout=120)
        run.proc.send_signal(signal.SIGTERM)
    finally:
        code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    step = len(_logged_rows(log))
    assert 3 <= step < 1000 and load_checkpoint(last)["step"] == step
    assert "received SIGTERM: saving a checkpoint" in stderr
    assert f"stopped at step {step} of 1000: continue with --resume {last}" in stderr

    done = run_script(script, "--resume", last, "--set", f"train.max_steps={step + 2}")
    assert done.returncode == 0, done.stderr
    assert f"step={step + 2} " in done.stdout
    assert [s for s, _ in _logged_rows(log)] == list(range(1, step + 3))
    assert load_checkpoint(last)["step"] == step + 2


@pytest.mark.parametrize("setting", ["train.amp=bf16", "train.compile=true", "train.device=cuda:0"])
def test_settings_a_cpu_only_net_cannot_honour_are_refused_not_ignored(data, tmp_path, setting, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)      # as on a GPU machine
    cfg = net_cfg("melspec2spec", data, tmp_path, "train.max_steps=1", setting)
    with pytest.raises(UserError, match=f"trains on the CPU in float32 only; remove {setting.split('=')[0]}="):
        Loop(cfg, VocoderTask)
