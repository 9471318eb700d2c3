"""The method registry against the method table of aent/config.py and docs/methods.md (written out by hand here)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import aent
from aent import EntropyConfig, EntropyControl
from aent.methods import METHOD_SPECS, MethodSpec, spec

# method: (entropy in the loss, signal of step_end, coefficient controller, weight controller), as the docs state it
TABLE = {
    "none": ("none", "entropy", "ConstantCoef", None),
    "entropy_bonus": ("full", "entropy", "ConstantCoef", None),
    "clamped_bonus": ("clamped", "entropy", "ConstantCoef", None),
    "aent": ("clamped", "clamped_entropy", "AEntCoef", None),
    "sac": ("full", "entropy", "SACCoef", None),
    "threshold": ("full", "sampled_entropy", "ThresholdCoef", None),
    "entropic": ("none", "entropy", "ConstantCoef", "PIController"),
    "pos_reweight": ("none", "entropy", "ConstantCoef", "PositiveWeight"),
    "clip_cov": ("none", "entropy", "ConstantCoef", None),
    "kl_cov": ("none", "entropy", "ConstantCoef", None),
    "top_entropy": ("none", "entropy", "ConstantCoef", None),
}


def test_registry_matches_the_documented_table():
    assert tuple(METHOD_SPECS) == aent.METHODS == tuple(TABLE)
    for method, (kind, signal, coef, weight) in TABLE.items():
        s, ctrl = spec(method), EntropyControl(EntropyConfig.preset(method))
        assert (s.entropy, s.signal) == (kind, signal), method
        assert type(ctrl.coef_ctrl).__name__ == coef, method
        assert (None if ctrl.weight_ctrl is None else type(ctrl.weight_ctrl).__name__) == weight, method


def test_factories_read_the_config_fields():
    cfg = EntropyConfig(method="aent", ent_coef=0.003, band_low=0.1, band_high=0.3, coef_lr=0.05, warmup=2,
                        coef_min=1e-3, coef_max=5e-3)
    c = spec("aent").coef(cfg)
    assert (c.value, c.band_low, c.band_high, c.lr, c.warmup, c.coef_min, c.coef_max) == (
        0.003, 0.1, 0.3, 0.05, 2, 1e-3, 5e-3)
    t = spec("threshold").coef(EntropyConfig(method="threshold", ent_coef=0.0, coef_delta=1e-3, target_entropy=0.7,
                                             coef_min=0.0, coef_max=0.01))
    assert (t.coef, t.delta, t.target, t.coef_max) == (0.0, 1e-3, 0.7, 0.01)
    w = spec("pos_reweight").weight(EntropyConfig(method="pos_reweight", pos_weight_mode="stage",
                                                  pos_weight_steps=4))
    assert (w.mode, w.init, w.final, w.schedule_steps) == ("stage", 0.0, 1.0, 4)  # the paper's 0 -> 1


def test_boxed_fields_are_checked_for_exactly_the_boxed_methods():
    boxed = {m for m, s in METHOD_SPECS.items() if s.boxed}
    assert boxed == {"aent", "sac", "threshold"}
    for method in TABLE:
        build = lambda m=method: EntropyConfig(method=m, ent_coef=0.05, coef_min=0.0, coef_max=0.01)  # noqa: E731
        if method in boxed:
            with pytest.raises(ValueError, match=r"ent_coef.*in \[coef_min, coef_max\]"):
                build()
        else:
            assert build().ent_coef == 0.05
    # sac's lambda is exp(log lambda): its registry line makes ent_coef strictly positive, for sac only
    assert {m for m, s in METHOD_SPECS.items() if s.positive} == {"sac"}
    with pytest.raises(ValueError, match="ent_coef must be > 0 for method=sac"):
        EntropyConfig(method="sac", ent_coef=0.0, coef_min=0.0)
    assert EntropyConfig(method="threshold", ent_coef=0.0, coef_min=0.0).ent_coef == 0.0


def test_unknown_method_and_bad_specs_are_named():
    with pytest.raises(ValueError, match="unknown entropy method 'nope'"):
        spec("nope")
    with pytest.raises(ValueError, match="signal"):
        MethodSpec("full", spec("none").coef, signal="logp")
    with pytest.raises(ValueError, match="entropy"):
        MethodSpec("partial", spec("none").coef)


def _adding_a_method_blocks() -> tuple[str, str]:
    """The module and the registry line of docs/methods.md's "Adding a method" section, as written there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()
    section = text.split("## Adding a method", 1)[1].split("\n## ", 1)[0]
    module, line = re.findall(r"```python\n(.*?)```", section, re.S)
    return module, line


def test_the_documented_new_method_is_its_module_plus_one_registry_line(monkeypatch):
    """docs/methods.md's worked example, run as written: the module, then the one line in METHOD_SPECS."""
    import sys
    import types

    module_src, line = _adding_a_method_blocks()
    mod = types.ModuleType("aent.proportional")
    exec(compile(module_src, "docs/methods.md (aent/proportional.py)", "exec"), mod.__dict__)
    monkeypatch.setitem(sys.modules, "aent.proportional", mod)
    entry = eval("{" + line.strip() + "}", {"MethodSpec": MethodSpec, "ProportionalCoef": mod.ProportionalCoef})
    for name, new in entry.items():
        monkeypatch.setitem(METHOD_SPECS, name, new)

    cfg = EntropyConfig(method="proportional", **entry["proportional"].presets["proportional"])
    with pytest.raises(ValueError, match="ent_coef"):
        cfg.replace(ent_coef=1.0)  # boxed: above coef_max
    ctrl = EntropyControl(cfg)
    assert ctrl.ent_coef == 0.002
    lam = ctrl.step_end({"entropy": 0.1})["ent_coef"]  # hand-computed: 0.002 + 0.01 * (0.2 - 0.1)
    assert lam == pytest.approx(0.003, abs=1e-15) and ctrl.coef_ctrl.state.steps == 1
    with pytest.raises(ValueError, match="stats\\['entropy'\\]"):
        ctrl.step_end({"clamped_entropy": 0.1})
    # The toy's trap trainers (Figure 1) run it too, driving it with the exact entropy of each step's policy.
    from toy.trap_bandit import TrapBanditConfig, make_layout, train_trap_bandit

    bandit = TrapBanditConfig(n_arms=3000, steps=3, record_every=1, init_scale=0.0)
    run = train_trap_bandit(bandit, make_layout(bandit, [(0, 2)]), [0], [cfg.replace(target_entropy=8.2)])
    h, lam = run.entropy[:, 0].double(), run.ent_coef[:, 0].double()
    assert float(h[0]) == pytest.approx(math.log(3000), rel=1e-6)  # a flat prior
    for t in range(3):  # lambda <- clip(lambda + 0.01 (8.2 - H_t), coef_min, coef_max), H_t: the policy of step t
        want = min(cfg.coef_max, max(cfg.coef_min, float(lam[t]) + 0.01 * (8.2 - float(h[t]))))
        assert cfg.coef_min < want < cfg.coef_max
        assert float(lam[t + 1]) == pytest.approx(want, rel=1e-6)
