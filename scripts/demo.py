"""make demo: fill a real gap in real speech with the shipped model, then train a small U-Net
on a corpus it makes itself and fill a gap in an unseen clip."""
import _path  # noqa: F401

from processors.core.cli import parser, run


def main(args) -> int:
    import math
    import time
    from pathlib import Path

    from processors.core.cli import check_output_folder
    from processors.core.errors import UserError
    from training.configure import load_config
    from training.evaluation.demo import DEMO_OUTPUTS, shipped_demo, training_demo

    start, out = time.time(), Path(args.out)
    check_output_folder(out, "--out")
    # a re-run replaces the demo's own files, and nothing else: a folder holding others is not the demo's
    foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_OUTPUTS) if out.is_dir() else []
    if foreign:
        raise UserError(f"--out {out} holds files the demo does not write ({foreign[0]}); choose another folder")
    # the synthetic corpus goes under --out too (a --set data.root=... still wins)
    cfg = load_config(args.config, [f"data.root={out / 'corpus'}", *args.set])   # a bad config fails now
    shipped = shipped_demo(out)
    print(f"1. the shipped speech model fills {shipped['gap']} of {Path(shipped['clip']).name} "
          f"({time.time() - start:.0f} s); scored on the gap:")
    metrics = [m for m in ("lsd_db", "mel_snr_db", "pesq_wb", "plcmos") if m in next(iter(shipped["scores"].values()))]
    print("   " + f"{'system':<16}" + "".join(f"{m:>12}" for m in metrics))
    for system, scores in shipped["scores"].items():
        print("   " + f"{system:<16}" + "".join(f"{scores[m]:>12.3f}" if not math.isnan(scores[m]) else f"{'nan':>12}"
                                               for m in metrics))
    print(f"   outside_gap_identical: {shipped['outside_gap_identical']}; wrote {out}/{{original,gapped,filled}}.wav, "
          f"{out}/comparison.png, {shipped['listening_report']}")
    print("2. training a small U-Net on the CPU (the training demo):")
    result = training_demo(cfg, out / "training")
    result.pop("scores")
    logs = result.pop("logs")
    for k, v in result.items():
        print(f"   {k}: {v:.5g}" if isinstance(v, float) else f"   {k}: {v}")
    print(f"wrote {out}/training/{{gapped.wav,filled.wav,comparison.png,report.html}}, TensorBoard logs in "
          f"{logs} ({time.time() - start:.0f} s in all)")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", default="configs/demo.yaml", help="the training demo's config")
    p.add_argument("--out", default="results/demo",
                   help="output folder (default results/demo); a re-run replaces the demo's own files in it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the training demo's config (repeatable), e.g. train.max_steps=50")
    run(main, p)
