"""Every equation of docs/derivations.md, checked numerically against autograd and finite differences.

The references are independent of the project's code: entropies and sequence probabilities are written out
directly here (float64), derivatives come from ``torch.autograd`` or from central finite differences, and the
natural gradient is the pseudo-inverse of the Fisher matrix applied to the autograd gradient. The project's
batch statistic (``aent.token_covariance``) is checked against the closed-form covariance it estimates.
"""

from __future__ import annotations

import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

F64 = torch.float64


def _entropy(z: torch.Tensor) -> torch.Tensor:
    """H(softmax(z)) in nats, direct formula."""
    logp = torch.log_softmax(z, -1)
    return -(logp.exp() * logp).sum(-1)


def _cov(p: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cov_{a~p}(x(a), y(a)), direct formula."""
    return (p * (x - (p * x).sum()) * (y - (p * y).sum())).sum()


def _logits(seed: int, n: int, scale: float) -> torch.Tensor:
    return scale * torch.randn(n, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _fd(f, eps: float = 1e-5) -> float:
    """Central finite difference of t -> f(t) at t = 0."""
    return float((f(eps) - f(-eps)) / (2 * eps))


# (1) dH/dz_a = -pi_a (log pi_a + H)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 50), st.floats(0.1, 8.0))
def test_entropy_gradient_wrt_logits(seed, n, scale):
    """Closed form of the entropy's logit gradient equals autograd for any softmax."""
    z = _logits(seed, n, scale).requires_grad_(True)
    (grad,) = torch.autograd.grad(_entropy(z), z)
    p, logp = torch.softmax(z.detach(), -1), torch.log_softmax(z.detach(), -1)
    closed = -p * (logp + _entropy(z.detach()))
    assert torch.allclose(grad, closed, rtol=1e-10, atol=1e-12)
    assert abs(float(closed.sum())) < 1e-10  # a constant shift of z leaves H unchanged


# (2) dH ~= -Cov_pi(log pi, dz)
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 50), st.floats(0.1, 8.0))
def test_first_order_change_is_minus_covariance(seed, n, scale):
    """The directional derivative of H along dz (finite differences) is -Cov_pi(log pi, dz)."""
    z, dz = _logits(seed, n, scale), _logits(seed + 1, n, 1.0)
    p, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    fd = _fd(lambda t: _entropy(z + t * dz))
    assert abs(fd - float(-_cov(p, logp, dz))) < 1e-6 * (1 + abs(fd))


def test_first_order_error_is_second_order():
    """The gap between the exact change and -eps * Cov shrinks like eps**2 (halving eps quarters it)."""
    z, dz = _logits(3, 20, 2.0), _logits(4, 20, 1.0)
    p, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    gaps = [abs(float(_entropy(z + e * dz) - _entropy(z) + e * _cov(p, logp, dz))) for e in (1e-2, 5e-3)]
    assert 3.5 < gaps[0] / gaps[1] < 4.5


def _bandit(seed: int, n: int = 12):
    z = _logits(seed, n, 2.0)
    r = torch.rand(n, dtype=F64, generator=torch.Generator().manual_seed(seed + 7))
    return z, r


def _value(z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return (torch.softmax(z, -1) * r).sum()


# (3) exact gradient: dz = eta * pi * A, dH ~= -eta Cov(log pi, pi A)
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_exact_gradient_form(seed):
    """A plain gradient step on V moves H by -eta * Cov_pi(log pi, pi * (r - V)) to first order."""
    z, r = _bandit(seed)
    zg = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_value(zg, r), zg)
    p, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    adv = r - (p * r).sum()
    assert torch.allclose(g, p * adv, atol=1e-12)  # the policy gradient of a softmax bandit
    fd = _fd(lambda t: _entropy(z + t * g))
    assert abs(fd - float(-_cov(p, logp, p * adv))) < 1e-6


# (4) natural gradient: dz = eta * A (up to a constant), dH ~= -eta Cov(log pi, A)
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_natural_gradient_form(seed):
    """F^+ grad V equals the advantage up to a constant, and moves H by -eta * Cov_pi(log pi, A)."""
    z, r = _bandit(seed)
    zg = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_value(zg, r), zg)
    p, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    fisher = torch.diag(p) - torch.outer(p, p)  # E_pi[grad log pi grad log pi^T] for softmax logits
    nat = torch.linalg.pinv(fisher, hermitian=True) @ g
    adv = r - (p * r).sum()
    shift = nat - adv
    assert float(shift.max() - shift.min()) < 1e-6 * (1 + float(adv.abs().max()))  # nat = A + c * 1
    fd = _fd(lambda t: _entropy(z + t * nat))
    assert abs(fd - float(-_cov(p, logp, adv))) < 1e-6


# (5) single sampled token: dz = eta * A * (e_a - pi)
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(-2.0, 2.0))
def test_single_token_form(seed, a_value):
    """REINFORCE on one token a: dz = A grad log pi(a) = A (e_a - pi); dH ~= -A [g(a) - E_pi g]."""
    z, _ = _bandit(seed)
    a = seed % z.numel()
    zg = z.clone().requires_grad_(True)
    (score,) = torch.autograd.grad(torch.log_softmax(zg, -1)[a], zg)
    p, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    onehot = torch.zeros_like(p)
    onehot[a] = 1.0
    assert torch.allclose(score, onehot - p, atol=1e-12)
    g = p * (logp + _entropy(z))  # sensitivity g(b) = pi_b (log pi_b + H) = -dH/dz_b
    predicted = -a_value * float(g[a] - (p * g).sum())
    fd = _fd(lambda t: _entropy(z + t * a_value * score))
    assert abs(fd - predicted) < 1e-6
    assert abs(predicted - float(-a_value * _cov(p, logp, onehot - p))) < 1e-10


def test_single_token_steps_average_to_the_exact_gradient():
    """E_{a~pi}[A(a) (e_a - pi)] = pi * (A - E_pi A): sampled single-token steps average to the exact gradient."""
    z, r = _bandit(11)
    p = torch.softmax(z, -1)
    adv = r - (p * r).sum()
    eye = torch.eye(p.numel(), dtype=F64)
    mean_step = sum(p[a] * adv[a] * (eye[a] - p) for a in range(p.numel()))
    assert torch.allclose(mean_step, p * adv, atol=1e-14)


# (6) sequence level: dH(P) ~= -Cov_{y~P}(log P(y), d log P(y)), with the tabular delta(y)
VOCAB, HORIZON = 3, 3
PREFIXES = [()] + [pre for t in range(1, HORIZON) for pre in itertools.product(range(VOCAB), repeat=t)]
SEQS = list(itertools.product(range(VOCAB), repeat=HORIZON))
INDEX = {pre: i for i, pre in enumerate(PREFIXES)}


def _seq_logprob(logits: torch.Tensor) -> torch.Tensor:
    """log P(y) for every sequence y of the tree, by direct enumeration; logits (n_prefixes, VOCAB)."""
    logp = torch.log_softmax(logits, -1)
    return torch.stack([sum(logp[INDEX[y[:t]], y[t]] for t in range(HORIZON)) for y in SEQS])


def _seq_entropy(logits: torch.Tensor) -> torch.Tensor:
    lp = _seq_logprob(logits)
    return -(lp.exp() * lp).sum()


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.2, 4.0))
def test_sequence_level_form(seed, scale):
    """Trajectory entropy moves by -Cov_P(log P, delta), delta(y) = sum_t [dz(s_t, y_t) - E_pi dz(s_t, .)]."""
    gen = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(len(PREFIXES), VOCAB, dtype=F64, generator=gen)
    dz = torch.randn(len(PREFIXES), VOCAB, dtype=F64, generator=gen)
    pi = torch.softmax(logits, -1)
    centred = dz - (pi * dz).sum(-1, keepdim=True)
    delta = torch.stack([sum(centred[INDEX[y[:t]], y[t]] for t in range(HORIZON)) for y in SEQS])
    # delta is the directional derivative of log P(y) (autograd jvp), and the entropy moves by -Cov_P
    _, jvp = torch.autograd.functional.jvp(_seq_logprob, logits, dz)
    assert torch.allclose(jvp, delta, atol=1e-10)
    lp = _seq_logprob(logits)
    fd = _fd(lambda t: _seq_entropy(logits + t * dz))
    assert abs(fd - float(-_cov(lp.exp(), lp, delta))) < 1e-6 * (1 + abs(fd))


# (7) neural parameters: the general form holds, the tabular forms do not
def _mlp_logits(theta: torch.Tensor, x: torch.Tensor, hidden: int, vocab: int) -> torch.Tensor:
    """logits (S, V) of a one-hidden-layer network over S state features x (S, D); theta is flat."""
    d = x.shape[1]
    w1 = theta[: d * hidden].view(d, hidden)
    w2 = theta[d * hidden:].view(hidden, vocab)
    return torch.tanh(x @ w1) @ w2


def test_neural_parameters_general_form_holds_tabular_forms_do_not():
    """With shared parameters, dH = -sum_s w_s Cov_pi(log pi, d log pi) still holds (d log pi from the chain rule),
    but the tabular exact-gradient prediction -eta Cov(log pi, pi A), per state, misses the real change: a step on
    one state's gradient moves every state's logits through the shared weights."""
    gen = torch.Generator().manual_seed(0)
    n_states, d, hidden, vocab = 4, 3, 6, 5
    x = torch.randn(n_states, d, dtype=F64, generator=gen)
    theta = torch.randn(d * hidden + hidden * vocab, dtype=F64, generator=gen)
    r = torch.rand(n_states, vocab, dtype=F64, generator=gen)

    def mean_entropy(th):
        return _entropy(_mlp_logits(th, x, hidden, vocab)).mean()

    th = theta.clone().requires_grad_(True)
    value = (torch.softmax(_mlp_logits(th, x, hidden, vocab), -1) * r).sum(-1).mean()
    (step,) = torch.autograd.grad(value, th)  # gradient ascent direction on theta
    fd = _fd(lambda t: mean_entropy(theta + t * step))

    z = _mlp_logits(theta, x, hidden, vocab)
    _, dz = torch.autograd.functional.jvp(lambda th_: _mlp_logits(th_, x, hidden, vocab), theta, step)
    pi, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    general = float(torch.stack([-_cov(pi[s], logp[s], dz[s]) for s in range(n_states)]).mean())
    assert abs(fd - general) < 1e-6

    adv = r - (pi * r).sum(-1, keepdim=True)
    tabular = float(torch.stack([-_cov(pi[s], logp[s], pi[s] * adv[s]) / n_states for s in range(n_states)]).mean())
    assert abs(tabular - fd) > 0.2 * abs(fd), (tabular, fd)


# (8) the studies' statistic: a sampled, pooled proxy of -Cov_pi(log pi, A)
def test_batch_statistic_estimates_the_covariance_at_one_state():
    """At a single state, the batch mean of (log pi(y_i) - mean)(A_i - mean) over sampled tokens (aent's Eq. 10
    statistic) converges to Cov_pi(log pi, A), the natural-gradient form."""
    from aent import token_covariance

    z, r = _bandit(5, n=8)
    p, logp = torch.softmax(z, -1), torch.log_softmax(z, -1)
    adv = r - (p * r).sum()
    n = 200_000
    idx = torch.multinomial(p, n, replacement=True, generator=torch.Generator().manual_seed(0))
    cov_i = token_covariance(logp[idx].view(1, n).float(), adv[idx].view(1, n).float(), torch.ones(1, n))
    estimate = float(cov_i.double().mean())
    exact = float(_cov(p, logp, adv))
    assert abs(estimate - exact) < 0.02 * abs(exact) + 1e-3, (estimate, exact)


def test_pooling_states_adds_a_between_state_term():
    """Pooling tokens of two states into one batch covariance (as the studies do) is not the average of the
    per-state covariances: it adds the covariance of the state means (law of total covariance)."""
    p1, p2 = torch.tensor([0.9, 0.1], dtype=F64), torch.tensor([0.5, 0.5], dtype=F64)
    a1, a2 = torch.tensor([0.5, -1.0], dtype=F64), torch.tensor([1.0, -1.0], dtype=F64)
    # enumerate the pooled distribution: state 1 or 2 with probability 1/2, then a token
    w = torch.cat([p1, p2]) / 2
    lp = torch.cat([p1.log(), p2.log()])
    adv = torch.cat([a1, a2])
    pooled = float(_cov(w, lp, adv))
    within = float(_cov(p1, p1.log(), a1) + _cov(p2, p2.log(), a2)) / 2
    m_lp = torch.tensor([float((p1 * p1.log()).sum()), float((p2 * p2.log()).sum())], dtype=F64)
    m_a = torch.tensor([float((p1 * a1).sum()), float((p2 * a2).sum())], dtype=F64)
    between = float(_cov(torch.tensor([0.5, 0.5], dtype=F64), m_lp, m_a))
    assert abs(pooled - (within + between)) < 1e-12
    assert abs(between) > 0.01
