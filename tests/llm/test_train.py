"""The GRPO loop: LR schedule and prompt order against closed forms, micro-batching == one big batch (gradients),
every entropy method end to end, metrics.jsonl, and bad input (reward that raises, NaN loss, NaN weights,
missing model) giving one clear message and losing nothing."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import aent
from llm.checkpoint import list_checkpoints
from llm.config import load_config
from llm.generate import generate, group_uniforms
from llm.hooks import Run
from llm.model import ModelConfig, build_model
from llm.policy import completion_logits
from llm.problems import make_reward_fn, score
from llm.tokenizer import build_tokenizer
from llm.train import lr_lambda, run_entropy_config, step_prompts, train
from llm.update import ppo_update, recompute_old_logp

REPO = Path(__file__).resolve().parents[2]
REWARD = "tests.llm.test_train:digit_reward"
REQUIRED = {"step", "reward_mean", "accuracy", "entropy", "clamped_entropy", "ent_coef", "clip_frac",
            "response_len", "time_generate_s", "time_reward_s", "time_train_s", "pos_weight", "approx_kl", "lr",
            "zero_adv_frac"}


def digit_reward(completions, answers):
    """A dense test reward (fraction of digit characters), so an untrained model gets non-zero advantages."""
    return [sum(ch.isdigit() for ch in c) / max(1, len(c)) for c in completions]


def tiny(tmp_path: Path, *overrides: str):
    """A config whose steps take ~0.1 s: 1-layer width-32 model, 2 prompts x 4 samples, 8 new tokens."""
    base = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
            "model.vocab_size=300", "model.warm_start_steps=0", "data.n_train=16", "data.n_test=4",
            "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8",
            "optim.mini_batch_size=4", "optim.micro_batch_size=2", "optim.lr=3e-3", "max_steps=2",
            "progress=false", "tensorboard=false", f"reward={REWARD}", f"output_dir={tmp_path / 'run'}",
            f"cache_dir={tmp_path.parent / 'aent-cache'}"]
    return load_config(REPO / "configs" / "tiny.yaml", base + list(overrides))


def rows(path) -> list[dict]:
    return [json.loads(line) for line in (Path(path) / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------- pure pieces
# (schedule, warmup_steps, min_lr_ratio, total updates) -> {update u: multiplier}, worked out by hand:
# warm-up (u + 1) / W; then frac = (u - W) / (total - W), capped at 1; linear floor + (1 - floor)(1 - frac);
# cosine floor + (1 - floor)(1 + cos(pi frac)) / 2.
LR_CASES = [
    ("constant", 4, 0.1, 14, {0: 0.25, 1: 0.5, 3: 1.0, 4: 1.0, 100: 1.0}),
    ("linear", 4, 0.1, 14, {0: 0.25, 2: 0.75, 4: 1.0, 6: 0.82, 9: 0.55, 14: 0.1, 20: 0.1}),
    ("cosine", 4, 0.1, 14, {3: 1.0, 4: 1.0, 6: 0.9140576474687264, 9: 0.55, 12: 0.18594235253127367,
                            14: 0.1, 19: 0.1}),
    ("cosine", 0, 0.0, 4, {0: 1.0, 1: 0.8535533905932737, 2: 0.5, 3: 0.14644660940672627, 4: 0.0}),
    ("linear", 0, 0.0, 1, {0: 1.0, 1: 0.0, 7: 0.0}),
    ("linear", 2, 0.5, 2, {0: 0.5, 1: 1.0, 2: 1.0, 3: 0.5}),  # total <= warm-up: decays over 1 update (max(1, .))
]


@pytest.mark.parametrize(("schedule", "warm", "floor", "total", "values"), LR_CASES)
def test_lr_schedule_matches_closed_forms(schedule, warm, floor, total, values):
    cfg = load_config(None, [f"optim.warmup_steps={warm}", f"optim.schedule={schedule}",
                             f"optim.min_lr_ratio={floor!r}"])
    fn = lr_lambda(cfg, total)
    for u, want in values.items():
        assert fn(u) == pytest.approx(want, abs=1e-12), (schedule, u)


@given(seed=st.integers(0, 1000), n=st.integers(1, 30), per_step=st.integers(1, 12))
def test_every_epoch_visits_each_problem_once(seed, n, per_step):
    steps = math.ceil(3 * n / per_step)
    order = [i for s in range(1, steps + 1) for i in step_prompts(seed, s, n, per_step)]
    for e in range(len(order) // n):
        assert sorted(order[e * n:(e + 1) * n]) == list(range(n))
    # no loader state and no global RNG: a resumed run draws the same prompts whatever ran before it
    torch.manual_seed(seed + 1)
    first = step_prompts(seed, 2, n, per_step)
    torch.manual_seed(seed + 2)
    torch.rand(5)
    assert step_prompts(seed, 2, n, per_step) == first


def test_reward_errors_name_the_sample():
    class P:
        def __init__(self, q):
            self.question, self.answer = q, "1"

    def picky(completions, answers):
        return [1.0 / (c != "boom") for c in completions]  # ZeroDivisionError on "boom"

    with pytest.raises(ValueError, match=r"failed at step 7 on sample 2 \(question 'q2'.*'boom'.*ZeroDivision"):
        score(picky, "picky", ["a", "b", "boom"], [P("q0"), P("q1"), P("q2")], 7)
    with pytest.raises(ValueError, match="non-finite reward at step 1 for sample 1"):
        score(lambda c, p: [0.0, float("nan")], "nan", ["a", "b"], [P("q"), P("q")], 1)
    with pytest.raises(ValueError, match="returned 1 rewards for 2 completions"):
        score(lambda c, p: [0.0], "short", ["a", "b"], [P("q"), P("q")], 1)
    with pytest.raises(ValueError, match="config field `reward`"):
        make_reward_fn("no_such_module:f")
    with pytest.raises(ValueError, match="task, correctness or module:function"):
        make_reward_fn("f1")


# ----------------------------------------------------------------------------------- micro-batching
def make_rollout_batch(tie_embeddings: bool = True):
    """A tiny model, one sampled batch of 4 prompts x 2 and fixed advantages (shared with test_chunked_loss)."""
    tok = build_tokenizer(["Tom has 3 apples. 3+4=7 #### 7", "Mia 12-5=7 #### 7"] * 4, vocab_size=300)
    model = build_model(ModelConfig(hidden=32, layers=1, heads=2, kv_heads=2, intermediate=64, max_position=64,
                                    tie_embeddings=tie_embeddings), tok, seed=3)
    s = generate(model, tok, ["Tom has 3", "Mia", "12-5=", "apples"], n=2, max_new_tokens=10,
                 uniforms=group_uniforms([1, 2, 3, 4], 2, 10))
    batch = {"prompt_ids": s.prompt_ids, "prompt_mask": s.prompt_mask, "completion_ids": s.completion_ids,
             "completion_mask": s.completion_mask, "old_logp": s.logp}
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.3, -0.3])
    return model, batch, adv


@pytest.fixture(scope="module")
def rollout_batch():
    return make_rollout_batch()


class _Log:
    def write(self, msg):
        pass


def _grads_of_update(model, batch, adv, overrides):
    """Gradients that ppo_update hands to the optimizer (captured in optimizer.step)."""
    from accelerate import Accelerator

    cfg = load_config(None, ["rollout.prompts_per_step=4", "rollout.group_size=2", "optim.grad_clip=1e9",
                             *overrides])
    captured = []

    class Capture(torch.optim.SGD):
        def step(self, closure=None):
            captured.append([p.grad.clone() for p in model.parameters()])

    opt = Capture(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: 1.0)
    control = aent.EntropyControl(run_entropy_config(cfg))  # as train() builds it
    run = Run(cfg=cfg, accelerator=Accelerator(cpu=True), model=model, optimizer=opt, scheduler=sched,
              control=control, log=_Log())
    ppo_update(run, 1, batch, adv)
    opt.zero_grad(set_to_none=True)
    return captured[0]


def _reference_grads(model, batch, adv, entropy_cfg):
    """One forward/backward of the loss over the whole batch at once."""
    model.zero_grad(set_to_none=True)
    logits = completion_logits(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                               batch["completion_mask"])
    out = aent.EntropyControl(entropy_cfg).loss(logits=logits, actions=batch["completion_ids"],
                                                old_logp=batch["old_logp"], adv=adv, mask=batch["completion_mask"])
    out.loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("entropy", [["entropy.method=none"], ["entropy.method=aent", "entropy.ent_coef=0.005"],
                                     ["entropy.method=entropy_bonus", "entropy.ent_coef=0.01"],
                                     ["entropy.method=none", "entropy.loss_agg=seq-mean-token-mean"]])
@pytest.mark.parametrize("micro", [1, 3, 8])
def test_micro_batching_with_accumulation_equals_one_big_batch(rollout_batch, entropy, micro):
    model, batch, adv = rollout_batch
    cfg = load_config(None, entropy)
    ref = _reference_grads(model, batch, adv, cfg.entropy)
    got = _grads_of_update(model, batch, adv, [*entropy, f"optim.micro_batch_size={micro}"])
    assert max(float(g.abs().max()) for g in ref) > 1e-4  # a real gradient
    for g, r in zip(got, ref):
        assert torch.allclose(g, r, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("micro", [1, 3, 8])
def test_dr_grpo_normaliser_is_the_generation_budget_in_every_micro_batch(rollout_batch, micro):
    """Dr. GRPO (arXiv 2503.20783, Sec. 3.1): loss = (1/B) sum_i sum_t l_it / C with C the constant max response
    length (here rollout.max_new_tokens = 16 > every sampled length), whatever the micro-batching."""
    model, batch, adv = rollout_batch
    agg = ["entropy.method=none", "entropy.loss_agg=seq-mean-token-sum-norm", "rollout.max_new_tokens=16"]
    model.zero_grad(set_to_none=True)
    logits = completion_logits(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                               batch["completion_mask"])
    logp = torch.log_softmax(logits.float(), -1).gather(-1, batch["completion_ids"][..., None]).squeeze(-1)
    ratio, a = torch.exp(logp - batch["old_logp"]), adv[:, None]
    l_tok = torch.maximum(-a * ratio, -a * ratio.clamp(0.8, 1.2)) * batch["completion_mask"]
    (l_tok.sum() / (len(adv) * 16)).backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    got = _grads_of_update(model, batch, adv, [*agg, f"optim.micro_batch_size={micro}"])
    for g, r in zip(got, ref):
        assert torch.allclose(g, r, atol=1e-6, rtol=1e-4)


def test_recompute_old_logp_default_follows_precision():
    assert not load_config(None, []).recomputes_old_logp
    assert load_config(None, ["mixed_precision=bf16"]).recomputes_old_logp
    assert load_config(None, ["model.dtype=bfloat16"]).recomputes_old_logp
    assert not load_config(None, ["mixed_precision=bf16", "recompute_old_logp=false"]).recomputes_old_logp
    assert load_config(None, ["recompute_old_logp=true"]).recomputes_old_logp


@pytest.mark.parametrize("chunked", ["true", "false"])
def test_recomputed_old_logp_equal_the_updates_own_forward_exactly(rollout_batch, chunked):
    """A bf16 policy whose old log-probs came from an fp32 sampler (a training-inference mismatch): after the
    recompute, every micro-batch of the first mini-batch sees old_logp == its own no-grad logp, bit for bit,
    on the chunked path (logp from hidden states x LM head) and on the materialised one."""
    import copy

    from accelerate import Accelerator

    fp32_model, batch, adv = rollout_batch
    model = copy.deepcopy(fp32_model).to(torch.bfloat16)
    batch = dict(batch)
    cfg = load_config(None, ["rollout.prompts_per_step=4", "rollout.group_size=2", "optim.micro_batch_size=3",
                             "model.dtype=bfloat16", f"optim.chunked_loss={chunked}"])
    seen = []

    class Spy(aent.EntropyControl):
        def loss(self, *, actions, old_logp, adv, mask, temperature=1.0, **inputs):
            assert set(inputs) == ({"hidden", "lm_head_weight"} if chunked == "true" else {"logits"})
            with torch.no_grad():
                if "logits" in inputs:
                    lp = aent.token_logprobs(inputs["logits"], actions, temperature) * mask
                else:  # the valid tokens, as EntropyControl.loss takes them
                    valid = mask != 0
                    terms = aent.chunked_policy_terms(inputs["hidden"][valid], inputs["lm_head_weight"],
                                                      actions[valid], temperature=temperature, clamp=self.cfg.clamp_p)
                    lp = torch.zeros(mask.shape).masked_scatter(valid, terms.logp)
            seen.append((lp, old_logp * mask))
            return super().loss(actions=actions, old_logp=old_logp, adv=adv, mask=mask, temperature=temperature,
                                **inputs)

    def first_update(b):
        seen.clear()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: 1.0)
        run = Run(cfg=cfg, accelerator=Accelerator(cpu=True), model=model, optimizer=opt, scheduler=sched,
                  control=Spy(cfg.entropy), log=_Log())
        ppo_update(run, 1, b, adv)
        return list(seen)

    mismatch = first_update(batch)  # the sampler's fp32 log-probs are not the bf16 update's
    assert max(float((lp - old).abs().max()) for lp, old in mismatch) > 1e-3
    recompute_old_logp(Run(cfg=cfg, accelerator=Accelerator(cpu=True), model=model), 1, batch)
    pairs = first_update(batch)
    assert len(pairs) == 3  # 8 rows in micro-batches of 3, one mini-batch
    for lp, old in pairs:
        assert torch.equal(lp.float(), old.float())


# ------------------------------------------------------------------------------------------- end to end
def test_train_writes_metrics_tensorboard_checkpoint_and_final(tmp_path):
    cfg = tiny(tmp_path, "tensorboard=true", "eval_every=2", "eval_samples=2", "reward=task")
    history = train(cfg)
    got = rows(cfg.output_dir)
    assert [r["step"] for r in got] == [1, 2] and len(history) == 2
    assert REQUIRED <= set(got[0]), REQUIRED - set(got[0])
    assert {"eval_accuracy", "eval_mean_at_2", "time_eval_s"} <= set(got[1])
    for r in got:
        assert 0 <= r["reward_mean"] <= 1 and 0 <= r["accuracy"] <= 1 and r["entropy"] > 0
        assert r["clamped_entropy"] <= r["entropy"] + 1e-6 and 1 <= r["response_len"] <= 8
        assert r["time_generate_s"] > 0 and r["time_train_s"] > 0 and 0 <= r["zero_adv_frac"] <= 1
    out = Path(cfg.output_dir)
    assert any((out / "tb").iterdir()) and (out / "final" / "config.json").is_file()
    init = json.loads((out / "initial_eval.json").read_text())
    assert 0 <= init["eval_accuracy"] <= 1 and 0 <= init["eval_mean_at_2"] <= 1
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002"]
    assert load_config(out / "config.yaml") == cfg


@pytest.mark.parametrize("method", aent.METHODS)
def test_every_entropy_method_trains(tmp_path, method):
    cfg = tiny(tmp_path, f"entropy.method={method}", "max_steps=1", "entropy.warmup=0")
    r = train(cfg)[0]
    assert math.isfinite(r["policy_loss"]) and r["updates"] == 2 and r["skipped_updates"] == 0
    if method in ("aent", "clamped_bonus", "entropy_bonus", "sac"):
        assert r["ent_coef"] > 0
    elif method == "threshold":  # bonus only while entropy <= target; a random model is far above it
        assert r["entropy"] > cfg.entropy.target_entropy and r["ent_coef"] == 0
    else:
        assert r["ent_coef"] == 0


def test_native_threshold_controller_sees_minus_mean_old_logp(tmp_path, monkeypatch):
    """The Skywork-OR1 / TRL threshold rule is driven by -mean log pi_old of the step, not by the policy entropy."""
    seen = []
    original = aent.ThresholdCoef.next_state

    def spy(self, state, entropy):
        seen.append(entropy)
        return original(self, state, entropy)

    monkeypatch.setattr(aent.ThresholdCoef, "next_state", spy)
    got = train(tiny(tmp_path, "entropy.method=threshold", "max_steps=2"))
    assert len(seen) == 2
    for value, row in zip(seen, got):
        assert value == row["sampled_entropy"]
        assert abs(row["sampled_entropy"] - row["entropy"]) > 1e-4  # the two signals differ, so the test can tell


def test_nan_loss_skips_the_update_with_a_warning(tmp_path, monkeypatch):
    original = aent.EntropyControl.loss
    calls = {"n": 0}

    def poisoned(self, **kw):
        out = original(self, **kw)
        calls["n"] += 1
        return out._replace(loss=out.loss * float("nan")) if calls["n"] == 5 else out  # step 2, first micro

    monkeypatch.setattr(aent.EntropyControl, "loss", poisoned)
    cfg = tiny(tmp_path, "max_steps=2")
    with pytest.warns(RuntimeWarning, match="step 2: non-finite loss"):
        got = train(cfg)
    assert got[0]["skipped_updates"] == 0 and got[1]["skipped_updates"] == 1 and got[1]["updates"] == 1
    assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000002"]  # weights stayed finite


def test_nonfinite_weights_stop_the_run_without_a_bad_checkpoint(tmp_path, monkeypatch):
    import llm.train as T

    original = T.ppo_update

    def breaking(run, step, *args):
        out = original(run, step, *args)
        if step == 2:
            with torch.no_grad():
                next(run.model.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(T, "ppo_update", breaking)
    cfg = tiny(tmp_path, "max_steps=3", "save_every=1")
    with pytest.raises(FloatingPointError, match="non-finite at step 2; the last good checkpoint is step 1"):
        train(cfg)
    assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000001"]
    assert [r["step"] for r in rows(cfg.output_dir)] == [1]


_CALLS = {"n": 0}


def failing_on_second_call(completions, answers):
    _CALLS["n"] += 1
    if _CALLS["n"] >= 2:  # from the second global step on (the per-sample probe then fails at sample 0)
        raise KeyError("no grader for this answer")
    return digit_reward(completions, answers)


def test_reward_that_raises_names_the_sample_and_keeps_the_completed_step(tmp_path):
    _CALLS["n"] = 0
    cfg = tiny(tmp_path, "max_steps=3", "reward=tests.llm.test_train:failing_on_second_call")
    with pytest.raises(ValueError, match=r"failed at step 2 on sample 0 .*KeyError"):
        train(cfg)
    assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000001"]  # nothing lost


def test_missing_model_path_is_one_clear_error(tmp_path):
    cfg = tiny(tmp_path, "model.path=/nonexistent/model")
    with pytest.raises(FileNotFoundError, match="model.path.*does not exist"):
        train(cfg)
    warnings.simplefilter("default")
