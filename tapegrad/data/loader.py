"""DataLoader: batches of plain NumPy arrays, with a shuffle order that a checkpoint can resume.

The order of epoch ``e`` is a pure function of ``(seed, e)``, so the loader's whole random state
is two integers: saving them with a checkpoint makes a resumed run see exactly the batches an
uninterrupted run would have seen from its next epoch on.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

from .errors import DataError


class DataLoader:
    """Iterate ``(images float32, labels int64)`` batches over a dataset indexable by index arrays.

    ``dataset[idx]`` must return ``(images, labels)`` for an int64 index array (ArrayDataset
    does). Each ``iter()`` starts a new epoch: with ``shuffle`` every epoch gets a fresh
    permutation, reproducible from ``seed``; without a seed one is drawn once at construction
    (and is in ``state_dict()``), so even an unseeded run can be resumed.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: Optional[int] = None,
        drop_last: bool = False,
    ) -> None:
        is_int = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
        if not is_int or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        if len(dataset) == 0:
            raise DataError("DataLoader: dataset is empty (0 samples); nothing to iterate")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = int(seed)
        self.epoch = 0  # the epoch the next iter() will produce

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch`` in visiting order (identity when not shuffling)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(n).astype(np.int64)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Advance the counter now, not at the end: breaking out of an epoch early must still
        # give the next epoch a new order.
        order = self.epoch_order(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images, labels = self.dataset[idx]  # fancy indexing copies: batches never alias data
            yield np.asarray(images, dtype=np.float32), np.asarray(labels, dtype=np.int64)

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch"}``: enough to continue the same sequence of epoch orders."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()``; values may be Python or 0-d NumPy integers (from .npz)."""
        missing = {"seed", "epoch"} - set(state)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: missing key(s) {sorted(missing)}")
        epoch = int(state["epoch"])
        if epoch < 0:
            raise ValueError(f"DataLoader.load_state_dict: epoch must be >= 0, got {epoch}")
        self.seed, self.epoch = int(state["seed"]), epoch
