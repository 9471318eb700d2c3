"""AEntGRPOTrainer: TRL's ``GRPOTrainer`` with aent's entropy control as its loss.

TRL's trainer keeps everything around the loss (generation with transformers or vLLM, rewards, group advantages,
accelerate / DeepSpeed / FSDP, PEFT, logging, checkpoints); this subclass replaces one hook, ``_compute_loss``
(what ``GRPOTrainer.compute_loss`` calls for every micro-batch), with :meth:`aent.EntropyControl.loss`:

    loss = aggregate(w_t * PPO-clip_t) - lambda * agg_H(H~_t)   (+ EntroPIC's term),  normalised as TRL's loss_type

with the clamped entropy H~ of AEnt (arXiv 2509.03493) or the full entropy, as the method says, and every method of
:data:`aent.METHODS`. Configuration is :class:`aent.integrations.trl_config.AEntGRPOConfig` (TRL's ``GRPOConfig``
plus ``aent_*`` fields; clip range and loss aggregation are TRL's). The coefficient controller is stepped once per
optimizer step (at TRL's gradient-sync boundary) with the token-mean entropies of that step's micro-batches, summed
over processes; its state is saved into and restored from every TRL checkpoint (``aent_entropy_control.json``).

Normalisation, per ``loss_type``, equal to stock TRL's (tested against it at gradient accumulation 2): "grpo"
(seq-mean-token-mean), "bnpo" (token-mean of the micro-batch) and "dr_grpo" (token sum / (B * max_completion_length))
are divided by the accumulation steps; "dapo" divides the micro-batch's token sum by TRL's window normaliser
(``num_items_in_batch`` / processes * accumulation / steps_per_generation), written as aent's
"seq-mean-token-sum-norm" with C = normaliser / (B * accumulation). The entropy term is a token mean of the
micro-batch divided by the accumulation steps, as TRL's own ``entropy_coef`` bonus (``aent_entropy_agg`` changes it).

How the loss gets its per-token terms, without the logits: TRL 1.16 runs the policy with a fused LM head that
returns log-probs and the full entropy, never the logits, and has no clamped entropy (it needs a selection over each
row, which TRL's one-pass vocabulary-tiled kernel cannot hold). So the adapter adds one more mode to the forward
(:mod:`aent.integrations._trl_head`): the last hidden states of the completion positions and the LM-head weight,
which :meth:`aent.EntropyControl.loss` turns into log-probs, entropies and clamped entropies in token chunks (no
(tokens x V) tensor): with :func:`aent.chunked_policy_loss` (gradient formed in forward) for methods whose loss
is a sum of per-token terms, :func:`aent.chunked_policy_terms` (logits recomputed in backward) for the others.
Heads it cannot reproduce (bias, logit scale, soft-capping) and sharded weights (FSDP, DeepSpeed) keep the
materialised path (the ordinary forward with ``logits_to_keep``, one micro-batch's (B, Tc, V) logits), with a
warning.
``cast_lm_head_to_fp32`` is honoured on both paths (fp32 head matmul, as TRL's); the model inputs TRL passes for
vision-language models (``pixel_values``, ``image_grid_thw``, ``token_type_ids``, ...) go to the forward as TRL
gives them.

Metrics: TRL's names where TRL logs the same quantity (``entropy``, ``entropy_coef``, ``policy_loss``,
``clip_ratio/*``), aent's own beside them (``clamped_entropy``, ``sampled_entropy``, ``entropy_loss``,
``approx_kl`` and the method's). The three entropies are logged once per optimizer step: the token means over the
step's micro-batches and processes that the controller received.

Refused at construction (one clear error): loss types other than the four PPO-clip ones, ``beta != 0``,
``importance_sampling_level="sequence"``, ``delta``, ``off_policy_mask_threshold``, vLLM's importance-sampling
correction, TRL's own entropy bonus / adaptive entropy / top-entropy quantile, MoE router auxiliary losses
(docs/integrations/trl.md says why for each).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import Any

import torch

from aent.chunked import chunked_policy_terms
from aent.config import EntropyConfig
from aent.entropy import token_logprobs
from aent.integrations._trl_head import add_hidden_head, head_unsupported
from aent.integrations.trl_config import AEntGRPOConfig, check_grpo_args
from aent.regularizer import EntropyControl

try:
    from trl import GRPOConfig, GRPOTrainer
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "aent.integrations.trl needs TRL (trl >= 1.8): pip install 'aent[trl]' or pip install 'trl>=1.8'"
    ) from err

__all__ = ["MODEL_INPUTS", "STATE_FILE", "AEntGRPOConfig", "AEntGRPOTrainer", "check_grpo_args"]

STATE_FILE = "aent_entropy_control.json"
MODEL_INPUTS = ("pixel_values", "image_grid_thw", "pixel_attention_mask", "spatial_shapes", "image_sizes",
                "token_type_ids", "mm_token_type_ids", "image_position_ids")
"""Extra model inputs TRL 1.16 puts in a micro-batch (vision-language models); passed to the forward as given."""
# Token-weighted sums carried over the micro-batches of one optimizer step: the controllers' inputs.
_WINDOW = ("entropy", "clamped_entropy", "sampled_entropy")
_OWN = ("entropy_loss", "approx_kl", "cov_frac", "top_entropy_frac", "pic_frac", "pi_alpha")


def _resolve_config(args: Any, entropy_config: EntropyConfig | None) -> EntropyConfig:
    """The EntropyConfig of a trainer built with ``args`` (and the deprecated ``entropy_config=``)."""
    if isinstance(args, AEntGRPOConfig):
        if entropy_config is not None:
            raise ValueError("AEntGRPOTrainer: give the entropy control once, as the aent_* fields of "
                             "AEntGRPOConfig; drop entropy_config=")
        return args.entropy_config()
    if not isinstance(args, GRPOConfig):
        raise ValueError("AEntGRPOTrainer needs args=AEntGRPOConfig(...) (trl.GRPOConfig plus the aent_* fields), "
                         f"got {type(args).__name__}")
    if entropy_config is None:
        raise ValueError("AEntGRPOTrainer: a plain GRPOConfig names no entropy control and there is no default; "
                         "use AEntGRPOConfig(..., aent_preset='aent') (the AEnt paper's Qwen2.5-Math-1.5B setting) "
                         "or aent_method plus the constants `aent calibrate` proposes for your model")
    warnings.warn("AEntGRPOTrainer(args=GRPOConfig(...), entropy_config=...) is deprecated: use "
                  "args=AEntGRPOConfig(..., aent_preset=... or aent_<field>=...), which takes the clip range and loss "
                  "aggregation from TRL's fields instead of stating them twice", FutureWarning, stacklevel=3)
    return entropy_config


@contextlib.contextmanager
def _config_for_call(control: EntropyControl, cfg: EntropyConfig):
    """Run one loss call of ``control`` with ``cfg`` (a normalisation constant of this micro-batch)."""
    saved, control.cfg = control.cfg, cfg
    try:
        yield control
    finally:
        control.cfg = saved


class AEntGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` whose loss is :meth:`aent.EntropyControl.loss` (any method of :data:`aent.METHODS`).

    Args:
        *args, **kwargs: those of ``trl.GRPOTrainer`` (model, reward_funcs, args, train_dataset, ...); ``args`` is an
            :class:`AEntGRPOConfig`.
        entropy_config: deprecated (a plain ``GRPOConfig`` plus an :class:`aent.EntropyConfig`, checked to agree).

    Attributes:
        entropy_control: the :class:`aent.EntropyControl` (controller state; saved with every checkpoint).
    """

    def __init__(self, *args: Any, entropy_config: EntropyConfig | None = None, **kwargs: Any) -> None:
        grpo_args = kwargs.get("args", args[2] if len(args) > 2 else None)
        cfg = check_grpo_args(grpo_args, _resolve_config(grpo_args, entropy_config))
        super().__init__(*args, **kwargs)
        if self.aux_loss_enabled:
            raise ValueError("AEntGRPOTrainer: MoE router auxiliary losses are not supported; set the model's "
                             "router_aux_loss_coef to 0")
        self.entropy_control = EntropyControl(cfg)
        self._aent_window: torch.Tensor | None = None
        self.aent_head = self._choose_head()

    def _choose_head(self) -> str:
        """"chunked" (hidden states + LM-head weight, no logits) where it reproduces the model's head, else "logits"."""
        from accelerate.utils import is_peft_model

        policy = self.model.get_base_model() if is_peft_model(self.model) else self.model
        reason = head_unsupported(policy)
        if reason is None and (self.is_fsdp_enabled or self.is_deepspeed_enabled):
            reason = "FSDP / DeepSpeed shard the LM-head weight, which the chunked path reads directly"
        if reason is not None:
            warnings.warn(f"AEntGRPOTrainer materialises each micro-batch's (B, T, V) logits: {reason}",
                          stacklevel=3)
            return "logits"
        add_hidden_head(policy)
        return "chunked"

    # ------------------------------------------------------------------------------------------------ loss
    @staticmethod
    def _model_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
        """[prompt | completion] ids and attention mask, (B, Tp + Tc), plus the extra inputs TRL passes (VLMs)."""
        return {"input_ids": torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1),
                "attention_mask": torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
                **{k: inputs[k] for k in MODEL_INPUTS if inputs.get(k) is not None}}

    def _completion_logits(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        """(B, Tc, V) logits scoring each completion token (raw: the temperature is applied by aent)."""
        tc = inputs["completion_ids"].size(1)
        with self.accelerator.autocast():
            out = model(**self._model_inputs(inputs), logits_to_keep=tc + 1, use_cache=False)
        return out.logits[:, :-1]  # position Tp - 1 + j scores completion token j: (B, Tc, V)

    def _policy_source(self, model, inputs: dict[str, Any], mask: torch.Tensor):
        """What the loss reads (logits, or hidden + lm_head_weight), the autocast context to run it in, and the detached
        log pi_theta of the sampled tokens (TRL's clip metrics; pi_old when on-policy), from one forward."""
        actions = inputs["completion_ids"]
        if self.aent_head == "logits":
            logits = self._completion_logits(model, inputs)
            with torch.no_grad():
                logp = token_logprobs(logits.detach(), actions, self.temperature,
                                      chunk_size=self.entropy_control.cfg.chunk_size)
            return {"logits": logits}, contextlib.nullcontext, logp
        with self.accelerator.autocast():
            out = model(**self._model_inputs(inputs), aent_hidden=actions.size(1))
        hidden, weight = out.hidden, out.lm_head_weight  # (B, Tc, d), (V, d)
        if self.args.cast_lm_head_to_fp32:  # TRL's fp32 head: fp32 matmul outside autocast
            hidden, autocast = hidden.float(), contextlib.nullcontext
        else:
            autocast = self.accelerator.autocast
        valid = mask != 0
        with torch.no_grad(), autocast():  # the same kernel as the loss's, so an on-policy ratio is 1
            lp = chunked_policy_terms(hidden.detach()[valid], weight.detach(), actions[valid],
                                      temperature=self.temperature, chunk_size=self.entropy_control.cfg.chunk_size).logp
        logp = torch.zeros(valid.shape, dtype=lp.dtype, device=lp.device).masked_scatter(valid, lp)
        return {"hidden": hidden, "lm_head_weight": weight}, autocast, logp

    def _call_config(self, inputs: dict[str, Any], batch: int, accumulation: float, mode: str) -> EntropyConfig:
        """The config of this call: for "dapo", TRL's window normaliser as a seq-mean-token-sum-norm constant."""
        cfg = self.entropy_control.cfg
        if self.loss_type != "dapo":
            return cfg
        # TRL 1.16 _compute_loss: num_items_in_batch (the generation batch's tokens, all processes) per window
        normaliser = max(float(inputs["num_items_in_batch"]), 1.0) / self.accelerator.num_processes
        if mode == "train":
            normaliser = normaliser * self.current_gradient_accumulation_steps / self.args.steps_per_generation
        # sum(m * l) / normaliser = [sum(m * l) / (B * C)] / accumulation  with  C = normaliser / (B * accumulation)
        return cfg.replace(loss_agg="seq-mean-token-sum-norm", norm_const=normaliser / (batch * accumulation))

    def _compute_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        mode = "train" if self.model.training else "eval"
        completion_ids = inputs["completion_ids"]
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        source, autocast, logp = self._policy_source(model, inputs, mask)
        old = inputs.get("old_per_token_logps")
        old = logp if old is None else old  # on-policy (one iteration, no vLLM): pi_old = pi_theta, ratio 1
        adv = inputs["advantages"]
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        cfg = self._call_config(inputs, completion_ids.size(0), accumulation, mode)
        with _config_for_call(self.entropy_control, cfg) as control, autocast():
            out = control.loss(**source, actions=completion_ids, old_logp=old, adv=adv, mask=mask,
                               temperature=self.temperature)
        self._aent_log(mode, out.metrics, mask, accumulation)
        self._trl_clip_metrics(mode, logp, old, adv, mask)
        return out.loss / accumulation

    # --------------------------------------------------------------------------------- controller, metrics
    def _aent_log(self, mode: str, metrics: dict[str, float], mask: torch.Tensor, accumulation: float) -> None:
        """Log this micro-batch's metrics; at the optimizer-step boundary, step the controller on the window."""
        log = self._metrics[mode]
        # TRL logs "policy_loss" as the value it divides by the accumulation ("dapo": already normalised per window)
        log["policy_loss"].append(metrics["policy_loss"] / (accumulation if self.loss_type == "dapo" else 1.0))
        for k in _OWN:
            if k in metrics:
                log[k].append(metrics[k])
        if self.entropy_control.spec.weight_metric == "pos_weight":
            log["pos_weight"].append(metrics["pos_weight"])
        n = mask.sum().float()
        local = torch.stack([n * metrics[k] for k in _WINDOW] + [n]).detach()  # token-weighted sums, count
        totals = self.accelerator.reduce(local, reduction="sum")
        if mode != "train":  # evaluation never moves a controller: this call's token means
            for i, k in enumerate(_WINDOW):
                log[k].append(float(totals[i]) / float(totals[-1].clamp(min=1.0)))
            return
        self._aent_window = totals if self._aent_window is None else self._aent_window + totals
        if self.accelerator.sync_gradients:  # last micro-batch of this optimizer step
            w = self._aent_window
            stats = {k: float(w[i]) / float(w[-1].clamp(min=1.0)) for i, k in enumerate(_WINDOW)}
            log["entropy_coef"].append(self.entropy_control.ent_coef)  # the lambda this step ran with
            for k, v in stats.items():
                log[k].append(v)  # exactly what the controller receives
            self.entropy_control.step_end(stats)
            self._aent_window = None

    def _trl_clip_metrics(self, mode: str, logp, old, adv, mask) -> None:
        """TRL 1.16's ``clip_ratio/*`` metrics, computed as TRL's ``_compute_loss`` does (token-level ratio)."""
        from trl.trainer.utils import nanmax, nanmin

        adv = adv.unsqueeze(1) if adv.dim() == 1 else adv
        ratio = torch.exp(logp - old)
        cfg = self.entropy_control.cfg
        low = ((ratio < 1 - cfg.eps_low) & (adv < 0)).float()
        high = ((ratio > 1 + cfg.eps_high) & (adv > 0)).float()
        m = mask.float()

        def global_mean(x):
            totals = self.accelerator.reduce(torch.stack([(x * m).sum(), m.sum()]), reduction="sum")
            return (totals[0] / totals[1].clamp(min=1.0)).item()

        log = self._metrics[mode]
        log["clip_ratio/low_mean"].append(global_mean(low))
        log["clip_ratio/high_mean"].append(global_mean(high))
        log["clip_ratio/region_mean"].append(global_mean(torch.maximum(low, high)))
        log["clip_ratio/low_min"].append(nanmin(self.accelerator.gather((low * m).sum(-1) / m.sum(-1))).item())
        log["clip_ratio/high_max"].append(nanmax(self.accelerator.gather((high * m).sum(-1) / m.sum(-1))).item())

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
