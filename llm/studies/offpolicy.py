"""Study ``offpolicy``: more off-policy updates per rollout batch amplify the entropy change.

Finding 1 of "Revisiting Entropy in RL for Large Reasoning Models" (arXiv 2511.05993): the more optimizer updates
are taken on one batch of rollouts (PPO epochs x mini-batches), the further the later updates are from the policy
that sampled the batch, and the larger the entropy change per rollout batch. Arms: 1, 2, 4 and 8 updates per
batch (1 epoch x 1 mini-batch, 1 x 2, 2 x 2, 2 x 4) with the same learning rate, rollouts and global steps.
"""

from __future__ import annotations

from llm.studies.spec import Arm, Claim, Study

# (epochs, mini-batches per epoch): 1, 2, 4, 8 updates per rollout batch.
SETTINGS = ((1, 1), (1, 2), (2, 2), (2, 4))


def arms(cfg, _runs) -> list[Arm]:
    """One arm per number of updates; mini_batch_size splits the global batch (must divide it)."""
    gb = cfg.global_batch
    out = []
    for epochs, minis in SETTINGS:
        if gb % minis:
            raise ValueError(f"study offpolicy needs prompts_per_step * group_size = {gb} divisible by {minis}")
        out.append(Arm(f"upd{epochs * minis}", (f"optim.ppo_epochs={epochs}", f"optim.mini_batch_size={gb // minis}")))
    return out


STUDY = Study(
    name="offpolicy",
    title="Off-policy updates per rollout batch (arXiv 2511.05993, finding 1)",
    finding="More off-policy updates per rollout batch amplify the entropy change.",
    arms=arms,
    claims=[
        Claim("amplify", "More off-policy updates per rollout batch amplify the entropy change",
              "abs_entropy_change", "upd8", "upd1", +1,
              "|entropy change| with 8 updates per batch minus with 1 update (nats)"),
        Claim("amplify_4", "4 updates per batch change entropy more than 1", "abs_entropy_change", "upd4", "upd1", +1,
              "|entropy change| with 4 updates minus with 1 (nats)"),
    ],
    smoke_arms=("upd1", "upd8"),
)
