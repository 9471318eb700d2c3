"""The documentation site builds with ``mkdocs build --strict`` (a broken link or a missing page fails).

Also checks, without mkdocs, that every relative Markdown link in docs/ points at a file that exists (so a
broken link is reported by name even where mkdocs is not installed), that the proposed nav names existing
pages, that the tests cited on the Concepts page exist, that every API block names an importable object, and that
every quoted fact about the CPU default matches configs/tiny.yaml, the example report and the built model.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
_LINK = re.compile(r"\]\(([^)\s]+?)(?:\s+\"[^\"]*\")?\)")


def _mkdocs() -> list[str] | None:
    """Command that runs mkdocs with this interpreter's packages, or None when it is not installed."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "mkdocs"]


def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict -f mkdocs.yml` from the repo root succeeds; on failure the output is shown."""
    cmd = _mkdocs()
    if cmd is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    if not (REPO / "mkdocs.yml").is_file():
        pytest.fail("mkdocs.yml is missing from the repo root")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # silence Material's end-of-life banner
    proc = subprocess.run(
        [*cmd, "build", "--strict", "-f", "mkdocs.yml", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


def _relative_links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are not links
    out = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # absolute URL (http:, mailto:) or an anchor on the same page
        out.append(target.split("#", 1)[0])
    return out


def test_relative_links_resolve():
    """Every relative link in docs/**/*.md names an existing file (checked without mkdocs)."""
    if not DOCS.is_dir():
        pytest.fail("docs/ is missing")
    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        for target in _relative_links(page):
            if target and not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_concepts_page_names_real_tests():
    """Every `file.py::test_name` cited on docs/concepts.md is a test function that exists under tests/."""
    page = DOCS / "concepts.md"
    if not page.is_file():
        pytest.skip("docs/concepts.md not present")
    cited = set(re.findall(r"`([\w/]+\.py)::(\w+)`", page.read_text(encoding="utf-8")))
    assert cited, "docs/concepts.md cites no tests"
    missing = []
    for path, name in sorted(cited):
        source = REPO / "tests" / path
        if not source.is_file() or not re.search(
            rf"^\s*def {name}\(", source.read_text(encoding="utf-8"), re.M
        ):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/concepts.md cites tests that do not exist: {missing}"


def _resolve(path: str) -> None:
    """Import the object named by a dotted path (a module, or an attribute of one); raise if it is missing."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as err:
            if err.name and not path.startswith(err.name):
                raise  # a dependency of the module is missing, not the module itself
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return
    raise ModuleNotFoundError(path)


def test_api_objects_import():
    """Every `::: dotted.path` in docs/ names an object that imports.

    mkdocstrings reads the source statically: a module that fails to import would still get a page.
    """
    names = sorted(
        {
            m
            for page in DOCS.rglob("*.md")
            for m in re.findall(r"^:::\s+([\w.]+)", page.read_text(encoding="utf-8"), flags=re.M)
        }
    )
    if not names:
        pytest.skip("no API blocks in docs/")
    broken = []
    for name in names:
        try:
            _resolve(name)
        except Exception as err:  # noqa: BLE001  (report every failure, whatever its type)
            broken.append(f"{name}: {type(err).__name__}: {err}")
    assert not broken, "API pages name objects that do not import:\n" + "\n".join(broken)


# ------------------------------------------------------------------ facts about the CPU default, from one source
# Every number the docs quote about the CPU default comes from one of three places: the config itself
# (configs/tiny.yaml), the committed example report of the main job (docs/report_example/llm/summary.json, three
# seeds of the default), or a measurement of the built model (tokenizer and parameter count, built here with no
# warm start). FACT_PHRASES lists the phrases that quote them, page by page, written with the fact's name; the
# test formats each phrase from the sources and requires it on the page, so a stale number (or a rephrased
# sentence that no longer says it) fails with the page and the expected phrase. STALE_PATTERNS catches the same
# kinds of facts quoted anywhere else on those pages.

FACT_PAGES = ["README.md", "docs/faq.md", "docs/studies.md", "docs/index.md", "docs/reproduce.md",
              *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs" / "llm").glob("*.md")),
              *sorted(str(p.relative_to(REPO)) for p in (REPO / "tutorials").glob("0[1-9]_*.py"))]

FACT_PHRASES = {
    "README.md": [
        "held-out greedy accuracy {acc_start:.2f} to {acc_end:.2f} in {max_steps} steps",
        "entropy collapses ({ent_start:.2f} to {ent_end:.2f} nats)",
        "AEnt at its calibrated constants ends at {aent_ent_end:.2f} nats and held-out greedy accuracy "
        "{aent_acc_end:.2f}",
    ],
    "docs/faq.md": [
        "(`model.warm_start_steps`, {warm_start_steps} in `configs/tiny.yaml`",
        "about {log_vocab:.1f} nats for the {vocab:,}-token vocabulary",
    ],
    "docs/llm/trainer.md": [
        "A {params_m:.1f} M-parameter Qwen2-style decoder (hidden {hidden}, {layers} layers, {heads} heads",
        "padded to a {vocab:,}-token vocabulary",
        "The warm start ({warm_start_steps} supervised steps, batch {warm_start_batch}, lr $3\\cdot10^{{-3}}$",
        "{worked_pct}% of the {n_train:,} training problems keep their worked solution, {bare_pct}% are reduced",
        "`data.answer_only_frac: {answer_only_frac}`, `data.answer_only_wrong: {answer_only_wrong}`",
        "the starting entropy is about {ent_start:.2f} nats per response token",
        "GRPO ({max_steps} steps of {prompts} prompts x {group} samples, at most {max_new_tokens} new tokens, "
        "temperature {temperature:g}, lr $10^{{-4}}$, {updates_word} AdamW updates per step",
    ],
    "docs/llm/model.md": [
        "BPE stops at **{bpe_tokens} tokens** on {n_train:,} arithmetic problems (difficulty {difficulty})",
        "barely above the {bpe_tokens} task tokens",
        "**Recommended default: `vocab_size = {vocab}`**",
        "uses the 4-layer shape, {params_m:.1f} M parameters, and {warm_start_steps} warm-start steps",
    ],
    "docs/studies.md": [
        "the project's {params_m:.1f} M-parameter Qwen2-style model",
        "GRPO with {prompts} prompts x {group} samples x {max_new_tokens} tokens per step",
        "The tiny model has a {vocab:,}-token vocabulary (about {reserved_approx:,} of them reserved",
        "(thousands of tokens per response, versus {max_new_tokens} here)",
        "most 8 updates on {global_batch} sequences",
    ],
    "docs/reproduce.md": [
        "held-out greedy accuracy {acc_start:.3f} → {acc_end:.3f}",
        "token entropy {ent_start:.3f} → {ent_end:.3f} nats",
    ],
}

# (regex over a page, fact it must equal, how to read the captured text)
STALE_PATTERNS = [
    (r"(\d[\d,]*)-token vocabulary", "vocab", lambda s: int(s.replace(",", ""))),
    (r"(\d[\d.]*) ?M-parameter", "params_m", lambda s: round(float(s), 1)),
    (r"~(\d[\d.]*) ?M[- ]param", "params_m", lambda s: round(float(s), 1)),
    (r"warm_start_steps`?,? (\d+)", "warm_start_steps", int),
    (r"starting (?:token )?entropy (?:is )?about (\d\.\d+)", "ent_start", lambda s: round(float(s), 2)),
    (r"starts RL at about (\d\.\d+) nats", "ent_start", lambda s: round(float(s), 2)),
]


def _tiny_yaml() -> dict:
    import yaml

    return yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cpu_default_facts() -> dict:
    """The facts, computed from configs/tiny.yaml, the example report's summary, and the built model."""
    import json
    import math
    import tempfile

    pytest.importorskip("tokenizers")
    pytest.importorskip("transformers")
    from llm.config import load_config
    from llm.model import count_parameters
    from llm.policy import build_policy
    from llm.problems import load_problems
    from llm.tokenizer import bpe_size
    from llm.warmstart import WarmStartConfig

    raw = _tiny_yaml()
    cfg = load_config(REPO / "configs" / "tiny.yaml", ["model.warm_start_steps=0"])
    train_set, _ = load_problems(cfg)
    with tempfile.TemporaryDirectory() as cache:
        model, tokenizer = build_policy(cfg.model, cfg.data, train_set, cache_dir=cache)
    summary = json.loads((DOCS / "report_example" / "llm" / "summary.json").read_text(encoding="utf-8"))
    run = json.loads((DOCS / "report_example" / "run.json").read_text(encoding="utf-8"))
    assert run["llm"]["config"] == "configs/tiny.yaml" and not run["llm"]["overrides"], (
        "the example report no longer runs the plain CPU default; regenerate docs/report_example")
    grpo, aent = summary["methods"]["grpo"]["metrics"], summary["methods"]["aent"]["metrics"]
    updates = cfg.optim.ppo_epochs * (cfg.global_batch // cfg.mini_batch)
    assert len(tokenizer) == model.config.vocab_size == model.get_output_embeddings().weight.shape[0]
    vocab = len(tokenizer)
    return {
        # measured on the built model
        "vocab": vocab,
        "log_vocab": math.log(vocab),
        "bpe_tokens": bpe_size(tokenizer),
        "reserved_approx": round(vocab - bpe_size(tokenizer), -2),
        "params_m": round(count_parameters(model) / 1e6, 1),
        # the config (raw YAML where the resolved config would hide a smoke override)
        "hidden": cfg.model.hidden, "layers": cfg.model.layers, "heads": cfg.model.heads,
        "warm_start_steps": raw["model"]["warm_start_steps"],
        "warm_start_batch": WarmStartConfig().batch_size,
        "n_train": cfg.data.n_train, "difficulty": cfg.data.difficulty,
        "answer_only_frac": cfg.data.answer_only_frac, "answer_only_wrong": cfg.data.answer_only_wrong,
        "bare_pct": round(100 * cfg.data.answer_only_frac), "worked_pct": round(100 * (1 - cfg.data.answer_only_frac)),
        "max_steps": cfg.max_steps, "prompts": cfg.rollout.prompts_per_step, "group": cfg.rollout.group_size,
        "global_batch": cfg.global_batch, "max_new_tokens": cfg.rollout.max_new_tokens,
        "temperature": cfg.rollout.temperature,
        "updates_word": {1: "one", 2: "two", 3: "three", 4: "four"}.get(updates, str(updates)),
        # the example run of the main job (three seeds of the default)
        "ent_start": grpo["entropy"]["start_mean"], "ent_end": grpo["entropy"]["end_mean"],
        "acc_start": grpo["eval_accuracy"]["start_mean"], "acc_end": grpo["eval_accuracy"]["end_mean"],
        "aent_ent_end": aent["entropy"]["end_mean"], "aent_acc_end": aent["eval_accuracy"]["end_mean"],
        "_lr": cfg.optim.lr, "_warm_start_lr": cfg.model.warm_start_lr,
    }


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_config_facts_the_phrases_spell_out():
    """The phrases write lr 1e-4 and 3e-3 in LaTeX; they must still be the config's values."""
    raw = _tiny_yaml()
    assert float(raw["optim"]["lr"]) == 1e-4 and float(raw["model"]["warm_start_lr"]) == 3e-3, (
        "configs/tiny.yaml changed its learning rates: update the lr phrases of FACT_PHRASES and the pages")


def test_cpu_default_facts_are_current(cpu_default_facts):
    """Every quoted fact about the CPU default matches the config, the example report and the built model."""
    missing = []
    for page, phrases in FACT_PHRASES.items():
        text = _flat((REPO / page).read_text(encoding="utf-8"))
        for phrase in phrases:
            expected = _flat(phrase.format(**cpu_default_facts))
            if expected not in text:
                missing.append(f"{page}: expected the phrase {expected!r}")
    assert not missing, "stale or missing facts about the CPU default:\n" + "\n".join(missing)


def test_no_stale_cpu_default_facts_elsewhere(cpu_default_facts):
    """The same kinds of facts quoted anywhere on the pages (vocabulary, parameters, warm start, entropy) agree."""
    stale = []
    for page in FACT_PAGES:
        text = _flat((REPO / page).read_text(encoding="utf-8"))
        for pattern, key, read in STALE_PATTERNS:
            for match in re.finditer(pattern, text):
                if read(match.group(1)) != round(cpu_default_facts[key], 2):
                    stale.append(f"{page}: {match.group(0)!r} (the CPU default has {key} = {cpu_default_facts[key]})")
    assert not stale, "stale facts about the CPU default:\n" + "\n".join(stale)
