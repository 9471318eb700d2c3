"""Checkpoints: atomic (a killed save never becomes the latest), complete (model, optimizer, scheduler, controller,
RNG and metrics come back equal), pruned to `keep`."""

from __future__ import annotations

import pytest
import torch

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
    gen = torch.Generator().manual_seed(9)
    save_checkpoint(acc, tmp_path, 3, control=control, metrics=rows, generator=gen, config={"seed": 0})
    expected_next = torch.rand(3)  # the global RNG stream right after the save
    gen_next = torch.rand(2, generator=gen)

    acc2, model2, opt2, sched2, control2 = _objects(1)
    gen2 = torch.Generator().manual_seed(0)
    state = load_checkpoint(acc2, latest_checkpoint(tmp_path), control=control2, generator=gen2)
    assert state["step"] == 3 and state["metrics"] == rows and state["config"] == {"seed": 0}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert control2.state_dict() == control.state_dict() and control2.ent_coef == control.ent_coef
    assert torch.equal(torch.rand(3), expected_next)  # RNG restored
    assert torch.equal(torch.rand(2, generator=gen2), gen_next)
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
