"""The fine-tune's training order: RandomSampler's shuffle, continued at the right batch after a resume.

A fine-tune resumed from a mid-epoch checkpoint (`train.py --resume true`) must see the rest of the interrupted
epoch in the same order, and draw the same dropout masks, as a run that was never interrupted. Lightning
restores the weights, optimizer, scheduler and loop counters, but not the order of a plain shuffled DataLoader
(it restarts the epoch) nor torch's random state. `ResumableRandomSampler` shuffles exactly as RandomSampler
(each epoch's seed drawn from torch's global generator when the epoch starts, so an uninterrupted run is
unchanged) and remembers that seed; the data module saves it in the checkpoint with the batches trained and
the random states (`resume_state`), and gives it back to the sampler on resume.
"""
from __future__ import annotations

from typing import Any, Iterator, Sized

import numpy as np
import torch
from lightning_fabric.utilities.seed import _collect_rng_states, _set_rng_states
from torch.utils.data import RandomSampler


class ResumableRandomSampler(RandomSampler):
    """RandomSampler (no replacement) that can continue an epoch's order after `skip` batches of `batch_size`.

    `seed`: the current epoch's shuffle seed (None before the first epoch starts)."""

    def __init__(self, data_source: Sized, batch_size: int):
        super().__init__(data_source)
        self.batch_size = batch_size
        self.seed: int | None = None
        self._resume: tuple[int, int, dict[str, Any]] | None = None

    def resume(self, seed: int, skip: int, rng: dict[str, Any]) -> None:
        """The next epoch continues with `seed`'s order after `skip` batches, from the random states `rng`
        (set when the epoch's first batch is drawn: after the DataLoader drew its own base seed, as it did
        at the start of the interrupted epoch)."""
        self._resume = (int(seed), int(skip), rng)

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        skip = 0
        if self._resume is not None:
            self.seed, skip, rng = self._resume
            self._resume = None
            set_random_states(rng)
        else:  # as RandomSampler draws it
            self.seed = int(torch.empty((), dtype=torch.int64).random_().item())
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        yield from torch.randperm(n, generator=generator).tolist()[skip * self.batch_size:]


def resume_state(sampler: ResumableRandomSampler | None, completed: int, batches: int) -> dict[str, Any]:
    """What a checkpoint keeps of the training order: the epoch's seed, the batches trained in it (`completed`
    of `batches`) and the random states now; empty when the sampler has not started (or is not used: DDP)."""
    if sampler is None or sampler.seed is None:
        return {}
    return {"train_seed": sampler.seed, "completed": int(completed), "batches": int(batches), "rng": random_states()}


def random_states() -> dict[str, Any]:
    """torch's, numpy's and Python's random states, in types a weights-only checkpoint load accepts (numpy's
    key array as a list)."""
    states = _collect_rng_states()
    if "numpy" in states:
        name, keys, pos, has_gauss, cached = states["numpy"]
        states["numpy"] = (name, keys.tolist(), pos, has_gauss, cached)
    return states


def set_random_states(states: dict[str, Any]) -> None:
    """Restores what random_states() returned."""
    states = dict(states)
    if "numpy" in states:
        name, keys, pos, has_gauss, cached = states["numpy"]
        states["numpy"] = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
    _set_rng_states(states)


def apply_resume_state(sampler: ResumableRandomSampler, state: dict[str, Any]) -> None:
    """Continues the interrupted epoch (`resume`), or after a checkpoint at an epoch's end, restores the random
    states now, before the DataLoader starts the next epoch and draws its seeds from them."""
    if not state:
        return
    if state["completed"] < state["batches"]:
        sampler.resume(state["train_seed"], state["completed"], state["rng"])
    else:
        set_random_states(state["rng"])
