"""Trainer hooks (llm.hooks): called at their documented points, in order, with the run's objects; what they add
reaches metrics.jsonl; a hook that only observes leaves the metrics exactly as without it; and no module of llm/
or reproduce/ replaces another module's function at run time (issue 17)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from llm.hooks import HOOK_POINTS, Hooks, Run, StepState
from llm.train import step_prompts, train
from tests.llm.test_train import rows, tiny

REPO = Path(__file__).resolve().parents[2]


class Recorder(Hooks):
    """Records every call; adds one metric after the update and one to each evaluation."""

    def __init__(self, pin_prompt: int | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.pin_prompt = pin_prompt
        self.prompts: list[list[int]] = []

    def _seen(self, name: str, run: Run, st: StepState) -> None:
        assert isinstance(run, Run) and run.model is not None and run.optimizer is not None and run.log is not None
        self.calls.append((name, st.step))

    def before_rollout(self, run, st):
        self._seen("before_rollout", run, st)
        assert st.batch is None and len(st.prompts) == run.cfg.rollout.prompts_per_step
        if self.pin_prompt is not None:
            st.prompts = [self.pin_prompt] * len(st.prompts)
        self.prompts.append(list(st.prompts))

    def after_rollout(self, run, st):
        self._seen("after_rollout", run, st)
        n = run.cfg.rollout.prompts_per_step * run.cfg.rollout.group_size
        assert st.batch["completion_ids"].shape[0] == n and st.adv.shape == (n,)

    def before_update(self, run, st):
        self._seen("before_update", run, st)
        assert st.stats == {}

    def after_update(self, run, st):
        self._seen("after_update", run, st)
        assert "entropy" in st.stats
        st.stats["hook_metric"] = float(st.step) * 10

    def on_evaluation(self, run, st):
        self._seen("on_evaluation", run, st)
        assert "eval_accuracy" in st.eval
        st.eval["hook_eval"] = float(st.step)

    def on_checkpoint(self, run, st):
        self._seen("on_checkpoint", run, st)
        assert (st.checkpoint / "trainer_state.pt").is_file()


def test_hooks_run_in_order_and_their_metrics_land_in_the_rows(tmp_path):
    rec = Recorder()
    cfg = tiny(tmp_path, "max_steps=2", "eval_every=2", "save_every=1")
    train(cfg, hooks=[rec])
    step = ["before_rollout", "after_rollout", "before_update", "after_update"]
    assert rec.calls == [("on_evaluation", 0),
                         *[(n, 1) for n in step], ("on_checkpoint", 1),
                         *[(n, 2) for n in step], ("on_evaluation", 2), ("on_checkpoint", 2)]
    got = rows(cfg.output_dir)
    assert [r["hook_metric"] for r in got] == [10.0, 20.0]
    assert "hook_eval" not in got[0] and got[1]["hook_eval"] == 2.0
    assert json.loads((Path(cfg.output_dir) / "initial_eval.json").read_text())["hook_eval"] == 0.0
    # The trainer's own prompt order, unchanged by a hook that does not replace it.
    assert rec.prompts == [step_prompts(cfg.seed, s, cfg.data.n_train, cfg.rollout.prompts_per_step) for s in (1, 2)]


def test_an_observing_hook_changes_no_metric_and_before_rollout_can_pick_the_prompts(tmp_path):
    plain = tiny(tmp_path / "a", "max_steps=2")
    train(plain)
    observed = tiny(tmp_path / "b", "max_steps=2")
    train(observed, hooks=[Hooks(), Hooks()])
    a, b = rows(plain.output_dir), rows(observed.output_dir)
    for ra, rb in zip(a, b, strict=True):
        assert {k: v for k, v in ra.items() if not k.startswith("time_")} == \
               {k: v for k, v in rb.items() if not k.startswith("time_")}
    pinned = Recorder(pin_prompt=3)
    train(tiny(tmp_path / "c", "max_steps=1"), hooks=[pinned])
    assert pinned.prompts == [[3, 3]]


def test_bad_hooks_get_one_clear_error(tmp_path):
    with pytest.raises(TypeError, match="has none of the hook methods"):
        train(tiny(tmp_path), hooks=[object()])
    assert set(HOOK_POINTS) == {n for n in vars(Hooks) if not n.startswith("_")}


def test_study_hooks_prompt_pool_maps_every_step_onto_the_first_k_problems():
    from llm.config import load_config
    from llm.studies.hooks import StudyHooks

    run = Run(cfg=load_config(None, ["seed=4"]), accelerator=None, model=None, train_set=list(range(1000)))
    for step in (1, 5, 40):
        st = StepState(step=step, prompts=step_prompts(4, step, 1000, 8))
        StudyHooks(prompt_pool=8).before_rollout(run, st)
        assert st.prompts == step_prompts(4, step, 8, 8) and max(st.prompts) < 8
        st2 = StepState(step=step, prompts=step_prompts(4, step, 1000, 8))
        StudyHooks().before_rollout(run, st2)  # no pool: the trainer's order stays
        assert st2.prompts == step_prompts(4, step, 1000, 8)


# --------------------------------------------------------------------------------- no run-time patching
def _module_aliases(tree: ast.Module) -> set[str]:
    """Names bound to modules by imports anywhere in the file (import x, import x.y as z, from pkg import mod)."""
    import importlib.util

    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                try:
                    if importlib.util.find_spec(f"{node.module}.{a.name}") is not None:
                        names.add(a.asname or a.name)
                except (ImportError, ValueError):
                    pass
    return names


def _patches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    mods = _module_aliases(tree)
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in targets:
            for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(el, ast.Attribute) and isinstance(el.value, ast.Name) and el.value.id in mods:
                    found.append(f"{where}:{node.lineno}: {el.value.id}.{el.attr} = ...")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in mods):
            found.append(f"{where}:{node.lineno}: setattr({node.args[0].id}, ...)")
    return found


def test_no_module_of_llm_or_reproduce_patches_another_modules_functions():
    found = [p for pkg in ("llm", "reproduce") for f in sorted((REPO / pkg).rglob("*.py")) for p in _patches(f)]
    assert found == []


def test_the_patch_finder_finds_the_old_study_wrapping(tmp_path):
    """The check above can fail: it flags the way llm/studies/common.py used to rewire the trainer."""
    f = tmp_path / "probe.py"
    f.write_text("import llm.evaluate as ev\nimport llm.train as tr\n\n"
                 "def wrap(a, b, c):\n    tr.ppo_update, ev.evaluate = a, b\n    setattr(tr, 'step_prompts', c)\n")
    assert len(_patches(f)) == 3


def test_the_documented_hook_example_runs(tmp_path):
    """docs/llm/trainer.md's hook example (its class, on the tiny test config): the metrics it adds are logged, and
    finite and in range."""
    text = (REPO / "docs" / "llm" / "trainer.md").read_text()
    block = text.split("## Hooks: your own code in every step", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "train(cfg, hooks=[LogpDrift()])" in block
    ns: dict = {}
    exec(block.split("\ncfg = ", 1)[0], ns)  # the imports and the class, not the 4-step run on the full model
    cfg = tiny(tmp_path, "max_steps=2")
    got = train(cfg, hooks=[ns["LogpDrift"]()])
    assert [r["step"] for r in rows(cfg.output_dir)] == [1, 2]
    for r in got:
        assert 0.0 <= r["logp_drift"] < 5.0 and 0.0 <= r["adv_pos_frac"] <= 1.0
