"""The reassigned spectrogram (librosa.reassigned_spectrogram) and the phase derivatives it holds.

For every STFT bin (frame m, bin k) the analysis gives its reassigned frequency f_hat (Hz),
its reassigned time t_hat (s) and its magnitude |S|. Both reassignments are derivatives of
the STFT phase phi, taken with each frame's phase referred to the frame's first sample
(numpy's and librosa's STFT):

- the phase advances from frame to frame at the instantaneous frequency:
  d phi / d m = 2 pi f_hat hop / sr   (radians per frame);
- its slope across bins is the group delay d, the time from the frame's first sample to
  the bin's energy: d phi / d k = -2 pi d / n_fft (radians per bin), with
  d = t_hat sr - (frame m's librosa time) sr + (n_fft - 1) / 2 samples (librosa measures the
  time offset from sample (n_fft - 1) / 2 of the frame and adds n_fft // 2 with center=False).

Bins whose power is below ``ref_power`` (or zero) have no reassignment: NaN, or with
``fill_nan`` their bin's centre frequency and frame time (as librosa does). Settings live in
the config's ``reassigned`` section (processors.core.config.ReassignedConfig); defaults are the
published ones: 16 kHz, n_fft 80, hop 20, Hamming window, ``center=False``.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from processors.core.errors import UserError


class Reassigned(NamedTuple):
    """freqs (Hz), times (s), mags (linear |STFT|): each float (n_fft // 2 + 1, T)."""
    freqs: np.ndarray
    times: np.ndarray
    mags: np.ndarray


def win_length(rc) -> int:
    return rc.win_length or rc.n_fft


def analysis_window(rc) -> np.ndarray:
    """The analysis window (n_fft,): scipy's periodic ``rc.window`` of ``win_length``, zero-padded
    to n_fft and centred, as librosa builds it."""
    import librosa
    w = librosa.filters.get_window(rc.window, win_length(rc), fftbins=True)
    return librosa.util.pad_center(w, size=rc.n_fft).astype(np.float64)


def check_window(rc, where: str = "reassigned.window") -> None:
    try:
        analysis_window(rc)
    except Exception as exc:      # scipy raises ValueError or TypeError for an unknown name
        raise UserError(f"{where}: unknown window {rc.window!r} ({str(exc).splitlines()[0]})") from None


def frame_starts(frames: int, rc) -> np.ndarray:
    """Sample index (in the analysed signal) of each frame's first sample, (T,)."""
    return np.arange(frames) * rc.hop_length - (rc.n_fft // 2 if rc.center else 0)


def reassigned_spectrogram(wave: np.ndarray, sample_rate: int, rc) -> Reassigned:
    """wave (N,) at ``sample_rate`` -> its reassigned spectrogram with the settings ``rc``.

    UserError when the rate is not ``rc.sample_rate`` or the wave is too short for one frame.
    """
    import librosa
    if sample_rate != rc.sample_rate:
        raise UserError(f"reassigned.sample_rate is {rc.sample_rate} Hz but the audio is at {sample_rate} Hz "
                        "(resample it first)")
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise UserError(f"expected a mono wave (N,), got shape {wave.shape}")
    if not rc.center and len(wave) < rc.n_fft:
        raise UserError(f"audio of {len(wave)} samples is shorter than one frame (reassigned.n_fft {rc.n_fft})")
    if not np.isfinite(wave).all():
        raise UserError("audio holds NaN or Inf samples")
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # librosa 0.11 calls np.less(..., where=~isnan(mags)) without out=; mags is never NaN
        # for finite audio, so no uninitialised value is read, and the warning is noise. In
        # digital silence its correction divides by a zero STFT: NaN there, which ref_power
        # and fill_nan handle as in any quiet bin
        warnings.filterwarnings("ignore", message="'where' used without 'out'")
        freqs, times, mags = librosa.reassigned_spectrogram(
            y=wave.astype(np.float64), sr=sample_rate, n_fft=rc.n_fft, hop_length=rc.hop_length,
            win_length=win_length(rc), window=rc.window, center=rc.center, ref_power=rc.ref_power,
            fill_nan=rc.fill_nan, clip=rc.clip, pad_mode="constant")
    return Reassigned(freqs, times, mags)


def check_reassigned(r: Reassigned, rc, where: str = "reassigned spectrogram") -> Reassigned:
    """``r`` as float64 arrays, or UserError when it cannot come from an analysis with ``rc``:
    shapes that differ or have not n_fft // 2 + 1 rows, NaN or negative magnitudes, NaN
    reassignments under ``fill_nan`` or in a bin at or above the ``ref_power`` threshold."""
    if not isinstance(r, tuple) or len(r) != 3:
        raise UserError(f"{where}: expected three arrays (freqs, times, mags)")
    freqs, times, mags = (np.asarray(x, dtype=np.float64) for x in r)
    rows = rc.n_fft // 2 + 1
    if mags.ndim != 2 or mags.shape[0] != rows or mags.shape[1] < 1:
        raise UserError(f"{where}: mags has shape {mags.shape}, expected ({rows}, frames) for n_fft {rc.n_fft}")
    for name, x in (("freqs", freqs), ("times", times)):
        if x.shape != mags.shape:
            raise UserError(f"{where}: {name} has shape {x.shape}, mags {mags.shape}: they must match")
    if not np.isfinite(mags).all() or (mags < 0).any():
        raise UserError(f"{where}: mags must be finite and >= 0")
    undefined = np.isnan(freqs) | np.isnan(times)
    if rc.fill_nan and undefined.any():
        raise UserError(f"{where}: {int(undefined.sum())} NaN reassignments, but reassigned.fill_nan promises none")
    strong = mags >= math.sqrt(rc.ref_power) if rc.ref_power > 0 else mags > 0
    if (undefined & strong).any():
        raise UserError(f"{where}: {int((undefined & strong).sum())} NaN reassignments in bins above "
                        f"reassigned.ref_power ({rc.ref_power:g}), where the analysis defines them")
    if np.isinf(freqs).any() or np.isinf(times).any():
        raise UserError(f"{where}: infinite reassigned frequencies or times")
    return Reassigned(freqs, times, mags)


def undefined_bins(r: Reassigned, rc) -> tuple[np.ndarray, np.ndarray]:
    """bool (F, T) each: the bins whose reassigned frequency, and whose reassigned time, carry
    no derivative: NaN, below ``ref_power`` (filled under ``fill_nan``) or, with ``clip``,
    clipped to the edge of their range (a reassigned frequency below 0 Hz or above Nyquist, a
    time outside the signal: what it was is lost). 0 Hz in bin 0 and Nyquist in the last bin
    of an even n_fft are exact for a real signal, not clipped."""
    weak = r.mags < math.sqrt(rc.ref_power) if rc.ref_power > 0 else r.mags == 0
    no_freq = np.isnan(r.freqs) | weak
    no_time = np.isnan(r.times) | weak
    if rc.clip:
        k = np.arange(r.mags.shape[0])[:, None]
        nyquist = rc.sample_rate / 2
        no_freq |= ((r.freqs <= 0) & (k > 0)) | ((r.freqs >= nyquist) & (k < rc.n_fft / 2))
        end = (frame_starts(r.mags.shape[1], rc)[-1] + rc.n_fft) / rc.sample_rate
        no_time |= (r.times <= 0) | (r.times >= end - 0.5 / rc.sample_rate)
    return no_freq, no_time


def phase_gradients(r: Reassigned, rc) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The STFT phase's derivatives that the reassignment holds (see the module docstring).

    Returns ``(dphi_dm, dphi_dk, no_freq, no_time)``: radians per frame and per bin, (F, T)
    each, 0 where the bool masks ``no_freq`` / ``no_time`` (:func:`undefined_bins`) say the
    reassignment carries none; the caller fills those bins.
    """
    frames = r.mags.shape[1]
    frame_time = (frame_starts(frames, rc) + rc.n_fft // 2) / rc.sample_rate     # librosa's frame times
    no_freq, no_time = undefined_bins(r, rc)
    delay = (np.nan_to_num(r.times) - frame_time[None, :]) * rc.sample_rate + (rc.n_fft - 1) / 2
    bin_hz = rc.sample_rate / rc.n_fft
    centre = np.arange(r.mags.shape[0])[:, None] * bin_hz
    offset = frequency_calibration(rc)(np.nan_to_num(r.freqs - centre) / bin_hz) * bin_hz
    dphi_dm = 2 * np.pi * (centre + offset) * rc.hop_length / rc.sample_rate
    dphi_dk = -2 * np.pi * delay / rc.n_fft
    return np.where(no_freq, 0.0, dphi_dm), np.where(no_time, 0.0, dphi_dk), no_freq, no_time


def frequency_calibration(rc):
    """The inverse of the reassigned frequency's bias for one sinusoid, as a function of bin offsets.

    librosa estimates the window's derivative by a cyclic central difference; a window that
    does not vanish at its ends (Hamming: 0.08) then pulls the estimate towards the bin
    centre: a sinusoid half a bin off reads 0.442 bins off with Hamming n_fft 80, a drift of
    0.04 rad per frame that integration would pile up. The bias depends on the window alone,
    so it is tabulated here (offsets within the main lobe, where it is monotonic) and inverted;
    offsets beyond the table are left as they are.
    """
    import librosa
    w = analysis_window(rc)
    dw = librosa.util.cyclic_gradient(w)
    j = np.arange(rc.n_fft)
    true = np.linspace(0, rc.n_fft / 4, 4 * rc.n_fft + 1)
    tones = np.exp(2j * np.pi * true[:, None] * j[None, :] / rc.n_fft)
    read = -np.imag((tones @ dw) / (tones @ w)) * rc.n_fft / (2 * np.pi)
    rising = np.diff(read) > 0
    last = int(np.argmin(rising)) if not rising.all() else len(rising)     # monotonic up to here
    true, read = true[:last + 1], read[:last + 1]
    true, read = np.concatenate([-true[:0:-1], true]), np.concatenate([-read[:0:-1], read])

    def calibrate(offset: np.ndarray) -> np.ndarray:
        inside = np.abs(offset) <= read[-1]
        return np.where(inside, np.interp(offset, read, true), offset)
    return calibrate


def reassignment_windows(rc) -> np.ndarray:
    """(3, n_fft): the analysis window h, librosa's derivative window dh (cyclic central
    difference) and its time-weighted window t h (t from sample (n_fft - 1) / 2)."""
    import librosa
    h = analysis_window(rc)
    return np.stack([h, librosa.util.cyclic_gradient(h), h * (np.arange(rc.n_fft) - (rc.n_fft - 1) / 2)])


def signal_length(frames: int, rc) -> int:
    """Samples spanned by ``frames`` frames of an analysis with ``rc``."""
    return (frames - 1) * rc.hop_length + (0 if rc.center else rc.n_fft)


def stfts(wave: np.ndarray, windows: np.ndarray, rc) -> np.ndarray:
    """wave (N,) -> complex (W, n_fft // 2 + 1, T): its STFT with each of ``windows`` (W, n_fft),
    frames as the analysis takes them (zero padding when centred)."""
    x = np.pad(wave, rc.n_fft // 2) if rc.center else np.asarray(wave)
    frames = np.lib.stride_tricks.sliding_window_view(x, rc.n_fft)[::rc.hop_length]          # (T, n)
    return np.fft.rfft(frames[None] * windows[:, None, :], axis=-1).transpose(0, 2, 1)


def istfts(specs: np.ndarray, windows: np.ndarray, rc, length: int) -> np.ndarray:
    """The wave (length,) whose STFTs with ``windows`` (W, n_fft) are nearest ``specs`` (W, F, T)
    in least squares: the overlap-add of every window's frames divided by the summed squared
    windows (samples no window reaches are 0)."""
    n, hop = rc.n_fft, rc.hop_length
    count = specs.shape[-1]
    frames = np.einsum("wtn,wn->tn", np.fft.irfft(specs.transpose(0, 2, 1), n=n, axis=-1), windows)
    blocks = -(-n // hop)                 # a frame spans this many hops
    padded = np.zeros((count, blocks * hop))
    padded[:, :n] = frames
    weight = np.zeros(blocks * hop)
    weight[:n] = (windows ** 2).sum(axis=0)
    out = np.zeros((count + blocks - 1) * hop)
    norm = np.zeros_like(out)
    for j in range(blocks):               # frame m's j-th hop lands on output hop m + j
        out[j * hop:(j + count) * hop] += padded[:, j * hop:(j + 1) * hop].ravel()
        norm[j * hop:(j + count) * hop] += np.tile(weight[j * hop:(j + 1) * hop], count)
    out = np.where(norm > 1e-10, out / np.maximum(norm, 1e-10), 0.0)
    if rc.center:
        out = out[n // 2:]
    return np.pad(out, (0, max(0, length - len(out))))[:length]


def stft(wave: np.ndarray, rc) -> np.ndarray:
    """wave (N,) -> complex (n_fft // 2 + 1, T): the analysis' own STFT."""
    return stfts(wave, analysis_window(rc)[None], rc)[0]


def save_reassigned(path, r: Reassigned, rc, offset: int = 0, length: int | None = None) -> None:
    """Write ``r`` as .npz, atomically: freqs, times, mags, sample_rate, and where the audio lies in
    the analysed signal (``offset`` samples of padding before it, ``length`` samples long)."""
    from processors.core.atomic import atomic_path
    length = signal_length(r.mags.shape[1], rc) - offset if length is None else length
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, freqs=r.freqs, times=r.times, mags=r.mags, sample_rate=rc.sample_rate, offset=offset,
                     length=length)


def load_reassigned(path, rc) -> tuple[Reassigned, int, int]:
    """A reassigned spectrogram saved by :func:`save_reassigned` (or any .npz with freqs, times and
    mags, (n_fft // 2 + 1, T) each, and sample_rate), checked against ``rc``
    (:func:`check_reassigned`); returns it, the offset and the length of the audio in the
    analysed signal. UserError when the file is missing or unreadable or does not fit the settings."""
    from pathlib import Path
    path = Path(path)
    if not path.is_file():
        raise UserError(f"reassigned spectrogram not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise UserError(f"cannot read {path} as .npz ({type(exc).__name__}): expected freqs, times, mags") from None
    missing = [k for k in ("freqs", "times", "mags", "sample_rate") if k not in arrays]
    if missing:
        raise UserError(f"{path}: no {', '.join(missing)} array (expected freqs, times, mags, sample_rate)")
    scalar = lambda key, default: int(np.asarray(arrays.get(key, default)).reshape(-1)[0])
    if scalar("sample_rate", -1) != rc.sample_rate:
        raise UserError(f"{path}: analysed at {scalar('sample_rate', -1)} Hz but reassigned.sample_rate is "
                        f"{rc.sample_rate} Hz (the settings must be those of the analysis)")
    r = check_reassigned(Reassigned(arrays["freqs"], arrays["times"], arrays["mags"]), rc, str(path))
    span = signal_length(r.mags.shape[1], rc)
    offset = scalar("offset", 0)
    length = scalar("length", span - offset)
    if offset < 0 or length < 1 or offset + length > span + rc.hop_length:
        raise UserError(f"{path}: offset {offset} and length {length} do not fit {r.mags.shape[1]} frames ({span} samples)")
    return r, offset, length
