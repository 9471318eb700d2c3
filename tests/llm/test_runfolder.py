"""Run folders and faults (issue 14): each case a new user can hit ends in one line naming the file, field or step,
found before the model is built where it can be, and nothing of another run is lost or mixed in."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

from llm.__main__ import main
from llm.config import load_config
from llm.metrics import MetricsLogger, read_metrics
from llm.runfolder import (
    RUN_FILES,
    SAFE_TO_CHANGE,
    RunFolderError,
    disk_full_error,
    identity_diff,
    prepare_run_folder,
    run_id,
)

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
        "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=16", "data.n_test=4",
        "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8",
        "optim.mini_batch_size=8", "optim.micro_batch_size=8", "tensorboard=false", "progress=false"]


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if training gets as far as building anything (the checks must come first)."""
    import llm.train as T

    def built(*a, **k):
        raise AssertionError("the model was being built before the run folder was checked")

    monkeypatch.setattr(T, "setup", built)


def _cli(capsys, out_dir, *extra) -> tuple[int, str]:
    code = main(["train", "--config", "tiny", *TINY, f"output_dir={out_dir}", *extra])
    err = capsys.readouterr().err
    return code, err


def _one_line(err: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


def _fake_run(d: Path, config: dict | None = None, rows: int = 3) -> None:
    """A folder as a finished run leaves it: metrics, config.yaml, a checkpoint with a manifest, final/."""
    import yaml

    from llm.checkpoint import MANIFEST, TRAINER_STATE, checkpoint_dir

    config = config or load_config("tiny", TINY).to_dict()
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps({"step": i + 1}) + "\n" for i in range(rows)))
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    ck = checkpoint_dir(d, rows)
    ck.mkdir(parents=True)
    torch.save({"step": rows, "config": config}, ck / TRAINER_STATE)
    (ck / MANIFEST).write_text(json.dumps({"step": rows, "run_id": run_id(config), "config": config,
                                           "files": {TRAINER_STATE: (ck / TRAINER_STATE).stat().st_size}}))
    (d / "final").mkdir()


# ------------------------------------------------------------------------------------------- run folders
def test_a_folder_holding_a_run_is_refused_before_the_model_is_built(tmp_path, capsys, no_model):
    _fake_run(tmp_path / "run")
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    code, err = _cli(capsys, tmp_path / "run")
    assert code == 2
    _one_line(err)
    assert "holds another run (3 metrics rows, checkpoints step-00000003, final/)" in err
    assert "--resume" in err and "--overwrite" in err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before  # untouched


def test_empty_or_missing_folders_are_not_refused(tmp_path):
    cfg = load_config("tiny", [*TINY, f"output_dir={tmp_path / 'new' / 'deep'}"]).to_dict()
    prepare_run_folder(cfg, resume=False, overwrite=False)
    assert (tmp_path / "new" / "deep").is_dir()
    (tmp_path / "new" / "deep" / "notes.txt").write_text("mine")  # a user's own file is not a run
    (tmp_path / "new" / "deep" / "config.yaml").write_text("seed: 5\n")  # nor a run that died before step 1
    (tmp_path / "new" / "deep" / "metrics.jsonl").write_text("")
    prepare_run_folder(cfg, resume=False, overwrite=False)


def test_overwrite_deletes_only_the_run_files(tmp_path, capsys):
    d = tmp_path / "run"
    _fake_run(d)
    (d / "notes.txt").write_text("keep me")
    (d / "tb").mkdir()
    cfg = load_config("tiny", [*TINY, f"output_dir={d}"]).to_dict()
    prepare_run_folder(cfg, resume=False, overwrite=True)
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
    assert {"metrics.jsonl", "checkpoints", "final", "config.yaml"} <= set(RUN_FILES)
    with pytest.raises(RunFolderError, match="exclude each other"):
        prepare_run_folder(cfg, resume=True, overwrite=True)


def test_resume_names_the_fields_that_differ_and_allows_safe_ones(tmp_path, capsys, no_model):
    d = tmp_path / "run"
    _fake_run(d)
    code, err = _cli(capsys, d, "seed=3", "optim.lr=0.5", "--resume")
    assert code == 2
    _one_line(err)
    assert "optim.lr: 0.0001 -> 0.5" in err and "seed: 0 -> 3" in err and "step-00000003" in err
    # fields safe to change pass the check (and reach the model build, stubbed here)
    cfg = load_config("tiny", [*TINY, f"output_dir={d}", "max_steps=99", "save_every=5", "progress=true",
                               "keep_checkpoints=7", "eval_every=3"]).to_dict()
    prepare_run_folder(cfg, resume=True, overwrite=False)
    assert {"max_steps", "output_dir", "save_every_minutes"} <= SAFE_TO_CHANGE


def test_resume_without_a_checkpoint_checks_config_yaml(tmp_path):
    import shutil

    d = tmp_path / "run"
    _fake_run(d)
    shutil.rmtree(d / "checkpoints")
    cfg = load_config("tiny", [*TINY, f"output_dir={d}", "entropy.method=aent"]).to_dict()
    with pytest.raises(RunFolderError, match=r"config\.yaml\) has a different config: entropy\.method: 'none' -> 'aent'"):
        prepare_run_folder(cfg, resume=True, overwrite=False)


def test_identity_diff_is_symmetric_and_reports_absent_fields():
    a = {"seed": 0, "max_steps": 5, "optim": {"lr": 1.0}}
    b = {"seed": 0, "max_steps": 9, "optim": {"lr": 2.0, "new": 1}}
    assert identity_diff(a, a) == [] and identity_diff(a, {**a, "max_steps": 7}) == []
    assert identity_diff(a, b) == ["optim.lr: 1.0 -> 2.0", "optim.new: (absent) -> 1"]
    assert run_id(a) == run_id({**a, "max_steps": 1, "output_dir": "x"}) != run_id(b)


def test_a_field_added_since_the_checkpoint_counts_as_its_default():
    """A checkpoint written before a config field existed resumes while the field keeps its default."""
    now = load_config("tiny", TINY).to_dict()
    old = json.loads(json.dumps(now))
    del old["model"]["init_std"], old["save_every_minutes"]
    assert identity_diff(old, now) == []
    assert identity_diff(old, {**now, "model": {**now["model"], "init_std": 0.5}}) == ["model.init_std: 0.02 -> 0.5"]


# ------------------------------------------------------------------------------------------ output_dir
def test_output_dir_that_is_a_file(tmp_path, capsys, no_model):
    f = tmp_path / "run.txt"
    f.write_text("x")
    code, err = _cli(capsys, f)
    assert code == 2
    _one_line(err)
    assert f"output_dir` = '{f}' is a file" in err
    code, err = _cli(capsys, f / "sub")  # a parent that is a file
    assert code == 2
    _one_line(err)
    assert "cannot create output_dir" in err and str(f / "sub") in err


def test_output_dir_not_writable(tmp_path, capsys, no_model):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        if os.access(d, os.W_OK):  # root ignores permission bits: use sysfs, which refuses new files to anyone
            d = Path("/sys/kernel")
            if not d.is_dir() or os.access(d, os.W_OK) and _can_create(d):
                pytest.skip("no unwritable folder available to this user")
        code, err = _cli(capsys, d)
        assert code == 2
        _one_line(err)
        assert f"output_dir '{d}' is not writable" in err
        code, err = _cli(capsys, d / "new-run")
        assert code == 2
        _one_line(err)
        assert "cannot create output_dir" in err
    finally:
        (tmp_path / "ro").chmod(0o755)


def _can_create(d: Path) -> bool:
    try:
        (d / ".aent-probe").write_bytes(b"")
    except OSError:
        return False
    (d / ".aent-probe").unlink()
    return True


# ----------------------------------------------------------------------------------------------- full disk
def test_full_disk_errors_become_one_line():
    """The two ways a full disk surfaces, produced for real by writing to /dev/full."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    caught = []
    try:
        torch.save({"w": torch.zeros(4096)}, "/dev/full")
    except RuntimeError as err:
        caught.append(err)
    try:
        with open("/dev/full", "a") as fh:
            fh.write("x" * 10)
    except OSError as err:
        caught.append(err)
    assert len(caught) == 2
    for err in caught:
        clean = disk_full_error(err, "checkpoint step-00000002", "/dev/full")
        assert isinstance(clean, RunFolderError) and "no space left on device" in str(clean)
        assert "while writing checkpoint step-00000002 to '/dev/full'" in str(clean)
        assert "\n" not in str(clean)
    other = RuntimeError("CUDA out of memory")
    assert disk_full_error(other, "x", "/tmp") is other


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    import llm.checkpoint as C
    from tests.llm.test_checkpoint import _objects

    acc, model, opt, sched, control = _objects(0)
    C.save_checkpoint(acc, tmp_path, 1, control=control, metrics=[], config={"seed": 0})
    real_save = torch.save

    def to_full_disk(obj, f, *a, **k):  # the trainer state write hits a full disk
        return real_save(obj, "/dev/full", *a, **k)

    monkeypatch.setattr(C.torch, "save", to_full_disk)
    with pytest.raises(RunFolderError, match=r"no space left on device\?\) while writing checkpoint step-00000002"):
        C.save_checkpoint(acc, tmp_path, 2, control=control, metrics=[], config={"seed": 0})
    monkeypatch.undo()
    assert [p.name for p in C.list_checkpoints(tmp_path)] == ["step-00000001"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))  # the partial save gave its space back


def test_full_disk_while_logging_metrics(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    log = MetricsLogger(tmp_path, progress=False, tensorboard=False)
    log.path = Path("/dev/full")
    with pytest.raises(RunFolderError, match="^no space left on device while writing the metrics of step 4"):
        log.log({"step": 4, "reward_mean": 0.5})


# ------------------------------------------------------------------------------------------ config faults
def test_malformed_yaml_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nmodel:\n  hidden: [32\n  layers: 2\n")
    with pytest.raises(ValueError, match=rf"config file '{bad}' is not valid YAML: .* at line \d+, column \d+"):
        load_config(bad)
    assert main(["train", "--config", str(bad)]) == 2
    _one_line(capsys.readouterr().err)
    with pytest.raises(ValueError, match=r"override 'optim.lr=\[1': the value is not valid YAML"):
        load_config("tiny", ["optim.lr=[1"])


@pytest.mark.parametrize("override", ["optim.lr=inf", "optim.lr=-inf", "optim.lr=nan", "optim.lr=.inf",
                                      "optim.grad_clip=inf", "entropy.coef_lr=nan", "eval_temperature=inf",
                                      "save_every_minutes=inf"])
def test_non_finite_numbers_are_rejected(override):
    field = override.split("=")[0]
    with pytest.raises(ValueError, match=rf"config field `{field}` must be a finite number"):
        load_config("tiny", [override])


def test_non_finite_numbers_in_a_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: .inf\n")
    with pytest.raises(ValueError, match=r"optim\.lr` must be a finite number, got inf"):
        load_config(f)


def test_n_train_zero_is_rejected_for_synthetic_tasks(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"data\.n_train` must be >= 1 for the synthetic task 'small_arithmetic'"):
        load_config("tiny", ["data.n_train=0", "model.tokenizer_path=/some/tokenizer"])
    assert load_config("tiny", ["data.task=gsm8k:train", "data.n_train=0"]).data.n_train == 0  # all rows


# ---------------------------------------------------------------------------------------- torn metrics
def test_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1, "x": 0.5}\n{"step": 2, "x": 0.25}\n{"step": 3, "x": 0.1')
    with pytest.warns(RuntimeWarning, match=r"metrics\.jsonl' line 3 is cut short"):
        rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2]
    with pytest.warns(RuntimeWarning, match="line 3 is cut short"):  # resuming from step 2 keeps 1..2
        MetricsLogger(tmp_path, start_step=2, progress=False, tensorboard=False).close()
    assert [json.loads(x)["step"] for x in p.read_text().splitlines()] == [1, 2]


def test_a_fresh_run_is_not_blocked_by_a_torn_file(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\n{"ste')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: a fresh run starts an empty file
        MetricsLogger(tmp_path, start_step=0, progress=False, tensorboard=False).close()
    assert p.read_text() == ""


def test_a_bad_line_in_the_middle_names_the_file_and_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl' line 2 is not a JSON object"):
        read_metrics(p)


def test_resume_with_another_model_shape_names_the_shape_fields(tmp_path, capsys, no_model):
    d = tmp_path / "run"
    _fake_run(d)
    code, err = _cli(capsys, d, "model.hidden=64", "model.layers=2", "--resume")
    assert code == 2
    _one_line(err)
    assert "model.hidden: 32 -> 64; model.layers: 1 -> 2" in err


@pytest.mark.parametrize("safe", [True, False])
def test_a_truncated_weights_file_in_model_path_is_one_line(tmp_path, safe):
    """A save_pretrained folder whose weights file was cut short (an interrupted copy)."""
    import transformers

    from llm.model import load_model

    cfg = transformers.Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False)
    model = transformers.Qwen2ForCausalLM(cfg)
    model.save_pretrained(tmp_path)
    if not safe:  # the older pickle format
        (tmp_path / "model.safetensors").unlink()
        torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    f = tmp_path / ("model.safetensors" if safe else "pytorch_model.bin")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"cannot read the weights in '{tmp_path}' \[{f.name} \(\d+ bytes\)\]: "
                                         r".*\(is a file cut short\? copy it again\)$") as err:
        load_model(tmp_path)
    assert "\n" not in str(err.value)


def test_identity_diff_takes_the_defaults_passed_in():
    """Absent fields take the values of the ``defaults`` given, not those of llm.config's TrainConfig."""
    old, now = {"seed": 0}, {"seed": 0, "optim": {"lr": 0.5}}
    assert identity_diff(old, now, {"optim": {"lr": 0.5}}) == []
    assert identity_diff(old, now, {"optim": {"lr": 1.0}}) == ["optim.lr: 1.0 -> 0.5"]
    assert identity_diff(old, now, {}) == ["optim.lr: (absent) -> 0.5"]
