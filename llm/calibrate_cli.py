"""``aent calibrate``: the command line and the printed report of :mod:`llm.calibrate`."""

from __future__ import annotations

import argparse

from llm.calibrate import Calibration, calibrate

__all__ = ["calibrate_main", "format_report"]

_DESCRIPTION = "``aent calibrate``: measure the starting policy on one rollout batch, then propose AEnt's constants."


def format_report(cal: Calibration) -> str:
    """The printed report: measurements, each proposed constant with its source and rule, and the snippets."""
    m, pr = cal.measurements, cal.proposal
    v = m.vocab_size or 0
    lines = [f"aent calibrate --config {cal.config} (planned steps S = {cal.steps})",
             f"machine: {cal.machine}; {cal.seconds:.1f} s", f"batch: {cal.batch}", "",
             "measured on the starting policy:",
             f"  clamped entropy H0 at p = {m.clamp_p:g}: {m.clamped_entropy:.4f} nats (full entropy "
             f"{m.entropy:.4f})" if m.entropy is not None else f"  H0 = {m.clamped_entropy:.4f}",
             f"  never-used share u: {m.unused_share:.4f} ({round(m.unused_share * v)} of {v} ids: not drawn in the "
             f"batch, expected draws over {cal.steps} steps < 1)",
             f"  |grad L_PG| = {m.pg_grad_norm:.4g} (all-equal groups: {m.zero_adv_frac or 0:.0%}), "
             f"|grad H~| = {m.ent_grad_norm:.4g}, r = {m.grad_ratio:.4g}"
             + (f" (per batch {m.grad_ratio_range[0]:.4g} to {m.grad_ratio_range[1]:.4g}; means over {m.batches})"
                if m.batches > 1 else ""), "",
             f"proposed (proportions of {pr.reference}; see docs/calibrate.md):"]
    section = pr.entropy_section()
    width = max(len(f) for f, _, _ in pr.rules)
    for name, source, rule in pr.rules:
        lines.append(f"  {name:<{width}} = {section[name]!s:<9}  from {source}")
        lines.append(f"  {'':<{width}}   {'':<9}  rule: {rule}")
    lines += [f"warning: {w}" for w in pr.warnings]
    lines += ["", "config snippet:", pr.yaml(), "", "as overrides:", "  " + " ".join(pr.overrides())]
    return "\n".join(lines)


def calibrate_main(argv: list[str]) -> int:
    """``aent calibrate --config C [--steps N] [--p P] [--json FILE] [key=value ...]``."""
    from llm.config import load_config

    ap = argparse.ArgumentParser(prog="aent calibrate", description=_DESCRIPTION)
    ap.add_argument("--config", required=True, help="YAML file or packaged config name (tiny, ...)")
    ap.add_argument("--steps", type=int, default=None, help="planned global steps (default: the config's max_steps)")
    ap.add_argument("--p", type=float, default=None, dest="clamp_p",
                    help="candidate clamp fraction p in [0, 1) (default: the rule's p for the never-used share)")
    ap.add_argument("--batches", type=int, default=1,
                    help="measure on the rollouts of steps 1..N, all from the starting policy (default 1)")
    ap.add_argument("--json", default=None, metavar="FILE",
                    help="also write the constants (unrounded), measurements and rules to FILE as JSON")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as for aent train")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    cal = calibrate(cfg, steps=args.steps, clamp_p=args.clamp_p, batches=args.batches, config_name=args.config)
    print(format_report(cal))
    if args.json:
        import json
        from pathlib import Path

        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**cal.record(), "config": args.config, "overrides": list(args.overrides),
                                   "seed": cfg.seed}, indent=1, default=str) + "\n")
        tmp.replace(path)  # a reader never sees half a file
    return 0
