"""toy.pg_trainer against references: closed-form bandit gradients, the Gibbs optimum, an enumerated GRPO expectation,
aent.EntropyControl.loss on the same samples, and same seed == same metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from aent import EntropyConfig, EntropyControl
from toy.exact import bandit_gibbs, bandit_policy_gradient
from toy.pg_trainer import ToyTrainConfig, train_bandit

TIME_KEYS = ("time_generate_s", "time_train_s")
SHARED_KEYS = ("step", "reward_mean", "accuracy", "entropy", "clamped_entropy", "ent_coef", "clip_frac",
               "response_len", "time_generate_s", "time_train_s")


def _np_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def _np_entropy_grad(z, clamp_p=0.0):
    """Independent numpy gradient of the (clamped) entropy: -pi~ (log pi~ + H~) on the kept arms, 0 elsewhere."""
    z = np.asarray(z, dtype=np.float64)
    k = int(math.floor(clamp_p * len(z)))
    kept = np.ones(len(z), bool)
    kept[np.argsort(z, kind="stable")[:k]] = False
    p = np.zeros(len(z))
    p[kept] = _np_softmax(z[kept])
    logp = np.where(kept, np.log(np.where(kept, p, 1.0)), 0.0)
    h = -(p * logp).sum()
    return np.where(kept, -p * (logp + h), 0.0)


def _one_step(logits0, rewards, **cfg):
    z0 = torch.as_tensor(logits0, dtype=torch.float32)[None]
    r = torch.as_tensor(rewards, dtype=torch.float32)[None]
    tc = ToyTrainConfig(n_arms=z0.shape[1], m_optimal=1, steps=1, optimizer="sgd", **cfg)
    run = train_bandit(tc, rewards=r, logits0=z0)
    return (run.logits[0] - z0[0]).double().numpy() / tc.lr


# ------------------------------------------------------------------------------------------- exact gradient
def test_exact_step_is_the_closed_form_policy_gradient():
    gen = torch.Generator().manual_seed(1)
    z0, r = torch.randn(50, generator=gen), torch.rand(50, generator=gen)
    step = _one_step(z0, r, estimator="exact", lr=0.5)
    np.testing.assert_allclose(step, bandit_policy_gradient(z0.double(), r.double()).numpy(), atol=1e-6)


@given(seed=st.integers(0, 10_000), lam=st.floats(0.01, 2.0), p=st.sampled_from([0.0, 0.25, 0.5, 0.9]))
def test_exact_step_with_entropy_bonus_matches_numpy(seed, lam, p):
    """One exact step = lr * (dV/dz + lambda dH~/dz), both from independent formulas (numpy)."""
    rng = np.random.default_rng(seed)
    z0, r = rng.normal(size=12) * 2, rng.uniform(size=12)
    method = "entropy_bonus" if p == 0.0 else "clamped_bonus"
    step = _one_step(z0, r, estimator="exact", lr=1.0, entropy=EntropyConfig(method=method, ent_coef=lam, clamp_p=p))
    pi = _np_softmax(z0)
    want = pi * (r - (pi * r).sum()) + lam * _np_entropy_grad(z0, p)
    np.testing.assert_allclose(step, want, atol=2e-6, rtol=1e-4)


@pytest.mark.parametrize(("p", "tol"), [(0.0, 1e-5), (0.5, 1e-3)])
def test_exact_ascent_converges_to_the_gibbs_optimum(p, tol):
    """Gradient ascent on V + lambda H~_p reaches exp(r / lambda) on the kept arms (toy.exact.bandit_gibbs).

    With p > 0 the removed arms get no entropy gradient, so their leftover mass only decays through dV/dz; the
    comparison is on the kept arms, renormalised (tolerance 1e-3 for that O(leftover) effect).
    """
    r = torch.tensor([1.0, 0.8, 0.5, 0.3, 0.2, 0.0])
    lam, kept = 0.3, 6 - int(p * 6)
    method = "entropy_bonus" if p == 0.0 else "clamped_bonus"
    cfg = ToyTrainConfig(n_arms=6, steps=300, estimator="exact", lr=10.0,
                      entropy=EntropyConfig(method=method, ent_coef=lam, clamp_p=p))
    run = train_bandit(cfg, rewards=r[None], logits0=(2 * r)[None])  # kept set = largest rewards from the start
    got = torch.softmax(run.logits[0, :kept].double(), -1)
    want = bandit_gibbs(r.double(), lam, p)[:kept]
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=tol)


# -------------------------------------------------------------------------------------- sampled estimators
def _mean_step(estimator, z0, r, n_rows, group_size, seed=0):
    """Mean and standard error over n_rows independent one-step runs of (z1 - z0) / lr."""
    cfg = ToyTrainConfig(n_arms=len(z0), m_optimal=1, steps=1, estimator=estimator, group_size=group_size, lr=1.0,
                      seed=seed)
    run = train_bandit(cfg, rewards=r[None].repeat(n_rows, 1), logits0=z0[None].repeat(n_rows, 1))
    steps = (run.logits - z0[None]).double()
    return steps.mean(0).numpy(), steps.std(0).numpy() / math.sqrt(n_rows)


@pytest.mark.parametrize("estimator", ["reinforce", "rloo"])
def test_unbiased_estimators_average_to_the_exact_gradient(estimator):
    """Fixed seed, 20,000 runs: every coordinate within 5 standard errors (and 0.01 absolute) of dV/dz."""
    z0, r = torch.tensor([1.0, 0.0, -0.5, 0.3]), torch.tensor([1.0, 0.2, 0.0, 0.6])
    mean, se = _mean_step(estimator, z0, r, n_rows=20_000, group_size=4)
    exact = bandit_policy_gradient(z0.double(), r.double()).numpy()
    assert np.all(np.abs(mean - exact) <= 5 * se + 1e-9), (mean, exact, se)
    assert np.abs(mean - exact).max() < 0.01


def test_grpo_estimator_averages_to_its_enumerated_expectation():
    """GRPO is biased in scale; its exact expectation comes from enumerating all |A|^G groups (numpy)."""
    z0, r = np.array([1.0, 0.0, -0.5]), np.array([1.0, 0.2, 0.0])
    g = 3
    pi = _np_softmax(z0)
    expect = np.zeros(3)
    for group in itertools.product(range(3), repeat=g):
        prob = np.prod(pi[list(group)])
        rew = r[list(group)]
        adv = (rew - rew.mean()) / (rew.std(ddof=1) + 1e-6)
        for a, ad in zip(group, adv):
            expect += prob * ad / g * (np.eye(3)[a] - pi)
    mean, se = _mean_step("grpo", torch.tensor(z0, dtype=torch.float32), torch.tensor(r, dtype=torch.float32),
                          n_rows=20_000, group_size=g)
    assert np.all(np.abs(mean - expect) <= 5 * se + 1e-9), (mean, expect, se)
    # and it points uphill: positive inner product with the exact gradient
    assert float(mean @ bandit_policy_gradient(torch.tensor(z0), torch.tensor(r)).numpy()) > 0


@pytest.mark.parametrize("method", ["entropy_bonus", "clamped_bonus", "aent", "none"])
def test_fast_path_equals_entropy_control_loss(method):
    """One sampled step equals an SGD step on aent.EntropyControl.loss with the same samples (reference path)."""
    gen = torch.Generator().manual_seed(3)
    z0, r = 2 * torch.randn(40, generator=gen), torch.rand(40, generator=gen)
    ecfg = EntropyConfig(method=method, ent_coef=0.05, clamp_p=0.3, coef_min=0.0, coef_max=1.0)
    cfg = ToyTrainConfig(n_arms=40, steps=1, estimator="grpo", group_size=8, lr=1.0, seed=11, entropy=ecfg)
    got = train_bandit(cfg, rewards=r[None], logits0=z0[None]).logits[0]
    # replay the trainer's draw (same generator, same call), then the reference loss
    actions = torch.multinomial(torch.softmax(z0, -1)[None], 8, replacement=True,
                                generator=torch.Generator().manual_seed(11))
    rew = r[actions]
    adv = (rew - rew.mean()) / (rew.std() + 1e-6)
    z = z0.clone().requires_grad_(True)
    old = torch.log_softmax(z0, -1)[actions]
    out = EntropyControl(ecfg).loss(logits=z.expand(1, 8, -1), actions=actions, old_logp=old, adv=adv,
                                    mask=torch.ones(1, 8))
    out.loss.backward()
    torch.testing.assert_close(got, z0 - z.grad, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------ seeds, metrics, config
def _strip(metrics):
    return [{k: v for k, v in m.items() if k not in TIME_KEYS} for m in metrics]


@pytest.mark.parametrize("method", ["aent", "entropic"])
def test_same_seed_same_metrics(method):
    cfg = ToyTrainConfig(n_arms=300, m_optimal=3, steps=8, n_seeds=3, group_size=8, seed=5,
                      entropy=EntropyConfig.preset(method) if method != "aent" else EntropyConfig.aent_paper())
    a, b = train_bandit(cfg), train_bandit(cfg)
    assert _strip(a.metrics) == _strip(b.metrics)
    assert torch.equal(a.logits, b.logits)
    c = train_bandit(cfg.replace(seed=6))
    assert _strip(c.metrics) != _strip(a.metrics)


@pytest.mark.parametrize("method", ["none", "entropy_bonus", "clamped_bonus", "aent", "sac", "threshold", "entropic",
                                    "pos_reweight", "clip_cov", "kl_cov", "top_entropy"])
def test_every_entropy_method_trains_and_logs_the_shared_metrics(method):
    cfg = ToyTrainConfig(n_arms=64, m_optimal=2, steps=3, n_seeds=2, group_size=4, ppo_epochs=2,
                      entropy=EntropyConfig.preset(method))
    run = train_bandit(cfg)
    assert len(run.metrics) == 3 and run.accuracy.shape == (4, 2) and run.entropy.shape == (4, 2)
    for rec in run.metrics:
        assert set(SHARED_KEYS) <= set(rec)
        assert all(math.isfinite(rec[k]) for k in SHARED_KEYS)
        assert 0.0 <= rec["accuracy"] <= 1.0 and 0.0 <= rec["entropy"] <= math.log(64) + 1e-4
        # the fraction of the 2 x 4 sampled arms that are optimal
        assert rec["sampled_accuracy"] * 8 == pytest.approx(round(rec["sampled_accuracy"] * 8), abs=1e-6)
    assert [rec["step"] for rec in run.metrics] == [0, 1, 2]


def test_accuracy_is_the_success_probability():
    """accuracy = probability mass on the optimal arms of the policy that sampled the step (hand computed)."""
    r = torch.tensor([[1.0, 0.0, 1.0, 0.5]])
    z0 = torch.tensor([[0.0, 1.0, 2.0, 0.5]])
    run = train_bandit(ToyTrainConfig(n_arms=4, m_optimal=1, steps=1, estimator="exact"), rewards=r, logits0=z0)
    e = np.exp([0.0, 1.0, 2.0, 0.5])
    assert run.metrics[0]["accuracy"] == pytest.approx((e[0] + e[2]) / e.sum(), rel=1e-6)


def test_rows_are_independent_of_each_other():
    """A run's trajectory (exact estimator) does not depend on which other runs share the tensor."""
    gen = torch.Generator().manual_seed(0)
    z0, r = torch.randn(3, 30, generator=gen), torch.rand(3, 30, generator=gen)
    cfg = ToyTrainConfig(n_arms=30, steps=20, estimator="exact", lr=1.0,
                      entropy=EntropyConfig(method="clamped_bonus", ent_coef=0.1, clamp_p=0.5))
    together = train_bandit(cfg, rewards=r, logits0=z0).logits
    alone = train_bandit(cfg, rewards=r[1:2], logits0=z0[1:2]).logits
    torch.testing.assert_close(together[1:2], alone, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(("field", "value"), [("estimator", "ppo"), ("lr", 0.0), ("group_size", 1), ("steps", 0),
                                              ("pattern", "dense"), ("init", "xavier"), ("opt_quantile", 1.5)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"ToyTrainConfig.{field}"):
        ToyTrainConfig(**{field: value})


def test_exact_estimator_rejects_sampling_only_methods():
    with pytest.raises(ValueError, match="exact"):
        ToyTrainConfig(estimator="exact", entropy=EntropyConfig.preset("clip_cov"))


def test_common_random_numbers_share_the_sample_stream_per_seed():
    """With common_random_numbers, two rows with one seed and one entropy control follow identical trajectories;
    without it they do not (each row draws its own samples)."""
    cfg = ToyTrainConfig(n_arms=50, m_optimal=2, estimator="rloo", steps=5, group_size=4, lr=0.5,
                      common_random_numbers=True, track_clamped=False)
    rewards = torch.rand(1, 50, generator=torch.Generator().manual_seed(0)).repeat(3, 1)
    none, bonus = EntropyConfig(method="none"), EntropyConfig(method="entropy_bonus", ent_coef=0.1)
    run = train_bandit(cfg, rewards=rewards, row_seeds=[7, 7, 7], entropy_cfgs=[none, none, bonus])
    assert torch.equal(run.accuracy[:, 0], run.accuracy[:, 1])
    assert not torch.equal(run.accuracy[:, 0], run.accuracy[:, 2])
    indep = train_bandit(cfg.replace(common_random_numbers=False), rewards=rewards, row_seeds=[7, 7, 7],
                         entropy_cfgs=[none, none, bonus])
    assert not torch.equal(indep.accuracy[:, 0], indep.accuracy[:, 1])
