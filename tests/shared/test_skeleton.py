"""The service skeleton of CONTRIBUTING.md, checked: the same files everywhere, where SQL and internal
routes may live, and no import between services or from a base to its domains."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

ROOT = Path(__file__).resolve().parents[2]
HTTP_SERVICES = ("auth", "keys", "usage")
# A service without a schema or internal routes (the web dashboard) has the rest of the skeleton.
SCHEMALESS_SERVICES = ("web",)
ALL_SERVICES = (*HTTP_SERVICES, *SCHEMALESS_SERVICES, "worker")
SKELETON = (
    "__init__.py",
    "__main__.py",
    "app.py",
    "settings.py",
    "dependencies.py",
    "base.py",
    "tables.py",
    "metrics.py",
    "internal/__init__.py",
    "internal/router.py",
    "migrations/env.py",
)
# What builds SQL: allowed in repositories, models (index predicates) and migrations only.
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "exists", "func", "literal_column"}


def package(service: str) -> Path:
    return ROOT / "services" / service / "src" / f"owr_{service}"


def modules(service: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(package(service).rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def imported_modules(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_every_http_service_has_the_skeleton_files(service: str) -> None:
    missing = [name for name in SKELETON if not (package(service) / name).is_file()]
    assert not missing


@pytest.mark.parametrize("service", SCHEMALESS_SERVICES)
def test_a_service_without_a_schema_has_the_rest_of_the_skeleton(service: str) -> None:
    without_schema = [name for name in SKELETON if name not in ("base.py", "tables.py", "migrations/env.py")]
    without_internal = [name for name in without_schema if not name.startswith("internal/")]
    missing = [name for name in without_internal if not (package(service) / name).is_file()]
    assert not missing
    assert not (package(service) / "migrations").exists()
    # It holds no SQL at all.
    assert not [
        path for path, tree in modules(service) for name in imported_modules(tree) if name.startswith("sqlalchemy")
    ]


@pytest.mark.parametrize("name", ["__main__.py", "settings.py", "metrics.py"])
def test_the_worker_keeps_the_names_that_apply(name: str) -> None:
    assert (package("worker") / name).is_file()


@pytest.mark.parametrize("service", [*HTTP_SERVICES, *SCHEMALESS_SERVICES])
def test_main_is_run_service(service: str) -> None:
    source = (package(service) / "__main__.py").read_text(encoding="utf-8")
    assert "run_service(" in source
    assert "uvicorn" not in source


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_base_imports_no_domain(service: str) -> None:
    tree = ast.parse((package(service) / "base.py").read_text(encoding="utf-8"))
    own = [name for name in imported_modules(tree) if name.startswith(f"owr_{service}")]
    assert own == []


@pytest.mark.parametrize("service", ALL_SERVICES)
def test_services_never_import_each_other(service: str) -> None:
    others = tuple(f"owr_{other}" for other in (*ALL_SERVICES, "gateway") if other != service)
    offenders = [
        (path.relative_to(ROOT).as_posix(), name)
        for path, tree in modules(service)
        for name in imported_modules(tree)
        if name.split(".")[0] in others
    ]
    assert offenders == []


def _may_hold_sql(path: Path) -> bool:
    # Models and bases use SQL expressions for DDL only (server defaults, partial indexes).
    return path.name.endswith("repository.py") or path.name in ("models.py", "base.py") or "migrations" in path.parts


def _is_session_call(node: ast.Attribute) -> bool:
    owner = node.value
    named = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
    return node.attr in ("execute", "scalar", "scalars", "stream") and named == "session"


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_sql_lives_in_repositories(service: str) -> None:
    offenders = []
    for path, tree in modules(service):
        if _may_hold_sql(path):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                offenders += [(path.name, a.name) for a in node.names if a.name in SQL_BUILDERS]
            if isinstance(node, ast.Attribute) and _is_session_call(node):
                offenders.append((path.name, node.attr))
    assert offenders == []


def _routes(service: str) -> list[tuple[str, APIRoute]]:
    """(module, route) of every route the service's router modules declare."""
    found = []
    for path in sorted(package(service).rglob("router.py")):
        name = ".".join(path.relative_to(package(service).parent).with_suffix("").parts)
        module = importlib.import_module(name)
        for router in vars(module).values():
            if isinstance(router, APIRouter):
                found += [(name, route) for route in router.routes if isinstance(route, APIRoute)]
    return found


def _dependency_names(route: APIRoute) -> set[str]:
    names: set[str] = set()
    pending: list[Any] = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is not None:
            names.add(getattr(dependant.call, "__name__", ""))
        pending.extend(dependant.dependencies)
    return names


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_internal_routes_live_in_the_internal_package(service: str) -> None:
    routes = _routes(service)
    internal_module = f"owr_{service}.internal.router"
    misplaced = [r.path for module, r in routes if r.path.startswith("/internal/") != (module == internal_module)]
    assert misplaced == []
    assert any(module == internal_module for module, _ in routes)


@pytest.mark.parametrize("service", ["keys", "usage"])
def test_every_internal_route_demands_a_service_token(service: str) -> None:
    unguarded = [
        r.path
        for module, r in _routes(service)
        if module.endswith(".internal.router")
        and not any(name.startswith("service_token_with_") for name in _dependency_names(r))
    ]
    assert unguarded == []
