"""Preemption and kills (issue 14): SIGTERM / SIGUSR1 save the step in progress and stop; save_every_minutes bounds
what a kill -9 loses; resuming afterwards gives exactly the metrics of an uninterrupted run.

The in-process tests signal the test process itself at a chosen point of the loop. The subprocess tests send a
real SIGTERM and a real SIGKILL to ``python -m llm train`` (slow: each run pays the imports)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm.checkpoint import list_checkpoints
from llm.config import load_config
from llm.preempt import Preempted, StopGuard
from llm.train import train

REPO = Path(__file__).resolve().parents[2]
# AEnt (controller state), cosine LR with warm-up (scheduler state): both must come back on resume.
BASE = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
        "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=16", "data.n_test=4",
        "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8", "optim.lr=3e-3",
        "optim.mini_batch_size=4", "optim.micro_batch_size=2", "optim.schedule=cosine", "optim.warmup_steps=2",
        "entropy.method=aent", "entropy.warmup=0", "entropy.band_low=2.0", "entropy.band_high=2.5",
        "entropy.coef_lr=0.01", "keep_checkpoints=20", "progress=false", "tensorboard=false", "eval_every=0"]


def slow_digit_reward(completions, answers):
    """The dense digit-fraction reward of test_train, made slow (0.3 s a step) so a signal lands mid-run."""
    time.sleep(0.3)
    return [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]


def _same_exactly(a: list[dict], b: list[dict]) -> None:
    """Row for row, every metric but the timings bit-for-bit equal (NaN equals NaN)."""
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        keys = {k for k in ra if not k.startswith("time_")}
        assert keys == {k for k in rb if not k.startswith("time_")}
        for k in keys:
            x, y = ra[k], rb[k]
            same = x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
            assert same, (ra["step"], k, x, y)


def _rows(d: Path) -> list[dict]:
    return [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x.strip()]


# ------------------------------------------------------------------------------------------ in process
def _cfg(tmp: Path, name: str, *extra: str):
    return load_config("tiny", [*BASE, "max_steps=4", "reward=tests.llm.test_train:digit_reward",
                                f"output_dir={tmp / name}", f"cache_dir={tmp / 'cache'}", *extra])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preempt")
    cfg = _cfg(tmp, "ref")
    train(cfg)
    return tmp, _rows(Path(cfg.output_dir))


def _signal_during_rollout(monkeypatch, at_call: int, signum: int, times: int = 1) -> None:
    import llm.train as T

    original, calls = T.rollout, {"n": 0}

    def signalled(*a, **k):
        calls["n"] += 1
        if calls["n"] == at_call:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return original(*a, **k)

    monkeypatch.setattr(T, "rollout", signalled)


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_saves_the_step_in_progress_then_resume_matches(reference, monkeypatch, sig):
    tmp, ref = reference
    cfg = _cfg(tmp, f"sig{int(sig)}")
    _signal_during_rollout(monkeypatch, at_call=2, signum=sig)
    before = signal.getsignal(sig)
    with pytest.raises(Preempted) as stop:
        train(cfg)
    assert signal.getsignal(sig) == before  # the handlers are restored
    assert stop.value.step == 2 and stop.value.exit_code == 128 + int(sig)
    assert f"stopped by {sig.name} after saving a checkpoint of step 2" in str(stop.value)
    out = Path(cfg.output_dir)
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002"] and not (out / "final").exists()
    _same_exactly(ref[:2], _rows(out))
    monkeypatch.undo()
    train(_cfg(tmp, f"sig{int(sig)}", "resume=true"))
    _same_exactly(ref, _rows(out))


def test_a_second_signal_stops_at_once_keeping_the_last_completed_step(reference, monkeypatch):
    tmp, ref = reference
    cfg = _cfg(tmp, "twice")
    _signal_during_rollout(monkeypatch, at_call=3, signum=signal.SIGTERM, times=2)
    with pytest.raises(Preempted, match="stopped at once by a second SIGTERM"):
        train(cfg)
    out = Path(cfg.output_dir)
    # step 3 was abandoned mid-rollout; completed step 2 was saved on the way out
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002"]
    monkeypatch.undo()
    train(_cfg(tmp, "twice", "resume=true"))
    _same_exactly(ref, _rows(out))


def test_save_every_minutes_checkpoints_on_the_clock(reference, monkeypatch):
    import llm.preempt as P

    tmp, ref = reference
    clock = {"t": 0.0}

    def fake_monotonic():  # 40 s of "training" per call: a checkpoint every 2nd poll with a 1-minute period
        clock["t"] += 40.0
        return clock["t"]

    monkeypatch.setattr(P, "_now", fake_monotonic)
    cfg = _cfg(tmp, "clock", "save_every_minutes=1")
    train(cfg)
    saved = [int(p.name.split("-")[1]) for p in list_checkpoints(cfg.output_dir)]
    # clock reads: init 40, enter 80; poll(1) 120 (40 s since, no); poll(2) 160 (80 s, save; saved() 200);
    # poll(3) 240 (40 s, no); poll(4) 280 (80 s, save; step 4 is the last step anyway)
    assert saved == [2, 4]
    _same_exactly(ref, _rows(Path(cfg.output_dir)))
    with pytest.raises(ValueError, match="save_every_minutes` must be >= 0"):
        _cfg(tmp, "x", "save_every_minutes=-1")


def test_guard_outside_the_main_thread_installs_nothing():
    import threading

    before = signal.getsignal(signal.SIGTERM)
    seen = []
    t = threading.Thread(target=lambda: seen.append(StopGuard().__enter__()._old))
    t.start()
    t.join()
    assert seen == [{}] and signal.getsignal(signal.SIGTERM) is before


# ----------------------------------------------------------------------------------------- subprocesses
SUB = [*BASE, "max_steps=8", "reward=tests.llm.test_preempt:slow_digit_reward"]


def _launch(out: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "llm", "train", "--config", "tiny", *SUB, f"output_dir={out}",
                             f"cache_dir={cache}", *extra], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _wait_until(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (rc {proc.returncode}) before the test could signal it: "
                                 f"{proc.stderr.read()[-2000:]}")
        assert time.monotonic() < end, "timed out waiting for the run"
        time.sleep(0.05)


def _n_rows(out: Path) -> int:
    p = out / "metrics.jsonl"
    return sum(1 for x in p.read_text().splitlines() if x.endswith("}")) if p.is_file() else 0


@pytest.fixture(scope="module")
def sub_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preempt-sub")
    rc, err = _finish(_launch(tmp / "ref", tmp / "cache"))
    assert rc == 0, err[-2000:]
    return tmp, _rows(tmp / "ref")


@pytest.mark.slow
def test_real_sigterm_then_resume_equals_uninterrupted(sub_reference):
    tmp, ref = sub_reference
    out = tmp / "sigterm"
    proc = _launch(out, tmp / "cache")
    _wait_until(proc, lambda: _n_rows(out) >= 2)
    proc.send_signal(signal.SIGTERM)
    rc, err = _finish(proc)
    assert rc == 128 + signal.SIGTERM, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM after saving a checkpoint of step "), err[-2000:]
    k = int(last.split("step ")[1].split(";")[0])
    assert 2 <= k < 8 and list_checkpoints(out)[-1].name == f"step-{k:08d}" and not (out / "final").exists()
    _same_exactly(ref[:k], _rows(out))
    rc, err = _finish(_launch(out, tmp / "cache", "--resume"))
    assert rc == 0, err[-2000:]
    _same_exactly(ref, _rows(out))


@pytest.mark.slow
def test_real_kill_9_then_resume_equals_uninterrupted(sub_reference):
    tmp, ref = sub_reference
    out = tmp / "kill9"
    # save_every_minutes is safe to change on resume, so the reference run (without it) is the same run
    proc = _launch(out, tmp / "cache", "save_every_minutes=1e-9")  # a checkpoint after every step
    _wait_until(proc, lambda: len(list_checkpoints(out)) >= 2)
    proc.kill()
    rc, _ = _finish(proc)
    assert rc == -signal.SIGKILL and not (out / "final").exists()
    k = int(list_checkpoints(out)[-1].name.split("-")[1])
    assert 2 <= k < 8
    rc, err = _finish(_launch(out, tmp / "cache", "--resume"))
    assert rc == 0, err[-2000:]
    _same_exactly(ref, _rows(out))


@pytest.mark.slow
def test_sigterm_to_a_two_process_run_then_resume_equals_one_process(tmp_path):
    """SIGTERM to the whole job (as SLURM sends it): both processes agree on the step, save it together, and the
    resumed 2-process run equals an uninterrupted 1-process run (to the tolerance of tests/llm/test_distributed.py).
    """
    import shutil

    from tests.llm.test_distributed import ARGS

    args = [a for a in ARGS if not a.startswith(("max_steps=", "reward="))]
    args += ["max_steps=8", "reward=tests.llm.test_preempt:slow_digit_reward"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "ACCELERATE_USE_CPU": "true"}
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    two = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no"]

    def start(cmd, out, *extra):
        return subprocess.Popen([*cmd, "-m", "llm", "train", "--config", "tiny", *args, f"output_dir={out}",
                                 f"cache_dir={tmp_path / 'cache'}", *extra], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    rc, err = _finish(start([sys.executable], tmp_path / "one"))
    assert rc == 0, err[-2000:]
    out = tmp_path / "two"
    proc = start(two, out)
    _wait_until(proc, lambda: _n_rows(out) >= 2)
    os.killpg(proc.pid, signal.SIGTERM)
    rc, err = _finish(proc)
    assert rc != 0 and "stopped by SIGTERM after saving a checkpoint of step" in err, err[-2000:]
    k = int(list_checkpoints(out)[-1].name.split("-")[1])
    assert 2 <= k < 8 and _n_rows(out) == k and not (out / "final").exists()
    rc, err = _finish(start(two, out, "--resume"))
    assert rc == 0, err[-2000:]
    one, resumed = _rows(tmp_path / "one"), _rows(out)
    assert [r["step"] for r in one] == [r["step"] for r in resumed] == list(range(1, 9))
    for a, b in zip(one, resumed):
        for key in a:
            if not key.startswith("time_") and key != "num_processes":
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key)


# ------------------------------------------------------------------- metrics.jsonl rebuilt on resume (issue 25)
@pytest.fixture(scope="module")
def killed_run(sub_reference):
    """A run killed with -9 after at least 3 checkpoints (one after every step); tests resume copies of it."""
    tmp, _ = sub_reference
    out = tmp / "killed"
    proc = _launch(out, tmp / "cache", "save_every_minutes=1e-9")
    _wait_until(proc, lambda: len(list_checkpoints(out)) >= 3)
    proc.kill()
    _finish(proc)
    return out


def _copy_of(killed_run: Path, name: str) -> Path:
    import shutil

    out = killed_run.parent / name
    shutil.copytree(killed_run, out)
    return out


def _resume_cli(out: Path, cache: Path) -> tuple[int, str]:
    proc = _launch(out, cache, "--resume")
    stdout, err = proc.communicate(timeout=300)
    return proc.returncode, stdout + err


def _metrics_warnings(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("warning:") and "metrics.jsonl" in ln]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["deleted", "garbage line"])
def test_resume_rebuilds_a_deleted_or_garbled_metrics_file(sub_reference, killed_run, damage):
    """A deleted metrics.jsonl used to lose rows 1..k; a garbage line stopped the resume (exit 2). Both now come
    back complete from the checkpoint's rows, with one warning line, equal to the uninterrupted run."""
    tmp, ref = sub_reference
    out = _copy_of(killed_run, f"damaged-{damage.split()[0]}")
    path = out / "metrics.jsonl"
    if damage == "deleted":
        path.unlink()
    else:
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], "{garbage", *lines[1:]]) + "\n")
    rc, text = _resume_cli(out, tmp / "cache")
    assert rc == 0, text[-2000:]
    assert len(_metrics_warnings(text)) == 1, text[-2000:]
    _same_exactly(ref, _rows(out))


@pytest.mark.slow
def test_kill_9_inside_the_metrics_rewrite_then_resume_equals_uninterrupted(sub_reference, killed_run):
    """Issue 25's done-when: a kill -9 while a resume rewrites metrics.jsonl (the test hook pauses it halfway),
    then another resume, leaves metrics.jsonl equal to an uninterrupted run's on every non-timing key."""
    from llm.metrics import PAUSE_ENV

    tmp, ref = sub_reference
    out = _copy_of(killed_run, "killed-in-rewrite")
    err_file = tmp / "rewrite.err"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", PAUSE_ENV: "60"}
    with err_file.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "llm", "train", "--config", "tiny", *SUB, f"output_dir={out}",
                                 f"cache_dir={tmp / 'cache'}", "--resume"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
        _wait_until(proc, lambda: "metrics rewrite paused" in err_file.read_text())
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (out / ".metrics.jsonl.tmp").is_file()  # killed inside the rewrite, half of it written
    rc, text = _resume_cli(out, tmp / "cache")
    assert rc == 0, text[-2000:]
    _same_exactly(ref, _rows(out))
