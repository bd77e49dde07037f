"""README.md names everything a user of the code meets: each `/orders` subcommand (in its usage form), each Slack
action and modal id the server listens for, each environment variable, Shopify access scope, stuck reason and command
line command; its two commands are the ones CI and the demo run; the Procfile runs the server."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import bot.slack
from bot.domain.commands import ACTION_COMMANDS, INFO_COMMANDS, USAGE
from bot.domain.rules import REASONS
from bot.shopify.operations import REQUIRED_SCOPES
from bot.slack.blocks import ACTION_IDS

ROOT = Path(__file__).parent.parent
# A `|` inside a Markdown table cell is written `\|`; read the README as it renders.
README = (ROOT / "README.md").read_text().replace("\\|", "|")
DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m bot demo"


def environment_variables() -> list[str]:
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


def _resolve(module: ModuleType, node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        value = getattr(getattr(module, node.value.id, None), node.attr, None)
    else:
        return None
    return value if isinstance(value, str) else None


def slack_listener_ids() -> dict[str, set[str]]:
    """The action and view (modal) ids registered with Bolt anywhere in bot/slack: `app.action(ID)`, `app.view(ID)`.
    Registrations by pattern (the alert's buttons) are not strings; ACTION_IDS covers those."""
    found: dict[str, set[str]] = {"action": set(), "view": set()}
    for info in pkgutil.iter_modules(bot.slack.__path__):
        module = importlib.import_module(f"bot.slack.{info.name}")
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in found
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and len(node.args) == 1
            ):
                value = _resolve(module, node.args[0])
                if value is not None:
                    found[node.func.attr].add(value)
    assert found["view"], "no app.view(...) registration found: the scan is broken"
    return found


@pytest.mark.parametrize("name", environment_variables())
def test_every_environment_variable_is_documented(name):
    assert f"`{name}`" in README


@pytest.mark.parametrize("action_id", sorted(set(ACTION_IDS) | slack_listener_ids()["action"]))
def test_every_slack_action_id_is_documented(action_id):
    assert f"`{action_id}`" in README


@pytest.mark.parametrize("callback_id", sorted(slack_listener_ids()["view"]))
def test_every_modal_callback_id_is_documented(callback_id):
    assert f"`{callback_id}`" in README


@pytest.mark.parametrize("subcommand", sorted(set(ACTION_COMMANDS) | set(INFO_COMMANDS)))
def test_every_orders_subcommand_is_documented_in_its_usage_form(subcommand):
    assert subcommand in USAGE, f"{subcommand} has no usage line in bot/domain/commands.py"
    assert f"`/orders {USAGE[subcommand]}`" in README


@pytest.mark.parametrize("scope", REQUIRED_SCOPES)
def test_every_shopify_access_scope_is_documented(scope):
    assert f"`{scope}`" in README


@pytest.mark.parametrize("reason", REASONS)
def test_every_stuck_reason_is_in_the_reasons_table(reason):
    assert re.search(rf"^\| `{reason}` \|", README, re.MULTILINE)


def test_every_command_line_command_is_documented():
    usage = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    commands = re.search(r"\{([a-z,-]+)\}", usage).group(1).split(",")
    assert {"serve", "check", "setup-webhooks", "demo"} <= set(commands)
    for command in commands:
        assert f"`python -m bot {command}" in README, command


def code_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)\n```$", README, re.MULTILINE | re.DOTALL)


def test_the_first_command_runs_the_demo_and_the_second_is_what_ci_runs():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert code_blocks()[:2] == [DEMO_COMMAND, ci_command]


def test_the_procfile_runs_the_server():
    assert (ROOT / "Procfile").read_text() == "web: python -m bot serve\n"
    assert "web: python -m bot serve" in README


# --- docs/: generated parts equal to the code, and every path they name exists -----------------------------------

DOCS = ROOT / "docs"
# `bot/…` as docs name it: a module, package or data file, optionally followed by `:name` or `.name` parts in prose
BOT_PATH = re.compile(r"\bbot/[A-Za-z0-9_./-]*[A-Za-z0-9_]")


def test_commands_md_is_what_the_command_table_renders():
    from tests.docs_commands import PATH, render

    assert PATH.read_text() == render(), "docs/commands.md is out of date: run .venv/bin/python -m tests.docs_commands"


def named_bot_paths() -> list[tuple[str, str]]:
    """(docs file, `bot/...` path) for every path a docs/*.md file names."""
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        for path in sorted(set(BOT_PATH.findall(doc.read_text()))):
            found.append((doc.name, path))
    assert found, "no bot/ path found in docs/: the scan is broken"
    return found


@pytest.mark.parametrize(("doc", "path"), named_bot_paths())
def test_every_bot_path_named_in_docs_exists(doc, path):
    # A name like `bot/sandbox/admin-YYYY-MM.graphql` stands for a family of files: at least one must match.
    pattern = re.sub(r"YYYY|MM", "*", path)
    assert list(ROOT.glob(pattern)), f"{doc} names {path}, which does not exist"
