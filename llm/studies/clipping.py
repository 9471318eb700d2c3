"""Study ``clipping``: the PPO clip range moves entropy.

Finding 3 of "Revisiting Entropy in RL for Large Reasoning Models" (arXiv 2511.05993): a larger eps_low raises the
risk of entropy collapse; and (arXiv 2509.26114) clipping on the low side (negative-advantage tokens whose ratio
falls below 1 - eps_low) raises entropy while clipping on the high side (positive-advantage tokens above
1 + eps_high) lowers it, so DAPO's clip-higher (eps_high = 0.28) raises entropy. Arms: symmetric 0.2 / 0.2,
clip-higher 0.2 / 0.28, larger eps_low 0.3 / 0.2. Every arm takes 4 updates per rollout batch (2 epochs x 2
mini-batches): with one on-policy update the ratio is 1 and no clip range matters.
"""

from __future__ import annotations

from llm.studies.spec import Arm, Claim, Study

GRID = (("sym0.2", 0.2, 0.2), ("clip_higher", 0.2, 0.28), ("low0.3", 0.3, 0.2))


def arms(cfg, _runs) -> list[Arm]:
    gb = cfg.global_batch
    upd = ("optim.ppo_epochs=2", f"optim.mini_batch_size={gb // 2}")
    return [Arm(name, (*upd, f"entropy.eps_low={lo}", f"entropy.eps_high={hi}")) for name, lo, hi in GRID]


STUDY = Study(
    name="clipping",
    title="Clip thresholds eps_low / eps_high (arXiv 2511.05993 finding 3; arXiv 2509.26114)",
    finding="Clip thresholds move entropy: clip-higher raises it, a larger eps_low lowers it (collapse risk).",
    arms=arms,
    claims=[
        Claim("clip_higher", "Clip-higher (eps_high 0.28) raises entropy vs symmetric 0.2", "entropy_change",
              "clip_higher", "sym0.2", +1, "entropy change with eps_high = 0.28 minus with 0.2 (nats)"),
        Claim("larger_eps_low", "A larger eps_low (0.3) lowers entropy vs 0.2", "entropy_change", "low0.3",
              "sym0.2", -1, "entropy change with eps_low = 0.3 minus with 0.2 (nats)"),
    ],
    smoke_arms=("sym0.2", "clip_higher"),
)
