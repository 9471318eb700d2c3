"""aent.integrations.verl: the patched entropy, the driven coefficient, the controller step, checkpoint state.

Two levels, because verl is not installed in the project's environment (it pins transformers < 5.11 and pulls
ray; it installs in a separate venv, see docs/integrations/verl.md):

- ``TestRecorded`` (always runs): fake ``verl`` modules carrying the names and call signatures recorded from verl
  0.9.0's source (``RECORDED``); checks what install() replaces and the coefficient / controller logic.
- ``TestInstalledVerl`` (runs where verl 0.9.x imports): the real functions. The verl loss with the patched
  entropy against a hand computation (pg loss of verl's own loss without entropy, minus lambda times the token
  mean of aent.clamped_entropy at the response positions found by index arithmetic); aent's metrics beside
  verl's, and verl's full entropy without gradients; the band rule over steps; the recorded signatures against
  the installed ones. Run it with verl 0.9.0 importable, e.g. installed without its dependencies into a folder
  on PYTHONPATH (docs/integrations/verl.md, "How far it is tested").
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import types

import pytest
import torch

import aent
from aent.integrations import verl as av

RECORDED = {  # verl 0.9.0, read from its source
    ("verl.utils.torch_functional", "entropy_from_logits"): "(logits: torch.Tensor) -> torch.Tensor",
    ("verl.utils.torch_functional", "entropy_from_logits_with_chunking"):
        "(logits: torch.Tensor, chunk_size: int = 2048) -> torch.Tensor",
    ("verl.workers.utils.losses", "ppo_loss"): "(config: verl.workers.config.actor.ActorConfig, model_output, "
                                               "data: tensordict._td.TensorDict, dp_group=None)",
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.update_actor"): "(self, data: tensordict._td.TensorDict) "
                                                                           "-> tensordict._td.TensorDict",
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.save_checkpoint"):
        "(self, local_path, hdfs_path=None, global_step=0, max_ckpt_to_keep=None)",
    ("verl.workers.engine_workers", "ActorRolloutRefWorker.load_checkpoint"):
        "(self, local_path, hdfs_path=None, del_local_after_load=False)",
}


RECORDED_FUSED = {  # the kernels of verl 0.9.0's fused path (use_fused_kernels=true), read from its source
    ("verl.utils.experimental.torch_functional", "FusedLinearForPPO.forward"):
        "(self, hidden_states: torch.FloatTensor, vocab_weights: torch.FloatTensor, input_ids: torch.LongTensor, "
        "temperature: float = 1.0) -> tuple[torch.FloatTensor, torch.FloatTensor]",
    ("verl.utils.kernel.linear_cross_entropy", "LinearCrossEntropy.forward"):
        "(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, temperature: Optional[float] = 1.0, "
        "reduction: Optional[str] = 'none', dist_process_group: Optional[torch.distributed.distributed_c10d."
        "ProcessGroup] = None) -> list[torch.Tensor]",
}


def _fused_reference(hidden, weight, labels, temperature, clamp_p):
    """(log pi(label), clamped entropy, full entropy) from the materialised logits hidden @ weight.T."""
    logits = hidden @ weight.T
    return (aent.token_logprobs(logits, labels, temperature), aent.clamped_entropy(logits, clamp_p, None, temperature),
            aent.entropy(logits, None, temperature))


def _band(lam, h, cfg):
    drive = min(0.0, h - cfg.band_low) + max(0.0, h - cfg.band_high)
    return min(cfg.coef_max, max(cfg.coef_min, lam - cfg.coef_lr * drive))


AENT = aent.EntropyConfig(method="aent", ent_coef=0.01, clamp_p=0.33, band_low=1.0, band_high=1.5, coef_lr=0.002,
                          warmup=0, coef_min=1e-4, coef_max=0.05)


# ----------------------------------------------------------------------------------------------- recorded
class _Padded(dict):
    """Stands in for a padded TensorDict: select / to_padded_tensor / item access."""

    def select(self, *keys):
        return _Padded({k: self[k] for k in keys})

    def to_padded_tensor(self):
        return self


def _fake_verl(monkeypatch):
    def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
        return aent.entropy(logits)

    def entropy_from_logits_with_chunking(logits: torch.Tensor, chunk_size: int = 2048) -> torch.Tensor:
        return aent.entropy(logits)

    def ppo_loss(config, model_output, data, dp_group=None):  # verl: pg_loss - entropy_coeff * agg(entropy)
        h, m = model_output["entropy"], data["response_mask"].float()
        return -config.entropy_coeff * (h * m).sum() / m.sum(), {}

    class ActorRolloutRefWorker:
        def update_actor(self, data):
            """As verl's engine: per micro-batch, the forward's entropy (the function read at call time), then
            the loss; ``data`` holds (logits, response mask) pairs or ready model outputs."""
            self.metrics = []
            for mb in data:
                if isinstance(mb[0], torch.Tensor):
                    out = {"entropy": mods["verl.utils.torch_functional"].entropy_from_logits(mb[0])}
                    mb = (out, _Padded(response_mask=mb[1]))
                self.metrics.append(self.loss_fn(model_output=mb[0], data=mb[1])[1])
            return "metrics"

        def save_checkpoint(self, local_path, hdfs_path=None, global_step=0, max_ckpt_to_keep=None):
            return None

        def load_checkpoint(self, local_path, hdfs_path=None, del_local_after_load=False):
            return None

    class FusedLinearForPPO(torch.nn.Module):  # verl: (log pi, entropy) per token without the logits
        def forward(self, hidden_states, vocab_weights, input_ids, temperature=1.0):
            logits = hidden_states @ vocab_weights.T
            return aent.token_logprobs(logits, input_ids, temperature), aent.entropy(logits, None, temperature)

    def linear_cross_entropy(hidden, weight, labels, temperature=1.0, reduction="none", dist_process_group=None):
        return FusedLinearForPPO().forward(hidden, weight, labels, temperature)

    mods = {name: types.ModuleType(name) for name in
            ("verl", "verl.utils", "verl.utils.torch_functional", "verl.workers", "verl.workers.utils",
             "verl.workers.utils.losses", "verl.workers.utils.padding", "verl.workers.engine_workers",
             "verl.utils.experimental", "verl.utils.experimental.torch_functional", "verl.utils.kernel",
             "verl.utils.kernel.linear_cross_entropy")}
    mods["verl.utils.experimental.torch_functional"].FusedLinearForPPO = FusedLinearForPPO
    mods["verl.utils.kernel.linear_cross_entropy"].linear_cross_entropy = linear_cross_entropy
    mods["verl.utils.torch_functional"].entropy_from_logits = entropy_from_logits
    mods["verl.utils.torch_functional"].entropy_from_logits_with_chunking = entropy_from_logits_with_chunking
    mods["verl.workers.utils.losses"].ppo_loss = ppo_loss
    mods["verl.workers.utils.padding"].no_padding_2_padding = lambda t, data: t
    mods["verl.workers.engine_workers"].ppo_loss = ppo_loss
    mods["verl.workers.engine_workers"].ActorRolloutRefWorker = ActorRolloutRefWorker
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return mods


class TestRecorded:
    @pytest.fixture(autouse=True)
    def fake(self, monkeypatch):
        mods = _fake_verl(monkeypatch)
        yield mods
        av.uninstall()

    def test_fake_has_the_recorded_names_and_parameters(self, fake):
        for (mod, attr), sig in RECORDED.items():
            owner, name = av._resolve(mod, attr)
            params = list(inspect.signature(getattr(owner, name)).parameters)
            recorded = [p.split(":")[0].split("=")[0].strip() for p in sig.split(")")[0].strip("(").split(",")]
            assert params == recorded, (mod, attr)
        assert {(m, a) for m, a in av.VERL_TARGETS} >= set(RECORDED)

    def test_entropy_clamped_in_the_update_full_elsewhere_and_restored(self, fake):
        """With gradients on (the actor's update) the entropy is the clamped one; without (compute_log_prob,
        which feeds verl's actor/entropy) it stays verl's full entropy."""
        F = fake["verl.utils.torch_functional"]
        before = (F.entropy_from_logits, F.entropy_from_logits_with_chunking)
        av.install(AENT)
        x = torch.randn(4, 6, 30)
        torch.testing.assert_close(F.entropy_from_logits(x), aent.clamped_entropy(x, 0.33))
        torch.testing.assert_close(F.entropy_from_logits_with_chunking(x, chunk_size=2),
                                   aent.clamped_entropy(x, 0.33))
        torch.testing.assert_close(av._state["full_entropy"], aent.entropy(x))
        assert not torch.allclose(F.entropy_from_logits(x), aent.entropy(x))
        with torch.no_grad():
            torch.testing.assert_close(F.entropy_from_logits(x), aent.entropy(x))
            torch.testing.assert_close(F.entropy_from_logits_with_chunking(x, chunk_size=2), aent.entropy(x))
        av.uninstall()
        assert (F.entropy_from_logits, F.entropy_from_logits_with_chunking) == before

    def test_full_entropy_methods_leave_the_entropy_alone(self, fake):
        F = fake["verl.utils.torch_functional"]
        before = F.entropy_from_logits
        av.install(aent.EntropyConfig(method="sac", ent_coef=0.01, coef_min=1e-4, coef_max=0.1))
        assert F.entropy_from_logits is before

    def test_coefficient_and_band_rule_once_per_update(self, fake):
        ctrl = av.install(AENT)
        ew = fake["verl.workers.engine_workers"]
        config = types.SimpleNamespace(entropy_coeff=0.0)
        worker = ew.ActorRolloutRefWorker()
        worker.loss_fn = functools.partial(ew.ppo_loss, config=config)  # as verl binds it at worker init
        g = torch.Generator().manual_seed(0)
        lam = AENT.ent_coef
        for step, scale in enumerate((3.0, 0.2, 1.0, 0.05)):  # entropies above, below, in, below the band
            mbs, num, den = [], 0.0, 0.0
            for _ in range(2):  # two micro-batches per global step
                h = scale * torch.rand(3, 5, generator=g)
                m = (torch.rand(3, 5, generator=g) > 0.3).long()
                mbs.append(({"entropy": h}, _Padded(response_mask=m)))
                num, den = num + float((h * m).sum()), den + float(m.sum())
            loss, _ = worker.loss_fn(model_output=mbs[0][0], data=mbs[0][1])
            h0, m0 = mbs[0][0]["entropy"], mbs[0][1]["response_mask"].float()
            assert float(loss) == pytest.approx(-lam * float((h0 * m0).sum() / m0.sum()), rel=1e-6)
            av._state["window"] = None  # the direct call above is not part of the step
            worker.update_actor(mbs)
            lam = _band(lam, num / den, AENT)
            assert ctrl.ent_coef == pytest.approx(lam, rel=1e-9), step
            assert ctrl.global_step == step + 1

    def test_metrics_under_their_own_names(self, fake):
        """Each micro-batch's loss adds aent/entropy_coef (lambda), aent/clamped_entropy and aent/entropy (token
        means over its response tokens, against aent's own functions on the same logits) to verl's metrics."""
        ctrl = av.install(AENT)
        ew = fake["verl.workers.engine_workers"]
        config = types.SimpleNamespace(entropy_coeff=0.0)
        worker = ew.ActorRolloutRefWorker()
        worker.loss_fn = functools.partial(ew.ppo_loss, config=config)
        g = torch.Generator().manual_seed(1)
        mbs = [(torch.randn(3, 5, 40, generator=g), (torch.rand(3, 5, generator=g) > 0.3).long()) for _ in range(2)]
        worker.update_actor(mbs)
        for (logits, m), got in zip(mbs, worker.metrics):
            mf = m.float()
            assert got["aent/entropy_coef"] == AENT.ent_coef
            assert got["aent/clamped_entropy"] == pytest.approx(
                float((aent.clamped_entropy(logits, 0.33) * mf).sum() / mf.sum()), rel=1e-6)
            assert got["aent/entropy"] == pytest.approx(float((aent.entropy(logits) * mf).sum() / mf.sum()), rel=1e-6)
        assert ctrl.global_step == 1 and ctrl.ent_coef != AENT.ent_coef
        assert "actor/entropy" not in worker.metrics[0]  # verl's own name is left to verl

    def test_fused_path_gives_the_clamped_entropy_in_the_update(self, fake):
        """use_fused_kernels=true: both kernels return (log pi, clamped entropy) from aent.chunked_policy_terms
        with gradients on (values and gradients against the materialised logits), verl's own without."""
        E, K = fake["verl.utils.experimental.torch_functional"], fake["verl.utils.kernel.linear_cross_entropy"]
        original = E.FusedLinearForPPO
        av.install(AENT)
        g = torch.Generator().manual_seed(2)
        h0, w = torch.randn(1, 7, 8, generator=g), torch.randn(50, 8, generator=g)
        labels = torch.randint(0, 50, (1, 7), generator=g)
        for kernel in (lambda *a: E.FusedLinearForPPO().forward(*a), K.linear_cross_entropy):
            h = h0.clone().requires_grad_(True)
            logp, ent = kernel(h, w, labels, 0.7)
            ref_h = h0.clone().requires_grad_(True)
            ref_logp, ref_clamped, ref_full = _fused_reference(ref_h, w, labels, 0.7, AENT.clamp_p)
            torch.testing.assert_close(logp, ref_logp, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(ent, ref_clamped, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(av._state["full_entropy"], ref_full, rtol=1e-5, atol=1e-6)
            (logp.sum() + 0.3 * ent.sum()).backward()
            (ref_logp.sum() + 0.3 * ref_clamped.sum()).backward()
            torch.testing.assert_close(h.grad, ref_h.grad, rtol=1e-4, atol=1e-6)
            with torch.no_grad():
                torch.testing.assert_close(kernel(h0, w, labels, 0.7)[1], ref_full)
        with pytest.raises(ValueError, match="reduction='none'"):
            K.linear_cross_entropy(h0, w, labels, 1.0, "mean")
        av.uninstall()
        assert E.FusedLinearForPPO is original

    @pytest.mark.parametrize("method", av.SUPPORTED)
    def test_every_supported_method_takes_a_global_step(self, fake, method):
        """A step with a measured entropy moves every supported method's controller once (clamped_bonus used to
        fail here: verl gave its entropy as "clamped_entropy", step_end wanted "entropy")."""
        ctrl = av.install(aent.EntropyConfig.preset(method))
        ew = fake["verl.workers.engine_workers"]
        av._window_add(torch.full((2, 3), 0.1), torch.ones(2, 3, dtype=torch.bool))
        ew.ActorRolloutRefWorker().update_actor([])
        assert ctrl.global_step == 1 and ctrl.coef_ctrl.steps == 1

    def test_state_saved_and_loaded_with_the_actor_checkpoint(self, fake, tmp_path):
        ctrl = av.install(AENT)
        ctrl.step_end({"clamped_entropy": 3.0})
        ew = fake["verl.workers.engine_workers"]
        ew.ActorRolloutRefWorker().save_checkpoint(str(tmp_path), None, 7)
        saved = json.loads((tmp_path / av.STATE_FILE).read_text())
        assert saved == ctrl.state_dict()
        fresh = av.install(AENT)
        assert fresh.state_dict() != saved
        ew.ActorRolloutRefWorker().load_checkpoint(str(tmp_path))
        assert fresh.state_dict() == saved
        with pytest.raises(FileNotFoundError, match=av.STATE_FILE):
            ew.ActorRolloutRefWorker().load_checkpoint(str(tmp_path / "elsewhere"))

    def test_unsupported_methods_and_setup_hook(self, fake, monkeypatch):
        with pytest.raises(ValueError, match="loss_mode=clip_cov"):
            av.install(aent.EntropyConfig(method="clip_cov"))
        with pytest.raises(ValueError, match="supports methods"):
            av.install(aent.EntropyConfig(method="pos_reweight"))
        monkeypatch.setenv(av.ENV_VAR, "aent")
        av.setup_hook()
        assert av._state["control"].cfg == aent.EntropyConfig.aent_paper()
        monkeypatch.setenv(av.ENV_VAR, json.dumps({"preset": "aent", "warmup": 0}))
        av.setup_hook()
        assert av._state["control"].cfg == aent.EntropyConfig.aent_paper().replace(warmup=0)
        for bad, match in (("{not json", "JSON object"), ("aentt", "neither a preset"),
                           (json.dumps({"band_low": 0.1}), "no default")):
            monkeypatch.setenv(av.ENV_VAR, bad)
            with pytest.raises(ValueError, match=av.ENV_VAR + ".*" + match):
                av.setup_hook()

    def test_config_from_a_json_file(self, tmp_path):
        path = tmp_path / "entropy.json"
        path.write_text(json.dumps({"method": "aent", "ent_coef": 0.001, "clamp_p": 0.25, "band_low": 0.3,
                                    "band_high": 0.5, "coef_min": 1e-4, "coef_max": 0.005}))
        cfg = av.config_from_env(str(path))
        assert (cfg.method, cfg.ent_coef, cfg.clamp_p, cfg.band_low, cfg.band_high) == ("aent", 0.001, 0.25, 0.3, 0.5)


# ------------------------------------------------------------------------------------------ installed verl
def _installed():
    try:
        import verl.workers.engine_workers  # noqa: F401
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _installed(), reason="verl 0.9.x not installed (see docs/integrations/verl.md)")
class TestInstalledVerl:
    @pytest.fixture(autouse=True)
    def clean(self):
        yield
        av.uninstall()

    def test_recorded_signatures_are_the_installed_ones(self):
        for (mod, attr), sig in {**RECORDED, **RECORDED_FUSED}.items():
            owner, name = av._resolve(mod, attr)
            fn = getattr(owner, name)
            fn = getattr(fn, "__wrapped__", fn) if attr.startswith("ActorRolloutRefWorker") else fn
            assert str(inspect.signature(fn)) == sig, (mod, attr)

    def _batch(self):
        from verl.utils import tensordict_utils as tu

        b, tp, tr, v = 3, 4, 5, 40
        g = torch.Generator().manual_seed(0)
        am = torch.ones(b, tp + tr, dtype=torch.long)
        am[0, :1] = 0  # a left-padded prompt
        am[1, tp + 3:] = 0  # a short response
        resp = am[:, tp:].clone()
        data = tu.get_tensordict(
            {"prompts": torch.randint(0, v, (b, tp), generator=g), "responses": torch.randint(0, v, (b, tr), generator=g),
             "attention_mask": am, "response_mask": resp, "old_log_probs": -torch.rand(b, tr, generator=g),
             "advantages": torch.randn(b, tr, generator=g)},
            non_tensor_dict={"dp_size": 1, "batch_num_tokens": int(resp.sum()), "global_batch_size": b})
        nnz = int(am.sum())
        logits = torch.randn(nnz, v, generator=g)  # one row per real token, as verl's remove-padding layout
        logp = torch.log_softmax(logits, -1)[:, 0]
        # Response token j of sequence i is scored at flat position end_i - len_i - 1 + j (verl's left shift).
        ends = am.sum(1).cumsum(0)
        idx = torch.zeros(b, tr, dtype=torch.long)
        for i in range(b):
            n = int(resp[i].sum())
            idx[i, :n] = ends[i] - n - 1 + torch.arange(n)
        return data, logits, logp, resp, idx

    def test_loss_with_patched_entropy_and_driven_coefficient(self):
        import verl.utils.torch_functional as F
        import verl.workers.engine_workers as ew
        from verl.workers.config import FSDPActorConfig

        original = ew.ppo_loss
        ctrl = av.install(AENT)
        data, logits, logp, resp, idx = self._batch()
        ent = F.entropy_from_logits(logits)  # what the engine now returns: clamped
        torch.testing.assert_close(ent, aent.clamped_entropy(logits, AENT.clamp_p))
        cfg = FSDPActorConfig(strategy="fsdp", entropy_coeff=0.0, rollout_n=1, ppo_mini_batch_size=3,
                              ppo_micro_batch_size_per_gpu=1)
        loss, _ = ew.ppo_loss(cfg, {"log_probs": logp, "entropy": ent}, data)
        pg, _ = original(cfg, {"log_probs": logp}, data)  # verl's own loss without an entropy term
        h = ent[idx] * resp
        want = float(pg) - AENT.ent_coef * float(h.sum() / resp.sum())
        assert float(loss) == pytest.approx(want, rel=1e-6)
        assert ctrl.ent_coef == AENT.ent_coef and av._state["window"] is not None

    def test_metrics_and_full_entropy_outside_the_update(self):
        """verl's own metrics stay; aent's come beside them, equal to hand computations at the response
        positions; without gradients (compute_log_prob, verl's actor/entropy) the entropy is verl's full one."""
        import verl.utils.torch_functional as F
        import verl.workers.engine_workers as ew
        from verl.workers.config import FSDPActorConfig

        original_entropy = F.entropy_from_logits
        av.install(AENT)
        data, logits, logp, resp, idx = self._batch()
        with torch.no_grad():
            torch.testing.assert_close(F.entropy_from_logits(logits), original_entropy(logits))
        ent = F.entropy_from_logits(logits)
        cfg = FSDPActorConfig(strategy="fsdp", entropy_coeff=0.0, rollout_n=1, ppo_mini_batch_size=3,
                              ppo_micro_batch_size_per_gpu=1)
        _, metrics = ew.ppo_loss(cfg, {"log_probs": logp, "entropy": ent}, data)
        assert {"actor/pg_loss", "actor/entropy_loss"} <= set(metrics)
        n = float(resp.sum())
        assert metrics["aent/entropy_coef"] == AENT.ent_coef
        assert metrics["aent/clamped_entropy"] == pytest.approx(
            float((aent.clamped_entropy(logits, AENT.clamp_p)[idx] * resp).sum()) / n, rel=1e-6)
        assert metrics["aent/entropy"] == pytest.approx(float((aent.entropy(logits)[idx] * resp).sum()) / n, rel=1e-6)

    def test_fused_forward_of_verl_gives_the_clamped_entropy(self):
        """verl's own fused forward (torch backend, dense_common.forward_with_torch_backend, as the FSDP engine
        patches it in with use_fused_kernels=true) on a tiny Qwen2: with gradients on, (log pi, clamped entropy)
        equal to the materialised logits' (positions shifted as verl rolls the labels); without, verl's entropy."""
        from transformers import Qwen2Config, Qwen2ForCausalLM
        from verl.models.transformers.dense_common import forward_with_torch_backend

        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=1, intermediate_size=32))
        ids = torch.randint(0, 64, (2, 6))
        av.install(AENT)
        out = forward_with_torch_backend(model, input_ids=ids, return_dict=True, temperature=0.7)
        logits = model(input_ids=ids).logits.detach()
        rolled = torch.roll(ids, shifts=-1, dims=-1)
        torch.testing.assert_close(out.log_probs, aent.token_logprobs(logits, rolled, 0.7), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.entropy, aent.clamped_entropy(logits, AENT.clamp_p, None, 0.7),
                                   rtol=1e-5, atol=1e-5)
        assert out.entropy.requires_grad
        with torch.no_grad():
            full = forward_with_torch_backend(model, input_ids=ids, return_dict=True, temperature=0.7).entropy
        torch.testing.assert_close(full, aent.entropy(logits, None, 0.7), rtol=1e-5, atol=1e-5)

    def test_band_rule_through_update_actor(self):
        import verl.utils.torch_functional as F
        import verl.workers.engine_workers as ew
        from verl.workers.config import FSDPActorConfig

        ctrl = av.install(AENT)
        data, logits, logp, resp, idx = self._batch()
        cfg = FSDPActorConfig(strategy="fsdp", entropy_coeff=0.0, rollout_n=1, ppo_mini_batch_size=3,
                              ppo_micro_batch_size_per_gpu=1)
        loss_fn = functools.partial(ew.ppo_loss, config=cfg)
        lam = AENT.ent_coef
        for scale in (0.5, 8.0, 4.0):  # logit scale sets the entropy: ~3.2 (above the band), ~0.6 (below), ~1.1 (in)
            ent = F.entropy_from_logits(logits * scale)

            class Actor:
                def train_mini_batch(self, data, ent=ent):
                    loss_fn(model_output={"log_probs": logp, "entropy": ent}, data=data)
                    return None

            worker = types.SimpleNamespace(actor=Actor(), enable_routing_replay=False)
            ew.ActorRolloutRefWorker.update_actor(worker, data)  # verl's decorators, then the patched step
            lam = _band(lam, float((ent[idx] * resp).sum() / resp.sum()), AENT)
            assert ctrl.ent_coef == pytest.approx(lam, rel=1e-6)  # fp32 token sums
        assert ctrl.global_step == 3

