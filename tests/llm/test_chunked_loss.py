"""The trainer's chunked loss (optim.chunked_loss): hidden states x LM head == the logits path, in the update.

References: the model's own logits (`completion_logits`, i.e. `logits_to_keep`), `aent.token_logprobs` on them,
and one backward of `aent.EntropyControl.loss` on the logits of the whole batch (the materialised reference).
"""

from __future__ import annotations

import pytest
import torch

import aent
from llm.config import load_config
from llm.hooks import Run
from llm.policy import chunked_head, completion_hidden, completion_logits, loss_logprobs
from llm.train import run_entropy_config
from llm.update import ppo_update, recompute_old_logp
from tests.llm.test_train import _Log, make_rollout_batch


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def rollout_batch(request):
    return make_rollout_batch(tie_embeddings=request.param)


def _run(model, overrides):
    from accelerate import Accelerator

    cfg = load_config(None, ["rollout.prompts_per_step=4", "rollout.group_size=2", "optim.grad_clip=1e9",
                             *overrides])
    captured = []

    class Capture(torch.optim.SGD):
        def step(self, closure=None):
            captured.append([p.grad.clone() for p in model.parameters()])

    opt = Capture(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: 1.0)
    run = Run(cfg=cfg, accelerator=Accelerator(cpu=True), model=model, optimizer=opt, scheduler=sched,
              control=aent.EntropyControl(run_entropy_config(cfg)), log=_Log())
    return run, captured


def test_hidden_states_times_head_are_the_models_logits(rollout_batch):
    model, batch, _ = rollout_batch
    args = (model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"])
    head = chunked_head(model)
    assert head is not None and head.shape == (model.config.vocab_size, model.config.hidden_size)
    with torch.no_grad():
        torch.testing.assert_close(completion_hidden(*args) @ head.t(), completion_logits(*args),
                                   rtol=1e-5, atol=1e-5)
        mb = {k: batch[k] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
        lp = loss_logprobs(model, mb, head, 0.8)
        ref = aent.token_logprobs(completion_logits(*args), batch["completion_ids"], 0.8) * batch["completion_mask"]
    torch.testing.assert_close(lp, ref, rtol=1e-5, atol=1e-5)


def test_head_falls_back_to_logits_where_chunking_would_be_wrong(rollout_batch):
    model, _, _ = rollout_batch
    assert chunked_head(model, "DistributedType.FSDP") is None
    assert chunked_head(model, "DistributedType.DEEPSPEED") is None
    assert chunked_head(model, "DistributedType.MULTI_CPU") is not None
    inner = model.get_output_embeddings()
    model.set_output_embeddings(torch.nn.Linear(inner.in_features, inner.out_features, bias=True))
    try:
        assert chunked_head(model) is None
    finally:
        model.set_output_embeddings(inner)


@pytest.mark.parametrize("entropy", [["entropy.method=aent", "entropy.ent_coef=0.005"],
                                     ["entropy.method=entropy_bonus", "entropy.ent_coef=0.01"],
                                     ["entropy.method=none", "entropy.loss_agg=seq-mean-token-mean"]])
@pytest.mark.parametrize("micro", [3, 8])
def test_update_gradients_chunked_equal_materialised_reference(rollout_batch, entropy, micro):
    model, batch, adv = rollout_batch
    cfg = load_config(None, entropy)
    model.zero_grad(set_to_none=True)
    logits = completion_logits(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                               batch["completion_mask"])
    aent.EntropyControl(cfg.entropy).loss(logits=logits, actions=batch["completion_ids"], old_logp=batch["old_logp"],
                                          adv=adv, mask=batch["completion_mask"]).loss.backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    for chunked in ("true", "false"):
        run, captured = _run(model, [*entropy, f"optim.micro_batch_size={micro}", f"optim.chunked_loss={chunked}"])
        metrics = ppo_update(run, 1, batch, adv)
        model.zero_grad(set_to_none=True)
        for g, r in zip(captured[0], ref):
            assert torch.allclose(g, r, atol=1e-6, rtol=1e-4)
        assert metrics["updates"] == 1


def test_old_logp_gives_ratio_one_on_the_chunked_path(rollout_batch):
    model, batch, adv = rollout_batch
    run, _ = _run(model, ["entropy.method=none", "optim.micro_batch_size=3"])
    assert run.cfg.optim.chunked_loss
    b = dict(batch)
    recompute_old_logp(run, 1, b)
    out = ppo_update(run, 1, b, adv)
    assert out["approx_kl"] == 0.0 and out["clip_frac"] == 0.0
