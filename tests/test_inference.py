"""scripts/inference.py end to end, with a checkpoint from a tiny training run.

The model is barely trained, so these tests check the plumbing (what is written
where, what is left alone, how errors look), not the quality of the fill.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import make_tiny_cfg, run_script, synth_clip, write_ljspeech
from training.trainer import Trainer

SR = 22050                     # the files are at LJSpeech's rate; the model runs at 16 kHz


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    base = tmp_path_factory.mktemp("trained")
    cfg = make_tiny_cfg(write_ljspeech(base / "LJSpeech-1.1"), base, "train.max_steps=20",
                        "train.val_every=10", "train.ckpt_every=10", "train.log_every=10")
    Trainer(cfg).fit()
    return base / "checkpoints" / "tiny" / "best.pt"


def pcm(seconds: float, seed: int = 11, channels: int = 1) -> np.ndarray:
    """int16 (N,) or (N, C) of a synthetic clip: never silent on its own."""
    wave = synth_clip(seconds, SR, seed)
    if channels > 1:
        wave = np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1)
    return np.round(wave * 32767).astype(np.int16)


def with_silence(samples: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    out = samples.copy()
    for a, b in spans:
        out[int(a * SR):int(b * SR)] = 0
    return out


def write(path, samples: np.ndarray):
    sf.write(str(path), samples, SR, subtype="PCM_16")
    return path


def read_int16(path) -> np.ndarray:
    return sf.read(str(path), dtype="int16")[0]


def assert_user_error(done, *fragments: str):
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --------------------------------------------------------------------------- filling

def test_fills_silent_gaps_and_leaves_everything_else(checkpoint, tmp_path):
    spans = [(0.40, 0.45), (1.00, 1.05)]
    source = pcm(1.5)
    gapped = write(tmp_path / "gapped.wav", with_silence(source, spans))
    before = gapped.read_bytes()
    out, figure = tmp_path / "filled.wav", tmp_path / "figs" / "filled.png"
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", gapped, "--output", out,
                      "--figure", figure)
    assert done.returncode == 0, done.stderr
    assert "filled 2 gap(s)" in done.stdout

    filled, original = read_int16(out), read_int16(gapped)
    info = sf.info(str(out))
    assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
    assert filled.shape == original.shape
    inside = np.zeros(len(original), dtype=bool)
    for a, b in spans:
        inside[int(a * SR):int(b * SR)] = True
    assert np.array_equal(filled[~inside], original[~inside]), "samples outside the gaps changed"
    for a, b in spans:
        assert np.any(filled[int(a * SR):int(b * SR)] != 0), f"gap {a}-{b} s left silent"
    assert gapped.read_bytes() == before, "the input file was modified"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explicit_gaps_on_a_stereo_file(checkpoint, tmp_path):
    source = write(tmp_path / "stereo.wav", pcm(1.2, seed=5, channels=2))   # no silence at all
    out = tmp_path / "out.wav"
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", source, "--output", out,
                      "--gaps", "0.50:0.55")
    assert done.returncode == 0, done.stderr
    filled, original = read_int16(out), read_int16(source)
    assert filled.shape == original.shape and filled.shape[1] == 2
    s, e = round(0.50 * SR), round(0.55 * SR)
    outside = np.ones(len(original), dtype=bool)
    outside[s:e] = False
    assert np.array_equal(filled[outside], original[outside])
    assert not np.array_equal(filled[s:e], original[s:e]), "the given range was not replaced"
    assert np.array_equal(filled[s:e, 0], filled[s:e, 1]), "one mono fill goes to every channel"


# --------------------------------------------------------------------------- errors

def make_case(case: str, tmp_path, checkpoint):
    """(args, expected message fragments) for one user error."""
    ckpt, out = checkpoint, tmp_path / "out.wav"
    source = tmp_path / "in.wav"
    if case == "missing input":
        return ["--checkpoint", ckpt, "--input", tmp_path / "nope.wav", "--output", out], ["not found"]
    if case == "unreadable input":
        source.write_bytes(np.random.default_rng(0).bytes(5000))
        return ["--checkpoint", ckpt, "--input", source, "--output", out], ["cannot decode", "in.wav"]
    if case == "text named .mp3":         # libmpg123 has its own say on fd 2; the user sees one line
        source = tmp_path / "in.mp3"
        source.write_text("not audio at all\n" * 50)
        return ["--checkpoint", ckpt, "--input", source, "--output", out], ["cannot decode", "in.mp3"]
    if case == "no gap":
        write(source, pcm(1.0))
        return ["--checkpoint", ckpt, "--input", source, "--output", out], ["no gap found", "--gaps"]
    if case == "gap at start":
        write(source, with_silence(pcm(1.0), [(0.0, 0.05)]))
        return ["--checkpoint", ckpt, "--input", source, "--output", out], ["no gap found", "start or end"]
    if case == "gap at end":
        write(source, with_silence(pcm(1.0), [(0.95, 1.0)]))
        return ["--checkpoint", ckpt, "--input", source, "--output", out], ["no gap found", "start or end"]
    if case == "gap too long":
        write(source, with_silence(pcm(1.5), [(0.5, 0.9)]))
        return ["--checkpoint", ckpt, "--input", source, "--output", out], ["longer than this model can fill"]
    if case == "checkpoint missing":
        write(source, with_silence(pcm(1.0), [(0.4, 0.45)]))
        return ["--checkpoint", tmp_path / "nope.pt", "--input", source, "--output", out], ["checkpoint not found"]
    if case == "checkpoint truncated":
        write(source, with_silence(pcm(1.0), [(0.4, 0.45)]))
        data = checkpoint.read_bytes()
        (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
        return ["--checkpoint", tmp_path / "cut.pt", "--input", source, "--output", out], ["cut.pt", "truncated"]
    if case == "bad output suffix":
        write(source, with_silence(pcm(1.0), [(0.4, 0.45)]))
        return ["--checkpoint", ckpt, "--input", source, "--output", tmp_path / "out.mp4"], [".wav"]
    raise AssertionError(case)


CASES = ["missing input", "unreadable input", "text named .mp3", "no gap", "gap at start", "gap at end", "gap too long",
         "checkpoint missing", "checkpoint truncated", "bad output suffix"]


@pytest.mark.parametrize("case", CASES)
def test_user_errors_are_one_line_with_exit_code_2(case, tmp_path, checkpoint):
    args, fragments = make_case(case, tmp_path, checkpoint)
    done = run_script("inference.py", *args)
    assert_user_error(done, *fragments)
    assert not (tmp_path / "out.wav").exists(), "nothing is written on error"


def test_output_equal_to_input_is_refused(checkpoint, tmp_path):
    source = write(tmp_path / "in.wav", with_silence(pcm(1.0), [(0.4, 0.45)]))
    before = source.read_bytes()
    same = tmp_path / "sub" / ".." / "in.wav"            # another spelling of the same file
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", source, "--output", same)
    assert_user_error(done, "is the input file")
    assert source.read_bytes() == before


def test_an_existing_output_is_kept_unless_force_is_given(checkpoint, tmp_path):
    source = write(tmp_path / "in.wav", with_silence(pcm(1.0), [(0.4, 0.45)]))
    mine = write(tmp_path / "mine.wav", pcm(0.5, seed=3))            # a file the user already had
    before = mine.read_bytes()
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", source, "--output", mine)
    assert_user_error(done, "--output", "mine.wav exists", "--force")
    assert mine.read_bytes() == before
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", source, "--output", mine, "--force")
    assert done.returncode == 0, done.stderr
    assert len(read_int16(mine)) == len(read_int16(source))


@pytest.mark.parametrize("figure, fragment", [("fig.xyz", "use a .png, .pdf, .svg"), ("in.wav", "is the input file"),
                                              ("out.wav", "is the --output file"), (".", "is a folder"),
                                              ("in.wav/fig.png", "in.wav is a file, not a folder")])
def test_a_bad_figure_name_fails_before_anything_is_written(checkpoint, tmp_path, figure, fragment):
    source = write(tmp_path / "in.wav", with_silence(pcm(1.0), [(0.4, 0.45)]))
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", source, "--output", tmp_path / "out.wav",
                      "--figure", tmp_path / figure)
    assert_user_error(done, "--figure", fragment)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("gaps, fragment", [(["--gaps", "0.4:inf"], "both finite"),
                                            (["--gaps", "0.4:0.400001"], "shorter than one sample"),
                                            (["--gaps=-1:0.5"], "needs 0 <= start < end"),
                                            (["--gaps", "-1:0.5"], "--gaps=-1:0.5")])     # argparse's, with the way out
def test_impossible_gaps_are_one_line_errors(checkpoint, tmp_path, gaps, fragment):
    source = write(tmp_path / "in.wav", with_silence(pcm(1.0), [(0.4, 0.45)]))
    done = run_script("inference.py", "--checkpoint", checkpoint, "--input", source, "--output", tmp_path / "out.wav",
                      *gaps)
    assert_user_error(done, fragment)
    assert not (tmp_path / "out.wav").exists()


def test_a_checkpoint_folder_is_named_as_one(checkpoint, tmp_path):
    source = write(tmp_path / "in.wav", with_silence(pcm(1.0), [(0.4, 0.45)]))
    done = run_script("inference.py", "--checkpoint", checkpoint.parent, "--input", source,
                      "--output", tmp_path / "out.wav")
    assert_user_error(done, "is a folder", "best.pt")
