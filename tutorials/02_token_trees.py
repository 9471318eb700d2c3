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
# # Tutorial 2: language models as token trees
#
# A language model writing a response of $T$ tokens from a vocabulary $A$ walks down a tree: every prefix is a
# state, every token an action, and only the complete sequence $y$ is scored, $R(y) \in [0, 1]$. The tabular
# version of this MDP is small enough to **enumerate**: every quantity below is exact (float64 sums over all
# $|A|^T$ sequences), so each claim of the theory can be checked to rounding error.
#
# **Learning goals.** After this tutorial you can
#
# 1. build a token-tree task (`toy.tasks.TreeTask`), roll it out with the gymnasium environment
#    `toy/TokenTree-v0`, and compute its value, trajectory entropy and policy gradient exactly (`toy.exact`);
# 2. explain why optima are **sparse**: $|A^*| \ll |A|^T$;
# 3. check the two propositions of AEnt (arXiv 2509.03493) on the tree:
#    **no entropy control**, $\lVert\nabla_\theta V\rVert \le 2H(\pi_\theta)$ (with tabular logits, a collapsed
#    policy cannot learn); **entropy regularisation**, the maximiser of $V + \lambda H$ is $P(y) \propto e^{R(y)/\lambda}$
#    and its bias is $V^* - V(\pi_\lambda) \le \lambda(T\log|A| - \log|A^*|)$, and for every policy
#    $V^* - V(\pi_\theta) \le [\max V_\lambda - V_\lambda(\pi_\theta)] + \lambda(T\log|A| - \log|A^*|)$.
# 4. train tabular policies on a tree with a trap (`toy.trap_tree`) and compare where each entropy control ends
#    with the closed-form regularised optimum.
#
# **APIs used:** `toy.tasks.TreeTask`, `gymnasium.make_vec("toy/TokenTree-v0", ...)`, `toy.exact`
# (`tree_size`, `trajectory_value`, `trajectory_entropy`, `visitation_entropy`, `value_grad`, `q_values`,
# `visitation`, `sequence_logprobs`, `gibbs_distribution`, `regularized_optimum`, `regularized_objective`,
# `free_energy`), `toy.regime.derive_ent_coef`, `toy.trap_tree` (`TrapTreeConfig`, `make_tree_layout`,
# `train_trap_tree`), `aent.EntropyConfig`.

# %%
import math
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch

import toy  # noqa: F401  (registers toy/TokenTree-v0)
from toy import exact
from toy.tasks import TreeTask

torch.set_num_threads(1)
SMOKE = os.environ.get("AENT_SMOKE") == "1"
OUT = Path(os.environ.get("AENT_TUTORIAL_OUT", "runs/tutorials")) / "02"
OUT.mkdir(parents=True, exist_ok=True)
F64 = torch.float64
print(f"smoke={SMOKE}, figures go to {OUT}")

# %% [markdown]
# ## 1. A token tree and its sparse optimum
#
# `structure="targets"` draws `m_targets` random target sequences worth 1; `partial_credit` pays a fraction
# for a shared prefix (a shaped reward), 0 makes it a needle in a haystack. `structure="rule"` mimics a
# verifier: every sequence whose digit sum is $c \bmod |A|$ is correct, so $|A^*| = |A|^{T-1}$.

# %%
VOCAB, HORIZON = 4, 3
task = TreeTask(vocab=VOCAB, horizon=HORIZON, m_targets=2, partial_credit=0.5, seed=0)
R = task.reward_table().copy()  # shape (A,) * H, entry [y1, y2, y3] = R(y)
print("targets:", task.targets.tolist())
print(
    "sequences:",
    task.n_sequences,
    "| optimal:",
    task.n_optimal,
    "| R of the first 10 sequences:",
    np.round(R.ravel()[:10], 3).tolist(),
)
for vocab, horizon in [(4, 3), (16, 4), (151_936, 8)]:
    frac = math.exp(math.log(2) - horizon * math.log(vocab))
    print(f"|A|={vocab:>7}, T={horizon}: two correct answers are a fraction {frac:.1e} of all sequences")

# %% [markdown]
# ## 2. Exact value, entropy and policy gradient
#
# A tabular softmax policy has one logit vector per prefix: `logits` of shape `(n_states, A)`, states in level
# order (the root is state 0, the child of state $s$ by token $a$ is $A s + 1 + a$). `toy.exact` enumerates
# the $|A|^T$ sequences to compute $V(\pi) = \sum_y P(y) R(y)$ and the trajectory entropy
# $H(\pi) = -\sum_y P(y)\log P(y)$. Two independent checks:
#
# * the chain rule of entropy: $H(\pi) = \sum_s d(s)\, H(\pi(\cdot|s))$ with $d(s)$ the visitation
#   probability;
# * the policy-gradient theorem: $\partial V / \partial z(s, a) = d(s)\,\pi(a|s)\,(Q(s,a) - V(s))$, against
#   the autograd gradient of the enumerated $V$.

# %%
n_states = exact.tree_size(VOCAB, HORIZON)
z = torch.randn(n_states, VOCAB, dtype=F64, generator=torch.Generator().manual_seed(0))
value = float(exact.trajectory_value(z, R))
traj_h = float(exact.trajectory_entropy(z, HORIZON))
print(
    f"{n_states} states | V = {value:.4f} | H(pi) = {traj_h:.4f} nats "
    f"(max entropy T log|A| = {HORIZON * math.log(VOCAB):.4f})"
)
assert math.isclose(traj_h, float(exact.visitation_entropy(z, HORIZON)), rel_tol=1e-12)

pi = torch.softmax(z, -1)
q = exact.q_values(z, R)
v_state = (pi * q).sum(-1, keepdim=True)
pg_theorem = exact.visitation(z, HORIZON)[:, None] * pi * (q - v_state)
assert torch.allclose(exact.value_grad(z, R), pg_theorem, rtol=0, atol=1e-14)
print("autograd gradient == policy-gradient theorem")

# %% [markdown]
# The same policy, sampled through the gymnasium vector environment, gives a Monte Carlo estimate of $V$ that
# agrees with the exact value within sampling error (the environment knows nothing about `toy.exact`):

# %%
n_envs = 2048 if SMOKE else 16384
envs = gym.make_vec("toy/TokenTree-v0", num_envs=n_envs, vectorization_mode="vector_entry_point", task=task)
envs.reset(seed=0)
rng = np.random.default_rng(0)
state = np.zeros(n_envs, dtype=np.int64)
returns = np.zeros(n_envs)
cdf = pi.cumsum(-1).numpy()
for _ in range(HORIZON):
    tokens = np.minimum((rng.random((n_envs, 1)) > cdf[state]).sum(1), VOCAB - 1)
    _, reward, terminated, _, _ = envs.step(tokens)
    returns += reward
    state = VOCAB * state + 1 + tokens
envs.close()
assert terminated.all()
stderr = returns.std() / math.sqrt(n_envs)
print(f"Monte Carlo V = {returns.mean():.4f} +- {stderr:.4f}, exact V = {value:.4f}")
assert abs(returns.mean() - value) < 5 * stderr + 1e-9

# %% [markdown]
# ## 3. No entropy control: collapse stalls learning
#
# The first proposition of the paper bounds the policy gradient by the trajectory entropy:
# $\lVert\nabla_\theta V\rVert_2 \le 2H(\pi_\theta)$. A policy that has collapsed onto one sequence, right or
# wrong, has (almost) no gradient left.
#
# **Premise: $\theta$ are the logits.** Here $\theta$ is the table of logits itself, one free vector per prefix
# (tabular softmax, temperature 1, rewards in $[0, 1]$). The bound is a statement about that parameterisation.
# With logits computed from shared weights, as in a language model, the chain rule multiplies the gradient by
# the Jacobian $\partial z/\partial\theta$ and no such bound holds (`docs/toy/theory.md`, claim 1, has the
# counterexamples; section 6 below says what carries over). Check it on random policies of several sharpness levels and trace it
# along one path that sharpens a policy toward a wrong sequence.

# %%
gen = torch.Generator().manual_seed(1)
ratios = []
for _ in range(30 if SMOKE else 300):
    scale = float(10 ** (2 * torch.rand(1, generator=gen) - 0.5))
    zr = scale * torch.randn(n_states, VOCAB, dtype=F64, generator=gen)
    g = float(exact.value_grad(zr, R).norm())
    h = float(exact.trajectory_entropy(zr, HORIZON))
    ratios.append(g / h)
    assert g <= 2 * h + 1e-12, (g, h)
print(f"max ||grad V|| / H over random policies: {max(ratios):.3f} (bound: 2)")

wrong = torch.zeros(n_states, VOCAB, dtype=F64)
wrong[:, 0] = 1.0  # prefer token 0 everywhere: the sequence (0, 0, 0), which is not a target
assert R[0, 0, 0] < 1
path = [
    (float(exact.trajectory_entropy(b * wrong, HORIZON)), float(exact.value_grad(b * wrong, R).norm()))
    for b in np.linspace(0, 12, 25)
]
h_path, g_path = np.array(path).T
assert g_path[-1] < 1e-3 and h_path[-1] < 1e-3

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(h_path, g_path, "o-", label=r"$\|\nabla V\|$ while collapsing on (0,0,0)")
ax.plot(h_path, 2 * h_path, "k--", label=r"$2H(\pi)$")
ax.set_xlabel("trajectory entropy (nats)")
ax.set_ylabel("gradient norm")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "collapse_tree.png", dpi=100)

# %% [markdown]
# ## 4. Entropy regularisation: the Gibbs optimum and its bias
#
# The maximiser of $V + \lambda H$ over tabular policies is the Gibbs distribution over **sequences**,
# $P_\lambda(y) \propto e^{R(y)/\lambda}$; `toy.exact.regularized_optimum` computes its logits by the soft
# value recursion and reports its value, bias and bounds. Check that its sequence distribution is the Gibbs
# one, and that the bias respects $\lambda(T\log|A| - \log|A^*|)$:

# %%
lam = 0.2
opt = exact.regularized_optimum(R, VOCAB, lam)
p_opt = exact.sequence_logprobs(opt.logits, HORIZON).exp()
assert torch.allclose(p_opt, exact.gibbs_distribution(R, VOCAB, lam), rtol=1e-10, atol=1e-14)
print(f"lambda={lam}: V(pi_lambda) = {opt.value:.4f}, bias = {opt.bias:.4f}, bound = {opt.bound:.4f}")
assert 0 <= opt.bias <= opt.bound_entropy + 1e-12 <= opt.bound + 2e-12

# %% [markdown]
# The third claim holds at **every** policy, not only at the optimum: the suboptimality of $\pi_\theta$ splits
# into how far it is from maximising the regularised objective, plus the bias term. With `free_energy` (the
# maximum of $V + \lambda H$) and `regularized_objective`:

# %%
bias_term = lam * (HORIZON * math.log(VOCAB) - math.log(task.n_optimal))
best_reg = exact.free_energy(R, VOCAB, lam)
assert math.isclose(best_reg, opt.objective)
for _ in range(20 if SMOKE else 200):
    zr = 3 * torch.randn(n_states, VOCAB, dtype=F64, generator=gen)
    gap_v = 1.0 - float(exact.trajectory_value(zr, R))
    gap_reg = best_reg - exact.regularized_objective(zr, R, lam)
    assert gap_reg >= -1e-12, "free_energy must be the maximum of V + lambda H"
    assert gap_v <= gap_reg + bias_term + 1e-12
print(
    "V* - V(theta) <= [max V_lambda - V_lambda(theta)] + lambda (T log|A| - log|A*|) on every sampled theta"
)

# %% [markdown]
# Now the point of the paper: the bias grows with the vocabulary and the horizon, and shrinks as the optimal
# set grows. Sweep $|A|$ at $T = 3$ for one and four target sequences (pure needles, `partial_credit=0`):

# %%
vocabs = [2, 3, 4, 6, 8] if SMOKE else [2, 3, 4, 5, 6, 8, 10, 12]
curves = {}
for m in (1, 4):
    rows = []
    for vocab in vocabs:
        t = TreeTask(vocab=vocab, horizon=3, m_targets=m, seed=0)
        o = exact.regularized_optimum(t.reward_table().copy(), vocab, lam)
        assert o.n_optimal == m and o.bias <= o.bound + 1e-12
        rows.append((o.bias, o.bound))
    curves[m] = np.array(rows)
    print(f"m={m}: bias", np.round(curves[m][:, 0], 4).tolist())
    assert np.all(np.diff(curves[m][:, 0]) > 0), "bias should grow with |A|"
assert np.all(curves[1][:, 0] > curves[4][:, 0]), "more optimal sequences, less bias"

fig, ax = plt.subplots(figsize=(5, 3.5))
for m, c in curves.items():
    (line,) = ax.plot(vocabs, c[:, 0], "o-", label=f"bias, |A*| = {m}")
    ax.plot(vocabs, np.minimum(c[:, 1], 1.0), "--", color=line.get_color(), label=f"bound, |A*| = {m}")
ax.set_xlabel("|A| (vocabulary)")
ax.set_ylabel(r"$V^* - V(\pi_\lambda)$")
ax.set_title(rf"Bias of the entropy bonus, T = 3, $\lambda$ = {lam}")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "bias_tree.png", dpi=100)

# %% [markdown]
# ## 5. Training on the tree: where does each bonus end?
#
# The bias above is a property of the *optimum*. The paper's Figure 1 is about training: a policy-gradient run
# with no control commits to whatever good-but-wrong answer its prior favours (a **trap**), and a bonus changes
# where it ends. `toy.trap_tree` builds that setting on the tree: a few trap sequences (reward 0.6) follow the
# prior's most likely first token, $m$ optimal sequences (reward 1) start with other likely tokens, every other
# sequence pays 0. It trains many runs at once with $G$ sampled sequences per step, a leave-one-out baseline
# (no std normalisation), and the entropy of the states a token leads to added to its return, so that the
# expected update is exactly the gradient of $V + \lambda H$ (tests/toy/test_trap.py checks this by enumeration).
# Every run's seed fixes its prior and its sample stream, shared by all entropy controls (paired runs).
#
# $\lambda$ is not tuned: `toy.regime.derive_ent_coef` puts the full bonus's optimum at $V = r_t$ between
# $m = 1$ and $m = 8$, so *at the optimum* the full bonus loses to a trapped policy for $m = 1$ and beats it for
# $m = 8$, while the clamped bonus ($p = 0.75$: 10 of 40 tokens kept per state) beats it at both.

# %%
from aent import EntropyConfig  # noqa: E402
from toy.regime import TrapRegime, derive_ent_coef  # noqa: E402
from toy.trap_tree import TrapTreeConfig, make_tree_layout, train_trap_tree  # noqa: E402

tree_cfg = TrapTreeConfig(vocab=40, horizon=2, n_traps=5, trap_reward=0.6, init_scale=2.0, opt_rank_hi=10,
                          group_size=16, lr=0.1, steps=300 if SMOKE else 400, record_every=10)
lam_tree = derive_ent_coef(TrapRegime(n_items=40**2, n_traps=5, trap_reward=0.6), 1, 8)
controls = {"no control": EntropyConfig(method="none"),
            "entropy bonus": EntropyConfig(method="entropy_bonus", ent_coef=lam_tree),
            "clamped bonus p=0.75": EntropyConfig(method="clamped_bonus", ent_coef=lam_tree, clamp_p=0.75)}
n_seeds = 4 if SMOKE else 8
runs = [(seed, m, name) for m in (1, 8) for name in controls for seed in range(n_seeds)]
layout = make_tree_layout(tree_cfg, [(seed, m) for seed, m, _ in runs])
trained = train_trap_tree(tree_cfg, layout, [seed for seed, _, _ in runs], [controls[name] for _, _, name in runs])

final, predicted = {}, {}
for m in (1, 8):
    table = layout.tables[layout.task[runs.index((0, m, "no control"))]].double()
    for name, ecfg in controls.items():
        idx = [i for i, (_, mm, nn) in enumerate(runs) if (mm, nn) == (m, name)]
        final[m, name] = trained.value[-1, idx].numpy()
        predicted[m, name] = 0.6 if name == "no control" else exact.regularized_optimum(
            table, 40, lam_tree, ecfg.clamp_p if ecfg.method == "clamped_bonus" else 0.0).value
        print(f"m={m} {name:21s} V at the end {final[m, name].mean():.3f} (seeds {final[m, name].min():.2f}-"
              f"{final[m, name].max():.2f}); closed-form optimum {predicted[m, name]:.3f}")
assert np.allclose(final[1, "no control"], 0.6, atol=0.02), "no control commits to the trap"
assert final[1, "clamped bonus p=0.75"].mean() > final[1, "no control"].mean() + 0.1, "the clamped bonus escapes"

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
for ax, m in zip(axes, (1, 8)):
    for k, name in enumerate(controls):
        idx = [i for i, (_, mm, nn) in enumerate(runs) if (mm, nn) == (m, name)]
        ax.plot(trained.steps, trained.value[:, idx].mean(1), color=f"C{k}", label=name)
        ax.axhline(predicted[m, name], color=f"C{k}", ls=":")
    ax.set(title=f"m = {m} optimal sequences", xlabel="step", ylabel="V (mean over seeds)")
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(OUT / "trap_tree_training.png", dpi=100)

# %% [markdown]
# Dotted lines are the closed-form optima. No control ends on the trap; the clamped bonus ends close to its
# optimum. The full bonus at $m = 1$ typically ends *above* its optimum: its optimum spreads most of the mass over
# the 1,600 sequences, and a run with 16 samples per step keeps collapsing below that entropy (sampling noise pushes
# the policy toward the sequences it already samples). `python -m toy figure1` runs the same comparison at
# $|A| = 316$ per step (99,856 sequences) with 16 paired seeds, next to the 10^5-arm bandit
# (docs/toy/results.md).
#
# %% [markdown]
# ## 6. What carries over to an LLM
#
# A language model is this tree with $|A| \approx 10^5$, $T$ in the hundreds or thousands, and logits computed
# by one network for every prefix. Checked against that:
#
# * **Exact and general:** the sequence-level facts that do not depend on the parameterisation. The trajectory
#   entropy is the visitation-weighted sum of per-prefix entropies; the best policy of $V + \lambda H$ is the
#   Gibbs distribution over sequences, so the bias bound $\lambda(T\log|A| - \log|A^*|)$ holds for any model
#   that can represent it, and grows with the vocabulary and the length; the entropy moves, to first order, by
#   $-\mathrm{Cov}_{y\sim P}(\log P(y), \Delta\log P(y))$ (`docs/derivations.md`, sections 6-7).
# * **Tabular only:** $\lVert\nabla V\rVert \le 2H$ and "a collapsed policy cannot learn". For an LLM the sharper
#   statement is about *samples*: when every sample of a group is the same, the group advantage is zero and the
#   step does nothing, whatever the gradient norm would be.
# * **Changed by sampling and shared weights:** where training ends. Section 5 already showed sampled runs
#   missing the closed-form optimum; with a network, one update also moves the logits of prefixes that were never
#   sampled, so the per-state covariance rules are a proxy (`docs/derivations.md`, section 8).
#
# ## Exercises
#
# 1. Replace the targets by the rule task `TreeTask(vocab=4, horizon=3, structure="rule")`. How large is
#    $|A^*|$, and how does the bias compare with the two-target task at the same $\lambda$?
# 2. The bound $\lambda(T\log|A| - \log|A^*|)$ is loose when $\lambda$ is small. Plot `opt.bias`,
#    `opt.bound_entropy` and `opt.bound` against $\lambda \in [0.02, 1]$. Which one tracks the bias?
# 3. Turn on `partial_credit=0.5`. Does shaping the reward change the bias of the Gibbs optimum? Why?
# 4. Find a policy where $\lVert\nabla V\rVert / H(\pi)$ is as large as you can (start from `ratios`). How
#    close to 2 do you get?
# 5. In section 5, set `group_size=64`. Does the full bonus at $m = 1$ end closer to its closed-form optimum?
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
# The rule task makes every sequence whose token sum is $c \bmod |A|$ correct: $|A^*| = |A|^{T-1} = 16$ of the
# 64 sequences. At $\lambda = 0.2$ its bias is about 0.02, against about 0.24 for the two-target task: the
# $-\log|A^*|$ term of the bound, $\lambda(T\log|A| - \log|A^*|)$, shrinks from $\lambda\log 32$ to
# $\lambda\log 4$, and in the Gibbs optimum the mass that the bonus spreads lands mostly on correct sequences.
# A verifier-style task (many correct answers) suffers far less from the bonus than a needle in a haystack.
#
# </details>

# %%
rule = TreeTask(vocab=VOCAB, horizon=HORIZON, structure="rule")
opt_rule = exact.regularized_optimum(rule.reward_table().copy(), VOCAB, lam)
print(f"rule task: |A*| = {rule.n_optimal}, bias {opt_rule.bias:.4f}, bound {opt_rule.bound:.4f}; "
      f"two targets: |A*| = {task.n_optimal}, bias {opt.bias:.4f}")
assert rule.n_optimal == VOCAB ** (HORIZON - 1)
assert opt_rule.bias < 0.2 * opt.bias

# %% [markdown]
# ### Exercise 2
#
# <details><summary>Solution</summary>
#
# `opt.bound_entropy` $= \lambda(H(\pi_\lambda) - \log|A^*|)$, which uses the optimum's actual entropy instead of
# its maximum $T\log|A|$, tracks the bias: within a factor of about 1.3 for $\lambda \le 0.2$, while the
# worst-case `opt.bound` is off by orders of magnitude at small $\lambda$. At small $\lambda$ the Gibbs policy is
# nearly deterministic on $A^*$, so its entropy is near $\log|A^*|$ and the bias is exponentially small in
# $1/\lambda$, while the worst-case bound only shrinks linearly. At large $\lambda$ the policy approaches uniform,
# its entropy approaches $T\log|A|$, and the two bounds meet.
#
# </details>

# %%
lams = np.geomspace(0.02, 1.0, 8 if SMOKE else 20)
sweep = np.array([[o.bias, o.bound_entropy, o.bound]
                  for o in (exact.regularized_optimum(R, VOCAB, float(c)) for c in lams)])
assert np.all(sweep[:, 0] <= sweep[:, 1] + 1e-12) and np.all(sweep[:, 1] <= sweep[:, 2] + 1e-12)
small = (lams <= 0.2) & (sweep[:, 0] > 1e-3)
assert np.all(sweep[small, 1] / sweep[small, 0] < 1.5), "the entropy form tracks the bias"
assert sweep[0, 2] > 1e6 * sweep[0, 0], "the worst-case bound is loose at small lambda"
fig, ax = plt.subplots(figsize=(5, 3.5))
for k, label in enumerate(["bias", "bound_entropy", "bound"]):
    ax.loglog(lams, np.maximum(sweep[:, k], 1e-16), "o-", label=label)
ax.set_xlabel(r"$\lambda$")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "ex2_bounds.png", dpi=100)

# %% [markdown]
# ### Exercise 3
#
# <details><summary>Solution</summary>
#
# Yes. The Gibbs optimum $P_\lambda(y) \propto e^{R(y)/\lambda}$ depends on the whole reward table, not only on
# which sequences are optimal, so shaping changes the optimum itself and not just how fast training reaches it.
# Here partial credit *raises* the bias at $\lambda = 0.2$ (about 0.24 against 0.17 without it): the sequences
# that share a prefix with a target now weigh more in the Gibbs distribution and pull mass off the targets, and
# they pay back only part of it. (The bound $\lambda(T\log|A| - \log|A^*|)$ does not see the difference: it
# depends only on $|A^*|$.)
#
# </details>

# %%
no_credit = TreeTask(vocab=VOCAB, horizon=HORIZON, m_targets=2, partial_credit=0.0, seed=0)
opt_no_credit = exact.regularized_optimum(no_credit.reward_table().copy(), VOCAB, lam)
print(f"bias at lambda = {lam}: partial_credit=0.5 {opt.bias:.4f}, partial_credit=0 {opt_no_credit.bias:.4f}; "
      f"bounds {opt.bound:.4f} and {opt_no_credit.bound:.4f}")
assert opt.bias > opt_no_credit.bias + 0.03 and math.isclose(opt.bound, opt_no_credit.bound)

# %% [markdown]
# ### Exercise 4
#
# <details><summary>Solution</summary>
#
# Climb the ratio itself with autograd (the gradient of $V$ is built with `create_graph=True`, so the ratio can
# be differentiated again). From random starts it levels off at about 0.5, four times below the bound of 2. The
# chain of the proof, $\lVert\nabla V\rVert_2 \le \lVert\nabla V\rVert_1 \le 2\sum_s d(s)(1 - \max_a\pi(a|s))
# \le 2H$, loses in every link: the 2-norm is smaller than the 1-norm, advantages are rarely as large as the
# full reward range, and $1 - \max\pi \le H$ is loose by a factor of about $\log(1/(1-\max\pi))$ near
# determinism. The bound is a safe envelope, not a prediction.
#
# </details>

# %%
best_ratio = max(ratios)
for start in range(2 if SMOKE else 6):
    zr = torch.randn(n_states, VOCAB, dtype=F64, generator=torch.Generator().manual_seed(100 + start))
    zr.requires_grad_(True)
    adam = torch.optim.Adam([zr], lr=0.05)
    for _ in range(100 if SMOKE else 200):
        (gv,) = torch.autograd.grad(exact.trajectory_value(zr, R), zr, create_graph=True)
        ratio = gv.norm() / exact.trajectory_entropy(zr, HORIZON)
        adam.zero_grad()
        (-ratio).backward()
        adam.step()
    z_best = zr.detach()
    best_ratio = max(best_ratio, float(exact.value_grad(z_best, R).norm() / exact.trajectory_entropy(z_best, HORIZON)))
print(f"largest ||grad V|| / H found: {best_ratio:.3f} (random policies: {max(ratios):.3f}; bound 2)")
assert 0.4 < best_ratio < 1.0

# %% [markdown]
# ### Exercise 5
#
# <details><summary>Solution</summary>
#
# Yes, somewhat. With 64 samples per step the full bonus at $m = 1$ ends closer to its closed-form optimum
# (mean $V$ about 0.56 against 0.69 with 16 samples, optimum about 0.37), though still well above it. The entropy
# term of the update is estimated from the sampled sequences, and with few samples the run keeps drifting toward
# the sequences it already samples (a sampling-driven collapse that the exact gradient does not have); more
# samples per step weaken that drift, and the policy spreads more of its mass as the Gibbs optimum does.
#
# </details>

# %%
import dataclasses  # noqa: E402

bonus_m1 = [seed for seed, m, name in runs if (m, name) == (1, "entropy bonus")]
big_cfg = dataclasses.replace(tree_cfg, group_size=64)
big_layout = make_tree_layout(big_cfg, [(seed, 1) for seed in bonus_m1])
big = train_trap_tree(big_cfg, big_layout, bonus_m1, [controls["entropy bonus"]] * len(bonus_m1))
target = predicted[1, "entropy bonus"]
gap16 = float(np.abs(final[1, "entropy bonus"] - target).mean())
gap64 = float(np.abs(big.value[-1].numpy() - target).mean())
print(f"full bonus, m = 1: mean V at the end with G = 16: {final[1, 'entropy bonus'].mean():.3f}, with G = 64: "
      f"{big.value[-1].mean():.3f}; closed-form optimum {target:.3f}")
assert gap64 < gap16 and gap64 > 0.05, "closer to the optimum, but not at it"

