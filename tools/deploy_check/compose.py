"""docker-compose.yml: the compose-spec JSON schema (raw and interpolated with a generated env file), then the
rules of this project: every `depends_on` names a service and a valid condition, every long-running process
has a health check, every secret is required (`${VAR:?...}`, no default), the env template holds only
placeholders, every mounted file and Dockerfile exists, and only the gateway's X-Forwarded-For is believed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tools.deploy_check.common import (
    COMPOSE,
    DEPLOY,
    PROCESSES,
    ROOT,
    CheckFailed,
    loopback_variables,
    run,
    secret_variables,
    tool,
)
from tools.deploy_check.exposure import compose_environments, compose_gateway_problems, wildcard_forwarders
from tools.deploy_check.images import dockerfile_env

COMPOSE_ENV_EXAMPLE = DEPLOY / "compose" / "env.example"
# Variables compose may default: none of them is a secret. SMTP_URL holds one once an operator sets it (a real
# server's password), but email is optional and its default, the bundled mail catcher, holds none.
COMPOSE_DEFAULTS_ALLOWED = frozenset(
    {"LOG_LEVEL", "OPENROUTER_BASE_URL", "OWR_PUBLIC_PORT", "PUBLIC_BASE_URL", "SMTP_URL", "MAIL_FROM"}
)
# Who may publish ports: the gateway to everyone; the rest (observability, the mail catcher's pages) on 127.0.0.1.
PUBLISHERS = frozenset({"gateway", "prometheus", "grafana", "mailpit"})

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def compose_variables(text: str) -> dict[str, str | None]:
    """{variable: its operator (`:?`, `:-`, ...) or None} for every `${...}` in the compose file."""
    out: dict[str, str | None] = {}
    for match in _INTERPOLATION.finditer(text):
        name, operator = match.group(1), match.group(2)
        if out.get(name) in (":?", "?"):
            continue
        out[name] = operator
    return out


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation: applied to every string of the parsed file (keys stay as written)."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if operator in (":-", "-"):
            return argument or ""
        raise CheckFailed(f"compose needs {name}, which the env file does not set")

    if isinstance(value, str):
        return _INTERPOLATION.sub(one, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _env_file_values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name] = value.strip("'\"")
    return values


def check_compose() -> str:
    from owr_shared.settings import is_placeholder
    from tools.compose_env import generate

    text = COMPOSE.read_text()
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    variables = compose_variables(text)
    defaulted = sorted(name for name, op in variables.items() if op not in (":?", "?"))
    bad_defaults = [name for name in defaulted if name not in COMPOSE_DEFAULTS_ALLOWED]
    if bad_defaults:
        raise CheckFailed(f"compose variables that must be required (${{VAR:?...}}), not defaulted: {bad_defaults}")
    required = sorted(name for name, op in variables.items() if op in (":?", "?"))
    example = _env_file_values(COMPOSE_ENV_EXAMPLE)
    missing = [name for name in required if name not in example]
    if missing:
        raise CheckFailed(f"{COMPOSE_ENV_EXAMPLE.relative_to(ROOT)} does not list {missing}")
    working = [
        name
        for name, value in example.items()
        if name not in ("KEYS_ACTIVE_KEK_VERSION", "USAGE_ACTIVE_KEK_VERSION", "AUTH_ACTIVE_KEK_VERSION")
        and not is_placeholder(value)
    ]
    if working:
        raise CheckFailed(f"the env template holds working values (placeholders only): {working}")

    generated = {name: value.strip("'") for name, value in generate().items()}
    not_generated = [name for name in required if name not in generated]
    if not_generated:
        raise CheckFailed(f"tools/compose_env.py does not generate {not_generated}")
    document = interpolate(yaml.safe_load(text), generated)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(document, handle)
    try:
        # The values are throwaway secrets, but an error report must still not print them.
        run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "-o", "text", handle.name])
    except CheckFailed:
        raise CheckFailed("the interpolated compose file breaks the compose-spec schema (values withheld)") from None
    finally:
        Path(handle.name).unlink()

    services: dict[str, Any] = document["services"]
    problems = []
    for name in (*PROCESSES, "postgres", "redis", "migrate-auth", "migrate-keys", "migrate-usage"):
        if name not in services:
            problems.append(f"service {name} is missing")
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target, spec in depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends):
            if target not in services:
                problems.append(f"{name} depends on unknown service {target}")
            condition = spec.get("condition")
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                problems.append(f"{name} -> {target}: condition {condition!r}")
            elif condition == "service_healthy" and "healthcheck" not in services.get(target, {}):
                problems.append(f"{name} waits for {target} to be healthy, which has no healthcheck")
        if not name.startswith("migrate-") and "healthcheck" not in service:
            problems.append(f"{name} has no healthcheck")
        build = service.get("build")
        dockerfile = build and build.get("dockerfile", "Dockerfile")
        if build and not (ROOT / build["context"] / dockerfile).exists():
            problems.append(f"{name}: {dockerfile} does not exist")
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not (ROOT / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist")
    for name in PROCESSES:
        service = services.get(name, {})
        for variable in sorted(secret_variables(name) - set(service.get("environment", {}))):
            problems.append(f"{name} does not receive its secret {variable}")
        given = set(service.get("environment", {})) | dockerfile_env(name)
        for variable in sorted(loopback_variables(name) - given):
            problems.append(f"{name} keeps {variable} at its 127.0.0.1 default")
        for target in ("redis",):
            if target not in service.get("depends_on", {}):
                problems.append(f"{name} does not wait for {target}")
    problems += wildcard_forwarders(compose_environments(services)) + compose_gateway_problems(services)
    if [n for n, s in services.items() if s.get("ports") and n not in PUBLISHERS]:
        problems.append("only the gateway (and, on 127.0.0.1, the observability profile and mailpit) may publish ports")
    for name in sorted(PUBLISHERS - {"gateway"}):
        for port in services.get(name, {}).get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{name} publishes {port} beyond this machine (bind it to 127.0.0.1)")
    for name in ("prometheus", "grafana"):
        if services.get(name, {}).get("profiles") != ["observability"]:
            problems.append(f"{name} belongs to the observability profile only")
    if problems:
        raise CheckFailed("\n".join(problems))
    docker = shutil.which("docker")
    compose_plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if compose_plugin and compose_plugin.returncode == 0:
        with tempfile.TemporaryDirectory() as tmp:
            env_file = Path(tmp) / ".env"
            env_file.write_text("".join(f"{k}={v}\n" for k, v in generate().items()))
            run([str(docker), "compose", "--env-file", str(env_file), "-f", str(COMPOSE), "config", "--quiet"])
        return f"{len(services)} services (schema, rules, docker compose config)"
    return f"{len(services)} services (schema, raw and interpolated; rules)"
