"""File sources (LJSpeech-1.1, folders), the split by file, and Mel computation."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import N_CLIPS, write_clip, write_ljspeech
from datasets.mel_dataset import build_splits, compute_mels
from datasets.sources import SOURCES, folder_files, list_files, ljspeech_files, split_files
from processors.core.errors import UserError


def test_ljspeech_loader_reads_the_fixture(ljspeech_dir):
    files = ljspeech_files(ljspeech_dir)
    assert len(files) == N_CLIPS
    assert set(files) == set((ljspeech_dir / "wavs").glob("*.wav"))
    assert files[0].name == "LJ001-0001.wav"          # metadata order


def test_ljspeech_skips_bad_lines_and_missing_wavs(ljspeech_dir, caplog):
    meta = ljspeech_dir / "metadata.csv"
    meta.write_text(meta.read_text() + "a line without any separator\n\n"
                    "LJ999-0001|no wav for this id|no wav for this id\n|empty id|x\n", encoding="utf-8")
    (ljspeech_dir / "wavs" / "stray.wav").write_bytes(b"")        # not in metadata: ignored
    with caplog.at_level(logging.WARNING):
        files = ljspeech_files(ljspeech_dir)
    assert len(files) == N_CLIPS
    assert "2 malformed lines and 1 ids with no wav" in caplog.text


def test_ljspeech_metadata_with_crlf_and_utf8(ljspeech_dir):
    meta = ljspeech_dir / "metadata.csv"
    meta.write_bytes(meta.read_text().replace("Sentence", "Sentênce").replace("\n", "\r\n").encode("utf-8"))
    assert len(ljspeech_files(ljspeech_dir)) == N_CLIPS


@pytest.mark.parametrize("problem, message", [("no_folder", "not found"), ("no_metadata", "metadata.csv"),
                                              ("no_wavs", "names no wav"), ("is_file", "not a folder")])
def test_ljspeech_errors(tmp_path, ljspeech_dir, problem, message):
    root = ljspeech_dir
    if problem == "no_folder":
        root = tmp_path / "missing"
    elif problem == "no_metadata":
        (root / "metadata.csv").unlink()
    elif problem == "no_wavs":
        for wav in (root / "wavs").glob("*.wav"):
            wav.unlink()
    else:
        root = root / "metadata.csv"
    with pytest.raises(UserError, match=message):
        ljspeech_files(root)


def test_folder_loader_is_recursive_sorted_and_filters_extensions(tmp_path):
    root = tmp_path / "songs"
    for rel in ("b/two.wav", "a/one.flac", "c/deep/three.ogg", "four.WAV"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.zeros(100, dtype=np.float32), 8000)
    (root / "notes.txt").write_text("not audio")
    (root / "fake.wav").mkdir()                    # a folder with an audio suffix is not a file
    files = folder_files(root)
    assert [f.relative_to(root).as_posix() for f in files] == ["a/one.flac", "b/two.wav", "c/deep/three.ogg",
                                                               "four.WAV"]
    assert SOURCES["cal500"](root) == files


def test_folder_loader_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        folder_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio files"):
        folder_files(tmp_path / "empty")


def test_list_files_joins_several_roots(tmp_path):
    a, b = write_ljspeech(tmp_path / "a", 3), write_ljspeech(tmp_path / "b", 2)
    files = list_files("ljspeech", [str(a), str(b)])
    assert len(files) == 5 and files[:3] == ljspeech_files(a)


# --------------------------------------------------------------------------- split

def fake_files(n: int) -> list[Path]:
    return [Path(f"/data/wavs/clip{i:03d}.wav") for i in range(n)]


@pytest.mark.parametrize("n", [3, 8, 40, 101])
def test_split_is_deterministic_disjoint_and_complete(n):
    files = fake_files(n)
    split = split_files(files, 0.05, 0.1)
    shuffled = files[:]
    random.Random(0).shuffle(shuffled)
    assert split_files(shuffled, 0.05, 0.1) == split
    parts = [set(split[k]) for k in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == n
    assert set.union(*parts) == set(files)
    assert all(len(p) >= 1 for p in parts), "every non-zero share gets a file"
    assert len(split["val"]) == int(np.ceil(n * 0.05))


def test_split_follows_file_names_not_folders():
    files = fake_files(30)
    moved = [f.parent.parent / "elsewhere" / f.name for f in files]
    names = lambda s: {k: [f.name for f in v] for k, v in s.items()}  # noqa: E731
    assert names(split_files(files, 0.1, 0.1)) == names(split_files(moved, 0.1, 0.1))


def test_split_without_test_share_and_too_few_files():
    split = split_files(fake_files(10), 0.2, 0.0)
    assert split["test"] == [] and len(split["val"]) == 2
    with pytest.raises(UserError, match="too few"):
        split_files(fake_files(2), 0.05, 0.05)


def test_build_splits_from_config(tiny_cfg, ljspeech_dir):
    split = build_splits(tiny_cfg)
    assert {len(v) for v in split.values()} <= {1, 6} and len(split["train"]) == 6
    assert build_splits(tiny_cfg) == split


# --------------------------------------------------------------------------- compute_mels

def test_compute_mels_shapes(tiny_cfg, ljspeech_dir):
    files = ljspeech_files(ljspeech_dir)[:3]
    mels = compute_mels(files, tiny_cfg.audio, 0.5, 0.2)
    a = tiny_cfg.audio
    for path, mel in zip(files, mels):
        n = round(sf.info(str(path)).frames * a.sample_rate / sf.info(str(path)).samplerate)
        assert mel.dtype == np.float32 and mel.shape[0] == a.n_mels
        assert abs(mel.shape[1] - (n // a.hop_length + 1)) <= 1
        assert 0.0 <= mel.min() and mel.max() < 1.2


def test_compute_mels_skips_and_counts_bad_files(tiny_cfg, ljspeech_dir, tmp_path, caplog):
    files = ljspeech_files(ljspeech_dir)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    with caplog.at_level(logging.WARNING):
        mels = compute_mels(files + [corrupt], tiny_cfg.audio, 0.5, 0.2, "train files")
    assert len(mels) == len(files)
    assert "skipped 1 of 9" in caplog.text and "corrupt.wav" in caplog.text


def test_compute_mels_skips_short_and_silent_files(tiny_cfg, ljspeech_dir, tmp_path):
    files = ljspeech_files(ljspeech_dir)
    short = write_clip(tmp_path / "short.wav", 0.2)
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(22050, dtype=np.float32), 22050)
    mels = compute_mels(files + [short, silent], tiny_cfg.audio, 0.5, 0.5)
    assert len(mels) == len(files)


def test_compute_mels_fails_when_too_many_are_bad(tiny_cfg, ljspeech_dir, tmp_path):
    files = ljspeech_files(ljspeech_dir)[:4]
    bad = []
    for i in range(2):
        path = tmp_path / f"bad{i}.wav"
        path.write_bytes(b"not audio at all" * 10)
        bad.append(path)
    with pytest.raises(UserError, match=r"2 of 6 files unusable.*max_bad_fraction"):
        compute_mels(files + bad, tiny_cfg.audio, 0.5, 0.2, "train files")
    with pytest.raises(UserError, match="unusable"):
        compute_mels(bad, tiny_cfg.audio, 0.5, 1.0)       # nothing usable is always fatal
