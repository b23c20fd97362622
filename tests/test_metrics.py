"""Metrics and the LPC baseline on tiny synthetic signals."""
import math
import os
import signal

import numpy as np
import pytest
import torch

from conftest import SHARED, requires_shared
from processors.audio_io import load_mono
from processors.isolation import CrashIsolation
from processors.lpc import lpc_edges, lpc_extrapolate, lpc_fill
from processors.metrics import (LSD_FLOOR_DB, bins_up_to, centre_frames, excerpt_bounds, log_spectral_distance,
                                mel_mse, mel_snr_db, pesq_wb, spectral_distance_db, stoi_scores)
from processors.speech_mos import dnsmos_overall, plcmos
from processors.visqol_metric import visqol_audio

torch.set_num_threads(1)
SR = 16000
STFT = dict(sr=SR, n_fft=512, win_length=512, hop=128)


def _noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _speechlike(seconds, seed=0, floor=0.0):
    """Amplitude-modulated harmonics: voiced 'syllables' at 4 Hz (pauses between them
    unless ``floor`` > 0), enough for PESQ/STOI."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.maximum(np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2, floor)
    return (0.2 * voiced * envelope + 0.002 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def test_centre_frames_picks_frames_centred_in_the_gap():
    assert centre_frames(1000, 2000, 128, 100) == (8, 16)       # centres 1024 .. 1920
    assert centre_frames(1000, 1010, 128, 100) == (8, 9)        # shorter than a hop: still one frame
    assert centre_frames(10_000, 20_000, 128, 50) == (49, 50)   # clamped to the clip


def test_lsd_is_zero_for_identical_signals_and_grows_with_distortion():
    ref = _noise(8000)
    span = (3000, 5000)
    assert log_spectral_distance(ref, ref.copy(), span, f_max=8000, **STFT) == pytest.approx(0.0, abs=1e-9)
    lsds = []
    for level in (0.01, 0.05, 0.3):
        est = ref.copy()
        est[span[0]:span[1]] += level * _noise(2000, seed=1) / 0.1
        lsds.append(log_spectral_distance(ref, est, span, f_max=8000, **STFT))
    assert 0 < lsds[0] < lsds[1] < lsds[2]


def test_lsd_ignores_frames_away_from_the_gap():
    ref = _noise(16000)
    est = ref.copy()
    est[12000:14000] = 0.0                                       # damage far after the scored gap
    assert log_spectral_distance(ref, est, (2000, 4000), f_max=8000, **STFT) == pytest.approx(0.0, abs=1e-9)


def test_lsd_respects_the_band_limit():
    t = np.arange(8000) / SR
    ref = _noise(8000)
    est = ref + (0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)   # error only at 6 kHz
    span = (3000, 5000)
    assert log_spectral_distance(ref, est, span, f_max=4000, **STFT) < 1e-3 < \
        log_spectral_distance(ref, est, span, f_max=8000, **STFT)


def test_lsd_floors_silence_instead_of_going_infinite():
    ref = _noise(8000)
    est = ref.copy()
    est[2000:6000] = 0.0
    lsd = log_spectral_distance(ref, est, (2000, 6000), f_max=8000, **STFT)
    assert math.isfinite(lsd) and 20 < lsd <= 80 + 1e-6


def test_one_lsd_for_waves_and_for_spectra():
    """The gap LSD and the vocoder benchmark's magnitude LSD are one function with one floor."""
    p_ref = np.full((5, 3), 4.0)
    assert spectral_distance_db(p_ref, p_ref, peak=4.0) == 0.0
    assert spectral_distance_db(p_ref, np.zeros_like(p_ref), peak=4.0) == pytest.approx(LSD_FLOOR_DB)
    assert spectral_distance_db(p_ref, p_ref / 10, peak=4.0) == pytest.approx(10.0)
    assert bins_up_to(4000, 512, SR) == 129 and bins_up_to(8000, 512, SR) == 257


def test_mel_snr_and_mse_for_identical_and_noisy():
    mel = np.random.default_rng(0).uniform(0.2, 0.9, (40, 12)).astype(np.float32)
    assert mel_snr_db(mel, mel.copy()) == math.inf and mel_mse(mel, mel.copy()) == 0.0
    noisy = mel + 0.01
    assert mel_mse(mel, noisy) == pytest.approx(1e-4, rel=1e-3)
    assert 20 < mel_snr_db(mel, noisy) < mel_snr_db(mel, mel + 0.001)


def test_pesq_skips_silence_with_a_reason():
    silence = np.zeros(SR, dtype=np.float32)
    score, reason = pesq_wb(silence, silence, SR)
    assert math.isnan(score) and reason.startswith("pesq:")
    score, reason = pesq_wb(_speechlike(1.0), np.zeros(SR, dtype=np.float32) + 1e-4, SR)
    assert math.isnan(score) or 1.0 <= score <= 4.7       # either skipped or a valid MOS, never a crash


def test_pesq_scores_a_clean_copy_high_and_a_damaged_one_lower():
    ref = _speechlike(2.0)
    clean, _ = pesq_wb(ref, ref.copy(), SR)
    damaged = ref.copy()
    damaged[8000:16000] = 0.0
    low, reason = pesq_wb(ref, damaged, SR)
    assert reason == "" and 4.0 < clean <= 4.7 and 1.0 <= low < clean


def test_stoi_on_half_a_second_and_more():
    ref = _speechlike(0.6, floor=0.3)      # no pauses: pystoi drops silent frames before scoring
    scores, reason = stoi_scores(ref, ref.copy(), SR)
    assert reason == "" and scores["stoi"] == pytest.approx(1.0, abs=1e-3) and scores["estoi"] > 0.99
    noisy = ref + _noise(len(ref), seed=3) * 2
    worse, _ = stoi_scores(ref, noisy, SR)
    assert worse["stoi"] < scores["stoi"] and worse["estoi"] < scores["estoi"]


def test_stoi_reports_too_short_clips_as_skipped():
    ref = _speechlike(0.1)
    scores, reason = stoi_scores(ref, ref.copy(), SR)
    assert math.isnan(scores["stoi"]) and reason.startswith("stoi:")


def test_lpc_continues_a_sinusoid():
    t = np.arange(3000) / SR
    x = 0.5 * np.sin(2 * np.pi * 440 * t + 0.3)
    out = lpc_extrapolate(x[:2000], order=16, n_out=800)
    assert out.shape == (800,) and np.max(np.abs(out - x[2000:2800])) < 0.02


def test_lpc_fill_crossfades_both_predictions_over_the_gap():
    t = np.arange(4000) / SR
    x = 0.5 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    fill = lpc_fill(x[:1500], x[2300:], 800, order=64)
    assert fill.shape == (800,) and np.max(np.abs(fill - x[1500:2300])) < 0.02


def test_lpc_edges_continue_the_context_into_the_fill_and_leave_its_middle():
    t = np.arange(4000) / SR
    x = 0.5 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    piece = np.full(800, 0.1)                                    # a fill that knows nothing
    out = lpc_edges(piece, x[:1500], x[2300:], hold=100, fade=150, order=64)
    assert np.max(np.abs(out[:100] - x[1500:1600])) < 0.02       # held: the context carried on
    assert np.max(np.abs(out[-100:] - x[2200:2300])) < 0.02
    assert np.array_equal(out[250:550], piece[250:550])          # past hold + fade: the fill itself
    # no context on a side: that edge stays the fill's; nothing asked: a copy
    assert np.array_equal(lpc_edges(piece, x[:0], x[2300:], 100, 150, 64)[:550], piece[:550])
    assert np.array_equal(lpc_edges(piece, x[:1500], x[2300:], 0, 0, 64), piece)


def test_lpc_edges_of_a_short_gap_shrink_so_each_seam_is_its_own_sides_prediction():
    t = np.arange(4000) / SR
    x = 0.5 * np.sin(2 * np.pi * 300 * t)
    out = lpc_edges(np.full(160, 9.0), x[:1500], x[1660:], hold=100, fade=100, order=64)
    # hold and fade shrink to 40 + 40 samples: each half's seam is that side's continuation alone
    assert np.max(np.abs(out[:40] - x[1500:1540])) < 0.02
    assert np.max(np.abs(out[-40:] - x[1620:1660])) < 0.02
    assert abs(out[80] - 9.0) < 0.01                             # the middle is the fill's


def test_lpc_returns_zeros_for_silent_or_tiny_context():
    assert np.all(lpc_extrapolate(np.zeros(500), 16, 50) == 0)
    assert np.all(lpc_extrapolate(np.ones(1), 16, 50) == 0)
    assert lpc_fill(np.zeros(10), np.zeros(10), 7, 4).shape == (7,)


# --------------------------------------------------------------------------- excerpts, isolation, MOS models

def test_excerpt_is_seconds_each_side_of_the_gap_cut_at_the_file_ends():
    assert excerpt_bounds((50_000, 53_200), 200_000, SR, 2.0) == (18_000, 85_200)
    assert excerpt_bounds((10_000, 13_200), 200_000, SR, 2.0) == (0, 45_200)
    assert excerpt_bounds((190_000, 193_200), 200_000, SR, 2.0) == (158_000, 200_000)


def _segfault():
    os.kill(os.getpid(), signal.SIGSEGV)


def _fails(x):
    raise ValueError(f"bad input {x}")


def test_a_crash_or_an_error_in_a_metric_costs_one_result_not_the_run():
    with CrashIsolation() as runner:
        assert runner.call(math.sqrt, 16.0) == (4.0, "")
        assert runner.call(_segfault) == (None, "crashed (killed by SIGSEGV)")
        assert runner.call(math.sqrt, 9.0) == (3.0, "")              # a fresh child took over
        value, why = runner.call(_fails, 3)
        assert value is None and why.startswith("ValueError: bad input 3")



def test_a_metric_child_that_cannot_start_reports_why_and_not_a_second_error(monkeypatch):
    # e.g. a script without a __main__ guard under "spawn": the start's own error must surface,
    # not an AttributeError from cleaning up a child that never was
    runner = CrashIsolation()
    real = runner._ctx

    class NoStart:
        Pipe = staticmethod(real.Pipe)

        @staticmethod
        def Process(**kwargs):
            proc = real.Process(**kwargs)
            proc.start = lambda: (_ for _ in ()).throw(RuntimeError("cannot start"))
            return proc

    monkeypatch.setattr(runner, "_ctx", NoStart)
    with pytest.raises(RuntimeError, match="cannot start"):
        with runner:
            runner.call(math.sqrt, 4.0)

def test_plcmos_is_deterministic_and_skips_silence():
    ref = _speechlike(3.0)
    first, why = plcmos(ref, SR)
    assert why == "" and 1.0 <= first <= 5.0 and plcmos(ref, SR)[0] == first
    assert math.isnan(plcmos(np.zeros(SR * 2, dtype=np.float32), SR)[0])
    score, why = dnsmos_overall(ref, SR)
    assert why == "" and 1.0 <= score <= 5.0


@requires_shared
def test_plcmos_hears_a_silent_400_ms_gap_in_real_speech():
    clean = load_mono(SHARED / "LJSpeech-mini" / "wavs" / "LJ001-0001.wav", SR)
    gapped = clean.copy()
    middle = len(clean) // 2
    gapped[middle:middle + int(0.4 * SR)] = 0.0
    assert plcmos(gapped, SR)[0] < plcmos(clean, SR)[0] - 0.1


def test_visqol_scores_a_copy_above_a_gapped_one():
    t = np.arange(4 * SR) / SR
    ref = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
           + 0.01 * _noise(len(t))).astype(np.float32)
    gapped = ref.copy()
    gapped[2 * SR:2 * SR + SR // 4] = 0.0
    same, why = visqol_audio(ref, ref.copy(), SR)
    worse, _ = visqol_audio(ref, gapped, SR)
    assert why == "" and 1.0 <= worse < same <= 5.0
    assert math.isnan(visqol_audio(ref[:SR // 2], ref[:SR // 2], SR)[0])


def test_mel_snr_of_a_gap_in_digital_silence_is_undefined_not_minus_300_db():
    from processors.metrics import mel_snr_db
    silent = np.zeros((8, 5))
    assert math.isnan(mel_snr_db(silent, silent)) and math.isnan(mel_snr_db(silent, silent + 0.01))
    assert mel_snr_db(silent + 0.5, silent + 0.5) == math.inf
