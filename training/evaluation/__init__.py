"""Layer 6, evaluation: benchmarks, baselines, scoring, reports and the demo, on top of training/."""
