"""The on-disk log-Mel cache: keys, atomic entries, resuming, and training from it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_cfg, run_script, write_clip
from datasets.mel_cache import MelCache, cache_key, fill_cache
from datasets.mel_dataset import MaskedMelCrops, build_splits, compute_mels
from datasets.sources import list_files
from processors.core.config import AudioConfig
from training.trainer import Trainer


def all_files(cfg):
    return list_files(cfg.data.dataset, [cfg.data.root])


def test_key_changes_with_every_audio_parameter_and_the_dataset():
    base = AudioConfig()
    keys = {cache_key(base, "ljspeech")}
    for f in dataclasses.fields(AudioConfig):
        value = getattr(base, f.name)
        other = value + "x" if isinstance(value, str) else value + 1
        keys.add(cache_key(dataclasses.replace(base, **{f.name: other}), "ljspeech"))
    keys.add(cache_key(base, "folder"))
    assert len(keys) == len(dataclasses.fields(AudioConfig)) + 2
    assert cache_key(AudioConfig(), "ljspeech") == cache_key(base, "ljspeech")   # stable


def test_cached_mels_equal_computed_ones_and_are_memory_mapped(tiny_cfg, tmp_path):
    files = all_files(tiny_cfg)
    cache = MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech")
    plain = compute_mels(files, tiny_cfg.audio, 0.5, 0.2)
    filled = compute_mels(files, tiny_cfg.audio, 0.5, 0.2, cache=cache)     # computes and writes
    assert len(list(cache.dir.glob("*.npy"))) == len(files)
    read = compute_mels(files, tiny_cfg.audio, 0.5, 0.2, cache=cache)       # reads
    assert all(isinstance(m, np.memmap) for m in read)
    for a, b, c in zip(plain, filled, read):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # the short-file rule follows the config, not the value the entry was written under
    assert len(compute_mels(files, tiny_cfg.audio, 1.5, 1.0, cache=cache)) < len(files)


def test_another_audio_setting_never_reads_the_old_cache(tiny_cfg, tmp_path):
    files = all_files(tiny_cfg)[:2]
    fill_cache(files, MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech"))
    other = dataclasses.replace(tiny_cfg.audio, n_mels=32)
    cache = MelCache(tmp_path / "cache", other, "ljspeech")
    assert not any(cache.has(f) for f in files)
    assert all(m.shape[0] == 32 for m in compute_mels(files, other, 0.5, 0.2, cache=cache))


def test_interrupted_write_leaves_no_entry_that_is_used(tiny_cfg, tmp_path, monkeypatch):
    [path] = all_files(tiny_cfg)[:1]
    cache = MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech")

    def half_save(f, arr):
        f.write(b"\x93NUMPY half an array")
        raise KeyboardInterrupt                     # Ctrl-C in the middle of the write

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        compute_mels([path], tiny_cfg.audio, 0.5, 0.0, cache=cache)
    monkeypatch.undo()
    assert not cache.has(path) and cache.load(path) is None
    assert not list(cache.dir.glob("*.tmp"))       # the temp file went with the exception
    # a temp file left by kill -9 is never read either
    (cache.dir / ".leftover.npy.tmp").write_bytes(b"\x93NUMPY junk")
    [mel] = compute_mels([path], tiny_cfg.audio, 0.5, 0.0, cache=cache)
    assert cache.has(path) and mel.shape[0] == tiny_cfg.audio.n_mels


def test_rerun_skips_existing_entries_and_a_changed_file_is_analysed_again(tiny_cfg, tmp_path):
    files = all_files(tiny_cfg)
    cache = MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech")
    assert fill_cache(files[:3], cache) == {"cached": 3, "skipped": 0, "failed": 0}
    assert fill_cache(files, cache) == {"cached": len(files) - 3, "skipped": 3, "failed": 0}
    write_clip(files[0], seconds=2.5, seed=99)           # same path, new content
    assert fill_cache(files, cache) == {"cached": 1, "skipped": len(files) - 1, "failed": 0}


def test_undecodable_files_are_counted_never_cached(tiny_cfg, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav file at all")
    cache = MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech")
    files = all_files(tiny_cfg)
    assert fill_cache(files + [bad], cache)["failed"] == 1
    assert not cache.has(bad)
    assert len(compute_mels(files + [bad], tiny_cfg.audio, 0.5, 0.2, cache=cache)) == len(files)


def test_entry_of_wrong_shape_is_analysed_again(tiny_cfg, tmp_path):
    [path] = all_files(tiny_cfg)[:1]
    cache = MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech")
    cache.store(path, np.zeros((3, 5), np.float32), {"samples": 16000, "peak": 0.5})
    [mel] = compute_mels([path], tiny_cfg.audio, 0.5, 0.0, cache=cache)
    assert mel.shape[0] == tiny_cfg.audio.n_mels
    assert json.loads((cache.dir / "params.json").read_text())["audio"]["n_mels"] == tiny_cfg.audio.n_mels


def test_training_with_the_cache_sees_the_same_items(tmp_path, ljspeech_dir):
    plain = make_tiny_cfg(ljspeech_dir, tmp_path / "a")
    cached = make_tiny_cfg(ljspeech_dir, tmp_path / "b", f"data.cache_dir={tmp_path / 'cache'}")
    first = Trainer(plain)
    second = Trainer(cached)                     # fills the cache
    third = Trainer(make_tiny_cfg(ljspeech_dir, tmp_path / "c", f"data.cache_dir={tmp_path / 'cache'}"))
    assert all(isinstance(m, np.memmap) for m in third.task.train_mels)
    n = len(build_splits(plain)["train"]) + len(build_splits(plain)["val"])
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == n
    crops = [MaskedMelCrops(t.task.train_mels, 32, plain.data.mask, 0, 8) for t in (first, second, third)]
    for i in range(8):
        items = [c[i] for c in crops]
        for key in ("masked", "target", "mask"):
            assert all((it[key] == items[0][key]).all() for it in items[1:])


def test_prepare_data_cli_fills_then_skips(tmp_path, ljspeech_dir):
    args = ["--config", "configs/unet_ljspeech.yaml", "--set", f"data.root={ljspeech_dir}",
            "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    first = run_script("prepare_data.py", *args)
    assert first.returncode == 0, first.stderr
    assert "8 new, 0 already cached, 0 unreadable or too short, of 8 files" in first.stdout
    second = run_script("prepare_data.py", *args)
    assert "0 new, 8 already cached" in second.stdout
    off = run_script("prepare_data.py", "--config", "configs/unet_ljspeech.yaml", "--set", f"data.root={ljspeech_dir}")
    assert off.returncode == 2 and "data.cache_dir" in off.stderr and "Traceback" not in off.stderr


def test_training_from_the_cache_gives_the_same_losses(tmp_path, ljspeech_dir):
    steps = ["train.max_steps=3", "train.val_every=3", "train.ckpt_every=3"]
    runs = [make_tiny_cfg(ljspeech_dir, tmp_path / "plain", *steps)]
    for name in ("fill", "read"):      # the first run writes the cache, the second reads it
        runs.append(make_tiny_cfg(ljspeech_dir, tmp_path / name, *steps, f"data.cache_dir={tmp_path / 'cache'}"))
    losses = []
    for cfg in runs:
        Trainer(cfg).fit()
        losses.append((Path(cfg.train.runs_dir) / "tiny" / "losses.csv").read_text())
    assert losses[0] == losses[1] == losses[2] and losses[0].count("\n") == 3


def test_analysis_in_worker_processes_gives_the_same_mels_in_the_same_order(tiny_cfg, tmp_path):
    # jobs > 1 analyses in completion order; the Mels must still come back in the files' order
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav file at all")
    files = all_files(tiny_cfg)[:4] + [bad]
    plain = compute_mels(files, tiny_cfg.audio, 0.5, 0.5)
    cache = MelCache(tmp_path / "cache", tiny_cfg.audio, "ljspeech")
    parallel = compute_mels(files, tiny_cfg.audio, 0.5, 0.5, cache=cache, jobs=2)
    assert len(parallel) == len(plain) == 4
    for a, b in zip(plain, parallel):
        np.testing.assert_array_equal(a, b)
    assert all(cache.has(f) for f in files[:4]) and not cache.has(bad)
    assert fill_cache(files, cache, jobs=2) == {"cached": 0, "skipped": 4, "failed": 1}


def test_prepare_data_counts_a_file_too_short_for_one_frame_and_refuses_a_folder_of_nothing_else(tmp_path):
    import soundfile as sf
    folder = tmp_path / "clips"
    write_clip(folder / "ok.wav", 1.0)
    folder.mkdir(exist_ok=True)
    sf.write(str(folder / "tiny.wav"), np.zeros(10, np.float32) + 0.1, 22050)
    args = ["--config", "configs/unet_ljspeech.yaml", "--set", "data.dataset=folder",
            "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    done = run_script("prepare_data.py", *args, "--set", f"data.root={folder}")
    assert done.returncode == 0 and "1 new, 0 already cached, 1 unreadable or too short, of 2 files" in done.stdout
    assert "too short to analyse" in done.stderr
    (folder / "ok.wav").unlink()
    nothing = run_script("prepare_data.py", *args, "--set", f"data.root={folder}")
    assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
    assert nothing.stderr.strip().splitlines()[-1].startswith("error: none of the 1 files")


def test_prepare_data_checks_the_cache_folder_before_decoding_anything(tmp_path, ljspeech_dir):
    (tmp_path / "afile").write_text("mine")
    done = run_script("prepare_data.py", "--config", "configs/unet_ljspeech.yaml", "--set", f"data.root={ljspeech_dir}",
                      "--set", f"data.cache_dir={tmp_path / 'afile' / 'sub'}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: data.cache_dir: {tmp_path / 'afile'} is a file, not a folder"]
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_root_given_twice_counts_its_files_once(tiny_cfg):
    from datasets.sources import data_files
    once = data_files(tiny_cfg.data)
    twice = data_files(dataclasses.replace(tiny_cfg.data, extra_roots=[tiny_cfg.data.root]))
    assert twice == once
