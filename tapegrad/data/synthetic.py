"""Synthetic digits: hand-drawn 6x6 glyphs placed at random positions on a blank canvas.

They let the default training job and the tests run with no download at all, yet still pose a
real (translation-invariant) classification problem that a small conv net learns in seconds.
Everything is drawn from ``numpy.random.default_rng`` so one seed gives one data set, anywhere.
"""

from __future__ import annotations

from typing import Union

import numpy as np

Seed = Union[int, np.random.SeedSequence]

GLYPH_SIZE = 6

_GLYPH_ROWS = {
    0: (".####.", "#....#", "#....#", "#....#", "#....#", ".####."),
    1: ("..##..", ".###..", "..##..", "..##..", "..##..", ".####."),
    2: (".####.", "#....#", "....#.", "..##..", ".#....", "######"),
    3: ("#####.", ".....#", "..###.", ".....#", ".....#", "#####."),
    4: ("#...#.", "#...#.", "#...#.", "######", "....#.", "....#."),
    5: ("######", "#.....", "#####.", ".....#", "#....#", ".####."),
    6: (".####.", "#.....", "#####.", "#....#", "#....#", ".####."),
    7: ("######", ".....#", "....#.", "...#..", "..#...", "..#..."),
    8: (".####.", "#....#", ".####.", "#....#", "#....#", ".####."),
    9: (".####.", "#....#", "#....#", ".#####", ".....#", ".####."),
}

#: (10, 6, 6) float32 array of 0/1 pixels; GLYPHS[d] draws digit d.
GLYPHS: np.ndarray = np.array(
    [[[ch == "#" for ch in row] for row in _GLYPH_ROWS[d]] for d in range(10)], dtype=np.float32
)
GLYPHS.setflags(write=False)


def synthetic_digits(
    n: int, seed: Seed, image_size: int = 20, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` digit images (n, 1, S, S) float32 in [0, 1] and their labels (n,) int64.

    Each glyph lies wholly inside the image at a uniformly random offset; labels are uniform
    random over 0-9. ``noise`` is the std of added gaussian noise (clipped back to [0, 1]); it is
    drawn after labels and positions, so changing ``noise`` keeps the same digits in place.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"synthetic_digits: n must be a non-negative integer, got {n!r}")
    if image_size < GLYPH_SIZE:
        raise ValueError(
            f"synthetic_digits: image_size must be >= the glyph size {GLYPH_SIZE}, got {image_size}"
        )
    if not noise >= 0.0:  # also rejects NaN
        raise ValueError(f"synthetic_digits: noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n, dtype=np.int64)
    top, left = rng.integers(0, image_size - GLYPH_SIZE + 1, size=(2, n))
    images = np.zeros((n, 1, image_size, image_size), dtype=np.float32)
    offs = np.arange(GLYPH_SIZE)
    rows = top[:, None, None] + offs[None, :, None]
    cols = left[:, None, None] + offs[None, None, :]
    images[np.arange(n)[:, None, None], 0, rows, cols] = GLYPHS[labels]
    if noise > 0.0:
        images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
        np.clip(images, 0.0, 1.0, out=images)
    return images, labels


def synthetic_digits_split(
    n_train: int, n_test: int, seed: int, image_size: int = 20, noise: float = 0.0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((train_x, train_y), (test_x, test_y))`` drawn from two distinct derived seeds.

    The two seeds are ``SeedSequence(seed).spawn(2)``: independent streams, so the test set is
    never a prefix or a shifted copy of the training set, whatever ``n_train`` is.
    """
    train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
    return (
        synthetic_digits(n_train, train_seed, image_size, noise),
        synthetic_digits(n_test, test_seed, image_size, noise),
    )
