"""DataLoader: coverage, batch shapes, reproducible shuffling, and resumable state."""

import numpy as np
import pytest

from tapegrad.data import ArrayDataset, DataLoader


def _dataset(n=10):
    # image i is filled with i / n, so a batch's images can be checked against its labels
    values = (np.arange(n, dtype=np.float32) / n)[:, None, None, None]
    images = np.broadcast_to(values, (n, 1, 2, 2))
    return ArrayDataset(images, np.arange(n))


def _epoch_labels(loader):
    return np.concatenate([labels for _, labels in loader])


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 10, 32])
def test_every_index_exactly_once_per_epoch(shuffle, batch_size):
    loader = DataLoader(_dataset(10), batch_size=batch_size, shuffle=shuffle, seed=0)
    for _ in range(3):
        seen = _epoch_labels(loader)
        assert sorted(seen.tolist()) == list(range(10))


def test_batches_are_numpy_float32_int64_and_match():
    loader = DataLoader(_dataset(10), batch_size=4, shuffle=True, seed=1)
    sizes = []
    for images, labels in loader:
        assert isinstance(images, np.ndarray) and images.dtype == np.float32
        assert isinstance(labels, np.ndarray) and labels.dtype == np.int64
        assert images.shape == (len(labels), 1, 2, 2)
        np.testing.assert_allclose(images[:, 0, 0, 0], labels / 10)  # image i goes with label i
        sizes.append(len(labels))
    assert sizes == [4, 4, 2] and len(loader) == 3


def test_no_shuffle_keeps_order():
    assert _epoch_labels(DataLoader(_dataset(7), batch_size=3)).tolist() == list(range(7))


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(y) for _, y in loader] == [4, 4]
    assert len(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == 0
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2


def test_shuffle_reproducible_by_seed_and_new_each_epoch():
    a = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=42)
    b = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=42)
    c = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=43)
    a_epochs = [_epoch_labels(a) for _ in range(3)]
    b_epochs = [_epoch_labels(b) for _ in range(3)]
    for x, y in zip(a_epochs, b_epochs):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a_epochs[0], a_epochs[1])
    assert not np.array_equal(a_epochs[0], np.arange(50))
    assert not np.array_equal(a_epochs[0], _epoch_labels(c))


def test_breaking_early_still_advances_the_epoch():
    loader = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=0)
    first = next(iter(loader))[1]
    np.testing.assert_array_equal(_epoch_labels(loader), loader.epoch_order(1))
    assert not np.array_equal(first, loader.epoch_order(1)[:8])


def test_state_round_trip_resumes_the_same_order():
    uninterrupted = DataLoader(_dataset(40), batch_size=6, shuffle=True, seed=9)
    reference = [_epoch_labels(uninterrupted) for _ in range(4)]

    first_run = DataLoader(_dataset(40), batch_size=6, shuffle=True, seed=9)
    for _ in range(2):
        _epoch_labels(first_run)
    state = first_run.state_dict()
    assert state == {"seed": 9, "epoch": 2}
    # a checkpoint stores it as numpy scalars; loading must accept those
    saved = {k: np.asarray(v) for k, v in state.items()}

    resumed = DataLoader(_dataset(40), batch_size=6, shuffle=True, seed=123)
    resumed.load_state_dict(saved)
    np.testing.assert_array_equal(_epoch_labels(resumed), reference[2])
    np.testing.assert_array_equal(_epoch_labels(resumed), reference[3])


def test_unseeded_loader_is_resumable_through_its_state():
    a = DataLoader(_dataset(30), batch_size=5, shuffle=True)
    b = DataLoader(_dataset(30), batch_size=5, shuffle=True)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(_epoch_labels(a), _epoch_labels(b))


def test_load_state_dict_errors():
    loader = DataLoader(_dataset(), batch_size=2)
    with pytest.raises(KeyError, match="epoch"):
        loader.load_state_dict({"seed": 1})
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        loader.load_state_dict({"seed": 1, "epoch": -1})


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, None])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        DataLoader(_dataset(), batch_size=batch_size)


def test_empty_dataset():
    empty = ArrayDataset(np.zeros((0, 1, 2, 2), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="dataset is empty"):
        DataLoader(empty)


def test_batches_do_not_alias_the_dataset():
    ds = _dataset(4)
    images, _ = next(iter(DataLoader(ds, batch_size=4)))
    images[:] = 7.0
    assert ds.images.max() < 1.0
