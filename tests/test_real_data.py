"""Real recordings from ../shared/data (skipped when that folder is absent, as in a user's clone)."""
from __future__ import annotations

import numpy as np

from conftest import SHARED, requires_shared
from datasets.sources import ljspeech_files, split_files
from processors.audio_io import load_mono, read_audio

pytestmark = requires_shared


def test_ljspeech_mini_reads_as_is():
    files = ljspeech_files(SHARED / "LJSpeech-mini")
    assert len(files) == 32
    assert files[0].name == "LJ001-0001.wav" and files[-1].name == "LJ001-0032.wav"
    samples, sr = read_audio(files[0])
    assert sr == 22050 and samples.shape[1] == 1
    split = split_files(files, 0.05, 0.05)
    assert sorted(len(v) for v in split.values()) == [2, 2, 28]


def test_ljspeech_mini_16k_resamples():
    files = ljspeech_files(SHARED / "LJSpeech-mini-16k")
    samples, sr = read_audio(files[0])
    assert sr == 16000
    wave = load_mono(files[0], 22050)
    assert abs(len(wave) - round(len(samples) * 22050 / 16000)) <= 1


def test_music_ogg_decodes():
    ogg = sorted((SHARED / "music-mini").glob("*.ogg"))
    assert len(ogg) == 8
    path = min(ogg, key=lambda p: p.stat().st_size)
    samples, sr = read_audio(path)
    assert sr == 22050 and len(samples) > 2 * sr
    wave = load_mono(path, 16000)
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - round(len(samples) * 16000 / sr)) <= 1
    assert np.isfinite(wave).all() and 0.01 < np.abs(wave).max() <= 1.5

