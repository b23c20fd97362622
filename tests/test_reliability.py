"""Reliability: bad input wherever a user gives one (crash safety and reproducibility: test_crash_safety.py;
odd but valid inputs, other formats and messy data folders: test_input_formats.py).

This file adds what test_config, test_datasets, test_inference, test_train and
test_evaluate do not already check; together they cover the whole "Reliability"
issue. Bad-input cases run the scripts *in this process* (:func:`cli`): a fresh
Python with torch costs about 2 s per case on the test machine, 40 cases would
take the whole time budget. ``test_in_process_runner_matches_a_real_process``
checks that both ways give the same exit code and stderr; the crash tests
(SIGKILL, SIGTERM, SIGINT) and ``--debug`` use real processes.
"""
from __future__ import annotations

import hashlib
import io
import logging
import runpy
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, run_script, synth_clip, write_ljspeech

SR = 22050                 # the test files' rate (LJSpeech's); the tiny model runs at 16 kHz


# --------------------------------------------------------------------------- runners

def cli(script: str, *args) -> subprocess.CompletedProcess:
    """``python scripts/<script> args`` run in this process: exit code, stdout and stderr as a shell sees them.

    The root logger's handlers are set aside so that the script's ``logging.basicConfig``
    writes its warnings to the captured stderr, as it does in a process of its own.
    """
    path = ROOT / "scripts" / script
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    argv = sys.argv
    root.handlers.clear()
    sys.argv = [str(path), *map(str, args)]
    sys.path.insert(0, str(path.parent))
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                runpy.run_path(str(path), run_name="__main__")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.argv = argv
        sys.path.remove(str(path.parent))
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


def assert_one_error_line(done: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """Exit ``code``, no traceback, and stderr ends in the one ``error: `` line, which holds every
    fragment; anything before it is a logged warning."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected one error line, last:\n{done.stderr}"
    assert all(line.startswith("WARNING ") for line in lines[:-1]), done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def snapshot(*folders: Path) -> dict[Path, str]:
    """Every file under ``folders`` -> digest of its bytes, every folder -> 'folder'."""
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for folder in folders for p in sorted(folder.rglob("*"))}


# --------------------------------------------------------------------------- shared run

def gapped(seconds: float = 1.2, spans=((0.6, 0.65),), sr: int = SR, channels: int = 1, seed: int = 3) -> np.ndarray:
    """float32 (N,) or (N, C): a synthetic clip with digital silence over ``spans`` (seconds)."""
    wave = synth_clip(seconds, sr, seed)
    if channels > 1:
        wave = np.stack([wave * (1 - 0.3 * c) for c in range(channels)], axis=1)
    for a, b in spans:
        wave[int(a * sr):int(b * sr)] = 0
    return wave


def write_wav(path: Path, samples: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sr, subtype=subtype)
    return path


def truncated_wav(path: Path) -> Path:
    """A 16-bit WAV whose data stops at a third of what its header promises (an interrupted copy)."""
    data = write_wav(path, gapped()).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


# --------------------------------------------------------------------------- bad input, CLI

def bad_input(case: str, tmp: Path, t) -> tuple[str, list, list[str]]:
    """(script, arguments, fragments the error line must hold) for one bad input; makes its files in ``tmp``."""
    runs = ["--set", f"train.runs_dir={tmp / 'runs'}", "--set", f"train.checkpoints_dir={tmp / 'ckpts'}"]
    train = ["--config", t.config, *runs]
    out = tmp / "out.wav"
    ok_input = write_wav(tmp / "ok.wav", gapped())
    fill = lambda source, *more: ["--checkpoint", t.best, "--input", source, "--output", out, *more]  # noqa: E731
    evaluate = ["--data", t.data, "--gap-ms", "50", "--out", tmp / "report"]

    def ljspeech(problem: str) -> list:
        root = write_ljspeech(tmp / "LJ", n_clips=3)
        if problem == "no metadata":
            (root / "metadata.csv").unlink()
        elif problem == "missing wavs":
            (root / "metadata.csv").write_text("LJ404-0001|gone|gone\nLJ404-0002|gone|gone\n")
        elif problem == "unreadable":
            for wav in (root / "wavs").glob("*.wav"):
                wav.write_bytes(b"RIFF not really a wav file" * 20)
        return [*train, "--set", f"data.root={root}"]

    if case == "train: config file missing":
        return "train.py", ["--config", tmp / "nope.yaml"], ["config file not found", "nope.yaml"]
    if case == "train: config file empty":
        (tmp / "empty.yaml").write_text("")
        return "train.py", ["--config", tmp / "empty.yaml"], ["empty.yaml", "config file is empty"]
    if case == "train: config file not text":
        (tmp / "binary.yaml").write_bytes(np.random.default_rng(0).bytes(300))
        return "train.py", ["--config", tmp / "binary.yaml"], ["binary.yaml"]
    if case == "train: config key typo":
        (tmp / "typo.yaml").write_text(t.config.read_text().replace("seed:", "sede:"))
        return "train.py", ["--config", tmp / "typo.yaml"], ["typo.yaml", "unknown key 'sede'"]
    if case == "train: --set key typo":
        return "train.py", [*train, "--set", "train.lrr=1"], ["tiny.yaml: train", "unknown key 'lrr'"]
    if case == "train: wrong type":
        return "train.py", [*train, "--set", "train.batch_size=two"], ["tiny.yaml: train.batch_size", "expected int"]
    if case == "train: gap longer than the crop":
        return "train.py", [*train, "--set", "data.mask.mode=fixed", "--set", "data.mask.gap_frames=40"], \
            ["data.mask.gap_frames", "longer than the crop"]
    if case == "train: n_mels beyond the STFT":
        return "train.py", [*train, "--set", "audio.n_mels=300"], ["audio.n_mels", "need n_fft >= 598"]
    if case == "train: data folder empty":
        (tmp / "songs").mkdir()
        return "train.py", [*train, "--set", "data.dataset=folder", "--set", f"data.root={tmp / 'songs'}"], \
            ["songs", "no audio files"]
    if case == "train: data root is a file":
        return "train.py", [*train, "--set", f"data.root={ok_input}"], ["not a folder", "ok.wav"]
    if case == "train: LJSpeech without metadata.csv":
        return "train.py", ljspeech("no metadata"), ["LJ", "no metadata.csv"]
    if case == "train: metadata.csv names only missing wavs":
        return "train.py", ljspeech("missing wavs"), ["metadata.csv", "names no wav"]
    if case == "train: every wav unreadable":
        return "train.py", ljspeech("unreadable"), ["unusable", "cannot decode audio", "max_bad_fraction"]
    if case == "train: resume checkpoint missing":
        return "train.py", ["--resume", tmp / "nope.pt"], ["checkpoint not found", "nope.pt"]
    if case == "train: resume checkpoint empty":
        (tmp / "empty.pt").write_bytes(b"")
        return "train.py", ["--resume", tmp / "empty.pt"], ["empty.pt", "truncated or not a checkpoint"]
    if case == "train: resume checkpoint truncated":
        data = t.unet.read_bytes()
        (tmp / "cut.pt").write_bytes(data[: len(data) // 2])
        return "train.py", ["--resume", tmp / "cut.pt"], ["cut.pt", "truncated or not a checkpoint"]
    if case == "train: resume from a wav":
        return "train.py", ["--resume", ok_input], ["ok.wav", "not a checkpoint"]
    if case == "train: resume with another base_channels":
        return "train.py", ["--resume", t.unet, *runs, "--set", "model.params.base_channels=8"], \
            ["last.pt", "does not match the unet model", "model.params.base_channels: 4 -> 8"]
    if case == "train: resume an fc checkpoint as a unet":
        return "train.py", ["--resume", t.fc, *runs, "--set", "model.name=unet", "--set", "model.params={}"], \
            ["fc/last.pt", "does not match the unet model", "model.name: 'fc' -> 'unet'"]
    if case == "train: resume weights that do not fit their config":
        return "train.py", ["--resume", t.swapped, *runs], ["swapped.pt", "does not match the unet model"]
    if case == "train: resume with --set of a wrong type":
        return "train.py", ["--resume", t.unet, "--set", "train.max_steps=many"], \
            ["last.pt (config): train.max_steps", "expected int"]
    if case == "train: checkpoints_dir is a file":
        return "train.py", [*train, "--set", f"train.checkpoints_dir={ok_input}"], \
            ["train.checkpoints_dir", "ok.wav", "cannot create"]
    if case == "train: run exists (no --resume)":
        return "train.py", ["--config", t.config, "--set", f"train.checkpoints_dir={t.base / 'checkpoints'}",
                            "--set", f"train.runs_dir={tmp / 'runs'}"], ["already holds a run", "--resume"]
    if case == "inference: input empty":
        (tmp / "in.wav").write_bytes(b"")
        return "inference.py", fill(tmp / "in.wav"), ["audio file is empty", "in.wav"]
    if case == "inference: input is a folder":
        (tmp / "in.wav").mkdir()
        return "inference.py", fill(tmp / "in.wav"), ["got a folder", "in.wav"]
    if case == "inference: input truncated":
        return "inference.py", fill(truncated_wav(tmp / "in.wav")), ["in.wav", "truncated", "promises 1.200 s"]
    if case == "inference: input only silence":
        write_wav(tmp / "in.wav", np.zeros(SR, np.float32))
        return "inference.py", fill(tmp / "in.wav"), ["in.wav", "silent throughout"]
    if case == "inference: input with NaN/Inf":
        wave = gapped()
        wave[[2205, 2300]] = [np.nan, np.inf]
        write_wav(tmp / "in.wav", wave, subtype="FLOAT")
        return "inference.py", fill(tmp / "in.wav"), ["in.wav", "2 non-finite samples", "0.100 s"]
    if case == "inference: --gaps gap touches the start":
        return "inference.py", fill(ok_input, "--gaps", "0:0.05"), ["ok.wav", "touches the start"]
    if case == "inference: --gaps gap touches the end":
        return "inference.py", fill(ok_input, "--gaps", "1.15:1.2"), ["ok.wav", "touches the end"]
    if case == "inference: --gaps malformed":
        return "inference.py", fill(ok_input, "--gaps", "0.6-0.65"), ["--gaps", "'0.6-0.65'"]
    if case == "inference: --gaps past the end":
        return "inference.py", fill(ok_input, "--gaps", "1.1:1.5"), ["--gaps", "ends after the file"]
    if case == "inference: checkpoint empty":
        (tmp / "empty.pt").write_bytes(b"")
        return "inference.py", ["--checkpoint", tmp / "empty.pt", "--input", ok_input, "--output", out], \
            ["empty.pt", "truncated or not a checkpoint"]
    if case == "inference: checkpoint weights do not fit its config":
        return "inference.py", ["--checkpoint", t.swapped, "--input", ok_input, "--output", out], \
            ["swapped.pt", "do not fit the unet model", "missing"]
    if case == "inference: output is a folder":
        out.mkdir()
        return "inference.py", fill(ok_input), ["--output", "out.wav is a folder"]
    if case == "evaluate: --data missing":
        return "evaluate.py", ["--checkpoint", t.best, *evaluate[2:], "--data", tmp / "nowhere"], \
            ["data folder not found", "nowhere"]
    if case == "evaluate: --data empty folder":
        (tmp / "songs").mkdir()
        return "evaluate.py", ["--checkpoint", t.best, *evaluate[2:], "--data", tmp / "songs"], \
            ["songs", "no audio files"]
    if case == "evaluate: checkpoint truncated":
        data = t.best.read_bytes()
        (tmp / "cut.pt").write_bytes(data[: len(data) // 3])
        return "evaluate.py", ["--checkpoint", tmp / "cut.pt", *evaluate], ["cut.pt", "truncated"]
    if case == "evaluate: checkpoint weights do not fit its config":
        return "evaluate.py", ["--checkpoint", t.swapped, *evaluate], ["swapped.pt", "do not fit"]
    if case == "evaluate: config key typo":
        (tmp / "typo.yaml").write_text(t.config.read_text().replace("seed:", "sede:"))
        return "evaluate.py", ["--config", tmp / "typo.yaml", *evaluate], ["typo.yaml", "unknown key 'sede'"]
    raise AssertionError(case)


CASES = [
    "train: config file missing", "train: config file empty", "train: config file not text",
    "train: config key typo", "train: --set key typo", "train: wrong type", "train: gap longer than the crop",
    "train: n_mels beyond the STFT", "train: data folder empty", "train: data root is a file",
    "train: LJSpeech without metadata.csv", "train: metadata.csv names only missing wavs",
    "train: every wav unreadable", "train: resume checkpoint missing", "train: resume checkpoint empty",
    "train: resume checkpoint truncated", "train: resume from a wav", "train: resume with another base_channels",
    "train: resume an fc checkpoint as a unet", "train: resume weights that do not fit their config",
    "train: resume with --set of a wrong type", "train: checkpoints_dir is a file", "train: run exists (no --resume)",
    "inference: input empty", "inference: input is a folder", "inference: input truncated",
    "inference: input only silence", "inference: input with NaN/Inf", "inference: --gaps gap touches the start",
    "inference: --gaps gap touches the end", "inference: --gaps malformed", "inference: --gaps past the end",
    "inference: checkpoint empty", "inference: checkpoint weights do not fit its config",
    "inference: output is a folder",
    "evaluate: --data missing", "evaluate: --data empty folder", "evaluate: checkpoint truncated",
    "evaluate: checkpoint weights do not fit its config", "evaluate: config key typo",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_exit_code_2(case, tmp_path, trained):
    script, args, fragments = bad_input(case, tmp_path, trained)
    before = snapshot(tmp_path, trained.base)
    done = cli(script, *args)
    assert_one_error_line(done, 2, *fragments)
    assert snapshot(tmp_path, trained.base) == before, "an input was changed or an output file written"


@pytest.mark.parametrize("case", ["train: config key typo", "inference: input truncated",
                                  "evaluate: checkpoint truncated"])
def test_in_process_runner_matches_a_real_process(case, tmp_path, trained):
    script, args, _ = bad_input(case, tmp_path, trained)
    real, here = run_script(script, *args), cli(script, *args)
    assert (real.returncode, real.stderr, real.stdout) == (here.returncode, here.stderr, here.stdout)


def test_debug_shows_the_traceback(tmp_path):
    done = run_script("train.py", "--config", tmp_path / "nope.yaml", "--debug")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(f"UserError: config file not found: {tmp_path / 'nope.yaml'}")


def test_silent_runs_beyond_the_given_gaps_are_warned_about_and_kept(tmp_path, trained):
    source = write_wav(tmp_path / "two.wav", gapped(1.5, spans=[(0.4, 0.45), (1.0, 1.05)]))
    out = tmp_path / "out.wav"
    done = cli("inference.py", "--checkpoint", trained.best, "--input", source, "--output", out, "--gaps", "0.4:0.45")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING ")]
    assert len(warnings) == 1 and "two.wav" in warnings[0] and "1 more silent stretch" in warnings[0] \
        and "1.000 s" in warnings[0], done.stderr
    original, filled = sf.read(str(source), dtype="int16")[0], sf.read(str(out), dtype="int16")[0]
    given, other = slice(round(0.4 * SR), round(0.45 * SR)), slice(int(1.0 * SR), int(1.05 * SR))
    assert np.any(filled[given] != 0), "the given gap was not filled"
    assert not np.any(filled[other]), "the other silent run was changed"
    outside = np.ones(len(original), dtype=bool)
    outside[given] = False
    assert np.array_equal(filled[outside], original[outside])
