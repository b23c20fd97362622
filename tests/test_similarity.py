"""The similarity search and the guide built from it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from processors.gaps import gap_runs
from processors.similarity import NO_MATCH, Match, find_match, search_features, window_guide


def random_song(frames: int, n_mels: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n_mels, frames)).astype(np.float32)


@pytest.mark.parametrize("gap", [(700, 760), (705, 706), (650, 800)])
def test_finds_a_planted_repetition_exactly(gap):
    mel = random_song(1200)
    mel[:, 600:900] = mel[:, 100:400]          # frames 600..899 repeat 100..399
    match = find_match(search_features(mel, 16), gap, context=20)
    assert match.start == gap[0] - 500
    assert match.score == pytest.approx(1.0, abs=1e-5)


def test_the_repetition_may_come_after_the_gap():
    mel = random_song(1200, seed=1)
    mel[:, 800:1100] = mel[:, 100:400]
    assert find_match(search_features(mel, 16), (200, 260), context=20).start == 900


def test_never_copies_the_gap_or_missing_frames():
    mel = random_song(600, seed=2)
    mel[:, 300:400] = mel[:, 100:200]
    feats = search_features(mel, 16)
    known = torch.ones(600, dtype=torch.bool)
    known[130:150] = False                     # the repetition's source is itself missing
    match = find_match(feats, (330, 350), context=20, known=known)
    assert match.start >= 0 and match.start != 130             # the planted source is gone
    assert known[match.start:match.start + 20].all()
    assert match.start + 20 + 20 <= 330 or match.start - 20 >= 350   # clear of the gap with its context


def test_no_candidate_is_no_match():
    mel = random_song(100, seed=3)
    assert find_match(search_features(mel, 8), (40, 60), context=30) == NO_MATCH
    assert find_match(search_features(mel, 8), (0, 100), context=5) == NO_MATCH


def test_window_guide_places_the_match_and_its_score_in_the_gap_only():
    mel = random_song(1200, seed=4)
    mel[:, 600:900] = mel[:, 100:400]
    feats = search_features(mel, 16)
    columns = np.zeros(64, dtype=bool)
    columns[20:40] = True                      # window frame f is song frame f + 680
    guide = window_guide(mel, feats, 680, columns, context=20)
    assert guide.shape == (2, 32, 64) and guide.dtype == np.float32
    np.testing.assert_array_equal(guide[0, :, 20:40], mel[:, 200:220])
    assert np.allclose(guide[1, :, 20:40], 1.0, atol=1e-5)
    assert not guide[:, :, ~columns].any()
    assert gap_runs(columns) == [(20, 40)]


def test_window_guide_takes_a_match_already_found_aligned_to_its_own_gap_frames():
    # the song's search placed the gap at frames 699-720 and found 150; the window places it at
    # 700-720: the guide takes that same stretch from 151, and searches nothing
    mel = random_song(1200, seed=4)
    columns = np.zeros(64, dtype=bool)
    columns[20:40] = True                      # window frame f is song frame f + 680
    found = [(699, 720, Match(150, 0.5)), (900, 950, Match(10, 0.9))]
    guide = window_guide(mel, torch.zeros(1200, 16), 680, columns, context=20, found=found)
    np.testing.assert_array_equal(guide[0, :, 20:40], mel[:, 151:171])
    assert np.allclose(guide[1, :, 20:40], 0.5)
    lost = window_guide(mel, torch.zeros(1200, 16), 680, columns, context=20, found=[(699, 720, NO_MATCH)])
    assert not lost.any()                      # a gap the search found nothing for stays empty
    # two found gaps in one run of frames (gaps too close to part): the run is searched as a whole
    merged = [(699, 710, Match(150, 0.5)), (710, 720, Match(900, 0.5))]
    mel[:, 600:900] = mel[:, 100:400]
    guide = window_guide(mel, search_features(mel, 16), 680, columns, context=20, found=merged)
    np.testing.assert_array_equal(guide[0, :, 20:40], mel[:, 200:220])
