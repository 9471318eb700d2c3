"""EntropyControl: the one object toy/ and llm/ call to get the policy loss with entropy control.

Usage (per micro-batch, then once per global step)::

    ctrl = EntropyControl(EntropyConfig.aent_paper())
    out = ctrl.loss(logits=logits, actions=actions, old_logp=old_logp, adv=adv, mask=mask, temperature=T)
    out.loss.backward()                         # out.metrics: policy_loss, entropy, clamped_entropy, ...
    # or, without the (B, T, V) logits: ctrl.loss(hidden=h, lm_head_weight=lm_head.weight, actions=..., ...)
    ...
    ctrl.step_end({"entropy": h, "clamped_entropy": h_clamped,   # token means over the step's updates
                   "sampled_entropy": h_sampled})               # -mean log pi_old (out.metrics["sampled_entropy"])

What a method is (its entropy kind, controllers, driving signal) comes from the registry
:data:`aent.methods.METHOD_SPECS`; only the per-token loss changes of entropic, pos_reweight, clip_cov, kl_cov and
top_entropy are branches of :meth:`EntropyControl.loss`.

The loss is  aggregate(w_t * l_t) - lambda * agg_H(H_t)  with l_t the PPO-clip loss (:func:`aent.ppo_clip_loss`),
w_t the method's token weights / masks, ``aggregate`` the configured ``loss_agg`` mode, and H_t the full entropy
(entropy_bonus, sac, threshold) or the clamped entropy with ``clamp_p`` (clamped_bonus, aent). ``agg_H`` is
``entropy_agg``: a token mean over valid tokens by default (as in TRL, so lambda means the same in every mode), or
"loss_agg", the policy loss's mode (verl and the AEnt authors' code). EntroPIC adds alpha * L_pic
(:func:`aent.entropic_term`) with alpha from its PI controller, updated per micro-batch inside :meth:`loss`.
Both entropies are always measured (without gradient when not in the loss), the clamped one with ``cfg.clamp_p``.

Departures, each documented where it happens: KL-Cov uses the unclipped surrogate, as in the paper (Eq. 12); Clip-Cov
detaches (keeps the value, drops the gradient of) its tokens; top_entropy zeroes the loss of the other tokens but
keeps them in the denominator (arXiv 2506.01939 Eq. 6). Token selections run over the tokens of one call.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from aent.aggregate import aggregate_loss, aggregate_weights
from aent.chunked import chunked_policy_terms
from aent.config import EntropyConfig
from aent.covariance import clip_cov_mask, kl_cov_mask
from aent.entropic import entropic_term
from aent.entropy import clamped_entropy, entropy, masked_mean, token_logprobs
from aent.fused import chunked_policy_loss
from aent.methods import METHOD_SPECS
from aent.ppo import approx_kl, broadcast_adv, ppo_clip_loss
from aent.weights import advantage_sign_weights, top_entropy_mask

__all__ = ["BONUS_ENTROPY", "EntropyControl", "LossOutput"]

BONUS_ENTROPY: dict[str, str | None] = {m: None if s.entropy == "none" else s.entropy
                                        for m, s in METHOD_SPECS.items() if s.bonus_only}
"""The methods whose loss is (PPO surrogate) - lambda * H_kind, and the entropy each one regularises: "full"
(:func:`aent.entropy`), "clamped" (:func:`aent.clamped_entropy`) or None (no bonus). The other methods change
the loss in other ways (EntroPIC, re-weighting, Clip-Cov, KL-Cov, top-entropy masking). Read from the registry
(:data:`aent.methods.METHOD_SPECS`: ``entropy`` of the specs with ``bonus_only``)."""


def _scattered_terms(hidden: Tensor, weight: Tensor, actions: Tensor, mask: Tensor, temperature: float,
                     clamp_p: float, chunk_size: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """(logp, H, H~), each (B, T) float32 and 0 where mask == 0, from the valid tokens' hidden states only."""
    valid = mask != 0  # (B, T)
    terms = chunked_policy_terms(hidden[valid], weight, actions[valid], temperature=temperature, clamp=clamp_p,
                                 chunk_size=chunk_size)
    zeros = torch.zeros(valid.shape, dtype=terms.logp.dtype, device=hidden.device)
    return tuple(zeros.masked_scatter(valid, t) for t in terms)  # type: ignore[return-value]


class LossOutput(NamedTuple):
    """Scalar loss to backpropagate and float metrics of this call (shared metric names)."""

    loss: Tensor
    metrics: dict[str, float]


class EntropyControl:
    """Policy loss with the configured entropy control, and its per-global-step controller state.

    Args:
        cfg: an :class:`aent.EntropyConfig` (method and its settings).
    """

    def __init__(self, cfg: EntropyConfig) -> None:
        if not isinstance(cfg, EntropyConfig):
            raise ValueError(f"EntropyControl needs an aent.EntropyConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.spec = METHOD_SPECS[cfg.method]
        self.coef_ctrl = self.spec.coef(cfg)
        self.weight_ctrl = None if self.spec.weight is None else self.spec.weight(cfg)
        self.global_step = 0
        self._gen = torch.Generator().manual_seed(cfg.seed)

    # --------------------------------------------------------------------------------------- current values
    @property
    def ent_coef(self) -> float:
        """Coefficient lambda of the entropy term applied now (0 for methods without one)."""
        return float(self.coef_ctrl.value) if self.spec.entropy != "none" else 0.0

    @property
    def pos_weight(self) -> float:
        """Weight of positive-advantage tokens now: w+ (pos_reweight), else 1."""
        if self.spec.weight_metric == "pos_weight":
            return float(self.weight_ctrl.value)
        return 1.0

    def current(self) -> dict[str, float]:
        """Controller outputs now: ent_coef, pos_weight (and pi_alpha for entropic)."""
        out = {"ent_coef": self.ent_coef, "pos_weight": self.pos_weight}
        if self.spec.weight_metric == "pi_alpha":
            out["pi_alpha"] = float(self.weight_ctrl.value)
        return out

    # ------------------------------------------------------------------------------------------------- loss
    def loss(self, *, logits: Tensor | None = None, actions: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor,
             temperature: float = 1.0, hidden: Tensor | None = None,
             lm_head_weight: Tensor | None = None) -> LossOutput:
        """Policy loss with entropy control for one (micro-)batch, and its metrics.

        Give either ``logits`` (materialised: the reference path) or ``hidden`` and ``lm_head_weight`` (the (B, T, V)
        logits then never exist; same loss and metrics within float rounding). On the hidden-state path, a method
        whose loss is a sum of per-token terms (``MethodSpec.per_token``) gets its loss and gradient from
        :func:`aent.chunked_policy_loss` (gradient formed during the forward pass, logits computed once); the others
        (entropic, clip_cov, kl_cov, top_entropy: statistics over the call's tokens) from
        :func:`aent.chunked_policy_terms`. Both run over the valid tokens only.

        Args:
            logits: (B, T, V) logits of the response positions (fp32 / bf16), differentiable.
            hidden: (B, T, d) last hidden states (after the final norm) that score the response tokens.
            lm_head_weight: (V, d) LM-head weight (no bias), with ``hidden``.
            actions: (B, T) long sampled token ids.
            old_logp: (B, T) log pi_old(a_t) of the sampling policy.
            adv: (B,), (B, 1) or (B, T) advantages.
            mask: (B, T) {0, 1} valid response tokens.
            temperature: sampling temperature T > 0 (divides the logits everywhere).

        Returns:
            LossOutput(loss, metrics): scalar loss; metrics policy_loss, entropy_loss, entropy, clamped_entropy,
            sampled_entropy, ent_coef, clip_frac, approx_kl, pos_weight (+ pi_alpha and pic_frac for entropic,
            cov_frac for clip_cov / kl_cov, top_entropy_frac for top_entropy). entropy / clamped_entropy are token
            means over valid tokens; sampled_entropy is the token mean of -old_logp (the Monte-Carlo estimate of the
            sampling policy's entropy).

        For method entropic, a call with gradient enabled (a training call) first updates the PI controller with
        this call's token-mean entropy (EntroPIC updates alpha per micro-batch); a call without gradient does not.
        """
        cfg, m = self.cfg, self.cfg.method
        if (logits is None) == (hidden is None) or (hidden is None) != (lm_head_weight is None):
            raise ValueError("give either logits, or hidden and lm_head_weight (the chunked path), not both")
        source, name = (logits, "logits") if logits is not None else (hidden, "hidden")
        if not isinstance(source, Tensor) or source.dim() != 3:
            raise ValueError(f"{name} must be (B, T, {'V' if logits is not None else 'd'}), got "
                             f"{getattr(source, 'shape', type(source).__name__)}")
        bt = tuple(source.shape[:2])
        for name, x in (("actions", actions), ("old_logp", old_logp), ("mask", mask)):
            if not isinstance(x, Tensor) or tuple(x.shape) != bt:
                raise ValueError(f"{name} must have shape (B, T) = {bt}, got {getattr(x, 'shape', None)}")
        coef, fused = self.ent_coef, None
        full_in_loss = self.spec.entropy == "full" and coef != 0.0
        clamped_in_loss = self.spec.entropy == "clamped" and coef != 0.0
        if logits is not None:
            cfg.check_vocab(int(logits.shape[-1]))
            kw = {"chunk_size": cfg.chunk_size}
            logp = token_logprobs(logits, actions, temperature, **kw)
            with torch.set_grad_enabled(full_in_loss and torch.is_grad_enabled()):
                ent = entropy(logits, mask, temperature, **kw)
            with torch.set_grad_enabled(clamped_in_loss and torch.is_grad_enabled()):
                cent = clamped_entropy(logits, cfg.clamp_p, mask, temperature, **kw)
        elif self.spec.per_token:  # gradient formed in forward: 3 matmuls, logp / H / H~ come back detached
            cfg.check_vocab(int(lm_head_weight.shape[0]))
            fused, (logp, ent, cent) = self._fused_loss(hidden, lm_head_weight, actions, old_logp, adv, mask,
                                                        temperature)
        else:  # unused outputs of the chunked function get no gradient: nothing to switch off
            cfg.check_vocab(int(lm_head_weight.shape[0]))
            logp, ent, cent = _scattered_terms(hidden, lm_head_weight, actions, mask, temperature, cfg.clamp_p,
                                               cfg.chunk_size)
        a = broadcast_adv(adv, logp)
        old = old_logp.detach().to(torch.float32)
        extra: dict[str, Tensor] = {}

        if m == "kl_cov":  # arXiv 2505.22617 Eq. 12: no ratio clipping, |log ratio| penalty on top-cov tokens
            loss_tok, clipped = ppo_clip_loss(logp, old, a, eps_low=1.0, eps_high=math.inf)
            sel = kl_cov_mask(logp, a, mask, top_frac=cfg.kl_cov_frac)
            loss_tok = loss_tok + cfg.kl_cov_coef * sel * (logp - old).abs()
            extra["cov_frac"] = masked_mean(sel.float(), mask)
        else:
            loss_tok, clipped = ppo_clip_loss(logp, old, a, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                                              dual_clip=cfg.dual_clip)
        if m == "pos_reweight":
            loss_tok = loss_tok * advantage_sign_weights(a, pos_weight=self.weight_ctrl.value, neg_weight=1.0)
        elif m == "clip_cov":
            det = clip_cov_mask(logp, a, mask, clip_ratio=cfg.clip_cov_ratio, cov_lb=cfg.clip_cov_lb,
                                cov_ub=cfg.clip_cov_ub, generator=self._gen, exclude=clipped)
            loss_tok = torch.where(det, loss_tok.detach(), loss_tok)
            extra["cov_frac"] = masked_mean(det.float(), mask)
        elif m == "top_entropy":
            keep = top_entropy_mask(ent.detach(), mask, cfg.top_entropy_rho)
            loss_tok = loss_tok * keep
            extra["top_entropy_frac"] = masked_mean(keep.float(), mask)

        policy_loss = aggregate_loss(loss_tok, mask, cfg.loss_agg, norm_const=cfg.norm_const)
        h, h_clamped = masked_mean(ent, mask), masked_mean(cent, mask)
        ent_mode = cfg.loss_agg if cfg.entropy_agg == "loss_agg" else cfg.entropy_agg
        if full_in_loss or clamped_in_loss:
            entropy_loss = -coef * aggregate_loss(ent if full_in_loss else cent, mask, ent_mode,
                                                  norm_const=cfg.norm_const)
        else:
            entropy_loss = torch.zeros((), dtype=policy_loss.dtype, device=policy_loss.device)
        total = policy_loss + entropy_loss if fused is None else fused  # fused: the same sum, formed per chunk
        if m == "entropic":  # arXiv 2511.15248: alpha from this micro-batch's entropy, times L_pic
            if torch.is_grad_enabled() and logp.requires_grad:
                self.weight_ctrl.update(float(h.detach()))
            term, sel = entropic_term(logp, old, a, mask, cfg.pi_prob_threshold)
            total = total + self.weight_ctrl.value * term
            extra["pic_frac"] = masked_mean(sel.float(), mask)

        with torch.no_grad():
            names = ["policy_loss", "entropy_loss", "entropy", "clamped_entropy", "sampled_entropy", "clip_frac",
                     "approx_kl", *extra]
            vals = [policy_loss, entropy_loss, h, h_clamped, masked_mean(-old, mask),
                    masked_mean(clipped.float(), mask), masked_mean(approx_kl(logp, old), mask), *extra.values()]
            metrics = dict(zip(names, torch.stack([v.detach().float().reshape(()) for v in vals]).tolist()))
        metrics.update(self.current())
        return LossOutput(total, metrics)

    def _fused_loss(self, hidden: Tensor, weight: Tensor, actions: Tensor, old_logp: Tensor, adv: Tensor,
                    mask: Tensor, temperature: float) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """Loss of a per-token method by :func:`aent.chunked_policy_loss`, and the detached (B, T) logp, H, H~.

        The loss is sum_t [w_t l_t - lambda v_t H_t]: l_t the PPO-clip loss (times w+ of pos_reweight), w and v
        the per-token weights of ``loss_agg`` and of the entropy term's mode (:func:`aent.aggregate_weights`).
        """
        cfg, valid = self.cfg, mask != 0  # (B, T)
        old = old_logp.detach().to(torch.float32)[valid]  # (n,)
        a = broadcast_adv(adv, old_logp).expand(valid.shape)[valid]  # (n,)
        w = aggregate_weights(mask, cfg.loss_agg, norm_const=cfg.norm_const)[valid]  # (n,)
        if cfg.method == "pos_reweight":
            w = w * advantage_sign_weights(a, pos_weight=self.weight_ctrl.value, neg_weight=1.0)
        kind = self.spec.entropy if self.ent_coef != 0.0 else "none"
        ent_mode = cfg.loss_agg if cfg.entropy_agg == "loss_agg" else cfg.entropy_agg
        v = -self.ent_coef * aggregate_weights(mask, ent_mode, norm_const=cfg.norm_const)[valid]  # (n,)

        def token_loss(logp: Tensor, ent: Tensor, cent: Tensor, rows: slice) -> Tensor:
            l_tok = ppo_clip_loss(logp[None], old[None, rows], a[None, rows], eps_low=cfg.eps_low,
                                  eps_high=cfg.eps_high, dual_clip=cfg.dual_clip)[0][0]  # (c,)
            if kind == "none":
                return w[rows] * l_tok
            return w[rows] * l_tok + v[rows] * (ent if kind == "full" else cent)

        out = chunked_policy_loss(hidden[valid], weight, actions[valid], token_loss, temperature=temperature,
                                  clamp=cfg.clamp_p, chunk_size=cfg.chunk_size)
        zeros = torch.zeros(valid.shape, dtype=out.terms.logp.dtype, device=hidden.device)
        return out.loss, tuple(zeros.masked_scatter(valid, t) for t in out.terms)  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------- per global step
    def step_end(self, stats: dict[str, float]) -> dict[str, float]:
        """Update the controller(s) once per global step from the step's token-mean entropies.

        AEnt is driven by ``stats["clamped_entropy"]``; threshold by ``stats["sampled_entropy"]`` (-mean log
        pi_old, as Skywork-OR1 and TRL; required, with no fallback: a caller with exact entropies, such as the toy's
        enumeration, passes them under that key explicitly); sac and pos_reweight by ``stats["entropy"]``;
        entropic's controller moves per micro-batch in :meth:`loss`, so here it, like the other methods, only
        counts the step.

        Args:
            stats: {"entropy": H, "clamped_entropy": H~, "sampled_entropy": -mean log pi_old} token means over
                the step's updates (floats; "sampled_entropy" needed by threshold only).

        Returns:
            {"ent_coef", "pos_weight" (, "pi_alpha")}: the values the next step will use.
        """
        key = self.spec.signal
        if not isinstance(stats, dict) or key not in stats:
            raise ValueError(f"step_end needs stats[{key!r}] (token-mean {key} of the step) for method "
                             f"{self.cfg.method}, got keys {sorted(stats) if isinstance(stats, dict) else stats!r}")
        value = float(stats[key])
        if not math.isfinite(value):
            raise ValueError(f"stats[{key!r}] must be finite, got {value!r}")
        self.coef_ctrl.update(value)
        if self.spec.weight_metric == "pos_weight":  # EntroPIC's alpha moves per micro-batch, in loss()
            self.weight_ctrl.update(value)
        self.global_step += 1
        return self.current()

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Controller state, the global-step count and the Clip-Cov RNG (plain Python types)."""
        return {
            "method": self.cfg.method,
            "global_step": self.global_step,
            "coef": self.coef_ctrl.state_dict(),
            "weight": None if self.weight_ctrl is None else self.weight_ctrl.state_dict(),
            "rng": self._gen.get_state().tolist(),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the method must match this object's config."""
        if not isinstance(d, dict) or d.get("method") != self.cfg.method:
            got = d.get("method") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"state_dict is for method {got!r}, this EntropyControl runs {self.cfg.method!r}")
        self.coef_ctrl.load_state_dict(d["coef"])
        if self.weight_ctrl is not None:
            self.weight_ctrl.load_state_dict(d["weight"])
        self.global_step = int(d["global_step"])
        self._gen.set_state(torch.tensor(d["rng"], dtype=torch.uint8))
