"""The measurements of `aent calibrate` (llm/calibrate.py) against direct computations, and the real command line
on a tiny config."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import aent
from aent.reference import clamped_entropy_reference
from llm.calibrate import grad_norms, measure, token_mass, unused_share
from llm.generate import generate
from llm.model import ModelConfig, build_model
from llm.tokenizer import build_tokenizer

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["Tom has 3 apples. He buys 4 more. How many?\n3+4=7\n#### 7",
         "Mia has 12 coins. She loses 5. How many?\n12-5=7\n#### 7"] * 4


@pytest.fixture(scope="module")
def lm():
    tok = build_tokenizer(TEXTS, vocab_size=300)
    model = build_model(ModelConfig(hidden=32, layers=2, heads=2, kv_heads=2, intermediate=64, max_position=128),
                        tok, seed=1)
    s = generate(model, tok, ["Tom has 3 apples.", "Mia has 12 coins. She"], n=4, max_new_tokens=8, seed=0)
    batch = {"prompt_ids": s.prompt_ids, "prompt_mask": s.prompt_mask, "completion_ids": s.completion_ids,
             "completion_mask": s.completion_mask}
    adv = aent.group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]), 4)  # group 2: all equal
    return model, tok, batch, adv


def _rows(model, batch, temperature):
    """Unpadded full forward of each row: logits scoring its valid completion tokens, (T_i, V) each, with grad."""
    out = []
    for i in range(batch["completion_ids"].shape[0]):
        p = batch["prompt_ids"][i][batch["prompt_mask"][i].bool()]
        c = batch["completion_ids"][i][batch["completion_mask"][i].bool()]
        z = model(input_ids=torch.cat([p, c])[None]).logits[0, len(p) - 1:-1]
        out.append((z / temperature, c))
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_entropies_and_token_mass_equal_a_direct_computation(lm, temperature):
    model, _, batch, adv = lm
    m = measure(model, batch, adv, steps=10, group_size=4, entropy_cfg=aent.EntropyConfig(),
                temperature=temperature, clamp_p=0.4)
    with torch.no_grad():
        rows = _rows(model, batch, temperature)
    z = torch.cat([r[0] for r in rows]).double()  # (tokens, V)
    assert m.tokens == z.shape[0] == int(batch["completion_mask"].sum()) and m.vocab_size == z.shape[1]
    assert m.clamped_entropy == pytest.approx(float(clamped_entropy_reference(z, 0.4).mean()), rel=1e-5)
    assert m.clamped_entropy == pytest.approx(float(aent.clamped_entropy(z.float(), 0.4).mean()), rel=1e-5)
    p = torch.softmax(z, -1)
    assert m.entropy == pytest.approx(float(-(p * p.log()).sum(-1).mean()), rel=1e-5)
    mass, _, _ = token_mass(model, batch, temperature=temperature, batch_size=3, chunk_size=5)
    assert torch.allclose(mass, p.sum(0), rtol=1e-5, atol=1e-9)
    assert m.zero_adv_frac == 0.5 and m.clamp_p == 0.4


def test_unused_share_on_a_hand_built_distribution():
    # Expected draws per batch of 5 ids; S = 100 steps: ids with 100 * mass < 1 are never used.
    mass = torch.tensor([3.0, 0.02, 0.0099, 1e-9, 0.0])
    assert unused_share(mass, 100) == pytest.approx(3 / 5)  # 0.0099, 1e-9, 0
    assert unused_share(mass, 1000) == pytest.approx(2 / 5)  # 9.9 draws over 1000 steps: used
    assert unused_share(mass, 100, draws=3.0) == pytest.approx(4 / 5)  # 0.02 * 100 = 2 < 3
    assert unused_share(mass, 100, drawn=torch.tensor([[4, 4], [0, 3]])) == pytest.approx(1 / 5)  # drawn: used
    with pytest.raises(ValueError, match="unused_share: steps must be an int >= 1"):
        unused_share(mass, 0)


def test_rule_p_comes_from_the_measured_share(lm):
    model, _, batch, adv = lm
    m = measure(model, batch, adv, steps=1, group_size=4, entropy_cfg=aent.EntropyConfig())
    mass, _, _ = token_mass(model, batch)
    never = mass < 1  # one step: fewer than one expected draw in the batch ...
    never[batch["completion_ids"][batch["completion_mask"].bool()]] = False  # ... and not drawn in it
    u = float(never.double().mean())
    assert 0.5 < u < 1 and m.unused_share == pytest.approx(u)
    assert m.clamp_p >= u and m.clamp_p == pytest.approx(u + 0.33 * (1 - u), abs=1e-4)


@pytest.mark.parametrize("loss_agg", ["token-mean", "seq-mean-token-mean"])
def test_gradient_norms_equal_a_direct_autograd_computation(lm, loss_agg):
    model, _, batch, adv = lm
    cfg = aent.EntropyConfig(loss_agg=loss_agg)
    g = grad_norms(model, batch, adv, entropy_cfg=cfg, clamp_p=0.3, temperature=0.8, batch_size=3)
    params = [p for p in model.parameters() if p.requires_grad]
    rows = _rows(model, batch, 0.8)
    n_tok = sum(len(c) for _, c in rows)
    # At ratio 1 the clipped surrogate's gradient is that of -A * log pi; H~ by the authors' top-k formulation.
    pg_terms = [-adv[i] * torch.log_softmax(z, -1).gather(-1, c[:, None]).squeeze(-1) for i, (z, c) in enumerate(rows)]
    if loss_agg == "token-mean":
        pg = sum(t.sum() for t in pg_terms) / n_tok
    else:
        pg = sum(t.mean() for t in pg_terms) / len(rows)
    h = sum(clamped_entropy_reference(z, 0.3).sum() for z, _ in rows) / n_tok

    def norm(loss):
        return float(torch.sqrt(sum((x.double() ** 2).sum() for x in torch.autograd.grad(loss, params,
                                                                                             retain_graph=True))))

    assert g.pg_grad_norm == pytest.approx(norm(pg), rel=1e-4)
    assert g.ent_grad_norm == pytest.approx(norm(h), rel=1e-4)
    assert g.clamped_entropy == pytest.approx(float(h.detach()), rel=1e-5)
    assert all(p.grad is None for p in params)  # the model is left without gradients


def test_micro_batching_does_not_change_the_measurements(lm):
    model, _, batch, adv = lm
    kw = {"steps": 20, "group_size": 4, "entropy_cfg": aent.EntropyConfig()}
    a, b = measure(model, batch, adv, batch_size=None, **kw), measure(model, batch, adv, batch_size=3, **kw)
    for name in ("clamped_entropy", "pg_grad_norm", "ent_grad_norm", "unused_share", "entropy"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-5), name


def test_several_batches_average_the_per_batch_norms(lm):
    model, tok, batch, adv = lm
    s = generate(model, tok, ["Mia has", "Tom has 3 apples. He"], n=4, max_new_tokens=8, seed=5)
    other = {"prompt_ids": s.prompt_ids, "prompt_mask": s.prompt_mask, "completion_ids": s.completion_ids,
             "completion_mask": s.completion_mask}
    adv2 = aent.group_advantages(torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]), 4)
    kw = {"steps": 20, "group_size": 4, "entropy_cfg": aent.EntropyConfig(), "clamp_p": 0.3}
    one, two = measure(model, batch, adv, **kw), measure(model, other, adv2, **kw)
    both = measure(model, [batch, other], [adv, adv2], **kw)
    assert both.pg_grad_norm == pytest.approx((one.pg_grad_norm + two.pg_grad_norm) / 2)
    assert both.ent_grad_norm == pytest.approx((one.ent_grad_norm + two.ent_grad_norm) / 2)
    assert both.tokens == one.tokens + two.tokens and both.batches == 2 and both.zero_adv_frac == 0.25
    assert both.clamped_entropy == pytest.approx(
        (one.clamped_entropy * one.tokens + two.clamped_entropy * two.tokens) / both.tokens)
    assert both.grad_ratio_range == pytest.approx(sorted([one.grad_ratio, two.grad_ratio]))
    same = measure(model, [batch, batch], [adv, adv], **kw)  # the same batch twice: the one-batch numbers
    for name in ("clamped_entropy", "pg_grad_norm", "ent_grad_norm", "unused_share", "entropy"):
        assert getattr(same, name) == pytest.approx(getattr(one, name), rel=1e-6), name


def test_all_equal_rewards_stop_with_a_clear_error(lm):
    model, _, batch, _ = lm
    with pytest.raises(ValueError, match="all-equal rewards .* policy gradient is 0"):
        measure(model, batch, torch.zeros(8), steps=10, group_size=4, entropy_cfg=aent.EntropyConfig())


# ------------------------------------------------------------------------------------------------ command line
TINY = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
        "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=16", "data.n_test=4",
        "rollout.prompts_per_step=4", "rollout.group_size=4", "rollout.max_new_tokens=8",
        "optim.mini_batch_size=16", "optim.micro_batch_size=8", "tensorboard=false", "progress=false",
        "reward=_calibrate_test_reward:by_length"]


@pytest.fixture
def length_reward(monkeypatch):
    """An untrained model never answers right; reward the parity of the length so that groups differ."""
    mod = types.ModuleType("_calibrate_test_reward")
    mod.by_length = lambda completions, answers: [float(len(c) % 2) for c in completions]
    monkeypatch.setitem(sys.modules, "_calibrate_test_reward", mod)


def test_cli_prints_the_proposal_with_its_measurements(tmp_path, capsys, length_reward):
    from aent_cli import main

    assert main(["calibrate", "--config", "tiny", "--steps", "50", *TINY, f"cache_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    for needle in ("clamped entropy H0 at p =", "never-used share u:", "|grad L_PG| =", "r = ", "machine: ",
                   "entropy:\n  method: aent", "entropy.coef_lr=", "planned steps S = 50"):
        assert needle in out, needle
    for name in ("band_low", "band_high", "ent_coef", "coef_min", "coef_max", "coef_lr", "warmup", "clamp_p"):
        assert f"  {name} " in out and f"entropy.{name}=" in out, name
    assert "entropy.warmup=3\n" in out + "\n" or "entropy.warmup=3 " in out  # round(50 * 30 / 440 = 3.4)


def test_cli_p_and_steps_default(tmp_path, capsys, length_reward):
    from llm.__main__ import main

    assert main(["calibrate", "--config", "tiny", "--p", "0.25", "--batches", "2", *TINY, f"cache_dir={tmp_path}",
                 "max_steps=7"]) == 0
    out = capsys.readouterr().out
    assert "planned steps S = 7" in out and "at p = 0.25:" in out and "entropy.clamp_p=0.25" in out
    assert "the rollouts of steps 1-2" in out and "means over 2" in out


@pytest.mark.parametrize("args, needle", [(["--p", "1.5"], "--p must be in [0, 1), got 1.5"),
                                          (["--steps", "0"], "--steps must be an int >= 1, got 0"),
                                          (["--batches", "0"], "--batches must be an int >= 1, got 0"),
                                          (["max_stepz=3"], "did you mean 'max_steps'?")])
def test_cli_user_errors_print_one_line_and_exit_2(capsys, args, needle):
    from llm.__main__ import main

    assert main(["calibrate", "--config", "tiny", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_cli_help_lists_calibrate():
    out = subprocess.run([sys.executable, "-m", "aent_cli", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "calibrate" in out.stdout
    out = subprocess.run([sys.executable, "-m", "llm", "calibrate", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "--steps" in out.stdout and "--p" in out.stdout


def test_cli_json_holds_the_printed_constants_unrounded(tmp_path, capsys, length_reward):
    """--json FILE: the same constants as the printed overrides (which round to 3 significant digits), unrounded,
    with the measurements and the overrides the command ran with."""
    import json

    from llm.__main__ import main

    path = tmp_path / "sub" / "cal.json"
    assert main(["calibrate", "--config", "tiny", "--json", str(path), *TINY, f"cache_dir={tmp_path}",
                 "max_steps=9"]) == 0
    printed = capsys.readouterr().out.rsplit("as overrides:", 1)[1].split()
    shown = dict(o.split("=", 1) for o in printed)
    rec = json.loads(path.read_text())
    assert rec["steps"] == 9 and "max_steps=9" in rec["overrides"] and rec["measurements"]["pg_grad_norm"] > 0
    for name, value in rec["constants"].items():
        want = float(shown[f"entropy.{name}"])
        assert value == pytest.approx(want, rel=5e-3 if name != "warmup" else 0), name
    assert not list(path.parent.glob("*.tmp"))
