"""The layers of docs/architecture.md hold: each module of bot/ imports only from the layers its own may use, and
every exception is one listed in docs/architecture.md ("Where imports cross the layers today") and still exists.

Imports are read from the source (ast), at module level and inside functions; an import under `if TYPE_CHECKING:`
is only a type name and is not counted. bot/sandbox/ and bot/demo/ are the stand-ins and the demo: they may use
anything, and nothing of the product may import them at module level.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

SLACK_VIEWS = ("bot.slack.blocks", "bot.slack.alert_blocks", "bot.slack.modal_blocks", "bot.slack.command_blocks",
               "bot.slack.bulk_blocks", "bot.slack.digest_blocks", "bot.slack.digest_chart", "bot.slack.forms",
               "bot.slack.metadata", "bot.slack.home_blocks", "bot.slack.burst_blocks")  # fmt: skip
SLACK_OUTBOUND = ("bot.slack.outbox", "bot.slack.pacing", "bot.slack.history", "bot.slack.permissions",
                  "bot.slack.uploads", "bot.slack.proxies")  # fmt: skip
SHOPIFY_OUTBOUND = ("bot.shopify.client", "bot.shopify.operations", "bot.shopify.version")
UTILITIES = ("bot.wakeups", "bot.request_body", "bot.config")

# Each layer: the modules in it (prefixes of dotted names) and what they may import besides their own layer.
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "domain": (("bot.domain",), ()),
    "store": (("bot.store",), ("bot.domain",)),
    "mail": (("bot.mail",), ("bot.domain",)),
    "slack views": (SLACK_VIEWS, ("bot.domain",)),
    "shopify outbound": (SHOPIFY_OUTBOUND, ("bot.domain",)),
    "slack outbound": (SLACK_OUTBOUND, ("bot.domain", "bot.store", *SLACK_VIEWS, *UTILITIES)),
    "flows": (("bot.flows",), ("bot.domain", "bot.store", "bot.mail", *SHOPIFY_OUTBOUND, *SLACK_OUTBOUND, *UTILITIES)),
    "shopify inbound": (("bot.shopify.webhooks",), ("bot.domain", "bot.store", *UTILITIES)),
    "slack inbound": (
        (
            "bot.slack.app",
            "bot.slack.side",
            "bot.slack.listeners",
            "bot.slack.commands_listener",
            "bot.slack.command_answers",
            "bot.slack.bulk_listeners",
            "bot.slack.home",
        ),
        ("bot.domain", "bot.flows", "bot.mail", "bot.store", *SLACK_VIEWS, *SLACK_OUTBOUND, *UTILITIES),
    ),
}
PACKAGES = ("bot", "bot.shopify", "bot.slack")  # their __init__ holds a docstring only
# The entry modules wire everything; the utilities below them are plain helpers any layer may use.
ENTRY = ("bot.cli", "bot.web", "bot.setup_webhooks", "bot.progress", "bot.__main__", *UTILITIES)
STAND_INS = ("bot.sandbox", "bot.demo")

# Imports that cross the layers today, each listed in docs/architecture.md: (module, what it imports).
CROSSINGS: set[tuple[str, str]] = set()


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(dotted name, at module level) for every `bot` import in the file, `from bot.x import y` giving `bot.x.y`
    when that is a module and `bot.x` otherwise; none under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, top) for alias in node.names if alias.name.split(".")[0] == "bot")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bot":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                as_module = BOT.parent / Path(*child.split("."))
                is_module = as_module.with_suffix(".py").exists() or (as_module / "__init__.py").exists()
                found.append((child if is_module else node.module, top))
        inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for statement in tree.body:
        visit(statement, True)
    return found


def _layer_of(name: str) -> str | None:
    for layer, (members, _) in LAYERS.items():
        if _under(name, members):
            return layer
    return None


PRODUCT = sorted(p for p in BOT.rglob("*.py") if not _under(_module_name(p), STAND_INS))


def _crossings() -> set[tuple[str, str]]:
    """Every import of a product module that its layer does not allow."""
    crossed = set()
    for path in PRODUCT:
        module = _module_name(path)
        layer = _layer_of(module)
        for imported, top in _imports(path):
            if _under(imported, STAND_INS):
                if top or not _under(module, ("bot.cli",)):
                    crossed.add((module, imported))
                continue
            if layer is None:  # the entry modules wire everything
                assert module in ENTRY or module in PACKAGES, f"{module} is in no layer of tests/test_layers.py"
                continue
            members, allowed = LAYERS[layer]
            if not _under(imported, members + allowed):
                crossed.add((module, imported))
    return crossed


def test_the_layer_map_covers_every_module_of_the_product():
    unplaced = {_module_name(p) for p in PRODUCT if _layer_of(_module_name(p)) is None}
    assert unplaced == {*ENTRY, *PACKAGES}, "a module of bot/ is in no layer: add it to LAYERS"


def test_no_import_crosses_the_layers_except_those_listed():
    assert _crossings() - CROSSINGS == set(), "a new import crosses the layers: move it, or list it and say why"


def test_every_listed_crossing_still_exists():
    assert CROSSINGS - _crossings() == set(), "a crossing was removed: take it off CROSSINGS and docs/architecture.md"


def test_docs_list_each_crossing():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = re.search(r"### Where imports cross the layers today\n(.*?)\n## ", text, re.S)
    assert section, "docs/architecture.md has no section 'Where imports cross the layers today'"
    as_path = lambda name: "`" + name.replace(".", "/") + ".py`"  # noqa: E731
    for module, imported in CROSSINGS:
        assert as_path(module) in section.group(1) and as_path(imported) in section.group(1), (module, imported)
    if not CROSSINGS:
        assert section.group(1).count("\n- ") == 0, "the docs list a crossing the test does not know"


def test_the_product_cli_loads_the_sandbox_only_when_asked():
    """`python -m bot serve` and `scan` without --sandbox never import the stand-ins (their imports are inside the
    demo and --sandbox paths)."""
    tops = [name for name, top in _imports(BOT / "cli.py") if top]
    assert not [name for name in tops if _under(name, STAND_INS)]


def test_no_two_test_files_share_a_name():
    """The test folders are not packages: pytest imports each test file by its base name, so a second file of the
    same name fails the whole run at collection (alone, each passes)."""
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
