"""One validator (aent.validation.check): every config of the project names its field through it, with its own
prefix, in one format: "<prefix><field> must be <allowed>, got <value>"."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aent.validation import check, field_name


@given(st.text(min_size=1, max_size=12), st.text(max_size=12), st.integers() | st.floats(allow_nan=False))
def test_check_passes_or_raises_one_line_naming_the_field(field, allowed, value):
    check(True, field, allowed, value, "X.")  # ok: no error
    with pytest.raises(ValueError) as err:
        check(False, field, allowed, value, "X.")
    assert str(err.value) == f"X.{field} must be {allowed}, got {value!r}"


def test_a_backtick_prefix_quotes_the_field():
    assert field_name("optim.lr", "config field `") == "config field `optim.lr`"
    assert field_name("clamp_p", "config field `entropy.") == "config field `entropy.clamp_p`"
    assert field_name("lr", "TrainConfig.") == "TrainConfig.lr"


FORMAT = re.compile(r"^(?P<where>.+) must be (?P<allowed>.+), got (?P<value>.+)$")


def _message(fn) -> str:
    with pytest.raises(ValueError) as err:
        fn()
    return str(err.value)


def test_the_four_configs_share_the_format(tmp_path):
    from aent import EntropyConfig
    from llm.config import load_config
    from reproduce.config import load_config as load_reproduce
    from toy.pg_trainer_config import ToyTrainConfig as ToyConfig

    bad = tmp_path / "r.yaml"
    bad.write_text("llm:\n  seeds: [0, 0]\n")
    cases = {
        "EntropyConfig.clamp_p": lambda: EntropyConfig(clamp_p=2.0),
        "ToyTrainConfig.lr": lambda: ToyConfig(lr=-1.0),
        "config field `optim.lr`": lambda: load_config(None, ["optim.lr=-1"]),
        "config field `entropy.warmup`": lambda: load_config(None, ["entropy.warmup=-1"]),
        "reproduce config field `llm.seeds`": lambda: load_reproduce(bad),
    }
    for where, fn in cases.items():
        m = FORMAT.match(_message(fn))
        assert m and m["where"] == where, (where, _message(fn))
