"""Pure latent maths (dcvae_tools.latent): interpolation, mixing, masks, attribute directions, edits,
and the index/sweep parsers. Expected values are computed independently with numpy in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dcvae_tools.errors import LatentError
from dcvae_tools.latent import (
    MAX_SWEEP_COUNT,
    apply_edits,
    attribute_direction,
    interpolate,
    lerp,
    mask_from_indices,
    mix,
    parse_index_ranges,
    parse_sweep,
    random_mask,
    slerp,
)
from dcvae_tools.latent_specs import index_ranges

FAST = settings(max_examples=25, deadline=None, database=None)

dims = st.integers(min_value=2, max_value=24)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def _vec(seed: int, dim: int, scale: float = 1.0, n: int | None = None) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    shape = (dim,) if n is None else (n, dim)
    return torch.from_numpy(rng.normal(size=shape) * scale).float()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ----------------------------------------------------------------------------- interpolation


@FAST
@given(
    seed=seeds,
    dim=dims,
    steps=st.integers(2, 9),
    method=st.sampled_from(["lerp", "slerp"]),
    scale_b=st.floats(0.1, 10.0),
)
def test_interpolate_endpoints_exact_and_count(seed: int, dim: int, steps: int, method: str, scale_b: float) -> None:
    a, b = _vec(seed, dim), _vec(seed + 1, dim, scale_b)
    path = interpolate(a, b, steps, method)
    assert path.shape == (steps, dim)
    assert torch.equal(path[0], a)
    assert torch.equal(path[-1], b)
    assert torch.isfinite(path).all()


def test_interpolate_batched_endpoints() -> None:
    a, b = _vec(0, 8, n=3), _vec(1, 8, n=3)
    for method in ("lerp", "slerp"):
        path = interpolate(a, b, 5, method)
        assert path.shape == (3, 5, 8)
        assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)


@FAST
@given(seed=seeds, dim=dims, steps=st.integers(3, 9))
def test_lerp_points_are_evenly_spaced(seed: int, dim: int, steps: int) -> None:
    a, b = _vec(seed, dim), _vec(seed + 7, dim, 3.0)
    path = interpolate(a, b, steps, "lerp").double().numpy()
    a64, b64 = a.double().numpy(), b.double().numpy()
    for i in range(steps):
        t = i / (steps - 1)
        np.testing.assert_allclose(path[i], a64 + t * (b64 - a64), atol=1e-5)


@FAST
@given(seed=seeds, dim=dims, steps=st.integers(3, 9), norm=st.floats(0.5, 20.0))
def test_slerp_keeps_equal_norms_and_follows_the_arc(seed: int, dim: int, steps: int, norm: float) -> None:
    a, b = _vec(seed, dim), _vec(seed + 3, dim)
    a, b = a / a.norm() * norm, b / b.norm() * norm
    a64, b64 = a.double().numpy(), b.double().numpy()
    cos = _cos(a64, b64)
    assume(-0.99 < cos < 0.99)
    omega = np.arccos(cos)
    path = interpolate(a, b, steps, "slerp").double().numpy()
    for i in range(steps):
        t = i / (steps - 1)
        assert np.linalg.norm(path[i]) == pytest.approx(norm, rel=1e-4)
        # the angle to a grows linearly along the great circle (a plain lerp would not do this)
        angle = np.arccos(np.clip(_cos(path[i], a64), -1, 1))
        assert angle == pytest.approx(t * omega, abs=2e-3)


@FAST
@given(seed=seeds, dim=dims, na=st.floats(0.5, 5.0), nb=st.floats(0.5, 5.0), t=st.floats(0.0, 1.0))
def test_slerp_interpolates_norms_linearly(seed: int, dim: int, na: float, nb: float, t: float) -> None:
    a, b = _vec(seed, dim), _vec(seed + 5, dim)
    a, b = a / a.norm() * na, b / b.norm() * nb
    assume(abs(_cos(a.double().numpy(), b.double().numpy())) < 0.99)
    out = slerp(a, b, t)
    assert out.norm().item() == pytest.approx(na + t * (nb - na), rel=1e-4)


@pytest.mark.parametrize("factor", [2.5, 1.0, 0.3])
def test_slerp_of_parallel_vectors_falls_back_to_lerp(factor: float) -> None:
    a = _vec(11, 16)
    b = a * factor
    for t in (0.0, 0.25, 0.5, 0.9):
        out = slerp(a, b, t)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, lerp(a, b, t), atol=1e-6)
        expected = a.double().numpy() * (1 - t + t * factor)
        np.testing.assert_allclose(out.double().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("factor", [-1.0, -0.3, -2.0])
@pytest.mark.parametrize(("seed", "dim"), [(11, 16), (12, 16), (10, 64), (3, 512), (4, 7)])
def test_slerp_of_opposite_vectors_turns_half_a_circle_instead_of_passing_through_zero(
    factor: float, seed: int, dim: int
) -> None:
    a = _vec(seed, dim)
    b = a * factor  # in float32 their cosine often rounds short of -1: still opposite
    a64 = a.double().numpy()
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        out = slerp(a, b, t).double().numpy()
        expected_norm = np.linalg.norm(a64) * (1 - t + t * abs(factor))
        assert np.linalg.norm(out) == pytest.approx(expected_norm, rel=1e-5)
        assert _cos(out, a64) == pytest.approx(np.cos(np.pi * t), abs=1e-5)  # the angle grows evenly to pi
    np.testing.assert_allclose(slerp(a, b, 1.0).double().numpy(), b.double().numpy(), atol=1e-5 * abs(factor))
    path = interpolate(a, b, 5, "slerp")
    assert path.norm(dim=-1).min() >= 0.99 * min(a.norm(), b.norm())  # the middle frames are latents, not zero
    other_a, other_b = _vec(seed + 1, dim), _vec(seed + 2, dim)
    batched = interpolate(torch.stack([a, other_a]), torch.stack([b, other_b]), 5, "slerp")
    assert torch.allclose(batched[0], path, atol=1e-5)  # one row's half turn leaves the other row's arc alone
    assert torch.allclose(batched[1], interpolate(other_a, other_b, 5, "slerp"), atol=1e-6)


@pytest.mark.parametrize("short_of_opposite", [1e-6, 1e-5, 1e-3, 1e-2, 0.3])
def test_slerp_keeps_the_norm_of_nearly_opposite_vectors(short_of_opposite: float) -> None:
    """Within float32's reach of opposite, whichever great circle slerp takes, the path keeps its norm."""
    a = _vec(5, 64).double()
    a = a / a.norm()
    across = _vec(6, 64).double()
    across = across - (across @ a) * a
    across = across / across.norm()
    angle = np.pi - short_of_opposite
    b = np.cos(angle) * a + np.sin(angle) * across
    path = interpolate(a.float(), b.float(), 9, "slerp")
    np.testing.assert_allclose(path.norm(dim=-1).numpy(), np.ones(9), atol=2e-4)  # float32 rounding near pi


def test_interpolating_integer_tensors_computes_in_float() -> None:
    path = interpolate(torch.tensor([0, 0]), torch.tensor([10, 10]), 5)
    assert path.dtype == torch.float32
    assert path[:, 0].tolist() == [0.0, 2.5, 5.0, 7.5, 10.0]


def test_slerp_with_a_zero_endpoint_is_finite_lerp() -> None:
    a, b = torch.zeros(8), _vec(3, 8)
    path = interpolate(a, b, 5, "slerp")
    assert torch.isfinite(path).all()
    assert torch.allclose(path[2], 0.5 * b, atol=1e-6)


def test_interpolate_rejects_bad_arguments() -> None:
    a, b = _vec(0, 8), _vec(1, 8)
    with pytest.raises(LatentError, match="steps"):
        interpolate(a, b, 1)
    with pytest.raises(LatentError, match="shapes"):
        interpolate(a, _vec(1, 9), 4)
    with pytest.raises(LatentError, match="method"):
        interpolate(a, b, 4, "cubic")
    with pytest.raises(LatentError, match="steps must be a whole number"):
        interpolate(a, b, 2.5)  # type: ignore[arg-type]
    with pytest.raises(LatentError, match=r"torch\.as_tensor them first"):
        interpolate(a.numpy(), b.numpy(), 3)  # type: ignore[arg-type]
    assert interpolate(a, b).shape == (8, 8)  # the same default as model.interpolate
    assert interpolate(a, b, np.int64(3)).shape == (3, 8)  # numpy integers are whole numbers


def test_lerp_and_slerp_take_a_column_of_ts_as_documented() -> None:
    a, b = _vec(0, 8), _vec(1, 8)
    t = torch.linspace(0, 1, 5)[:, None]
    for fn in (lerp, slerp):
        path = fn(a, b, t)
        assert path.shape == (5, 8)
        assert torch.allclose(path, interpolate(a, b, 5, fn.__name__), atol=1e-5)


# ----------------------------------------------------------------------------- mixing


@FAST
@given(seed=seeds, dim=dims)
def test_mix_all_false_gives_a_and_all_true_gives_b(seed: int, dim: int) -> None:
    a, b = _vec(seed, dim), _vec(seed + 1, dim)
    assert torch.equal(mix(a, b, torch.zeros(dim, dtype=torch.bool)), a)
    assert torch.equal(mix(a, b, torch.ones(dim, dtype=torch.bool)), b)


@FAST
@given(seed=seeds, dim=dims, bits=st.data())
def test_mix_takes_each_entry_from_a_or_b_per_mask(seed: int, dim: int, bits: st.DataObject) -> None:
    mask_list = bits.draw(st.lists(st.booleans(), min_size=dim, max_size=dim))
    a, b = _vec(seed, dim), _vec(seed + 1, dim)
    mask = torch.tensor(mask_list)
    out = mix(a, b, mask).numpy()
    np.testing.assert_array_equal(out, np.where(np.array(mask_list), b.numpy(), a.numpy()))


def test_mix_broadcasts_k_masks_and_checks_inputs() -> None:
    a, b = _vec(0, 6), _vec(1, 6)
    masks = torch.tensor([[True] * 3 + [False] * 3, [False] * 6])
    out = mix(a, b, masks)
    assert out.shape == (2, 6)
    assert torch.equal(out[0, :3], b[:3]) and torch.equal(out[0, 3:], a[3:])
    assert torch.equal(out[1], a)
    with pytest.raises(LatentError, match="boolean"):
        mix(a, b, torch.ones(6))
    with pytest.raises(LatentError, match="latent size"):
        mix(a, b, torch.ones(5, dtype=torch.bool))
    # a plain list of booleans is a mask, as model.mix takes it; a list of 0/1 is not
    assert torch.equal(mix(a, b, [True] * 3 + [False] * 3), out[0])
    with pytest.raises(LatentError, match="boolean"):
        mix(a, b, [1] * 6)


@pytest.mark.parametrize("index", [2.7, True, "3", None])
def test_mask_from_indices_refuses_what_is_not_a_whole_number(index: object) -> None:
    # 2.7 would index dimension 2 and True dimension 1 if passed through
    with pytest.raises(LatentError, match=f"latent dimension {index!r} is not a whole number"):
        mask_from_indices(8, [0, index])  # type: ignore[list-item]


def test_mask_from_indices_takes_numpy_and_torch_integers() -> None:
    mask = mask_from_indices(8, [np.int64(3), torch.tensor(5), 0])
    assert mask.nonzero().flatten().tolist() == [0, 3, 5]


@FAST
@given(dim=st.integers(1, 200), fraction=st.floats(0.0, 1.0), seed=seeds)
def test_random_mask_count_and_determinism(dim: int, fraction: float, seed: int) -> None:
    mask = random_mask(dim, fraction, seed)
    assert mask.dtype == torch.bool and mask.shape == (dim,)
    assert int(mask.sum()) == round(fraction * dim)
    assert torch.equal(mask, random_mask(dim, fraction, seed))


def test_random_mask_depends_on_seed_and_rejects_bad_fraction() -> None:
    assert not torch.equal(random_mask(64, 0.5, 0), random_mask(64, 0.5, 1))
    generator = torch.Generator().manual_seed(5)
    assert torch.equal(random_mask(64, 0.5, generator), random_mask(64, 0.5, 5))
    for bad in (-0.1, 1.5):
        with pytest.raises(LatentError, match="fraction"):
            random_mask(8, bad)
    for bad_dim in (0, -3, 64.0, True):
        with pytest.raises(LatentError, match="dim must be a whole number of at least 1"):
            random_mask(bad_dim, 0.5)  # type: ignore[arg-type]
    assert int(random_mask(np.int64(8), 0.5).sum()) == 4


# ----------------------------------------------------------------------------- attribute directions


@FAST
@given(seed=seeds, dim=dims, p=st.integers(1, 25), q=st.integers(1, 25))
def test_attribute_direction_is_difference_of_means(seed: int, dim: int, p: int, q: int) -> None:
    rng = np.random.default_rng(seed)
    pos = rng.normal(loc=0.5, size=(p, dim)).astype(np.float32)
    neg = rng.normal(loc=-0.2, size=(q, dim)).astype(np.float32)
    expected = pos.astype(np.float64).mean(0) - neg.astype(np.float64).mean(0)
    got = attribute_direction(torch.from_numpy(pos), torch.from_numpy(neg))
    assert got.shape == (dim,)
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-5, atol=1e-6)
    unit = attribute_direction(torch.from_numpy(pos), torch.from_numpy(neg), normalize=True)
    assert unit.double().norm().item() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(unit.double().numpy(), expected / np.linalg.norm(expected), atol=1e-5)


def test_attribute_direction_rejects_bad_input() -> None:
    with pytest.raises(LatentError):
        attribute_direction(_vec(0, 8, n=3), _vec(1, 9, n=3))
    with pytest.raises(LatentError):
        attribute_direction(_vec(0, 8), _vec(1, 8, n=3))
    with pytest.raises(LatentError, match="at least one"):
        attribute_direction(torch.zeros(0, 8), _vec(1, 8, n=3))
    with pytest.raises(LatentError, match=r"for images use model\.attribute_vector"):
        attribute_direction(["a.png"], ["b.png"])  # type: ignore[arg-type]
    with pytest.raises(LatentError, match=r"got ndarray and ndarray; torch\.from_numpy them first"):
        attribute_direction(np.zeros((2, 8)), np.ones((2, 8)))  # type: ignore[arg-type]
    same = _vec(2, 8, n=4)
    for normalize in (False, True):  # a zero direction would edit nothing, normalised or not
        with pytest.raises(LatentError, match="length 0"):
            attribute_direction(same, same.clone(), normalize=normalize)
        # the same images encoded in other batches differ by float rounding: still no direction
        rounded = same + 1e-6 * _vec(3, 8, n=4)
        with pytest.raises(LatentError, match="length 0"):
            attribute_direction(same, rounded, normalize=normalize)
    small = attribute_direction(same, same + 1e-2 * _vec(3, 8, n=1))  # a small real difference is a direction
    assert small.norm() > 0


@FAST
@given(seed=seeds, dim=dims, s1=st.floats(-3, 3), s2=st.floats(-3, 3))
def test_apply_edits_is_linear(seed: int, dim: int, s1: float, s2: float) -> None:
    z = _vec(seed, dim, n=4)
    d1, d2 = _vec(seed + 1, dim), _vec(seed + 2, dim)
    assert torch.equal(apply_edits(z, [(d1, 0.0)]), z)
    assert torch.equal(apply_edits(z, []), z)
    both = apply_edits(z, [(d1, s1), (d2, s2)])
    expected = z.double().numpy() + s1 * d1.double().numpy() + s2 * d2.double().numpy()
    np.testing.assert_allclose(both.double().numpy(), expected, atol=1e-5)
    # strengths along one direction add up
    assert torch.allclose(apply_edits(z, [(d1, s1), (d1, s2)]), apply_edits(z, [(d1, s1 + s2)]), atol=1e-5)
    # applying edits one after the other equals applying them together
    assert torch.allclose(apply_edits(apply_edits(z, [(d1, s1)]), [(d2, s2)]), both, atol=1e-6)


def test_apply_edits_does_not_modify_its_input_and_checks_size() -> None:
    z = _vec(0, 8, n=2)
    before = z.clone()
    apply_edits(z, [(_vec(1, 8), 2.0)])
    assert torch.equal(z, before)
    with pytest.raises(LatentError, match="dims"):
        apply_edits(z, [(_vec(1, 9), 1.0)])
    d = _vec(1, 8)
    assert torch.equal(apply_edits(z, {d: 2.0}), apply_edits(z, [(d, 2.0)]))  # a mapping, as model.edit takes
    from dcvae_tools.model import AttributeVector

    assert torch.equal(apply_edits(z, {AttributeVector("wide", d, 20, 20): 2.0}), apply_edits(z, [(d, 2.0)]))
    with pytest.raises(LatentError, match=r"for an attribute's name use model\.edit"):
        apply_edits(z, {"wide": 2.0})


@pytest.mark.parametrize("strength", [float("nan"), float("inf"), "2", True, None])
def test_apply_edits_refuses_a_strength_that_is_not_a_finite_number(strength: object) -> None:
    with pytest.raises(LatentError, match=r"finite numbers, got .* \(edit 2\)"):
        apply_edits(_vec(0, 8, n=2), [(_vec(1, 8), 1.0), (_vec(1, 8), strength)])  # type: ignore[list-item]


def test_apply_edits_refuses_a_non_finite_direction_and_edits_integer_latents_in_float() -> None:
    with pytest.raises(LatentError, match="the direction of edit 2 holds NaN or infinite"):
        apply_edits(_vec(0, 8, n=2), [(_vec(1, 8), 1.0), (torch.full((8,), float("nan")), 1.0)])
    edited = apply_edits(torch.zeros(1, 4, dtype=torch.long), [(torch.full((4,), 0.6), 1)])
    assert edited.dtype == torch.float32 and torch.allclose(edited, torch.full((1, 4), 0.6))
    assert torch.equal(apply_edits(z := _vec(0, 8, n=2), [(_vec(1, 8), np.float32(2.0))]),
                       apply_edits(z, [(_vec(1, 8), 2.0)]))  # numpy numbers are numbers
    assert torch.equal(apply_edits(z, [(_vec(1, 8), torch.tensor(2.0))]), apply_edits(z, [(_vec(1, 8), 2.0)]))


# ----------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0-3,7", [0, 1, 2, 3, 7]),
        (" 9-10 , 2 ,", [2, 9, 10]),
        ("5", [5]),
        ("1,1-2,2", [1, 2]),
        ("4-4", [4]),
    ],
)
def test_parse_index_ranges_good(spec: str, expected: list[int]) -> None:
    assert parse_index_ranges(spec) == expected


BAD_INDEX_SPECS = ["", " , ", "a", "3-1", "1-", "-1", "1-2-3", "0.5", "1;2", "3--5", "-5-3", "+3", "1_0"]


@pytest.mark.parametrize("spec", BAD_INDEX_SPECS)
def test_parse_index_ranges_bad(spec: str) -> None:
    with pytest.raises(LatentError):
        parse_index_ranges(spec)


@pytest.mark.parametrize("spec", ["0-999999999999", "64", "60-64", "3,0-1000000000000"])
def test_parse_index_ranges_refuses_out_of_range_before_expanding(spec: str) -> None:
    # a huge range must fail on its bounds, not by building a list of 10**12 indices
    with pytest.raises(LatentError, match=r"out of range: this model's latents have 64 \(0-63\)"):
        parse_index_ranges(spec, dim=64)


@pytest.mark.parametrize("spec", BAD_INDEX_SPECS)
def test_index_ranges_checks_syntax_without_expanding(spec: str) -> None:
    with pytest.raises(LatentError):
        index_ranges(spec)
    # the command line checks --dims before it knows the latent size: a huge range stays two numbers
    assert index_ranges("3, 0-999999999999") == [(3, 3, "3"), (0, 999999999999, "0-999999999999")]


def test_index_ranges_suggests_only_readable_fixes() -> None:
    with pytest.raises(LatentError, match="cannot read '3--5'"):  # not "write it as '-5-3'", itself unreadable
        index_ranges("3--5")
    with pytest.raises(LatentError, match="write it as '3-5'"):
        index_ranges("5 - 3")


def test_parse_index_ranges_within_dim() -> None:
    assert parse_index_ranges("0-2,63", dim=64) == [0, 1, 2, 63]


@FAST
@given(indices=st.sets(st.integers(0, 300), min_size=1, max_size=40))
def test_parse_index_ranges_round_trip(indices: set[int]) -> None:
    ordered = sorted(indices)
    # write runs of consecutive indices as ranges and the rest as single numbers, in reverse order
    parts, start = [], ordered[0]
    for prev, cur in zip(ordered, [*ordered[1:], None], strict=True):
        if cur is None or cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = cur
    spec = ",".join(reversed(parts))
    assert parse_index_ranges(spec) == ordered


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("-2:2:5", [-2.0, -1.0, 0.0, 1.0, 2.0]),
        ("0:1:3", [0.0, 0.5, 1.0]),
        ("1.5:1.5:2", [1.5, 1.5]),
        ("3:-3:4", [3.0, 1.0, -1.0, -3.0]),
        ("0.25:9:1", [0.25]),
    ],
)
def test_parse_sweep_good(spec: str, expected: list[float]) -> None:
    assert parse_sweep(spec) == pytest.approx(expected)


@pytest.mark.parametrize(("spec", "zero_at"), [("-0.1:0.2:4", 1), ("-0.3:0.3:3", 1), ("-0.7:0.7:3", 1)])
def test_parse_sweep_hits_zero_and_its_endpoints_exactly(spec: str, zero_at: int) -> None:
    """A strength of 0 reads "0" in a column heading, not "+1.39e-17"."""
    strengths = parse_sweep(spec)
    start, stop, _ = (float(part) for part in spec.split(":"))
    assert strengths[zero_at] == 0.0 and strengths[0] == start and strengths[-1] == stop


def test_parse_sweep_keeps_tiny_spans_apart() -> None:
    assert len(set(parse_sweep("0:1e-12:5"))) == 5 and parse_sweep("1.5:1.5:3") == [1.5, 1.5, 1.5]


@pytest.mark.parametrize("spec", ["", "1:2", "1:2:3:4", "a:b:3", "0:1:2.5", "0:1:"])
def test_parse_sweep_bad(spec: str) -> None:
    with pytest.raises(LatentError, match="START:STOP:COUNT"):
        parse_sweep(spec)


@pytest.mark.parametrize("spec", ["0:1:0", "0:1:-2"])
def test_parse_sweep_names_a_count_below_one(spec: str) -> None:
    with pytest.raises(LatentError, match=r"COUNT must be at least 1 .*e\.g\. 0:1:5"):
        parse_sweep(spec)


@pytest.mark.parametrize("spec", ["nan:1:3", "0:inf:3", "-inf:0:2"])
def test_parse_sweep_refuses_non_finite_strengths(spec: str) -> None:
    with pytest.raises(LatentError, match="finite"):
        parse_sweep(spec)


@pytest.mark.parametrize("spec", ["-1e308:1e308:3", "1e308:-1e308:2", "0:3.5e38:2"])
def test_parse_sweep_refuses_strengths_beyond_float32(spec: str) -> None:
    # finite in Python but not in a float32 latent; STOP - START would overflow to inf as well
    with pytest.raises(LatentError, match=r"within \+-3\.403e\+38 \(float32\)"):
        parse_sweep(spec)
    assert parse_sweep("-3e38:3e38:3") == [-3e38, 0.0, 3e38]


def test_parse_sweep_count_limit() -> None:
    assert len(parse_sweep(f"0:1:{MAX_SWEEP_COUNT}")) == MAX_SWEEP_COUNT
    with pytest.raises(LatentError, match=f"at most {MAX_SWEEP_COUNT}"):
        parse_sweep(f"0:1:{MAX_SWEEP_COUNT + 1}")
