"""Checkpoints: atomic (a killed save never becomes the latest), complete (model, optimizer, scheduler, controller,
RNG and metrics come back equal), pruned to `keep`."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import aent
from llm.checkpoint import (
    TRAINER_STATE,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def _objects(seed: int):
    from accelerate import Accelerator

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: 1.0 / (1 + u))
    acc = Accelerator(cpu=True)
    model, opt, sched = acc.prepare(model, opt, sched)
    control = aent.EntropyControl(aent.EntropyConfig(method="aent", warmup=0))
    return acc, model, opt, sched, control


def _train_a_bit(model, opt, sched, control, steps=3):
    for i in range(steps):
        loss = model(torch.randn(5, 4)).pow(2).mean()
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        control.step_end({"entropy": 0.5, "clamped_entropy": 0.3 + 0.1 * i})


def test_round_trip_restores_everything(tmp_path):
    acc, model, opt, sched, control = _objects(0)
    _train_a_bit(model, opt, sched, control)
    rows = [{"step": 1, "reward_mean": 0.5}]
    save_checkpoint(acc, tmp_path, 3, control=control, metrics=rows, config={"seed": 0})
    expected_next = torch.rand(3)  # the global RNG stream right after the save

    acc2, model2, opt2, sched2, control2 = _objects(1)
    state = load_checkpoint(acc2, latest_checkpoint(tmp_path), control=control2)
    assert state["step"] == 3 and state["metrics"] == rows and state["config"] == {"seed": 0}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert control2.state_dict() == control.state_dict() and control2.ent_coef == control.ent_coef
    assert torch.equal(torch.rand(3), expected_next)  # RNG restored
    # the optimizer continues identically
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (model2, opt2)):
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_keep_prunes_old_checkpoints_and_ignores_partial_ones(tmp_path):
    acc, model, opt, sched, control = _objects(0)
    for step in (1, 2, 3):
        save_checkpoint(acc, tmp_path, step, control=control, metrics=[], keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002", "step-00000003"]
    half = checkpoint_dir(tmp_path, 9)
    half.mkdir()  # a folder without trainer_state.pt: not complete
    (half.parent / ".tmp-step-00000010").mkdir()
    assert latest_checkpoint(tmp_path).name == "step-00000003"
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        load_checkpoint(acc, half, control=control)
    assert latest_checkpoint(tmp_path / "nothing") is None
    with pytest.raises(ValueError, match="keep"):
        save_checkpoint(acc, tmp_path, 4, control=control, metrics=[], keep=0)


def test_a_save_killed_midway_leaves_the_previous_checkpoint_latest(tmp_path, monkeypatch):
    acc, model, opt, sched, control = _objects(0)
    save_checkpoint(acc, tmp_path, 1, control=control, metrics=[])

    def dies(path, **kw):
        (tmp_path / "checkpoints" / ".tmp-step-00000002" / "pytorch_model.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(acc, "save_state", dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(acc, tmp_path, 2, control=control, metrics=[])
    assert latest_checkpoint(tmp_path).name == "step-00000001"
    assert not checkpoint_dir(tmp_path, 2).exists()
    monkeypatch.undo()
    save_checkpoint(acc, tmp_path, 2, control=control, metrics=[])  # the next save cleans the debris
    assert (checkpoint_dir(tmp_path, 2) / TRAINER_STATE).is_file()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


# ------------------------------------------------------------------------ corrupt checkpoints, other runs
def _weights_file(ckpt):
    files = [f for f in ckpt.iterdir() if f.name.startswith(("pytorch_model", "model")) and f.is_file()]
    assert files, sorted(p.name for p in ckpt.iterdir())
    return files[0]


def _truncate(f, keep=0.5):
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("victim", ["weights", "trainer_state"])
def test_resume_falls_back_past_a_truncated_latest_checkpoint(tmp_path, victim):
    from llm.checkpoint import checkpoint_problem, resume_checkpoint

    acc, model, opt, sched, control = _objects(0)
    cfg = {"seed": 0, "max_steps": 5}
    save_checkpoint(acc, tmp_path, 1, control=control, metrics=[{"step": 1}], config=cfg, keep=5)
    at_1 = {k: v.clone() for k, v in model.state_dict().items()}
    _train_a_bit(model, opt, sched, control)
    save_checkpoint(acc, tmp_path, 2, control=control, metrics=[{"step": 1}, {"step": 2}], config=cfg, keep=5)
    latest = checkpoint_dir(tmp_path, 2)
    _truncate(_weights_file(latest) if victim == "weights" else latest / TRAINER_STATE)
    assert "cut short" in checkpoint_problem(latest)

    acc2, model2, opt2, sched2, control2 = _objects(1)
    lines = []
    with pytest.warns(RuntimeWarning, match="step-00000002' is corrupt"):
        state = resume_checkpoint(acc2, tmp_path, control=control2, config={**cfg, "max_steps": 9}, warn=lines.append)
    assert state["step"] == 1 and state["metrics"] == [{"step": 1}]
    for k, v in model2.state_dict().items():
        assert torch.equal(v, at_1[k])
    assert any("resumed from step-00000001, the newest intact checkpoint" in ln for ln in lines)
    assert latest.is_dir()  # nothing is deleted: the user may want to inspect it


def _flip_bit(f, bit):
    data = bytearray(f.read_bytes())
    data[bit // 8] ^= 1 << (bit % 8)
    f.write_bytes(bytes(data))


def test_resume_falls_back_past_a_same_size_bit_flip_in_the_weights(tmp_path):
    """Issue 25: a bit flipped in the weights (same size) trained on silently; the manifest's CRC-32 catches it
    and resume falls back to the newest intact checkpoint, as for a truncated file."""
    from llm.checkpoint import checkpoint_problem, resume_checkpoint

    acc, model, opt, sched, control = _objects(0)
    cfg = {"seed": 0, "max_steps": 5}
    save_checkpoint(acc, tmp_path, 1, control=control, metrics=[{"step": 1}], config=cfg, keep=5)
    at_1 = {k: v.clone() for k, v in model.state_dict().items()}
    _train_a_bit(model, opt, sched, control)
    save_checkpoint(acc, tmp_path, 2, control=control, metrics=[{"step": 1}, {"step": 2}], config=cfg, keep=5)
    latest = checkpoint_dir(tmp_path, 2)
    weights = _weights_file(latest)
    size = weights.stat().st_size
    _flip_bit(weights, 8 * (size - 64) + 3)  # inside the last tensor's data: torch.load would still succeed
    assert weights.stat().st_size == size
    assert "does not match its CRC-32 checksum" in checkpoint_problem(latest)
    acc2, model2, opt2, sched2, control2 = _objects(1)
    lines = []
    with pytest.warns(RuntimeWarning, match="step-00000002' is corrupt .*CRC-32"):
        state = resume_checkpoint(acc2, tmp_path, control=control2, config=cfg, warn=lines.append)
    assert state["step"] == 1
    for k, v in model2.state_dict().items():
        assert torch.equal(v, at_1[k])
    assert any("resumed from step-00000001, the newest intact checkpoint" in ln for ln in lines)


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crc")
    acc, model, opt, sched, control = _objects(0)
    save_checkpoint(acc, tmp, 1, control=control, metrics=[{"step": 1}], keep=5)
    return checkpoint_dir(tmp, 1)


@given(st.data())
def test_any_single_bit_flip_in_any_file_is_detected(saved_once, data):
    """CRC-32 detects every single-bit error: flip one bit of one checkpoint file anywhere, then flip it back."""
    from llm.checkpoint import MANIFEST, checkpoint_problem

    files = sorted(f for f in saved_once.rglob("*") if f.is_file() and f.name != MANIFEST)
    f = data.draw(st.sampled_from(files))
    bit = data.draw(st.integers(0, 8 * f.stat().st_size - 1))
    assert checkpoint_problem(saved_once) is None
    _flip_bit(f, bit)
    try:
        assert "CRC-32" in checkpoint_problem(saved_once)
    finally:
        _flip_bit(f, bit)


def test_manifests_without_checksums_are_checked_for_sizes_only(tmp_path):
    """Checkpoints saved before checksums: still resumable, sizes checked as before."""
    import json

    from llm.checkpoint import MANIFEST, checkpoint_problem

    acc, model, opt, sched, control = _objects(0)
    ck = save_checkpoint(acc, tmp_path, 1, control=control, metrics=[], keep=5)
    m = json.loads((ck / MANIFEST).read_text())
    assert set(m["crc32"]) == set(m["files"]) and all(len(c) == 8 for c in m["crc32"].values())
    del m["crc32"]
    (ck / MANIFEST).write_text(json.dumps(m))
    assert checkpoint_problem(ck) is None
    _truncate(_weights_file(ck))
    assert "cut short" in checkpoint_problem(ck)


def test_truncated_checkpoint_without_manifest_is_detected_on_load(tmp_path):
    """Checkpoints written before manifests existed: a torn weights file fails to load and is skipped."""
    from llm.checkpoint import MANIFEST, resume_checkpoint

    acc, model, opt, sched, control = _objects(0)
    for step in (1, 2):
        save_checkpoint(acc, tmp_path, step, control=control, metrics=[], keep=5)
    for step in (1, 2):
        (checkpoint_dir(tmp_path, step) / MANIFEST).unlink()
    _truncate(_weights_file(checkpoint_dir(tmp_path, 2)))
    acc2, model2, opt2, sched2, control2 = _objects(1)
    with pytest.warns(RuntimeWarning, match="corrupt"):
        assert resume_checkpoint(acc2, tmp_path, control=control2, warn=lambda s: None)["step"] == 1


def test_no_intact_checkpoint_is_one_clear_error(tmp_path):
    from llm.checkpoint import resume_checkpoint

    acc, model, opt, sched, control = _objects(0)
    save_checkpoint(acc, tmp_path, 1, control=control, metrics=[])
    _truncate(_weights_file(checkpoint_dir(tmp_path, 1)))
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match=r"no intact checkpoint in .*step-00000001 \("):
        resume_checkpoint(acc, tmp_path, control=control, warn=lambda s: None)
    assert resume_checkpoint(acc, tmp_path / "empty", control=control) is None


def test_resume_with_another_model_shape_is_one_line(tmp_path):
    from accelerate import Accelerator

    from llm.checkpoint import resume_checkpoint

    acc, model, opt, sched, control = _objects(0)
    save_checkpoint(acc, tmp_path, 1, control=control, metrics=[])
    wide = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    opt2 = torch.optim.AdamW(wide.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda u: 1.0)
    acc2 = Accelerator(cpu=True)
    acc2.prepare(wide, opt2, sched2)
    with pytest.raises(ValueError, match=r"holds a model of another shape than this run's \(size mismatch for 0\.weight"):
        resume_checkpoint(acc2, tmp_path, control=control)


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    from llm.checkpoint import resume_checkpoint

    acc, model, opt, sched, control = _objects(0)
    save_checkpoint(acc, tmp_path, 4, control=control, metrics=[], config={"seed": 0, "optim": {"lr": 1.0}})
    with pytest.raises(ValueError, match=r"different config: optim\.lr: 1\.0 -> 2\.0; seed: 0 -> 1"):
        resume_checkpoint(acc, tmp_path, control=control, config={"seed": 1, "optim": {"lr": 2.0}})


def test_pruning_never_removes_another_runs_checkpoints(tmp_path):
    """The issue's case: an old run's step-60 sorts after the new run's steps; keep=1 must keep the new one."""
    acc, model, opt, sched, control = _objects(0)
    old, new = {"seed": 0}, {"seed": 1}
    save_checkpoint(acc, tmp_path, 60, control=control, metrics=[], config=old)
    for step in (1, 2, 3):
        save_checkpoint(acc, tmp_path, step, control=control, metrics=[], config=new, keep=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000060"]
    save_checkpoint(acc, tmp_path, 61, control=control, metrics=[], config=old, keep=1)  # old run's own pruning
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000061"]
