"""The README names only flags that exist, and every flag of every command says what it does in --help."""
import re

import typer
from typer.core import TyperOption

from selfy_lab.cli import app

from helpers import ROOT


def _commands():
    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items()}


def test_every_flag_the_readme_names_exists():
    text = (ROOT / "README.md").read_text()
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    known = {opt for cmd in _commands().values() for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    known |= {"--nproc-per-node", "--help"}  # torchrun's; every command's
    assert named and named <= known, sorted(named - known)


def test_every_command_documents_each_of_its_flags():
    checked = 0
    for name, cmd in _commands().items():
        assert cmd.help, name
        for p in cmd.params:
            if isinstance(p, TyperOption) and p.name != "help":
                assert (p.help or "").strip(), f"{name} {p.opts[0]} has no help"
                checked += 1
    assert checked > 100  # every command's options were seen


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300
    text = "\n".join(lines)
    for must in ("make demo", "make test", "## Your own data", "## Your own motion module", "## On GPUs",
                 "## Where results go", "results/README.md", "@InProceedings", "## License"):
        assert must in text, must
