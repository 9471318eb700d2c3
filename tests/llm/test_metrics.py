"""llm.metrics: metrics.jsonl rebuilt on resume from the rows a checkpoint saved, and rewritten atomically.

The rows of a checkpoint are the reference: whatever happened to the file (torn last line, cut short, deleted,
a garbage line in the middle, rows of later steps), the resumed file holds exactly those rows, and one warning line
says what was wrong. The real-process versions (kill -9 inside the rewrite, CLI resume) are in test_preempt.py.
"""

from __future__ import annotations

import json
import math
import os

import pytest

import llm.metrics as M
from llm.metrics import METRICS_FILE, MetricsLogger

SAVED = [{"step": s, "reward_mean": s / 10, "entropy": 1.5 - s / 100, "nan_metric": math.nan if s == 2 else 0.25,
          "time_train_s": 0.01 * s} for s in range(1, 7)]


def _lines(rows):
    return "".join(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
                   + "\n" for r in rows)


def _file_rows(d):
    return [json.loads(x) for x in (d / METRICS_FILE).read_text().splitlines()]


def _resume(d, step=6, rows=SAVED):
    MetricsLogger(d, start_step=step, rows=rows, progress=False, tensorboard=False).close()


EXPECTED = json.loads(json.dumps([{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                                  for r in SAVED]))

DAMAGE = {
    "torn last line": lambda text: text[: len(text) - 25],
    "cut to half": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "garbage line in the middle": lambda text: "\n".join([*text.splitlines()[:3], "}{ not json", *text.splitlines()[3:]]) + "\n",
    "a row changed": lambda text: text.replace('"reward_mean": 0.3', '"reward_mean": 0.9'),
    "binary junk": lambda text: text[:40] + "\x00\xff\x00" + text[60:],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_rebuilt_from_the_checkpoint_rows_with_one_warning(tmp_path, capsys, damage):
    (tmp_path / METRICS_FILE).write_text(DAMAGE[damage](_lines(SAVED)), errors="surrogateescape")
    _resume(tmp_path)
    assert _file_rows(tmp_path) == EXPECTED
    out = capsys.readouterr().out.splitlines()
    warnings = [ln for ln in out if ln.startswith("warning:")]
    assert len(warnings) == 1 and "rebuilt from the checkpoint of step 6 (6 rows, steps 1-6)" in warnings[0], out


def test_a_deleted_file_is_rebuilt(tmp_path, capsys):
    _resume(tmp_path)
    assert _file_rows(tmp_path) == EXPECTED
    assert "metrics.jsonl was missing; rebuilt from the checkpoint of step 6" in capsys.readouterr().out


def test_an_intact_file_is_kept_silently_and_later_rows_dropped(tmp_path, capsys):
    """Rows written after the checkpoint (steps 5 and 6 here, a kill before the next checkpoint) are dropped
    without a warning: they will be recomputed."""
    (tmp_path / METRICS_FILE).write_text(_lines(SAVED))
    _resume(tmp_path, step=4, rows=SAVED[:4])
    assert _file_rows(tmp_path) == EXPECTED[:4]
    assert "warning" not in capsys.readouterr().out


def test_a_kill_inside_the_rewrite_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """The rewrite goes to a temporary file and is renamed over metrics.jsonl only once complete: a process that
    dies before the rename (here: the rename raises) leaves the previous file as it was."""
    original = _lines(SAVED[:3])
    (tmp_path / METRICS_FILE).write_text(original)

    def die(*a):
        raise KeyboardInterrupt  # stands for the process dying at this point

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        _resume(tmp_path)
    assert (tmp_path / METRICS_FILE).read_text() == original
    monkeypatch.undo()
    _resume(tmp_path)  # the next resume rebuilds
    assert _file_rows(tmp_path) == EXPECTED


def test_the_test_hook_pauses_halfway(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(M.PAUSE_ENV, "0.01")
    M.write_atomically(tmp_path / "f.txt", "abcdef")
    assert (tmp_path / "f.txt").read_text() == "abcdef" and not list(tmp_path.glob(".f.txt.tmp"))
    assert "metrics rewrite paused" in capsys.readouterr().err
