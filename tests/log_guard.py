"""A guard over the whole test run: no customer's personal data and no secret may reach a log record.

From the session's start it reads every record orderbot's code emits (logger "bot" and its children, DEBUG and up)
and every record a library emits at the levels `python -m bot serve` logs it (bot/cli.py: LOG_LEVEL and
LIBRARY_LOG_LEVELS), formatted with its arguments and exception text. It looks in each for
- the seeded customers' emails and names (bot/sandbox/seed.py, the generated ones too), and the street addresses,
  phone numbers, emails and names in Shopify's example payloads (tests/data/webhooks);
- the tokens and secrets of the sandboxes (their defaults) and of the tests: a module-level string constant of a
  collected test module or conftest whose name ends in SECRET, TOKEN or PASSWORD; one ending in EMAIL, PHONE or
  ADDRESS is personal data a test made up, and is looked for too.
At the end it reports each leak (what, the value, the logger, the test) and makes the run fail.

For the records to exist at all, the root logger's level goes just under LOG_LEVEL and "bot"'s just under DEBUG. Odd
levels, so that one a test sets (caplog.set_level) is told apart from the guard's: pytest's own handlers (caplog, the
report sections) get a filter that passes a record only if it would have been emitted without the guard, so
caplog-based tests see exactly what they saw before.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import types
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import LIBRARY_LOG_LEVELS, LOG_LEVEL
from bot.sandbox.seed import FIRST_NAMES, LAST_NAMES, _customer, seed_orders
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.smtp import SandboxSMTP

EXAMPLES = Path(__file__).parent / "data" / "webhooks"
ORDERBOT = "bot"
SECRET_SUFFIXES = ("SECRET", "TOKEN", "PASSWORD")
PERSONAL_SUFFIXES = ("EMAIL", "PHONE", "ADDRESS")
SHORTEST_NEEDLE = 6  # shorter constants ("x", "abc") would match everywhere
HEAD = 4  # needles are found by their first characters, then compared whole
OUTSIDE_TESTS = "(outside any test)"
# aiosmtpd's logger: the sandbox SMTP server (the store's mail server in the tests) traces each recipient, as a mail
# server's log does. `serve` never runs it.
SANDBOX_LOGGERS = ("mail.log",)


# --- what to look for -----------------------------------------------------------------------------------------


def seeded_customers() -> dict[str, str]:
    found: dict[str, str] = {}
    for order in seed_orders(datetime.now(UTC)):
        customer = order["customer"]
        found[customer["email"]] = f"email of {order['name']}'s customer (seed.py)"
        found[f"{customer['first_name']} {customer['last_name']}"] = f"name of {order['name']}'s customer (seed.py)"
    for first, last in itertools.product(FIRST_NAMES, LAST_NAMES):  # every customer generate_orders can make
        found.setdefault(_customer(0, first, last)["email"], "email of a generated customer (seed.py)")
        found.setdefault(f"{first} {last}", "name of a generated customer (seed.py)")
    return found


def example_payload_people() -> dict[str, str]:
    """Street addresses, phones, emails and names in Shopify's example payloads, which tests send as they are."""
    found: dict[str, str] = {}

    def walk(value: Any, source: str) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, source)
        if not isinstance(value, dict):
            return
        for key, what in (("address1", "street address"), ("phone", "phone number"), ("email", "email")):
            if isinstance(value.get(key), str):
                found.setdefault(value[key], f"{what} in {source}")
        if isinstance(value.get("first_name"), str) and isinstance(value.get("last_name"), str):
            found.setdefault(f"{value['first_name']} {value['last_name']}", f"a person's name in {source}")
        for item in value.values():
            walk(item, source)

    for path in sorted(EXAMPLES.glob("*.json")):
        walk(json.loads(path.read_text()), f"tests/data/webhooks/{path.name}")
    return found


def sandbox_secrets() -> dict[str, str]:
    found = {}
    for sandbox, names in (
        (SandboxShopify, ("access_token", "client_secret")),
        (SandboxSlack, ("bot_token", "app_token")),
        (SandboxSMTP, ("password",)),
    ):
        defaults = inspect.signature(sandbox.__init__).parameters
        for name in names:
            found[defaults[name].default] = f"{sandbox.__name__}'s {name.replace('_', ' ')}"
    return found


def constants_of(modules: list[types.ModuleType]) -> dict[str, str]:
    found = {}
    for module in modules:
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and name.endswith(SECRET_SUFFIXES + PERSONAL_SUFFIXES):
                found[value] = f"{name} of {module.__name__}"
    return found


class Needles:
    """Case-insensitive search for many strings at once, fast enough for every record of the run."""

    def __init__(self, described: dict[str, str]):
        self.described = {text: what for text, what in described.items() if len(text) >= SHORTEST_NEEDLE}
        self._by_head: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for text in self.described:
            self._by_head[text.lower()[:HEAD]].append((text.lower(), text))

    def found_in(self, text: str) -> set[str]:
        lowered = text.lower()
        found = set()
        for head, candidates in self._by_head.items():
            at = lowered.find(head)
            while at != -1:
                found.update(original for key, original in candidates if lowered.startswith(key, at))
                at = lowered.find(head, at + 1)
        return found


# --- the levels -----------------------------------------------------------------------------------------------


def serve_level(name: str) -> int:
    """The level below which `python -m bot serve` drops a library logger's records."""
    while name:
        if name in LIBRARY_LOG_LEVELS:
            return LIBRARY_LOG_LEVELS[name]
        name = name.rpartition(".")[0]
    return LOG_LEVEL


def is_orderbots(name: str) -> bool:
    return name == ORDERBOT or name.startswith(ORDERBOT + ".")


def served(record: logging.LogRecord) -> bool:
    """A library's record that `python -m bot serve` would log."""
    if is_orderbots(record.name) or record.name.startswith(SANDBOX_LOGGERS):
        return False
    return record.levelno >= serve_level(record.name)


class GuardLevels:
    """The root logger just under LOG_LEVEL and "bot" just under DEBUG, while the guard runs; `as_before` tells
    whether a record would have been emitted without them."""

    def __init__(self) -> None:
        self.lowered: dict[logging.Logger, tuple[int, int]] = {}  # logger -> (its level before, the guard's)

    def lower(self) -> None:
        for logger, level in ((logging.root, LOG_LEVEL - 1), (logging.getLogger(ORDERBOT), logging.DEBUG - 1)):
            if logger.getEffectiveLevel() > level:
                self.lowered[logger] = (logger.level, level)
                logger.setLevel(level)

    def restore(self) -> None:
        for logger, (before, ours) in self.lowered.items():
            if logger.level == ours:  # not changed since
                logger.setLevel(before)

    def as_before(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.root if record.name == "root" else logging.getLogger(record.name)
        while logger is not None:
            before, ours = self.lowered.get(logger, (logger.level, None))
            level = before if logger.level == ours else logger.level
            if level:
                return record.levelno >= level
            logger = logger.parent
        return True


# --- the guard ------------------------------------------------------------------------------------------------


@dataclass
class Leak:
    value: str
    what: str
    logger: str
    level: str
    test: str
    example: str
    records: int = 1


class LogGuard:
    FORMAT = "%(levelname)s %(name)s: %(message)s"

    def __init__(self, needles: dict[str, str]):
        self.needles = Needles(needles)
        self.test = OUTSIDE_TESTS
        self.records = 0
        self.leaks: dict[tuple[str, str, str], Leak] = {}
        self.levels = GuardLevels()
        self.formatter = logging.Formatter(self.FORMAT)
        self.orderbots = _Reader(self)  # on "bot", where it stays when a test replaces the root logger's handlers
        self.libraries = _Reader(self, served)

    def install(self, pytest_handlers: list[logging.Handler]) -> None:
        self.levels.lower()
        logging.getLogger(ORDERBOT).addHandler(self.orderbots)
        logging.root.addHandler(self.libraries)
        for handler in pytest_handlers:
            handler.addFilter(self.levels.as_before)

    def uninstall(self, pytest_handlers: list[logging.Handler]) -> None:
        logging.getLogger(ORDERBOT).removeHandler(self.orderbots)
        logging.root.removeHandler(self.libraries)
        for handler in pytest_handlers:
            handler.removeFilter(self.levels.as_before)
        self.levels.restore()

    def look_for(self, more: dict[str, str]) -> None:
        self.needles = Needles({**self.needles.described, **more})

    def read(self, record: logging.LogRecord) -> None:
        self.records += 1
        try:
            text = self.formatter.format(record)
        except Exception as exc:  # a record whose arguments do not fit its message: read what there is
            text = f"{record.levelname} {record.name}: {record.msg!r} {record.args!r} ({exc})"
        for value in self.needles.found_in(text):
            key = (value, record.name, self.test)
            if key in self.leaks:
                self.leaks[key].records += 1
                continue
            self.leaks[key] = Leak(
                value, self.needles.described[value], record.name, record.levelname, self.test, text[:400]
            )

    def report(self) -> list[str]:
        lines = []
        for leak in self.leaks.values():
            times = "a record" if leak.records == 1 else f"{leak.records} records"
            lines += [
                f"{leak.value!r} ({leak.what})",
                f"    in {times} of logger {leak.logger} ({leak.level}) during {leak.test}:",
                "    " + leak.example.replace("\n", "\n    "),
            ]
        return lines


class _Reader(logging.Handler):
    """Hands the guard the records `wanted` lets through (all, without it)."""

    def __init__(self, guard: LogGuard, wanted: Callable[[logging.LogRecord], bool] | None = None):
        super().__init__(logging.NOTSET)
        self.guard = guard
        if wanted is not None:
            self.addFilter(wanted)

    def emit(self, record: logging.LogRecord) -> None:
        self.guard.read(record)


# --- the plugin -----------------------------------------------------------------------------------------------

_guard: LogGuard | None = None


def _pytest_handlers(config: pytest.Config) -> list[logging.Handler]:
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    if plugin is None:
        return []
    names = ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler")
    return [getattr(plugin, name) for name in names if hasattr(plugin, name)]


def pytest_sessionstart(session: pytest.Session) -> None:
    global _guard
    _guard = LogGuard({**seeded_customers(), **example_payload_people(), **sandbox_secrets()})
    _guard.install(_pytest_handlers(session.config))


def pytest_collection_finish(session: pytest.Session) -> None:
    modules = {item.module for item in session.items if isinstance(getattr(item, "module", None), types.ModuleType)}
    conftests = [p for p in session.config.pluginmanager.get_plugins() if isinstance(p, types.ModuleType)]
    tests_dir = str(Path(__file__).parent)
    modules |= {m for m in conftests if str(getattr(m, "__file__", "")).startswith(tests_dir)}
    if _guard is not None:
        _guard.look_for(constants_of(sorted(modules, key=lambda m: m.__name__)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart(nodeid: str) -> None:
    if _guard is not None:
        _guard.test = nodeid


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish() -> None:
    if _guard is not None:
        _guard.test = OUTSIDE_TESTS


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _guard is None:
        return
    _guard.uninstall(_pytest_handlers(session.config))
    if _guard.leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _guard is None:
        return
    if not _guard.leaks:
        terminalreporter.write_line(f"log guard: {_guard.records} log records read; no personal data, no secret")
        return
    terminalreporter.write_sep("=", "log guard: personal data or secrets reached the logs", red=True)
    for line in _guard.report():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"({_guard.records} log records read; the run fails)")
