"""The Dockerfiles' build stage, run for real without Docker: the same COPY and `uv sync` steps in a
scratch directory (no engine runs here). Each image's virtualenv must hold its process and the shared
library, its migrations, and nothing of the other processes or the dev tools."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.deploy_check import DOCKERFILES
from tools.devinfra import ROOT

pytestmark = pytest.mark.e2e


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed")
    return found


def build_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) of the first stage, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    stage: list[tuple[str, str]] = []
    froms = 0
    for line in lines:
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            froms += 1
            if froms > 1:
                break
            continue
        if froms == 1:
            stage.append((instruction.upper(), rest.strip()))
    return stage


def run_build_stage(dockerfile: Path, scratch: Path) -> Path:
    """COPY from the repository, RUN `uv sync ...` with this machine's uv; returns the virtualenv."""
    venv = scratch / "venv"
    workdir = scratch
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    for instruction, arguments in build_stage(dockerfile):
        if instruction == "ENV":
            for name, value in (pair.split("=", 1) for pair in shlex.split(arguments)):
                if name != "UV_PROJECT_ENVIRONMENT":
                    env[name] = value
        elif instruction == "WORKDIR":
            workdir = scratch / arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            *sources, destination = shlex.split(arguments)
            target = workdir / destination
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(origin, workdir / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    (target if destination.endswith("/") else target.parent).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name if destination.endswith("/") else target)
        elif instruction == "RUN":
            words = [w for w in shlex.split(arguments) if not w.startswith("--mount=")]
            if words[:2] == ["pip", "install"]:
                continue  # installs uv itself; this machine's uv stands in
            assert words[0] == "uv", f"unexpected build step: {arguments}"
            result = subprocess.run(
                [_uv(), *words[1:]], cwd=workdir, env=env, capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, f"{arguments}\n{result.stderr[-3000:]}"
    return venv


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_image_build_installs_its_process_alone_from_the_lockfile(name: str, tmp_path: Path) -> None:
    venv = run_build_stage(DOCKERFILES[name], tmp_path)
    python = venv / "bin" / "python"
    module = f"owr_{name}"
    probe = (
        "import importlib.util as u, sys\n"
        f"import {module}.__main__, owr_shared.serve\n"
        "others = [m for m in ('owr_gateway', 'owr_auth', 'owr_keys', 'owr_usage', 'owr_worker', 'pytest', 'mypy')"
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
