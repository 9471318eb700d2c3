"""AEntGRPOTrainer: TRL's ``GRPOTrainer`` with aent's entropy control as its loss.

TRL's trainer keeps everything around the loss (generation with transformers or vLLM, rewards, group advantages,
accelerate / DeepSpeed / FSDP, PEFT, logging, checkpoints); this subclass replaces one hook, ``_compute_loss``
(what ``GRPOTrainer.compute_loss`` calls for every micro-batch), with :meth:`aent.EntropyControl.loss`:

    loss = aggregate(w_t * PPO-clip_t) - lambda * agg_H(H~_t)   (+ EntroPIC's term),  divided by the accumulation

with the clamped entropy H~ of AEnt (arXiv 2509.03493) or the full entropy, as ``EntropyConfig.method`` says, and
every method of :data:`aent.METHODS` (positive-advantage weights, Clip-Cov / KL-Cov, top-entropy masking, EntroPIC,
SAC, threshold, AEnt). The coefficient controller is stepped once per optimizer step (at TRL's gradient-sync
boundary) with the token-mean entropies of that step's micro-batches, summed over processes; its state is saved
into and restored from every TRL checkpoint (``aent_entropy_control.json``).

How the loss gets its logits: TRL 1.16 runs the policy with a fused LM head that returns log-probs and the full
entropy, never the logits, and the clamped entropy needs the logits (which tokens are kept). So the policy is run
with its ordinary forward and ``logits_to_keep``: the (B, Tc, V) completion logits of one micro-batch exist at once
(micro-batch 4 x 3,072 tokens x 151,936 in bf16 is 3.7 GB), then aent's chunked kernels take over.

Which TRL settings the loss honours, and which it refuses (one clear error at construction), and why:

- ``loss_type`` must agree with ``EntropyConfig.loss_agg``: "grpo" = seq-mean-token-mean, "bnpo" and "dapo" =
  token-mean, "dr_grpo" = seq-mean-token-sum-norm (``norm_const`` defaults to ``max_completion_length``).
  Departure: "dapo" normalises by the tokens of the whole accumulation window in TRL, here by the micro-batch's
  tokens (then divided by the accumulation steps, as TRL does for "bnpo"); equal when micro-batches hold as many
  tokens. "cispo", "sapo", "vespo", "luspo" are other surrogates, not PPO-clip: refused.
- ``epsilon`` / ``epsilon_high`` must equal ``eps_low`` / ``eps_high`` (one clip range, stated once).
- Refused because the per-token loss of :class:`aent.EntropyControl` has no slot for them: ``beta != 0`` (KL to a
  reference; the AEnt paper runs without KL), ``importance_sampling_level="sequence"`` (GSPO), ``delta``
  (two-sided clip), ``off_policy_mask_threshold``, vLLM's truncated importance-sampling correction
  (``vllm_importance_sampling_correction`` must be False with ``use_vllm``), MoE router auxiliary losses.
- Refused because aent does it instead: ``entropy_coef != 0``, ``use_adaptive_entropy`` (use ``method`` "threshold"
  for TRL's rule), ``top_entropy_quantile < 1`` (use ``method="top_entropy"``).
- Token selections (Clip-Cov, KL-Cov, top-entropy) and EntroPIC's controller work over one micro-batch's tokens.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from aent.config import EntropyConfig
from aent.entropy import token_logprobs
from aent.regularizer import EntropyControl

try:
    from trl import GRPOTrainer
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "aent.integrations.trl needs TRL (trl >= 1.8): pip install 'aent[trl]' or pip install 'trl>=1.8'"
    ) from err

__all__ = ["STATE_FILE", "AEntGRPOTrainer", "check_grpo_args"]

STATE_FILE = "aent_entropy_control.json"
_LOSS_AGG = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean", "dapo": "token-mean",
             "dr_grpo": "seq-mean-token-sum-norm"}
# Token-weighted sums carried over the micro-batches of one optimizer step: the controllers' inputs.
_WINDOW = ("entropy", "clamped_entropy", "sampled_entropy")


def check_grpo_args(args: Any, cfg: EntropyConfig) -> EntropyConfig:
    """Check a ``trl.GRPOConfig`` against an :class:`aent.EntropyConfig`; return the config the loss will use.

    Args:
        args: the trainer's ``GRPOConfig``.
        cfg: the entropy control.

    Returns:
        ``cfg``, with ``norm_const = args.max_completion_length`` for loss_type "dr_grpo" when it was None.

    Raises:
        ValueError: one message naming the GRPOConfig field, its value and the fix (see the module docstring).
    """
    if not isinstance(cfg, EntropyConfig):
        raise ValueError(f"entropy_config must be an aent.EntropyConfig, got {type(cfg).__name__}")

    def refuse(field: str, value: Any, fix: str) -> None:
        raise ValueError(f"AEntGRPOTrainer: GRPOConfig.{field}={value!r} is not supported; {fix}")

    lt = args.loss_type
    if lt not in _LOSS_AGG:
        refuse("loss_type", lt, f"use one of {sorted(_LOSS_AGG)} (PPO-clip surrogates)")
    if _LOSS_AGG[lt] != cfg.loss_agg:
        refuse("loss_type", lt, f"it aggregates as {_LOSS_AGG[lt]!r} but EntropyConfig.loss_agg is "
                                f"{cfg.loss_agg!r}; make them agree ({_LOSS_AGG})")
    eps_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    if (args.epsilon, eps_high) != (cfg.eps_low, cfg.eps_high):
        refuse("epsilon/epsilon_high", (args.epsilon, eps_high),
               f"set them equal to EntropyConfig.eps_low/eps_high = {(cfg.eps_low, cfg.eps_high)}")
    for field, bad, fix in (
        ("beta", args.beta != 0.0, "set beta=0.0 (no KL to a reference policy, as in the AEnt paper)"),
        ("importance_sampling_level", args.importance_sampling_level != "token", "use 'token'"),
        ("delta", args.delta is not None, "set delta=None"),
        ("off_policy_mask_threshold", args.off_policy_mask_threshold is not None, "set it to None"),
        ("vllm_importance_sampling_correction", args.use_vllm and args.vllm_importance_sampling_correction,
         "set it to False (aent's per-token loss has no importance-sampling weight)"),
        ("entropy_coef", args.entropy_coef != 0.0, "set it to 0.0; the coefficient comes from entropy_config"),
        ("use_adaptive_entropy", args.use_adaptive_entropy, "set it to False; use EntropyConfig(method='threshold')"),
        ("top_entropy_quantile", args.top_entropy_quantile < 1.0,
         "set it to 1.0; use EntropyConfig(method='top_entropy', top_entropy_rho=...)"),
    ):
        if bad:
            refuse(field, getattr(args, field), fix)
    if lt == "dr_grpo" and cfg.norm_const is None:
        cfg = cfg.replace(norm_const=float(args.max_completion_length))
    return cfg


class AEntGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` whose loss is :meth:`aent.EntropyControl.loss` (any method of :data:`aent.METHODS`).

    Args:
        *args, **kwargs: those of ``trl.GRPOTrainer`` (model, reward_funcs, args, train_dataset, ...).
        entropy_config: the :class:`aent.EntropyConfig` (default ``EntropyConfig.aent_paper()``).

    Attributes:
        entropy_control: the :class:`aent.EntropyControl` (controller state; saved with every checkpoint).
    """

    def __init__(self, *args: Any, entropy_config: EntropyConfig | None = None, **kwargs: Any) -> None:
        from trl import GRPOConfig

        cfg = EntropyConfig.aent_paper() if entropy_config is None else entropy_config
        grpo_args = kwargs.get("args", args[2] if len(args) > 2 else None)
        if grpo_args is None:
            raise ValueError("AEntGRPOTrainer needs args= (a trl.GRPOConfig), so that its loss settings can be "
                             "checked against entropy_config")
        if not isinstance(grpo_args, GRPOConfig):
            raise ValueError(f"args must be a trl.GRPOConfig, got {type(grpo_args).__name__}")
        cfg = check_grpo_args(grpo_args, cfg)
        super().__init__(*args, **kwargs)
        if self.aux_loss_enabled:
            raise ValueError("AEntGRPOTrainer: MoE router auxiliary losses are not supported; set the model's "
                             "router_aux_loss_coef to 0")
        self.entropy_control = EntropyControl(cfg)
        self._aent_window: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------------ loss
    def _completion_logits(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        """(B, Tc, V) logits scoring each completion token (raw: the temperature is applied by aent)."""
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        tc = completion_ids.size(1)
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)  # (B, Tp + Tc)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        with self.accelerator.autocast():
            out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=tc + 1, use_cache=False)
        return out.logits[:, :-1]  # position Tp - 1 + j scores completion token j: (B, Tc, V)

    def _compute_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        mode = "train" if self.model.training else "eval"
        completion_ids = inputs["completion_ids"]
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        logits = self._completion_logits(model, inputs)
        old = inputs.get("old_per_token_logps")
        if old is None:  # on-policy (one iteration, no vLLM): pi_old = pi_theta, ratio 1
            with torch.no_grad():
                old = token_logprobs(logits.detach(), completion_ids, self.temperature,
                                     chunk_size=self.entropy_control.cfg.chunk_size)
        adv = inputs["advantages"]
        out = self.entropy_control.loss(logits=logits, actions=completion_ids, old_logp=old, adv=adv, mask=mask,
                                        temperature=self.temperature)
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        self._aent_log(mode, out.metrics, mask)
        return out.loss / accumulation

    # --------------------------------------------------------------------------------- controller, metrics
    def _aent_log(self, mode: str, metrics: dict[str, float], mask: torch.Tensor) -> None:
        n = mask.sum().float()
        local = torch.stack([n * metrics[k] for k in _WINDOW] + [n]).detach()  # token-weighted sums, count
        totals = self.accelerator.reduce(local, reduction="sum")
        count = float(totals[-1].clamp(min=1.0))
        for i, k in enumerate(_WINDOW):
            self._metrics[mode][k].append(float(totals[i]) / count)
        for k in ("policy_loss", "entropy_loss", "clip_frac", "approx_kl", "cov_frac", "top_entropy_frac",
                  "pic_frac", "pi_alpha", "pos_weight"):
            if k in metrics:
                self._metrics[mode][k].append(metrics[k])
        self._metrics[mode]["ent_coef"].append(metrics["ent_coef"])
        if mode != "train":
            return  # evaluation never moves a controller
        self._aent_window = totals if self._aent_window is None else self._aent_window + totals
        if self.accelerator.sync_gradients:  # last micro-batch of this optimizer step
            w = self._aent_window
            stats = {k: float(w[i]) / float(w[-1].clamp(min=1.0)) for i, k in enumerate(_WINDOW)}
            self.entropy_control.step_end(stats)
            self._aent_window = None

    # ------------------------------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            with open(os.path.join(folder, STATE_FILE), "w") as f:
                json.dump(self.entropy_control.state_dict(), f)

    def _load_optimizer_and_scheduler(self, checkpoint) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            self.load_entropy_state(checkpoint)

    def load_entropy_state(self, checkpoint: str | os.PathLike) -> None:
        """Restore :attr:`entropy_control` from a checkpoint folder written by this trainer (resume does it)."""
        path = os.path.join(checkpoint, STATE_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {checkpoint} has no {STATE_FILE}: it was not written by "
                                    "AEntGRPOTrainer, so the entropy controller cannot be restored")
        with open(path) as f:
            self.entropy_control.load_state_dict(json.load(f))
