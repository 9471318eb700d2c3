"""aent.integrations.verl: the patched entropy, the driven coefficient, the controller step, checkpoint state.

Two levels, because verl is not installed in the project's environment (it pins transformers < 5.11 and pulls
ray; it installs in a separate venv, see docs/integrations/verl.md):

- ``TestRecorded`` (always runs): fake ``verl`` modules carrying the names and call signatures recorded from verl
  0.9.0's source (the ``verl_recorded`` fixture, tests/integrations/conftest.py); checks what install() replaces
  and the coefficient / controller logic.
- ``TestInstalledVerl`` (tests/integrations/test_verl_installed.py): the same against verl 0.9.0's own code.
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

    def test_fake_has_the_recorded_names_and_parameters(self, fake, verl_recorded):
        for (mod, attr), sig in verl_recorded.items():
            owner, name = av._resolve(mod, attr)
            params = list(inspect.signature(getattr(owner, name)).parameters)
            recorded = [p.split(":")[0].split("=")[0].strip() for p in sig.split(")")[0].strip("(").split(",")]
            assert params == recorded, (mod, attr)
        assert {(m, a) for m, a in av.VERL_TARGETS} >= set(verl_recorded)

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
