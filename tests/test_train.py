"""Short training runs on the tiny LJSpeech fixture: artefacts, resume, reproducibility."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import BASE_CONFIG, make_tiny_cfg, run_script, stop_after, tiny_overrides, write_ljspeech
from processors.core.errors import UserError
from processors.core.checkpoint_io import PRETRAINED_DIR, load_checkpoint, save_checkpoint
from models.build import load_inpainter
from processors.core.config_io import apply_overrides
from training.configure import build_config, load_config
from training.loop import lr_lambda
from training.trainer import Trainer


def read_losses(cfg) -> list[tuple[int, str]]:
    """(step, loss text) rows of ``runs/<run>/losses.csv``; text, so equality is bit-exact."""
    path = Path(cfg.train.runs_dir) / cfg.run_name / "losses.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return [(int(step), value) for step, value in rows]


def last_pt(cfg) -> Path:
    return Path(cfg.train.checkpoints_dir) / cfg.run_name / "last.pt"


def resume_cfg(ckpt_path, *overrides):
    state = load_checkpoint(ckpt_path)
    return build_config(apply_overrides(state["config"], list(overrides))), state


def test_short_run_writes_every_artefact(tiny_cfg):
    summary = Trainer(tiny_cfg).fit()
    assert summary["step"] == 6
    assert math.isfinite(summary["best_val_mse"])
    assert {"val_mse", "val_boundary", "val_interp_mse"} <= set(summary)

    ckpt_dir = Path(tiny_cfg.train.checkpoints_dir) / "tiny"
    run_dir = Path(tiny_cfg.train.runs_dir) / "tiny"
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(ckpt_dir / name)
        assert build_config(state["config"]) == tiny_cfg
        assert {"model", "optimizer", "scheduler", "step", "best", "rng"} <= set(state)
    assert load_checkpoint(ckpt_dir / "last.pt")["step"] == 6
    assert load_config(ckpt_dir / "config.yaml") == tiny_cfg
    assert load_config(run_dir / "config.yaml") == tiny_cfg

    losses = read_losses(tiny_cfg)
    assert [s for s, _ in losses] == list(range(1, 7))
    assert all(math.isfinite(float(v)) for _, v in losses)

    model, cfg = load_inpainter(ckpt_dir / "best.pt")
    assert not model.training and cfg == tiny_cfg

    assert list(run_dir.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/loss_mse", "train/loss_boundary", "train/lr", "val/mse", "val/interp_mse"} <= scalars
    assert [e.step for e in acc.Scalars("val/mse")] == [3, 6]


def test_starting_over_an_existing_run_is_refused(tiny_cfg):
    Trainer(build_config(apply_overrides(tiny_cfg.to_dict(), ["train.max_steps=1"]))).fit()
    with pytest.raises(UserError, match="resume"):     # never silently overwrite another run's checkpoints
        Trainer(tiny_cfg)


def test_resume_continues_to_the_new_max_steps(tiny_cfg):
    cfg = build_config(apply_overrides(tiny_cfg.to_dict(), ["train.max_steps=4", "train.ckpt_every=2"]))
    Trainer(cfg).fit()
    last = last_pt(cfg)
    log = Path(cfg.train.runs_dir) / "tiny" / "losses.csv"
    with log.open("a") as f:          # rows a killed run logged after its last checkpoint
        f.write("5,99\n6,99\n")
    cfg2, state = resume_cfg(last, "train.max_steps=7")
    assert state["step"] == 4
    summary = Trainer(cfg2, resume=state).fit()
    assert summary["step"] == 7
    assert load_checkpoint(last)["step"] == 7
    losses = read_losses(cfg2)
    assert [s for s, _ in losses] == list(range(1, 8))
    assert "99" not in [v for _, v in losses]


def test_resume_at_max_steps_does_nothing(tiny_cfg):
    Trainer(tiny_cfg).fit()
    cfg, state = resume_cfg(last_pt(tiny_cfg))
    before = read_losses(cfg)
    assert Trainer(cfg, resume=state).fit()["step"] == 6
    assert read_losses(cfg) == before


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """An uninterrupted 8-step run (cosine schedule after a 2-step warm-up)."""
    base = tmp_path_factory.mktemp("straight")
    data = write_ljspeech(base / "LJSpeech-1.1")
    cfg = make_tiny_cfg(data, base, "train.max_steps=8", "train.ckpt_every=4")
    Trainer(cfg).fit()
    return data, read_losses(cfg)


def test_same_seed_gives_identical_losses(straight_run, tmp_path):
    data, expected = straight_run
    cfg = make_tiny_cfg(data, tmp_path, "train.max_steps=8", "train.ckpt_every=4")
    Trainer(cfg).fit()
    assert read_losses(cfg) == expected
    other = make_tiny_cfg(data, tmp_path / "other", "train.max_steps=8", "seed=1")
    Trainer(other).fit()
    assert read_losses(other) != expected


def test_resumed_losses_equal_the_uninterrupted_run(straight_run, tmp_path):
    """Stop at step 4 (max_steps=4, ckpt_every 4), resume with max_steps raised to 8.

    The schedule is constant after warm-up here, because a cosine schedule depends on
    max_steps and so differs between a 4-step and an 8-step run by design.
    """
    data, _ = straight_run
    constant = ["train.schedule=constant", "train.ckpt_every=4"]
    straight = make_tiny_cfg(data, tmp_path / "a", "train.max_steps=8", *constant)
    Trainer(straight).fit()
    first = make_tiny_cfg(data, tmp_path / "b", "train.max_steps=4", *constant)
    Trainer(first).fit()
    cfg, state = resume_cfg(last_pt(first), "train.max_steps=8")
    Trainer(cfg, resume=state).fit()
    assert read_losses(cfg) == read_losses(straight)
    a = load_checkpoint(last_pt(straight))["model"]
    b = load_checkpoint(last_pt(cfg))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", [
    [],                                                                        # the tiny U-Net
    ["model.name=fc", "model.params={hidden: 32, layers: 2, dropout: 0.5}"],          # dropout: uses the RNG
    ["model.name=mae", "loss.weights={mse: 1.0}",                     # its random patch masks: the RNG too
     "model.params={patch_mels: 8, patch_frames: 4, dim: 16, depth: 1, heads: 2, decoder_dim: 8,"
     " decoder_depth: 1, decoder_heads: 2, mask_mode: random_patches}"],
], ids=["unet", "fc", "mae_pretrain"])
def test_interrupted_run_resumes_bit_exactly(straight_run, tmp_path, model):
    """A stop request (what SIGINT/SIGTERM set) at step 4 of an 8-step cosine run, then resume."""
    data, _ = straight_run
    straight = make_tiny_cfg(data, tmp_path / "a", "train.max_steps=8", "train.ckpt_every=4", *model)
    Trainer(straight).fit()
    cfg = make_tiny_cfg(data, tmp_path / "b", "train.max_steps=8", "train.ckpt_every=4", *model)
    trainer = Trainer(cfg)
    stop_after(trainer, 4)
    assert trainer.fit()["step"] == 4
    cfg2, state = resume_cfg(last_pt(cfg))
    assert state["step"] == 4
    Trainer(cfg2, resume=state).fit()
    assert read_losses(cfg2) == read_losses(straight)


def test_resume_with_another_model_is_a_user_error(tiny_cfg):
    cfg = build_config(apply_overrides(tiny_cfg.to_dict(), ["train.max_steps=1"]))
    Trainer(cfg).fit()
    state = load_checkpoint(last_pt(cfg))
    other = build_config(apply_overrides(cfg.to_dict(), ["model.params.base_channels=8", "run_name=other"]))
    with pytest.raises(UserError, match="does not match"):
        Trainer(other, resume=state)


def test_lr_schedule_warmup_then_cosine_floor(tiny_cfg):
    cfg = build_config(apply_overrides(tiny_cfg.to_dict(), ["train.warmup_steps=10", "train.max_steps=110"]))
    f = lr_lambda(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.525)
    assert f(110) == pytest.approx(0.05) and f(500) == pytest.approx(0.05)


def test_non_finite_loss_stops_with_a_user_error(tiny_cfg):
    trainer = Trainer(build_config(apply_overrides(tiny_cfg.to_dict(), ["train.max_steps=2"])))
    trainer.model.out.bias.data.fill_(float("nan"))
    with pytest.raises(UserError, match="loss became nan"):
        trainer.fit()


# --------------------------------------------------------------------------- checkpoints

def test_truncated_and_foreign_checkpoints_are_user_errors(tmp_path):
    save_checkpoint(tmp_path / "ok.pt", {"config": {}, "model": {}, "pad": torch.zeros(1000)})
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a checkpoint of this toolkit"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"config": {}, "model": {}, "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(UserError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


# --------------------------------------------------------------------------- CLI

@pytest.mark.slow
def test_train_cli_runs_and_resumes(tmp_path, ljspeech_dir):
    sets = [a for o in tiny_overrides(ljspeech_dir, tmp_path) + ["train.max_steps=2"] for a in ("--set", o)]
    done = run_script("train.py", "--config", BASE_CONFIG, *sets)
    assert done.returncode == 0, done.stderr
    assert "step=2" in done.stdout
    last = tmp_path / "checkpoints" / "tiny" / "last.pt"
    shutil.copy(last, tmp_path / "step2.pt")
    again = run_script("train.py", "--resume", last, "--set", "train.max_steps=3")
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(last)["step"] == 3
    # an older checkpoint of the run would overwrite last.pt's later steps: refused, nothing lost
    older = run_script("train.py", "--resume", tmp_path / "step2.pt", "--set", "train.max_steps=4")
    assert older.returncode == 2 and "Traceback" not in older.stderr, older.stderr
    assert "step 2, but the run's" in older.stderr and "train.init_from=" in older.stderr
    assert load_checkpoint(last)["step"] == 3
    # --config beside --resume would be ignored: said, not silently dropped
    both = run_script("train.py", "--config", BASE_CONFIG, "--resume", last)
    assert both.returncode == 2 and "a resumed run keeps the config saved in its checkpoint" in both.stderr


def test_resuming_a_shipped_model_blames_no_set_the_user_did_not_give():
    done = run_script("train.py", "--resume", PRETRAINED_DIR / "speech.pt")
    assert done.returncode == 2 and "cannot be resumed" in done.stderr and "--set changed" not in done.stderr


def test_train_cli_user_error_is_one_line(tmp_path):
    # the other messages are checked in-process (load_config, load_checkpoint, sources)
    done = run_script("train.py", "--config", BASE_CONFIG, "--set", "data.root=/nonexistent/LJSpeech-1.1",
                      "--set", f"train.checkpoints_dir={tmp_path}", "--set", f"train.runs_dir={tmp_path}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == "error: data.root: data folder not found: /nonexistent/LJSpeech-1.1", done.stderr
    assert "Traceback" not in done.stderr


def test_train_cli_without_config_is_a_user_error():
    done = run_script("train.py")
    assert done.returncode == 2 and done.stderr.startswith("error: ")
