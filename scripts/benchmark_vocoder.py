"""Vocoder benchmark on real clips: python scripts/benchmark_vocoder.py [--data ../shared/data/LJSpeech-mini] [--files 8]

For each vocoder method and 8, 32 and 100 iterations: LSD on 200 ms gaps, PESQ-WB of the
clip and milliseconds per gap, with the true Mel of each window (the oracle), plus
librosa's mel_to_audio as the outside reference. Prints a markdown table.
"""
import os

import _path

# Idle OpenMP threads otherwise spin while they wait: on a shared machine they burn the
# cores the other thread needs, and small FFTs took ~100x longer with 2 threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from processors.core.cli import parser, run  # noqa: E402

DEFAULT_CONFIG = "configs/unet_ljspeech.yaml"
DEFAULT_DATA = _path.ROOT.parent / "shared" / "data" / "LJSpeech-mini"


def main(args) -> int:
    import platform
    from pathlib import Path

    import torch

    from models.vocoder_nets import VOCODER_NETS, vocoder_checkpoints
    from processors.core.errors import UserError
    from models.vocoder_nets import VOCODERS
    from processors.inpaint import check_gap_fits
    from training.configure import load_config
    from datasets.sources import evaluation_files
    from processors.core.cli import check_option
    from training.evaluation.vocoder_benchmark import benchmark_vocoders

    for flag, value, low in (("--files", args.files, 1), ("--gaps-per-clip", args.gaps_per_clip, 1),
                             ("--iters", args.iters, 1), ("--threads", args.threads, 1), ("--seed", args.seed, 0)):
        check_option(flag, value, low)
    check_option("--gap-ms", args.gap_ms, 0, above=True)
    data = Path(args.data)
    if not data.is_dir():
        print(f"skipped: no clips at {data} (the benchmark needs real recordings; give --data)")
        return 0
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.set)
    check_gap_fits(args.gap_ms, cfg, "the vocoder benchmark")     # the clips are read at the config's rate
    nets = vocoder_checkpoints(args.vocoder_checkpoint)
    # by default every classical method and every learned one whose net is given
    methods = args.methods or [m for m in sorted(VOCODERS) if m not in VOCODER_NETS or m in nets]
    files = evaluation_files(str(data), args.split, cfg)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Vocoder benchmark\n\n- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {args.threads}, load average {load:.1f} at start: timings are wall clock and "
          "inflated when the machine is shared\n"
          f"- config {args.config}, data {data} (split {args.split}), "
          f"seed {args.seed}\n")
    table = benchmark_vocoders(files, args.files, cfg, methods, args.mel_inverse, args.iters, args.gap_ms,
                          args.gaps_per_clip, args.seed, args.ablate, log=lambda m: print(f"  {m}", flush=True),
                          nets=nets)
    if not table:
        raise UserError(f"{data}: no clip long enough for {args.gaps_per_clip} gaps with a full window each")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    from models.vocoder_nets import VOCODERS
    from processors.mel import MEL_INVERSES
    p = parser(__doc__)
    p.add_argument("--config", default=str(_path.ROOT / DEFAULT_CONFIG), help=f"audio settings (default {DEFAULT_CONFIG})")
    p.add_argument("--set", action="append", default=[], help="config override a.b=value (repeatable)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="LJSpeech-1.1 root or folder of audio")
    p.add_argument("--split", choices=["all", "train", "val", "test"], default="all",
                   help="files of the config's split to use (default all)")
    p.add_argument("--files", type=int, default=8, help="clips to use: the first N long enough for the gaps (default 8)")
    p.add_argument("--gap-ms", type=float, default=200.0, help="gap length (default 200 ms)")
    p.add_argument("--gaps-per-clip", type=int, default=2, help="gaps per clip (default 2)")
    p.add_argument("--iters", type=int, nargs="+", default=[8, 32, 100], help="iteration counts (default 8 32 100)")
    p.add_argument("--methods", nargs="+", choices=sorted(VOCODERS),
                   help="default: every classical method and the learned ones given --vocoder-checkpoint")
    p.add_argument("--vocoder-checkpoint", nargs="+", metavar="PATH",
                   help="trained nets of learned vocoders (scripts/train_vocoder.py)")
    p.add_argument("--mel-inverse", nargs="+", default=["lstsq"], choices=sorted(MEL_INVERSES),
                   help="Mel inverse(s) to compare (default lstsq, whatever the config's vocoder.mel_inverse, "
                        "pinv in the shipped configs)")
    p.add_argument("--ablate", action="store_true",
                   help="add context_griffinlim with every phase init, with and without holding known samples")
    p.add_argument("--seed", type=int, default=0, help="seeds the gap positions (default 0)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    run(main, p)
