"""The image recipe: hadolint on the one Dockerfile, and each process's build arguments (docker-compose.yml
holds them) agreeing with the process itself: its package and module, its settings' prefix, its port."""

from __future__ import annotations

import tomllib
from typing import Any

import yaml

from tools.deploy_check.common import (
    COMPOSE,
    DOCKERFILE,
    PROCESSES,
    ROOT,
    CheckFailed,
    run,
    settings_class,
    settings_prefix,
    tool,
)
from tools.deploy_check.dockerfile import stages

REQUIRED_BUILD_ARGS = ("SERVICE", "FOLDER", "SETTINGS_PREFIX", "PORT")


def compose_builds() -> dict[str, dict[str, Any]]:
    """{compose service: its `build` section} of every service built from this repository."""
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return {name: service["build"] for name, service in services.items() if "build" in service}


def build_args(process: str) -> dict[str, str]:
    """The build arguments of a process's image, as docker-compose.yml passes them."""
    build = compose_builds().get(process)
    if build is None:
        raise CheckFailed(f"docker-compose.yml does not build {process}")
    return {name: str(value) for name, value in build.get("args", {}).items()}


def image_env(process: str) -> dict[str, str]:
    """The environment the runtime stage of a process's image sets with ENV."""
    return stages(DOCKERFILE, build_args(process))["runtime"].env()


def dockerfile_env(process: str) -> set[str]:
    """Names the runtime stage of a process's image sets with ENV."""
    return set(image_env(process))


def _package_name(folder: str) -> str | None:
    pyproject = ROOT / folder / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["name"] if pyproject.is_file() else None


def _process_problems(process: str, args: dict[str, str], healthcheck: str) -> list[str]:
    """Where a process's build arguments disagree with its package, its settings or its compose health check."""
    missing = [name for name in REQUIRED_BUILD_ARGS if not args.get(name)]
    if missing:
        return [f"{process}: no build argument {', '.join(missing)}"]
    problems = []
    if args["SERVICE"] != process:
        problems.append(f"{process}: SERVICE={args['SERVICE']}")
    if _package_name(args["FOLDER"]) != f"owr-{process}":
        problems.append(f"{process}: FOLDER={args['FOLDER']} does not hold the package owr-{process}")
    elif not (ROOT / args["FOLDER"] / "src" / f"owr_{process}" / "__main__.py").is_file():
        problems.append(f"{process}: no module owr_{process} to run in {args['FOLDER']}/src")
    prefix = settings_prefix(process)
    if args["SETTINGS_PREFIX"] != prefix:
        problems.append(f"{process}: SETTINGS_PREFIX={args['SETTINGS_PREFIX']}, its settings read {prefix}_*")
    default_port = str(settings_class(process).model_fields["port"].default)
    if args["PORT"] != default_port:
        problems.append(f"{process}: PORT={args['PORT']}, its settings default to {default_port}")
    # A process with npm packages (a package.json beside its pyproject.toml) gets them from the Node stage.
    wants_assets = (ROOT / args["FOLDER"] / "package.json").is_file()
    assets = args.get("ASSETS", "none")
    if assets != (process if wants_assets else "none"):
        expected = process if wants_assets else "none"
        problems.append(f"{process}: ASSETS={assets}, expected {expected} ({args['FOLDER']}/package.json)")
    env = image_env(process)
    for variable, value in ((f"{prefix}_HOST", "0.0.0.0"), (f"{prefix}_PORT", args["PORT"])):
        if env.get(variable) != value:
            problems.append(f"{process}: the image sets {variable}={env.get(variable)}, not {value}")
    health_port = env.get(env.get("OWR_HEALTH_PORT_VARIABLE", ""))
    if health_port is None:
        problems.append(f"{process}: the image's HEALTHCHECK reads no port variable it sets")
    elif f"127.0.0.1:{health_port}/health/ready" not in healthcheck:
        problems.append(f"{process}: the image's readiness port {health_port} is not the one compose checks")
    return problems


def check_images() -> str:
    if not DOCKERFILE.exists():
        raise CheckFailed(f"missing {DOCKERFILE.relative_to(ROOT)}")
    if not (ROOT / ".dockerignore").exists():
        raise CheckFailed(".dockerignore is missing")
    run([tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)])
    text = DOCKERFILE.read_text()
    for needed in ("--frozen", '--package "owr-$SERVICE"', "USER 10001", "HEALTHCHECK", "AS runtime"):
        if needed not in text:
            raise CheckFailed(f"{DOCKERFILE.relative_to(ROOT)} lacks {needed!r}")
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    builds = compose_builds()
    problems = []
    by_image: dict[str, dict[str, Any]] = {}
    for name, build in builds.items():
        if build.get("context") != "." or build.get("dockerfile", "Dockerfile") != "Dockerfile":
            problems.append(f"{name}: not built from the repository root with its one Dockerfile")
        image = services[name].get("image", name)
        if by_image.setdefault(image, build) != build:
            problems.append(f"{name}: builds {image} with other arguments than another service does")
    for process in PROCESSES:
        if process not in builds:
            problems.append(f"docker-compose.yml does not build {process}")
            continue
        healthcheck = " ".join(services[process].get("healthcheck", {}).get("test", []))
        problems += _process_problems(process, build_args(process), healthcheck)
    if problems:
        raise CheckFailed("\n".join(problems))
    return f"1 Dockerfile, the build arguments of {len(PROCESSES)} images"
