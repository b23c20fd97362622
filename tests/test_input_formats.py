"""Odd but valid inputs: other sample rates, channel counts and encodings are converted, and a
data folder with a few bad or short files still trains."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from conftest import make_tiny_cfg, write_clip, write_ljspeech
from datasets.mel_dataset import MaskedMelCrops, build_splits, compute_mels
from processors.gaps import find_silent_gaps
from test_reliability import SR, cli, gapped, truncated_wav, write_wav
from training.trainer import Trainer


# --------------------------------------------------------------------------- formats are converted

FORMATS = {                                   # name -> (sample rate, channels, subtype, seconds, gap)
    "stereo": (SR, 2, "PCM_16", 1.2, (0.6, 0.65)),
    "8-bit": (SR, 1, "PCM_U8", 1.2, (0.6, 0.65)),
    "48 kHz": (48000, 1, "PCM_16", 1.2, (0.6, 0.65)),
    "8 kHz": (8000, 1, "PCM_16", 1.2, (0.6, 0.65)),
    "shorter than the crop": (SR, 1, "PCM_16", 0.2, (0.085, 0.115)),   # the crop is 0.25 s
}


@pytest.mark.parametrize("name", FORMATS)
def test_other_formats_are_converted_for_training(name, tmp_path, tiny_cfg):
    sr, channels, subtype, seconds, _ = FORMATS[name]
    path = write_wav(tmp_path / "clip.wav", gapped(seconds, spans=(), sr=sr, channels=channels), sr, subtype)
    a = tiny_cfg.audio
    [mel] = compute_mels([path], a, min_seconds=0.1, max_bad_fraction=0.0)
    n = round(seconds * a.sample_rate)
    assert mel.shape[0] == a.n_mels and abs(mel.shape[1] - (n // a.hop_length + 1)) <= 1
    assert np.isfinite(mel).all() and mel.max() > 0.3, "the clip was read as silence"


@pytest.mark.parametrize("name", FORMATS)
def test_other_formats_are_filled_in_their_own_format(name, tmp_path, trained):
    sr, channels, subtype, seconds, gap = FORMATS[name]
    source = write_wav(tmp_path / "in.wav", gapped(seconds, spans=[gap], sr=sr, channels=channels), sr, subtype)
    before = source.read_bytes()
    out = tmp_path / "out.wav"
    done = cli("inference.py", "--checkpoint", trained.best, "--input", source, "--output", out)
    assert done.returncode == 0, done.stderr
    assert "filled 1 gap(s)" in done.stdout
    i, o = sf.info(str(source)), sf.info(str(out))
    assert (o.samplerate, o.channels, o.frames, o.subtype) == (i.samplerate, i.channels, i.frames, i.subtype)
    original, filled = sf.read(str(source), always_2d=True)[0], sf.read(str(out), always_2d=True)[0]
    [(s, e)] = find_silent_gaps(original, int(0.02 * sr))   # the run the script found and filled
    outside = np.ones(len(original), dtype=bool)
    outside[s:e] = False
    assert np.array_equal(filled[outside], original[outside]), "samples outside the gap changed"
    assert np.any(filled[s:e] != 0), "the gap was left silent"
    assert source.read_bytes() == before


@pytest.mark.parametrize("suffix_in, suffix_out", [(".wav", ".flac"), (".flac", ".wav")])
def test_a_24_bit_file_stays_24_bit_in_another_lossless_container(suffix_in, suffix_out, tmp_path, trained):
    # the output's sample format is the input's wherever the output's container can hold it:
    # written at the container's default (16 bits), every sample outside the gap would change
    source = tmp_path / f"in{suffix_in}"
    sf.write(str(source), gapped(1.2, spans=[(0.6, 0.65)]), SR, subtype="PCM_24")
    out = tmp_path / f"out{suffix_out}"
    done = cli("inference.py", "--checkpoint", trained.best, "--input", source, "--output", out)
    assert done.returncode == 0, done.stderr
    assert sf.info(str(out)).subtype == "PCM_24"
    original, filled = sf.read(str(source), dtype="int32")[0], sf.read(str(out), dtype="int32")[0]
    [(s, e)] = find_silent_gaps(original, int(0.02 * SR))
    outside = np.ones(len(original), dtype=bool)
    outside[s:e] = False
    assert np.array_equal(filled[outside], original[outside])


# --------------------------------------------------------------------------- datasets

@pytest.mark.parametrize("kind, kept, message", [
    ("truncated", False, "truncated"),
    ("empty", False, "audio file is empty"),
    ("header only", False, "cannot decode audio"),
    ("NaN and Inf samples", True, "2 non-finite samples (NaN/Inf) read as 0"),
    ("shorter than the crop", True, None),
])
def test_one_odd_file_among_good_ones(kind, kept, message, tmp_path, ljspeech_dir, tiny_cfg, caplog):
    """Bad files are skipped with one warning that counts them; repairable ones are kept."""
    good = sorted((ljspeech_dir / "wavs").glob("*.wav"))
    odd = tmp_path / "odd.wav"
    if kind == "truncated":
        truncated_wav(odd)
    elif kind == "empty":
        odd.write_bytes(b"")
    elif kind == "header only":
        odd.write_bytes(write_wav(odd, gapped()).read_bytes()[:30])
    elif kind == "NaN and Inf samples":
        wave = gapped(spans=())
        wave[[100, 200]] = [np.nan, -np.inf]
        write_wav(odd, wave, subtype="FLOAT")
    else:
        write_clip(odd, 0.15)
    with caplog.at_level(logging.WARNING):
        mels = compute_mels(good + [odd], tiny_cfg.audio, min_seconds=0.1, max_bad_fraction=0.2, desc="train files")
    assert len(mels) == len(good) + kept
    assert all(np.isfinite(m).all() for m in mels)
    if not kept:
        assert f"train files: skipped 1 of {len(good) + 1} files (e.g. {odd}: " in caplog.text
    if message:
        assert message in caplog.text and "odd.wav" in caplog.text


def test_clips_shorter_than_the_crop_are_padded_and_train(tmp_path):
    data = tmp_path / "LJ"
    write_ljspeech(data, n_clips=4)
    for wav in (data / "wavs").glob("*.wav"):
        write_clip(wav, 0.15)
    cfg = make_tiny_cfg(data, tmp_path, "data.min_file_seconds=0.1", "train.max_steps=2", "train.val_every=2",
                        "train.ckpt_every=2")
    trainer = Trainer(cfg)
    crop = cfg.data.crop_frames
    assert max(m.shape[1] for m in trainer.task.train_mels) < crop
    item = MaskedMelCrops(trainer.task.train_mels, crop, cfg.data.mask, 0, 1)[0]
    assert all(v.shape == (1, cfg.audio.n_mels, crop) for v in item.values())
    assert trainer.fit()["step"] == 2


def test_training_survives_a_messy_ljspeech_folder(tmp_path, caplog):
    """Mixed formats, three broken files and bad metadata lines: skipped, counted, warned about, trained on."""
    root = write_ljspeech(tmp_path / "LJSpeech-1.1", n_clips=12)
    wavs = sorted((root / "wavs").glob("*.wav"))
    conversions = [(SR, 2, "PCM_16"), (SR, 1, "PCM_U8"), (48000, 1, "PCM_16"), (8000, 1, "PCM_16"), (SR, 1, "FLOAT")]
    for wav, (sr, channels, subtype) in zip(wavs, conversions):
        write_wav(wav, gapped(1.2, spans=(), sr=sr, channels=channels), sr, subtype)
    truncated_wav(wavs[5])
    wavs[6].write_bytes(b"")
    wavs[7].write_bytes(b"not audio" * 100)
    meta = root / "metadata.csv"
    meta.write_text(meta.read_text() + "no separator on this line\nLJ404-0404|a missing wav|a missing wav\n")
    cfg = make_tiny_cfg(root, tmp_path, "data.val_fraction=0.25", "data.max_bad_fraction=0.4",
                        "train.max_steps=2", "train.val_every=2", "train.ckpt_every=2")
    with caplog.at_level(logging.WARNING):
        summary = Trainer(cfg).fit()
    assert summary["step"] == 2 and np.isfinite(summary["best_val_mse"])
    assert "skipped 1 malformed lines and 1 ids with no wav" in caplog.text
    skipped = [r.args[1] for r in caplog.records if r.getMessage().startswith(("train files: skipped",
                                                                              "val files: skipped"))]
    broken = set(wavs[5:8]) - set(build_splits(cfg)["test"])      # test files are not read in training
    assert sum(skipped) == len(broken) >= 2, caplog.text


def test_a_text_file_named_mp3_is_not_called_missing(tmp_path):
    from processors.audio_io import read_audio
    from processors.core.errors import UserError
    fake = tmp_path / "song.mp3"
    fake.write_text("not audio at all\n" * 50)
    with pytest.raises(UserError, match="cannot decode audio") as caught:
        read_audio(fake)
    assert "does not exist" not in str(caught.value) and "song.mp3" in str(caught.value)
