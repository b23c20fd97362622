"""Train the learned reassigned inverse: python scripts/train_reassigned.py --config configs/reassigned_ljspeech.yaml [--set k=v] [--resume ckpt]

Then use it: scripts/invert_reassigned.py --method learned --checkpoint checkpoints/<run>/best.pt,
scripts/benchmark_reassigned.py --checkpoint checkpoints/<run>/best.pt.
"""
import _path  # noqa: F401

from processors.core.cli import parser, run, summary_line


def main(args) -> int:
    from training.loop import open_run
    from training.reassigned_training import CorrectorTask

    print(summary_line(open_run(CorrectorTask, args.config, args.set, args.resume).fit()))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", help="configs/reassigned_ljspeech.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--resume", help="checkpoint to continue (its config is used; --set still applies)")
    run(main, p)
