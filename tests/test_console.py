"""The `aent` console command and the packaged configs: names resolve from any folder, the dispatcher stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import aent_configs
from aent_cli import dispatch
from aent_cli.dispatch import COMMANDS, Command, main

REPO = Path(__file__).resolve().parents[1]
REPO_CONFIGS = sorted(p.relative_to(REPO / "configs").with_suffix("").as_posix()
                      for p in (REPO / "configs").rglob("*.yaml"))


def test_dispatcher_imports_no_half_and_aent_does_not_import_it():
    code = ("import json, sys; import aent_cli; import aent_configs; a = set(sys.modules); "
            "import aent; print(json.dumps([sorted(m for m in ('llm', 'toy', 'reproduce', 'torch', 'yaml') if m in a), "
            "'aent_cli' in set(sys.modules) - a]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/")
    assert json.loads(out.stdout) == [[], False]


def test_help_lists_every_command_and_version_matches_the_distribution(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in ("train", "eval", "study", "plot", "config", "fields", "toy", "reproduce"):
        assert f"\n  {name} " in text
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"aent {metadata.version('aent')}"
    assert main([]) == 2


def test_unknown_command_and_missing_extra_print_one_line(capsys, monkeypatch):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'train'?" in err and err.count("\n") == 1
    monkeypatch.setitem(COMMANDS, "ghost", Command("no_such_module_xyz", (), "llm", "x"))
    assert main(["ghost"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `aent ghost` needs the llm extra: pip install 'aent[llm]'") and err.count("\n") == 1


def test_packaged_configs_are_the_repository_configs():
    assert aent_configs.names() == REPO_CONFIGS
    assert "tiny" in REPO_CONFIGS and "reproduce/smoke" in REPO_CONFIGS
    for name in REPO_CONFIGS:
        assert aent_configs.path(name).read_bytes() == (REPO / "configs" / f"{name}.yaml").read_bytes()
    assert aent_configs.names("reproduce") == [n for n in REPO_CONFIGS if n.startswith("reproduce/")]


def test_config_list_and_names_work_from_any_folder(tmp_path, monkeypatch, capsys):
    from llm.config import load_config

    monkeypatch.chdir(tmp_path)  # no configs/ here: names and repository-style paths go to the packaged files
    assert main(["config", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == REPO_CONFIGS
    assert main(["config", "--config", "tiny", "max_steps=3"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    expected = load_config(REPO / "configs" / "tiny.yaml", ["max_steps=3"]).to_dict()
    assert shown == yaml.safe_load(yaml.safe_dump(expected))
    for spec in ("tiny", "tiny.yaml", "configs/tiny.yaml"):
        assert aent_configs.resolve(spec).read_bytes() == (REPO / "configs" / "tiny.yaml").read_bytes()
    mine = tmp_path / "tiny.yaml"  # a file of the same name in the working folder wins over the packaged one
    mine.write_text("max_steps: 9\n")
    assert aent_configs.resolve("tiny.yaml") == Path("tiny.yaml") and load_config("tiny.yaml").max_steps == 9
    assert load_config("tiny").max_steps == load_config(REPO / "configs" / "tiny.yaml").max_steps


def test_bad_config_name_suggests_and_lists(capsys):
    assert main(["config", "--config", "tiyn"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'tiny'?" in err and "aent config --list" in err and err.count("\n") == 1
    with pytest.raises(FileNotFoundError, match="not found"):
        aent_configs.resolve("nope.yaml")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        aent_configs.resolve(REPO / "configs")


def test_reproduce_defaults_come_from_the_packaged_configs(tmp_path, monkeypatch):
    from reproduce.config import load_config, resolve

    monkeypatch.chdir(tmp_path)
    assert Path(load_config().source) == aent_configs.path("reproduce/default")
    assert Path(load_config("smoke").source) == aent_configs.path("reproduce/smoke")
    cfg = load_config("reproduce/smoke")
    assert resolve(cfg.llm.config).read_bytes() == (REPO / "configs" / "tiny.yaml").read_bytes()
    assert resolve(cfg.llm.config).is_absolute()  # handed to the stage subprocesses as is


def test_toy_gets_a_default_output_folder():
    assert dispatch._toy_args(["figure1", "--smoke"]) == ["figure1", "--smoke", "--out", "runs/toy/figure1"]
    assert dispatch._toy_args(["figure1", "--out", "x"]) == ["figure1", "--out", "x"]
    assert dispatch._toy_args(["figure1", "--out=x"]) == ["figure1", "--out=x"]
    assert dispatch._toy_args(["--help"]) == ["--help"]
    assert dispatch._toy_args(["bias", "-h"]) == ["bias", "-h"]


@pytest.mark.parametrize("args, module_prefix", [(["train", "--help"], "llm"), (["toy", "--help"], "toy"),
                                                 (["reproduce", "--help"], "reproduce"),
                                                 (["study", "--help"], "llm")])
def test_each_command_reaches_its_module(args, module_prefix, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 0
    assert f"python -m {module_prefix}" in capsys.readouterr().out
