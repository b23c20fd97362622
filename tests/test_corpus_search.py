"""The corpus guide: a speech gap's stretch found in the training clips (processors.corpus_search),
kept and searched by the model itself, trained with the crop's own clip left out."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from conftest import make_tiny_cfg
from datasets.guided import CorpusGuidedMelCrops, build_crops
from models.build import build_model, load_inpainter, load_initial_weights
from processors.corpus_search import CorpusSearch, quantise_corpus
from training.trainer import Trainer


def clips(n: int, frames: int, n_mels: int = 40, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((n_mels, frames)).astype(np.float32) for _ in range(n)]


def test_quantised_corpus_separates_clips_and_stops_at_its_limit():
    mels = clips(3, 50)
    corpus, spans = quantise_corpus(mels)
    assert corpus.dtype == torch.uint8 and corpus.shape == (40, 152)
    assert spans == [(0, 50), (51, 101), (102, 152)]
    assert not corpus[:, 50].any() and not corpus[:, 101].any()                # the separators
    assert np.abs(corpus[:, 51:101].numpy() / 255 - mels[1]).max() <= 0.5 / 255 + 1e-6
    small, spans = quantise_corpus(mels, max_frames=120)
    assert small.shape == (40, 101) and spans == [(0, 50), (51, 101), None]


def test_search_finds_the_clip_that_repeats_the_context_and_skips_an_excluded_one():
    mels = clips(4, 200)
    window = 0.1 + 0.9 * clips(1, 64, seed=9)[0]
    mels[2][:, 100:164] = window                                  # clip 2 holds the window itself
    corpus, spans = quantise_corpus(mels)
    search = CorpusSearch(corpus, bands=20, context=8)
    columns = np.zeros(64, dtype=bool)
    columns[30:40] = True
    masked = torch.from_numpy(window * ~columns)
    guide = search.guide(masked, columns)
    assert guide.shape == (2, 40, 64)
    assert torch.allclose(guide[0, :, 30:40], torch.from_numpy(window[:, 30:40]), atol=1 / 255)
    assert guide[1, 0, 35] > 0.99 and not guide[:, :, :30].any() and not guide[:, :, 40:].any()
    assert search.match(masked, columns, (30, 40)).start == spans[2][0] + 130
    mels[2][:, 100:164] -= 0.1                                    # the same sound, 12 dB quieter
    quiet = CorpusSearch(quantise_corpus(mels)[0], bands=20, context=8)
    assert quiet.match(masked, columns, (30, 40)).start == spans[2][0] + 130
    guide = quiet.guide(masked, columns, level=True)
    assert guide.shape == (3, 40, 64) and not guide[2, :, :30].any()
    leveled = guide[0, :, 30:40] + guide[2, :, 30:40]
    assert torch.allclose(leveled, torch.from_numpy(window[:, 30:40]), atol=2 / 255)
    other = search.match(masked, columns, (30, 40), exclude=spans[2])
    assert not spans[2][0] - 10 <= other.start < spans[2][1]      # neither copied nor compared there
    assert other.score < 0.9


def test_corpus_model_starts_as_the_model_it_was_initialised_from_and_keeps_its_corpus(tmp_path, ljspeech_dir):
    plain = make_tiny_cfg(ljspeech_dir, tmp_path, "run_name=plain", "train.max_steps=1", "train.val_every=1",
                          "train.ckpt_every=1")
    Trainer(plain).fit()
    ckpt = tmp_path / "checkpoints" / "plain" / "last.pt"
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "run_name=corpus", "model.params.corpus=true",
                        "model.params.corpus_context=4", "model.params.corpus_bands=10",
                        f"train.init_from={ckpt}", "train.max_steps=2", "train.val_every=2", "train.ckpt_every=2")
    model = build_model(cfg)
    load_initial_weights(model, cfg, str(ckpt))
    model.index_corpus(clips(3, 80))
    before, _ = load_inpainter(ckpt)
    x = torch.rand(2, 1, 40, 32)
    mask = torch.zeros_like(x)
    mask[..., 12:20] = 1
    with torch.no_grad():
        assert torch.allclose(model(x * (1 - mask), mask), before(x * (1 - mask), mask), atol=1e-6)

    trainer = Trainer(cfg)
    spans = trainer.task.train_batches(0).dataset.spans            # training skips each crop's own clip
    assert spans is not None and len(spans) == len(trainer.task.train_mels)
    assert trainer.task.val_loader.dataset.spans is None           # validation clips are not in the corpus
    trainer.fit()                                                 # trains on crops guided from the corpus
    trained, tcfg = load_inpainter(tmp_path / "checkpoints" / "corpus" / "last.pt")
    assert trained.searches_corpus and trained.corpus.shape[1] > 0
    with torch.no_grad():                                         # the guide counts: another corpus, another fill
        a = trained(x * (1 - mask), mask)
        trained.index_corpus(clips(3, 80, seed=5))
        b = trained(x * (1 - mask), mask)
    assert not torch.allclose(a, b)


def test_training_crops_never_take_their_guide_from_their_own_clip(tmp_path):
    mels = clips(3, 300)
    cfg = make_tiny_cfg(tmp_path, tmp_path, "model.params.corpus=true", "data.crop_frames=64")
    model = build_model(cfg)
    corpus = model.index_corpus(mels)
    own = build_crops(mels, cfg, seed=0, length=6, guided=False, corpus=corpus, own_clips=True)
    other = build_crops(mels, cfg, seed=0, length=6, guided=False, corpus=corpus)
    assert isinstance(own, CorpusGuidedMelCrops)
    for i in range(6):
        gap = own[i]["mask"][0, 0] > 0.5
        assert float(other[i]["guide"][1][0, gap].min()) > 0.999      # its own clip holds the answer...
        assert float(own[i]["guide"][1][0, gap].max()) < 0.9          # ...which training never sees


def test_evaluation_sets_the_guide_alone_beside_the_baselines(tmp_path):
    from training.evaluation.evaluate import build_systems
    cfg = make_tiny_cfg(tmp_path, tmp_path, "model.params.corpus=true")
    model = build_model(cfg).eval()
    model.index_corpus(clips(2, 100))
    names = [s.name for s in build_systems([("m", model, cfg)], cfg, ["linear"])]
    assert names == ["m", "m corpus copy", "linear"]
    assert [s.name for s in build_systems([("m", model, cfg)], cfg, [])] == ["m"]
    copy = next(s for s in build_systems([("m", model, cfg)], cfg, ["linear"]) if s.name == "m corpus copy")
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    gapped = wave * np.r_[np.ones(7000), np.zeros(1600), np.ones(7400)].astype(np.float32)
    filled = copy.fill(gapped, (7000, 8600), wave)
    assert filled.shape == wave.shape and np.array_equal(filled[:7000], wave[:7000])
    linear = next(s for s in build_systems([("m", model, cfg)], cfg, ["linear"]) if s.name == "linear")
    assert not np.allclose(filled[7000:8600], linear.fill(gapped, (7000, 8600), wave)[7000:8600], atol=1e-3)


def test_a_close_match_is_copied_as_it_is_above_the_copy_score_in_a_long_enough_gap(tmp_path):
    from processors.inpaint import inpaint_audio, locate, window_mels
    from processors.mel import MelSpectrogram
    from models.vocoder_nets import build_vocoder
    from conftest import synth_clip
    clip = synth_clip(2.0, 16000, seed=3)
    cfg = make_tiny_cfg(tmp_path, tmp_path, "model.params.corpus=true", "model.params.corpus_context=4",
                        "model.params.corpus_bands=10")
    mel_fn = MelSpectrogram(cfg.audio)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.index_corpus([mel_fn(torch.from_numpy(clip)).numpy()])   # the clip itself: a perfect match
    gapped = clip.copy()
    gapped[15000:16600] = 0
    truth = window_mels(clip, 16000, locate((15000, 16600), len(clip), 16000, cfg), cfg, mel_fn).numpy()
    fills = {}
    for score, min_ms in ((0.0, 0.0), (0.99, 0.0), (0.99, 100.0), (0.99, 101.0)):   # the gap: 100 ms
        c = dataclasses.replace(cfg, inference=dataclasses.replace(
            cfg.inference, corpus_copy_score=score, corpus_copy_min_ms=min_ms))
        out, details = inpaint_audio(gapped, 16000, [(15000, 16600)], model, c, mel_fn, build_vocoder(c))
        gap = details[0]["mask"] > 0.5
        fills[score, min_ms] = details[0]["pred"][gap]
    assert np.abs(fills[0.99, 0.0] - truth[gap]).max() < 2 / 255      # the match's Mel, as it is
    assert np.array_equal(fills[0.99, 100.0], fills[0.99, 0.0])       # long enough to copy
    assert np.abs(fills[0.0, 0.0] - truth[gap]).max() > 0.05          # the (untrained) network's own fill
    assert np.array_equal(fills[0.99, 101.0], fills[0.0, 0.0])        # too short to copy: the network's


def test_a_config_asks_for_one_guide_at_a_time(tmp_path):
    import pytest
    from processors.core.errors import UserError
    with pytest.raises(UserError, match=r"model.params: guide and corpus .* set one of them$"):
        make_tiny_cfg(tmp_path, tmp_path, "model.params.corpus=true", "model.params.guide=true")
    with pytest.raises(UserError, match=r"model.params.corpus_context: must be >= 1, got 0$"):
        make_tiny_cfg(tmp_path, tmp_path, "model.params.corpus=true", "model.params.corpus_context=0")


def test_a_match_never_borrows_context_from_the_next_clip():
    window = 0.1 + 0.9 * clips(1, 64, seed=9)[0]
    a, b, c = clips(3, 120, seed=4)
    a[:, -30:] = window[:, :30]                   # clip a ends with the gap's left context...
    b[:, :34] = window[:, 30:]                    # ...and clip b starts with the gap and after it
    c[:, 40:104] = window                         # clip c holds all of it, a little worse
    c[:, 70:80] += 0.05
    corpus, spans = quantise_corpus([a, b, c])
    search = CorpusSearch(corpus, bands=20, context=8)
    columns = np.zeros(64, dtype=bool)
    columns[30:40] = True
    match = search.match(torch.from_numpy(window * ~columns), columns, (30, 40))
    assert match.start == spans[2][0] + 70          # not b's start, whose left context is a's end


def test_only_a_model_without_a_guide_is_widened_to_take_one(tmp_path, ljspeech_dir):
    import pytest
    from processors.core.errors import UserError
    plain = make_tiny_cfg(ljspeech_dir, tmp_path, "run_name=plain", "model.params.residual_interp=false",
                          "train.max_steps=1", "train.val_every=1", "train.ckpt_every=1")
    Trainer(plain).fit()
    ckpt = tmp_path / "checkpoints" / "plain" / "last.pt"
    cfg = make_tiny_cfg(ljspeech_dir, tmp_path, "model.params.corpus=true", f"train.init_from={ckpt}")
    with pytest.raises(UserError, match=r"^train.init_from: .* does not fit this unet model"):
        load_initial_weights(build_model(cfg), cfg, str(ckpt))     # interpolation input missing too


def test_a_copy_pulled_to_the_networks_band_levels_keeps_its_own_dynamics():
    from processors.corpus_search import gated_copy
    rng = np.random.default_rng(0)
    pred = torch.from_numpy(rng.random((6, 20)).astype(np.float32))
    guide = torch.zeros(3, 6, 20)
    guide[0, :, 5:11] = torch.from_numpy(rng.random((6, 6)).astype(np.float32))   # a close match
    guide[1, :, 5:11] = 0.9
    guide[2, :, 5:11] = 0.05                                                        # its level offset
    guide[0, :, 14:17], guide[1, :, 14:17] = 0.3, 0.5                               # a poor one
    columns = np.zeros(20, dtype=bool)
    columns[5:11] = columns[14:17] = True
    copy = guide[0, :, 5:11] + guide[2, :, 5:11]
    for pull in (0.0, 0.25, 1.0):
        out = gated_copy(pred, guide, columns, 0.7, pull)
        assert torch.equal(out[:, :5], pred[:, :5]) and torch.equal(out[:, 14:17], pred[:, 14:17])
        gain = out[:, 5:11] - copy                                                  # constant in time
        assert torch.allclose(gain, gain[:, :1].expand(-1, 6), atol=1e-6)
        want = pull * (pred[:, 5:11].mean(1) - copy.mean(1))
        assert torch.allclose(gain[:, 0], want, atol=1e-6)
