"""Synthetic digits: deterministic per seed, well-formed, every class drawn and distinct."""

import itertools

import numpy as np
import pytest

from tapegrad.data import GLYPHS, synthetic_digits, synthetic_digits_split
from tapegrad.data.synthetic import GLYPH_SIZE


def test_shapes_dtypes_and_range():
    x, y = synthetic_digits(50, seed=1)
    assert x.shape == (50, 1, 20, 20) and x.dtype == np.float32
    assert y.shape == (50,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert set(np.unique(x)) <= {0.0, 1.0}  # no noise: binary images
    assert y.min() >= 0 and y.max() <= 9


def test_same_seed_same_data_different_seed_differs():
    a = synthetic_digits(64, seed=7, noise=0.1)
    b = synthetic_digits(64, seed=7, noise=0.1)
    c = synthetic_digits(64, seed=8, noise=0.1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])


def test_each_image_is_its_glyph_fully_inside_the_canvas():
    x, y = synthetic_digits(200, seed=3, image_size=13)
    for image, label in zip(x[:, 0], y):
        ink = np.argwhere(image > 0)
        top, left = ink.min(axis=0)
        # the glyph's own bounding box starts at its first ink row/column
        g = GLYPHS[label]
        g_top, g_left = np.argwhere(g > 0).min(axis=0)
        top, left = top - g_top, left - g_left
        assert 0 <= top <= 13 - GLYPH_SIZE and 0 <= left <= 13 - GLYPH_SIZE
        expected = np.zeros_like(image)
        expected[top:top + GLYPH_SIZE, left:left + GLYPH_SIZE] = g
        np.testing.assert_array_equal(image, expected)


def test_positions_cover_the_whole_range():
    x, _ = synthetic_digits(2000, seed=0, image_size=10)
    # a glyph's ink touches every border of its 6x6 box for some digit, so across many samples
    # ink must reach row/column 0 and row/column 9 (both extreme offsets occur)
    ink = x[:, 0].sum(axis=0) > 0
    assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()


def test_every_digit_appears_roughly_balanced():
    _, y = synthetic_digits(5000, seed=11)
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.min() > 400 and counts.max() < 600


def test_glyphs_are_distinct_and_binary():
    assert GLYPHS.shape == (10, GLYPH_SIZE, GLYPH_SIZE)
    assert set(np.unique(GLYPHS)) == {0.0, 1.0}
    for a, b in itertools.combinations(range(10), 2):
        differing = int((GLYPHS[a] != GLYPHS[b]).sum())
        assert differing >= 2, f"glyphs {a} and {b} differ in only {differing} pixel(s)"
    assert not GLYPHS.flags.writeable


def test_noise_keeps_layout_and_stays_in_range():
    clean_x, clean_y = synthetic_digits(100, seed=5)
    noisy_x, noisy_y = synthetic_digits(100, seed=5, noise=0.3)
    np.testing.assert_array_equal(clean_y, noisy_y)
    assert noisy_x.dtype == np.float32 and noisy_x.min() >= 0.0 and noisy_x.max() <= 1.0
    assert not np.array_equal(clean_x, noisy_x)
    # noise is centred: the clean ink is still where the signal is strongest
    assert noisy_x[clean_x == 1].mean() > noisy_x[clean_x == 0].mean() + 0.5


def test_split_uses_distinct_seeds_and_is_deterministic():
    (tx, ty), (vx, vy) = synthetic_digits_split(300, 100, seed=0)
    assert tx.shape == (300, 1, 20, 20) and vx.shape == (100, 1, 20, 20)
    (tx2, ty2), (vx2, vy2) = synthetic_digits_split(300, 100, seed=0)
    np.testing.assert_array_equal(tx, tx2)
    np.testing.assert_array_equal(vy, vy2)
    # the test set is not the start of the training stream, nor the plain seed's stream
    assert not np.array_equal(tx[:100], vx)
    assert not np.array_equal(synthetic_digits(100, seed=0)[0], vx)
    # and the training set does not depend on the size of the test set
    (tx3, _), _ = synthetic_digits_split(300, 5, seed=0)
    np.testing.assert_array_equal(tx, tx3)


def test_zero_samples():
    x, y = synthetic_digits(0, seed=0)
    assert x.shape == (0, 1, 20, 20) and y.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": -1}, "n must be a non-negative integer"),
        ({"n": 2.5}, "n must be a non-negative integer"),
        ({"n": 4, "image_size": 5}, "image_size must be >= the glyph size 6"),
        ({"n": 4, "noise": -0.1}, "noise must be >= 0"),
        ({"n": 4, "noise": float("nan")}, "noise must be >= 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_digits(seed=0, **kwargs)
