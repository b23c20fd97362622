"""ViSQOL v3 in audio mode: a full-reference quality score for music and general audio.

Google's ViSQOL v3 (Chinen et al., "ViSQOL v3: an open source production ready objective
speech and audio metric", QoMEX 2020) compares the gammatone spectrograms of a reference
and a degraded signal patch by patch (NSIM similarity) and maps the similarities to a
MOS-LQO of 1-5 with its bundled support-vector model; audio mode runs at 48 kHz. The
implementation is ``visqol-python`` (Apache-2.0; a pure-Python port of v3.3.3 that ships
the model), loaded once per process: its first call takes ~10-20 s of warm-up.
"""
from __future__ import annotations

import logging
import math
from functools import lru_cache

import numpy as np

from processors.audio_io import resample

VISQOL_RATE = 48000       # audio mode's rate


@lru_cache(maxsize=1)
def _visqol_api():
    from visqol import VisqolApi
    api = VisqolApi()
    api.create(mode="audio")
    return api


def visqol_audio(ref: np.ndarray, est: np.ndarray, sr: int) -> tuple[float, str]:
    """ViSQOL v3 audio-mode MOS-LQO (1-5, higher is better) of ``est`` against ``ref``
    (both (N,) at ``sr``, resampled to 48 kHz). Returns ``(score, "")``, or ``(nan, reason)``
    for a silent reference or one shorter than a second (ViSQOL's patches need more)."""
    if len(ref) != len(est):
        raise ValueError(f"ref and est differ in length: {len(ref)} vs {len(est)}")
    if len(ref) < sr:
        return math.nan, f"visqol: shorter than 1 s ({len(ref) / sr:.2f} s)"
    if not np.any(ref):
        return math.nan, "visqol: reference is silent"
    r = resample(np.asarray(ref, dtype=np.float32), sr, VISQOL_RATE).astype(np.float64)
    e = resample(np.asarray(est, dtype=np.float32), sr, VISQOL_RATE).astype(np.float64)
    logging.getLogger("visqol").setLevel(logging.ERROR)   # its per-call notes are not ours to print
    return float(_visqol_api().measure_from_arrays(r, e, VISQOL_RATE).moslqo), ""
