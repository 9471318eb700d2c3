"""Config loading: YAML + key=value overrides, validation messages, the paper's settings, the field table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aent
from llm.config import SECTIONS, TrainConfig, load_config
from llm.config_docs import field_docs, field_table
from llm.provenance import write_run_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def test_defaults_and_tiny_yaml_are_valid():
    assert TrainConfig().max_steps >= 1
    cfg = load_config(CONFIGS / "tiny.yaml")
    assert cfg.model.path == "" and cfg.model.warm_start_steps > 0  # CPU default: built locally, no downloads


def test_paper_config_has_the_authors_settings():
    """DESIGN.md: Qwen2.5-Math-1.5B on MATH: lambda0=0.002, p=0.33, band [0.15,0.24], beta=0.002, warmup 30,
    box [6e-4, 9e-3], group 16, lr 2e-6, clip 0.2, no KL."""
    cfg = load_config(CONFIGS / "aent_qwen2.5_math_1.5b.yaml")
    e = cfg.entropy
    assert (e.method, e.ent_coef, e.clamp_p, e.band_low, e.band_high, e.coef_lr, e.warmup) == (
        "aent", 0.002, 0.33, 0.15, 0.24, 0.002, 30)
    assert (e.coef_min, e.coef_max, e.eps_low, e.eps_high) == (6e-4, 9e-3, 0.2, 0.2)
    assert cfg.rollout.group_size == 16 and cfg.optim.lr == 2e-6
    assert cfg.rollout.prompts_per_step == 512 and cfg.optim.weight_decay == 0.01  # the authors' batch and decay
    assert e.entropy_agg == "loss_agg"  # the authors' verl code: entropy aggregated like the policy loss
    assert "Qwen2.5-Math-1.5B" in cfg.model.path


def test_r1_distill_config_has_the_authors_settings():
    """DESIGN.md: R1-Distill-Qwen-1.5B: lambda0=3e-4, p=0.25, band [0.35,0.62], beta=1e-4, box [4e-5,1e-3]."""
    cfg = load_config(CONFIGS / "aent_r1_distill_qwen_1.5b.yaml")
    e = cfg.entropy
    assert (e.method, e.ent_coef, e.clamp_p, e.band_low, e.band_high, e.coef_lr, e.coef_min, e.coef_max) == (
        "aent", 3e-4, 0.25, 0.35, 0.62, 1e-4, 4e-5, 1e-3)
    # the authors' warm-up, group size, lr and response budget (issue 15)
    assert (e.warmup, cfg.rollout.group_size, cfg.optim.lr, cfg.rollout.max_new_tokens) == (156, 8, 1e-6, 7168)
    assert aent.EntropyConfig.preset("aent_r1_distill").warmup == 156 and e.entropy_agg == "loss_agg"


def test_overrides_always_work_and_are_typed():
    cfg = load_config(CONFIGS / "tiny.yaml", ["max_steps=3", "output_dir=/tmp/x", "optim.lr=2e-6",
                                               "entropy.method=aent", "progress=false", "rollout.top_p=0.9"])
    assert cfg.max_steps == 3 and cfg.output_dir == "/tmp/x" and cfg.optim.lr == 2e-6
    assert isinstance(cfg.optim.lr, float) and cfg.progress is False and cfg.rollout.top_p == 0.9
    assert cfg.entropy.method == "aent"


def test_yaml_1_1_words_stay_strings_for_string_fields(tmp_path):
    """`mixed_precision=no` is the string "no", as accelerate spells it (YAML 1.1 would read a boolean False,
    which the string field then refused); boolean fields still take yes / no / on / off."""
    cfg = load_config(CONFIGS / "tiny.yaml", ["mixed_precision=no", "progress=off", "resume=yes"])
    assert cfg.mixed_precision == "no" and cfg.progress is False and cfg.resume is True
    f = tmp_path / "c.yaml"
    f.write_text("mixed_precision: no\nprogress: no\n")
    cfg = load_config(f)
    assert cfg.mixed_precision == "no" and cfg.progress is False


@pytest.mark.parametrize("method", aent.METHODS)
def test_every_entropy_method_is_selectable(method):
    extra = ["entropy.pos_weight_mode=fixed"] if method == "pos_reweight" else []
    assert load_config(CONFIGS / "tiny.yaml", [f"entropy.method={method}", *extra]).entropy.method == method


def test_entropy_preset_then_overrides():
    cfg = load_config(None, ["entropy.preset=aent", "entropy.warmup=0"])
    assert cfg.entropy.method == "aent" and cfg.entropy.warmup == 0 and cfg.entropy.band_high == 0.24


@pytest.mark.parametrize("preset", ["threshold", "aent"])
def test_a_command_line_preset_wins_over_the_files_method(preset):
    """tiny.yaml says `entropy: {method: none}`; `entropy.preset=X` on the command line used to keep `none`
    silently. Now the preset starts the section afresh, and later entropy.* overrides still apply on top."""
    want = aent.EntropyConfig.preset(preset)
    cfg = load_config(CONFIGS / "tiny.yaml", [f"entropy.preset={preset}"])
    assert cfg.entropy.method == want.method != "none" and cfg.entropy == want
    cfg = load_config(CONFIGS / "tiny.yaml", [f"entropy.preset={preset}", "entropy.warmup=3"])
    assert cfg.entropy.method == want.method and cfg.entropy.warmup == 3
    assert load_config(CONFIGS / "tiny.yaml").entropy.method == "none"  # no preset: the file's section stands


@pytest.mark.parametrize("override, needle", [
    ("rollout.group_size=1", "rollout.group_size` must be >= 2, got 1"),
    ("optim.lr=0", "optim.lr` must be > 0"),
    ("rollout.top_p=1.5", "rollout.top_p` must be in (0, 1]"),
    ("rollout.temperature=-1", "rollout.temperature` must be > 0"),
    ("optim.schedule=step", "optim.schedule` must be one of constant, linear, cosine"),
    ("max_steps=0", "max_steps` must be >= 1"),
    ("adv_scale=mad", "adv_scale` must be one of std, none"),
    ("optim.mini_batch_size=7", "optim.mini_batch_size` must be 0 or a divisor"),
    ("entropy.clamp_p=1.5", "entropy.clamp_p` must be in [0, 1)"),
    ("entropy.method=magic", "entropy.method` must be one of"),
    ("max_steps=abc", "`max_steps` must be of type int, got 'abc'"),
    ("max_steps=2.5", "`max_steps` must be of type int"),
    ("data.template=chatml", "data.template` must be one of"),
    ("model.max_position=16", "model.max_position` must be >= data.max_prompt_len + rollout.max_new_tokens"),
])
def test_invalid_values_name_the_field_and_range(override, needle):
    with pytest.raises(ValueError) as err:
        load_config(CONFIGS / "tiny.yaml", [override])
    assert needle in str(err.value)
    assert "\n" not in str(err.value)  # one clear line


@pytest.mark.parametrize("override, suggestion", [
    ("max_step=3", "did you mean 'max_steps'?"),
    ("entropy.methd=aent", "did you mean 'method'?"),
    ("rollout.group=4", "did you mean 'group_size'?"),
    ("lr=1e-3", "did you mean 'optim.lr'?"),
])
def test_unknown_keys_get_a_did_you_mean(override, suggestion):
    with pytest.raises(ValueError, match="unknown config field") as err:
        load_config(CONFIGS / "tiny.yaml", [override])
    assert suggestion in str(err.value)


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["max_steps"])
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="YAML mapping"):
        load_config(tmp_path / "list.yaml")


@given(seed=st.integers(0, 2**31), steps=st.integers(1, 10_000), lr=st.floats(1e-8, 1.0),
       group=st.integers(2, 64), method=st.sampled_from(["none", "aent", "entropy_bonus", "clip_cov"]))
def test_save_then_load_round_trips(tmp_path_factory, seed, steps, lr, group, method):
    cfg = load_config(None, [f"seed={seed}", f"max_steps={steps}", f"optim.lr={lr!r}",
                             f"rollout.group_size={group}", "rollout.prompts_per_step=1",
                             f"entropy.method={method}"])
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    write_run_config(cfg, path)  # what a run writes
    assert load_config(path) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_every_field_has_a_docstring_and_a_table_row():
    table = field_table().splitlines()
    n_fields = sum(1 for f in dataclasses.fields(TrainConfig) if f.name not in SECTIONS)
    n_fields += sum(len(dataclasses.fields(sec)) for sec in SECTIONS.values())
    assert len(table) == 2 + n_fields
    for name, sec in [("top", TrainConfig), *SECTIONS.items()]:
        docs = field_docs(sec)
        missing = [f.name for f in dataclasses.fields(sec) if not docs.get(f.name)]
        assert not missing, f"fields without a docstring in {name}: {missing}"


def test_docs_field_table_is_the_generated_one():
    """docs/llm/trainer.md holds exactly `python -m llm fields` between its markers (regenerate when it fails)."""
    text = (REPO / "docs" / "llm" / "trainer.md").read_text()
    start, end = "<!-- fields:start -->\n", "\n<!-- fields:end -->"
    assert start in text and end in text
    assert text.split(start, 1)[1].split(end, 1)[0].strip() == field_table().strip()


# ------------------------------------------------------------------ one declaration per field (issue 17)
def _other_value(f: dataclasses.Field):
    """A valid value of a ModelConfig field that differs from its default."""
    other = {"arch": "llama", "dtype": "bfloat16", "tie_embeddings": False, "hidden": 256, "heads": 8,
             "kv_heads": 2, "layers": 3, "intermediate": 640, "max_position": 1024, "init_std": 0.05,
             "rope_theta": 5e5}
    assert f.name in other, f"add a non-default value for the new ModelConfig field {f.name!r} to this test"
    assert other[f.name] != f.default
    return other[f.name]


def test_model_section_and_model_config_cannot_diverge():
    """Every llm.model.ModelConfig field is a model.* config field with the same type, default and doc, and
    reaches the built model's shape by name; the section adds run-time fields only (no shape restated)."""
    from llm.config import ModelSection
    from llm.model import ModelConfig

    shape = {f.name: f for f in dataclasses.fields(ModelConfig)}
    section = {f.name: f for f in dataclasses.fields(ModelSection)}
    docs_shape, docs_section = field_docs(ModelConfig), field_docs(ModelSection)
    for name, f in shape.items():
        assert name in section, name
        g = section[name]
        assert (g.type, g.default) == (f.type, f.default), f"model.{name} re-declared with another type/default"
        assert docs_shape.get(name) and docs_section[name] == docs_shape[name], name
    # Each shape field set through the YAML/override path arrives in the ModelConfig the trainer builds.
    for name, f in shape.items():
        value = _other_value(f)
        extra = {"heads": ["model.hidden=256"], "kv_heads": [], "max_position": []}.get(name, [])
        cfg = load_config(CONFIGS / "tiny.yaml", [*extra, f"model.{name}={value}"])
        assert getattr(cfg.model.shape(), name) == value, name
        assert isinstance(cfg.model.shape(), ModelConfig) and type(cfg.model.shape()) is ModelConfig
    assert ModelSection().shape() == ModelConfig()
    assert "| `model.rope_theta` | `10000.0` |" in field_table()


def test_model_shape_errors_name_the_yaml_key():
    with pytest.raises(ValueError, match=r"config field `model\.heads` must be a divisor of hidden = 130, got 4"):
        load_config(CONFIGS / "tiny.yaml", ["model.hidden=130"])
    with pytest.raises(ValueError, match=r"config field `model\.rope_theta` must be > 0, got -1\.0"):
        load_config(CONFIGS / "tiny.yaml", ["model.rope_theta=-1"])
    # The shape of a loaded checkpoint is its own: the shape fields are not checked then.
    assert load_config(CONFIGS / "tiny.yaml", ["model.path=/nowhere", "model.hidden=130"]).model.hidden == 130


def test_nested_entropy_errors_take_the_yaml_prefix_without_rewriting():
    """aent.EntropyConfig validates under the caller's prefix (aent.validation.check), not a string replace."""
    with pytest.raises(ValueError, match=r"^config field `entropy\.clamp_p` must be in \[0, 1\), got 1\.5$"):
        load_config(CONFIGS / "tiny.yaml", ["entropy.clamp_p=1.5"])
    with pytest.raises(ValueError, match=r"^EntropyConfig\.clamp_p must be in \[0, 1\), got 1\.5$"):
        aent.EntropyConfig(clamp_p=1.5)


# ------------------------------------------------------------------------------ issue 25: config edges
@pytest.mark.parametrize(("text", "needle"), [
    ("seed: 1\nmax_steps: 3\nseed: 2\n", r"duplicate key 'seed' \(first at line 1; keep one\) at line 3, column 1"),
    ("entropy:\n  method: aent\n  method: none\n", r"duplicate key 'method' \(first at line 2; keep one\) at line 3"),
])
def test_duplicate_yaml_keys_are_errors_naming_file_and_line(tmp_path, text, needle):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"config file '.*dup\.yaml' is not valid YAML: {needle}"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config_file_is_an_error(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"config file '.*empty\.yaml' is empty \(line 1: no fields\)"):
        load_config(path)


@pytest.mark.parametrize(("override", "needle"), [
    ("seed=99999999999999999999999", r"`seed` must be an int in \[0, 4294967295\] \(32 bits\), got 99999999999999999999999"),
    ("seed=4294967296", r"`seed` must be an int in \[0, 4294967295\]"),
    ("data.seed=4294967296", r"`data.seed` must be an int in \[0, 4294967295\]"),
    ("entropy.seed=4294967296", r"`entropy.seed` must be an int in \[0, 4294967295\]"),
    ("max_steps=2147483648", r"`max_steps` must be an int of at most 2147483647"),
    ("rollout.group_size=99999999999", r"`rollout.group_size` must be an int of at most 2147483647"),
    ("model.vocab_size=3000000000", r"`model.vocab_size` must be an int of at most 2147483647"),
])
def test_every_int_field_is_range_checked_at_config_time(override, needle):
    with pytest.raises(ValueError, match=needle):
        load_config("tiny", [override])


@given(st.integers(0, 2**32 - 1))
def test_every_32_bit_seed_is_accepted_and_seeds_numpy(seed):
    import numpy as np

    cfg = load_config("tiny", [f"seed={seed}", f"data.seed={seed}"])
    assert cfg.seed == cfg.data.seed == seed
    np.random.seed(cfg.seed)  # noqa: NPY002 - what accelerate's set_seed does with it


def test_overrides_after_resume_are_applied(capsys):
    """`train --config tiny --resume max_steps=0` used to fail in argparse (`unrecognized arguments`); the override
    is now read like the others, so here it reaches the config check (exit 2 naming the field)."""
    from llm.__main__ import main

    assert main(["train", "--config", "tiny", "--resume", "max_steps=0"]) == 2
    assert "config field `max_steps` must be >= 1, got 0" in capsys.readouterr().err
    assert main(["config", "--config", "tiny", "seed=3"]) == 0
    with pytest.raises(SystemExit):
        main(["train", "--config", "tiny", "--resume", "--bogus"])
    assert "unrecognized arguments: --bogus (overrides are key=value" in capsys.readouterr().err
