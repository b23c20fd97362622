"""Train an inpainter: python scripts/train.py --config configs/unet_ljspeech.yaml [--set k=v] [--resume ckpt]

On N GPUs (or N CPU processes): torchrun --nproc_per_node N scripts/train.py --config ...
"""
import _path  # noqa: F401

from processors.core.cli import parser, run, summary_line


def main(args) -> int:
    from training.loop import open_run
    from training.trainer import InpainterTask

    trainer = open_run(InpainterTask, args.config, args.set, args.resume)
    summary = trainer.fit()
    trainer.close()
    if trainer.world.main:
        print(summary_line(summary))
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", help="YAML config under configs/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.lr=3e-4 (repeatable)")
    p.add_argument("--resume", help="checkpoint to continue (its config is used; --set still applies)")
    run(main, p)
