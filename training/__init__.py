"""Training: the one loop and its tasks (inpainters, vocoder nets, the reassigned corrector), losses,
distributed runs, the full config check; evaluation/ holds benchmarks, baselines and reports."""
