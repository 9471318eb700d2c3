"""AEntGRPOConfig: TRL's ``GRPOConfig`` with the entropy control as ordinary TRL options.

Every field of :class:`aent.EntropyConfig` that TRL does not already carry becomes a ``GRPOConfig`` field named
``aent_<field>`` (its type, its help text from the EntropyConfig docstring), so ``TrlParser``, a YAML config and the
command line set them like any TRL option (``--aent_preset aent``, ``aent_band_low: 0.15``). The fields are built
from ``dataclasses.fields(EntropyConfig)``: one declaration per field, and a new EntropyConfig field appears here
by itself.

What TRL already states is taken from it, never stated twice:

- the clip range: ``epsilon`` / ``epsilon_high`` are EntropyConfig's ``eps_low`` / ``eps_high``;
- the loss aggregation: ``loss_type`` decides ``loss_agg`` ("grpo" = seq-mean-token-mean, "bnpo" / "dapo" =
  token-mean, "dr_grpo" = seq-mean-token-sum-norm with ``norm_const = max_completion_length``);
- ``aent_seed`` unset takes TRL's ``seed``.

No model-specific constant is chosen silently. The user names either

- ``aent_preset``: one of :data:`aent.PRESETS` ("aent" is the AEnt paper's setting for Qwen2.5-Math-1.5B on MATH,
  "aent_r1_distill" the one for R1-Distill-Qwen-1.5B); any ``aent_<field>`` given beside it overrides it; or
- ``aent_method`` with the constants that every preset of that method fixes (for "aent": ``aent_ent_coef`` (lambda0),
  ``aent_clamp_p``, ``aent_band_low``, ``aent_band_high``, ``aent_coef_lr`` (beta), ``aent_warmup``,
  ``aent_coef_min``, ``aent_coef_max``); ``aent calibrate --config C`` proposes them for a model (docs/calibrate.md).

Anything else is one ValueError naming the field and the fix.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import textwrap
import typing
from typing import Any

from aent.config import PRESETS, EntropyConfig
from aent.methods import METHOD_SPECS

try:
    from trl import GRPOConfig
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "aent.integrations.trl needs TRL (trl >= 1.8): pip install 'aent[trl]' or pip install 'trl>=1.8'"
    ) from err

__all__ = ["FROM_TRL", "LOSS_AGG", "PREFIX", "AEntGRPOConfig", "check_grpo_args", "field_table", "required_fields"]

PREFIX = "aent_"
LOSS_AGG = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean", "dapo": "token-mean",
            "dr_grpo": "seq-mean-token-sum-norm"}
"""TRL ``loss_type`` -> EntropyConfig ``loss_agg`` (the PPO-clip loss types; the others are refused)."""
FROM_TRL = {"eps_low": "epsilon", "eps_high": "epsilon_high", "loss_agg": "loss_type",
            "norm_const": "max_completion_length"}
"""EntropyConfig fields whose value comes from a GRPOConfig field (so they have no ``aent_`` field)."""
_CLIP = ("eps_low", "eps_high")


def _field_docs(cls: type) -> dict[str, str]:
    """Each dataclass field's docstring (the string literal under it), read from the class source with ast."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    return {stmt.target.id: " ".join(nxt.value.value.split()) for stmt, nxt in zip(body, body[1:])
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)}


def required_fields(method: str) -> tuple[str, ...]:
    """The EntropyConfig fields every preset of ``method`` fixes (its model-specific constants), clip excluded.

    Without ``aent_preset`` these must be given explicitly (aent: ent_coef, clamp_p, band_low, band_high, coef_lr,
    warmup, coef_min, coef_max)."""
    presets = list(METHOD_SPECS[method].presets.values())
    keys = set.intersection(*(set(p) for p in presets)) if presets else set()
    return tuple(f.name for f in dataclasses.fields(EntropyConfig) if f.name in keys and f.name not in _CLIP)


def _mirrored() -> list[tuple[str, Any, dataclasses.Field]]:
    """The ``aent_*`` fields: preset, method, then every EntropyConfig field TRL does not carry, all default None."""
    docs, hints = _field_docs(EntropyConfig), typing.get_type_hints(EntropyConfig)
    out = [
        ("aent_preset", str | None, dataclasses.field(default=None, metadata={"help": (
            f"Named entropy setting, one of {sorted(PRESETS)}; 'aent' is the AEnt paper's for Qwen2.5-Math-1.5B on "
            "MATH. aent_* fields given beside it override it. Either this or aent_method is required.")})),
        ("aent_method", str | None, dataclasses.field(default=None, metadata={"help": (
            f"Entropy control without a preset, one of {tuple(METHOD_SPECS)}; then the method's constants (see "
            "required_fields; `aent calibrate` proposes them) must be given as aent_* fields.")})),
    ]
    for f in dataclasses.fields(EntropyConfig):
        if f.name == "method" or f.name in FROM_TRL:
            continue
        base = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        fallback = "TRL's seed" if f.name == "seed" else "the preset's value, else EntropyConfig's default"
        help_ = f"{docs[f.name]} (EntropyConfig.{f.name}; unset: {fallback}.)"
        out.append((PREFIX + f.name, base | None, dataclasses.field(default=None, metadata={"help": help_})))
    return out


def _did_you_mean(value: str, known) -> str:
    close = difflib.get_close_matches(str(value), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_WHERE = "AEntGRPOConfig."


def _from_preset(args: Any, preset: str, method: str | None) -> dict[str, Any]:
    """The preset's EntropyConfig fields (TRL's own left out), after checking it against aent_method and the clip."""
    if preset not in PRESETS:
        raise ValueError(f"{_WHERE}aent_preset must be one of {sorted(PRESETS)}, got {preset!r}"
                         f"{_did_you_mean(preset, PRESETS)}")
    base = PRESETS[preset]
    if method is not None and method != base.method:
        raise ValueError(f"{_WHERE}aent_method={method!r} disagrees with aent_preset={preset!r} (method "
                         f"{base.method!r}); give one of them")
    overrides = METHOD_SPECS[base.method].presets[preset]
    if overrides and set(overrides) <= set(_CLIP):  # a preset that is only a clip range is TRL's own setting
        want = (overrides.get("eps_low"), overrides.get("eps_high"))
        have = (args.epsilon, args.epsilon if args.epsilon_high is None else args.epsilon_high)
        if want != have:
            raise ValueError(f"{_WHERE}aent_preset={preset!r} is the clip range (eps_low, eps_high) = {want}, "
                             f"which TRL carries: set epsilon={want[0]}, epsilon_high={want[1]} (got {have})")
    return {k: v for k, v in base.to_dict().items() if k not in FROM_TRL and k != "seed"}


def _from_method(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """``{"method": method}`` once the method's model-specific constants are all among the given fields."""
    if method not in METHOD_SPECS:
        raise ValueError(f"{_WHERE}aent_method must be one of {tuple(METHOD_SPECS)}, got {method!r}"
                         f"{_did_you_mean(method, METHOD_SPECS)}")
    missing = [PREFIX + k for k in required_fields(method) if k not in given]
    if missing:
        raise ValueError(f"{_WHERE}aent_method={method!r} without aent_preset needs the method's constants "
                         f"{missing}: give them (`aent calibrate --config C` proposes them for your model, "
                         f"docs/calibrate.md), or name a preset (aent_preset, one of {sorted(PRESETS)})")
    return {"method": method}


def _entropy_fields(args: Any) -> EntropyConfig:
    """The EntropyConfig an AEntGRPOConfig describes (see the module docstring)."""
    given = {f.name: getattr(args, PREFIX + f.name) for f in dataclasses.fields(EntropyConfig)
             if f.name != "method" and f.name not in FROM_TRL and getattr(args, PREFIX + f.name) is not None}
    if args.aent_preset is not None:
        fields = _from_preset(args, args.aent_preset, args.aent_method)
    elif args.aent_method is not None:
        fields = _from_method(args.aent_method, given)
    else:
        raise ValueError(f"{_WHERE}aent_preset / aent_method: name the entropy control with aent_preset (one of "
                         f"{sorted(PRESETS)}; 'aent' is the AEnt paper's setting for Qwen2.5-Math-1.5B) or "
                         "aent_method plus its constants (`aent calibrate --config C` proposes band, box, lambda0, "
                         "beta and p for your model); there is no default")
    if args.loss_type not in LOSS_AGG:
        raise ValueError(f"AEntGRPOTrainer: GRPOConfig.loss_type={args.loss_type!r} is not supported; use one of "
                         f"{sorted(LOSS_AGG)} (PPO-clip surrogates)")
    fields.update(given, eps_low=args.epsilon, loss_agg=LOSS_AGG[args.loss_type],
                  eps_high=args.epsilon if args.epsilon_high is None else args.epsilon_high,
                  norm_const=float(args.max_completion_length) if args.loss_type == "dr_grpo" else None)
    fields.setdefault("seed", args.seed)
    return EntropyConfig.from_dict(fields, prefix=_WHERE + PREFIX)


_Fields = dataclasses.make_dataclass("_Fields", _mirrored(), bases=(GRPOConfig,))
_Fields.__module__ = __name__  # make_dataclass would name the types module (pickling, documentation)


@dataclasses.dataclass
class AEntGRPOConfig(_Fields):
    """``trl.GRPOConfig`` plus the entropy control as ``aent_*`` fields (see the module docstring).

    Example (what ``TrlParser`` builds from ``--aent_preset aent --loss_type dapo``)::

        args = AEntGRPOConfig(output_dir="runs/x", aent_preset="aent", loss_type="dapo")
        args.entropy_config()   # EntropyConfig(method='aent', ent_coef=0.002, clamp_p=0.33, band_low=0.15, ...)
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        check_grpo_args(self, self.entropy_config())

    def entropy_config(self) -> EntropyConfig:
        """The validated :class:`aent.EntropyConfig` these fields describe (clip and aggregation from TRL's)."""
        return _entropy_fields(self)


def check_grpo_args(args: Any, cfg: EntropyConfig) -> EntropyConfig:
    """Check a ``trl.GRPOConfig`` against an :class:`aent.EntropyConfig`; return the config the loss will use.

    Args:
        args: the trainer's ``GRPOConfig`` (or :class:`AEntGRPOConfig`).
        cfg: the entropy control.

    Returns:
        ``cfg``, with ``norm_const = args.max_completion_length`` for loss_type "dr_grpo" when it was None.

    Raises:
        ValueError: one message naming the GRPOConfig field, its value and the fix (docs/integrations/trl.md).
    """
    if not isinstance(cfg, EntropyConfig):
        raise ValueError(f"entropy_config must be an aent.EntropyConfig, got {type(cfg).__name__}")

    def refuse(field: str, value: Any, fix: str) -> None:
        raise ValueError(f"AEntGRPOTrainer: GRPOConfig.{field}={value!r} is not supported; {fix}")

    lt = args.loss_type
    if lt not in LOSS_AGG:
        refuse("loss_type", lt, f"use one of {sorted(LOSS_AGG)} (PPO-clip surrogates)")
    if LOSS_AGG[lt] != cfg.loss_agg:
        refuse("loss_type", lt, f"it aggregates as {LOSS_AGG[lt]!r} but EntropyConfig.loss_agg is "
                                f"{cfg.loss_agg!r}; make them agree ({LOSS_AGG})")
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
        ("entropy_coef", args.entropy_coef != 0.0, "set it to 0.0; the coefficient comes from the aent_* fields"),
        ("use_adaptive_entropy", args.use_adaptive_entropy, "set it to False; use aent_method='threshold'"),
        ("top_entropy_quantile", args.top_entropy_quantile < 1.0,
         "set it to 1.0; use aent_method='top_entropy' with aent_top_entropy_rho"),
    ):
        if bad:
            refuse(field, getattr(args, field), fix)
    if lt == "dr_grpo" and cfg.norm_const is None:
        cfg = cfg.replace(norm_const=float(args.max_completion_length))
    return cfg


def field_table() -> str:
    """Markdown table of every ``aent_*`` field of :class:`AEntGRPOConfig` (docs/integrations/trl.md embeds it)."""
    rows = ["| field | type | help |", "| --- | --- | --- |"]
    for f in dataclasses.fields(AEntGRPOConfig):
        if f.name.startswith(PREFIX):
            typ = (typing.get_args(f.type) or (f.type,))[0].__name__  # HfArgumentParser unwraps X | None in place
            rows.append(f"| `{f.name}` | {typ} | {f.metadata['help'].replace('|', '/')} |")
    return "\n".join(rows)
