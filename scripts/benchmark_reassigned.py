"""Benchmark the reassigned-spectrogram inversions on real speech, training and held-out files apart:

    python scripts/benchmark_reassigned.py [--config configs/reassigned_ljspeech.yaml] [--files 23]
        [--methods pghi_reassigned:60 pghi_reassigned:0 ...] [--checkpoint checkpoints/reassigned_ljspeech/best.pt]

Prints, for each method, SNR, segmental SNR, spectral convergence, LSD, PESQ-WB and the time per
second of audio (see training/evaluation/reassigned_benchmark.py), on the config's training files and on its
held-out (test) files. With --checkpoint the learned inverse is a row too.
"""
import os

import _path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # see scripts/benchmark_vocoder.py
os.environ.setdefault("OMP_NUM_THREADS", "1")

from processors.core.cli import parser, run  # noqa: E402

DEFAULT_CONFIG = "configs/reassigned_ljspeech.yaml"
DEFAULT_METHODS = ["pghi_reassigned:60", "pghi_reassigned:25", "pghi_reassigned:0", "pghi_reassigned_gl:100",
                   "pghi_magnitude:0", "griffinlim:100"]
LEARNED = ("learned", 5)     # with --checkpoint: the net after its classical_iter (20) iterations, then 5 more


def main(args) -> int:
    import dataclasses
    import platform

    import torch

    import models.reassigned_net  # noqa: F401  (registers the 'learned' inversion)
    from datasets.mel_dataset import build_splits
    from processors.core.errors import UserError
    from processors.reassigned_inverse import INVERSIONS
    from training.configure import load_config
    from processors.core.cli import check_option
    from training.evaluation.reassigned_benchmark import benchmark_reassigned, markdown, parse_methods

    check_option("--files", args.files, 1)
    torch.set_num_threads(1)
    cfg = load_config(args.config, args.set)
    if not os.path.isdir(cfg.data.root):
        print(f"skipped: no clips at {cfg.data.root} (the benchmark needs real recordings; --set data.root=...)")
        return 0
    methods = parse_methods(args.methods, cfg.reassigned.n_iter)
    if args.checkpoint and not any(name == "learned" for name, _ in methods):
        methods.append(LEARNED)
    for name, iters in methods:
        if name not in INVERSIONS or iters < 0:
            raise UserError(f"--methods: unknown method or negative iterations in {name}:{iters} "
                            f"(known: {', '.join(sorted(INVERSIONS))})")
    rc = dataclasses.replace(cfg.reassigned, checkpoint=args.checkpoint or cfg.reassigned.checkpoint)
    splits = build_splits(cfg)
    sets = {"training files": splits["train"][:args.files], "held-out files": splits["test"][:args.files]}
    # a config without a test split (data.test_fraction=0, no data.test_files) still benchmarks
    # the inversions, most of which learn nothing; only the comparison with held-out clips is lost
    missing = [name for name, files in sets.items() if not files]
    sets = {name: files for name, files in sets.items() if files}
    if not sets:
        raise UserError(f"data.root {cfg.data.root}: no clips in the training or the held-out split")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Reassigned-spectrogram inversion\n\n- {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs, 1 thread, load average {load:.1f} at start (wall times inflate when the machine is shared)\n"
          f"- config {args.config}: {rc.sample_rate} Hz, n_fft {rc.n_fft}, hop {rc.hop_length}, {rc.window}, "
          f"center={rc.center}; data {cfg.data.root} + {cfg.data.extra_roots}, split by file\n"
          + "".join(f"- no {name} in the config's split (data.test_fraction {cfg.data.test_fraction:g}, "
                    f"{len(cfg.data.test_files)} data.test_files): that table is left out\n" for name in missing))
    results = benchmark_reassigned(sets, rc, methods, log=lambda m: print(f"  {m}", flush=True))
    print("\n" + markdown(results, {k: len(v) for k, v in sets.items()}))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", default=str(_path.ROOT / DEFAULT_CONFIG), help=f"settings and data (default {DEFAULT_CONFIG})")
    p.add_argument("--set", action="append", default=[], help="config override a.b=value (repeatable)")
    p.add_argument("--files", type=int, default=23, help="clips per set: the first N of each split (default 23)")
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, metavar="METHOD[:ITERS]",
                   help=f"inversions to compare (default {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--checkpoint", default="", help="the learned inverse's net (scripts/train_reassigned.py): adds learned:5")
    run(main, p)
