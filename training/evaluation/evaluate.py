"""Benchmark of gap fillers on real clips: cut seeded gaps, fill them with every system, score.

Every system sees the same gaps (positions drawn per seed, file and gap length), one gap per
example. Gaps of one file are not independent measurements: the summary's intervals are
clustered by file (training.evaluation.eval_report.mean_ci).
Mel systems go through ``processors.inpaint.inpaint_audio``, exactly as
``scripts/inference.py`` does. All work happens at the model's sample rate, and
every metric compares the filled waveform with the original on the excerpt around the
gap (see training.evaluation.scoring).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from models.classical import CorpusCopy, SimilarityMelFill, linear_interpolation
from processors.audio_io import load_mono
from processors.core.errors import UserError
from processors.core.registry import Registry
from processors.gaps import sample_gaps, splice
from processors.inpaint import check_gap_fits, inpaint_audio, locate, window_mels, window_samples
from processors.lpc import lpc_fill, lpc_sizes
from processors.mel import MelSpectrogram
from processors.isolation import CrashIsolation
from processors.similarity_fill import similarity_wave_fill
from models.vocoder_nets import VOCODERS, build_vocoder
from processors.vocoders import with_vocoder
from training.evaluation.scoring import Scorer

log = logging.getLogger(__name__)

# (gapped (N,), gap (start, end), clean (N,)) -> filled (N,); ``clean`` is for the oracle only.
FillFn = Callable[[np.ndarray, tuple[int, int], np.ndarray], np.ndarray]
BASELINES = Registry("baseline")   # name -> builder(cfg, mel_fn, vocoder) -> FillFn

# Kept examples hold this much audio each side of the gap: enough to hear the gap in context
# in the listening report (training.evaluation.report), little enough to keep the page small.
EXAMPLE_CONTEXT_S = 1.5


@dataclass
class System:
    """One gap filler in the benchmark, with the config whose crop window it fills from."""
    name: str
    cfg: object
    fill: FillFn
    # it searches the whole recording (the similarity fills, guided models), so it is given
    # the whole file, not only the span around the gap that the others need
    whole_recording: bool = False


@dataclass
class Example:
    """A few examples keep their waveforms (EXAMPLE_CONTEXT_S around the gap) and scores,
    for figures and the listening report."""
    file: str
    gap_ms: float
    gap: tuple[int, int]       # samples, relative to ``offset``
    offset: int                # where the crop starts in the clip
    waves: dict = field(default_factory=dict)   # 'original', 'gapped', system name -> (L,)
    scores: dict = field(default_factory=dict)  # system name -> its row of metrics for this gap


baseline = BASELINES.register


def mel_system(model, cfg, mel_fn, vocoder) -> FillFn:
    """Fill with any inpainter of the model contract, through the same vocoder and splice as inference."""
    sr = cfg.audio.sample_rate
    return lambda gapped, gap, clean: inpaint_audio(gapped, sr, [gap], model, cfg, mel_fn, vocoder)[0]


@baseline("zero")
def zero_fill(cfg, mel_fn, vocoder) -> FillFn:
    """The gap left silent: what a listener gets with no inpainting at all."""
    return lambda gapped, gap, clean: gapped


@baseline("linear")
def linear_fill(cfg, mel_fn, vocoder) -> FillFn:
    """Straight lines across the gap in the log-Mel domain, then the same vocoder and splice."""
    return mel_system(linear_interpolation, cfg, mel_fn, vocoder)


@baseline("lpc")
def lpc_baseline(cfg, mel_fn, vocoder) -> FillFn:
    """Waveform-domain LPC extrapolation from both sides, cross-faded, spliced like the others
    (without a fade: the predictions run on from the context's own samples, so they join it)."""
    sr = cfg.audio.sample_rate
    n_ctx, order = lpc_sizes(sr)

    def fill(gapped, gap, clean):
        s, e = gap
        piece = lpc_fill(gapped[max(0, s - n_ctx):s], gapped[e:e + n_ctx], e - s, order)
        return splice(gapped, piece.astype(np.float32), s, e, 0)
    return fill


@baseline("similarity_mel")
def similarity_mel_baseline(cfg, mel_fn, vocoder) -> FillFn:
    """The stretch of the same recording whose surroundings match the gap's best
    (processors.similarity), copied in the log-Mel domain, then the same vocoder and splice."""
    return mel_system(SimilarityMelFill(), cfg, mel_fn, vocoder)


@baseline("similarity_wave")
def similarity_wave_baseline(cfg, mel_fn, vocoder) -> FillFn:
    """The same search, the matched stretch's samples copied into the gap (aligned to the
    sample, short crossfades from the context's LPC continuation): true phase and fine structure."""
    sr = cfg.audio.sample_rate
    return lambda gapped, gap, clean: similarity_wave_fill(gapped, sr, [gap], cfg, mel_fn)[0]


@baseline("oracle")
def oracle_fill(cfg, mel_fn, vocoder) -> FillFn:
    """The true Mel of the gap through the same vocoder and splice: the ceiling of any
    Mel inpainter with this vocoder (what is left is Mel inversion and Griffin-Lim phase error)."""
    sr = cfg.audio.sample_rate

    def fill(gapped, gap, clean):
        truth = window_mels(clean, sr, locate(gap, len(clean), sr, cfg), cfg, mel_fn)
        return mel_system(lambda masked, mask: truth[None, None], cfg, mel_fn, vocoder)(gapped, gap, clean)
    return fill


# Baselines that go through the vocoder: with several vocoders, one row per vocoder each.
VOCODED_BASELINES = ("linear", "similarity_mel", "oracle")
WHOLE_RECORDING_BASELINES = ("similarity_mel", "similarity_wave")
# what scripts/evaluate.py compares without --baselines: copying from elsewhere in the
# recording (similarity_*) is for music, whose repetitions it finds
DEFAULT_BASELINES = {"speech": ("zero", "linear", "lpc", "oracle"),
                     "music": ("zero", "linear", "similarity_mel", "similarity_wave", "oracle")}


def build_systems(models: list[tuple[str, object, object]], cfg, baselines: list[str],
                  vocoders: list[str] | None = None, nets: dict[str, str] | None = None) -> list[System]:
    """Systems for ``(name, model, its config)`` checkpoints plus the named baselines (built for ``cfg``).

    Every config must share ``cfg``'s audio and vocoder settings: one table compares fillers,
    not vocoders. Each checkpoint keeps its own output stage (``inference.*``: LPC edges, the
    copy gates), as in inference; the baselines take ``cfg``'s splice. ``vocoders`` overrides
    vocoder.method; with several methods every Mel system (checkpoints, linear, oracle) gets
    one row per method, named ``system@method``, so vocoder and inpainter quality read
    separately. ``nets`` gives the learned vocoders their trained nets (``{method: checkpoint}``).
    UserError for differing settings, an unknown baseline or vocoder.
    """
    for name, _, c in models:
        for section in ("audio", "vocoder"):
            if getattr(c, section) != getattr(cfg, section):
                raise UserError(f"checkpoint {name}: its {section} settings differ from the first checkpoint's; "
                                "evaluate checkpoints with different settings separately")
    if not models and not baselines:
        raise UserError("nothing to evaluate: give a --checkpoint or at least one baseline")
    for b in baselines:
        BASELINES.lookup(b, "--baselines")
    methods = list(dict.fromkeys(vocoders or ([*nets] if nets else [cfg.vocoder.method])))
    for m in methods:
        VOCODERS.lookup(m, "--vocoder")
    mel_fn = MelSpectrogram(cfg.audio)
    systems = []
    for method in methods:
        tag = f"@{method}" if len(methods) > 1 else ""
        mcfg = with_vocoder(cfg, method, nets)
        vocoder = build_vocoder(mcfg)
        # a checkpoint's output stage (inference.guide_detail, LPC edges) is its own, not the
        # baselines': similarity_mel (a guided Mel fill) would otherwise turn into similarity_wave
        bcfg = dataclasses.replace(mcfg, inference=dataclasses.replace(mcfg.inference, guide_detail=False,
                                                                       lpc_hold_ms=0.0, lpc_fade_ms=0.0))
        for name, model, c in models:
            c = with_vocoder(c, method, nets)
            systems.append(System(name + tag, c, mel_system(model, c, mel_fn, vocoder),
                                  getattr(model, "takes_guide", False)))
            if baselines and getattr(model, "searches_corpus", False):   # its guide alone, beside the baselines
                systems.append(System(f"{name} corpus copy{tag}", bcfg,
                                      mel_system(CorpusCopy(model), bcfg, mel_fn, vocoder), False))
        systems += [System(b + (tag if b in VOCODED_BASELINES else ""), bcfg, BASELINES[b](bcfg, mel_fn, vocoder),
                           b in WHOLE_RECORDING_BASELINES)
                    for b in baselines if b in VOCODED_BASELINES or method == methods[0]]
    return systems


# --------------------------------------------------------------------------- gaps

def check_gap_ms(gap_ms: list[float], systems: list[System]) -> None:
    """UserError for a gap length that is not positive, shorter than a sample, or that some
    system cannot fill."""
    for ms in gap_ms:
        if not (ms > 0 and math.isfinite(ms)):
            raise UserError(f"--gap-ms {ms:g}: gap lengths must be positive milliseconds")
        for s in systems:
            check_gap_fits(ms, s.cfg, s.name)


# --------------------------------------------------------------------------- the run

def work_span(gap: tuple[int, int], n_samples: int, window: int, scored: tuple[int, int],
              context: int) -> tuple[int, int]:
    """Samples [lo, hi) of the file one gap's evaluation needs: the crop window of ``window``
    samples centred on the gap (what every system fills from, as ``locate`` places it), the
    ``scored`` span (``Scorer.span``) and ``context`` samples each side for the kept example;
    cut at the file's ends. Filling this span gives the same samples as filling the whole file."""
    (s, e), start = gap, (gap[0] + gap[1]) // 2 - window // 2
    return (max(0, min(start, scored[0], s - context)),
            min(n_samples, max(start + window, scored[1], e + context)))


def evaluate(files: list[Path], systems: list[System], cfg, gap_ms: list[float], gaps_per_file: int,
             seed: int, n_examples: int = 1) -> tuple[list[dict], list[Example]]:
    """Score every system on ``gaps_per_file`` gaps of each length in every usable file.

    The metrics are those of ``cfg.eval.domain``, whole-signal ones on the excerpt of
    ``cfg.eval.excerpt_seconds`` around each gap (training.evaluation.scoring). Returns one row per
    (file, gap, system) and, per gap length, the first ``n_examples`` examples' waveforms
    for figures. Unreadable or too-short files are skipped with one warning; none usable
    is a UserError. Work and memory per gap do not depend on the file's length, but for
    systems that search the whole recording (``System.whole_recording``). The
    whole-signal metrics run in a spawned worker process, so a script calling this needs
    the usual ``if __name__ == "__main__":`` guard.
    """
    check_gap_ms(gap_ms, systems)
    sr = cfg.audio.sample_rate
    mel_fn = MelSpectrogram(cfg.audio)
    window = max(window_samples(s.cfg) for s in systems)
    rows, examples, skipped = [], [], {}
    per_file = len(gap_ms) * gaps_per_file
    with CrashIsolation(threads=torch.get_num_threads()) as runner, \
            tqdm(total=len(files) * per_file, desc="evaluate", unit="gap") as bar:
        scorer = Scorer(cfg, mel_fn, runner)
        for path in files:
            try:
                clean = load_mono(path, sr)
            except UserError as exc:
                skipped[path] = str(exc)
                bar.update(per_file)
                continue
            if len(clean) <= window:
                skipped[path] = f"shorter than the {window / sr:.2f} s window a gap needs around it"
                bar.update(per_file)
                continue
            for ms in gap_ms:
                for i, gap in enumerate(sample_gaps(len(clean), round(ms * sr / 1000), window, gaps_per_file,
                                                    seed, path.name)):
                    rows += _run_example(path, ms, i, gap, clean, systems, window, scorer, examples, n_examples)
                    bar.update(1)
    if skipped:
        first = next(iter(skipped.items()))
        log.warning("skipped %d of %d files (e.g. %s: %s)", len(skipped), len(files), first[0], first[1])
    if not rows:
        raise UserError(f"no usable file among {len(files)} (e.g. {first[0]}: {first[1]})" if skipped
                        else "no file to evaluate")
    return rows, examples


def _run_example(path, ms, index, gap, clean, systems, window, scorer, examples, n_examples) -> list[dict]:
    """Fill and score one gap with every system, on the span of the file it needs."""
    sr = scorer.cfg.audio.sample_rate
    context = round(EXAMPLE_CONTEXT_S * sr)
    scored = scorer.span(gap, len(clean))
    lo, hi = work_span(gap, len(clean), window, scored, context)
    piece = clean[lo:hi]
    s, e = gap[0] - lo, gap[1] - lo
    gapped = piece.copy()
    gapped[s:e] = 0.0
    cut = slice(scored[0] - lo, scored[1] - lo)
    ref = scorer.reference(piece[cut], (s - cut.start, e - cut.start))
    keep = sum(x.gap_ms == ms for x in examples) < n_examples
    if keep:
        first = max(0, s - context)
        crop = slice(first, e + context)
        example = Example(path.stem, ms, (s - first, e - first), lo + first,
                          {"original": piece[crop], "gapped": gapped[crop]})
        examples.append(example)
    base = {"file": path.name, "gap_ms": ms, "gap_index": index, "start_s": gap[0] / sr, "end_s": gap[1] / sr,
            "excerpt_s": (ref.excerpt.stop - ref.excerpt.start) / sr}
    rows = []
    whole = None
    for system in systems:
        if system.whole_recording:      # the search needs all of the recording; score the same span
            if whole is None:
                whole = clean.copy()
                whole[gap[0]:gap[1]] = 0.0
            filled = system.fill(whole, gap, clean)[lo:hi]
        else:
            filled = system.fill(gapped, (s, e), piece)
        rows.append({**base, "system": system.name, **scorer.score(ref, filled[cut])})
        if keep:
            example.waves[system.name], example.scores[system.name] = filled[crop], rows[-1]
    return rows
