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
# # Tutorial 1: the entropy bonus on a bandit
#
# A language model choosing one token is a **bandit**: one state, $|A|$ actions (the vocabulary), a softmax
# policy $\pi = \mathrm{softmax}(z)$ over logits $z$, and a reward $r_a \in [0, 1]$ per action. The value is
# $V(z) = \sum_a \pi(a)\, r_a$. This tutorial works everything out exactly, without sampling noise.
#
# **Learning goals.** After this tutorial you can
#
# 1. write the exact policy gradient of a softmax bandit, $\partial V/\partial z_a = \pi(a)\,(r_a - V)$, and
#    check it against autograd;
# 2. see **entropy collapse**: as the policy becomes deterministic its gradient vanishes
#    ($\lVert\nabla V\rVert \le 2H(\pi)$, AEnt arXiv 2509.03493, the "no entropy control" proposition), so a
#    policy that locks onto a good-but-not-best arm stops learning, *when the logits are the parameters*;
# 3. see what a fixed **entropy bonus** $V + \lambda H$ buys (it keeps the gradient alive) and what it costs
#    (a **bias**: its maximiser $\pi_\lambda(a) \propto e^{r_a/\lambda}$ is not optimal), tell a training
#    **transient** from the **fixed point** it converges to, and see how the bias grows with the number of
#    actions $|A|$ and shrinks with the number $m$ of optimal actions;
# 4. predict, in closed form, the paper's Figure 1: with irrelevant arms and a trap, the full bonus's optimum
#    beats a trapped policy only for large $m$; the clamped one beats it for every $m$ only if the clamp removes
#    enough arms (at the $\lambda$ derived in section 4, $p \ge 0.86$; at the LLM value $p = 0.33$ it does not).
#
# **APIs used:** `toy.tasks.BanditTask`, `toy.exact` (`bandit_value`, `bandit_policy_gradient`,
# `bandit_gibbs`, `sparse_gibbs`), `toy.pg_trainer` (`ToyTrainConfig`, imported as `TrainConfig`; `train_bandit`), `toy.regime`
# (`TrapRegime`, `derive_ent_coef`, `gibbs_point`, `min_kept`), `aent.EntropyConfig`, `aent.entropy`.
#
# **The premise: tabular logits.** Everything here treats the logits $z$ themselves as the parameters (one free
# logit per action, "tabular softmax"). The bound $\lVert\nabla V\rVert \le 2H$ and the statement "a collapsed
# policy cannot learn" hold for that parameterisation only; the theory page (`docs/toy/theory.md`, claim 1) shows
# the bound failing as soon as the logits are a function of shared weights, which is the LLM case. The last
# section says what carries over. The entropy formulas are derived on the derivations page
# (`docs/derivations.md`).
#
# Run it as a notebook (`make notebooks`, then open `tutorials/01_bandit_entropy_bonus.ipynb`) or as a script
# (`python tutorials/01_bandit_entropy_bonus.py`). `AENT_SMOKE=1` shrinks it to a few seconds.

# %%
import math
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a plain script: draw to files only
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from aent import EntropyConfig, entropy
from toy.exact import bandit_gibbs, bandit_policy_gradient, bandit_value, sparse_gibbs
from toy.pg_trainer import ToyTrainConfig as TrainConfig
from toy.pg_trainer import train_bandit
from toy.tasks import BanditTask

torch.set_num_threads(1)
SMOKE = os.environ.get("AENT_SMOKE") == "1"
OUT = Path(os.environ.get("AENT_TUTORIAL_OUT", "runs/tutorials")) / "01"
OUT.mkdir(parents=True, exist_ok=True)
F64 = torch.float64
print(f"smoke={SMOKE}, figures go to {OUT}")

# %% [markdown]
# ## 1. A sparse bandit and its exact policy gradient
#
# `BanditTask` builds the reward vector: `m_optimal` arms pay 1 and, with `pattern="uniform"`, every other arm
# pays a random amount below $1 - \text{gap}$. Many arms are *nearly* optimal, a few are optimal: the shape of
# a reasoning task where many continuations look plausible and few are right.

# %%
N_ARMS = 1000
task = BanditTask(n_arms=N_ARMS, m_optimal=5, pattern="uniform", gap=0.1, seed=0)
r = torch.tensor(task.rewards, dtype=F64)
print(
    "optimal arms:",
    task.optimal.tolist(),
    "| best suboptimal reward:",
    float(r[r < 1].max()),
    "| mean reward:",
    float(r.mean()),
)

z = 2.0 * torch.randn(N_ARMS, dtype=F64, generator=torch.Generator().manual_seed(0))
closed_form = bandit_policy_gradient(z, r)
z_ad = z.clone().requires_grad_(True)
(autograd,) = torch.autograd.grad(bandit_value(z_ad, r), z_ad)
print("max |closed form - autograd| =", float((closed_form - autograd).abs().max()))
assert torch.allclose(closed_form, autograd, rtol=0, atol=1e-14)

# %% [markdown]
# The closed form says why learning slows: every component carries a factor $\pi(a)$. An arm the policy never
# samples gets no push, and a policy sure of one arm ($\pi(a^\dagger) \approx 1$, $V \approx r_{a^\dagger}$)
# has $\pi(a)(r_a - V) \approx 0$ everywhere. Sharpen the same logits by a factor $\beta$ and watch the
# gradient norm and the entropy fall together. The paper bounds the first by twice the second.

# %%
betas = torch.logspace(-1, 2, 16 if SMOKE else 60)
h_curve, g_curve = [], []
for beta in betas:
    zb = beta * z
    h_curve.append(float(entropy(zb.float())))  # aent.entropy, float32, nats
    g_curve.append(float(bandit_policy_gradient(zb, r).norm()))
h_curve, g_curve = torch.tensor(h_curve), torch.tensor(g_curve)
assert bool((g_curve <= 2 * h_curve + 1e-6).all()), "claim 1 (||grad V|| <= 2 H) failed"
assert g_curve[-1] < 1e-2 * g_curve.max(), "a near-deterministic policy should have a tiny gradient"

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(h_curve, g_curve, "o-", label=r"$\|\nabla V\|$ (exact)")
ax.loglog(h_curve, 2 * h_curve, "k--", label=r"$2H(\pi)$")
ax.set_xlabel("entropy H (nats)")
ax.set_ylabel("gradient norm")
ax.legend()
ax.set_title("Collapse stalls learning")
fig.tight_layout()
fig.savefig(OUT / "grad_vs_entropy.png", dpi=100)

# %% [markdown]
# ## 2. Entropy collapse in training, and the bonus that prevents it
#
# `toy.pg_trainer.train_bandit` runs gradient ascent on the tabular logits of several independent policies at once.
# `estimator="exact"` uses the exact gradient of $V + \lambda H$, so every difference below comes from the
# objective, not from sampling. The optimal arms start at the 99th percentile of a peaked random initial
# policy (`opt_quantile=0.99`): plausible, but not the mode, like a correct token under a pretrained prior.

# %%
steps = 150 if SMOKE else 400
base = TrainConfig(
    n_arms=N_ARMS,
    m_optimal=5,
    pattern="uniform",
    gap=0.1,
    estimator="exact",
    steps=steps,
    lr=5.0,
    init="gaussian",
    init_scale=2.0,
    opt_quantile=0.99,
    n_seeds=4,
    seed=0,
)
runs = {
    "no bonus": train_bandit(base.replace(entropy=EntropyConfig(method="none"))),
    "bonus lambda=0.05": train_bandit(
        base.replace(entropy=EntropyConfig(method="entropy_bonus", ent_coef=0.05))
    ),
}
for name, run in runs.items():
    print(
        f"{name:18s} entropy {float(run.entropy[0].mean()):.2f} -> {float(run.entropy[-1].mean()):.2f} nats, "
        f"P(optimal) {float(run.accuracy[0].mean()):.3f} -> {float(run.accuracy[-1].mean()):.3f}"
    )

none, bonus = runs["no bonus"], runs["bonus lambda=0.05"]
assert float(none.entropy[-1].mean()) < 0.5 * float(none.entropy[0].mean()), "entropy should collapse"
assert float(bonus.entropy[-1].mean()) > float(none.entropy[-1].mean()), "the bonus keeps entropy higher"
assert float(bonus.accuracy[-1].mean()) > float(none.accuracy[-1].mean()), (
    "during training the bonus run is far ahead (a transient: see below)"
)

# %% [markdown]
# Without a bonus the policy pours its mass onto the arms it already liked (rewards just below 1), its entropy
# collapses, and with it the gradient toward the optimal arms. The bonus keeps mass spread out long enough for
# the exact gradient to find them.
#
# **But where is the bonus run going?** Its entropy is still moving at the last step. The objective it ascends,
# $V + \lambda H$, has a unique maximiser, the Gibbs policy $\pi_\lambda(a) \propto e^{r_a/\lambda}$
# (`toy.exact.bandit_gibbs`, derived in section 3). Compute it for each run's reward table, and run the same
# objective **to convergence**, with Adam (the same exact gradient, a step size per logit), which gets there in a
# few hundred steps where plain gradient ascent on these logits would need tens of thousands:

# %%
from toy.pg_trainer import bandit_rewards  # noqa: E402 (a later cell of the notebook)

rewards_2 = bandit_rewards(base).double()  # (n_seeds, n_arms), the reward tables of the runs above
gibbs_2 = [bandit_gibbs(row, 0.05) for row in rewards_2]
gibbs_acc = torch.tensor([float(p[row >= row.max()].sum()) for p, row in zip(gibbs_2, rewards_2)], dtype=F64)
gibbs_ent = torch.tensor([float(-(p * p.log()).sum()) for p in gibbs_2], dtype=F64)
converged = train_bandit(
    base.replace(steps=150 if SMOKE else 300, optimizer="adam", lr=0.1,
                 entropy=EntropyConfig(method="entropy_bonus", ent_coef=0.05))
)
print(f"Gibbs optimum of V + 0.05 H: P(optimal) {float(gibbs_acc.mean()):.3f} "
      f"(runs {gibbs_acc.min():.2f}-{gibbs_acc.max():.2f}), entropy {float(gibbs_ent.mean()):.2f} nats")
print(f"bonus run, Adam, converged: P(optimal) {float(converged.accuracy[-1].mean()):.3f}, "
      f"entropy {float(converged.entropy[-1].mean()):.2f} nats")


def regularised(z: torch.Tensor, rewards: torch.Tensor, lam: float = 0.05) -> torch.Tensor:
    """V + lambda H of each row of logits (float64, direct formula)."""
    logp = torch.log_softmax(z.double(), -1)
    return (logp.exp() * (rewards - lam * logp)).sum(-1)


j_bonus = regularised(bonus.logits, rewards_2)
j_gibbs = torch.stack([(p * (row - 0.05 * p.log())).sum() for p, row in zip(gibbs_2, rewards_2)])
print(f"bonus run, plain gradient ascent, step {steps}: P(optimal) {float(bonus.accuracy[-1].mean()):.3f}, "
      f"entropy {float(bonus.entropy[-1].mean()):.2f} nats; V + 0.05 H = {float(j_bonus.mean()):.4f} "
      f"against {float(j_gibbs.mean()):.4f} at the optimum")
# Training converges to the closed form ...
assert torch.allclose(converged.accuracy[-1].double(), gibbs_acc, atol=0.01)
assert torch.allclose(converged.entropy[-1].double(), gibbs_ent, atol=0.05)
# ... which is far below what the plain-gradient run shows at its last step: that run is a transient.
assert float(bonus.accuracy[-1].mean()) > float(gibbs_acc.mean()) + 0.4
assert bool((j_bonus < j_gibbs - 0.01).all()), "the plain-gradient run has not reached the maximiser"
assert float(bonus.entropy[-1].mean()) < float(gibbs_ent.mean()) - 1.0

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for name, run in [*runs.items(), ("bonus, Adam (converges)", converged)]:
    axes[0].plot(run.accuracy.mean(1), label=name)
    axes[1].plot(run.entropy.mean(1), label=name)
axes[0].axhline(float(gibbs_acc.mean()), color="k", ls="--", label=r"Gibbs optimum of $V + 0.05H$")
axes[1].axhline(float(gibbs_ent.mean()), color="k", ls="--", label=r"Gibbs optimum of $V + 0.05H$")
axes[0].set_ylabel("P(optimal arm)")
axes[1].set_ylabel("entropy (nats)")
for ax in axes:
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "collapse.png", dpi=100)

# %% [markdown]
# **Transient versus bias.** The two bonus runs optimise the same objective. The plain-gradient run passes
# through policies with P(optimal) above 0.9 on its way, because the bonus keeps the gradient alive long enough
# for $V$ to pull mass onto the optimal arms first; but it has not arrived. Where it is going, and where Adam is
# already, is the Gibbs policy: P(optimal) about 0.4, at about 4.3 nats, with the rest of the mass spread over
# the near-optimal arms. So "the bonus finds the optimum" is true only of a transient that you stop at the right
# time, and "the bonus is biased" is the statement about its fixed point. Section 3 quantifies that bias.

# %% [markdown]
# ## 3. The price: the bias of the entropy bonus
#
# The bonus changes the objective: section 2 showed training converging to its maximiser. That maximiser is
# the Gibbs policy $\pi_\lambda(a) \propto e^{r_a/\lambda}$ (`toy.exact.bandit_gibbs`), and its **bias**
# $V^* - V(\pi_\lambda)$
# is at most $\lambda(\log|A| - \log m)$ (the paper's proposition with entropy regularisation, here with
# horizon $T = 1$). First check that the Gibbs policy really is the maximiser, against random perturbations:

# %%
lam = 0.1
r_small = torch.zeros(200, dtype=F64)
r_small[:3] = 1.0
p_gibbs = bandit_gibbs(r_small, lam)


def objective(p: torch.Tensor) -> float:
    """V + lambda H of a probability vector (float64, direct formula)."""
    nz = p[p > 0]
    return float((p * r_small).sum() - lam * (nz * nz.log()).sum())


best = objective(p_gibbs)
gen = torch.Generator().manual_seed(1)
for _ in range(20 if SMOKE else 200):
    other = torch.softmax(p_gibbs.log() + 0.3 * torch.randn(200, dtype=F64, generator=gen), 0)
    assert objective(other) <= best + 1e-12
print(f"V + lambda H at the Gibbs policy = {best:.6f}, no perturbation beats it")

# %% [markdown]
# With $m$ arms worth 1 and the rest worth 0 the optimum has a closed form (`toy.exact.sparse_gibbs`):
# $P(\text{optimal}) = m / (m + (|A| - m)e^{-1/\lambda})$. Tabulate the bias against $|A|$ and $m$, and
# cross-check the closed form by the enumerated Gibbs policy:

# %%
sizes = [100, 1_000, 10_000, 100_000]
ms = [1, 5, 15]
table = {}
for n in sizes:
    for m in ms:
        s = sparse_gibbs(n, m, lam)
        table[n, m] = s["bias"]
        r_nm = torch.zeros(n, dtype=F64)
        r_nm[:m] = 1.0
        enumerated = 1.0 - float((bandit_gibbs(r_nm, lam) * r_nm).sum())
        assert math.isclose(enumerated, s["bias"], rel_tol=1e-9, abs_tol=1e-12)
        assert s["bias"] <= s["bound"] + 1e-12, "bias bound lambda (log|A| - log m) violated"
print("bias of the bonus, lambda = 0.1")
print("|A|      " + "".join(f"m={m:<8d}" for m in ms))
for n in sizes:
    print(f"{n:<9d}" + "".join(f"{table[n, m]:<10.4f}" for m in ms))

for m in ms:  # grows with |A| ...
    assert all(table[a, m] < table[b, m] for a, b in zip(sizes, sizes[1:]))
for n in sizes:  # ... and shrinks as optimal actions become less sparse
    assert all(table[n, a] > table[n, b] for a, b in zip(ms, ms[1:]))

fig, ax = plt.subplots(figsize=(5, 3.5))
for m in ms:
    ax.semilogx(sizes, [table[n, m] for n in sizes], "o-", label=f"m = {m}")
ax.set_xlabel("|A| (actions)")
ax.set_ylabel(r"bias $V^* - V(\pi_\lambda)$")
ax.set_title(r"Entropy-bonus bias, $\lambda$ = 0.1")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "bias.png", dpi=100)

# %% [markdown]
# At $|A| = 10^5$ (a real vocabulary) and $m = 1$ the regularised optimum puts about 80% of its mass on wrong
# arms, although every wrong arm pays 0. This is the paper's argument for why a plain entropy bonus helps
# little in LLM RL, and the motivation for the clamped entropy of Tutorial 3.
#
# %% [markdown]
# ## 4. Where the bias decides: irrelevant arms, traps and Figure 1 of the paper
#
# The paper's Figure 1 argument needs one more ingredient: a **trap**. Most of the $10^5$ arms are irrelevant
# (reward 0), a few trap arms pay $r_t = 0.6$ and sit at the top of the prior (uncontrolled policy gradient
# commits to them and ends at $V = r_t$), and $m$ arms pay 1. The regularised optimum is still Gibbs, now over
# three reward levels (`toy.regime.gibbs_point`):
# $P(A^*) = m e^{1/\lambda} / (m e^{1/\lambda} + n_t e^{r_t/\lambda} + (N_{kept} - m - n_t))$.
# A bonus beats a trapped policy at its fixed point exactly when its $V > r_t$. `derive_ent_coef` picks the
# $\lambda$ at which the full bonus crosses $r_t$ between $m = 5$ and $m = 10$; the clamped bonus keeps only
# $N_{kept} = (1-p)|A|$ arms in its entropy, so far fewer irrelevant arms dilute the optimum.

# %%
from toy.regime import TrapRegime, derive_ent_coef, gibbs_point, min_kept  # noqa: E402 (a later cell of the notebook)

regime = TrapRegime(n_items=100_000, n_traps=10, trap_reward=0.6)
lam_f1 = derive_ent_coef(regime, 5, 10)
ms_f1 = [1, 3, 5, 10, 15]
kept = {"full bonus": 100_000, "clamped p=0.33": 67_000, "clamped p=0.9": 10_000, "clamped p=0.99": 1_000}
curves_f1 = {name: [gibbs_point(regime, m, lam_f1, k)["value"] for m in ms_f1] for name, k in kept.items()}
print(f"lambda = {lam_f1:.4f}; the clamped optimum beats the trap at m = 1 while it keeps <= "
      f"{min_kept(regime, 1, lam_f1):,} arms")
for name, vals in curves_f1.items():
    print(f"{name:15s}", " ".join(f"{v:.3f}" for v in vals))
full = curves_f1["full bonus"]
assert all(v < 0.6 for v, m in zip(full, ms_f1) if m <= 5) and all(v > 0.6 for v, m in zip(full, ms_f1) if m >= 10)
assert all(v > 0.6 for v in curves_f1["clamped p=0.99"]), "the clamped optimum keeps its edge at every m"
# the learning goal's threshold: the clamp must keep at most min_kept arms, p >= 1 - min_kept / N (0.86 here)
p_needed = 1 - min_kept(regime, 1, lam_f1) / regime.n_items
print(f"the clamped bonus keeps its edge at m = 1 only for p >= {p_needed:.2f}")
assert round(p_needed, 2) == 0.86 and curves_f1["clamped p=0.33"][0] < 0.6

fig, ax = plt.subplots(figsize=(5, 3.5))
for name, vals in curves_f1.items():
    ax.plot(ms_f1, vals, "o-", label=name)
ax.axhline(0.6, color="k", ls=":", label="trapped policy (no control)")
ax.set_xlabel("optimal arms m")
ax.set_ylabel(r"V at the regularised optimum")
ax.set_title(rf"|A| = $10^5$, $\lambda$ = {lam_f1:.3f}")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "figure1_closed_form.png", dpi=100)

# %% [markdown]
# This is the closed-form skeleton of Figure 1: the full bonus wins over a trapped policy only when the optimal
# set is large enough to outweigh $10^5$ irrelevant arms, and the clamped bonus (with $p$ large enough: here
# the LLM value $p = 0.33$ is not) keeps the win at every $m$. Whether training actually *gets there* is another
# question: `python -m toy figure1` trains every arm with 16 paired seeds, on this bandit and on a token tree,
# and puts the sampled result next to these lines (docs/toy/results.md). Tutorial 2 trains the tree version.
#
# ## 5. What carries over to an LLM
#
# Everything above is tabular: one free logit per action. A language model computes its logits from shared
# weights, $z = f_\theta(\text{prefix})$, and that changes which statements survive:
#
# | statement of this tutorial | tabular bandit | LLM (shared weights) |
# |---|---|---|
# | policy gradient $\partial V/\partial z_a = \pi(a)(r_a - V)$ | exact | holds for the logits; the weights get it through the Jacobian $\partial z/\partial\theta$ |
# | $\lVert\nabla V\rVert \le 2H$: a collapsed policy cannot learn | a theorem | **survives without its constant**: by the chain rule $\lVert\nabla_\theta V\rVert \le 2\max_s\lVert\partial z_s/\partial\theta\rVert\,H$, so collapse still shrinks the gradient, but by how much depends on a Jacobian that can be large (`docs/misconceptions.md`, item 2) |
# | low entropy means few *sampled* alternatives | yes | yes: with $G$ samples per prompt all identical, the group advantage is 0 and the step is empty, whatever the gradient norm |
# | the bonus's fixed point is the Gibbs policy, biased by up to $\lambda(\log\lvert A\rvert - \log m)$ | exact | the Gibbs policy is only reachable if the network can represent it; the bias *bound* still holds for the best policy of $V + \lambda H$ |
# | the bias grows with $\lvert A\rvert$ | exact | the mechanism carries over: a full-vocabulary bonus spreads mass over ~$10^5$ tokens (the CPU default shows it: `docs/reproduce.md`) |
# | transient versus fixed point | seen above | the same question at scale: a finite run stops somewhere on the way, so measure, don't assume the fixed point |
#
# The covariance form of the entropy change, which does not need the tabular premise in its general form, is on
# the derivations page (`docs/derivations.md`, section 7).
#
# ## Exercises
#
# 1. Rerun section 2 with `pattern="zero"`. Does the no-bonus run still get stuck? Why does the shape of the
#    suboptimal rewards matter?
# 2. Sweep `ent_coef` in section 2 over `[0.005, 0.02, 0.05, 0.2]`. Plot the final `P(optimal)`. Where does
#    the bias of section 3 start to win over the exploration benefit?
# 3. Using `sparse_gibbs`, find for $|A| = 10^5$ the largest $\lambda$ whose bias stays below 0.05 for $m = 1$
#    and for $m = 15$.
# 4. Replace `estimator="exact"` by `"grpo"` (sampled groups of `group_size` arms). Which conclusions survive
#    the sampling noise?
# 5. In section 4, change `trap_reward` to 0.3 and to 0.9. How do the derived lambda and the largest kept set
#    with an edge at m = 1 move, and why?
#
# ## Solutions
#
# Each solution is a collapsed explanation followed by a cell that computes it and asserts what the explanation
# claims. Try the exercise before you open it.

# %% [markdown]
# ### Exercise 1
#
# <details><summary>Solution</summary>
#
# With `pattern="zero"` the no-bonus run does **not** get stuck: it reaches P(optimal) above 0.98 like the bonus
# run. Every non-optimal arm now pays 0, so the exact gradient $\pi(a)(r_a - V)$ pushes every wrong arm down and
# every optimal arm up, from the first step to the last; there is no good-but-wrong arm to settle on. Collapse
# hurts when the policy can collapse onto something *almost* as good as the optimum (`pattern="uniform"`, rewards
# up to 0.9): then $r_a - V$ is small for the arms that hold the mass, and the gradient toward the optimum
# vanishes with the entropy before it gets there.
#
# </details>

# %%
zero = {name: train_bandit(base.replace(pattern="zero", entropy=cfg))
        for name, cfg in [("no bonus", EntropyConfig(method="none")),
                          ("bonus", EntropyConfig(method="entropy_bonus", ent_coef=0.05))]}
for name, run in zero.items():
    print(f"pattern=zero, {name:8s}: final P(optimal) {float(run.accuracy[-1].mean()):.3f}")
assert float(zero["no bonus"].accuracy[-1].min()) > 0.95, "without near-optimal arms there is nothing to get stuck on"
assert float(none.accuracy[-1].mean()) < 0.8, "with near-optimal arms (pattern=uniform) the no-bonus run is stuck"

# %% [markdown]
# ### Exercise 2
#
# <details><summary>Solution</summary>
#
# At the end of section 2's budget P(optimal) rises with $\lambda$ up to 0.05 and collapses at 0.2; at the fixed
# point (the Gibbs policy, which a long enough run reaches: section 2) it *falls* with $\lambda$ all the way.
# The bias starts to win wherever the two curves cross: a small $\lambda$ (0.005) barely slows the collapse
# within the budget but costs nothing at the fixed point; 0.05 is the best *transient* but its fixed point has
# P(optimal) of only 0.4; at 0.2 the bias wins already during training, because the bonus pulls mass toward the
# uniform policy faster than $V$ pulls it onto the optimal arms.
#
# </details>

# %%
coefs = [0.005, 0.02, 0.05, 0.2]
at_budget, at_fixed_point = [], []
for c in coefs:
    run = train_bandit(base.replace(entropy=EntropyConfig(method="entropy_bonus", ent_coef=c)))
    at_budget.append(float(run.accuracy[-1].mean()))
    at_fixed_point.append(float(torch.stack([bandit_gibbs(row, c)[row >= row.max()].sum()
                                             for row in rewards_2]).mean()))
    print(f"ent_coef {c:<6}: P(optimal) after {steps} steps {at_budget[-1]:.3f}, at the fixed point "
          f"{at_fixed_point[-1]:.3f}")
assert all(a > b for a, b in zip(at_fixed_point, at_fixed_point[1:])), "the fixed point gets worse with lambda"
assert max(at_budget) == at_budget[2] and at_budget[3] < at_budget[0], "the transient peaks at a middle lambda"

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogx(coefs, at_budget, "o-", label=f"after {steps} steps")
ax.semilogx(coefs, at_fixed_point, "s--", label="fixed point (Gibbs)")
ax.set_xlabel(r"ent_coef $\lambda$")
ax.set_ylabel("P(optimal)")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "ex2_coef_sweep.png", dpi=100)

# %% [markdown]
# ### Exercise 3
#
# <details><summary>Solution</summary>
#
# The bias of the sparse Gibbs optimum increases with $\lambda$, so bisect for the $\lambda$ at which it
# equals 0.05. At $|A| = 10^5$ that is $\lambda \approx 0.069$ for $m = 1$ and $\lambda \approx 0.085$ for
# $m = 15$: a bonus has to stay below about 0.07 to lose at most 5 points of reward on a one-answer task with a
# realistic vocabulary. The bound $\lambda(\log|A| - \log m)$ would allow only $\lambda \le 0.0043$ and
# $0.0057$: the bound is loose by an order of magnitude here.
#
# </details>

# %%
def largest_coef(n: int, m: int, max_bias: float = 0.05) -> float:
    """Largest lambda whose sparse Gibbs optimum has bias <= max_bias (bisection in log lambda)."""
    lo, hi = 1e-4, 1.0
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if sparse_gibbs(n, m, mid)["bias"] <= max_bias else (lo, mid)
    return lo


for m in (1, 15):
    c = largest_coef(100_000, m)
    print(f"m = {m:2d}: largest lambda with bias <= 0.05 is {c:.4f}; the bound would allow "
          f"{0.05 / math.log(100_000 / m):.4f}")
    assert math.isclose(sparse_gibbs(100_000, m, c)["bias"], 0.05, rel_tol=1e-6)
    assert sparse_gibbs(100_000, m, 1.01 * c)["bias"] > 0.05
assert largest_coef(100_000, 15) > largest_coef(100_000, 1), "more optimal arms tolerate a larger bonus"

# %% [markdown]
# ### Exercise 4
#
# <details><summary>Solution</summary>
#
# With sampled groups (`estimator="grpo"`) the exact picture changes. Both runs collapse to a near-deterministic
# policy (entropy well under 0.5 nats) instead of heading for the 4.3-nat Gibbs policy, because a sampled
# estimate of the entropy gradient only sees the arms it samples; the bonus keeps somewhat more entropy. The
# outcome per seed is all or nothing (P(optimal) near 0 or 1), so the average over 8 seeds is a count of
# escapes, and a one-seed difference between the arms is noise. What survives: collapse, and its all-or-nothing
# effect. What does not: the smooth transient of the exact run and convergence to the Gibbs fixed point within
# this budget.
#
# </details>

# %%
sampled = {name: train_bandit(base.replace(estimator="grpo", n_seeds=8, entropy=cfg))
           for name, cfg in [("no bonus", EntropyConfig(method="none")),
                             ("bonus", EntropyConfig(method="entropy_bonus", ent_coef=0.05))]}
for name, run in sampled.items():
    acc = run.accuracy[-1]
    print(f"grpo, {name:8s}: final entropy {float(run.entropy[-1].mean()):.3f} nats, P(optimal) per seed "
          f"{[round(float(a), 2) for a in acc]}")
for run in sampled.values():
    assert float(run.entropy[-1].mean()) < 0.5, "sampled runs collapse, far from the 4.3-nat Gibbs policy"
    assert bool(((run.accuracy[-1] < 0.1) | (run.accuracy[-1] > 0.9)).all()), "all or nothing per seed"
assert float(sampled["bonus"].entropy[-1].mean()) > float(sampled["no bonus"].entropy[-1].mean())

# %% [markdown]
# ### Exercise 5
#
# <details><summary>Solution</summary>
#
# The derived $\lambda$ falls as the trap pays more (about 0.115, 0.100 and 0.085 for $r_t$ = 0.3, 0.6, 0.9),
# while the largest kept set with an edge at $m = 1$ stays at about 14,150 arms. Why: at the Gibbs point the trap
# terms cancel from $V > r_t$, which becomes $m\,e^{1/\lambda}(1 - r_t) > r_t\,(N_{kept} - m - n_t)$.
# `derive_ent_coef` sets $\lambda$ so that the full bonus ($N_{kept} = 10^5$) crosses at
# $m^* = \sqrt{5 \cdot 10} \approx 7.07$, which fixes $e^{1/\lambda}(1 - r_t)/r_t \approx 10^5/m^*$ whatever
# $r_t$ is; at $m = 1$ the kept set must then be below about $10^5/m^* \approx 14{,}142$ (plus the few traps and
# the optimum). A better-paying trap needs a smaller $\lambda$ for the same crossing, not a smaller kept set.
#
# </details>

# %%
derived = {}
for trap_reward in (0.3, 0.6, 0.9):
    reg = TrapRegime(n_items=100_000, n_traps=10, trap_reward=trap_reward)
    derived[trap_reward] = (derive_ent_coef(reg, 5, 10), min_kept(reg, 1, derive_ent_coef(reg, 5, 10)))
    print(f"trap_reward {trap_reward}: lambda {derived[trap_reward][0]:.4f}, largest kept set with an edge at "
          f"m = 1: {derived[trap_reward][1]:,}")
lams = [derived[t][0] for t in (0.3, 0.6, 0.9)]
assert lams[0] > lams[1] > lams[2]
assert all(abs(derived[t][1] - 100_000 / math.sqrt(50)) < 0.01 * 100_000 / math.sqrt(50) for t in derived)

