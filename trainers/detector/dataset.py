"""Torch dataset over cached crops, and a seeded batch sampler that keeps twins together.

The batch sampler shards its batches with ``DistributedSampler`` (one shard per rank, equal
batch counts) and adds two things the training loop needs: a re-synthesised fake and its real
twin go into the same batch, and a resumed run can skip the batches it already did in the
interrupted epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from forensics.media import load_image
from forensics.preprocess import Preprocess

from .augment import Augmenter
from .crops import CachedCrop
from .selfblend import self_blend


class CropDataset(Dataset):
    """Cached crops as model inputs, augmented deterministically per (seed, epoch, index).

    Items are ``(rgb, label)``: an ``input_size`` square RGB ``uint8`` array made by the
    model's own :meth:`forensics.preprocess.Preprocess.fit_crop` (resized, or a native-resolution
    window at a random place when augmenting). With ``selfblend`` > 0, that share of the real
    crops with landmarks becomes self-blended fakes (label 1) before augmentation, drawn anew
    for every epoch; ``selfblend_crude`` of those imitate a classical face swap.
    """

    def __init__(
        self,
        items: Sequence[CachedCrop],
        preprocess: Preprocess,
        augmenter: Augmenter | None = None,
        seed: int = 0,
        selfblend: float = 0.0,
        selfblend_crude: float = 0.0,
    ) -> None:
        self.items = list(items)
        self.preprocess = preprocess
        self.augmenter = augmenter
        self.seed = int(seed)
        self.selfblend = float(selfblend)
        self.selfblend_crude = float(selfblend_crude)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        item = self.items[i]
        rgb, label = load_image(item.crop_path), item.sample.label
        rng = None
        if self.augmenter is not None or self.selfblend:
            rng = np.random.default_rng([self.seed, self.epoch, i])
        if rng is not None and self.selfblend and label == 0 and item.landmarks:
            if rng.random() < self.selfblend:
                rgb, label = self_blend(rgb, item.landmarks, rng, self.selfblend_crude), 1
        if self.augmenter is not None:
            rgb = self.augmenter(rgb, rng)
        return self.preprocess.fit_crop(rgb, rng), label


def make_collate(preprocess: Preprocess):
    """A collate function normalising with the model's own :class:`Preprocess`."""

    def collate(batch: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        crops, labels = zip(*batch, strict=True)
        return preprocess.to_tensor(list(crops)), torch.tensor(labels, dtype=torch.float32)

    return collate


class TwinBatchSampler(Sampler[list[int]]):
    """Seeded shuffled batches with twin pairs kept together, sharded over ranks.

    Batches are packed from "units" (a re-synthesised fake with one real photo of its twin,
    or a single photo) in an order that depends only on ``(seed, epoch)``. The list of batches
    is then sharded with :class:`torch.utils.data.DistributedSampler` (padded so every rank
    gets the same number of batches, as DDP requires). ``skip`` drops the first batches of
    the epoch, so a resumed run continues exactly where it stopped.

    Args:
        items: The training crops (twins are matched by ``sample.twin`` == real ``group``).
        batch_size: Images per batch (per rank).
        seed: Shuffle seed.
        num_replicas: Number of processes (world size).
        rank: This process's rank.
        pair_twins: Keep each re-synthesised fake next to one real photo of its twin group.

    """

    def __init__(
        self,
        items: Sequence[CachedCrop],
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        pair_twins: bool = True,
    ) -> None:
        if not items:
            raise ValueError("no training crops")
        self.batch_size = int(batch_size)
        self.seed, self.num_replicas, self.rank = int(seed), int(num_replicas), int(rank)
        self.epoch, self.skip = 0, 0
        self.units = _pair_units(items) if pair_twins else [[i] for i in range(len(items))]
        self.pairs = sum(len(u) == 2 for u in self.units)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's order; ``skip`` drops its first batches (when resuming)."""
        self.epoch, self.skip = int(epoch), int(skip)

    def __len__(self) -> int:
        return max(0, len(self.epoch_batches()) - self.skip)

    def all_batches(self) -> list[list[int]]:
        """Every batch of the epoch, all ranks together (the last short batch is dropped)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        batches: list[list[int]] = []
        current: list[int] = []
        for u in rng.permutation(len(self.units)):
            unit = self.units[u]
            if current and len(current) + len(unit) > self.batch_size:
                batches.append(current)
                current = []
            current.extend(unit)
        if current and (not batches or len(current) >= self.batch_size):
            batches.append(current)
        return batches

    def epoch_batches(self) -> list[list[int]]:
        """Batches of this rank for the current epoch (before ``skip``)."""
        batches = self.all_batches()
        if self.num_replicas == 1:
            return batches
        shard = DistributedSampler(
            batches, num_replicas=self.num_replicas, rank=self.rank, shuffle=False
        )
        return [batches[i] for i in shard]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.skip :]


def _pair_units(items: Sequence[CachedCrop]) -> list[list[int]]:
    """Group indices into units: ``[fake, real twin]`` pairs and single images."""
    reals_by_group: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        if it.sample.label == 0:
            reals_by_group.setdefault(it.sample.group, []).append(i)
    used: set[int] = set()
    units: list[list[int]] = []
    for i, it in enumerate(items):
        twin = it.sample.twin
        if it.sample.label == 1 and twin and reals_by_group.get(twin):
            candidates = [j for j in reals_by_group[twin] if j not in used] or reals_by_group[twin]
            j = candidates[0]
            used.add(j)
            units.append([i, j])
        elif it.sample.label == 1:
            units.append([i])
    units.extend([i] for i, it in enumerate(items) if it.sample.label == 0 and i not in used)
    return units
