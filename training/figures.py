"""Spectrogram figures for TensorBoard, ``--figure`` and the demo."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from processors.core.atomic import atomic_path  # noqa: E402


def mel_figure(panels: list[tuple[str, np.ndarray]], hop_seconds: float | None = None,
               spans: list[tuple[float, float]] | None = None):
    """One row per panel: (title, normalised log-Mel (n_mels, T)). ``spans`` (in the
    x units: seconds if ``hop_seconds`` else frames) are outlined on every panel."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), squeeze=False, sharex=True)
    for ax, (title, mel) in zip(axes[:, 0], panels):
        n_mels, frames = mel.shape
        extent = [0, frames * hop_seconds if hop_seconds else frames, 0, n_mels]
        ax.imshow(mel, origin="lower", aspect="auto", vmin=0.0, vmax=1.0, cmap="magma", extent=extent)
        for a, b in spans or []:
            ax.axvline(a, color="cyan", lw=0.8, ls="--")
            ax.axvline(b, color="cyan", lw=0.8, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("Mel band")
    axes[-1, 0].set_xlabel("time (s)" if hop_seconds else "frame")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` atomically, in the format its suffix names, and close it
    (a failed save leaves ``path`` as it was, and no temporary file)."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix[1:].lower())
    finally:
        plt.close(fig)
