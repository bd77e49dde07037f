"""The docs agree with the code: their generated parts (tests/docs_blocks.py, tests/docs_commands.py) are what the code
renders now, every environment variable the code reads is in the generated table, every `bot/` path they name
exists, and the README's two commands are the ones CI and the demo run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.config import VARIABLES
from tests import docs_blocks

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m bot demo"
REGENERATE = "run .venv/bin/python -m tests.docs_blocks"


# --- generated parts equal to the code ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    return docs_blocks.rendered_files()


def test_every_generated_block_is_what_the_code_renders(rendered: dict[Path, str]):
    stale = [path.relative_to(ROOT).as_posix() for path, text in rendered.items() if path.read_text() != text]
    assert not stale, f"out of date: {stale}; {REGENERATE}"


def test_every_renderer_has_its_block_once_in_the_docs():
    found = [name for path in docs_blocks.FILES for name in docs_blocks.blocks_in(path.read_text())]
    assert sorted(found) == sorted(docs_blocks.RENDERERS), "each generated block appears once in README.md or docs/"


def test_the_readme_shows_an_alert_the_env_tables_buttons_and_common_commands():
    assert {"alert", "required-variables", "optional-variables", "buttons", "common-commands"} <= set(
        docs_blocks.blocks_in(README)
    )


def test_commands_md_is_what_the_command_table_renders():
    from tests.docs_commands import PATH, render

    assert PATH.read_text() == render(), "docs/commands.md is out of date: run .venv/bin/python -m tests.docs_commands"


# --- every environment variable the code reads is in the generated table --------------------------------------------


def taken_variables() -> list[str]:
    """The names bot/config.py reads: the first argument of each `take("NAME", …)`."""
    tree = ast.parse((ROOT / "bot" / "config.py").read_text())
    names = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "take"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    assert len(names) >= 19, names  # the parse found them (a refactor of config.py must keep this test working)
    return names


def test_the_variables_listed_are_the_variables_read():
    listed = [v.name for v in VARIABLES]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(taken_variables())


def test_only_config_reads_the_environment():
    readers = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if path.name != "config.py" and re.search(r"os\.environ|getenv\(", path.read_text())
    ]
    assert not readers, f"read the environment outside bot/config.py (add the variable to VARIABLES there): {readers}"


def test_every_variable_read_is_a_row_of_the_readme_tables():
    rows = set(re.findall(r"^\| `([A-Z_]+)` \|", README, re.MULTILINE))
    assert set(taken_variables()) <= rows


# --- paths and commands ---------------------------------------------------------------------------------------------

# `bot/…` as docs name it: a module, package or data file, optionally followed by `:name` or `.name` parts in prose
BOT_PATH = re.compile(r"\bbot/[A-Za-z0-9_./-]*[A-Za-z0-9_]")


def named_bot_paths() -> list[tuple[str, str]]:
    """(file, `bot/...` path) for every path README.md or a docs/*.md file names."""
    found = []
    for doc in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for path in sorted(set(BOT_PATH.findall(doc.read_text()))):
            found.append((doc.name, path))
    assert found, "no bot/ path found in docs/: the scan is broken"
    return found


@pytest.mark.parametrize(("doc", "path"), named_bot_paths())
def test_every_bot_path_named_in_docs_exists(doc, path):
    # A name like `bot/sandbox/admin-YYYY-MM.graphql` stands for a family of files: at least one must match.
    pattern = re.sub(r"YYYY|MM", "*", path)
    assert list(ROOT.glob(pattern)), f"{doc} names {path}, which does not exist"


def test_every_relative_link_in_the_docs_exists():
    for doc in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"


def code_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)\n```$", README, re.MULTILINE | re.DOTALL)


def test_the_first_command_runs_the_demo_and_the_second_is_what_ci_runs():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert code_blocks()[:2] == [DEMO_COMMAND, ci_command]


def test_the_procfile_runs_the_server():
    assert (ROOT / "Procfile").read_text() == "web: python -m bot serve\n"
