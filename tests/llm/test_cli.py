"""The command line: `python -m llm {train,config,fields,plot,eval}`; user errors print one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm.__main__ import main
from llm.config import load_config
from llm.config_docs import field_table

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
        "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=16", "data.n_test=4",
        "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8",
        "optim.mini_batch_size=8", "optim.micro_batch_size=8", "tensorboard=false", "progress=false"]


def test_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "llm", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    for cmd in ("train", "eval", "plot", "config", "fields"):
        assert cmd in out.stdout


def test_fields_prints_the_generated_table(capsys):
    assert main(["fields"]) == 0
    assert capsys.readouterr().out.strip() == field_table().strip()


def test_config_prints_the_resolved_yaml(capsys):
    import yaml

    assert main(["config", "--config", str(REPO / "configs" / "tiny.yaml"), "max_steps=7", "entropy.method=aent"]) == 0
    d = yaml.safe_load(capsys.readouterr().out)
    assert d["max_steps"] == 7 and d["entropy"]["method"] == "aent" and d["entropy"]["band_low"] == 0.15


@pytest.mark.parametrize("args, needle", [
    (["max_stepz=3"], "did you mean 'max_steps'?"),
    (["rollout.group_size=0"], "rollout.group_size` must be >= 2"),
    (["model.path=/no/such/model"], "model.path"),
])
def test_user_errors_print_one_line_and_exit_2(tmp_path, capsys, args, needle):
    code = main(["train", "--config", str(REPO / "configs" / "tiny.yaml"), *TINY, f"output_dir={tmp_path}",
                 f"cache_dir={tmp_path / 'cache'}", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_config_file(capsys):
    assert main(["train", "--config", "nope.yaml"]) == 2
    assert "not found" in capsys.readouterr().err


def test_train_then_resume_then_plot(tmp_path, capsys):
    run = tmp_path / "run-seed0"
    common = ["train", "--config", str(REPO / "configs" / "tiny.yaml"), *TINY, f"output_dir={run}",
              f"cache_dir={tmp_path / 'cache'}", "entropy.method=aent"]
    assert main([*common, "max_steps=1"]) == 0
    assert main([*common, "max_steps=2", "--resume"]) == 0  # continues at step 2
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert load_config(run / "config.yaml").max_steps == 2
    other = tmp_path / "run-seed1"
    other.mkdir()
    (other / "metrics.jsonl").write_text("".join(json.dumps({**r, "entropy": None}) + "\n" for r in rows))
    out = tmp_path / "curves.png"
    assert main(["plot", str(run), str(other), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no metrics file" in capsys.readouterr().err


def test_eval_subcommand_reaches_the_evaluator(tmp_path, capsys):
    code = main(["eval", "--model", str(tmp_path / "no-model"), "--task", "arithmetic", "--n", "2"])
    assert code == 2 and "no-model" in capsys.readouterr().err


def test_interrupts_preemption_and_a_full_disk_exit_with_one_line(tmp_path, monkeypatch, capsys):
    import errno
    import signal

    import llm.train as T
    from llm.preempt import Preempted

    cases = [(KeyboardInterrupt(), 130, "interrupted; resume with the same command plus --resume"),
             (Preempted(signal.SIGTERM, 4), 143, "stopped by SIGTERM after saving a checkpoint of step 4; resume"),
             (Preempted(signal.SIGUSR1, 3), 138, "stopped by SIGUSR1 after saving a checkpoint of step 3; resume"),
             (OSError(errno.ENOSPC, "No space left on device"), 2,
              f"error: no space left on device while writing the run's files to '{tmp_path / 'run'}'"),
             (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"), 2,
              "error: the write was cut short (no space left on device?) while writing the run's files")]
    for exc, code, message in cases:
        def stops(cfg, exc=exc):
            raise exc

        monkeypatch.setattr(T, "train", stops)
        assert main(["train", "--config", "tiny", *TINY, f"output_dir={tmp_path / 'run'}"]) == code
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
    monkeypatch.setattr(T, "train", lambda cfg: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # other errors keep their traceback
        main(["train", "--config", "tiny", *TINY, f"output_dir={tmp_path / 'run'}"])
