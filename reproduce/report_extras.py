"""Report sections of the stages in :mod:`reproduce.extra_stages`: AEnt's calibrated constants, one exploration level.

Both render nothing when their JSON is absent (a config without those stages, or a report generated from an older
run), and, like the rest of the report, print every number through :class:`reproduce.numbers.Fields` from a JSON
file in the run folder: ``llm/calibration/LABEL/wsW.json`` and ``exploration/demo.json`` (which carries the
committed study's gate and verdict, copied there by the exploration summary stage).
"""

from __future__ import annotations

import json
from pathlib import Path

from reproduce.extra_stages import DEMO_NAME
from reproduce.numbers import Fields

__all__ = ["calibration_lines", "exploration_lines", "FEWER_SEEDS"]

FEWER_SEEDS = "fewer seeds than the study: a description, not a verdict"
"""The label of the exploration section (its heading carries it)."""


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def calibration_lines(f: Fields, out: Path) -> list[str]:
    """Per calibrated label and warm start: what ``aent calibrate`` measured and the constants the runs used."""
    root = out / "llm" / "calibration"
    files = sorted(root.glob("*/*.json")) if root.is_dir() else []
    if not files:
        return []
    lines = ["### AEnt's constants, calibrated per warm start", "",
             "The AEnt runs of this comparison do not use the authors' constants (set for Qwen2.5-Math-1.5B and a "
             "run of about 440 steps; that preset stays for Qwen-scale runs). A calibration stage runs `aent "
             "calibrate` on each warm start's starting policy with the runs' own config and budget, on the step-1 "
             "rollout batch of a fixed run seed (a batch drawn before any update; no outcome is looked at), and "
             "the rule of `aent.calibration.propose` (docs/calibrate.md) turns what it measured into the constants "
             "every run of that warm start uses, unrounded:", "",
             "| label, warm start | steps S | H0 (clamped, at p) | full entropy | never-used share u | "
             "\\|g_PG\\| | \\|g_H~\\| | band | box | λ0 | β | p | warm-up |", "|---|" + "---|" * 12]
    for path in files:
        src = str(path.relative_to(out))
        d = _load(path)
        if d is None:
            continue
        m, c = ("measurements",), ("constants",)
        lines.append(
            f"| `{path.parent.name}`, {path.stem} | {f.num(src, d, 'steps')} | "
            f"{f.num(src, d, *m, 'clamped_entropy', nd=4)} | {f.num(src, d, *m, 'entropy', nd=4)} | "
            f"{f.num(src, d, *m, 'unused_share', nd=4)} | {f.num(src, d, *m, 'pg_grad_norm', nd=4)} | "
            f"{f.num(src, d, *m, 'ent_grad_norm', nd=4)} | [{f.num(src, d, *c, 'band_low', nd=4)}, "
            f"{f.num(src, d, *c, 'band_high', nd=4)}] | [{f.num(src, d, *c, 'coef_min', nd=4)}, "
            f"{f.num(src, d, *c, 'coef_max', nd=4)}] | {f.num(src, d, *c, 'ent_coef', nd=4)} | "
            f"{f.num(src, d, *c, 'coef_lr', nd=4)} | {f.num(src, d, *c, 'clamp_p', nd=4)} | "
            f"{f.num(src, d, *c, 'warmup')} |")
    return lines + ["", "Measured on: " + "; ".join(f"{p.stem}: {f.text(str(p.relative_to(out)), _load(p), 'batch')}"
                                                  for p in files if _load(p)) + ".", ""]


def _yes(rec: dict | None) -> str:
    if not rec:
        return "not run"
    return "no" if not rec["escaped"] else "yes"


def _gate_lines(f: Fields, d: dict) -> list[str]:
    src, c = f"exploration/{DEMO_NAME}", d.get("committed")
    if not c or not c.get("gate"):
        return ["_The committed study's summary (`exploration.committed` of the config) was not found, so its "
                "premise gate cannot be cited here; see docs/llm/exploration.md._", ""]
    g, sel = ("committed", "gate"), ("committed", "selection")
    seeds = ", ".join(f.num(src, d, *sel, "seeds", i) for i in range(len(c["selection"]["seeds"])))
    wss = ", ".join(f.num(src, d, *sel, "warm_starts", i) for i in range(len(c["selection"]["warm_starts"])))
    start = c.get("gate_start") or {}
    skill = (f" Its starting policy there: q0 {f.num(src, d, 'committed', 'gate_start', 'q0', nd=5)}, forced "
             f"accuracy {f.num(src, d, 'committed', 'gate_start', 'forced_accuracy')}, worked pass@k "
             f"{f.num(src, d, 'committed', 'gate_start', 'worked_pass_at_k')}." if start.get("reached") else "")
    return [f"**Premise gate: not rerun here.** From the committed study (`{c['source']}`, "
            f"{f.text(src, d, 'committed', 'date')}): GRPO alone on warm start(s) {wss} x run seeds {seeds} stayed "
            f"trapped in {f.num(src, d, *g, 'trapped_runs')} of {f.num(src, d, *g, 'runs')} runs; premise "
            f"**{f.text(src, d, *g, 'premise')}** at level {f.num(src, d, 'level')}." + skill, ""]


def _verdict_line(f: Fields, d: dict) -> list[str]:
    src = f"exploration/{DEMO_NAME}"
    v = ((d.get("committed") or {}).get("verdicts") or {}).get("aent_vs_grpo")
    if not v or v.get("n", 0) == 0:
        return ["_The committed study has no verdict for this level's claim \"AEnt beats GRPO\"._", ""]
    at = ("committed", "verdicts", "aent_vs_grpo")
    return [f"The verdict is the study's: \"{f.text(src, d, *at, 'text')}\" on {f.num(src, d, *at, 'n')} pairs "
            f"(paired t, Holm over its primary claims): **{f.text(src, d, *at, 'verdict')}**, effect "
            f"{f.num(src, d, *at, 'effect')} [{f.num(src, d, *at, 'ci_low')}, {f.num(src, d, *at, 'ci_high')}] "
            f"(SESOI {f.num(src, d, *at, 'sesoi', nd=2)}), Holm-adjusted p {f.num(src, d, *at, 'p_adj', nd=4)} "
            "(docs/exploration_example/report.md, docs/llm/exploration.md).", ""]


def exploration_lines(f: Fields, out: Path) -> list[str]:
    """The exploration level of the main job: its pairs described, the committed gate and verdict cited."""
    src = f"exploration/{DEMO_NAME}"
    d = _load(out / src)
    if d is None:
        return []
    k, other, base = d.get("k") or "k", d.get("other"), d["baseline"]
    lines = [f"## LLM: an exploration trap, AEnt vs GRPO ({FEWER_SEEDS})", "",
             "The exploration study (`aent study exploration`, docs/llm/exploration.md) hides the rewarded "
             "(worked) style behind a second warm-start stage, so the starting policy samples it only at a small "
             f"rate q0. This section runs its level {f.num(src, d, 'level')} (levels are numbered from the deepest "
             f"trap) on {f.num(src, d, 'n_pairs')} of the study's verdict pairs with the arms "
             + ", ".join(f"`{a}`" for a in d["arms"]) + " (AEnt with the constants `aent calibrate` proposes on the "
             f"level's starting policy of each warm start), through the study's own code, "
             f"{f.num(src, d, 'steps')} steps per run. **{f.num(src, d, 'n_pairs')} pairs are a description, not "
             "a verdict**: no test is run on them.", ""]
    lines += _gate_lines(f, d)
    lines += ["Starting policies of this run, and the calibrated constants of its AEnt arm:", "",
              "| warm start | bare-stage steps | q0 | forced accuracy | worked pass@k | AEnt band | box | λ0 | p |",
              "|---|---|---|---|---|---|---|---|---|"]
    for ws, s in d["starts"].items():
        c = ("constants", ws, "constants")
        consts = (f"[{f.num(src, d, *c, 'band_low')}, {f.num(src, d, *c, 'band_high')}] | "
                  f"[{f.num(src, d, *c, 'coef_min')}, {f.num(src, d, *c, 'coef_max')}] | "
                  f"{f.num(src, d, *c, 'ent_coef')} | {f.num(src, d, *c, 'clamp_p', nd=4)}"
                  if ws in d.get("constants", {}) else " | | | ")
        if s and s.get("reached"):
            at = ("starts", ws)
            lines.append(f"| {ws} | {f.num(src, d, *at, 'bare_stage_steps')} | {f.num(src, d, *at, 'q0', nd=5)} | "
                         f"{f.num(src, d, *at, 'forced_accuracy')} | {f.num(src, d, *at, 'worked_pass_at_k')} | "
                         f"{consts} |")
        else:
            lines.append(f"| {ws} | level not reached | | | | | | | |")
    lines += ["", f"| pair | {base} escaped | {base} final mean@{k} | {other} escaped (step) | {other} final "
              f"mean@{k} | {other} minus {base} | {other} band share | {other} coefficient | committed study, this "
              f"pair: {base} / {other} mean@{k} |", "|---|" + "---|" * 8]
    for i, p in enumerate(d["pairs"]):
        at = ("pairs", i)
        b, o = p.get(base), p.get(other)
        step = (f" ({f.num(src, d, *at, other, 'escape_step')})" if o and o.get("escape_step") is not None else "")
        old_b, old_o = p.get(f"committed_{base}"), p.get(f"committed_{other}")
        old = (f"{f.num(src, d, *at, f'committed_{base}', 'final_mean_at_k')} / "
               f"{f.num(src, d, *at, f'committed_{other}', 'final_mean_at_k')}" if old_b and old_o else "n/a")
        lines.append(
            f"| {f.text(src, d, *at, 'pair')} | {_yes(b)} | "
            f"{f.num(src, d, *at, base, 'final_mean_at_k') if b else ''} | {_yes(o)}{step} | "
            f"{f.num(src, d, *at, other, 'final_mean_at_k') if o else ''} | "
            f"{f.num(src, d, *at, 'difference') if 'difference' in p else ''} | "
            f"{f.num(src, d, *at, other, 'band_share', nd=2) if o else ''} | "
            f"{f.text(src, d, *at, other, 'coef_state') if o else ''} | {old} |")
    lines += ["", f"Mean of the paired differences ({other} minus {base}, final held-out mean@{k}): "
              f"{f.num(src, d, 'mean_difference')}, over {f.num(src, d, 'n_pairs')} pairs: a description. "
              "Escaped: the share of a step's samples that start a worked line, averaged over the last steps, "
              "reaches the gate's threshold (llm.studies.exploration_gate). Band share: the share of the "
              "post-warm-up steps whose clamped entropy lies inside AEnt's band; coefficient: saturated (at a bound "
              "for most of those steps), moves or stays (docs/protocol.md).", ""]
    return lines + _verdict_line(f, d)
