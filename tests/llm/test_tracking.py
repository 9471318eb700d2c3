"""report_to: every tracker gets the metrics.jsonl rows through accelerate's trackers, offline, with no network.

Each tracker's own store is read back and compared with the rows logged: TensorBoard's event files, wandb's
offline run, trackio's local database. A tracker whose package is missing is skipped here and, in a run, stops
it with one message naming the package.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from llm.config import load_config
from llm.metrics import MetricsLogger
from llm.tracking import flat_config, make_trackers, run_name

ROWS = [{"step": s, "reward_mean": 0.25 * s, "entropy": 1.0 / s, "accuracy": 0.5, "flag": True, "bad": math.nan}
        for s in (1, 2, 3)]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def _log(run_dir, report_to, before_close=None):
    log = MetricsLogger(run_dir, tensorboard=False, report_to=report_to, progress=False,
                        config=load_config(None, ["max_steps=3"]).to_dict())
    trackers = list(log._trackers)
    for row in ROWS:
        log.log(row)
    if before_close is not None:
        before_close(*trackers)
    log.close()
    return trackers


def test_tensorboard_events_hold_the_rows(offline):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = offline / "run"
    _log(run, ("tensorboard",))
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"reward_mean", "entropy", "accuracy"}  # bool and NaN are not scalars
    got = [(e.step, e.value) for e in acc.Scalars("reward_mean")]
    assert got == [(r["step"], pytest.approx(r["reward_mean"])) for r in ROWS]


def test_wandb_offline_run_holds_the_rows(offline):
    pytest.importorskip("wandb")
    run = offline / "run"
    seen = {}

    def inspect(tracker):  # the run object is readable until it finishes
        seen.update(offline=tracker.run.offline, name=tracker.run.name, step=tracker.run.step,
                    summary={k: tracker.run.summary[k] for k in ("reward_mean", "entropy", "accuracy")},
                    lr=tracker.run.config["optim.lr"], max_steps=tracker.run.config["max_steps"])

    _log(run, ("wandb",), inspect)
    assert seen["offline"] and seen["name"] == run_name(run) == f"{run.parent.name}/run"
    # wandb commits a step when the next one starts (finish commits the last): step 2 is the latest committed.
    assert seen["summary"] == {k: pytest.approx(ROWS[-2][k]) for k in ("reward_mean", "entropy", "accuracy")}
    assert seen["step"] == ROWS[-1]["step"]
    assert seen["lr"] == load_config(None).optim.lr and seen["max_steps"] == 3
    # What `wandb sync` uploads later (wandb's service may still be writing it, so only its presence is checked).
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def test_trackio_local_run_holds_the_rows(offline):
    pytest.importorskip("trackio")
    from trackio.sqlite_storage import SQLiteStorage

    run = offline / "run"
    _log(run, ("trackio",))
    logs = SQLiteStorage.get_logs("aent", run_name(run))
    assert [(r["step"], r["reward_mean"], r["entropy"]) for r in logs] == [
        (r["step"], pytest.approx(r["reward_mean"]), pytest.approx(r["entropy"])) for r in ROWS]


def test_trainer_feeds_the_trackers(offline):
    from llm.train import train

    pytest.importorskip("wandb")
    run = offline / "run"
    cfg = load_config("tiny", ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2",
                               "model.intermediate=64", "model.vocab_size=300", "model.warm_start_steps=0",
                               "data.n_train=16", "data.n_test=0", "rollout.prompts_per_step=2",
                               "rollout.group_size=2", "rollout.max_new_tokens=4", "optim.mini_batch_size=4",
                               "optim.micro_batch_size=4", "progress=false", "eval_every=0", "max_steps=2",
                               "report_to=[tensorboard,wandb]", f"output_dir={run}", f"cache_dir={offline / 'c'}"])
    rows = train(cfg)
    assert [r["step"] for r in rows] == [1, 2] and (run / "tb").is_dir()
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def test_bad_tracker_names_and_missing_packages(tmp_path):
    with pytest.raises(ValueError, match="config field `report_to` must be a list of tensorboard, wandb"):
        load_config(None, ["report_to=tensorbord"])
    with pytest.raises(ValueError, match="unknown tracker 'comet'"):
        make_trackers(["comet"], tmp_path)
    if importlib.util.find_spec("mlflow") is None:
        with pytest.raises(ValueError, match="lists mlflow, but the mlflow package is not installed"):
            make_trackers(["mlflow"], tmp_path)
    cfg = load_config(None, ["report_to=tensorboard,wandb", "tensorboard=false"])
    assert cfg.report_to == ("tensorboard", "wandb") and cfg.trackers == ("wandb",)
    assert load_config(None, ["report_to="]).trackers == ()


def test_flat_config():
    assert flat_config({"a": 1, "b": {"c": [1, 2], "d": None}}) == {"a": 1, "b.c": "[1, 2]", "b.d": None}
