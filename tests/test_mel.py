"""Log-Mel features against librosa, their Griffin-Lim inverse, and resampling."""
from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import synth_clip
from processors.audio_io import load_mono, read_audio, resample
from processors.core.errors import UserError
from processors.mel import MelSpectrogram, amplitude_to_normalised, normalised_to_amplitude
from processors.vocoders import MelToWave
from processors.core.config import AudioConfig

TINY = AudioConfig(sample_rate=16000, n_fft=512, win_length=512, hop_length=128, n_mels=40, f_max=8000.0)
LJSPEECH = AudioConfig()                  # the shipped 22,050 Hz / 1024 / 256 / 80-band setting
AUDIO = [pytest.param(TINY, id="16k-40"), pytest.param(LJSPEECH, id="22k-80")]


def harmonic_tone(sr: int, seconds: float = 1.0, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))).astype(np.float32)


@pytest.mark.parametrize("audio", AUDIO)
@pytest.mark.parametrize("mel_scale, norm", [("slaney", "slaney"), ("htk", "none")])
def test_matches_librosa(audio, mel_scale, norm):
    audio = dataclasses.replace(audio, mel_scale=mel_scale, mel_norm=norm)
    wave = synth_clip(0.8, audio.sample_rate, seed=1)
    ours = MelSpectrogram(audio)(torch.from_numpy(wave))
    ref = librosa.feature.melspectrogram(
        y=wave, sr=audio.sample_rate, n_fft=audio.n_fft, hop_length=audio.hop_length,
        win_length=audio.win_length, window="hann", center=True, pad_mode="reflect", power=1.0,
        n_mels=audio.n_mels, fmin=audio.f_min, fmax=audio.f_max, htk=mel_scale == "htk",
        norm="slaney" if norm == "slaney" else None)
    ref = amplitude_to_normalised(torch.from_numpy(ref), audio.min_db, audio.max_db)
    assert ours.shape == ref.shape == (audio.n_mels, len(wave) // audio.hop_length + 1)
    assert (ours - ref).abs().max().item() < 1e-3


def test_normalisation_range_and_inverse():
    amp = torch.tensor([0.0, 1e-6, 1e-5, 1e-3, 1.0, 10.0])
    norm = amplitude_to_normalised(amp, -100.0, 20.0)
    assert norm[0] == norm[1] == norm[2] == 0.0                 # at or below the floor
    assert norm[-1].item() == pytest.approx(1.0)
    assert torch.allclose(normalised_to_amplitude(norm[2:], -100.0, 20.0), amp[2:], rtol=1e-4)
    assert normalised_to_amplitude(torch.tensor([-0.5]), -100.0, 20.0).item() == pytest.approx(1e-5)


def test_batched_input_keeps_leading_dims():
    wave = torch.from_numpy(np.stack([synth_clip(0.5, 16000, s) for s in range(3)]))
    mel = MelSpectrogram(TINY)
    out = mel(wave)
    assert out.shape == (3, TINY.n_mels, wave.shape[-1] // TINY.hop_length + 1)
    assert torch.allclose(out[1], mel(wave[1]), atol=1e-6)


@pytest.mark.parametrize("audio", AUDIO)
def test_round_trip_of_a_harmonic_tone(audio):
    """Mel -> Griffin-Lim -> Mel keeps the Mel close.

    Measured mean abs errors (normalised units): about 0.005 (16 kHz) and 0.010
    (22 kHz) on the tone with a little noise; an inverse off by a factor of two in
    amplitude gives about 0.05, power instead of amplitude 0.13, a wrong filterbank
    norm 0.27-0.36, plain noise 0.15. A pure tone (no noise floor) measures about 0.04.
    """
    mel = MelSpectrogram(audio)
    vocoder = MelToWave(audio, n_iter=32)
    for wave, limit in ((synth_clip(1.0, audio.sample_rate, seed=3), 0.025),
                        (harmonic_tone(audio.sample_rate), 0.06)):
        m = mel(torch.from_numpy(wave))
        back = vocoder(m)
        assert back.shape == ((m.shape[-1] - 1) * audio.hop_length,)
        assert torch.isfinite(back).all()
        error = (mel(back) - m).abs().mean().item()
        assert error < limit, f"round-trip error {error:.4f} >= {limit}"


def test_vocoder_is_seeded_and_leaves_global_rng_alone():
    mel = MelSpectrogram(TINY)(torch.from_numpy(synth_clip(0.3, 16000)))
    vocoder = MelToWave(TINY, n_iter=4)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = vocoder(mel)
    assert torch.equal(torch.rand(3), expected_next)
    assert torch.equal(vocoder(mel), first)
    assert not torch.equal(vocoder(mel, seed=1), first)


@pytest.mark.parametrize("frames", [8, 17, 32])
def test_output_length_is_frames_minus_one_times_hop(frames):
    vocoder = MelToWave(TINY, n_iter=2)
    out = vocoder(torch.full((TINY.n_mels, frames), 0.5))
    assert out.shape == ((frames - 1) * TINY.hop_length,)


# --------------------------------------------------------------------------- resampling and I/O

def dominant_frequency(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spectrum)])


def test_resample_keeps_pitch_and_duration():
    sr_in, sr_out = 22050, 16000
    wave = np.sin(2 * np.pi * 1000 * np.arange(sr_in) / sr_in).astype(np.float32)
    out = resample(wave, sr_in, sr_out)
    assert out.dtype == np.float32
    assert abs(len(out) - sr_out) <= 1
    assert dominant_frequency(out, sr_out) == pytest.approx(1000, abs=2)
    assert np.abs(out).max() == pytest.approx(1.0, abs=0.02)


def test_resample_same_rate_is_identity():
    wave = synth_clip(0.1, 16000)
    assert np.array_equal(resample(wave, 16000, 16000), wave)


def test_load_mono_downmixes_resamples_and_cleans(tmp_path):
    sr = 22050
    left = np.sin(2 * np.pi * 440 * np.arange(sr // 2) / sr).astype(np.float32)
    stereo = np.stack([left, left], axis=1) * 0.5
    stereo[100, 0] = np.nan                        # one broken sample must not poison the file
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, sr, subtype="FLOAT")
    out = load_mono(path, 16000)
    assert out.ndim == 1 and out.dtype == np.float32
    assert abs(len(out) - 8000) <= 1
    assert np.isfinite(out).all()
    assert dominant_frequency(out, 16000) == pytest.approx(440, abs=3)
    samples, rate = read_audio(path)
    assert samples.shape == (sr // 2, 2) and rate == sr


@pytest.mark.parametrize("content", [None, b"", b"RIFF\x00\x00garbage" * 10])
def test_read_audio_errors(tmp_path, content):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=str(path.name)):
        read_audio(path)


def test_read_audio_folder_is_an_error(tmp_path):
    with pytest.raises(UserError, match="folder"):
        read_audio(tmp_path)
