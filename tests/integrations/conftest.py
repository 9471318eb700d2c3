"""Shared test data of the verl tests: the names and call signatures read from verl 0.9.0's source.

``test_verl.py`` builds its fake ``verl`` modules to these; ``test_verl_installed.py`` checks them against an
installed verl (the recorded strings are ``str(inspect.signature(...))`` of verl 0.9.0).
"""

from __future__ import annotations

import pytest

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


@pytest.fixture
def verl_recorded() -> dict:
    """What aent.integrations.verl.install replaces, with verl 0.9.0's signatures."""
    return dict(RECORDED)


@pytest.fixture
def verl_recorded_fused() -> dict:
    """The kernels of verl 0.9.0's fused path, with their signatures."""
    return dict(RECORDED_FUSED)
