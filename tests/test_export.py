"""scripts/export_checkpoint.py: a training checkpoint -> the weights-only file that ships."""
from __future__ import annotations

import pytest
import torch

from conftest import make_tiny_cfg, run_script, write_ljspeech
from models.build import load_inpainter
from processors.core.checkpoint_io import PRETRAINED_DIR, load_checkpoint
from training.trainer import Trainer


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    base = tmp_path_factory.mktemp("trained")
    cfg = make_tiny_cfg(write_ljspeech(base / "LJSpeech-1.1"), base, "train.max_steps=4", "train.val_every=2",
                        "train.ckpt_every=2")
    Trainer(cfg).fit()
    return base / "checkpoints" / "tiny" / "last.pt"


def _error(done) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_export_keeps_the_weights_and_takes_inference_settings(checkpoint, tmp_path):
    out = tmp_path / "model.pt"
    done = run_script("export_checkpoint.py", "--checkpoint", checkpoint, "--output", out,
                      "--set", "inference.lpc_fade_ms=20", "--set", "vocoder.n_iter=8")
    assert done.returncode == 0, done.stderr
    state = load_checkpoint(out)
    assert "optimizer" not in state and out.stat().st_size < checkpoint.stat().st_size
    trained, exported = load_checkpoint(checkpoint)["model"], state["model"]
    assert exported.keys() == trained.keys()
    for k, v in trained.items():                    # the same weights, floats in fp16
        assert torch.equal(exported[k], v.half() if v.is_floating_point() else v), k
    model, cfg = load_inpainter(out)
    assert cfg.inference.lpc_fade_ms == 20 and cfg.vocoder.n_iter == 8


@pytest.mark.parametrize("args, fragment", [
    (["--set", "model.params.depth=3"], "only inference.*"),           # another model than the weights'
    (["--set", "noequals"], "expected key=value"),
    (["--set", "inference.lpc_hold_ms=-1"], "lpc_hold_ms"),
])
def test_export_refuses_what_would_not_describe_its_weights(checkpoint, tmp_path, args, fragment):
    out = tmp_path / "model.pt"
    assert fragment in _error(run_script("export_checkpoint.py", "--checkpoint", checkpoint, "--output", out, *args))
    assert not out.exists()


def test_export_never_replaces_a_file_unasked(checkpoint, tmp_path):
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"a file of the user's")
    line = _error(run_script("export_checkpoint.py", "--checkpoint", checkpoint, "--output", mine))
    assert "exists" in line and "--force" in line and mine.read_bytes() == b"a file of the user's"
    line = _error(run_script("export_checkpoint.py", "--checkpoint", checkpoint, "--output", checkpoint, "--force"))
    assert "is the input checkpoint" in line
    done = run_script("export_checkpoint.py", "--checkpoint", checkpoint, "--output", mine, "--force")
    assert done.returncode == 0, done.stderr
    load_inpainter(mine)


def test_a_shipped_model_is_exported_by_name_with_other_inference_settings(tmp_path):
    # the model card's advice for another speaker: export the shipped model without the copy
    out = tmp_path / "speech_nocopy.pt"
    done = run_script("export_checkpoint.py", "--checkpoint", "speech", "--output", out,
                      "--set", "inference.corpus_copy_score=0")
    assert done.returncode == 0, done.stderr
    shipped, exported = load_checkpoint(PRETRAINED_DIR / "speech.pt"), load_checkpoint(out)
    assert all(torch.equal(exported["model"][k], v) for k, v in shipped["model"].items())
    assert load_inpainter(out)[1].inference.corpus_copy_score == 0
