"""What every checker shares: the files checked, the processes, the failure, running a tool, and what each
process's settings class declares (secrets, loopback defaults)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
HTTP_SERVICES = ("gateway", "auth", "keys", "usage", "web")
PROCESSES = (*HTTP_SERVICES, "worker")
PROCESSES_WITHOUT_DATABASE = frozenset({"gateway", "worker", "web"})

SETTINGS_CLASSES = {
    "gateway": ("owr_gateway.settings", "GatewaySettings"),
    "auth": ("owr_auth.settings", "AuthSettings"),
    "keys": ("owr_keys.settings", "KeysSettings"),
    "usage": ("owr_usage.settings", "UsageSettings"),
    "worker": ("owr_worker.settings", "WorkerSettings"),
    "web": ("owr_web.settings", "WebSettings"),
}


class CheckFailed(Exception):
    pass


def tool(name: str) -> str:
    """A tool from the virtualenv (uv.lock) or PATH (Debian packages)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise CheckFailed(f"{name} is not installed: run `make deploy-tools`")
    return found


def run(args: list[str], *, cwd: Path = ROOT) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CheckFailed(f"{' '.join(args[:3])} ... failed:\n{result.stdout}{result.stderr}".rstrip())
    return result.stdout


def settings_class(process: str) -> Any:
    module, name = SETTINGS_CLASSES[process]
    return getattr(importlib.import_module(module), name)


def settings_prefix(process: str) -> str:
    """The environment prefix of a process's settings, without its underscore: AUTH for AUTH_PORT."""
    return str(settings_class(process).model_config.get("env_prefix", "")).upper().removesuffix("_")


def _env_name(cls: Any, field_name: str, info: Any) -> str:
    alias = info.validation_alias if isinstance(info.validation_alias, str) else None
    return (alias or f"{cls.model_config.get('env_prefix', '')}{field_name}").upper()


def loopback_variables(process: str) -> set[str]:
    """Variables whose default points at this machine (127.0.0.1): a deployment must set every one."""
    cls = settings_class(process)
    found = {
        _env_name(cls, field_name, info)
        for field_name, info in cls.model_fields.items()
        if "127.0.0.1" in str(info.default)
    }
    # Every settings class inherits DATABASE_URL; the gateway, the worker and web own nothing in PostgreSQL.
    return found - {"DATABASE_URL"} if process in PROCESSES_WITHOUT_DATABASE else found


def secret_variables(process: str) -> set[str]:
    """The environment variables of a process's settings declared with `secret_field`."""
    cls = settings_class(process)
    return {
        _env_name(cls, field_name, info)
        for field_name, info in cls.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret")
    }
