"""Entropy dynamics of a softmax policy under one logit step: first-order prediction, exact change, error bounds.

Theory claim 5 of docs/toy/theory.md (derived in docs/derivations.md) (Cui et al., arXiv 2505.22617, Lemma 1; AEnt, arXiv 2509.03493, Sec. 4): for a softmax
pi = softmax(z) and a step z -> z + dz,

    Delta H = -Cov_{a~pi}(log pi(a), dz(a)) + R,   |R| <= 1/2 (1 + 2 log|A|) osc(dz)^2,

with osc(dz) = max_a dz(a) - min_a dz(a). (Along z + t dz, d^2H/dt^2 = -E_pi[(1 + log pi + H) (dz - E_pi dz)^2] and
E_pi|1 + log pi + H| <= 1 + 2H <= 1 + 2 log|A|; Taylor's theorem with the integral remainder gives the bound.)

The REINFORCE step on one sampled token a with advantage A, dz = lr A (e_a - pi) (the gradient of lr A log pi(a)),
then has first-order entropy change -lr A s(a) with the *entropy sensitivity*

    s(a) = g(a) - E_pi[g],   g(b) = pi(b) (log pi(b) + H).

E_pi[g] >= 0, s(mode) >= 0, and s(a) < 0 whenever pi(a) < e^-H. Hence positive-advantage updates on likely
tokens lower the entropy, and on rare tokens raise it. Clipping removes token updates: removing a rare token's
negative-advantage update (clip-low) raises the entropy, removing its positive-advantage update (clip-high) lowers
it, per update and to first order (docs/toy/theory.md, claim 5). Where the entropy ends over many steps is a
separate, empirical question (toy.experiments.clipping).

Functions act on the last axis: logits of shape (..., A) are independent softmax states. All float64.
Tree version: :func:`trajectory_entropy_change` gives -Cov_{y~P}(log P(y), d log P(y)) for tabular tree logits.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from toy.exact_tree import check_logits, level_starts, sequence_logprobs

__all__ = [
    "clip_masks",
    "entropy_sensitivity",
    "exact_entropy_change",
    "ppo_token_step",
    "predicted_entropy_change",
    "second_order_bound",
    "softmax_entropy",
    "token_step",
    "trajectory_entropy_change",
    "trajectory_first_order_bound",
]

F64 = torch.float64


def _pair(logits: Tensor, delta: Tensor) -> tuple[Tensor, Tensor]:
    z, d = torch.as_tensor(logits, dtype=F64), torch.as_tensor(delta, dtype=F64)
    if z.dim() < 1 or z.shape != d.shape:
        raise ValueError(f"logits and delta must have the same shape (..., A), got {tuple(z.shape)} and "
                         f"{tuple(d.shape)}")
    if not (bool(torch.isfinite(z).all()) and bool(torch.isfinite(d).all())):
        raise ValueError("logits and delta must be finite")
    return z, d


def softmax_entropy(logits: Tensor) -> Tensor:
    """H(softmax(z)) in nats per row, (...) float64."""
    logp = torch.log_softmax(torch.as_tensor(logits, dtype=F64), -1)
    return -(logp.exp() * logp).sum(-1)


def predicted_entropy_change(logits: Tensor, delta: Tensor) -> Tensor:
    """First-order entropy change -Cov_{a~pi}(log pi(a), dz(a)) per row (Cui et al., arXiv 2505.22617, Lemma 1).

    Args:
        logits: (..., A) logits z.
        delta: (..., A) logit step dz.

    Returns:
        (...) float64; equals the directional derivative of H at z along dz.
    """
    z, d = _pair(logits, delta)
    logp = torch.log_softmax(z, -1)
    pi = logp.exp()
    centred = logp - (pi * logp).sum(-1, keepdim=True)
    return -(pi * centred * d).sum(-1)


def exact_entropy_change(logits: Tensor, delta: Tensor) -> Tensor:
    """H(softmax(z + dz)) - H(softmax(z)) per row, (...) float64."""
    z, d = _pair(logits, delta)
    return softmax_entropy(z + d) - softmax_entropy(z)


def second_order_bound(logits: Tensor, delta: Tensor) -> Tensor:
    """Bound 1/2 (1 + 2 log A) osc(dz)^2 on |exact - predicted| entropy change per row, (...) float64."""
    z, d = _pair(logits, delta)
    osc = d.amax(-1) - d.amin(-1)
    return 0.5 * (1.0 + 2.0 * math.log(z.shape[-1])) * osc**2


def entropy_sensitivity(logits: Tensor) -> Tensor:
    """s(a) = g(a) - E_pi[g], g(b) = pi(b) (log pi(b) + H), per token, (..., A) float64.

    The first-order entropy change of the single-token step ``token_step(z, a, adv, lr)`` is -lr adv s(a).
    s(a) >= 0 for the most likely token; s(a) < 0 whenever pi(a) < exp(-H).
    """
    logp = torch.log_softmax(torch.as_tensor(logits, dtype=F64), -1)
    pi = logp.exp()
    ent = -(pi * logp).sum(-1, keepdim=True)
    g = pi * (logp + ent)
    return g - (pi * g).sum(-1, keepdim=True)


def token_step(logits: Tensor, token: Tensor | int, adv: Tensor | float, lr: float) -> Tensor:
    """Logit step dz = lr adv (e_a - pi) of one REINFORCE update on token a (gradient of lr adv log pi(a)).

    Args:
        logits: (..., A) logits.
        token: token index a, int or (...) long tensor.
        adv: advantage A, float or (...) tensor.
        lr: step size.

    Returns:
        (..., A) float64 step.
    """
    z = torch.as_tensor(logits, dtype=F64)
    pi = torch.softmax(z, -1)
    tok = torch.as_tensor(token, dtype=torch.long).expand(z.shape[:-1])
    onehot = torch.nn.functional.one_hot(tok, z.shape[-1]).to(F64)
    scale = (lr * torch.as_tensor(adv, dtype=F64)).expand(z.shape[:-1])[..., None]
    return scale * (onehot - pi)


def clip_masks(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> tuple[Tensor, Tensor]:
    """Tokens whose PPO-clip gradient is zero: clip-low (A < 0, ratio < 1 - eps_low), clip-high (A > 0, ratio >
    1 + eps_high) (Schulman et al. 2017, Eq. 7; DAPO's asymmetric eps_low / eps_high)."""
    ratio, adv = torch.as_tensor(ratio, dtype=F64), torch.as_tensor(adv, dtype=F64)
    return (adv < 0) & (ratio < 1.0 - eps_low), (adv > 0) & (ratio > 1.0 + eps_high)


def ppo_token_step(logits: Tensor, old_logits: Tensor, tokens: Tensor, adv: Tensor, lr: float, eps_low: float,
                   eps_high: float) -> dict[str, Tensor]:
    """Gradient-ascent step on the PPO-clip surrogate of n sampled tokens of one softmax state, split by clipping.

    Surrogate (1/n) sum_i min(rho_i A_i, clip(rho_i, 1 - eps_low, 1 + eps_high) A_i), rho_i = pi(a_i)/pi_old(a_i);
    its gradient in z is (1/n) sum_i A_i rho_i (e_{a_i} - pi) for unclipped tokens and 0 for clipped ones.

    Args:
        logits: (A,) current logits z. old_logits: (A,) behaviour logits.
        tokens: (n,) sampled tokens. adv: (n,) advantages. lr: step size. eps_low, eps_high: clip ranges.

    Returns:
        dict with ``step`` (the clipped update, (A,)), ``unclipped`` (the update without clipping),
        ``removed_low`` / ``removed_high`` (the contributions the clip-low / clip-high masks removed, (A,)),
        ``clip_low`` / ``clip_high`` ((n,) bool masks) and ``ratio`` ((n,)).
    """
    z, z_old = torch.as_tensor(logits, dtype=F64), torch.as_tensor(old_logits, dtype=F64)
    tok, a = torch.as_tensor(tokens, dtype=torch.long), torch.as_tensor(adv, dtype=F64)
    if z.dim() != 1 or z_old.shape != z.shape or tok.dim() != 1 or a.shape != tok.shape:
        raise ValueError("logits/old_logits must be (A,), tokens/adv must be (n,)")
    ratio = torch.exp(torch.log_softmax(z, -1)[tok] - torch.log_softmax(z_old, -1)[tok])
    low, high = clip_masks(ratio, a, eps_low, eps_high)
    per_token = token_step(z.expand(len(tok), -1), tok, a * ratio, lr / len(tok))  # (n, A)
    keep = ~(low | high)
    return {
        "step": (per_token * keep[:, None]).sum(0), "unclipped": per_token.sum(0),
        "removed_low": (per_token * low[:, None]).sum(0), "removed_high": (per_token * high[:, None]).sum(0),
        "clip_low": low, "clip_high": high, "ratio": ratio,
    }


# -------------------------------------------------------------------------------------------------- trees
def _first_order_logp_change(z: Tensor, delta: Tensor, horizon: int) -> Tensor:
    """d log P(y) = sum_t [dz(s_t, y_t) - E_{pi(.|s_t)} dz(s_t, .)] for every sequence, (A**H,)."""
    vocab = z.shape[1]
    starts = level_starts(vocab, horizon)
    centred = delta - (torch.softmax(z, -1) * delta).sum(-1, keepdim=True)
    out = torch.zeros(1, dtype=F64)
    for t in range(horizon):
        out = (out[:, None] + centred[starts[t]:starts[t + 1]]).reshape(-1)
    return out


def trajectory_entropy_change(logits: Tensor, delta: Tensor, horizon: int) -> Tensor:
    """First-order change of the trajectory entropy, -Cov_{y~P}(log P(y), d log P(y)), scalar float64.

    The sequence-level form of claim 5 for tabular tree logits (n_states, A) and a step delta of the same shape;
    it equals the directional derivative <dH/dz, delta> (``toy.exact_tree.entropy_grad``).
    """
    z = check_logits(logits, horizon).detach()
    d = torch.as_tensor(delta, dtype=F64)
    if d.shape != z.shape:
        raise ValueError(f"delta must have the shape of logits {tuple(z.shape)}, got {tuple(d.shape)}")
    lp = sequence_logprobs(z, horizon)
    p = lp.exp()
    dlp = _first_order_logp_change(z, d, horizon)
    return -(p * (lp - (p * lp).sum()) * dlp).sum()


def trajectory_first_order_bound(logits: Tensor, delta: Tensor, horizon: int) -> Tensor:
    """Bound on |H(z + dz) - H(z) - trajectory_entropy_change| for tree logits, scalar float64.

    With P' = softmax over sequences of log P + D, D = log P' - log P the exact change and D1 its first-order
    part: |R| <= 1/2 (1 + 2 H log A) osc(D)^2 + 1/2 E_P|log P + H(P)| osc(D - D1). The first term is the
    single-softmax bound at the sequence level (log A**H = H log A), the second bounds -Cov(log P, D - D1).
    Both oscillations are computed by enumeration; D - D1 = O(|dz|^2) by Hoeffding's lemma.
    """
    z = check_logits(logits, horizon).detach()
    d = torch.as_tensor(delta, dtype=F64)
    lp, lp_new = sequence_logprobs(z, horizon), sequence_logprobs(z + d, horizon)
    big_d = lp_new - lp
    rest = big_d - _first_order_logp_change(z, d, horizon)
    p = lp.exp()
    ent = -(p * lp).sum()
    mad = (p * (lp + ent).abs()).sum()
    osc_d, osc_rest = big_d.max() - big_d.min(), rest.max() - rest.min()
    return 0.5 * (1 + 2 * horizon * math.log(z.shape[1])) * osc_d**2 + 0.5 * mad * osc_rest
