"""Configuration of the main job: which toy experiments and which LLM runs, on which budget.

A config is a YAML file (``configs/reproduce/*.yaml``) with two sections::

    toy:                      # python -m toy NAME --out DIR [--smoke] [extra args]
      experiments: [figure1, bias, dynamics]   # names of toy.experiments.EXPERIMENTS
      smoke: false
      args: {figure1: [--seeds, "5"]}
    llm:                      # python -m llm train --config CONFIG seed=S output_dir=D [overrides] [method overrides]
      config: configs/tiny.yaml
      launcher: []            # e.g. [accelerate, launch, --config_file, configs/accelerate/fsdp_8gpu.yaml]
      warm_starts: [1, 2]     # data.seed of each warm start; every method runs every warm start x seed pair
      seeds: [3, 4]
      selection:              # what chose the setting and its arms (listed in the report; docs/protocol.md)
        warm_starts: [0]
        seeds: [0, 1, 2]
        candidates: [landed, w300_lr1e-4, ...]
      overrides: [max_steps=40]
      calibrated: [aent]      # these labels run with the constants `aent calibrate` proposes on each warm start
      methods:
        grpo: [entropy.method=none]
        aent: [entropy.method=aent]
    exploration:              # one gated level of `aent study exploration`, on fewer pairs (a description)
      level: 1
      arms: [grpo, aent_cal_p]
      warm_starts: [1, 2]
      seeds: [0]
      committed: docs/exploration_example/summary.json

``llm.config`` and ``--config`` take a file (absolute, or relative to the working directory) or the name of a
packaged config (``tiny``, ``reproduce/smoke``; ``configs/tiny.yaml`` names the packaged ``tiny`` when no such
file exists), so the main job runs the same from a checkout and from an installed wheel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aent.validation import check
from toy.experiments import EXPERIMENTS

__all__ = ["ReproduceConfig", "ToySection", "LLMSection", "ExplorationSection", "Selection", "load_config",
           "DEFAULT_CONFIG", "SMOKE_CONFIG"]

REPO = Path(__file__).resolve().parents[1]  # only to shorten paths in the report; never to find a file
DEFAULT_CONFIG = "reproduce/default"  # packaged configs (aent_configs), found wherever aent is installed
SMOKE_CONFIG = "reproduce/smoke"


PREFIX = "reproduce config field `"
"""How error messages name a field of this config: reproduce config field `section.field`."""


def _fail(name: str, allowed: str, value: Any) -> None:
    """Raise the one-line error of :func:`aent.validation.check` for a field whose value is not allowed."""
    check(False, name, allowed, value, PREFIX)


def _str_list(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int, float)) for v in value):
        _fail(name, "a list of strings", value)
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class ToySection:
    """The toy-simulator stages: each runs ``python -m toy NAME --out DIR [--smoke] [args]``."""

    experiments: tuple[str, ...] = field(default_factory=lambda: tuple(EXPERIMENTS))
    """Which toy experiments to run: names of the toy registry, toy.experiments.EXPERIMENTS (default: all of
    them; may be empty)."""
    smoke: bool = False
    """Pass --smoke to every toy experiment (tiny budgets)."""
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra command-line arguments per experiment, e.g. {figure1: [--seeds, "5"]}."""
    expected_s: dict[str, float] = field(default_factory=dict)
    """Expected seconds per experiment (for the time-left estimate only; default: the module's EXPECTED_S)."""

    def __post_init__(self) -> None:
        known = list(EXPERIMENTS)
        for name in self.experiments:
            if name not in known:
                _fail("toy.experiments", f"a subset of {known}", list(self.experiments))
        for key in ("args", "expected_s"):
            for name in getattr(self, key):
                if name not in known:
                    _fail(f"toy.{key}", f"keyed by experiment names {known}", name)


def _int_list(name: str, value: Any, empty_ok: bool = False) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                        for v in value) or (not value and not empty_ok):
        _fail(name, "a " + ("" if empty_ok else "non-empty ") + "list of integers >= 0", value)
    if len(set(value)) != len(value):
        _fail(name, "distinct values", list(value))
    return tuple(value)


@dataclass(frozen=True)
class Selection:
    """What chose the LLM setting and its arms: listed in the report, kept apart from the verdict pairs."""

    warm_starts: tuple[int, ...] = ()
    """``data.seed`` values of the warm starts the setting and its arms were chosen on."""
    seeds: tuple[int, ...] = ()
    """Run seeds used while choosing."""
    candidates: tuple[str, ...] = ()
    """Every candidate tried (settings and arm coefficients), in the order tried."""
    page: str = ""
    """Where the choice is documented."""


@dataclass(frozen=True)
class LLMSection:
    """The LLM comparison: every method x every seed, from the same warm-started policy and the same budget."""

    config: str = "configs/tiny.yaml"
    """Trainer config file (relative to the repository root, or absolute)."""
    launcher: tuple[str, ...] = ()
    """Command prefix replacing ``python``, e.g. [accelerate, launch, --config_file, FILE] for GPUs."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds; every method runs every seed of every warm start (>= 1 seed)."""
    warm_starts: tuple[int, ...] = ()
    """``data.seed`` of each warm start (model init, warm start and problems); empty = the trainer config's own.
    A pair (warm start, seed) is the unit every method shares."""
    selection: Selection = field(default_factory=Selection)
    """What chose the setting and its arms (see :class:`Selection`)."""
    overrides: tuple[str, ...] = ()
    """key=value overrides applied to every run (e.g. max_steps=40, eval_every=10)."""
    methods: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Method label -> its key=value overrides. The first method is the baseline of every comparison."""
    calibrated: tuple[str, ...] = ()
    """Labels of AEnt methods whose constants (band, box, lambda0, beta, p, warm-up) come from ``aent calibrate``
    on each warm start's starting policy for the runs' own budget (one calibration stage per warm start; its
    JSON is appended to the label's overrides). Empty: every label runs its overrides as written."""
    expected_s: float = 60.0
    """Expected seconds per training run (for the time-left estimate only)."""
    calibration_expected_s: float = 10.0
    """Expected seconds of one calibration with its warm start cached (the warm start itself is added)."""
    warm_start_expected_s: float = 150.0
    """Expected seconds of building one warm start, added to the stage that builds it (time-left estimate only)."""

    def __post_init__(self) -> None:
        if not self.seeds or not all(isinstance(s, int) and s >= 0 for s in self.seeds):
            _fail("llm.seeds", "a non-empty list of integers >= 0", list(self.seeds))
        if len(set(self.seeds)) != len(self.seeds):
            _fail("llm.seeds", "distinct seeds", list(self.seeds))
        for label in self.methods:
            if not label.replace("_", "").replace("-", "").isalnum():
                _fail("llm.methods", "keyed by labels of letters, digits, - and _", label)
        if self.expected_s <= 0:
            _fail("llm.expected_s", "> 0", self.expected_s)
        for label in self.calibrated:
            if label not in self.methods:
                _fail("llm.calibrated", f"labels of llm.methods {list(self.methods)}", label)


@dataclass(frozen=True)
class ExplorationSection:
    """One level of the exploration study (``aent study exploration``, docs/llm/exploration.md) on a few of its
    verdict pairs, without its premise gate: the report cites the committed study's gate and verdict instead."""

    level: int = 1
    """The level (1 = the deepest trap)."""
    arms: tuple[str, ...] = ()
    """Arms of the study (llm.studies.exploration_arms.ARMS); empty = no exploration stages."""
    warm_starts: tuple[int, ...] = ()
    """Verdict warm starts of the study (each one stage: level search, calibration, its runs)."""
    seeds: tuple[int, ...] = ()
    """Run seeds (a subset of the study's verdict seeds, so that the pairs can be compared)."""
    committed: str = "docs/exploration_example/summary.json"
    """The committed study's summary.json, whose gate and verdict for the level the report cites."""
    steps: int = 0
    """GRPO budget per run (``--steps``); 0 = the study's own (150). Other values only check the pipeline."""
    overrides: tuple[str, ...] = ()
    """Trainer overrides of every run (the smoke config shrinks the model and fixes the bare stage with them)."""
    expected_s: float = 200.0
    """Expected seconds of one warm start's stage (search, calibration, one run per arm and seed)."""

    def __post_init__(self) -> None:
        from llm.studies.exploration import VERDICT
        from llm.studies.exploration_arms import ARMS
        from llm.studies.exploration_levels import LEVELS

        levels = [lv.index for lv in LEVELS]
        if self.level not in levels:
            _fail("exploration.level", f"one of {levels}", self.level)
        if not set(self.arms) <= set(ARMS) or (self.arms and "grpo" not in self.arms):
            _fail("exploration.arms", f"a subset of {list(ARMS)} with grpo (the baseline)", list(self.arms))
        if self.arms and (not set(self.warm_starts) <= set(VERDICT[0]) or not set(self.seeds) <= set(VERDICT[1])
                          or not self.warm_starts or not self.seeds):
            _fail("exploration.warm_starts/seeds", f"non-empty subsets of the study's verdict pairs (warm starts "
                  f"{list(VERDICT[0])}, seeds {list(VERDICT[1])})", [list(self.warm_starts), list(self.seeds)])
        if self.expected_s <= 0:
            _fail("exploration.expected_s", "> 0", self.expected_s)
        if self.steps < 0:
            _fail("exploration.steps", ">= 0", self.steps)


@dataclass(frozen=True)
class ReproduceConfig:
    """The whole main job: toy stages, then LLM runs, then the report."""

    toy: ToySection = field(default_factory=ToySection)
    """Toy-simulator experiments."""
    llm: LLMSection = field(default_factory=LLMSection)
    """LLM comparison of entropy controls (skipped when it lists no methods)."""
    exploration: ExplorationSection = field(default_factory=ExplorationSection)
    """One level of the exploration study (skipped when it lists no arms)."""
    budget_minutes: float = 20.0
    """Wall-time budget the defaults are sized for (reported, never enforced)."""
    source: str = ""
    """The file this config was read from (set by load_config)."""


def _section(cls, data: Any, name: str, converters: dict[str, Any]):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        _fail(name, "a mapping", data)
    known = {f for f in cls.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        _fail(f"{name}.{unknown[0]}", f"one of {sorted(known)}", data[unknown[0]])
    kwargs = {k: converters.get(k, lambda _n, v: v)(f"{name}.{k}", v) for k, v in data.items()}
    return cls(**kwargs)


def _per_name_lists(name: str, value: Any) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(name, "a mapping of name -> list of strings", value)
    return {str(k): _str_list(f"{name}.{k}", v) for k, v in value.items()}


def _floats(name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        _fail(name, "a mapping of name -> seconds", value)
    return {str(k): float(v) for k, v in value.items()}


def load_config(path: str | Path | None = None) -> ReproduceConfig:
    """Read a reproduce config from YAML (the built-in default when ``path`` is None)."""
    import yaml

    import aent_configs

    path = aent_configs.resolve(DEFAULT_CONFIG if path is None else path, folder="reproduce")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        _fail("<top level>", "a mapping with sections toy and llm", type(data).__name__)
    unknown = sorted(set(data) - {"toy", "llm", "exploration", "budget_minutes"})
    if unknown:
        _fail(unknown[0], "one of toy, llm, exploration, budget_minutes", data[unknown[0]])
    toy = _section(ToySection, data.get("toy"), "toy", {
        "experiments": _str_list, "args": _per_name_lists, "expected_s": _floats,
        "smoke": lambda n, v: v if isinstance(v, bool) else _fail(n, "true or false", v)})
    llm = _section(LLMSection, data.get("llm"), "llm", {
        "launcher": _str_list, "overrides": _str_list, "methods": _per_name_lists,
        "seeds": lambda n, v: tuple(v) if isinstance(v, (list, tuple)) else _fail(n, "a list of integers", v),
        "warm_starts": _int_list, "expected_s": lambda n, v: float(v), "config": lambda n, v: str(v),
        "calibrated": _str_list, "calibration_expected_s": lambda n, v: float(v),
        "warm_start_expected_s": lambda n, v: float(v),
        "selection": lambda n, v: _section(Selection, v, n, {
            "warm_starts": lambda m, x: _int_list(m, x, True), "seeds": lambda m, x: _int_list(m, x, True),
            "candidates": _str_list, "page": lambda m, x: str(x)})})
    exploration = _section(ExplorationSection, data.get("exploration"), "exploration", {
        "level": lambda n, v: v if isinstance(v, int) and not isinstance(v, bool) else _fail(n, "an integer", v),
        "arms": _str_list, "warm_starts": _int_list, "seeds": _int_list, "committed": lambda n, v: str(v),
        "expected_s": lambda n, v: float(v), "overrides": _str_list,
        "steps": lambda n, v: v if isinstance(v, int) and not isinstance(v, bool) else _fail(n, "an integer", v)})
    budget = float(data.get("budget_minutes", 20.0))
    return ReproduceConfig(toy=toy, llm=llm, exploration=exploration, budget_minutes=budget, source=str(path))


def resolve(path: str) -> Path:
    """The trainer config ``llm.config`` names: a file (absolute, or relative to the working directory), else a
    packaged config (``tiny``; the repository form ``configs/tiny.yaml`` names the same one)."""
    import aent_configs

    return aent_configs.resolve(path).resolve()
