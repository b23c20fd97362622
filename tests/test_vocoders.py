"""Vocoders: the registry, Mel inversions, context Griffin-Lim's known frames and slicing."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from conftest import assert_only_gaps_changed, BASE_CONFIG, synth_clip
from processors.core.errors import UserError
from processors.gaps import gap_frames
from processors.inpaint import inpaint_audio
from processors.mel import MEL_INVERSES, MelInverse, MelSpectrogram, normalised_to_amplitude
from models.vocoder_nets import VOCODERS, build_vocoder
from processors.vocoders import (PHASE_INITS, ContextGriffinLim, context_griffin_lim, detail_start, initial_phase,
                                 known_frames, mel_gain_to_linear, stft, unknown_span)
from processors.core.config import AudioConfig, Config, VocoderConfig
from training.configure import load_config

TINY = AudioConfig(sample_rate=16000, n_fft=512, win_length=512, hop_length=128, n_mels=40, f_max=8000.0)
FRAMES = 48
N = (FRAMES - 1) * TINY.hop_length


def gapped_window(start: int = 2600, end: int = 3400, seed: int = 0):
    """A tiny window: clean wave (N,), the gapped context, its Mel and its hole (bool (N,))."""
    clean = torch.from_numpy(synth_clip(N / TINY.sample_rate + 0.01, TINY.sample_rate, seed)[:N])
    context = clean.clone()
    context[start:end] = 0.0
    hole = torch.zeros(N, dtype=torch.bool)
    hole[start:end] = True
    return clean, context, MelSpectrogram(TINY)(clean), hole


def tiny_known(hole: torch.Tensor) -> torch.Tensor:
    """The frames (bool (FRAMES,)) whose window misses ``hole``."""
    return known_frames(hole, TINY.n_fft, TINY.hop_length)


def tiny_vocoder(method: str, mel_inverse: str = "pinv", n_iter: int = 3, nets: dict | None = None):
    """The vocoder ``method`` on the tiny audio; a learned one gets its net from ``nets``."""
    cfg = Config(audio=TINY, vocoder=VocoderConfig(method=method, mel_inverse=mel_inverse, n_iter=n_iter,
                                                   checkpoint=(nets or {}).get(method, "")))
    return build_vocoder(cfg)


# --------------------------------------------------------------------------- every method

@pytest.mark.parametrize("mel_inverse", sorted(MEL_INVERSES))
@pytest.mark.parametrize("method", sorted(VOCODERS))
def test_every_method_runs_on_a_tiny_input(method, mel_inverse, vocoder_nets):
    _, context, mel, hole = gapped_window()
    vocoder = tiny_vocoder(method, mel_inverse, nets=vocoder_nets)
    for args in ((mel, context, hole), (mel,)):          # with a context, and without (train-time logging)
        out = vocoder(*args)
        assert out.shape == (N,) and out.dtype == torch.float32
        assert torch.isfinite(out).all() and out.abs().max() > 0


@pytest.mark.parametrize("method", sorted(VOCODERS))
def test_output_is_at_the_model_rate(method, vocoder_nets):
    """A steady 1 kHz tone comes back near 1 kHz (the Mel band there is ~150 Hz wide); at a wrong
    rate it would land at 1000 x 16000 / rate, e.g. 726 Hz for 22,050."""
    t = np.arange(N) / TINY.sample_rate
    wave = torch.from_numpy((0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    out = tiny_vocoder(method, n_iter=8, nets=vocoder_nets)(MelSpectrogram(TINY)(wave)).numpy()
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.fft.rfftfreq(len(out), 1 / TINY.sample_rate)[np.argmax(spectrum)] == pytest.approx(1000, abs=100)


@pytest.mark.parametrize("method", sorted(VOCODERS))
def test_vocoding_is_seeded(method, vocoder_nets):
    _, context, mel, hole = gapped_window()
    vocoder = tiny_vocoder(method, nets=vocoder_nets)
    assert torch.equal(vocoder(mel, context, hole), vocoder(mel, context, hole))
    # without context every frame starts from random phase, drawn from the seed
    assert torch.equal(vocoder(mel), vocoder(mel))
    assert not torch.equal(vocoder(mel, seed=1), vocoder(mel))


def test_mel_inverses_are_non_negative_and_close_to_the_mel():
    _, _, mel, _ = gapped_window()
    amp = normalised_to_amplitude(mel, TINY.min_db, TINY.max_db)
    results = {}
    for name in MEL_INVERSES:
        inverse = MelInverse(TINY, name)
        lin = inverse(amp)
        assert lin.shape == (TINY.n_fft // 2 + 1, FRAMES) and (lin >= 0).all()
        results[name] = lin
        residual = (inverse.fb.T @ lin - amp).abs().mean() / amp.mean()
        assert residual < 0.1, f"{name}: its magnitude does not map back to the Mel ({residual:.3f})"
    assert torch.allclose(results["lstsq"], results["pinv"], atol=1e-4 * amp.max())   # both minimum-norm


# --------------------------------------------------------------------------- context Griffin-Lim

@pytest.mark.parametrize("init", PHASE_INITS)
def test_known_frames_are_exactly_the_true_stft(init):
    clean, context, mel, hole = gapped_window()
    known = tiny_known(hole)
    window = torch.hann_window(TINY.win_length)
    truth = stft(context, TINY, window)
    magnitude = stft(clean, TINY, window).abs()
    spec = context_griffin_lim(magnitude, truth, known, TINY, window, n_iter=5, momentum=0.99, init=init)
    assert torch.equal(spec[:, known], truth[:, known])
    assert not torch.equal(spec[:, ~known], truth[:, ~known])


def test_samples_no_unknown_frame_reaches_are_the_context_bit_for_bit():
    _, context, mel, hole = gapped_window()
    out = ContextGriffinLim(TINY, n_iter=4)(mel, context, hole)
    unknown = torch.nonzero(~tiny_known(hole)).flatten()
    first = int(unknown[0]) * TINY.hop_length - TINY.n_fft // 2
    last = int(unknown[-1]) * TINY.hop_length + TINY.n_fft // 2
    assert torch.equal(out[:first], context[:first]) and torch.equal(out[last:], context[last:])
    assert out[2600:3400].abs().max() > 0                 # the gap itself is filled


@pytest.mark.parametrize("start, end", [(2600, 3400), (0, 300), (5700, N), (1000, 1001), (3000, 3128)])
def test_known_frames_are_those_gap_frames_leaves(start, end):
    f0, f1 = gap_frames(start, end, TINY.hop_length, TINY.n_fft, FRAMES)
    expected = torch.ones(FRAMES, dtype=torch.bool)
    expected[f0:f1] = False
    assert torch.equal(tiny_known(gapped_window(start, end)[3]), expected)


def test_held_samples_are_the_context_and_holding_changes_the_fill():
    _, context, mel, hole = gapped_window()
    held = ContextGriffinLim(TINY, n_iter=4)(mel, context, hole)
    free = ContextGriffinLim(TINY, n_iter=4, hold_samples=False)(mel, context, hole)
    assert torch.equal(held[~hole], context[~hole])       # every sample outside the hole, its edges included
    assert not torch.equal(held[2600:3400], free[2600:3400])


def test_every_frame_known_returns_the_context():
    _, context, mel, _ = gapped_window()
    out = ContextGriffinLim(TINY)(mel, context, torch.zeros(N, dtype=torch.bool))
    assert torch.equal(out, context)


def test_iterating_on_the_slice_equals_iterating_on_the_whole_window():
    """unknown_span's k = ceil(n_fft / hop) known frames per side make the slice exact
    ('advance' starts both from the same phase: it depends only on the nearest known frame)."""
    clean, context, mel, hole = gapped_window()
    known = tiny_known(hole)
    window = torch.hann_window(TINY.win_length)
    truth, magnitude = stft(context, TINY, window), stft(clean, TINY, window).abs()
    lo, hi = unknown_span(known, TINY.n_fft, TINY.hop_length)
    assert lo > 0 and hi < FRAMES, "the test needs a slice strictly inside the window"
    whole = context_griffin_lim(magnitude, truth, known, TINY, window, 6, 0.99, "advance")
    part = context_griffin_lim(magnitude[:, lo:hi], truth[:, lo:hi], known[lo:hi], TINY, window, 6, 0.99, "advance")
    assert torch.allclose(part, whole[:, lo:hi], atol=1e-4 * magnitude.max())


def test_unknown_span_pads_by_k_and_clamps():
    known = torch.ones(40, dtype=torch.bool)
    known[10:15] = False
    assert unknown_span(known, 512, 128) == (6, 19)
    known[1] = False
    assert unknown_span(known, 512, 128) == (0, 19)
    assert unknown_span(torch.ones(5, dtype=torch.bool), 512, 128) is None


def test_advance_init_continues_a_steady_bin_centred_partial():
    """For a sinusoid at a bin centre, advancing the known phase predicts the true phase."""
    k = 32                                                   # bin 32 of 512 at 16 kHz = 1 kHz
    t = np.arange(N)
    wave = torch.from_numpy((0.3 * np.cos(2 * np.pi * k * t / TINY.n_fft + 0.4)).astype(np.float32))
    window = torch.hann_window(TINY.win_length)
    truth = stft(wave, TINY, window)
    known = torch.ones(FRAMES, dtype=torch.bool)
    known[20:26] = False
    phase = initial_phase(truth, known, "advance", TINY.hop_length, TINY.n_fft)
    err = torch.angle(phase[k, 20:26] * truth[k, 20:26].conj()).abs()
    assert err.max() < 1e-3


# --------------------------------------------------------------------------- wiring

def test_inpaint_with_context_griffinlim_keeps_everything_outside_the_gap(tiny_cfg):
    from models.classical import linear_interpolation
    cfg = dataclasses.replace(tiny_cfg, vocoder=dataclasses.replace(tiny_cfg.vocoder, method="context_griffinlim"))
    sr = 22050                                               # not the model's rate: resampled both ways
    samples = synth_clip(1.2, sr, seed=4)
    gaps = [(9000, 9800), (11000, 11500)]                   # one window holds both
    for s, e in gaps:
        samples[s:e] = 0
    out, _ = inpaint_audio(samples, sr, gaps, linear_interpolation, cfg, MelSpectrogram(cfg.audio),
                           build_vocoder(cfg))
    assert_only_gaps_changed(samples, out, gaps)


def test_lpc_edges_carry_the_context_into_a_vocoded_fill(tiny_cfg):
    """With inference.lpc_hold_ms the fill's first and last milliseconds continue the
    context's waveform (a Mel fill through Griffin-Lim does not); nothing outside the gap moves."""
    from models.classical import linear_interpolation
    sr = tiny_cfg.audio.sample_rate
    t = np.arange(int(1.2 * sr)) / sr
    clean = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)).astype(np.float32)
    gap = (9000, 9800)
    gapped = clean.copy()
    gapped[gap[0]:gap[1]] = 0.0
    edged = dataclasses.replace(tiny_cfg, inference=dataclasses.replace(tiny_cfg.inference, lpc_hold_ms=5.0,
                                                                       lpc_fade_ms=5.0))
    mel_fn = MelSpectrogram(tiny_cfg.audio)
    plain, _ = inpaint_audio(gapped, sr, [gap], linear_interpolation, tiny_cfg, mel_fn, build_vocoder(tiny_cfg))
    out, _ = inpaint_audio(gapped, sr, [gap], linear_interpolation, edged, mel_fn, build_vocoder(edged))
    assert_only_gaps_changed(gapped, out, [gap])
    hold = int(0.005 * sr)
    for edge in (slice(gap[0], gap[0] + hold), slice(gap[1] - hold, gap[1])):
        error = np.max(np.abs(out[edge] - clean[edge]))
        assert error < 0.02 < np.max(np.abs(plain[edge] - clean[edge]))


def test_lpc_edges_predict_from_true_context_only_when_gaps_are_close(tiny_cfg):
    """Two gaps 15 ms apart: the second one's prediction is fitted on the samples between them,
    not on the first gap's zeros (which would start it from silence)."""
    from models.classical import linear_interpolation
    sr = tiny_cfg.audio.sample_rate
    t = np.arange(int(1.2 * sr)) / sr
    clean = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    between = int(0.015 * sr)
    gaps = [(9000, 9800), (9800 + between, 10600 + between)]
    gapped = clean.copy()
    for s, e in gaps:
        gapped[s:e] = 0.0
    edged = dataclasses.replace(tiny_cfg, inference=dataclasses.replace(tiny_cfg.inference, lpc_hold_ms=5.0,
                                                                       lpc_fade_ms=5.0))
    out, _ = inpaint_audio(gapped, sr, gaps, linear_interpolation, edged, MelSpectrogram(tiny_cfg.audio),
                           build_vocoder(edged))
    assert_only_gaps_changed(gapped, out, gaps)
    for s, e in gaps:                                            # both seams of both gaps carry on the tone
        for edge in (slice(s, s + int(0.005 * sr)), slice(e - int(0.005 * sr), e)):
            assert np.max(np.abs(out[edge] - clean[edge])) < 0.02


@pytest.mark.parametrize("sr", [None, 22050])                 # None: the model's own rate
def test_the_vocoder_is_told_exactly_which_samples_are_missing(tiny_cfg, sr):
    """The hole covers the gaps; every sample outside it is the true audio (resampled, the
    gap's zeros smear a few samples into its context: those are in the hole), and at the
    model's rate the hole is the gaps, sample for sample."""
    from models.classical import linear_interpolation
    from processors.inpaint import locate, window_wave
    sr = sr or tiny_cfg.audio.sample_rate
    clean = synth_clip(1.2, sr, seed=4)
    gaps = [(9000, 9800), (11000, 11500)]
    gapped = clean.copy()
    for s, e in gaps:
        gapped[s:e] = 0.0
    seen = []
    inpaint_audio(gapped, sr, gaps, linear_interpolation, tiny_cfg, MelSpectrogram(tiny_cfg.audio),
                  lambda mel, context, hole: seen.append((context, hole)) or context)
    ratio = tiny_cfg.audio.sample_rate / sr
    for (context, hole), gap in zip(seen, gaps):
        win = locate(gap, len(clean), sr, tiny_cfg)
        truth = window_wave(clean, sr, win, tiny_cfg)
        in_gaps = torch.zeros_like(hole)
        for s, e in gaps:
            in_gaps[max(0, int((s - win.start) * ratio)):max(0, math.ceil((e - win.start) * ratio))] = True
        assert in_gaps.any() and not (in_gaps & ~hole).any()
        torch.testing.assert_close(context[~hole], truth[~hole], rtol=0, atol=1e-6)
        if ratio == 1:
            assert torch.equal(hole, in_gaps)
        else:
            assert 0 < (hole & ~in_gaps).sum() <= 4 * 16 * max(1.0, ratio)    # a few samples per gap edge


@pytest.mark.parametrize("joins", [True, False])
def test_only_a_fill_that_ignores_the_context_is_faded_in_and_out(tiny_cfg, joins):
    from models.classical import linear_interpolation

    class Constant(torch.nn.Module):
        joins_context = joins

        def forward(self, mel, context, hole):
            return torch.full_like(context, 0.25)

    sr = tiny_cfg.audio.sample_rate
    samples = synth_clip(1.2, sr, seed=4)
    s, e = 9000, 9800
    out, _ = inpaint_audio(samples, sr, [(s, e)], linear_interpolation, tiny_cfg, MelSpectrogram(tiny_cfg.audio),
                           Constant())
    fill = out[s:e]
    assert np.all(fill[len(fill) // 4:-len(fill) // 4] == np.float32(0.25))
    assert np.all(fill == np.float32(0.25)) == joins          # faded edges only for a fill that ignores the context
    assert {m: build_vocoder(dataclasses.replace(tiny_cfg, vocoder=dataclasses.replace(tiny_cfg.vocoder, method=m)))
            .joins_context for m in ("context_griffinlim", "griffinlim")} == {"context_griffinlim": True,
                                                                              "griffinlim": False}


@pytest.mark.parametrize("key, value", [("vocoder.method", "hifigan"), ("vocoder.mel_inverse", "magic"),
                                        ("vocoder.momentum", "1.5")])
def test_invalid_vocoder_settings_are_a_one_line_error(key, value):
    with pytest.raises(UserError) as err:
        load_config(BASE_CONFIG, [f"{key}={value}"])
    message = str(err.value)
    assert key in message and BASE_CONFIG.name in message and "\n" not in message
    if key == "vocoder.method":
        assert all(name in message for name in VOCODERS)


def test_build_vocoder_rejects_an_unknown_method():
    with pytest.raises(UserError, match="vocoder.method.*griffinlim"):
        build_vocoder(Config(audio=TINY, vocoder=VocoderConfig(method="wavenet")))


def test_evaluation_gets_one_row_per_vocoder_for_every_mel_system(tiny_cfg, tmp_path):
    from conftest import write_clip
    from training.evaluation.evaluate import build_systems, evaluate
    methods = ["griffinlim", "context_griffinlim"]
    systems = build_systems([], tiny_cfg, ["zero", "oracle", "linear"], methods)
    assert [s.name for s in systems] == ["zero", "oracle@griffinlim", "linear@griffinlim",
                                         "oracle@context_griffinlim", "linear@context_griffinlim"]
    assert [s.cfg.vocoder.method for s in systems[-2:]] == ["context_griffinlim"] * 2
    assert [s.name for s in build_systems([], tiny_cfg, ["oracle"], ["context_griffinlim"])] == ["oracle"]
    write_clip(tmp_path / "clips" / "a.wav", 1.5, sr=16000, seed=3)
    rows, _ = evaluate([tmp_path / "clips" / "a.wav"], systems, tiny_cfg, [50.0], 1, seed=0)
    lsd = {r["system"]: r["lsd_db"] for r in rows}
    assert all(lsd[f"oracle@{m}"] < lsd["zero"] for m in methods)
    with pytest.raises(UserError, match="--vocoder: unknown vocoder 'wavenet'"):
        build_systems([], tiny_cfg, ["oracle"], ["wavenet"])


def test_evaluate_script_takes_vocoder_methods(tmp_path, ljspeech_dir):
    from conftest import make_tiny_cfg, run_script
    from processors.core.config_io import save_config
    config = tmp_path / "tiny.yaml"
    save_config(make_tiny_cfg(ljspeech_dir, tmp_path), config)
    out = tmp_path / "out"
    proc = run_script("evaluate.py", "--config", config, "--data", ljspeech_dir, "--out", out, "--gap-ms", 50,
                      "--gaps-per-file", 1, "--limit-files", 1, "--baselines", "oracle",
                      "--vocoder", "griffinlim", "context_griffinlim")
    assert proc.returncode == 0, proc.stderr
    summary = (out / "summary.md").read_text()
    assert "| oracle@griffinlim |" in summary and "| oracle@context_griffinlim |" in summary
    proc = run_script("evaluate.py", "--config", config, "--data", ljspeech_dir, "--out", out, "--gap-ms", 50,
                      "--vocoder", "wavenet")
    assert proc.returncode == 2 and "--vocoder" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- benchmark

def test_vocoder_benchmark_runs_on_a_tiny_corpus(tiny_cfg, tmp_path, vocoder_nets):
    from conftest import write_clip
    from training.evaluation.vocoder_benchmark import REFERENCE, benchmark_vocoders
    files = [write_clip(tmp_path / "clips" / f"{i}.wav", 1.2, sr=16000, seed=i) for i in range(2)]
    lines = []
    table = benchmark_vocoders(files, 1, tiny_cfg, sorted(VOCODERS), ["pinv"], [2], 50.0, 2, seed=0, log=lines.append,
                          nets=vocoder_nets)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "@2" not in line]
    n = len(VOCODERS)
    assert [r.split(" | ")[0][2:] for r in rows[:n + 1]] == [*sorted(VOCODERS), REFERENCE]
    assert [r.split(" | ")[0][2:] for r in rows[n + 1:]] == ["Mel inverse", "pinv", "melspec2spec"]
    assert "1 clips, 2 gaps of 50 ms" in table and len(lines) == n + 1


def test_benchmark_script_skips_without_data(tmp_path):
    from conftest import run_script
    proc = run_script("benchmark_vocoder.py", "--data", tmp_path / "absent")
    assert proc.returncode == 0 and "skipped" in proc.stdout, proc.stderr


# --------------------------------------------------------------------------- a copy's detail

def test_detail_start_keeps_the_detail_where_the_mels_agree_and_moves_it_where_they_do_not():
    fb = MelInverse(TINY).fb                                     # (F, n_mels)
    clean = gapped_window()[0]
    spec = stft(clean, TINY, torch.hann_window(TINY.win_length))[:, 10:17]
    detail_mel = MelSpectrogram(TINY)(clean)[:, 10:17]           # the Mel of the detail's own samples
    lo, hi, span = TINY.min_db, TINY.max_db, TINY.max_db - TINY.min_db
    assert torch.equal(detail_start(detail_mel + 2.9 / span, spec, fb, lo, hi), spec)   # within 3 dB: kept
    louder = detail_start(detail_mel + 10.0 / span, spec, fb, lo, hi)
    assert torch.allclose(louder, spec * 10 ** (7.0 / 20), rtol=1e-3)   # 10 dB, less the dead zone, every bin


def test_mel_gain_to_linear_spreads_band_gains_over_their_bins():
    fb = MelInverse(dataclasses.replace(TINY, f_max=6000.0)).fb
    gain = torch.arange(TINY.n_mels, dtype=torch.float32)[:, None].repeat(1, 3)
    lin = mel_gain_to_linear(gain, fb)
    assert lin.shape == (fb.shape[0], 3)
    assert (torch.diff(lin[:, 0]) >= -1e-4).all()                       # rising bands -> rising bins
    top = int(torch.nonzero(fb.sum(dim=1) > 0).max())                   # the last bin a band covers
    assert top < fb.shape[0] - 1 and (lin[top + 1:] == lin[top]).all()  # past f_max: that bin's gain
