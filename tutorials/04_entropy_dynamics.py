# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 4: entropy dynamics
#
# Why does the entropy of an LLM policy fall during RL, and which knobs move it? For a softmax policy
# $\pi = \mathrm{softmax}(z)$ and a logit step $z \to z + \Delta z$,
#
# $$\Delta H = -\mathrm{Cov}_{a\sim\pi}\big(\log\pi(a),\ \Delta z(a)\big) + O(\lVert\Delta z\rVert^2)$$
#
# (Cui et al., arXiv 2505.22617; derived step by step in [Derivations](../docs/derivations.md)): entropy falls when the step raises the logits of tokens
# that are already likely. Everything in RL that touches entropy (advantages, clipping, bonuses) acts through
# this covariance.
#
# **Learning goals.** After this tutorial you can
#
# 1. check the covariance rule numerically and see its error shrink like $\lVert\Delta z\rVert^2$;
# 2. predict the sign of the entropy change of a policy-gradient update from the advantage sign and the
#    token's probability (positive advantages on likely tokens lower entropy; on rare tokens they raise it);
# 3. explain the finding of arXiv 2511.05993 / 2509.26114 that **clip-low raises entropy and clip-high lowers
#    it**, reproduce it per update with the PPO loss of `aent` under purely random rewards, and say when it holds
#    over a whole training run.
#
# **APIs used:** `toy.dynamics` (`predicted_entropy_change`, `exact_entropy_change`, `second_order_bound`,
# `entropy_sensitivity`, `token_step`, `ppo_token_step`), `aent` (`entropy`, `ppo_clip_loss`,
# `group_advantages`).

# %%
import math
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from aent import entropy, group_advantages, ppo_clip_loss
from toy import dynamics
from toy import exact as toy_exact

torch.set_num_threads(1)
SMOKE = os.environ.get("AENT_SMOKE") == "1"
OUT = Path(os.environ.get("AENT_TUTORIAL_OUT", "runs/tutorials")) / "04"
OUT.mkdir(parents=True, exist_ok=True)
F64 = torch.float64
print(f"smoke={SMOKE}, figures go to {OUT}")

# %% [markdown]
# ## 1. The covariance rule
#
# The rule is the first-order Taylor expansion of $H$ with the gradient $\partial H / \partial z_i =
# -\pi_i(\log\pi_i + H)$ ([Derivations](../docs/derivations.md)). First check that closed form against
# autograd on random logits:

# %%
gen = torch.Generator().manual_seed(1)
for _ in range(5):
    z = (3.0 * torch.randn(30, dtype=F64, generator=gen)).requires_grad_(True)
    h_z = -(torch.softmax(z, 0) * torch.log_softmax(z, 0)).sum()
    (grad_autograd,) = torch.autograd.grad(h_z, z)
    with torch.no_grad():
        p = torch.softmax(z, 0)
        grad_closed = -p * (p.log() + h_z)
    assert torch.allclose(grad_autograd, grad_closed, rtol=1e-10, atol=1e-14)
print("dH/dz = -pi (log pi + H) matches autograd; max |grad| =", f"{float(grad_closed.abs().max()):.3e}")

# %% [markdown]
#
# Take random logits over 50 tokens and a random direction $d$, and compare the exact change
# $H(z + \eta d) - H(z)$ with the first-order prediction $-\eta\,\mathrm{Cov}_\pi(\log\pi, d)$. We compute the
# prediction twice: with `toy.dynamics.predicted_entropy_change`, and by hand with numpy below.

# %%
gen = torch.Generator().manual_seed(0)
z = 2.0 * torch.randn(50, dtype=F64, generator=gen)
d = torch.randn(50, dtype=F64, generator=gen)

pi = np.exp(z.numpy() - z.numpy().max())
pi /= pi.sum()
logpi = np.log(pi)
cov_by_hand = float((pi * (logpi - pi @ logpi) * (d.numpy() - pi @ d.numpy())).sum())

etas = np.logspace(-4, 0, 9)
errors = []
for eta in etas:
    exact = float(dynamics.exact_entropy_change(z, eta * d))
    predicted = float(dynamics.predicted_entropy_change(z, eta * d))
    assert math.isclose(predicted, -eta * cov_by_hand, rel_tol=1e-9, abs_tol=1e-15)
    assert abs(exact - predicted) <= float(dynamics.second_order_bound(z, eta * d)) + 1e-15
    errors.append(abs(exact - predicted))
    print(f"eta={eta:8.1e}  exact dH={exact:+.3e}  -eta Cov={predicted:+.3e}  |error|={errors[-1]:.1e}")
slope = np.polyfit(np.log(etas[:5]), np.log(errors[:5]), 1)[0]
print(f"log-log slope of the error for small steps: {slope:.2f} (second order: 2)")
assert 1.8 < slope < 2.2

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(etas, errors, "o-", label="|exact - first order|")
ax.loglog(etas, errors[0] * (etas / etas[0]) ** 2, "k--", label=r"$\propto \eta^2$")
ax.set_xlabel(r"step size $\eta$")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "covariance_rule_error.png", dpi=100)

# %% [markdown]
# ## 2. Positive and negative advantages, likely and rare tokens
#
# A policy-gradient update on one sampled token $a$ with advantage $A$ moves the logits by
# $\Delta z = \eta A(e_a - \pi)$ (`toy.dynamics.token_step`). Plugging it into the covariance rule gives
# $\Delta H \approx -\eta A\, s(a)$ with the **entropy sensitivity** $s(a) = g(a) - \mathbb{E}_\pi g$,
# $g(b) = \pi(b)(\log\pi(b) + H)$ (`toy.dynamics.entropy_sensitivity`). The sign of $s(a)$ depends only on how
# likely $a$ is: $s(a) < 0$ whenever $\pi(a) < e^{-H}$, and $s \ge 0$ for the most likely token.

# %%
z = torch.tensor([4.0, 2.5, 2.0, 1.0] + [0.0] * 28, dtype=F64)  # a peaked next-token distribution
pi = torch.softmax(z, 0)
h = float(-(pi * pi.log()).sum())
s = dynamics.entropy_sensitivity(z)
assert bool((s[pi < math.exp(-h)] < 0).all()) and float(s[int(pi.argmax())]) >= 0

mode, rare = int(pi.argmax()), int(pi.argmin())
print(
    f"H = {h:.3f} nats; pi(mode) = {float(pi[mode]):.3f}, pi(rare) = {float(pi[rare]):.4f}, "
    f"e^-H = {math.exp(-h):.3f}"
)
print("token   adv   exact dH     predicted -eta A s(a)")
signs = {}
for name, tok in (("mode", mode), ("rare", rare)):
    for adv in (+1.0, -1.0):
        step = dynamics.token_step(z, tok, adv, lr=0.05)
        exact = float(
            entropy((z + step).float()) - entropy(z.float())
        )  # aent.entropy, an independent formula
        predicted = -0.05 * adv * float(s[tok])
        signs[name, adv] = np.sign(exact)
        assert np.sign(exact) == np.sign(predicted)
        print(f"{name:5s} {adv:+.0f}   {exact:+.5f}    {predicted:+.5f}")
assert signs["mode", 1.0] < 0 and signs["mode", -1.0] > 0  # reinforcing a likely token collapses entropy
assert signs["rare", 1.0] > 0 and signs["rare", -1.0] < 0  # reinforcing a rare token spreads it out

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(pi.log().numpy(), s.numpy())
ax.axvline(-h, color="k", ls="--", label=r"$\log\pi(a) = -H$")
ax.axhline(0, color="grey", lw=0.5)
ax.set_xlabel(r"$\log \pi(a)$")
ax.set_ylabel("entropy sensitivity s(a)")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "sensitivity.png", dpi=100)

# %% [markdown]
# In outcome-reward RL the tokens of correct answers are, early on, mostly the model's likely tokens, so most
# positive-advantage updates fall in the "mode, +1" row: entropy falls step after step. This is the collapse
# of Tutorials 1 and 2 seen one update at a time. Re-weighting positive-advantage tokens by $w_+ < 1$
# (arXiv 2511.05993, `EntropyConfig(method="pos_reweight")`) weakens exactly that row.
#
# ## 3. Clip-low raises entropy, clip-high lowers it
#
# PPO and GRPO update each batch several times and clip the ratio $r = \pi/\pi_\text{old}$ to
# $[1 - \epsilon_\text{low}, 1 + \epsilon_\text{high}]$: a token with $A > 0$ and $r > 1 +
# \epsilon_\text{high}$ (**clip-high**) or with $A < 0$ and $r < 1 - \epsilon_\text{low}$ (**clip-low**) stops
# contributing gradient. The ratios that move most are those of **rare** tokens, so by section 2:
#
# * clip-low removes negative updates on rare tokens, which would have *lowered* entropy: it raises entropy;
# * clip-high removes positive updates on rare tokens, which would have *raised* entropy: it lowers entropy.
#
# First the decomposition, one update at a time: `toy.dynamics.ppo_token_step` splits a PPO step into what it
# keeps and what each clip removed; the covariance rule tells what each removed piece would have done to the
# entropy.

# %%
n_trials = 40 if SMOKE else 200
removed_effect = {"clip-low": [], "clip-high": []}
for _ in range(n_trials):
    z_old = 3.0 * torch.randn(100, dtype=F64, generator=gen)
    tokens = torch.multinomial(torch.softmax(z_old, 0), 32, replacement=True, generator=gen)
    adv = group_advantages((torch.rand(32, generator=gen) < 0.5).float(), 32).to(F64)  # random rewards
    z = z_old.clone()
    for _epoch in range(8):
        out = dynamics.ppo_token_step(z, z_old, tokens, adv, lr=2.0, eps_low=0.2, eps_high=0.2)
        # entropy change the removed updates would have caused (first order); clipping them does the opposite
        removed_effect["clip-low"].append(-float(dynamics.predicted_entropy_change(z, out["removed_low"])))
        removed_effect["clip-high"].append(-float(dynamics.predicted_entropy_change(z, out["removed_high"])))
        z = z + out["step"]
for name, vals in removed_effect.items():
    vals = np.array(vals)
    print(
        f"{name}: entropy change caused by clipping, mean {vals.mean():+.4f} "
        f"+- {vals.std() / math.sqrt(len(vals)):.4f}"
    )
assert np.mean(removed_effect["clip-low"]) > 0 > np.mean(removed_effect["clip-high"])

# %% [markdown]
# Now end to end, with the real PPO loss of `aent` (`aent.ppo_clip_loss`) on a batch of independent one-state
# "models" trained on **random** rewards (so the advantages carry no information: any entropy trend comes from
# the algorithm, as in arXiv 2509.26114). Each of `T` policies samples 32 tokens, gets Bernoulli(1/2) rewards
# and GRPO advantages, and takes 8 gradient steps on the clipped surrogate. The same samples are reused for
# every clip setting, so the differences between settings are paired.

# %%
T, A, N = (400 if SMOKE else 2000), 100, 32
gen = torch.Generator().manual_seed(2)
z0 = 3.0 * torch.randn(T, A, generator=gen)
tokens = torch.multinomial(torch.softmax(z0, -1), N, replacement=True, generator=gen)
adv = group_advantages((torch.rand(T * N, generator=gen) < 0.5).float(), N).view(T, N)
old_logp = torch.log_softmax(z0, -1).gather(1, tokens)


def entropy_after(eps_low: float, eps_high: float, lr: float = 0.5, epochs: int = 8) -> torch.Tensor:
    """(T,) entropy change of each policy after `epochs` SGD steps on the PPO-clip loss."""
    z = z0.clone().requires_grad_(True)
    for _ in range(epochs):
        logp = torch.log_softmax(z, -1).gather(1, tokens)
        loss, _clipped = ppo_clip_loss(logp, old_logp, adv, eps_low=eps_low, eps_high=eps_high)
        (grad,) = torch.autograd.grad(loss.mean(1).sum(), z)
        with torch.no_grad():
            z -= lr * grad
    with torch.no_grad():
        return entropy(z) - entropy(z0)


settings = {
    "symmetric 0.2/0.2": (0.2, 0.2),
    "tight clip-low 0.1/0.2": (0.1, 0.2),
    "tight clip-high 0.2/0.1": (0.2, 0.1),
    "clip-higher 0.2/0.28": (0.2, 0.28),
}
changes = {name: entropy_after(*eps) for name, eps in settings.items()}
base = changes["symmetric 0.2/0.2"]
print(f"{'setting':26s} mean dH    paired difference to symmetric")
for name, dh in changes.items():
    diff = dh - base
    print(
        f"{name:26s} {float(dh.mean()):+.4f}   {float(diff.mean()):+.4f} "
        f"+- {float(diff.std()) / math.sqrt(T):.4f}"
    )


def z_score(x: torch.Tensor) -> float:
    return float(x.mean() / (x.std() / math.sqrt(len(x))))


assert z_score(changes["tight clip-low 0.1/0.2"] - base) > 3, "more clip-low raises entropy"
assert z_score(changes["tight clip-high 0.2/0.1"] - base) < -3, "more clip-high lowers entropy"

fig, ax = plt.subplots(figsize=(6, 3.5))
names = list(changes)
means = [float(changes[n].mean()) for n in names]
errs = [float(changes[n].std()) / math.sqrt(T) for n in names]
ax.bar(range(len(names)), means, yerr=errs, color=["grey", "tab:green", "tab:red", "tab:blue"])
ax.axhline(0, color="k", lw=0.5)
ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
ax.set_ylabel("entropy change (nats)")
ax.set_title("PPO on random rewards, 8 epochs")
fig.tight_layout()
fig.savefig(OUT / "clip_low_high.png", dpi=100)

# %% [markdown]
# The paired differences are the robust part: more clip-low raises the entropy, more clip-high lowers it. The
# sign of the symmetric setting itself depends on the setting (vocabulary, sharpness, learning rate, epochs);
# arXiv
# 2509.26114 reports that with LLMs and standard ranges clip-high dominates, so entropy falls even under
# random rewards. Try a few seeds and learning rates to see it go either way here.
#
# DAPO's clip-higher ($\epsilon_\text{high} = 0.28$) makes clip-high rarer and so raises entropy relative to
# the symmetric setting; tightening clip-low does the same more strongly. Both are available in every method
# of this project through `EntropyConfig(eps_low=..., eps_high=...)` (preset `"clip_higher"`).
#
# **Per update and over training.** Everything above is one batch: several epochs on one set of samples. Over a
# whole run, with new samples every step, the toy's `dynamics` experiment (`python -m toy dynamics --out DIR`)
# trains 60 PPO steps with no clipping, clip-low only and clip-high only. With random rewards in the sense of the
# claim, a fresh coin flip for every sample, clip-low only keeps about one nat more entropy than clip-high only, and
# each clip moves the entropy away from no clipping in its direction. With a learnable reward (a fixed coin-flip
# table per run, so half the arms really are better and the policy learns them) the rewarded tokens become the
# likely ones, as in exercise 4 below, and clip-high only ends up keeping slightly *more* entropy than clip-low
# only ([toy results](../docs/toy/results.md#entropy-dynamics-claim-5)).
#
# ## Exercises
#
# 1. In section 1, use a step along the policy gradient of Tutorial 1's bandit,
#    `toy.exact.bandit_policy_gradient(z, r)`, instead of a random direction. Is the covariance negative or
#    positive early in training? Late?
# 2. In section 2, find the token probability at which $s(a)$ changes sign for a few random distributions, and
#    compare it with $e^{-H}$.
# 3. In section 3, set `eps_low=1.0` (no clip-low at all) and `eps_high=100` (no clip-high). Which way does
#    the entropy drift with no clipping? Why is that a second-order effect (hint: section 1)?
# 4. Replace the random rewards by rewards that favour the most likely token. How do the three clip settings
#    compare now?
#
# ## Solutions
#
# Each solution is a collapsed explanation followed by a cell that computes it (and asserts what the explanation
# claims). Try the exercise before you open it.

# %% [markdown]
# ### Exercise 1
#
# <details><summary>Solution</summary>
#
# Take a 50-arm bandit whose single optimal arm starts at the median logit (a plausible but unlikely answer) and
# follow the exact policy gradient $\nabla_z V = \pi \odot (r - V)$. Early on the step raises a **rare** arm, so
# $\mathrm{Cov}_\pi(\log\pi, \Delta z) < 0$ and the entropy rises: the policy first spreads towards the
# optimum. Once the optimal arm is likely, the step keeps raising a **likely** arm: the covariance turns positive
# and the entropy falls for the rest of the run (the collapse of Tutorial 1). The sign flips when the optimal arm
# holds about an eighth of the mass.
#
# </details>

# %%
gen = torch.Generator().manual_seed(0)
z = 2.0 * torch.randn(50, dtype=F64, generator=gen)
r = torch.zeros(50, dtype=F64)
best = int(torch.argsort(z)[25])  # the optimal arm starts at the median logit
r[best] = 1.0
covs, p_best = [], []
for _t in range(600 if SMOKE else 3000):
    g = toy_exact.bandit_policy_gradient(z, r)
    covs.append(-float(dynamics.predicted_entropy_change(z, g)))  # Cov(log pi, g) = -dH to first order
    p_best.append(float(torch.softmax(z, 0)[best]))
    z = z + g
covs = np.array(covs)
flip = int(np.argmax(covs > 0))
print(f"Cov early {covs[0]:+.2e}, late {covs[-1]:+.2e}; sign flips at step {flip}, P(optimal) = {p_best[flip]:.3f}")
assert covs[0] < 0 < covs[-1] and flip > 0 and bool((covs[flip:] > 0).all())

# %% [markdown]
# ### Exercise 2
#
# <details><summary>Solution</summary>
#
# $s(a) = g(\pi(a)) - \mathbb{E}_\pi g$ with $g(p) = p(\log p + H)$, which is negative below $p = e^{-H}$ and
# increasing above it. Its mean $\mathbb{E}_\pi g = \mathrm{Cov}_\pi(\pi, \log\pi) \ge 0$ (since
# $\mathbb{E}_\pi[\log\pi + H] = 0$, and $\pi$ and $\log\pi$ rise together). So the sign changes at the
# $p^* \ge e^{-H}$ that solves $g(p^*) = \mathbb{E}_\pi g$: every token below $p^*$ has $s < 0$, every token
# above it $s > 0$. $e^{-H}$ is a sufficient threshold, not the exact one; in the draws below $p^*$ is 1.6 to 2.7
# times $e^{-H}$. So a positive advantage on a token between $e^{-H}$ and $p^*$ *raises* the entropy (over 20,000
# draws like these, 68% of the non-mode tokens above $e^{-H}$ are such tokens: `tests/test_course.py`).
#
# </details>

# %%
gen = torch.Generator().manual_seed(5)
ratios = []
for _ in range(5):
    z = 2.0 * torch.randn(40, dtype=F64, generator=gen)
    pi = torch.softmax(z, 0)
    h = float(-(pi * pi.log()).sum())
    s = dynamics.entropy_sensitivity(z)
    mean_g = float((pi * pi * (pi.log() + h)).sum())
    assert mean_g >= 0
    lo, hi = math.exp(-h), 1.0  # bisection for g(p*) = E g on [e^-H, 1], where g increases
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * (math.log(mid) + h) < mean_g else (lo, mid)
    p_star = lo
    assert bool((s[pi < p_star] < 0).all()) and bool((s[pi > p_star] > 0).all()) and p_star >= math.exp(-h)
    print(f"H = {h:.3f}: e^-H = {math.exp(-h):.4f}, sign change at p* = {p_star:.4f} ({p_star / math.exp(-h):.2f} e^-H)")
    ratios.append(p_star / math.exp(-h))
assert round(min(ratios), 1) == 1.6 and round(max(ratios), 1) == 2.7, "the range the solution quotes"

# %% [markdown]
# ### Exercise 3
#
# <details><summary>Solution</summary>
#
# Without clipping the update is plain SGD on the surrogate. Under random rewards the advantages are independent
# of the sampled tokens and have mean zero, so the first-order entropy change $-\mathrm{Cov}(\log\pi, \Delta z)$
# averages to zero (section 1): any drift is of second order in the learning rate. To see it without the
# first-order noise, run every policy twice, with advantages $A$ and $-A$: the first-order terms cancel in the
# average, and what is left shrinks four times when the learning rate halves. The drift is negative here: with
# no clipping at all the entropy falls slowly, even on random rewards.
#
# </details>

# %%
def entropy_after_adv(eps_low: float, eps_high: float, advantages: torch.Tensor, lr: float) -> torch.Tensor:
    """(T,) entropy change after 8 SGD steps on the PPO-clip loss with the given advantages."""
    z = z0.clone().requires_grad_(True)
    for _ in range(8):
        logp = torch.log_softmax(z, -1).gather(1, tokens)
        loss, _clipped = ppo_clip_loss(logp, old_logp, advantages, eps_low=eps_low, eps_high=eps_high)
        (grad,) = torch.autograd.grad(loss.mean(1).sum(), z)
        with torch.no_grad():
            z -= lr * grad
    with torch.no_grad():
        return entropy(z) - entropy(z0)


even = {}
for lr in (0.5, 0.25):
    plus, minus = entropy_after_adv(1.0, 100.0, adv, lr), entropy_after_adv(1.0, 100.0, -adv, lr)
    even[lr] = (plus + minus) / 2  # the first-order part cancels
    print(f"lr {lr}: mean dH {float(plus.mean()):+.4f}; even-order part {float(even[lr].mean()):+.5f} "
          f"+- {float(even[lr].std()) / math.sqrt(T):.5f}")
ratio = float(even[0.5].mean() / even[0.25].mean())
print(f"halving the learning rate divides the even-order drift by {ratio:.2f} (second order: 4)")
assert z_score(even[0.5]) < -3 and 3.0 < ratio < 5.0

# %% [markdown]
# ### Exercise 4
#
# <details><summary>Solution</summary>
#
# Reward 1 for the policy's most likely token and 0 otherwise: now the positive advantages sit on the mode, the
# "mode, +1" row of section 2, and every setting collapses the entropy. The clip settings now act mainly by how
# far they let the mode's ratio climb: a tight clip-high stops the positive updates on the mode early and keeps
# the entropy higher than the symmetric clip, while clip-higher lets them run on and lowers it further. The
# tight clip-low still raises the entropy relative to symmetric. Which clip "raises" entropy depends on which
# tokens carry the positive advantages: the rule of section 3 holds for rare tokens, and here the rewarded token
# is the likely one.
#
# </details>

# %%
mode_reward = (tokens == z0.argmax(-1, keepdim=True)).float()
adv_mode = group_advantages(mode_reward.reshape(-1), N).view(T, N)
ex4 = {name: entropy_after_adv(*eps, adv_mode, lr=0.5) for name, eps in settings.items()}
base4 = ex4["symmetric 0.2/0.2"]
for name, dh in ex4.items():
    print(f"{name:26s} mean dH {float(dh.mean()):+.4f}   vs symmetric {float((dh - base4).mean()):+.4f}")
assert all(float(dh.mean()) < 0 for dh in ex4.values()), "rewarding the mode collapses entropy in every setting"
assert z_score(ex4["tight clip-high 0.2/0.1"] - base4) > 3 and z_score(ex4["clip-higher 0.2/0.28"] - base4) < -3
assert z_score(ex4["tight clip-low 0.1/0.2"] - base4) > 3

