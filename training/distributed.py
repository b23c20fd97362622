"""Multi-process data-parallel training under ``torchrun``.

``torchrun --nproc_per_node N scripts/train.py --config ...`` sets RANK, LOCAL_RANK and
WORLD_SIZE; a plain ``python scripts/train.py`` sets none and runs as one process, for
which every function here is a no-op. The backend is NCCL on CUDA and gloo on the CPU.

``train.batch_size`` is the global batch. Training items are a pure function of
(seed, index), so rank r takes the r-th slice of every global batch
(:class:`StepSampler`): N processes see exactly the items one process would, and with
gradients averaged the run follows the single-process trajectory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from processors.core.errors import UserError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs, validates and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device: torch.device, batch_size: int) -> World:
    """Join the process group torchrun started (a no-op without torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if batch_size % size:
        raise UserError(f"train.batch_size: the global batch of {batch_size} does not split over {size} "
                        f"processes; use a multiple of {size}")
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world


def local_device(device: torch.device, world: World) -> torch.device:
    """One GPU per process: 'cuda' becomes 'cuda:LOCAL_RANK' (the CPU stays the CPU)."""
    if device.type != "cuda" or not world.distributed:
        return device
    device = torch.device("cuda", world.local_rank)
    torch.cuda.set_device(device)
    return device


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    """The element-wise mean of ``values`` (1-D float) over every process."""
    if not world.distributed:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world.size


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """Average gradients over the processes, for the parameter groups that DistributedDataParallel
    does not see: those trained on a loss of their own (a GAN's discriminator)."""
    if not world.distributed:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world.size


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


class StepSampler(Sampler):
    """Item indices of steps ``first_step .. max_steps - 1`` for one rank: of each global batch
    ``[s * B, (s + 1) * B)`` rank r takes ``[s * B + r * b, s * B + (r + 1) * b)``, b = B / size.

    With one process this is ``range(first_step * B, max_steps * B)``: resuming at step s
    starts at item s * B.
    """

    def __init__(self, first_step: int, max_steps: int, batch_size: int, world: World = World()):
        self.first, self.last, self.batch, self.world = first_step, max_steps, batch_size, world
        self.per_rank = batch_size // world.size

    def __iter__(self):
        for step in range(self.first, self.last):
            start = step * self.batch + self.world.rank * self.per_rank
            yield from range(start, start + self.per_rank)

    def __len__(self) -> int:
        return max(0, self.last - self.first) * self.per_rank
