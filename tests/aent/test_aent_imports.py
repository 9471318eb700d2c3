"""`import aent` stays torch-only, and its public surface is what toy/ and llm/ rely on."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import aent

HEAVY = ("gymnasium", "transformers", "accelerate", "matplotlib", "toy", "llm")


def test_import_pulls_in_no_heavy_dependency():
    code = ("import json, sys; import aent; import aent.reference; import aent.plotting; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_public_names_exist():
    """Every name of aent.__all__ resolves to the object of the module that defines it (a stale re-export or a
    missing lazy attribute fails here; getattr alone would also accept a None left behind)."""
    import importlib

    for name in aent.__all__:
        obj = getattr(aent, name)
        home = getattr(obj, "__module__", None)
        if home is not None and home.startswith("aent."):  # functions and classes: their defining module has them
            assert getattr(importlib.import_module(home), obj.__name__) is obj, name
        else:  # constants (tuples, dicts): defined in a submodule aent re-exports from
            assert any(getattr(importlib.import_module(f"aent.{m}"), name, None) is obj for m in
                       ("config", "regularizer", "aggregate", "methods")), name
    used_elsewhere = ["entropy", "clamped_entropy", "token_logprobs", "masked_mean", "group_advantages",
                      "ppo_clip_loss", "aggregate_loss", "EntropyConfig", "EntropyControl", "LossOutput",
                      "AEntCoef", "ConstantCoef", "SACCoef", "ThresholdCoef", "PIController", "PositiveWeight"]
    assert set(used_elsewhere) <= set(aent.__all__)


def test_interface_signatures():
    assert list(inspect.signature(aent.entropy).parameters)[:3] == ["logits", "mask", "temperature"]
    assert list(inspect.signature(aent.clamped_entropy).parameters)[:4] == ["logits", "clamp_p", "mask",
                                                                              "temperature"]
    assert inspect.signature(aent.entropy).parameters["temperature"].default == 1.0
