"""Random translation of the real images (TrainingOptions.translate): shifts, border fill, stateless draws."""

from __future__ import annotations

import pytest
import torch

from training.data.augment import augmentation_generator, random_translate
from training.options import OptionsError, TrainingOptions


def _dots(n: int, size: int = 12) -> torch.Tensor:
    """Black images with one white pixel at the centre."""
    images = torch.full((n, 1, size, size), -1.0)
    images[:, :, size // 2, size // 2] = 1.0
    return images


def _shifts(images: torch.Tensor) -> list[tuple[int, int]]:
    size = images.shape[-1]
    return [(int(i) // size - size // 2, int(i) % size - size // 2) for i in images.flatten(1).argmax(1)]


def test_each_image_moves_by_its_own_shift_within_the_limit_and_every_shift_occurs():
    moved = random_translate(_dots(2000), 2, augmentation_generator(123, 7))
    shifts = _shifts(moved)
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in shifts)
    assert set(shifts) == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}  # all 25, no bias to 0
    # nothing but the dot and the black background: whole-pixel shifts, no interpolation
    assert set(moved.unique().tolist()) == {-1.0, 1.0} and bool((moved == 1).flatten(1).sum(1).eq(1).all())


def test_the_border_is_repeated_into_the_space_a_shift_leaves():
    images = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(64, 1, 1, 1)
    moved = random_translate(images, 1, augmentation_generator(0, 0))
    for original, shifted in zip(images, moved, strict=True):
        padded = torch.nn.functional.pad(original[None], (1, 1, 1, 1), mode="replicate")[0]
        windows = [padded[:, y:y + 4, x:x + 4] for y in range(3) for x in range(3)]
        assert any(torch.equal(shifted, w) for w in windows)
    assert not torch.equal(moved, images)


def test_draws_depend_only_on_seed_iteration_and_rank():
    images = _dots(64)

    def shifts(*key: int) -> list[tuple[int, int]]:
        return _shifts(random_translate(images, 3, augmentation_generator(*key)))

    assert shifts(1, 5, 0) == shifts(1, 5, 0)  # a resumed run draws what the uninterrupted one drew
    assert len({tuple(shifts(*key)) for key in [(1, 5, 0), (1, 6, 0), (1, 5, 1), (2, 5, 0)]}) == 4


def test_no_shift_returns_the_images_and_a_negative_one_is_refused():
    images = _dots(4)
    assert random_translate(images, 0, augmentation_generator(0, 0)) is images
    with pytest.raises(ValueError, match="max_shift=-1"):
        random_translate(images, -1, augmentation_generator(0, 0))


@pytest.mark.parametrize("value", [-1, 16, 1.5, True])
def test_translate_option_is_a_whole_number_of_pixels_below_half_the_image(value):
    with pytest.raises(OptionsError, match=r"translate=.*whole number of pixels from 0 \(no augmentation\) to 15"):
        TrainingOptions(translate=value).validate()
