"""The import graph keeps its directions: pure rules, consent apart from sending, a receiver that stores and answers.

Every ``import`` and ``from ... import`` in worker/, compliance/ and tasks/ is read with ast,
including the lazy ones inside functions, so a rule cannot be dodged by moving an import
into a function body.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("worker", "compliance", "tasks")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[module_name(path)] = path
    return found


def _resolve(current: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@cache
def imports_of(name: str) -> frozenset[str]:
    """Every project module ``name`` imports, directly, wherever in the file the import is."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    known = modules()
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, node, path.name == "__init__.py")
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            # "from worker import pii" names a module; "from worker.db import engine" names
            # an attribute of one. Keep whichever is a project module.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES:
                out.add(target)
    out.discard(name)
    return frozenset(out)


def closure(start: str, *, stop: tuple[str, ...] = ()) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        for dep in imports_of(current):
            if dep not in seen and not dep.startswith(stop):
                seen.add(dep)
                todo.append(dep)
    return seen


def in_package(prefix: str) -> Iterator[str]:
    return (m for m in sorted(modules()) if m == prefix or m.startswith(prefix + "."))


def test_the_graph_is_read() -> None:
    """The reader finds what it must, so the rules below are not passing on an empty graph."""
    assert "worker.outbound.send" in modules()
    assert "worker.outbox" in imports_of("worker.consent.effects")
    assert "worker.consent.inbound" in imports_of("worker.ingest.handlers")


def test_compliance_is_pure() -> None:
    """compliance/ imports nothing from worker/ or tasks/: its rules are testable without a database or broker."""
    offenders = {
        m: sorted(d for d in imports_of(m) if not d.startswith("compliance")) for m in in_package("compliance")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_consent_reaches_sending_only_through_the_outbox() -> None:
    """worker/consent/ never imports worker/outbound/, not even through another module."""
    offenders = {
        m: sorted(d for d in closure(m) if d.startswith("worker.outbound")) for m in in_package("worker.consent")
    }
    assert {m: d for m, d in offenders.items() if d} == {}


# The staff-facing applications the receiver mounts (lazily): they call the consent services.
STAFF_APPS = ("worker.web.admin", "worker.web.dashboard")
RECEIVER = [m for m in in_package("worker.web") if not m.startswith(STAFF_APPS)]


@pytest.mark.parametrize("module", RECEIVER)
def test_the_receiver_never_loads_the_consent_engine(module: str) -> None:
    """The webhook receiver stores and answers; nothing it imports (transitively) is worker/consent/."""
    reached = closure(module, stop=STAFF_APPS)
    assert sorted(d for d in reached if d.startswith("worker.consent")) == []


def test_tasks_are_the_wire_format() -> None:
    """Every Celery task keeps an explicit name= (renaming a module must not rename a task)."""
    missing = []
    for name in in_package("tasks"):
        tree = ast.parse(modules()[name].read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    is_task = isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "task"
                    if is_task and not any(k.arg == "name" for k in deco.keywords):  # type: ignore[union-attr]
                        missing.append(f"{name}.{node.name}")
    assert missing == []


def _readme_tree() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("### Where the code lives", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_tree_matches_the_code() -> None:
    """The README's tree names every worker/ package and top-level module, and nothing that is not there."""
    named_dirs: set[str] = set()
    named_files: set[str] = set()
    parents: dict[int, str] = {}
    for line in _readme_tree():
        level = (len(line) - len(line.lstrip())) // 2
        prefix = parents.get(level - 1, "") if level else ""
        for word in line.strip().split("  ")[0].split():
            if word.endswith("/"):
                named_dirs.add(prefix + word.rstrip("/"))
                parents[level] = prefix + word
            elif word.endswith(".py"):
                named_files.add(prefix + word)
    for d in named_dirs:
        assert (ROOT / d).is_dir(), f"README names {d}/, which does not exist"
    for f in named_files:
        assert (ROOT / f).is_file(), f"README names {f}, which does not exist"
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "worker").glob("*/__init__.py")}
    packages |= {str(p.parent.relative_to(ROOT)) for p in (ROOT / "worker").glob("*/*/__init__.py")}
    packages -= {"worker/migrations"}
    assert packages - named_dirs == set(), "packages missing from the README tree"
    top = {str(p.relative_to(ROOT)) for p in (ROOT / "worker").glob("*.py") if p.name != "__init__.py"}
    assert top - named_files == set(), "top-level modules missing from the README tree"


@pytest.mark.parametrize(
    "package", sorted(str(p.parent.relative_to(ROOT)) for p in (ROOT / "worker").rglob("__init__.py")
                      if "migrations" not in p.parts)
)
def test_each_package_says_what_it_owns(package: str) -> None:
    """Each worker/ package opens with a docstring that says, in its first lines, what it owns."""
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert doc, f"{package}/__init__.py needs a docstring saying what it owns"
    assert len(doc.split()) >= 8


# Who may open a transaction (worker/db.py): the entry points, and the two flows that commit in steps.
SCOPE_OWNERS = ("tasks", "worker.cli", "worker.web", "worker.tasks_base", "worker.db", "worker.ingest.drain",
                "worker.outbound.send")


def scope_calls(source: str) -> list[int]:
    """Lines where ``source`` calls ``session_scope`` by name, through an alias, or as an attribute."""
    tree = ast.parse(source)
    names = {"session_scope"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {alias.asname for alias in node.names if alias.name == "session_scope" and alias.asname}
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in names)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "session_scope")
        )
    )


def _owns_scopes(module: str) -> bool:
    return any(module == owner or module.startswith(owner + ".") for owner in SCOPE_OWNERS)


def test_the_scope_reader_sees_every_spelling() -> None:
    """A call by name, by alias or as an attribute is found; a mere reference (a default argument) is not."""
    source = (
        "from worker.db import session_scope\n"
        "from worker.db import session_scope as open_tx\n"
        "import worker.db\n"
        "def f(scope=session_scope):\n"
        "    with session_scope() as s: pass\n"
        "    with open_tx() as s: pass\n"
        "    with worker.db.session_scope() as s: pass\n"
    )
    assert scope_calls(source) == [5, 6, 7]


def test_only_the_owners_open_a_session_scope() -> None:
    """Outside tasks/, cli/, the web handlers, the task base and the two flow orchestrators, nothing calls
    session_scope(): a function that takes a session never opens one (issue 9, one transaction owner per flow)."""
    offenders = {
        name: lines
        for name, path in sorted(modules().items())
        if not _owns_scopes(name) and (lines := scope_calls(path.read_text()))
    }
    assert offenders == {}


def test_the_owners_are_real_modules() -> None:
    """Every owner named above exists, so the allow-list cannot silently cover a module that moved."""
    for owner in SCOPE_OWNERS:
        assert owner in modules(), owner


RAW_SQL_NAMES = frozenset({"text", "exec_driver_sql", "driver_connection"})


def raw_sql_uses(source: str) -> list[str]:
    """SQL written in ``source`` itself: sqlalchemy's ``text`` imported, or a raw-SQL call by any spelling."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("sqlalchemy", "worker"):
            found += [f"imports {a.name} from {node.module}" for a in node.names if a.name in RAW_SQL_NAMES]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in RAW_SQL_NAMES:
                found.append(f"calls .{func.attr}() on line {node.lineno}")
    return found


def test_the_raw_sql_reader_sees_every_spelling() -> None:
    """text imported from sqlalchemy (or sqlalchemy.sql), sa.text(...) and .exec_driver_sql(...) are all found."""
    source = (
        "import sqlalchemy as sa\n"
        "from sqlalchemy import text\n"
        "from sqlalchemy.sql import text as t\n"
        "sa.text('select 1')\n"
        "conn.exec_driver_sql('select 1')\n"
    )
    assert len(raw_sql_uses(source)) == 4


def test_the_cli_has_no_sql_of_its_own() -> None:
    """worker/cli/ calls services; the queries (inbox retry, failed, show, stats) live next to the data."""
    offenders = {name: uses for name in in_package("worker.cli") if (uses := raw_sql_uses(modules()[name].read_text()))}
    assert offenders == {}
