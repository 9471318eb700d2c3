"""The numbers and derivations that the course pages quote (docs/course.md, docs/companion.md,
docs/misconceptions.md, docs/exercises.md, docs/concepts.md, docs/derivations.md), each recomputed here from a
closed form, autograd or the toy's code, never copied from the pages.

- the sign threshold p* of a REINFORCE step's entropy change (1.6-2.7 e^-H in Tutorial 4's exercise 2; 68% of the
  non-mode tokens above e^-H raise the entropy under a positive advantage);
- the chain-rule form of the collapse bound for shared weights, ||grad_theta V|| <= 2 max_s ||J_s|| H;
- the warm-up rule of AEnt's controller (moves at steps >= warmup) against the replay Tutorial 5 uses;
- the share of late steps on which AEnt's lambda moves in Tutorial 3 (62%), as the site notebook printed it;
- the pen-and-paper exercises: dH~/dz, the Gibbs optimum, the second-order term of the entropy change and the
  epsilon terms of Propositions 1 and 2.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from aent import AEntCoef, clamped_entropy
from toy import dynamics
from toy.exact_bandit import bandit_gibbs, kept_count

REPO = Path(__file__).resolve().parents[1]
F64 = torch.float64


def _tutorial4_draws(n: int, seed: int = 5) -> torch.Tensor:
    """Logits as Tutorial 4's exercise 2 draws them: 40 tokens, N(0, 2^2), generator seed 5. (n, 40)"""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([2.0 * torch.randn(40, dtype=F64, generator=gen) for _ in range(n)])


def _p_star(pi: torch.Tensor) -> tuple[float, float]:
    """(p*, e^-H): the probability where g(p) = p(log p + H) crosses E_pi g (bisection on [e^-H, 1])."""
    h = float(-(pi * pi.log()).sum())
    mean_g = float((pi * pi * (pi.log() + h)).sum())
    lo, hi = math.exp(-h), 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * (math.log(mid) + h) < mean_g else (lo, mid)
    return lo, math.exp(-h)


def test_sign_threshold_is_p_star_not_exp_minus_h():
    """p* is 1.6-2.7 e^-H in Tutorial 4's five draws; 68% of non-mode tokens above e^-H have s < 0."""
    ratios = []
    for z in _tutorial4_draws(5):
        pi = torch.softmax(z, 0)
        p_star, cut = _p_star(pi)
        s = dynamics.entropy_sensitivity(z)
        # the closed form s(a) = g(a) - E g against the toy's function, and the sign change at p*
        h = -(pi * pi.log()).sum()
        g = pi * (pi.log() + h)
        torch.testing.assert_close(s, g - (pi * g).sum(), rtol=0, atol=1e-12)
        assert bool((s[pi < p_star] < 0).all()) and bool((s[pi > p_star] > 0).all())
        ratios.append(p_star / cut)
    assert round(min(ratios), 1) == 1.6 and round(max(ratios), 1) == 2.7, ratios

    z = 2.0 * torch.randn(20_000, 40, dtype=F64, generator=torch.Generator().manual_seed(5))
    pi = torch.softmax(z, -1)
    s = dynamics.entropy_sensitivity(z)
    h = -(pi * pi.log()).sum(-1, keepdim=True)
    above = (pi > torch.exp(-h)) & ~torch.nn.functional.one_hot(pi.argmax(-1), 40).bool()
    share = float((s[above] < 0).double().mean())
    assert round(100 * share) == 68, share


def test_tokens_between_exp_minus_h_and_p_star_raise_the_entropy_exactly():
    """Not only to first order: a small exact REINFORCE step with A > 0 on such a token raises H."""
    found = 0
    for z in _tutorial4_draws(5):
        pi = torch.softmax(z, 0)
        p_star, cut = _p_star(pi)
        h0 = float(-(pi * pi.log()).sum())
        for a in torch.nonzero((pi > cut) & (pi < p_star)).flatten().tolist():
            step = 1e-3 * (torch.nn.functional.one_hot(torch.tensor(a), 40).to(F64) - pi)  # eta A (e_a - pi)
            pi1 = torch.softmax(z + step, 0)
            assert float(-(pi1 * pi1.log()).sum()) > h0
            found += 1
    assert found >= 3, "the draws contain tokens between e^-H and p*"


def _policy_net(seed: int, scale: float):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5)).double().apply(
        lambda m: torch.nn.init.normal_(m.weight, std=scale) if isinstance(m, torch.nn.Linear) else None)


@pytest.mark.parametrize("seed", range(6))
def test_chain_rule_keeps_the_collapse_bound(seed):
    """Contextual bandit, logits from shared weights: ||grad_theta V|| <= 2 max_s ||dz_s/dtheta||_op H.

    H is the expected per-state entropy (the trajectory entropy of a one-step problem), rewards in [0, 1].
    With large weights the plain tabular bound 2H fails for the weights, while the chain-rule form holds.
    """
    gen = torch.Generator().manual_seed(100 + seed)
    states = torch.randn(4, 3, dtype=F64, generator=gen)  # (S, 3) features
    rewards = torch.rand(4, 5, dtype=F64, generator=gen)  # (S, A) in [0, 1]
    for scale in (0.3, 3.0):
        net = _policy_net(seed, scale)
        params = list(net.parameters())
        logits = net(states)  # (S, A)
        pi = torch.softmax(logits, -1)
        value = (pi * rewards).sum(-1).mean()  # d(s) uniform
        grad = torch.cat([g.flatten() for g in torch.autograd.grad(value, params)])
        ent = float(-(pi * pi.log()).sum(-1).mean().detach())
        jac_norms = []
        for s in range(4):
            rows = [torch.cat([g.flatten() for g in torch.autograd.grad(net(states[s])[a], params)])
                    for a in range(5)]
            jac_norms.append(float(torch.linalg.matrix_norm(torch.stack(rows), ord=2)))
        assert float(grad.norm()) <= 2 * max(jac_norms) * ent * (1 + 1e-9)
    assert max(jac_norms) > 1  # at scale 3 the Jacobian is large: the constant 2 alone is not a bound


def test_chain_rule_bound_is_needed():
    """The constant is lost: z = W x with one feature of size c = 10 and W = 0 (uniform two-arm policy,
    rewards 0 and 1) has ||grad_W V|| = c ||grad_z V|| = 10 * 0.354 > 2 H = 1.386, while the chain-rule form
    2 ||dz/dW||_op H = 2 c H holds."""
    x = torch.tensor([10.0], dtype=F64)
    w = torch.zeros(2, 1, dtype=F64, requires_grad=True)
    pi = torch.softmax(w @ x, 0)
    (grad,) = torch.autograd.grad((pi * torch.tensor([0.0, 1.0], dtype=F64)).sum(), w)
    ent = float(-(pi * pi.log()).sum().detach())
    assert float(grad.norm()) == pytest.approx(10 * math.sqrt(2) / 4)
    assert float(grad.norm()) > 2 * ent
    assert float(grad.norm()) <= 2 * 10.0 * ent


def _replay(lams: list[float], ents: list[float], ctl: AEntCoef, rule: str) -> list[float]:
    """Tutorial 5's replay of the logged ent_coef, with the warm-up test `>=` (the controller's) or `>`."""
    out, n = [], 0
    for lam, h in zip(lams, ents):
        n += 1
        move = n >= ctl.warmup if rule == ">=" else n > ctl.warmup
        drive = min(0.0, h - ctl.band_low) + max(0.0, h - ctl.band_high)
        out.append(min(ctl.coef_max, max(ctl.coef_min, lam - ctl.lr * drive)) if move else lam)
    return out


def test_warmup_replay_matches_the_controller():
    """AEntCoef moves lambda at the update whose count reaches warmup; the old `>` replay misses it when the
    entropy is outside the band at that step, and Tutorial 5 uses the controller's rule."""
    ctl = AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=5, coef_min=6e-4, coef_max=9e-3)
    ents = [0.5, 0.4, 0.3, 0.2, 0.05, 0.05, 0.5, 0.2]  # outside the band at update 5
    lams = [ctl.value]
    for h in ents:
        lams.append(ctl.update(h))
    assert lams[5] != lams[4], "the 5th update moves lambda"
    for rule, ok in ((">=", True), (">", False)):
        assert (_replay(lams[:-1], ents, ctl, rule) == pytest.approx(lams[1:])) is ok, rule
    source = (REPO / "tutorials" / "05_train_small_math_reasoner.py").read_text()
    assert "n_updates >= e.warmup" in source and "n_updates > e.warmup" not in source


def test_tutorial3_quotes_the_share_it_printed():
    """T3's exercise 4 solution quotes the share of late steps on which lambda moves as the notebook printed it."""
    nb = json.loads((REPO / "docs" / "tutorials" / "03_clamped_entropy_and_aent.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                      for o in c.get("outputs", []))
    sac, aent = map(int, re.search(r"lambda moves on (\d+)% of steps with SAC, (\d+)% with AEnt", printed).groups())
    source = (REPO / "tutorials" / "03_clamped_entropy_and_aent.py").read_text()
    assert f"({aent}% in the full run below, against {sac}%" in source, (aent, sac)
    assert "50-60%" not in source


# ------------------------------------------------------------------ the pen-and-paper exercises (docs/exercises.md)

@pytest.mark.parametrize("seed", range(5))
def test_exercise_clamped_entropy_gradient(seed):
    """dH~/dz_a = -pi~_a (log pi~_a + H~) on kept tokens, 0 on removed ones (autograd of aent.clamped_entropy)."""
    z = (3 * torch.randn(12, dtype=F64, generator=torch.Generator().manual_seed(seed))).requires_grad_()
    p = 0.25
    (grad,) = torch.autograd.grad(clamped_entropy(z, p), z)
    k = math.floor(p * 12)
    kept = torch.ones(12, dtype=torch.bool)
    kept[torch.argsort(z.detach())[:k]] = False
    pt = torch.softmax(z.detach()[kept], 0)
    ht = -(pt * pt.log()).sum()
    expected = torch.zeros(12, dtype=F64)
    expected[kept] = -pt * (pt.log() + ht)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-6)  # aent accumulates in fp32


def test_exercise_gibbs_optimum_and_its_bias():
    """max_pi E_pi r + lam H~_p is Gibbs on the K arms of largest reward, value lam log sum_K e^{r/lam};
    its bias is below lam (log K - log m) (claims 2 and 4 on a bandit)."""
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(30, dtype=F64, generator=gen)
    r[:3] = 1.0  # m = 3 optimal arms
    lam, p = 0.2, 0.5
    k = kept_count(30, p)
    top = torch.sort(r, descending=True).values[:k]
    pi = bandit_gibbs(r, lam, p)
    kept = pi > 0
    value = float((pi * r).sum() + lam * -(pi[kept] * pi[kept].log()).sum())
    assert value == pytest.approx(lam * float(torch.logsumexp(top / lam, 0)), rel=1e-12)
    for _ in range(200):  # no other policy on the kept arms does better
        q = torch.softmax(torch.randn(30, dtype=F64, generator=gen) * 3 + torch.where(kept, 0.0, -60.0), 0)
        q = q[kept] / q[kept].sum()
        assert float((q * r[kept]).sum() - lam * (q * q.log()).sum()) <= value + 1e-12
    assert 1.0 - float((pi * r).sum()) <= lam * (math.log(k) - math.log(3))


@pytest.mark.parametrize("seed", range(5))
def test_exercise_second_order_term(seed):
    """d^2H/dt^2 along z + t dz is -E_pi[(1 + log pi + H)(dz - E dz)^2] (autograd twice), and the entropy change
    is -Cov(log pi, dz) + t^2/2 times it, to third order."""
    gen = torch.Generator().manual_seed(seed)
    z, dz = torch.randn(10, dtype=F64, generator=gen), torch.randn(10, dtype=F64, generator=gen)

    def ent(t):
        pi = torch.softmax(z + t * dz, 0)
        return -(pi * pi.log()).sum()

    t = torch.zeros((), dtype=F64, requires_grad=True)
    (d1,) = torch.autograd.grad(ent(t), t, create_graph=True)
    (d2,) = torch.autograd.grad(d1, t)
    pi = torch.softmax(z, 0)
    h = -(pi * pi.log()).sum()
    centred = dz - (pi * dz).sum()
    assert float(d1.detach()) == pytest.approx(-float((pi * (pi.log() + h) * centred).sum()), abs=1e-12)
    assert float(d2) == pytest.approx(-float((pi * (1 + pi.log() + h) * centred ** 2).sum()), abs=1e-10)
    eps = 1e-2
    taylor = float(ent(torch.tensor(0.0, dtype=F64)) + eps * d1.detach() + eps ** 2 / 2 * d2)
    assert abs(float(ent(torch.tensor(eps, dtype=F64))) - taylor) < 1e-5


def test_exercise_epsilon_terms_of_props_1_and_2():
    """The epsilon parts of Propositions 1-2 on a bandit (docs/exercises.md, derivation 4).

    Prop 1's side: ||grad_z V|| <= 2 H, so a policy with entropy <= eps/2 is eps-stationary whether or not it is
    optimal. Prop 2's side: V_lam = V + lam H satisfies max V_lam - V_lam(pi) <= ||grad_z V_lam||^2 / (2 lam C_lam)
    with C_lam = (min_a pi(a))^2 (the non-uniform Lojasiewicz inequality of Mei et al. 2020 for one state), so an
    eps-stationary point has V* - V <= eps^2 / (2 lam C_lam) + lam (log |A| - log m).
    """
    gen = torch.Generator().manual_seed(3)
    a, m, lam = 8, 2, 0.3
    r = torch.rand(a, dtype=F64, generator=gen) * 0.8
    r[:m] = 1.0
    best = lam * float(torch.logsumexp(r / lam, 0))
    for _ in range(300):
        z = (torch.randn(a, dtype=F64, generator=gen) * 1.5).requires_grad_()
        pi = torch.softmax(z, 0)
        ent = -(pi * pi.log()).sum()
        value = (pi * r).sum()
        (grad_v,) = torch.autograd.grad(value, z, retain_graph=True)
        assert float(grad_v.norm()) <= 2 * float(ent.detach())
        (grad,) = torch.autograd.grad(value + lam * ent, z)
        eps, c = float(grad.norm()), float(pi.min().detach()) ** 2
        gap = best - float((value + lam * ent).detach())
        assert gap <= eps ** 2 / (2 * lam * c) + 1e-12
        assert 1.0 - float(value.detach()) <= eps ** 2 / (2 * lam * c) + lam * (math.log(a) - math.log(m)) + 1e-12
    # a collapsed, wrong policy is eps-stationary for a tiny eps: Prop 1 is about stalling, not about optimality
    z = torch.full((a,), -12.0, dtype=F64)
    z[m] = 12.0  # all mass on a non-optimal arm
    z.requires_grad_()
    pi = torch.softmax(z, 0)
    (grad_v,) = torch.autograd.grad((pi * r).sum(), z)
    assert float(grad_v.norm()) < 1e-8 and 1.0 - float(r[m]) > 0.1


# ------------------------------------------------------------------ the misconceptions page (docs/misconceptions.md)

def test_misconception_p_is_the_removed_fraction():
    """p = 0.33 on z = (3, 2, 1, 0, -1, -2) keeps 5 tokens (H~ 1.000 nats, H 1.023); nucleus 0.33 keeps 1."""
    from aent import entropy

    z = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0, -2.0], dtype=F64)
    pi = torch.softmax(z, 0)
    assert [round(float(x), 3) for x in pi] == [0.634, 0.233, 0.086, 0.032, 0.012, 0.004]
    assert kept_count(6, 0.33) == 5
    assert round(float(clamped_entropy(z, 0.33)), 3) == 1.000 and round(float(entropy(z)), 3) == 1.023
    nucleus = int((torch.cumsum(torch.sort(pi, descending=True).values, 0) < 0.33).sum()) + 1
    assert nucleus == 1


def test_misconception_bonus_fixed_point():
    """Full bonus at |A| = 1e5, 10 traps at 0.6, m = 5: V = 0.9997, 0.526, 0.009 at lambda 0.05, 0.1, 0.2."""
    from toy.regime import TrapRegime, gibbs_point

    regime = TrapRegime(n_items=100_000, n_traps=10, trap_reward=0.6)
    values = [gibbs_point(regime, 5, lam)["value"] for lam in (0.05, 0.1, 0.2)]
    assert [round(values[0], 4), round(values[1], 3), round(values[2], 3)] == [0.9997, 0.526, 0.009]
    assert values[1] < 0.6 < values[0]
    # the Gibbs closed form against enumeration over every arm
    r = torch.zeros(100_000, dtype=F64)
    r[:5], r[5:15] = 1.0, 0.6
    assert float((bandit_gibbs(r, 0.1) * r).sum()) == pytest.approx(values[1], rel=1e-9)


def test_misconception_floor_needs_lambda_max():
    """m = 1, K = 1000, band [0.15, 0.24]: at the paper's cap 0.009 AEnt settles at the cap with H~ = 0;
    with a cap of 0.1 at lambda 0.065 with H~ = 0.150."""
    from toy.regime import TrapRegime, aent_fixed_point

    regime = TrapRegime(n_items=100_000, n_traps=10, trap_reward=0.6)
    capped = aent_fixed_point(regime, 1, 1000, 0.002, (0.15, 0.24), (6e-4, 9e-3))
    assert capped["ent_coef"] == 9e-3 and round(capped["entropy"], 3) == 0.0 < 0.15
    free = aent_fixed_point(regime, 1, 1000, 0.002, (0.15, 0.24), (6e-4, 0.1))
    assert round(free["ent_coef"], 3) == 0.065 and round(free["entropy"], 3) == 0.150


def test_tutorial5_run_ends_at_the_cap_below_the_floor():
    """What the docs quote (docs/misconceptions.md): T5's AEnt run (site notebook) spends its last 7 steps at the
    cap 0.009 with H~ between 0.04 and 0.08 nats, below the floor 0.15. The run is sampled, so a re-render on other
    code or another CPU moves the numbers inside that range (0.041-0.075 after the fused loss landed)."""
    nb = json.loads((REPO / "docs" / "tutorials" / "05_train_small_math_reasoner.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                      for o in c.get("outputs", []))
    lams = json.loads(re.search(r"ent_coef by step: (\[[^\]]*\])", printed).group(1))
    ents = json.loads(re.search(r"clamped entropy : (\[[^\]]*\])", printed).group(1))
    capped = [h for lam, h in zip(lams, ents) if lam == 0.009]
    assert lams[-7:] == [0.009] * 7 and len(capped) == 7
    assert 0.04 <= min(capped) and max(capped) <= 0.08 and max(capped) < 0.15


def test_exercise_w1_kept_count():
    """W1: K = 101,798 of 151,936 and 7 of 10 at p = 0.33 (kept_count and the clamped entropy's own kept set)."""
    assert kept_count(151_936, 0.33) == 101_798 and kept_count(10, 0.33) == 7
    z = torch.randn(10, dtype=F64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    (grad,) = torch.autograd.grad(clamped_entropy(z, 0.33), z)
    assert int((grad != 0).sum()) == 7  # removed tokens get exactly zero gradient


def test_exercise_w2_one_aent_step():
    """W2: 0.002 -> 0.0021 below the band, unchanged inside it, first move at the 30th call."""
    def ctl():
        return AEntCoef(init=0.002, band_low=0.15, band_high=0.24, lr=0.002, warmup=30, coef_min=6e-4, coef_max=9e-3)

    below, inside = ctl(), ctl()
    for _ in range(39):
        below.update(0.20)  # inside the band: no move
        inside.update(0.20)
    assert below.value == inside.value == 0.002
    assert below.update(0.10) == pytest.approx(0.0021) and inside.update(0.20) == 0.002
    first = ctl()
    moved = [i for i in range(1, 41) if first.update(0.10) != 0.002]
    assert moved[0] == 30


def test_exercise_w3_figure1_point():
    """W3: full bonus V = 0.526 < 0.6; clamped (p = 0.9, K = 10,000) V = 0.907 > 0.6; 47% irrelevant mass."""
    from toy.regime import TrapRegime, gibbs_point

    regime = TrapRegime(n_items=100_000, n_traps=10, trap_reward=0.6)
    full = gibbs_point(regime, 5, 0.1)
    clamped = gibbs_point(regime, 5, 0.1, kept_count(100_000, 0.9))
    assert round(full["value"], 3) == 0.526 and round(clamped["value"], 3) == 0.907
    assert round(full["p_irrelevant"], 2) == 0.47
