"""Shared machinery of the entropy-dynamics studies: arms x seeds sweeps of the GRPO trainer, the per-step
mechanism log, per-run summaries, paired verdicts, the JSON record and the figure.

Each study (one module per finding of "Revisiting Entropy in RL for Large Reasoning Models", arXiv 2511.05993)
is a :class:`Study`: a list of arms (config overrides of ``configs/tiny.yaml``) and a list of claims. Every arm
runs the same seeds with the same budget (global steps, prompts per step, group size, response length) from
the same warm-started policy (the trainer caches the warm start and shares it by every run), through the public
entry point :func:`llm.train.train`.

The trainer has no callback yet, so some of its module-level functions are wrapped for the duration of a run
(:func:`trainer_hooks`): ``llm.train.ppo_update`` (to measure every token's entropy before and after the step's
updates and log the covariance decomposition of :mod:`llm.studies.mechanism`); ``llm.train.evaluate_heldout``
with ``llm.evaluate.evaluate`` (to keep the pass@k that the sampled held-out evaluation computes, as
``eval_pass_at_K``); and, for the diversity study, ``llm.train.step_prompts`` (to draw the step's prompts from
the first K training problems only, leaving the warm start and the held-out set untouched). The extra metrics
land in ``metrics.jsonl`` beside the trainer's.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llm.studies.mechanism import covariance_split, measured_split
from llm.studies.verdict import paired_verdict

DEFAULT_CONFIG = "tiny"  # packaged config name (aent_configs), independent of the working directory
# Panels of every study figure (missing keys are skipped by the plot).
PLOT_KEYS = ("entropy_before", "clamped_entropy", "reward_mean", "eval_accuracy", "eval_pass", "dh_pos",
             "dh_neg", "cov_dh_pos", "cov_dh_neg")


@dataclass(frozen=True)
class Arm:
    """One setting of a sweep: a name and the ``key=value`` overrides it adds to the study's base config."""

    name: str
    """Short label used in the figure legend and the JSON."""
    overrides: tuple[str, ...] = ()
    """Trainer config overrides (``section.field=value``) of this arm."""
    prompt_pool: int = 0
    """If > 0, each step's prompts come from the first ``prompt_pool`` training problems only (diversity)."""


@dataclass(frozen=True)
class Claim:
    """A finding tested by a paired contrast between two arms (or one arm against zero)."""

    key: str
    """Short id of the claim."""
    text: str
    """The finding, as stated by the paper."""
    metric: str
    """Name of a per-run summary in :data:`SUMMARIES`."""
    arm: str
    """Arm X of the contrast m(X) - m(Y)."""
    baseline: str | None
    """Arm Y, or None for a one-sample claim on m(X)."""
    sign: int
    """+1 if the claim says m(X) - m(Y) > 0, -1 if < 0."""
    what: str = ""
    """Human description of the contrast, used in the generated text."""


@dataclass
class Study:
    """A sweep over arms with claims; ``arms`` may depend on the loaded base config and on earlier results."""

    name: str
    title: str
    finding: str
    arms: Callable[[Any, dict[str, list[list[dict]]]], list[Arm]]
    claims: list[Claim]
    steps: int = 30
    smoke_arms: tuple[str, ...] = ()
    extra_overrides: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ hooks
def _entropies(cfg, model, batch) -> torch.Tensor:
    from llm.policy import completion_stats

    with torch.no_grad():
        st = completion_stats(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                              batch["completion_mask"], temperature=cfg.rollout.temperature,
                              clamp_p=cfg.entropy.clamp_p, batch_size=cfg.optim.micro_batch_size)
    return st.entropy


@contextlib.contextmanager
def trainer_hooks(prompt_pool: int = 0) -> Iterator[None]:
    """Wrap ``llm.train.ppo_update`` (mechanism metrics) and optionally ``llm.train.step_prompts`` (prompt pool).

    The mechanism metrics added to each step's row: ``entropy_before`` / ``entropy_after`` (token-mean entropy of
    the step's rollout tokens under the policy before / after the updates), ``dh`` and its split ``dh_pos``,
    ``dh_neg``, ``dh_zero`` (:func:`measured_split`), and the first-order prediction ``cov_dh``, ``cov_dh_pos``,
    ``cov_dh_neg``, ``cov_dh_zero``, ``cov_pos_share``, ``adv_pos_frac`` (:func:`covariance_split`).
    """
    import llm.evaluate as ev
    import llm.train as tr

    orig_update, orig_prompts, orig_heldout, orig_eval = tr.ppo_update, tr.step_prompts, tr.evaluate_heldout, \
        ev.evaluate
    last: dict[str, Any] = {}

    def evaluate(*a, **kw):  # keep the sampled evaluation's pass@j, which evaluate_heldout does not return
        out = orig_eval(*a, **kw)
        if kw.get("samples", 1) > 1:
            last.clear()
            last.update(out)
        return out

    def evaluate_heldout(cfg, model, tokenizer, problems):
        row = orig_heldout(cfg, model, tokenizer, problems)
        k = cfg.eval_samples
        if f"pass@{k}" in last:
            row[f"eval_pass_at_{k}"] = float(last[f"pass@{k}"])
        return row

    def ppo_update(cfg, step, accelerator, model, optimizer, scheduler, control, batch, adv, log):
        net = accelerator.unwrap_model(model)
        before = _entropies(cfg, net, batch)
        stats = orig_update(cfg, step, accelerator, model, optimizer, scheduler, control, batch, adv, log)
        after = _entropies(cfg, net, batch)
        mask = batch["completion_mask"]
        extra = measured_split(before, after, adv, mask)
        extra.update(covariance_split(batch["old_logp"].float(), adv, mask))
        return {**stats, **extra}

    def step_prompts(seed, step, n_problems, per_step):
        return orig_prompts(seed, step, min(prompt_pool, n_problems), per_step)

    tr.ppo_update, tr.evaluate_heldout, ev.evaluate = ppo_update, evaluate_heldout, evaluate
    if prompt_pool > 0:
        tr.step_prompts = step_prompts
    try:
        yield
    finally:
        tr.ppo_update, tr.step_prompts, tr.evaluate_heldout, ev.evaluate = (orig_update, orig_prompts,
                                                                             orig_heldout, orig_eval)


# ----------------------------------------------------------------------------------------------- running
def run_one(config: str, overrides: Sequence[str], out_dir: Path, prompt_pool: int = 0) -> list[dict]:
    """One training run through :func:`llm.train.train`; keeps metrics.jsonl and config.yaml, drops weights."""
    from llm.config import load_config
    from llm.metrics import read_metrics
    from llm.train import train

    cfg = load_config(config, [*overrides, f"output_dir={out_dir}"])
    shutil.rmtree(out_dir, ignore_errors=True)
    with trainer_hooks(prompt_pool):
        train(cfg)
    for sub in ("checkpoints", "final", "tb"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    rows = read_metrics(out_dir)
    init = out_dir / "initial_eval.json"  # held-out metrics of the starting policy: plotted at step 0
    if init.is_file():
        rows.insert(0, {"step": 0, **json.loads(init.read_text())})
    return rows


def base_overrides(steps: int, smoke: bool) -> list[str]:
    """Overrides shared by every arm: the budget, quiet logging, periodic held-out evaluation."""
    evals = steps if smoke else max(1, steps // 4)
    common = [f"max_steps={steps}", f"eval_every={evals}", "progress=false", "tensorboard=false", "save_every=0"]
    if smoke:
        # Pipeline check only: a short warm start and a small batch (4 prompts x 4 samples x 16 tokens).
        return [*common, "model.warm_start_steps=10", "data.n_test=4", "eval_samples=2", "data.n_train=64",
                "rollout.prompts_per_step=4", "rollout.group_size=4", "rollout.max_new_tokens=16",
                "optim.mini_batch_size=8"]
    return [*common, "data.n_test=32", "eval_samples=4"]


# ------------------------------------------------------------------------------------------------ summaries
def _series(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))]


def _onpolicy_entropy(rows: list[dict]) -> list[float]:
    return _series(rows, "entropy_before") or _series(rows, "entropy")


def _tail_mean(xs: list[float], frac: float = 0.25) -> float:
    if not xs:
        return math.nan
    k = max(1, int(round(len(xs) * frac)))
    return sum(xs[-k:]) / k


def entropy_change(rows: list[dict]) -> float:
    """Final minus initial on-policy entropy: mean of the last quarter of steps minus step 1 (nats)."""
    h = _onpolicy_entropy(rows)
    return _tail_mean(h) - h[0] if h else math.nan


def mean_entropy_change(rows: list[dict]) -> float:
    """Mean over steps of (entropy - entropy at step 1): the area between the curve and its start (nats)."""
    h = _onpolicy_entropy(rows)
    return sum(x - h[0] for x in h) / len(h) if h else math.nan


def _mean(rows: list[dict], key: str) -> float:
    xs = _series(rows, key)
    return sum(xs) / len(xs) if xs else math.nan


def eval_key(rows: list[dict], kind: str) -> str | None:
    """Name of the held-out metric of a kind ("accuracy" or "pass") the trainer logged, if any."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    if kind == "accuracy":
        return "eval_accuracy" if "eval_accuracy" in keys else None
    return next((k for k in keys if k.startswith("eval_pass_at_")), None)


def final_eval(rows: list[dict], kind: str) -> float:
    key = eval_key(rows, kind)
    xs = _series(rows, key) if key else []
    return xs[-1] if xs else math.nan


SUMMARIES: dict[str, Callable[[list[dict]], float]] = {
    "entropy_change": entropy_change,
    "abs_entropy_change": lambda r: abs(entropy_change(r)),
    "mean_entropy_change": mean_entropy_change,
    "final_entropy": lambda r: _tail_mean(_onpolicy_entropy(r)),
    "final_clamped_entropy": lambda r: _tail_mean(_series(r, "clamped_entropy")),
    "mean_reward": lambda r: _mean(r, "reward_mean"),
    "final_reward": lambda r: _tail_mean(_series(r, "reward_mean")),
    "final_eval_accuracy": lambda r: final_eval(r, "accuracy"),
    "final_eval_pass": lambda r: final_eval(r, "pass"),
    "mean_dh": lambda r: _mean(r, "dh"),
    "mean_dh_pos": lambda r: _mean(r, "dh_pos"),
    "mean_dh_neg": lambda r: _mean(r, "dh_neg"),
    "mean_cov_dh_pos": lambda r: _mean(r, "cov_dh_pos"),
    "mean_cov_dh_neg": lambda r: _mean(r, "cov_dh_neg"),
    "mean_cov_pos_share": lambda r: _mean(r, "cov_pos_share"),
    "cov_sign_agreement": lambda r: _sign_agreement(r),
}


def _sign_agreement(rows: list[dict]) -> float:
    """Share of steps where the covariance prediction cov_dh and the measured dh have the same sign."""
    pairs = [(r.get("cov_dh"), r.get("dh")) for r in rows]
    pairs = [(a, b) for a, b in pairs if isinstance(a, (int, float)) and isinstance(b, (int, float))
             and math.isfinite(a) and math.isfinite(b) and a != 0 and b != 0]
    return sum((a > 0) == (b > 0) for a, b in pairs) / len(pairs) if pairs else math.nan


def summarise(runs: dict[str, list[list[dict]]]) -> dict[str, dict[str, Any]]:
    """Per arm and summary: per-seed values, mean and across-seed sd (n - 1 dof)."""
    out: dict[str, dict[str, Any]] = {}
    for arm, seeds in runs.items():
        out[arm] = {}
        for name, fn in SUMMARIES.items():
            vals = [fn(rows) for rows in seeds]
            fin = [v for v in vals if math.isfinite(v)]
            mu = sum(fin) / len(fin) if fin else math.nan
            sd = math.sqrt(sum((v - mu) ** 2 for v in fin) / (len(fin) - 1)) if len(fin) > 1 else math.nan
            out[arm][name] = {"per_seed": vals, "mean": mu, "sd": sd}
    return out


def _fmt(x: float, nd: int = 3) -> str:
    """Signed number with nd decimals, or nd significant digits when it is smaller than 10^-2 in size."""
    if x is None or not math.isfinite(x):
        return "nan"
    return f"{x:+.{nd - 1}e}" if 0 < abs(x) < 1e-2 else f"{x:+.{nd}f}"


def judge(claims: Sequence[Claim], runs: dict[str, list[list[dict]]]) -> list[dict[str, Any]]:
    """A generated verdict per claim: held / did not hold / inconclusive at this scale, with the numbers."""
    out = []
    for c in claims:
        if c.arm not in runs or (c.baseline is not None and c.baseline not in runs):
            out.append({"claim": c.text, "key": c.key, "verdict": "inconclusive",
                        "text": f"{c.text}: inconclusive (arms {c.arm!r} / {c.baseline!r} were not both run)."})
            continue
        fn = SUMMARIES[c.metric]
        xs = [fn(r) for r in runs[c.arm]]
        ys = [fn(r) for r in runs[c.baseline]] if c.baseline else [0.0] * len(xs)
        diffs = [x - y for x, y in zip(xs, ys)]
        v = paired_verdict(diffs, c.sign)
        lhs = f"{c.metric}[{c.arm}]" + (f" - {c.metric}[{c.baseline}]" if c.baseline else "")
        want = ">" if c.sign > 0 else "<"
        if v.n < 2:
            why = "only one seed, so there is no spread to compare the effect with"
        elif v.label == "inconclusive":
            why = f"|t| = {abs(v.t):.2f} <= {v.t_crit:.2f}: within seed noise"
        else:
            why = f"|t| = {abs(v.t):.2f} > {v.t_crit:.2f}"
        text = (f"{c.text} -> {v.label.upper()} at this scale. {c.what or lhs} (claim: {want} 0): "
                f"{_fmt(v.mean)} (mean over {v.n} seeds; across-seed sd {_fmt(v.sd).lstrip('+')}; "
                f"effect/sd {_fmt(v.effect_over_sd, 2)}; paired t {_fmt(v.t, 2)}); {why}. "
                f"Per seed: {', '.join(_fmt(d) for d in diffs)}.")
        out.append({"claim": c.text, "key": c.key, "verdict": v.label, "text": text, "metric": c.metric,
                    "arm": c.arm, "baseline": c.baseline, "sign": c.sign, "effect": v.mean, "sd": v.sd,
                    "effect_over_sd": v.effect_over_sd, "t": v.t, "t_crit": v.t_crit, "n_seeds": v.n,
                    "per_seed": diffs})
    return out


# -------------------------------------------------------------------------------------------------- output
def plot_study(runs: dict[str, list[list[dict]]], out_png: Path, title: str) -> Path:
    """Mean +- sd across seeds per arm: entropy, clamped entropy, reward, held-out metrics, entropy split."""
    from aent.plotting import plot_metrics

    rows = [r for seeds in runs.values() for s in seeds for r in s]
    keys = list(PLOT_KEYS)
    acc, pas = eval_key(rows, "accuracy"), eval_key(rows, "pass")
    keys = [(acc or "eval_accuracy") if k == "eval_accuracy" else (pas or "eval_pass") if k == "eval_pass"
            else k for k in keys]
    present = {k for r in rows for k in r}
    keys = [k for k in keys if k in present] or ["entropy"]
    return plot_metrics(runs, keys, out_png, title=title)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def run_study(study: Study, out: str | Path, *, smoke: bool = False, seeds: int = 3, steps: int | None = None,
              config: str = DEFAULT_CONFIG, overrides: Sequence[str] = (), progress: bool = True) -> dict[str, Any]:
    """Run every arm of ``study`` for ``seeds`` seeds and write ``OUT/NAME.json`` and ``OUT/NAME.png``.

    Args:
        study: the sweep.
        out: output folder (run folders go to OUT/runs/NAME/ARM/seedS).
        smoke: 2 arms (``study.smoke_arms``), 1 seed, 2 steps, tiny eval: checks the pipeline, not the claim.
        seeds: number of seeds (0, 1, ...) per arm; ignored with ``smoke``.
        steps: global steps per run (default ``study.steps``; 2 with ``smoke``).
        config: base trainer config (YAML).
        overrides: extra ``key=value`` overrides applied to every arm (before the arm's own).
        progress: tqdm bar over the runs.

    Returns:
        The JSON record (also written to disk).
    """
    from llm.config import load_config

    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    steps = 2 if smoke else (steps or study.steps)
    seeds = 1 if smoke else seeds
    out = Path(out)
    base = [*base_overrides(steps, smoke), *study.extra_overrides, *overrides]
    # Every run reads one snapshot of the config file, so an edit of the file mid-study cannot split the arms.
    snap = out / "runs" / study.name / "base_config.yaml"
    snap.parent.mkdir(parents=True, exist_ok=True)
    import aent_configs

    try:
        snap.write_text(aent_configs.resolve(config).read_text())  # a file, or a packaged config name
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    config = str(snap)
    base_cfg = load_config(config, base)
    t0 = time.perf_counter()
    runs: dict[str, list[list[dict]]] = {}
    arm_list: list[Arm] = []
    keep = None
    pending = study.arms(base_cfg, runs)
    if smoke:
        keep = set(study.smoke_arms or [a.name for a in pending[:2]])
        pending = [a for a in pending if a.name in keep]
    # Prime the warm-start cache with a throwaway 1-step run, so every arm loads the identical cached policy
    # (a run that trains the warm start itself differs: llm/warmstart.py leaves its last gradients on the
    # parameters and the first RL update applies them).
    if not smoke:
        prime = out / "runs" / study.name / "_prime"
        run_one(config, [*base, "max_steps=1", "eval_every=0"], prime)
        shutil.rmtree(prime, ignore_errors=True)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(pending) * seeds, desc=f"study {study.name}", unit="run", disable=not progress)
    while pending:
        arm = pending[0]
        arm_list.append(arm)
        runs[arm.name] = []
        for s in range(seeds):
            rows = run_one(config, [*base, *arm.overrides, f"seed={s}"],
                           out / "runs" / study.name / arm.name / f"seed{s}", prompt_pool=arm.prompt_pool)
            runs[arm.name].append(rows)
            bar.update(1)
        # Re-read the arm list: an arm's settings may depend on earlier results (a target measured on GRPO).
        pending = [a for a in study.arms(base_cfg, runs) if a.name not in runs and (keep is None or a.name in keep)]
    bar.close()
    verdicts = judge(study.claims, runs)
    png = plot_study(runs, out / f"{study.name}.png", study.title)
    record = {
        "study": study.name, "title": study.title, "finding": study.finding, "smoke": smoke, "seeds": seeds,
        "steps": steps, "config": config, "base_overrides": base,
        "arms": [{"name": a.name, "overrides": list(a.overrides), "prompt_pool": a.prompt_pool} for a in arm_list],
        "summary": summarise(runs), "verdicts": verdicts, "notes": study.notes, "figure": png.name,
        "wall_s": time.perf_counter() - t0, "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{study.name}.json").write_text(json.dumps(_jsonable(record), indent=1))
    return record


def record_markdown(record: dict[str, Any]) -> str:
    """Markdown of a study record: command, per-arm summaries (mean +- sd over seeds) and generated verdicts."""
    s = record["summary"]
    cols = ("entropy_change", "final_entropy", "final_reward", "final_eval_accuracy", "final_eval_pass", "mean_dh_pos",
            "mean_dh_neg", "mean_cov_dh_pos", "mean_cov_dh_neg")
    lines = [f"**{record['title']}** ({record['seeds']} seeds x {record['steps']} steps, "
             f"{record['wall_s']:.0f} s wall)", "",
             "| arm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for arm in s:
        cells = []
        for c in cols:
            m, sd = s[arm][c]["mean"], s[arm][c]["sd"]
            cells.append("–" if m is None or not math.isfinite(m) else
                         _fmt(m) + ("" if sd is None or not math.isfinite(sd) else f" ± {_fmt(sd).lstrip('+')}"))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", *[f"- **{v['verdict']}**: {v['text']}" for v in record["verdicts"]]]
    return "\n".join(lines) + "\n"
