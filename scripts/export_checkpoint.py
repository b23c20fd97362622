"""Strip a training checkpoint to what inference needs (config + weights, fp16 by default):
python scripts/export_checkpoint.py --checkpoint checkpoints/<run>/best.pt --output model.pt"""
import _path  # noqa: F401

from training.cli import parser, run


def main(args) -> int:
    from pathlib import Path

    from processors.errors import UserError
    from training.checkpoint import inference_state, load_checkpoint, load_inpainter, save_checkpoint
    src, dst = Path(args.checkpoint), Path(args.output)
    if dst.exists() and not args.force:
        raise UserError(f"--output {dst} exists; choose another path or add --force to replace it")
    if dst.resolve() == src.resolve():
        raise UserError(f"--output {dst} is the input checkpoint; choose another path")
    save_checkpoint(dst, inference_state(load_checkpoint(src), half=not args.fp32))
    load_inpainter(dst)            # the exported file rebuilds its model, or this fails loudly now
    print(f"{src} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--checkpoint", required=True, help="a training checkpoint, e.g. checkpoints/<run>/best.pt")
    p.add_argument("--output", required=True, help="where to write the inference checkpoint")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: fp16, half the size)")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    run(main, p)
