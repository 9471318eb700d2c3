"""verl adapter: AEnt's clamped entropy in verl's actor, and its entropy coefficient driven by an aent controller.

Written against verl 0.9.0 (the engine-based workers, ``verl.workers.engine_workers``). :func:`install` patches,
in the process it runs in (every Ray worker, through :func:`setup_hook`):

1. **the entropy** (methods clamped_bonus, aent): ``verl.utils.torch_functional.entropy_from_logits`` and
   ``entropy_from_logits_with_chunking`` become :func:`aent.clamped_entropy` with ``EntropyConfig.clamp_p``. verl's
   engines compute the actor's per-token entropy through these two (the FSDP, automodel and torchtitan engines
   read ``verl_F.entropy_from_logits`` at call time, or bind it when the engine is built, after the hook ran),
   on logits already divided by the rollout temperature. verl then aggregates it with ``loss_agg_mode`` (the
   AEnt authors' choice, ``EntropyConfig.entropy_agg="loss_agg"``) and subtracts ``entropy_coeff`` times it.
   Not patched: the fused-kernel path (``use_fused_kernels=True`` returns the entropy from a Triton kernel that
   never materialises logits), so :func:`install` is meant for runs with ``use_fused_kernels=False``.
2. **the coefficient**: ``verl.workers.utils.losses.ppo_loss`` (the actor's loss, bound into each worker as
   ``partial(ppo_loss, config=actor_config)``) is wrapped: each micro-batch's loss runs with ``entropy_coeff`` =
   the controller's current value, and accumulates the token-weighted entropy of its response tokens.
   ``ActorRolloutRefWorker.update_actor`` (called once per global step on every actor rank) is wrapped: after
   the step's updates, the window sums are all-reduced over the ranks and the controller takes one
   :meth:`aent.EntropyControl.step_end` with the step's token-mean (clamped) entropy.
   Its state goes into the actor's checkpoint folder (``aent_entropy_control.json``) and comes back on resume.

Methods: entropy_bonus, clamped_bonus, aent, sac, threshold (threshold is driven by the measured entropy, since
the sampling log-probs' mean is not seen by the loss). Refused with one clear error: pos_reweight, entropic,
top_entropy (per-token weights outside verl's loss), clip_cov / kl_cov (verl has them natively:
``actor_rollout_ref.actor.policy_loss.loss_mode=clip_cov`` / ``kl_cov``).

The recipe (docs/integrations/verl.md): pass the config as JSON in the environment variable ``AENT_VERL_ENTROPY``
and register :func:`setup_hook` as Ray's ``worker_process_setup_hook``.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import torch

from aent.config import EntropyConfig
from aent.entropy import clamped_entropy
from aent.methods import METHOD_SPECS
from aent.regularizer import EntropyControl

__all__ = ["ENV_VAR", "STATE_FILE", "SUPPORTED", "VERL_TARGETS", "clamped_entropy_fn", "install", "setup_hook",
           "uninstall"]

ENV_VAR = "AENT_VERL_ENTROPY"
STATE_FILE = "aent_entropy_control.json"
SUPPORTED = tuple(m for m, s in METHOD_SPECS.items() if s.bonus_only and s.entropy != "none")
"""The registry's methods whose loss is verl's own PPO loss minus entropy_coeff times an entropy (full or clamped)."""
_CLAMPED = tuple(m for m in SUPPORTED if METHOD_SPECS[m].entropy == "clamped")
# (module, attribute) pairs install() replaces, as named in verl 0.9.0; the tests record their signatures.
VERL_TARGETS = (
    ("verl.utils.torch_functional", "entropy_from_logits"),
    ("verl.utils.torch_functional", "entropy_from_logits_with_chunking"),
    ("verl.workers.utils.losses", "ppo_loss"),
    ("verl.workers.engine_workers", "ppo_loss"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.update_actor"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.save_checkpoint"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.load_checkpoint"),
)

_state: dict[str, Any] = {}  # the installed control and the originals (one installation per process)


def clamped_entropy_fn(clamp_p: float, aent_chunk: int | None = None):
    """A drop-in for verl's ``entropy_from_logits(logits)`` / ``..._with_chunking(logits, chunk_size)``.

    Args:
        clamp_p: fraction of the vocabulary (smallest logits) removed, in [0, 1).
        aent_chunk: aent's token chunk (None = aent's default); verl's ``chunk_size`` argument is accepted and
            ignored, since aent chunks by itself.

    Returns:
        ``f(logits, chunk_size=None) -> (...)``: the clamped entropy (AEnt, arXiv 2509.03493 Eq. 5) of each row of
        ``logits`` (..., V), already divided by the temperature, in fp32, differentiable.
    """

    def entropy_from_logits(logits: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        return clamped_entropy(logits, clamp_p, chunk_size=aent_chunk)

    return entropy_from_logits


def _resolve(path: str, attr: str):
    import importlib

    obj = importlib.import_module(path)
    *owners, name = attr.split(".")
    for o in owners:
        obj = getattr(obj, o)
    return obj, name


def _set(path: str, attr: str, value) -> None:
    owner, name = _resolve(path, attr)
    _state["originals"].setdefault((path, attr), getattr(owner, name))
    setattr(owner, name, value)


def _window_add(entropy: torch.Tensor, mask: torch.Tensor) -> None:
    m = mask.to(torch.float32)
    add = torch.stack([(entropy.detach().float() * m).sum(), m.sum()]).cpu()
    _state["window"] = add if _state.get("window") is None else _state["window"] + add


def _step_end() -> dict[str, float] | None:
    w = _state.get("window")
    w = torch.zeros(2) if w is None else w
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        w = w.to("cuda" if torch.cuda.is_available() else "cpu")
        torch.distributed.all_reduce(w)  # every actor rank calls update_actor once per global step
    _state["window"] = None
    if float(w[1]) == 0:
        return None  # no entropy measured this step (entropy_coeff == 0 and calculate_entropy off)
    h = float(w[0]) / float(w[1])
    control: EntropyControl = _state["control"]
    # verl measures one entropy (the clamped one where _CLAMPED patched it in); it is given under the key that
    # drives the method. For threshold that is the documented departure: it stands in for -mean log pi_old.
    return control.step_end({control.spec.signal: h})


def install(cfg: EntropyConfig) -> EntropyControl:
    """Patch verl (in this process) for ``cfg``; returns the :class:`aent.EntropyControl` that holds the state.

    Raises:
        ValueError: the method is not supported in verl (see the module docstring).
        ImportError: verl is not installed.
    """
    if not isinstance(cfg, EntropyConfig):
        raise ValueError(f"install needs an aent.EntropyConfig, got {type(cfg).__name__}")
    if cfg.method not in SUPPORTED:
        native = " (verl has it: actor_rollout_ref.actor.policy_loss.loss_mode=" + cfg.method + ")" \
            if cfg.method in ("clip_cov", "kl_cov") else ""
        raise ValueError(f"aent.integrations.verl supports methods {SUPPORTED}, got {cfg.method!r}{native}")
    try:
        import verl.workers.engine_workers as ew
        import verl.workers.utils.losses as losses
        from verl.workers.utils.padding import no_padding_2_padding
    except ImportError as err:
        raise ImportError("aent.integrations.verl needs verl 0.9.x: pip install 'verl>=0.9,<0.10'") from err
    if _state.get("control") is not None:
        uninstall()
    _state.update(originals={}, control=EntropyControl(cfg), window=None)
    if cfg.method in _CLAMPED:
        fn = clamped_entropy_fn(cfg.clamp_p, cfg.chunk_size)
        _set("verl.utils.torch_functional", "entropy_from_logits", fn)
        _set("verl.utils.torch_functional", "entropy_from_logits_with_chunking", fn)
    original_loss = losses.ppo_loss

    @functools.wraps(original_loss)
    def ppo_loss(config, model_output, data, dp_group=None):
        object.__setattr__(config, "entropy_coeff", _state["control"].ent_coef)  # ActorConfig fields are frozen
        out = original_loss(config, model_output, data, dp_group)
        ent = model_output.get("entropy", None)
        if ent is not None and torch.is_grad_enabled():
            h = no_padding_2_padding(ent, data)  # (B, T_response)
            mask = data.select("response_mask").to_padded_tensor()["response_mask"]
            _window_add(h, mask[:, : h.shape[1]].bool())
        return out

    _set("verl.workers.utils.losses", "ppo_loss", ppo_loss)
    _set("verl.workers.engine_workers", "ppo_loss", ppo_loss)
    worker = ew.ActorRolloutRefWorker
    update, save, load = worker.update_actor, worker.save_checkpoint, worker.load_checkpoint

    @functools.wraps(update)  # keeps verl's @register dispatch attributes
    def update_actor(self, data):
        out = update(self, data)
        _step_end()
        return out

    @functools.wraps(save)
    def save_checkpoint(self, local_path, hdfs_path=None, global_step=0, max_ckpt_to_keep=None):
        out = save(self, local_path, hdfs_path, global_step, max_ckpt_to_keep)
        if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
            os.makedirs(local_path, exist_ok=True)
            with open(os.path.join(local_path, STATE_FILE), "w") as f:
                json.dump(_state["control"].state_dict(), f)
        return out

    @functools.wraps(load)
    def load_checkpoint(self, local_path, hdfs_path=None, del_local_after_load=False):
        path = os.path.join(local_path, STATE_FILE)
        state = None
        if os.path.isfile(path):  # read before verl may delete the local copy
            with open(path) as f:
                state = json.load(f)
        out = load(self, local_path, hdfs_path, del_local_after_load)
        if state is None:
            raise FileNotFoundError(f"{local_path} has no {STATE_FILE}: the checkpoint was not written with "
                                    "aent.integrations.verl installed, so the entropy controller cannot resume")
        _state["control"].load_state_dict(state)
        return out

    _set("verl.workers.engine_workers", "ActorRolloutRefWorker.update_actor", update_actor)
    _set("verl.workers.engine_workers", "ActorRolloutRefWorker.save_checkpoint", save_checkpoint)
    _set("verl.workers.engine_workers", "ActorRolloutRefWorker.load_checkpoint", load_checkpoint)
    return _state["control"]


def uninstall() -> None:
    """Put back every function :func:`install` replaced."""
    for (path, attr), original in _state.get("originals", {}).items():
        owner, name = _resolve(path, attr)
        setattr(owner, name, original)
    _state.clear()


def setup_hook() -> None:
    """Ray ``worker_process_setup_hook``: :func:`install` from the JSON config in ``$AENT_VERL_ENTROPY``.

    Does nothing when the variable is unset (e.g. in a reward worker started without it).
    """
    raw = os.environ.get(ENV_VAR, "")
    if not raw:
        return
    try:
        d = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"${ENV_VAR} must be a JSON object of EntropyConfig fields, got {raw!r}: {err}") from None
    install(EntropyConfig.from_dict(d) if "preset" not in d else
            EntropyConfig.preset(d.pop("preset")).replace(**d))
