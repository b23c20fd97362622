"""Reliability: a kill at any moment loses nothing, and runs are reproducible.

Atomic writes, signals (SIGTERM/SIGINT save and exit cleanly), SIGKILL then resume,
and identical losses for the same config and seed. The shared tiny run is the
``trained`` fixture of conftest.py.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, make_tiny_cfg, run_script
from processors.audio_io import write_audio
from processors.core.checkpoint_io import load_checkpoint, save_checkpoint
from processors.core.config_io import save_config
from training.configure import build_config
from training.evaluation.eval_report import write_csv
from training.loss_log import truncate_log
from training.trainer import Trainer

def _write_checkpoint(path: Path, version: int) -> None:
    save_checkpoint(path, {"config": {}, "model": {}, "version": version})


def _read_checkpoint(path: Path) -> int:
    return load_checkpoint(path)["version"]


WRITERS = {    # name -> (write version v to path, read the version back)
    "checkpoint": (_write_checkpoint, _read_checkpoint),
    "config": (lambda p, v: save_config(build_config({"seed": v}), p),
               lambda p: int(p.read_text().split("seed: ")[1].split()[0])),
    "audio": (lambda p, v: write_audio(p, np.full(100, v / 10, np.float32), 8000, "FLOAT"),
              lambda p: round(float(sf.read(str(p))[0][0]) * 10)),
    "metrics csv": (lambda p, v: write_csv([{"file": f"v{v}"}], p), lambda p: int(p.read_text().split("\nv")[1][0])),
}


@pytest.mark.parametrize("failing", ["os.fsync", "os.replace"])
@pytest.mark.parametrize("writer", WRITERS)
def test_an_interrupted_write_leaves_the_previous_file(writer, failing, tmp_path, monkeypatch):
    """What a kill between writing the data and renaming it would leave: the old file, whole."""
    write, read = WRITERS[writer]
    path = tmp_path / ("out.wav" if writer == "audio" else "out.file")
    write(path, 1)
    assert read(path) == 1

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(failing, crash)
    with pytest.raises(KeyboardInterrupt):
        write(path, 2)
    monkeypatch.undo()
    assert read(path) == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "a temporary file was left behind"
    write(path, 3)
    assert read(path) == 3


@pytest.mark.parametrize("damage, rows", [
    ("rows after the checkpoint", "1,0.5\n2,0.4\n3,0.3\n4,0.2\n5,0.1\n"),
    ("a half-written last row", "1,0.5\n2,0.4\n3,0.3\n1"),
    ("a half-written row, then more", "1,0.5\n2,0.4\n3,0.\x00\x00\n3,0.3\n"),
    ("a row of garbage", "1,0.5\n\x00\x00\x00\n2,0.4\n3,0.3\n"),
])
def test_resume_keeps_each_logged_step_once(damage, rows, tmp_path):
    log = tmp_path / "losses.csv"
    log.write_text(rows)
    truncate_log(log, 3)
    assert log.read_text() == "1,0.5\n2,0.4\n3,0.3\n"


def _train_cmd(t, tmp: Path, *sets: str) -> list[str]:
    args = ["--config", t.config, "--set", f"train.runs_dir={tmp / 'runs'}",
            "--set", f"train.checkpoints_dir={tmp / 'ckpts'}", "--set", "train.max_steps=1000",
            "--set", "train.val_every=1000", "--set", "train.schedule=constant"]
    for s in sets:
        args += ["--set", s]
    return [sys.executable, str(ROOT / "scripts" / "train.py"), *map(str, args)]


class Training:
    """``scripts/train.py`` in a process of its own; its output goes to files (a pipe that
    nobody reads would fill up with the progress bar and stall the run)."""

    def __init__(self, cmd: list[str], tmp: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.out, self.err = tmp / "stdout.txt", tmp / "stderr.txt"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)

    def wait_for_rows(self, path: Path, n: int, timeout: float = 90) -> None:
        """Until losses.csv holds ``n`` complete rows."""
        deadline = time.time() + timeout
        while len(_logged_rows(path)) < n:
            if self.proc.poll() is not None:
                raise AssertionError(f"training ended early ({self.proc.returncode}):\n{self.err.read_text()[-3000:]}")
            if time.time() > deadline:
                raise AssertionError(f"not {n} steps after {timeout} s")
            time.sleep(0.01)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """(exit code, stdout, stderr); a run still going after ``timeout`` is killed."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, self.out.read_text(), self.err.read_text()


def _logged_rows(path: Path) -> list[tuple[int, str]]:
    """Complete ``step,loss`` rows of losses.csv (a line still being written is left out)."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]
    return [(int(s), v) for s, v in (line.split(",") for line in lines)]


def test_sigkill_mid_run_then_resume_loses_nothing(tmp_path, trained):
    """kill -9 a few steps after a checkpoint; --resume redoes those steps with the same losses."""
    log, last = tmp_path / "runs" / "tiny" / "losses.csv", tmp_path / "ckpts" / "tiny" / "last.pt"
    run = Training(_train_cmd(trained, tmp_path, "train.ckpt_every=10"), tmp_path)
    try:
        run.wait_for_rows(log, 13)
        run.proc.send_signal(signal.SIGKILL)
    finally:
        code, _, _ = run.finish()
    assert code == -signal.SIGKILL
    killed = _logged_rows(log)
    state = load_checkpoint(last)                         # whole and readable
    step = state["step"]
    assert step % 10 == 0 and 10 <= step <= len(killed) < 1000
    assert [s for s, _ in killed] == list(range(1, len(killed) + 1))

    end = len(killed) + 5
    done = run_script("train.py", "--resume", last, "--set", f"train.max_steps={end}")
    assert done.returncode == 0, done.stderr
    assert f"step={end}" in done.stdout
    rows = _logged_rows(log)
    assert [s for s, _ in rows] == list(range(1, end + 1)), "each step logged once, up to max_steps"
    assert rows[:len(killed)] == killed, "the steps redone after the checkpoint gave other losses"
    assert load_checkpoint(last)["step"] == end
    for ckpt in (tmp_path / "ckpts" / "tiny").glob("*.pt"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_exits_cleanly(sig, tmp_path, trained):
    log, last = tmp_path / "runs" / "tiny" / "losses.csv", tmp_path / "ckpts" / "tiny" / "last.pt"
    run = Training(_train_cmd(trained, tmp_path, "train.ckpt_every=1000"), tmp_path)
    try:
        run.wait_for_rows(log, 5)
        run.proc.send_signal(sig)
    finally:
        code, stdout, stderr = run.finish()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    rows = _logged_rows(log)
    step = len(rows)
    assert [s for s, _ in rows] == list(range(1, step + 1)) and 5 <= step < 1000
    assert load_checkpoint(last)["step"] == step
    assert f"received {sig.name}: saving a checkpoint" in stderr
    assert f"stopped at step {step} of 1000: continue with --resume {last}" in stderr
    assert f"step={step} " in stdout


# --------------------------------------------------------------------------- reproducibility

def _losses(cfg) -> list[str]:
    return (Path(cfg.train.runs_dir) / cfg.run_name / "losses.csv").read_text().splitlines()


@pytest.mark.parametrize("first, second", [
    (["model.name=fc", "model.params={hidden: 16, layers: 2, dropout: 0.5}"],) * 2,   # dropout draws from the RNG
    (["data.num_workers=2"], ["data.num_workers=0"]),                                 # loader workers change nothing
], ids=["fc with dropout", "loader workers"])
def test_same_config_and_seed_give_the_same_losses(first, second, tmp_path, trained):
    steps = ["train.max_steps=4", "train.val_every=4", "train.ckpt_every=4"]
    a = make_tiny_cfg(trained.data, tmp_path / "a", *steps, *first)
    b = make_tiny_cfg(trained.data, tmp_path / "b", *steps, *second)
    Trainer(a).fit()
    Trainer(b).fit()
    assert _losses(a) == _losses(b) and len(_losses(a)) == 4


@pytest.mark.parametrize("writer", WRITERS)
def test_every_output_gets_the_permissions_a_new_file_would(writer, tmp_path):
    # the temporary file behind an atomic write is made 0600; a checkpoint a teammate cannot read
    # (as every .pt was, while audio was not) is a surprise on a shared machine
    write, _ = WRITERS[writer]
    path = tmp_path / ("out.wav" if writer == "audio" else "out.file")
    write(path, 1)
    (tmp_path / "plain").write_text("")
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
