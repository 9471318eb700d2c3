"""verl adapter: AEnt's clamped entropy in verl's actor loss, its coefficient driven by an aent controller.

Written against verl 0.9.0 (the engine-based workers, ``verl.workers.engine_workers``); exercised against fakes
with verl 0.9.0's names and signatures and, in one CPU process, against verl 0.9.0's own loss, entropy function and
``update_actor`` decorators, never in a Ray run (docs/integrations/verl.md says what was and was not run).
:func:`install` patches, in the process it runs in (every Ray worker, through :func:`setup_hook`):

1. **the entropy in the loss** (methods clamped_bonus, aent): ``verl.utils.torch_functional.entropy_from_logits``
   and ``entropy_from_logits_with_chunking`` return :func:`aent.clamped_entropy` with ``clamp_p`` when gradients
   are on (the actor's update), and verl's own full entropy otherwise. So the loss regularises the clamped entropy,
   while verl's ``actor/entropy`` (measured by ``compute_log_prob``, without gradients) stays the full entropy.
   During the update the full entropy of the same logits is measured too (without gradient) for the metrics.
   verl's engines read ``verl_F.entropy_from_logits`` at call time, or bind it when the engine is built (after
   the hook ran), on logits already divided by the rollout temperature; verl aggregates it with
   ``loss_agg_mode`` (the AEnt authors' choice, ``EntropyConfig.entropy_agg="loss_agg"``) and subtracts
   ``entropy_coeff`` times it. On the fused-kernel path (``use_fused_kernels=true``, no logits) the same holds
   through verl's ``FusedLinearForPPO`` (torch backend) and ``linear_cross_entropy`` (Triton backend), which
   become :func:`aent.chunked_policy_terms` with gradients on (:mod:`aent.integrations._verl_fused`).
2. **the coefficient**: ``verl.workers.utils.losses.ppo_loss`` (bound into each worker as
   ``partial(ppo_loss, config=actor_config)``) is wrapped: each micro-batch's loss runs with ``entropy_coeff`` =
   the controller's current value, adds the micro-batch's token-weighted entropies to the step's window, and
   returns three more metrics beside verl's own: ``aent/entropy_coef`` (lambda), ``aent/clamped_entropy`` and
   ``aent/entropy`` (token means over the micro-batch's response tokens; verl averages them over micro-batches
   and ranks). ``ActorRolloutRefWorker.update_actor`` (called once per global step on every actor rank) is
   wrapped: after the step's updates, the window sums are all-reduced over the ranks and the controller takes one
   :meth:`aent.EntropyControl.step_end` with the step's token-mean (clamped) entropy. Its state goes into the
   actor's checkpoint folder (``aent_entropy_control.json``) and comes back on resume.

Methods: entropy_bonus, clamped_bonus, aent, sac, threshold (threshold is driven by the measured entropy, since
the sampling log-probs' mean is not seen by the loss). Refused with one clear error: pos_reweight, entropic,
top_entropy (per-token weights outside verl's loss), clip_cov / kl_cov (verl has them natively:
``actor_rollout_ref.actor.policy_loss.loss_mode=clip_cov`` / ``kl_cov``).

The recipe (docs/integrations/verl.md): register :func:`setup_hook` as Ray's ``worker_process_setup_hook`` and name
the entropy control in the environment variable ``AENT_VERL_ENTROPY``, both as Hydra overrides of verl's entry
point: a preset name (``aent``) or the path of a JSON file of EntropyConfig fields (see :func:`config_from_env`).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import torch

from aent.config import EntropyConfig
from aent.entropy import clamped_entropy
from aent.integrations import _verl_fused
from aent.methods import METHOD_SPECS
from aent.regularizer import EntropyControl

__all__ = ["ENV_VAR", "METRICS", "STATE_FILE", "SUPPORTED", "VERL_TARGETS", "clamped_entropy_fn", "config_from_env",
           "install", "setup_hook", "uninstall"]

ENV_VAR = "AENT_VERL_ENTROPY"
STATE_FILE = "aent_entropy_control.json"
SUPPORTED = tuple(m for m, s in METHOD_SPECS.items() if s.bonus_only and s.entropy != "none")
"""The registry's methods whose loss is verl's own PPO loss minus entropy_coeff times an entropy (full or clamped)."""
_CLAMPED = tuple(m for m in SUPPORTED if METHOD_SPECS[m].entropy == "clamped")
# (module, attribute) pairs install() replaces, as named in verl 0.9.0; the tests record their signatures.
VERL_TARGETS = (
    ("verl.utils.torch_functional", "entropy_from_logits"),
    ("verl.utils.torch_functional", "entropy_from_logits_with_chunking"),
    ("verl.utils.experimental.torch_functional", "FusedLinearForPPO"),
    ("verl.utils.kernel.linear_cross_entropy", "linear_cross_entropy"),
    ("verl.workers.utils.losses", "ppo_loss"),
    ("verl.workers.engine_workers", "ppo_loss"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.update_actor"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.save_checkpoint"),
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.load_checkpoint"),
)

METRICS = ("aent/entropy_coef", "aent/clamped_entropy", "aent/entropy")
"""The metrics the patched loss adds to verl's (verl's own ``actor/entropy`` is left as verl computes it)."""

_state: dict[str, Any] = {}  # the installed control and the originals (one installation per process)


def clamped_entropy_fn(clamp_p: float, aent_chunk: int | None = None, full=None):
    """A drop-in for verl's ``entropy_from_logits(logits)`` / ``..._with_chunking(logits, chunk_size)``.

    Args:
        clamp_p: fraction of the vocabulary (smallest logits) removed, in [0, 1).
        aent_chunk: aent's token chunk (None = aent's default); verl's ``chunk_size`` argument is passed to
            ``full`` only, since aent chunks by itself.
        full: verl's original function; when given, it runs without gradients (``compute_log_prob``, so that
            verl's ``actor/entropy`` stays the full entropy) and, with gradients on, it measures the full entropy
            of the same logits for the metrics (kept until the loss reads it).

    Returns:
        ``f(logits, chunk_size=None) -> (...)``: with gradients on, the clamped entropy (AEnt, arXiv 2509.03493
        Eq. 5) of each row of ``logits`` (..., V), already divided by the temperature, in fp32, differentiable.
    """

    def call_full(logits: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
        return full(logits) if chunk_size is None else full(logits, chunk_size)

    def entropy_from_logits(logits: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        if full is not None and not torch.is_grad_enabled():
            return call_full(logits, chunk_size)
        if full is not None:
            with torch.no_grad():
                _state["full_entropy"] = call_full(logits.detach(), chunk_size)
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
    """Add a micro-batch's token sum of its entropy (the one in the loss) and its token count to the step."""
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


def _metrics(entropy: torch.Tensor, full: torch.Tensor, mask: torch.Tensor, coef: float) -> dict[str, float]:
    """aent's metrics of one micro-batch: lambda, and the token means of the clamped and the full entropy."""
    m = mask.to(torch.float32)
    n = m.sum().clamp(min=1.0)
    out = {"aent/entropy_coef": coef, "aent/entropy": float((full.detach().float() * m).sum() / n)}
    if _state["control"].spec.entropy == "clamped":
        out["aent/clamped_entropy"] = float((entropy.detach().float() * m).sum() / n)
    return out


def _keep_full(full: torch.Tensor) -> None:
    _state["full_entropy"] = full


def _patch_fused(cfg: EntropyConfig) -> None:
    """The fused-kernel path's two kernels (whichever imports: the Triton one needs triton)."""
    import importlib

    for path, name, make in (
            ("verl.utils.experimental.torch_functional", "FusedLinearForPPO", _verl_fused.fused_linear_class),
            ("verl.utils.kernel.linear_cross_entropy", "linear_cross_entropy", _verl_fused.linear_cross_entropy_fn)):
        try:
            original = getattr(importlib.import_module(path), name)
        except (ImportError, AttributeError):  # verl cannot use it here either
            continue
        _set(path, name, make(original, cfg.clamp_p, cfg.chunk_size, _keep_full))


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
        import verl.utils.torch_functional as verl_f

        for name in ("entropy_from_logits", "entropy_from_logits_with_chunking"):
            _set("verl.utils.torch_functional", name,
                 clamped_entropy_fn(cfg.clamp_p, cfg.chunk_size, full=getattr(verl_f, name)))
        _patch_fused(cfg)
    original_loss = losses.ppo_loss

    @functools.wraps(original_loss)
    def ppo_loss(config, model_output, data, dp_group=None):
        control: EntropyControl = _state["control"]
        coef = control.ent_coef
        object.__setattr__(config, "entropy_coeff", coef)  # ActorConfig fields are frozen
        loss, metrics = original_loss(config, model_output, data, dp_group)
        ent = model_output.get("entropy", None)
        if ent is not None and torch.is_grad_enabled():
            full = _state.pop("full_entropy", None) if control.spec.entropy == "clamped" else ent
            h = no_padding_2_padding(ent, data)  # (B, T_response): the entropy in the loss
            f = h if full is None else no_padding_2_padding(full.reshape(ent.shape), data)
            mask = data.select("response_mask").to_padded_tensor()["response_mask"][:, : h.shape[1]].bool()
            _window_add(h, mask)
            metrics = {**metrics, **_metrics(h, f, mask, coef)}
        return loss, metrics

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


def config_from_env(value: str) -> EntropyConfig:
    """The EntropyConfig named by ``$AENT_VERL_ENTROPY``.

    Args:
        value: a preset name of :data:`aent.PRESETS` (``aent``: the AEnt paper's setting for Qwen2.5-Math-1.5B);
            or the path of a JSON file holding EntropyConfig fields, optionally with ``"preset"`` (then the
            fields override the preset); or that JSON object itself (for launchers that pass the environment
            without Hydra: a JSON object is not a valid Hydra override value).

    Raises:
        ValueError: one message naming the variable, the value and the fix.
    """
    from aent.config import PRESETS

    raw = value.strip()
    if raw in PRESETS:
        return EntropyConfig.preset(raw)
    if raw.startswith("{"):
        text, where = raw, "its JSON"
    elif os.path.isfile(raw):
        with open(raw) as f:
            text, where = f.read(), raw
    else:
        raise ValueError(f"${ENV_VAR}={value!r} is neither a preset ({sorted(PRESETS)}) nor an existing JSON file "
                         "of EntropyConfig fields; name a preset (e.g. aent) or give the file's path")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"${ENV_VAR}: {where} must be a JSON object of EntropyConfig fields: {err}") from None
    if not isinstance(d, dict):
        raise ValueError(f"${ENV_VAR}: {where} must be a JSON object of EntropyConfig fields, got {d!r}")
    if "preset" in d:
        return EntropyConfig.preset(d.pop("preset")).replace(**d)
    if "method" not in d:
        raise ValueError(f"${ENV_VAR}: {where} names neither a preset nor a method; there is no default "
                         "(`aent calibrate` proposes the constants for your model)")
    return EntropyConfig.from_dict(d)


def setup_hook() -> None:
    """Ray ``worker_process_setup_hook``: :func:`install` the config that ``$AENT_VERL_ENTROPY`` names.

    Does nothing when the variable is unset (e.g. in a reward worker started without it).
    """
    raw = os.environ.get(ENV_VAR, "")
    if raw:
        install(config_from_env(raw))
