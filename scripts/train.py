"""Train an inpainter: python scripts/train.py --config configs/unet_ljspeech.yaml [--set k=v] [--resume ckpt]

On N GPUs (or N CPU processes): torchrun --nproc_per_node N scripts/train.py --config ...
"""
import _path  # noqa: F401

from processors.core.cli import parser, run, summary_line


def main(args) -> int:
    import copy

    from processors.core.errors import UserError
    from processors.core.checkpoint_io import CheckpointMismatch, config_changes, load_checkpoint
    from processors.core.config import apply_overrides
    from training.configure import build_config, load_config
    from training.trainer import Trainer

    resume = None
    if args.resume:
        resume = load_checkpoint(args.resume)
        saved = copy.deepcopy(resume["config"])
        cfg = build_config(apply_overrides(resume["config"], args.set), where=f"{args.resume} (config)")
    elif args.config:
        cfg = load_config(args.config, args.set)
    else:
        raise UserError("give --config FILE (or --resume CHECKPOINT)")
    try:
        trainer = Trainer(cfg, resume=resume)
    except CheckpointMismatch as exc:
        changed = [c for c in config_changes(saved, cfg.to_dict()) if c.startswith(("model.", "audio.", "data."))]
        more = f" (+{len(changed) - 2} more)" if len(changed) > 3 else ""
        hint = f"; --set changed {', '.join(changed[:2] if more else changed)}{more}" if changed else ""
        raise UserError(f"{args.resume}: {exc}{hint}") from exc
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
