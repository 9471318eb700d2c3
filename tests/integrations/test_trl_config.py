"""AEntGRPOConfig (aent.integrations.trl_config): TRL options parsed by TRL's own parser, and the example script.

References: ``trl.TrlParser`` (command line and YAML, as a TRL user runs it); :data:`aent.PRESETS` for what a
preset means; the dataclass itself for the field table that docs/integrations/trl.md embeds.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from trl import GRPOConfig, TrlParser  # noqa: E402

from aent import PRESETS, EntropyConfig  # noqa: E402
from aent.integrations.trl_config import (  # noqa: E402
    FROM_TRL,
    PREFIX,
    AEntGRPOConfig,
    field_table,
    required_fields,
)

REPO = Path(__file__).resolve().parents[2]
BASE = ["--output_dir", "/tmp/aent-trl-config", "--use_cpu", "true", "--bf16", "false", "--report_to", "none"]


def _parse(argv: list[str]) -> AEntGRPOConfig:
    (args,) = TrlParser([AEntGRPOConfig]).parse_args_and_config(BASE + argv)
    return args


def _example():
    spec = importlib.util.spec_from_file_location("trl_aent", REPO / "examples" / "trl_aent.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["trl_aent"] = mod  # the dataclass needs its module registered
    spec.loader.exec_module(mod)
    return mod


def test_every_entropy_field_is_a_trl_option_except_those_trl_carries():
    names = {f.name for f in dataclasses.fields(AEntGRPOConfig)}
    grpo = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert grpo < names
    for f in dataclasses.fields(EntropyConfig):
        assert (PREFIX + f.name in names) == (f.name not in FROM_TRL), f.name
    assert set(FROM_TRL.values()) <= grpo  # clip and aggregation are GRPOConfig's fields
    assert "aent_preset" in names and not {n for n in names - grpo if not n.startswith(PREFIX)}


def test_command_line_sets_the_entropy_control():
    args = _parse(["--aent_preset", "aent", "--aent_band_low", "0.1", "--aent_warmup", "5",
                   "--loss_type", "grpo", "--epsilon", "0.2", "--epsilon_high", "0.28", "--seed", "7"])
    cfg = args.entropy_config()
    assert cfg == PRESETS["aent"].replace(band_low=0.1, warmup=5, loss_agg="seq-mean-token-mean", eps_high=0.28,
                                          seed=7)


def test_yaml_and_command_line_together(tmp_path):
    yaml = tmp_path / "run.yaml"
    yaml.write_text("aent_method: aent\naent_ent_coef: 0.001\naent_clamp_p: 0.25\naent_band_low: 0.3\n"
                    "aent_band_high: 0.5\naent_coef_lr: 0.0005\naent_warmup: 10\naent_coef_min: 1.0e-4\n"
                    "aent_coef_max: 0.005\nloss_type: dr_grpo\nmax_completion_length: 64\n")
    args = _parse(["--config", str(yaml), "--aent_band_high", "0.6"])  # the command line wins over the YAML
    cfg = args.entropy_config()
    assert (cfg.method, cfg.ent_coef, cfg.clamp_p, cfg.band_low, cfg.band_high, cfg.coef_lr, cfg.warmup) == (
        "aent", 0.001, 0.25, 0.3, 0.6, 0.0005, 10)
    assert (cfg.coef_min, cfg.coef_max, cfg.loss_agg, cfg.norm_const) == (1e-4, 0.005, "seq-mean-token-sum-norm", 64.0)


def test_no_silent_default_and_clear_errors():
    with pytest.raises(ValueError, match="aent_preset .* or aent_method .*aent calibrate.*no default"):
        _parse([])
    with pytest.raises(ValueError, match=r"aent_method='aent' without aent_preset needs .*aent_band_low"):
        _parse(["--aent_method", "aent", "--aent_ent_coef", "0.002"])
    with pytest.raises(ValueError, match="did you mean 'aent'"):
        _parse(["--aent_preset", "aentt"])
    with pytest.raises(ValueError, match="AEntGRPOConfig.aent_band_high must be >= band_low"):
        _parse(["--aent_preset", "aent", "--aent_band_high", "0.1"])
    with pytest.raises(ValueError, match="disagrees with aent_preset"):
        _parse(["--aent_preset", "aent", "--aent_method", "sac"])
    with pytest.raises(ValueError, match="clip range .* set epsilon=0.2, epsilon_high=0.28"):
        _parse(["--aent_preset", "clip_higher"])
    assert _parse(["--aent_preset", "clip_higher", "--epsilon_high", "0.28"]).entropy_config().eps_high == 0.28
    with pytest.raises(ValueError, match="GRPOConfig.entropy_coef"):
        _parse(["--aent_preset", "aent", "--entropy_coef", "0.01"])


def test_required_constants_are_what_every_preset_of_the_method_fixes():
    assert required_fields("aent") == ("clamp_p", "ent_coef", "band_low", "band_high", "coef_lr", "warmup",
                                       "coef_min", "coef_max")
    assert required_fields("none") == ()
    # a method given with its constants needs no preset
    fields = {PREFIX + k: getattr(PRESETS["sac"], k) for k in required_fields("sac")}
    assert AEntGRPOConfig(output_dir="/tmp/x", use_cpu=True, aent_method="sac", **fields).entropy_config() == \
        PRESETS["sac"].replace(seed=42)


def test_docs_list_every_field():
    text = (REPO / "docs" / "integrations" / "trl.md").read_text()
    start, end = "<!-- aent-fields:start -->\n", "\n<!-- aent-fields:end -->"
    assert text.split(start, 1)[1].split(end, 1)[0].strip() == field_table().strip()
    for f in dataclasses.fields(AEntGRPOConfig):
        if f.name.startswith(PREFIX):
            assert f"`{f.name}`" in field_table()


def test_example_trains_tiny_qwen2_through_trl_parser_only(tmp_path):
    """The example, driven by its YAML, trains a locally built tiny Qwen2 and logs TRL's metrics and aent's."""
    out = subprocess.run([sys.executable, str(REPO / "examples" / "trl_aent.py"), "--config",
                          str(REPO / "examples" / "trl_aent_tiny.yaml"), "--output_dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    logs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"')]
    assert [r["step"] for r in logs] == [1, 2, 3]
    trl_names = {"reward", "completions/mean_length", "entropy", "entropy_coef", "policy_loss",
                 "clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/high_max", "grad_norm"}
    aent_names = {"clamped_entropy", "sampled_entropy", "entropy_loss", "approx_kl"}
    assert all(trl_names | aent_names <= set(r) for r in logs)
    assert logs[-1]["entropy_coef"] < logs[0]["entropy_coef"]  # clamped entropy ~5.3 above the band [4, 4.5]


def test_real_recipe_parses_as_the_paper_setting():
    """The real-run YAML parses (bf16 and GPU-only fields overridden for this CPU) into the AEnt paper's setting."""
    (script, args) = TrlParser((_example().ScriptArguments, AEntGRPOConfig)).parse_args_and_config(
        ["--config", str(REPO / "examples" / "trl_aent_qwen2.5_math_1.5b.yaml"), "--model", "/m", "--data", "/d",
         "--output_dir", "/tmp/x", "--bf16", "false", "--use_cpu", "true"])
    assert args.entropy_config() == PRESETS["aent"].replace(seed=args.seed)
    assert (args.use_vllm, args.vllm_mode, args.gradient_checkpointing, args.num_generations) == (
        True, "colocate", True, 16)
    assert (args.learning_rate, args.max_completion_length, args.loss_type) == (2e-6, 3072, "dapo")


def test_example_reads_math_and_scores_boxed_answers(shared_data):
    mod = _example()
    data = mod.load_math(str(shared_data / "math_bench" / "math500.jsonl"))
    first = json.loads((shared_data / "math_bench" / "math500.jsonl").read_text().splitlines()[0])
    assert len(data) == 500 and data[0]["prompt"][0]["content"] == first["problem"]
    good = [{"role": "assistant", "content": f"so the answer is \\boxed{{{first['answer']}}}"}]
    assert mod.boxed_reward([good, [{"role": "assistant", "content": "no idea"}]], [first["answer"]] * 2) == [1.0, 0.0]


@pytest.mark.slow
def test_example_on_two_processes_steps_one_controller(tmp_path):
    """Two CPU processes (gloo, DDP as accelerate wraps the policy): the hidden-state path runs under DDP, and both
    ranks run the same lambda and see the same clamped entropy each step (the window is summed over processes)."""
    import shutil

    driver = tmp_path / "driver.py"
    driver.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO / 'examples')!r})\n"
        "import trl_aent\n"
        "tr = trl_aent.build_trainer(sys.argv[1:])\n"
        "tr.train()\n"
        "logs = [r for r in tr.state.log_history if 'clamped_entropy' in r]\n"
        "path = f'{tr.args.output_dir}/rank{tr.accelerator.process_index}.json'\n"
        "open(path, 'w').write(json.dumps({'n': tr.accelerator.num_processes, 'logs': logs}))\n")
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    env = {**os.environ, "PYTHONPATH": str(REPO), "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", str(driver),
                          "--config", str(REPO / "examples" / "trl_aent_tiny.yaml"), "--output_dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [r["n"] for r in ranks] == [2, 2]
    a, b = (r["logs"] for r in ranks)
    assert [x["step"] for x in a] == [x["step"] for x in b] == [1, 2, 3]
    for x, y in zip(a, b):
        assert (x["entropy_coef"], x["clamped_entropy"]) == (y["entropy_coef"], y["clamped_entropy"])
    assert a[-1]["entropy_coef"] < a[0]["entropy_coef"]
