"""Speed of the similarity search: python scripts/benchmark_similarity.py --input song.ogg [--config configs/unet_music_sim.yaml]

Prints the time to analyse the whole recording once (Mel and search features), to search
one gap over it, and to fill one gap by the waveform copy (search, alignment, crossfades,
every channel), as medians over seeded gaps of each length. Wall clock, on the CPU.
"""
import _path

from processors.core.cli import parser, run

DEFAULT_CONFIG = "configs/unet_music_sim.yaml"


def main(args) -> int:
    import torch

    from training.configure import load_config
    from processors.core.cli import check_option
    from training.evaluation.similarity_benchmark import benchmark_similarity

    check_option("--threads", args.threads, 1)
    check_option("--gaps", args.gaps, 1)
    check_option("--gap-s", args.gap_s, 0, above=True)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config or _path.ROOT / DEFAULT_CONFIG)
    res = benchmark_similarity(args.input, cfg, args.gap_s, args.gaps)
    print(f"{args.input}: {res['seconds']:.1f} s, {res['channels']} channel(s), {res['rate']} Hz; "
          f"{res['threads']} thread(s); analysis of the whole recording {res['analysis_ms']:.0f} ms (once per file)")
    print("| gap (s) | search (ms) | waveform fill incl. search (ms) | match score |")
    print("|---:|---:|---:|---:|")
    for r in res["rows"]:
        print(f"| {r['gap_s']:g} | {r['search_ms']:.1f} | {r['fill_ms']:.1f} | {r['score']:.3f} |")
    return 0


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--input", required=True, help="a recording (wav, flac, ogg, mp3)")
    p.add_argument("--config", help=f"audio and search settings (default {DEFAULT_CONFIG})")
    p.add_argument("--gap-s", type=float, nargs="+", default=[0.5, 1.0, 3.0], help="gap lengths in seconds")
    p.add_argument("--gaps", type=int, default=5, help="gaps per length (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    run(main, p)
