"""Tests for training.loss: values hand-derived from the formulas on tiny tensors."""

import math

import pytest
import torch

from training.loss import (
    FeatureQueue,
    feature_reconstruction_loss,
    hinge_d_loss,
    hinge_g_loss,
    info_nce,
    kl_divergence,
    pixel_reconstruction_loss,
)

REAL = torch.tensor([0.5, 2.0, -1.0])  # relu(1 - r) = [0.5, 0, 2]      -> mean 2.5 / 3
SAMPLE = torch.tensor([-2.0, 0.0])  # relu(1 + f) = [0, 1]              -> mean 0.5;  mean(f) = -1
RECON = torch.tensor([1.0, -0.5, 3.0])  # relu(1 + f) = [2, 0.5, 4]    -> mean 6.5 / 3; mean(f) = 3.5 / 3


def close(value: torch.Tensor, expected: float) -> None:
    assert value.ndim == 0
    assert value.item() == pytest.approx(expected, rel=1e-6, abs=1e-7)


# ----------------------------------------------------------------------------------------------- hinge


def test_hinge_d_loss_hand_computed() -> None:
    close(hinge_d_loss(REAL, SAMPLE, RECON), 2.5 / 3 + 0.5 * 0.5 + 0.5 * 6.5 / 3)


def test_hinge_d_loss_zero_when_margins_met() -> None:
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([-1.0, -5.0])
    close(hinge_d_loss(real, fake, fake), 0.0)


def test_hinge_d_loss_none_gives_other_term_full_weight() -> None:
    close(hinge_d_loss(REAL, None, RECON), 2.5 / 3 + 6.5 / 3)
    close(hinge_d_loss(REAL, SAMPLE, None), 2.5 / 3 + 0.5)
    with pytest.raises(ValueError, match="at least one of the fake logits"):
        hinge_d_loss(REAL, None, None)


def test_hinge_g_loss_hand_computed() -> None:
    close(hinge_g_loss(SAMPLE, RECON), -(0.5 * -1.0 + 0.5 * 3.5 / 3))
    close(hinge_g_loss(None, RECON), -3.5 / 3)
    close(hinge_g_loss(SAMPLE, None), 1.0)
    with pytest.raises(ValueError, match="at least one of the fake logits"):
        hinge_g_loss(None, None)


def test_hinge_losses_sample_weight_moves_the_split_between_the_fake_terms() -> None:
    close(hinge_d_loss(REAL, SAMPLE, RECON, sample_weight=0.75), 2.5 / 3 + 0.75 * 0.5 + 0.25 * 6.5 / 3)
    close(hinge_g_loss(SAMPLE, RECON, sample_weight=0.75), -(0.75 * -1.0 + 0.25 * 3.5 / 3))
    # a lone fake term keeps its full weight whatever the split
    close(hinge_d_loss(REAL, SAMPLE, None, sample_weight=0.75), 2.5 / 3 + 0.5)
    close(hinge_g_loss(None, RECON, sample_weight=0.25), -3.5 / 3)


@pytest.mark.parametrize("weight", [0.0, 1.0, -0.5, 1.5])
def test_hinge_losses_refuse_a_split_outside_zero_one(weight: float) -> None:
    with pytest.raises(ValueError, match="sample_weight"):
        hinge_d_loss(REAL, SAMPLE, RECON, sample_weight=weight)
    with pytest.raises(ValueError, match="sample_weight"):
        hinge_g_loss(SAMPLE, RECON, sample_weight=weight)


def test_hinge_losses_nonzero_and_differentiable() -> None:
    fake = torch.tensor([0.0, 0.0], requires_grad=True)
    loss = hinge_d_loss(torch.tensor([0.0]), fake, None)
    close(loss, 2.0)  # relu(1 - 0) + relu(1 + 0)
    loss.backward()
    assert fake.grad is not None
    assert torch.allclose(fake.grad, torch.tensor([0.5, 0.5]))


# -------------------------------------------------------------------------------------------------- KL


def test_kl_zero_for_standard_normal() -> None:
    close(kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3)), 0.0)


def test_kl_known_case() -> None:
    mu = torch.tensor([[1.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # terms: 1 + 0 - 1 - 1 = -1 ; 1 + ln2 - 4 - 2 = ln2 - 5 ; -0.5 * (ln2 - 6)
    close(kl_divergence(mu, logvar), 3.0 - 0.5 * math.log(2.0))


def test_kl_is_summed_over_batch() -> None:
    mu = torch.tensor([[1.0], [2.0]])
    # terms -1 and -4: the sum gives 2.5 (a batch mean would give 1.25)
    close(kl_divergence(mu, torch.zeros(2, 1)), 2.5)
    with pytest.raises(ValueError, match="mu and logvar shapes differ"):
        kl_divergence(torch.zeros(2, 1), torch.zeros(2, 2))


# --------------------------------------------------------------------------------------------- InfoNCE


def test_info_nce_hand_computed() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    key = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    # row 0: pos 0.6, negs [0, -1]  -> logits [1.2, 0, -2]
    loss0 = -1.2 + math.log(math.exp(1.2) + math.exp(0.0) + math.exp(-2.0))
    # row 1: pos 1.0, negs [1, 0]   -> logits [2, 2, 0]
    loss1 = -2.0 + math.log(2 * math.exp(2.0) + 1.0)
    close(info_nce(query, key, queue, temperature=t), (loss0 + loss1) / 2)


def test_info_nce_default_temperature_and_gradients() -> None:
    query = torch.tensor([[1.0, 0.0]], requires_grad=True)
    key = torch.tensor([[1.0, 0.0]], requires_grad=True)
    queue = torch.tensor([[-1.0, 0.0]])
    loss = info_nce(query, key, queue)
    expected = -1 / 0.07 + math.log(math.exp(1 / 0.07) + math.exp(-1 / 0.07))
    close(loss, expected)
    loss.backward()
    assert query.grad is not None
    assert key.grad is None  # the key is detached


def test_info_nce_allows_enqueue_before_backward() -> None:
    fq = FeatureQueue(4, 2, seed=0)
    query = torch.nn.functional.normalize(torch.randn(3, 2), dim=1).requires_grad_()
    loss = info_nce(query, query.detach(), fq.features)
    fq.enqueue(torch.nn.functional.normalize(torch.randn(3, 2), dim=1))
    loss.backward()  # would fail with an in-place modification error if the queue were not copied
    assert query.grad is not None


def test_info_nce_rejects_empty_queue_and_bad_shapes() -> None:
    q = torch.tensor([[1.0, 0.0]])
    with pytest.raises(ValueError, match="non-empty"):
        info_nce(q, q, torch.zeros(0, 2))
    with pytest.raises(ValueError, match=r"query and key must both be \[N, D\]"):
        info_nce(q, torch.zeros(2, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"queue must be \[K, 2\]"):
        info_nce(q, q, torch.zeros(3, 5))


# ----------------------------------------------------------------------------------------------- queue


def keys(values: list[float]) -> torch.Tensor:
    """Distinct recognisable rows [v, -v]."""
    return torch.tensor([[v, -v] for v in values])


def test_queue_init_normalized_and_seeded() -> None:
    a, b = FeatureQueue(8, 3, seed=1), FeatureQueue(8, 3, seed=1)
    assert a.features.shape == (8, 3)
    assert torch.allclose(a.features.norm(dim=1), torch.ones(8))
    assert torch.equal(a.features, b.features)
    assert not torch.equal(a.features, FeatureQueue(8, 3, seed=2).features)
    g = torch.Generator()
    g.manual_seed(1)
    assert torch.equal(FeatureQueue(8, 3, generator=g).features, a.features)
    assert int(a.pointer) == 0


def test_queue_wraparound_and_pointer() -> None:
    fq = FeatureQueue(4, 2, seed=0)
    init = fq.features.clone()
    fq.enqueue(keys([1, 2, 3]))
    assert int(fq.pointer) == 3
    assert torch.equal(fq.features[:3], keys([1, 2, 3]))
    assert torch.equal(fq.features[3], init[3])
    fq.enqueue(keys([4, 5]))  # slot 3, then wraps to slot 0
    assert int(fq.pointer) == 1
    assert torch.equal(fq.features, keys([5, 2, 3, 4]))


def test_queue_oversized_batch_keeps_last_size() -> None:
    fq = FeatureQueue(4, 2, seed=0)
    fq.enqueue(keys([1]))  # pointer 1
    fq.enqueue(keys([10, 11, 12, 13, 14, 15]))  # last four 12..15 into slots 3, 0, 1, 2
    assert int(fq.pointer) == (1 + 6) % 4
    assert torch.equal(fq.features, keys([13, 14, 15, 12]))


def test_queue_matches_one_by_one_reference() -> None:
    fq = FeatureQueue(5, 2, seed=0)
    ref = [row.clone() for row in fq.features]
    ptr = 0
    value = 0.0
    for batch in (2, 4, 1, 7, 5, 3, 11):
        new = keys([value + i for i in range(batch)])
        value += batch
        for row in new:
            ref[ptr] = row
            ptr = (ptr + 1) % 5
        fq.enqueue(new)
        assert int(fq.pointer) == ptr
        assert torch.equal(fq.features, torch.stack(ref))


def test_queue_state_dict_round_trip() -> None:
    a = FeatureQueue(6, 2, seed=0)
    a.enqueue(keys([1, 2, 3, 4]))
    state = a.state_dict()
    assert set(state) == {"features", "pointer", "ids"}
    b = FeatureQueue(6, 2, seed=99)
    b.load_state_dict(state)
    assert torch.equal(a.features, b.features)
    assert int(b.pointer) == 4
    a.enqueue(keys([7, 8, 9]))
    b.enqueue(keys([7, 8, 9]))
    assert torch.equal(a.features, b.features)
    assert int(a.pointer) == int(b.pointer) == 1


def test_queue_keeps_the_ids_of_its_keys_and_loads_old_state_without_them() -> None:
    q = FeatureQueue(4, 2, seed=0)
    assert q.ids.tolist() == [-1, -1, -1, -1]
    q.enqueue(keys([1, 2, 3]), torch.tensor([10, 11, 12]))
    q.enqueue(keys([4, 5]), torch.tensor([13, 14]))  # wraps: slot 0 now holds image 14's key
    assert q.ids.tolist() == [14, 11, 12, 13]
    q.enqueue(keys([6]))  # keys without ids: unknown source
    assert q.ids.tolist() == [14, -1, 12, 13]
    before = q.features.clone()
    with pytest.raises(ValueError, match="ids"):
        q.enqueue(keys([7, 8]), torch.tensor([1]))
    assert torch.equal(q.features, before) and int(q.pointer) == 2  # a rejected call writes nothing
    q.enqueue(keys([9]), torch.tensor([21], dtype=torch.int32))  # any integer dtype
    assert q.ids.tolist() == [14, -1, 21, 13]
    old = {k: v for k, v in q.state_dict().items() if k != "ids"}  # a checkpoint from before ids existed
    fresh = FeatureQueue(4, 2, seed=1)
    fresh.load_state_dict(old)
    assert fresh.ids.tolist() == [-1, -1, -1, -1] and torch.equal(fresh.features, q.features)


def test_info_nce_masks_stale_keys_of_the_query_image() -> None:
    """A queued key of the query's own image is not a negative: the loss equals the loss without that key."""
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=1)
    k = torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=1)
    queue = torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=1)
    queue_ids = torch.tensor([7, 1, -1, 2, 9])
    query_ids = torch.tensor([1, 2, 3])
    masked = info_nce(q, k, queue, 0.5, query_ids=query_ids, queue_ids=queue_ids)
    per_query = []
    for i in range(3):
        keep = queue_ids != query_ids[i]
        per_query.append(info_nce(q[i : i + 1], k[i : i + 1], queue[keep], 0.5))
    assert torch.allclose(masked, torch.stack(per_query).mean(), atol=1e-6)
    assert not torch.allclose(masked, info_nce(q, k, queue, 0.5), atol=1e-4)  # the mask did change it


def test_queue_rejects_wrong_dim() -> None:
    with pytest.raises(ValueError, match=r"keys must be \[B, 2\]"):
        FeatureQueue(4, 2, seed=0).enqueue(torch.zeros(2, 3))


# ---------------------------------------------------------------------------------------- reconstruction


def test_pixel_reconstruction_loss() -> None:
    x = torch.tensor([[0.0, 1.0, 2.0]])
    x_rec = torch.tensor([[1.0, 1.0, 0.0]])
    close(pixel_reconstruction_loss(x, x_rec, "l1"), (1 + 0 + 2) / 3)
    close(pixel_reconstruction_loss(x, x_rec, "l2"), (1 + 0 + 4) / 3)
    with pytest.raises(ValueError, match="kind must be 'l1' or 'l2'"):
        pixel_reconstruction_loss(x, x_rec, "l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_reconstruction_loss(x, x_rec[:, :2], "l1")


def test_feature_reconstruction_loss_sums_layer_means() -> None:
    fx = [torch.tensor([0.0, 1.0, 2.0]), torch.tensor([[1.0]])]
    fr = [torch.tensor([1.0, 1.0, 0.0]), torch.tensor([[3.0]])]
    close(feature_reconstruction_loss(fx, fr, "l1"), 1.0 + 2.0)
    close(feature_reconstruction_loss(fx, fr, "l2"), 5 / 3 + 4.0)
    with pytest.raises(ValueError, match="equal length, got 2 and 1"):
        feature_reconstruction_loss(fx, fr[:1], "l1")
    with pytest.raises(ValueError, match="non-empty feature lists"):
        feature_reconstruction_loss([], [], "l1")
