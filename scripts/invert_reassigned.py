"""Rebuild audio from its reassigned spectrogram alone:

    python scripts/invert_reassigned.py --input in.wav --output out.wav [--method pghi_reassigned] [--iters 60]
    python scripts/invert_reassigned.py --input in.wav --output out.wav --spectrogram in.npz   # keep the analysis
    python scripts/invert_reassigned.py --input edited.npz --output out.wav                   # invert a stored one

An audio input (wav, flac, ogg, mp3; any rate and channel count) is resampled to the analysis
rate, analysed (librosa.reassigned_spectrogram with the config's ``reassigned`` settings,
by default the published ones), rebuilt from the reassigned spectrogram alone and resampled
back: the output has the input's rate, length and channels. An .npz input holds freqs, times,
mags and sample_rate (as --spectrogram writes them) and is rebuilt at the analysis rate.
"""
import _path  # noqa: F401

from processors.core.cli import parser, run

METHOD_HELP = ("pghi_reassigned (default: PGHI from the reassigned derivatives + reassigned Griffin-Lim), "
               "pghi_reassigned_gl, pghi_magnitude, griffinlim, learned (needs --checkpoint)")


def main(args) -> int:
    import dataclasses
    from pathlib import Path

    import numpy as np

    import models.reassigned_net  # noqa: F401  (registers the 'learned' inversion)
    from processors.audio_io import AUDIO_EXTENSIONS, read_audio, write_audio
    from processors.core.cli import check_output_file
    from processors.core.errors import UserError
    from processors.reassigned import load_reassigned, save_reassigned
    from processors.reassigned_inverse import INVERSIONS, analyse, invert, rebuild_audio
    from training.configure import build_config, load_config

    src, dst = Path(args.input), Path(args.output)
    check_output_file(dst, "--output", args.force, (".wav", ".flac", ".ogg"), {"the input file": src})
    if args.spectrogram:
        check_output_file(Path(args.spectrogram), "--spectrogram", args.force, (".npz",),
                          {"the input file": src, "the --output file": dst})
    if args.set and not args.config:        # nothing to apply them to: they would be ignored
        raise UserError("--set needs --config (the settings it overrides), e.g. --config configs/reassigned_ljspeech.yaml")
    cfg = load_config(args.config, args.set) if args.config else build_config({"reassigned": {}}, "defaults")
    rc = cfg.reassigned
    if args.method is not None:
        INVERSIONS.lookup(args.method, "--method")
        rc = dataclasses.replace(rc, method=args.method)
    if args.iters is not None:
        if args.iters < 0:
            raise UserError(f"--iters must be >= 0, got {args.iters}")
        rc = dataclasses.replace(rc, n_iter=args.iters)
    if args.checkpoint:
        rc = dataclasses.replace(rc, checkpoint=args.checkpoint)
    if src.suffix.lower() == ".npz":
        r, offset, length = load_reassigned(src, rc)
        wave = invert(r, rc)
        wave = np.pad(wave, (0, max(0, offset + length - len(wave))))[offset:offset + length]
        write_audio(dst, np.clip(wave, -1, 1).astype(np.float32), rc.sample_rate)
        print(f"wrote {dst}: {length / rc.sample_rate:.2f} s at {rc.sample_rate} Hz ({rc.method})")
        return 0
    if src.exists() and src.suffix.lower() not in AUDIO_EXTENSIONS:
        raise UserError(f"--input {src}: expected an audio file ({', '.join(AUDIO_EXTENSIONS)}) or an .npz spectrogram")
    samples, sr = read_audio(src)
    if not np.isfinite(samples).all():
        raise UserError(f"{src}: {int((~np.isfinite(samples)).sum())} non-finite samples (NaN/Inf); repair the file first")
    out = rebuild_audio(samples, sr, rc)
    if args.spectrogram:
        from processors.audio_io import resample
        wave = resample(samples.mean(axis=1), sr, rc.sample_rate)
        r, (before, _) = analyse(wave, rc)
        save_reassigned(args.spectrogram, r, rc, before, len(wave))
    write_audio(dst, np.clip(out, -1, 1).astype(np.float32), sr)
    print(f"wrote {dst}: {samples.shape[0] / sr:.2f} s at {sr} Hz, {samples.shape[1]} channel(s) ({rc.method})")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--input", required=True, help="audio file, or .npz reassigned spectrogram")
    p.add_argument("--output", required=True, help="wav, flac or ogg to write")
    p.add_argument("--method", help=METHOD_HELP)
    p.add_argument("--iters", type=int, help="iterations after PGHI (default reassigned.n_iter, 60)")
    p.add_argument("--checkpoint", default="", help="the learned inverse's net (scripts/train_reassigned.py)")
    p.add_argument("--spectrogram", default="", help="also write the (downmixed) input's reassigned spectrogram here (.npz)")
    p.add_argument("--force", action="store_true", help="replace --output (and --spectrogram) if they exist")
    p.add_argument("--config", default="", help="a config whose 'reassigned' section to use (default: published settings)")
    p.add_argument("--set", action="append", default=[], help="config override a.b=value (with --config)")
    run(main, p)
