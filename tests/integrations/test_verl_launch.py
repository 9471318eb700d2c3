"""The verl launch commands of docs/integrations/verl.md parse the way verl's entry point parses them.

verl's ``python3 -m verl.trainer.main_ppo`` is a ``@hydra.main`` program: its command-line arguments are Hydra
overrides, read by Hydra's ``OverridesParser``. The reference here is that parser itself (hydra-core 1.3.8, pinned
in requirements/ci.txt), applied to the commands taken from the page (split as bash splits them), so the test
breaks when the page changes to something Hydra rejects. What the parsed values then mean to aent (the setup hook's
import path, the ``AENT_VERL_ENTROPY`` value) is resolved by aent's own code.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import aent
from aent.integrations import verl as av

REPO = Path(__file__).resolve().parents[2]
HYDRA = Path(os.environ.get("AENT_HYDRA_PATH", REPO / ".venv" / "hydra"))
"""Where ``make setup`` installs hydra-core 1.3.8 with its own antlr4 runtime 4.9.3 (``pip install --target``).

Not in the venv itself: hydra-core pins antlr4-python3-runtime 4.9.*, and math-verify's LaTeX parser
(latex2sympy2_extended) breaks under that runtime (``'AtomContext' object has no attribute 'FUNC_GAMMA'``: 50\\%
no longer equals 0.5). So Hydra runs in a child process with this folder first on its path."""
_PARSE = """
import json, sys
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
try:
    out = [{"key": o.key_or_group, "value": o.value(), "add": o.is_add(), "sweep": o.is_sweep_override(),
            "delete": o.is_delete(), "line": o.input_line} for o in OverridesParser.create().parse_overrides(sys.argv[1:])]
    print(json.dumps({"ok": out}))
except OverrideParseException as err:
    print(json.dumps({"error": str(err)}))
"""


def _hydra_parse(argv: list[str]) -> dict:
    if not (HYDRA / "hydra").is_dir():
        pytest.skip(f"hydra-core not installed at {HYDRA} (make setup puts it there)")
    env = {**os.environ, "PYTHONPATH": str(HYDRA)}
    done = subprocess.run([sys.executable, "-c", _PARSE, *argv], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "verl.md"
HOOK = "ray_kwargs.ray_init.runtime_env.worker_process_setup_hook"
ENV = f"ray_kwargs.ray_init.runtime_env.env_vars.{av.ENV_VAR}"


def _block(name: str) -> str:
    text = DOC.read_text()
    m = re.search(rf"<!-- {name}:start -->\n```bash\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert m, f"docs/integrations/verl.md lost its {name} block"
    return m.group(1)


def _command(block: str) -> list[str]:
    """The verl command of a bash block, with its line continuations joined, split as bash splits it."""
    start = block.index("python3 -m verl.trainer.main_ppo")
    line = block[start:].replace("\\\n", " ").splitlines()[0]
    argv = shlex.split(line)
    assert argv[:3] == ["python3", "-m", "verl.trainer.main_ppo"]
    return argv[3:]


def _parsed(name: str) -> dict:
    result = _hydra_parse(_command(_block(name)))
    assert "ok" in result, result.get("error")
    for o in result["ok"]:
        assert not o["sweep"] and not o["delete"], o["line"]
    return {o["key"]: o for o in result["ok"]}


@pytest.mark.parametrize("name", ["verl-launch", "verl-launch-file"])
def test_doc_command_parses_as_hydra_overrides(name):
    by_key = _parsed(name)
    hook = by_key[HOOK]
    assert hook["add"]  # verl's config has no such key: "+" adds it
    module, attr = hook["value"].rsplit(".", 1)
    assert getattr(importlib.import_module(module), attr) is av.setup_hook
    env = by_key[ENV]
    assert env["add"] and isinstance(env["value"], str)  # Ray wants string environment values
    assert by_key["actor_rollout_ref.model.use_fused_kernels"]["value"] is True  # aent's kernel replaces verl's
    assert by_key["actor_rollout_ref.actor.calculate_entropy"]["value"] is True
    assert by_key["actor_rollout_ref.actor.entropy_coeff"]["value"] > 0


def test_preset_value_names_the_paper_setting():
    assert av.config_from_env(_parsed("verl-launch")[ENV]["value"]) == aent.EntropyConfig.aent_paper()


def test_file_value_and_the_file_the_page_writes(tmp_path):
    block = _block("verl-launch-file")
    heredoc = re.search(r"cat > (\S+) <<'EOF'\n(.*?)\nEOF\n", block, re.S)
    path, content = heredoc.group(1), heredoc.group(2)
    assert _parsed("verl-launch-file")[ENV]["value"] == path
    local = tmp_path / "aent_entropy.json"
    local.write_text(content)
    cfg = av.config_from_env(str(local))
    assert cfg == aent.EntropyConfig.from_dict(json.loads(content)) and cfg.method == "aent"


def test_the_old_json_value_is_what_hydra_rejects():
    """The form the page used to show: Hydra reads {...} as a dictionary and stops at the quoted key."""
    old = shlex.split(f"""+{ENV}='{{"preset": "aent"}}'""")
    assert "no viable alternative" in _hydra_parse(old).get("error", "")


def _verl_config_dir():
    try:
        import verl
        from verl.trainer.constants_ppo import get_ppo_ray_runtime_env  # noqa: F401
    except Exception:
        return None
    return str(Path(verl.__file__).parent / "trainer" / "config")


@pytest.mark.skipif(_verl_config_dir() is None, reason="verl 0.9.x not importable (see docs/integrations/verl.md)")
@pytest.mark.parametrize("name", ["verl-launch", "verl-launch-file"])
def test_doc_command_composes_with_verls_own_config(name):
    """Hydra composes verl's ppo_trainer config with the page's overrides (every plain key exists there, every "+"
    key is new), and main_ppo's merge gives Ray the hook and the variable."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    overrides = _command(_block(name))
    with initialize_config_dir(config_dir=_verl_config_dir(), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)
    runtime_env = OmegaConf.to_container(OmegaConf.merge(get_ppo_ray_runtime_env(cfg),
                                                         cfg.ray_kwargs.ray_init.runtime_env))
    assert runtime_env["worker_process_setup_hook"] == "aent.integrations.verl.setup_hook"
    assert runtime_env["env_vars"][av.ENV_VAR] == _parsed(name)[ENV]["value"]
    assert cfg.actor_rollout_ref.actor.use_fused_kernels is True and cfg.actor_rollout_ref.actor.calculate_entropy
