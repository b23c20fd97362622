"""Typed run configuration: the schema, one dataclass a section, with its defaults.

Reading, checking and writing it: processors.core.config_io. The resolved config is saved
with every run and inside every checkpoint (``to_dict``), so a checkpoint alone rebuilds
its model.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class AudioConfig:
    """Signal parameters shared by features, vocoder and inference."""
    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney", "none"] = "slaney"
    min_db: float = -100.0         # log-Mel floor; normalised value 0
    max_db: float = 20.0           # normalised value 1


@dataclass
class MaskConfig:
    """How training/validation gaps are cut (mask 1 = missing)."""
    mode: Literal["random", "fixed", "range"] = "random"   # 'random': 1..max_gaps segments; 'fixed': one centred gap;
                                                           # 'range': one gap of min..max_gap_frames anywhere between the margins
    max_gaps: int = 2
    min_fraction: float = 0.10     # random mode: total gap share of the crop
    max_fraction: float = 0.20
    gap_frames: int = 32           # fixed mode: gap length in frames
    min_gap_frames: int = 8        # range mode: shortest and longest gap in frames (uniform)
    max_gap_frames: int = 32
    margin_frames: int = 4         # context always kept at both crop edges
    fill_value: float = 0.0        # value written into the hole (normalised units)


@dataclass
class DataConfig:
    dataset: str = "ljspeech"      # see datasets.sources.SOURCES
    root: str = "data/LJSpeech-1.1"
    extra_roots: list = field(default_factory=list)   # more folders of the same layout
    crop_frames: int = 128
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    val_items: int = 64            # fixed validation crops (same masks every run)
    max_bad_fraction: float = 0.2  # more unreadable files than this is fatal
    min_file_seconds: float = 0.5  # shorter or silent files are skipped
    num_workers: int = 0
    cache_dir: str = ""            # on-disk log-Mel cache (datasets.mel_cache); "" = off, e.g. "cache/mels"
    # files whose names share the part before this separator stay in one split (the stems of
    # one song, e.g. "x__song.ogg" and "x__guitar.ogg" with "__"); "" = every file on its own
    group_separator: str = ""
    # file names (or their group keys) that form the test split instead of the hashed share
    test_files: list = field(default_factory=list)
    mask: MaskConfig = field(default_factory=MaskConfig)


@dataclass
class ModelConfig:
    name: str = "unet"
    params: dict = field(default_factory=dict)   # validated against the model's own dataclass


@dataclass
class PerceptualConfig:
    """The perceptual loss (``loss.weights.perceptual``): a frozen MAE encoder's features."""
    checkpoint: str = ""           # an MAE run's checkpoint (same audio settings and crop_frames)
    layers: list = field(default_factory=lambda: [2, 4])   # encoder blocks, 1 = after the first
    distance: Literal["l1", "mse"] = "l1"                  # between the features


@dataclass
class LossConfig:
    weights: dict = field(default_factory=lambda: {"mse": 1.0, "boundary": 0.1})
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)


@dataclass
class TrainConfig:
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.99])
    schedule: Literal["constant", "cosine"] = "cosine"      # after a linear warm-up
    warmup_steps: int = 100
    max_steps: int = 10000
    grad_clip: float = 1.0
    log_every: int = 25
    val_every: int = 500
    ckpt_every: int = 500
    device: str = "auto"           # 'auto', 'cpu', 'cuda', 'cuda:1', ...
    num_threads: int = 0           # torch CPU threads; 0 = torch default
    amp: Literal["off", "bf16", "fp16"] = "off"            # mixed precision (fp16 needs CUDA)
    compile: bool = False          # torch.compile the model (slow start, faster steps on GPU)
    # exponential moving average of the weights, validated and saved (0 = off; 0.999: about the
    # last 1,000 steps); a GAN's generator wanders from step to step, its average less
    ema_decay: float = 0.0
    # an inpainter's weights to start a new run from (fine-tuning): a checkpoint of the same
    # model and audio settings, or a shipped model's name ('speech', 'music'); ignored on --resume
    init_from: str = ""
    runs_dir: str = "runs"         # TensorBoard logs go to <runs_dir>/<run_name>
    checkpoints_dir: str = "checkpoints"


@dataclass
class VocoderConfig:
    """Mel -> waveform for each gap's window (processors.vocoders)."""
    method: str = "context_griffinlim"   # see processors.vocoders.VOCODERS
    mel_inverse: str = "pinv"      # Mel -> linear magnitude: 'lstsq', 'pinv' or 'nnls' (processors.mel)
    n_iter: int = 32               # Griffin-Lim iterations
    momentum: float = 0.99         # fast Griffin-Lim; 0 = plain Griffin-Lim
    checkpoint: str = ""           # the trained net of 'melspec2spec' or 'degli' (scripts/train_vocoder.py)
    params: dict = field(default_factory=dict)   # that net's architecture, when training it


@dataclass
class ReassignedConfig:
    """The reassigned spectrogram (processors.reassigned) and its inversion
    (processors.reassigned_inverse); defaults: the published settings (16 kHz, n_fft 80,
    hop 20, Hamming, center=False) and librosa's own defaults for the rest."""
    sample_rate: int = 16000
    n_fft: int = 80
    win_length: int = 0            # 0 = n_fft
    hop_length: int = 20
    window: str = "hamming"        # any scipy.signal.get_window name
    center: bool = False
    ref_power: float = 1.0e-6      # bins with |S|^2 below this have no reassignment
    fill_nan: bool = False         # such bins read NaN; True: their bin frequency and frame time
    clip: bool = True              # reassignments clipped to [0, sr/2] Hz and to the signal's span
    method: str = "pghi_reassigned"    # see processors.reassigned_inverse.INVERSIONS
    n_iter: int = 60               # iterations after PGHI (Griffin-Lim's for the magnitude-only methods)
    momentum: float = 0.9          # extrapolation of each iteration (fast Griffin-Lim's is 0.99)
    tol_db: float = 100.0          # PGHI integrates bins within this of the peak; the rest start random
    checkpoint: str = ""           # the learned inverse's net (method 'learned')
    params: dict = field(default_factory=dict)   # that net's architecture, when training it
    classical_iter: int = 20       # learned: iterations of pghi_reassigned the net corrects


@dataclass
class InferenceConfig:
    min_gap_ms: float = 20.0       # digital silence at least this long is a gap
    # in a lossy file (MP3, OGG) a found gap widens over the codec's low-level smear around it,
    # up to edge_ms each side: samples below edge_db under the file's RMS, or below
    # edge_local_db under the mean level of that side's edge_ms (a codec's echo of a loud
    # sound next to the gap is louder than the file's threshold; processors.gaps)
    edge_db: float = -30.0
    edge_local_db: float = -20.0
    edge_ms: float = 60.0          # 0 = take the exactly-zero run as it is
    crossfade_ms: float = 5.0      # fade of fills that do not continue the context (plain griffinlim)
    # a file with several channels: 'downmix' fills the mono mix and copies it to every channel;
    # 'per_channel' fills each channel from its own context (and its own guide): stereo stays stereo
    stereo: Literal["downmix", "per_channel"] = "downmix"
    # a model that takes the similarity guide: its fill keeps the fine structure (harmonics,
    # transients, phase) of the matched stretch's samples under the model's Mel envelope
    # (processors.vocoders.detail_start), instead of the Mel inverse's smooth magnitude
    guide_detail: bool = False
    # the fill's first and last lpc_hold_ms are linear prediction from the context (order
    # LPC_ORDER_MS over LPC_CONTEXT_MS, processors.lpc), cross-faded into the fill over
    # lpc_fade_ms: a vocoded fill does not carry on the context's pitch and phase, a prediction
    # does for a few tens of milliseconds (processors.lpc.lpc_edges); 0 and 0 = off
    lpc_hold_ms: float = 0.0
    lpc_fade_ms: float = 0.0
    # a model that searches a corpus (speech): a gap whose match scores at least this takes the
    # match's Mel as it is, not the network's fill (0: never). A close match is the same sound,
    # and copied it stays as sharp as speech is; the network's correction of it is a blend
    corpus_copy_score: float = 0.0
    # ...and only a gap at least this long: in a short gap the network's fill is nearer the
    # truth and the copy buys no sharpness a listener hears (0: any length)
    corpus_copy_min_ms: float = 0.0
    # ...with each Mel band's mean over the gap moved this share of the way to the network's
    # fill's (0: the copy's own, at the context's level; 1: the network's band levels)
    corpus_copy_pull: float = 0.0


@dataclass
class SimilarityConfig:
    """The similarity search (processors.similarity): for the guide of guided models and the
    similarity baselines."""
    context_s: float = 1.0         # known context compared on each side of a gap
    bands: int = 32                # the log-Mel pooled into this many bands for the search
    align_ms: float = 50.0         # waveform copy: context each side used to align the copy to the sample
    crossfade_ms: float = 10.0     # waveform copy: seam crossfade from the context's continuation (LPC)


@dataclass
class EvalConfig:
    """How scripts/evaluate.py scores (processors.excerpt_metrics)."""
    # 'speech' (PESQ, STOI, PLCMOS, DNSMOS) or 'music' (ViSQOL): the keys of DOMAIN_METRICS
    # (processors.excerpt_metrics), checked there by models.build, not a Literal kept in step by hand
    domain: str = "speech"
    excerpt_seconds: float = 0.0   # whole-signal metrics score this much audio each side of a gap;
                                   # 0 = the domain's default (speech 2 s, music 5 s)
    # whole-signal metrics to run, a subset of the domain's; [] = all of them (each costs CPU:
    # PLCMOS and DNSMOS about 0.5 s per excerpt, ViSQOL about 2.5 s)
    metrics: list = field(default_factory=list)


@dataclass
class Config:
    run_name: str = "run"
    seed: int = 0
    audio: AudioConfig = field(default_factory=AudioConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    reassigned: ReassignedConfig = field(default_factory=ReassignedConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
