"""The layout's rules, checked on the source so that a change breaking one fails here:

- ``core/`` imports no domain; ``advisor_api/`` holds no SQL;
- each domain writes only its own tables, and its SQL names only its own tables
  (another domain's data comes through that domain's published relations);
- no hand-written module over 500 lines, no function over 80.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOMAINS = ("audit", "members", "orders", "tasks", "incentives", "notifications")
SQL_TABLE = re.compile(
    r"\b(?:FROM|JOIN|UPDATE|INSERT\s+INTO|DELETE\s+FROM|TRUNCATE)\s+([a-z_][a-z_0-9]*)\b"
)
SQL_WRITE = re.compile(r"\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM|TRUNCATE)\s+([a-z_][a-z_0-9]*)\b")
# Words after FROM/JOIN that are not tables: CTE names, set-returning functions.
NOT_TABLES = {"unnest", "json_each", "src", "lateral", "select"}


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (REPO / folder).rglob("*.py") if "piccolo_migrations" not in p.parts)


def _owned_tables() -> dict[str, str]:
    owner = {}
    for domain in DOMAINS:
        app = importlib.import_module(f"{domain}.piccolo_app").APP_CONFIG
        for table in app.table_classes:
            owner[table._meta.tablename] = domain
    return owner


def _strings(tree: ast.AST) -> list[str]:
    """Every string literal, f-strings' literal parts included."""
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def _sql_of(path: Path) -> str:
    # Adjacent literals are one statement split over lines: join them back.
    return " ".join(_strings(ast.parse(path.read_text())))


def _ctes(sql: str) -> set[str]:
    return set(re.findall(r"\b([a-z_][a-z_0-9]*)\s+AS\s*\(", sql))


def test_core_imports_no_domain() -> None:
    for path in _modules("core"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in (*DOMAINS, "advisor_api"), (
                    f"{path.relative_to(REPO)} imports {node.module}"
                )


# What the top floor may take from core.db: the pool, the health checks, a DSN for a
# connection of its own, telling a lost connection. Queries and transactions belong to
# the domains.
TOP_FLOOR_DB = {
    "connection_pool",
    "database_answers",
    "migrations_behind",
    "postgres_dsn",
    "connection_lost",
}


def test_advisor_api_holds_no_sql() -> None:
    tables = _owned_tables()
    for path in _modules("advisor_api"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "core.db":
                names = {alias.name for alias in node.names}
                assert names <= TOP_FLOOR_DB, f"{path.relative_to(REPO)} imports {names}"
        found = [t for t in SQL_TABLE.findall(_sql_of(path)) if t in tables]
        assert not found, f"{path.relative_to(REPO)} names tables {found}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_names_only_its_own_tables(domain: str) -> None:
    """Writes and reads alike: another domain's rows come through its read side."""
    owner = _owned_tables()
    strays = []
    for path in _modules(domain):
        sql = _sql_of(path)
        for table in set(SQL_TABLE.findall(sql)) - NOT_TABLES - _ctes(sql):
            if owner.get(table, domain) != domain:
                strays.append(f"{path.relative_to(REPO)}: {table}")
    assert not strays, f"{domain} names other domains' tables: {strays}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_writes_only_its_own_tables(domain: str) -> None:
    owner = _owned_tables()
    for path in _modules(domain):
        for table in SQL_WRITE.findall(_sql_of(path)):
            assert owner.get(table, domain) == domain, f"{path.relative_to(REPO)} writes {table}"


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for folder in ("core", "advisor_api", *DOMAINS):
        for path in _modules(folder):
            source = path.read_text()
            if source.count("\n") > 500:
                too_long.append(f"{path.relative_to(REPO)}: {source.count(chr(10))} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > 80:
                        too_long.append(f"{path.relative_to(REPO)}:{node.name}: {length} lines")
    assert not too_long, too_long
