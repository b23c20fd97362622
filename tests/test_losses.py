"""Inpainting losses count only the gap (and its seams); linear interpolation baseline."""
from __future__ import annotations

import pytest
import torch

from models.classical import linear_interpolation
from training.losses import INPAINT_LOSSES, boundary_smoothness, masked_mse, total_loss

N_MELS, T = 8, 30


def example(gaps=((8, 14), (20, 23))):
    torch.manual_seed(0)
    target = torch.rand(2, 1, N_MELS, T)
    mask = torch.zeros_like(target)
    for s, e in gaps:
        mask[..., s:e] = 1.0
    return target, mask


@pytest.mark.parametrize("name", sorted(INPAINT_LOSSES))
def test_zero_when_prediction_is_the_target(name):
    target, mask = example()
    assert INPAINT_LOSSES[name](target.clone(), target, mask).item() == 0.0


@pytest.mark.parametrize("name", sorted(INPAINT_LOSSES))
def test_context_is_ignored(name):
    target, mask = example()
    pred = target + 5.0 * (1 - mask) * torch.randn_like(target)     # wrong only where known
    assert INPAINT_LOSSES[name](pred, target, mask).item() == 0.0


@pytest.mark.parametrize("name", sorted(INPAINT_LOSSES))
def test_positive_when_the_gap_differs(name):
    target, mask = example()
    pred = target + 0.5 * mask
    value = INPAINT_LOSSES[name](pred, target, mask)
    assert value.item() > 0 and value.shape == ()


@pytest.mark.parametrize("name", sorted(INPAINT_LOSSES))
def test_no_gap_gives_zero_not_nan(name):
    target, _ = example()
    value = INPAINT_LOSSES[name](target + 1.0, target, torch.zeros_like(target))
    assert torch.isfinite(value) and value.item() == 0.0


@pytest.mark.parametrize("name", sorted(INPAINT_LOSSES))
def test_gradient_reaches_the_gap_only(name):
    target, mask = example()
    pred = (target + 0.3 * mask).requires_grad_(True)
    INPAINT_LOSSES[name](pred, target, mask).backward()
    assert (pred.grad[mask == 0] == 0).all()
    assert pred.grad[mask == 1].abs().sum() > 0


def test_mse_value():
    target, mask = example()
    assert masked_mse(target + 0.5 * mask, target, mask).item() == pytest.approx(0.25)


def test_boundary_responds_to_a_jump_at_the_seam():
    # a smooth ramp over time: the "right" fill continues it; a fill with a step does not
    ramp = torch.linspace(0, 1, T).expand(1, 1, N_MELS, T).clone()
    _, mask = example(gaps=((10, 20),))
    mask = mask[:1]
    assert boundary_smoothness(ramp.clone(), ramp, mask).item() == 0.0
    small = boundary_smoothness(ramp + 0.1 * mask, ramp, mask).item()
    large = boundary_smoothness(ramp + 0.4 * mask, ramp, mask).item()
    assert 0 < small < large
    assert large == pytest.approx(0.16, rel=1e-5)        # a step of 0.4 at every seam
    # a change inside the gap that leaves the seams alone does not count for the boundary term
    inner = ramp.clone()
    inner[..., 13:17] += 0.5
    assert boundary_smoothness(inner, ramp, mask).item() == 0.0
    assert masked_mse(inner, ramp, mask).item() > 0


def test_total_loss_is_the_weighted_sum():
    target, mask = example()
    pred = target + 0.2 * mask
    weights = {"mse": 1.0, "boundary": 0.5, "l1": 0.0}
    total, terms = total_loss(pred, target, mask, weights)
    assert set(terms) == {"mse", "boundary"}                       # zero weights are not computed
    expected = INPAINT_LOSSES["mse"](pred, target, mask) + 0.5 * INPAINT_LOSSES["boundary"](pred, target, mask)
    assert total.item() == pytest.approx(expected.item())


# --------------------------------------------------------------------------- linear interpolation

def test_interpolation_is_exact_on_a_linear_ramp():
    t = torch.arange(T, dtype=torch.float32)
    slopes = torch.linspace(-0.05, 0.05, N_MELS)[:, None]
    target = (0.5 + slopes * t).expand(2, 1, N_MELS, T).clone()
    _, mask = example()
    mask[1, ..., 2:5] = 1.0
    out = linear_interpolation(target * (1 - mask), mask)
    assert torch.allclose(out, target, atol=1e-6)


def test_interpolation_leaves_context_unchanged():
    target, mask = example()
    masked = target * (1 - mask)
    out = linear_interpolation(masked, mask)
    assert out.shape == masked.shape
    assert torch.equal(out[mask == 0], masked[mask == 0])
    assert torch.equal(masked, target * (1 - mask)), "input not modified in place"


def test_interpolation_at_the_edges_repeats_the_nearest_frame():
    target, _ = example()
    mask = torch.zeros_like(target)
    mask[..., :3] = 1.0
    mask[..., -4:] = 1.0
    out = linear_interpolation(target * (1 - mask), mask)
    assert torch.equal(out[..., :3], target[..., 3:4].expand_as(out[..., :3]))
    assert torch.equal(out[..., -4:], target[..., -5:-4].expand_as(out[..., -4:]))


def test_interpolation_with_nothing_known_returns_input():
    target, _ = example()
    mask = torch.ones_like(target)
    assert torch.equal(linear_interpolation(target, mask), target)


def test_compressed_loss_weights_loud_bins_over_quiet_ones():
    from processors.core.config import Config
    from training.losses import LOSS_BUILDERS
    fn = LOSS_BUILDERS["compressed"](Config(), "cpu")
    target, mask = example()
    assert fn(target.clone(), target, mask).item() == 0.0
    assert fn(target + 5.0 * (1 - mask), target, mask).item() == 0.0          # only the gap counts
    # the same 0.05 error (6 dB) costs far more at -4 dB (0.8) than near the floor (0.1, -88 dB)
    loud, quiet = torch.full_like(target, 0.8), torch.full_like(target, 0.1)
    assert fn(loud + 0.05, loud, mask) > 100 * fn(quiet + 0.05, quiet, mask)
    # and errors below the -100 dB floor cannot be rewarded: both sides are clamped there
    assert fn(torch.full_like(target, -0.5), torch.zeros_like(target), mask).item() == 0.0
