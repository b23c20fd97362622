"""Non-intrusive speech quality models (no reference needed): PLCMOS v2 and DNSMOS.

Both are Microsoft's ONNX models as shipped by the ``speechmos`` package (MIT licence,
github.com/microsoft/PLC-Challenge and DNS-Challenge), run with ``onnxruntime`` on
16 kHz mono audio.

- **PLCMOS v2** (Mack et al., "PLCMOS - a data-driven non-intrusive metric for the
  evaluation of packet loss concealment algorithms", INTERSPEECH 2023): predicts the
  mean opinion score (1-5) listeners give speech whose lost packets were concealed;
  Pearson 0.97 with human ratings per model on the INTERSPEECH 2022 PLC challenge. It
  averages the model's output over 15 simulated raters. ``speechmos`` draws the raters'
  embeddings anew on every call (scores wander by about ±0.02); here they are drawn once
  from a fixed seed, so a clip always gets the same score.
- **DNSMOS P.835 overall** (Reddy et al., ICASSP 2022): the overall-quality MOS (1-5) of
  DNSMOS's P.835 model (with its published polynomial calibration), averaged over 9.01 s
  segments 1 s apart, as speechmos does. Audio shorter than 9.01 s is looped to at least
  9.01 s as speechmos does, but only its first segment is scored: the others are shifted
  copies of the same loop and cost 0.5 s of CPU each (9 of them for a 4.4 s excerpt). The
  P.808 model speechmos also runs is not reported, so it is not run.

Samples beyond ±1 (a fill can overshoot) are clipped first, as a 16-bit file would be.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from processors.audio_io import resample

MOS_RATE = 16000          # both models take 16 kHz
PLCMOS_RATERS = 15        # speechmos's embed_rounds
PLCMOS_SEED = 0
DNSMOS_SECONDS = 9.01     # DNSMOS's input length (speechmos.dnsmos.INPUT_LENGTH)


def _session(path: str):
    """An onnxruntime session on torch's thread count (its default takes every core and
    spins them while waiting, which a shared machine feels)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    return ort.InferenceSession(path, options)


@lru_cache(maxsize=1)
def _plcmos_model():
    """(speechmos PLCMOS, its fixed rater embeddings (15, 64) float32); loaded once per process."""
    from speechmos.plcmos import PLCMOS
    raters = np.random.default_rng(PLCMOS_SEED).standard_normal((PLCMOS_RATERS, 64)).astype(np.float32)
    model = PLCMOS(embed_rounds=PLCMOS_RATERS)
    model.session = _session(model.model_path)
    return model, raters


@lru_cache(maxsize=1)
def _dnsmos_model():
    """speechmos's DNSMOS (its P.835 model scores; the P.808 model is loaded but not run)."""
    import speechmos
    from speechmos.dnsmos import DNSMOS
    models = Path(speechmos.__file__).parent / "dnsmos_models"
    model = DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))
    model.onnx_sess = _session(model.primary_model_path)
    return model


def _prepare(wave: np.ndarray, sr: int) -> tuple[np.ndarray, str]:
    """(N,) at ``sr`` -> (M,) float32 at 16 kHz in [-1, 1]; reason non-empty when unscorable."""
    x = np.clip(resample(np.asarray(wave, dtype=np.float32), sr, MOS_RATE), -1.0, 1.0)
    if len(x) < MOS_RATE // 4:
        return x, f"shorter than 0.25 s ({len(x) / MOS_RATE:.2f} s)"
    if not np.any(x):
        return x, "silent"
    return x, ""


def plcmos(wave: np.ndarray, sr: int) -> tuple[float, str]:
    """PLCMOS v2 (about 1-5, higher is better) of ``wave`` (N,) at ``sr``.

    Returns ``(score, "")``, or ``(nan, reason)`` for a silent or too-short input.
    """
    x, why = _prepare(wave, sr)
    if why:
        return math.nan, f"plcmos: {why}"
    model, raters = _plcmos_model()
    features = np.float32(model.stft_transform(x))[np.newaxis, np.newaxis]
    scores = [np.ravel(model.session.run(None, {"degraded_audio": features, "rater_embed": r[None]})[0])[0]
              for r in raters]
    return float(np.mean(scores)), ""


def dnsmos_overall(wave: np.ndarray, sr: int) -> tuple[float, str]:
    """DNSMOS P.835 overall quality (about 1-5, higher is better) of ``wave`` (N,) at ``sr``.

    Returns ``(score, "")``, or ``(nan, reason)`` for a silent or too-short input.
    """
    x, why = _prepare(wave, sr)
    if why:
        return math.nan, f"dnsmos: {why}"
    n = int(DNSMOS_SECONDS * MOS_RATE)
    looped = len(x) < n
    while len(x) < n:
        x = np.append(x, x)
    hops = 1 if looped else int(np.floor(len(x) / MOS_RATE) - DNSMOS_SECONDS) + 1
    model = _dnsmos_model()
    overall = []
    for i in range(hops):
        segment = x[i * MOS_RATE:i * MOS_RATE + n].astype(np.float32)[np.newaxis]
        sig, bak, ovr = model.onnx_sess.run(None, {"input_1": segment})[0][0]
        overall.append(float(model.get_polyfit_val(sig, bak, ovr, False)[2]))
    return float(np.mean(overall)), ""
