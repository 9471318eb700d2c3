"""The built wheel works outside the repository: a fresh virtual environment, an empty folder, the `aent` command.

Builds the wheel from a copy of the working tree, installs it with the CI pins (torch first, the CPU build, as
`make setup` does; pip's cache makes the second run quick) into a new venv outside the repository, then runs,
from an empty folder: `aent --help`, `aent train --config tiny max_steps=2` with a small warm start, `aent eval`
and `aent toy figure1 --smoke`. Nothing may resolve into the checkout: no configs/, no ../shared/data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "requirements" / "ci.txt"
SKIP = shutil.ignore_patterns(".git", ".venv", "runs", "site", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".hypothesis", ".ruff_cache", "results", "*.ipynb")
TINY = ["model.hidden=32", "model.layers=1", "model.heads=2", "model.kv_heads=2", "model.intermediate=64",
        "model.vocab_size=300", "model.warm_start_steps=5", "data.n_train=64", "data.n_test=8",
        "rollout.prompts_per_step=2", "rollout.group_size=4", "rollout.max_new_tokens=8",
        "optim.mini_batch_size=8", "optim.micro_batch_size=8", "eval_every=0", "progress=false"]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def env_bin(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(bin folder of a fresh venv holding the wheel, a clean environment, an empty working folder)."""
    if shutil.which("git") is None and not (REPO / ".git").exists():  # pragma: no cover
        pytest.skip("needs the source tree")
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AENT_", "PYTEST"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", AENT_CACHE=str(root / "cache"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    shutil.copytree(REPO, root / "src", ignore=SKIP)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"),
          str(root / "src")], root, env)
    (wheel,) = (root / "dist").glob("aent-*.whl")
    _run([sys.executable, "-m", "venv", str(root / "venv")], root, env)
    py = root / "venv" / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--no-compile", "-c", str(PINS)]
    _run([*pip, "torch"], root, env)  # first, as `make setup` does: the pinned CPU build
    _run([*pip, f"{wheel}[toy,llm]"], root, env)
    work = root / "empty"
    work.mkdir()
    env["PATH"] = f"{root / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return root / "venv" / "bin", env, work


def test_installed_packages_come_from_the_venv(env_bin):
    bin_dir, env, work = env_bin
    code = ("import json, aent, aent_cli, aent_configs, llm, toy, reproduce; "
            "print(json.dumps([m.__file__ for m in (aent, aent_cli, aent_configs, llm, toy, reproduce)]))")
    files = json.loads(_run([str(bin_dir / "python"), "-c", code], work, env).stdout)
    site = (bin_dir.parent / "lib").resolve()
    assert all(Path(f).resolve().is_relative_to(site) for f in files), files
    out = _run([str(bin_dir / "aent"), "--help"], work, env).stdout
    assert "train" in out and "reproduce" in out and "toy" in out
    assert _run([str(bin_dir / "aent"), "--version"], work, env).stdout.strip() == "aent 0.1.0"
    listed = _run([str(bin_dir / "aent"), "config", "--list"], work, env).stdout
    assert "tiny " in listed and "reproduce/smoke " in listed and str(site) in listed
    assert _run([str(bin_dir / "aent"), "reproduce", "--help"], work, env).stdout.startswith("usage:")


def test_train_then_eval_outside_the_repo(env_bin):
    bin_dir, env, work = env_bin
    aent = str(bin_dir / "aent")
    _run([aent, "train", "--config", "tiny", "max_steps=2", *TINY, "output_dir=run"], work, env)
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    header = (work / "run" / "config.yaml").read_text().splitlines()[1]
    environment = json.loads(header.removeprefix("# environment: "))
    assert environment["aent"] == "0.1.0" and environment["torch"].startswith("2.13.0")
    assert "math-verify symbolic" in environment["grader"]  # math-verify arrives with the llm extra
    out = _run([aent, "eval", "--model", "run/final", "--task", "arithmetic", "--n", "4", "--samples", "1",
                "--max-new-tokens", "8"], work, env).stdout
    assert json.loads(out)["n_problems"] == 4
    missing = subprocess.run([aent, "eval", "--model", "run/final", "--task", "math500"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "AENT_SHARED_DATA" in missing.stderr and "hf:" in missing.stderr


def test_toy_figure1_smoke_outside_the_repo(env_bin):
    bin_dir, env, work = env_bin
    _run([str(bin_dir / "aent"), "toy", "figure1", "--smoke"], work, env)
    result = json.loads((work / "runs" / "toy" / "figure1" / "figure1.json").read_text())
    assert result and (work / "runs" / "toy" / "figure1" / "figure1.png").read_bytes()[:4] == b"\x89PNG"
