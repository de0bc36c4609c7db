"""`make run` / `make demo`: the whole system on one machine, as real processes.

With `DATABASE_URL` / `REDIS_URL` unset it starts an embedded PostgreSQL and Redis under `.data/`;
then it migrates, starts gateway, auth, keys, usage, worker and web, waits until each is ready, prints the
URLs, restarts a child that exits (`tools.supervisor`: backoff, a few restarts a minute at most), and on
Ctrl-C or SIGTERM stops everything it started (children also die with it if it is killed).
`--demo` also starts the OpenRouter emulator with its demo account, points the worker at it, and signs
up a demo user holding the demo keys, synced. With `SMTP_URL` unset, the worker's email goes to an SMTP sink
(`tools.mail_sink`) that keeps each message under `.data/mail/` and prints where. The end-to-end tests and the benchmarks start the same
processes through `ProcessGroup`.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO

from tools.dev_secrets import dev_secrets
from tools.devinfra import DATA_DIR, ROOT, embedded_postgres, embedded_redis, free_ports
from tools.mail_sink import MAIL_DIR, MailSink, announce

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when the runner dies, so nothing is orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the runner's own signal handling still stops the children


@dataclass
class ProcessSpec:
    """One process of the system: `python -m <module>` with a health port to wait on."""

    name: str
    module: str
    health_port: int
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


@dataclass
class RunningProcess:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]


class ProcessGroup:
    """Start real service processes, wait for readiness, stop them all (SIGTERM, then SIGKILL)."""

    def __init__(self, base_env: Mapping[str, str], log_dir: Path | None = None) -> None:
        self.base_env = dict(base_env)
        self.log_dir = log_dir
        self.running: list[RunningProcess] = []
        self._logs: list[IO[bytes]] = []

    def start(self, spec: ProcessSpec) -> RunningProcess:
        env = {**self.base_env, **spec.env}
        stdout: int | IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_file = open(self.log_dir / f"{spec.name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(log_file)
            stdout = log_file
        popen = subprocess.Popen(
            [sys.executable, "-m", spec.module, *spec.args],
            env=env,
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout is not None else None,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        running = RunningProcess(spec, popen)
        self.running.append(running)
        return running

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll each process's `/health/ready` until all answer 200; fail fast if one exits."""
        deadline = time.monotonic() + timeout
        pending = list(self.running)
        while pending:
            for proc in list(pending):
                code = proc.popen.poll()
                if code is not None:
                    raise RuntimeError(f"{proc.spec.name} exited with status {code} during start-up")
                if _is_ready(proc.spec.health_port):
                    pending.remove(proc)
            if pending and time.monotonic() > deadline:
                names = ", ".join(p.spec.name for p in pending)
                raise TimeoutError(f"not ready after {timeout:.0f}s: {names}")
            if pending:
                time.sleep(0.1)

    def find(self, name: str) -> RunningProcess:
        return next(p for p in self.running if p.spec.name == name)

    def kill(self, name: str) -> ProcessSpec:
        """SIGKILL one process (no clean-up at all, as when a node dies) and forget it; returns its spec."""
        proc = self.find(name)
        proc.popen.kill()
        proc.popen.wait()
        self.running.remove(proc)
        return proc.spec

    def stop(self, timeout: float = 15.0) -> None:
        for proc in reversed(self.running):
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.running:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self.running.clear()
        for log_file in self._logs:
            log_file.close()
        self._logs.clear()


def _is_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass(frozen=True)
class Ports:
    gateway: int = 8000
    gateway_admin: int = 9000
    auth: int = 8001
    keys: int = 8002
    usage: int = 8003
    worker: int = 8004
    emulator: int = 8010
    auth_admin: int = 9001  # each HTTP service's /metrics and health (owr_shared.admin)
    keys_admin: int = 9002
    usage_admin: int = 9003
    web: int = 8005  # the dashboard's pages, reached through the gateway
    web_admin: int = 9005
    smtp: int = 1025  # the SMTP sink, when SMTP_URL is unset

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(len(fields(cls))))


def emulator_spec(ports: Ports, *, seed: str | None = None) -> ProcessSpec:
    """The OpenRouter emulator (tools/emulator) as a process; `seed="demo"` preloads the demo account."""
    args = ["--host", "127.0.0.1", "--port", str(ports.emulator)]
    if seed is not None:
        args += ["--seed", seed]
    return ProcessSpec("emulator", "tools.emulator", ports.emulator, args=args)


def emulator_api_url(ports: Ports) -> str:
    return f"http://127.0.0.1:{ports.emulator}/api/v1"


def system_specs(ports: Ports, *, openrouter_url: str | None = None, smtp_url: str | None = None) -> list[ProcessSpec]:
    """The six processes, upstreams first, each told its own port and its peers' addresses; web last, after
    the gateway it calls (its readiness pings Redis only, so it never holds the others up).

    `openrouter_url` points the worker at another OpenRouter (the emulator); unset, the worker's own
    default (or `OPENROUTER_BASE_URL` from the environment) applies. `smtp_url` likewise sends its email to
    another SMTP server (a sink).
    """
    auth_url = f"http://127.0.0.1:{ports.auth}"
    worker_env = {
        "WORKER_PORT": str(ports.worker),
        "WORKER_AUTH_URL": auth_url,
        "WORKER_KEYS_URL": f"http://127.0.0.1:{ports.keys}",
        "WORKER_USAGE_URL": f"http://127.0.0.1:{ports.usage}",
    }
    if openrouter_url is not None:
        worker_env["OPENROUTER_BASE_URL"] = openrouter_url
    if smtp_url is not None:
        worker_env["SMTP_URL"] = smtp_url
        worker_env["MAIL_FROM"] = os.environ.get("MAIL_FROM") or "OpenRouter Watcher <watcher@localhost>"
    return [
        ProcessSpec(
            "auth",
            "owr_auth",
            ports.auth_admin,
            {
                "AUTH_PORT": str(ports.auth),
                "AUTH_ADMIN_PORT": str(ports.auth_admin),
                "AUTH_KEYS_URL": f"http://127.0.0.1:{ports.keys}",
                "AUTH_USAGE_URL": f"http://127.0.0.1:{ports.usage}",
            },
        ),
        ProcessSpec(
            "keys",
            "owr_keys",
            ports.keys_admin,
            {
                "KEYS_PORT": str(ports.keys),
                "KEYS_ADMIN_PORT": str(ports.keys_admin),
                "KEYS_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
            },
        ),
        ProcessSpec(
            "usage",
            "owr_usage",
            ports.usage_admin,
            {
                "USAGE_PORT": str(ports.usage),
                "USAGE_ADMIN_PORT": str(ports.usage_admin),
                "USAGE_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
            },
        ),
        ProcessSpec("worker", "owr_worker", ports.worker, worker_env),
        ProcessSpec(
            "gateway",
            "owr_gateway",
            ports.gateway_admin,
            {
                "GATEWAY_PORT": str(ports.gateway),
                "GATEWAY_ADMIN_PORT": str(ports.gateway_admin),
                "GATEWAY_AUTH_URL": auth_url,
                "GATEWAY_KEYS_URL": f"http://127.0.0.1:{ports.keys}",
                "GATEWAY_USAGE_URL": f"http://127.0.0.1:{ports.usage}",
                "GATEWAY_WEB_URL": f"http://127.0.0.1:{ports.web}",
            },
        ),
        ProcessSpec(
            "web",
            "owr_web",
            ports.web_admin,
            {
                "WEB_PORT": str(ports.web),
                "WEB_ADMIN_PORT": str(ports.web_admin),
                "WEB_GATEWAY_URL": f"http://127.0.0.1:{ports.gateway}",
                # Pages come through the gateway on this machine: its X-Forwarded-For is believed.
                "WEB_FORWARDED_ALLOW_IPS": "127.0.0.1",
            },
        ),
    ]


def worker_processes(spec: ProcessSpec, count: int) -> list[ProcessSpec]:
    """`count` worker processes of the worker's `spec` (worker1, worker2, ...) sharing its queue: the first
    on the spec's health port, the others on free ones."""
    # Distinct from each other and from the spec's port, which may not be bound yet.
    others = [port for port in free_ports(count) if port != spec.health_port][: count - 1]
    processes = []
    for n, port in enumerate([spec.health_port, *others]):
        env = {**spec.env, "WORKER_PORT": str(port)}
        processes.append(replace(spec, name=f"worker{n + 1}", health_port=port, env=env))
    return processes


def base_env(database_url: str, redis_url: str, environment: str, secrets_dir: Path) -> dict[str, str]:
    # One client secret per run for the worker and the gateway: auth and they read it from the same environment, and
    # service tokens live minutes, so nothing needs it to survive a restart.
    worker_secret = secrets.token_urlsafe(32)
    worker_client = {
        "secret": worker_secret,
        "scopes": [
            "keys:due",
            "keys:reveal",
            "keys:status",
            "usage:ingest",
            "usage:cleanup",
            "alerts:deliver",
            "workspaces:sweep",
            "mail:render",
        ],
        "audiences": ["owr-keys", "owr-usage"],
    }
    # The gateway introspects API tokens at auth with client credentials of its own.
    gateway_secret = secrets.token_urlsafe(32)
    gateway_client = {"secret": gateway_secret, "scopes": ["tokens:introspect"], "audiences": ["owr-auth"]}
    env = dict(os.environ)
    env.update(
        {
            "OWR_ENV": environment,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            **dev_secrets(secrets_dir),
            "AUTH_SERVICE_CLIENTS": json.dumps({"worker": worker_client, "gateway": gateway_client}),
            "GATEWAY_SERVICE_CLIENT_ID": "gateway",
            "GATEWAY_SERVICE_CLIENT_SECRET": gateway_secret,
            "WORKER_SERVICE_CLIENT_ID": "worker",
            "WORKER_SERVICE_CLIENT_SECRET": worker_secret,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextmanager
def infrastructure(stack: ExitStack) -> Iterator[tuple[str, str]]:
    database_url = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres(DATA_DIR / "pg"))
    redis_port = int(os.environ.get("OWR_EMBEDDED_REDIS_PORT", "6390"))
    redis_url = os.environ.get("REDIS_URL") or stack.enter_context(embedded_redis(DATA_DIR / "redis", port=redis_port))
    yield database_url, redis_url


DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "watching every key, every day"  # noqa: S105 - the local demo user, printed for newcomers


def seed_demo_user(ports: Ports) -> list[str]:
    """Sign up the demo user (or sign in again), store the emulator's demo keys and ask for a sync of each.

    Idempotent across restarts: the demo keys are the same every run, so a second run finds them stored.
    Returns the stored keys' ids.
    """
    import httpx

    from tools.emulator.seed import DEMO_KEYS

    credentials = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    with httpx.Client(base_url=f"http://127.0.0.1:{ports.gateway}", timeout=30) as client:
        r = client.post("/api/v1/auth/register", json=credentials)
        if r.status_code not in (201, 409):
            raise RuntimeError(f"demo sign-up failed: {r.status_code}")
        r = client.post("/api/v1/auth/login", json=credentials)
        r.raise_for_status()
        headers = {"authorization": f"Bearer {r.json()['access_token']}"}
        for name, plaintext in DEMO_KEYS.items():
            r = client.post("/api/v1/keys", headers=headers, json={"name": f"demo {name}", "key": plaintext})
            if r.status_code not in (201, 409):
                raise RuntimeError(f"storing the demo key {name!r} failed: {r.status_code}")
        stored = client.get("/api/v1/keys", headers=headers, params={"per_page": 250}).json()["items"]
        ids = [str(item["id"]) for item in stored]
        # The management key first: its account sync links the inference keys and brings their activity.
        stored.sort(key=lambda item: item["name"] != "demo management")
        for item in stored:
            client.post(f"/api/v1/keys/{item['id']}/sync", headers=headers).raise_for_status()
    return ids


def main(argv: list[str] | None = None) -> int:
    import argparse

    from owr_shared.migrate import upgrade
    from tools.supervisor import Supervisor

    parser = argparse.ArgumentParser(prog="python -m tools.devstack")
    parser.add_argument("--demo", action="store_true", help="also run the OpenRouter emulator with demo data")
    demo = parser.parse_args(argv).demo

    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    with ExitStack() as stack, infrastructure(stack) as (database_url, redis_url):
        print("migrating ...", flush=True)
        upgrade(database_url=database_url)
        ports = Ports()
        group = ProcessGroup(base_env(database_url, redis_url, "development", DATA_DIR / "dev-secrets"))
        stack.callback(group.stop)
        openrouter_url = smtp_url = None
        if demo:
            group.start(emulator_spec(ports, seed="demo"))
            openrouter_url = emulator_api_url(ports)
        if not os.environ.get("SMTP_URL"):
            smtp_url = stack.enter_context(MailSink(MAIL_DIR, port=ports.smtp, on_message=announce)).url
        for spec in system_specs(ports, openrouter_url=openrouter_url, smtp_url=smtp_url):
            if demo and spec.name == "web":
                # A newcomer who opens the dashboard is signed in as the demo user at once.
                spec = replace(spec, env={**spec.env, "WEB_DEMO_EMAIL": DEMO_EMAIL, "WEB_DEMO_PASSWORD": DEMO_PASSWORD})
            group.start(spec)
        try:
            group.wait_ready(timeout=90)
            if demo:
                seed_demo_user(ports)
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"start-up failed: {exc}", file=sys.stderr)
            return 1
        mail_line = (
            f"  mail (SMTP sink)   {smtp_url}, each message kept in {MAIL_DIR}/ as an .eml file"
            if smtp_url
            else "  mail               to SMTP_URL (from the environment)"
        )
        print(
            "\nOpenRouter Watcher is running:\n"
            f"  dashboard          http://localhost:{ports.gateway}/ (web, through the gateway)\n"
            f"  API (gateway)      http://localhost:{ports.gateway}/api/v1/\n"
            f"  gateway admin      http://localhost:{ports.gateway_admin}/metrics\n"
            f"  auth, keys, usage  http://localhost:{ports.auth}, :{ports.keys}, :{ports.usage} (API, via the gateway)\n"
            f"    admin            http://localhost:{ports.auth_admin}/metrics, :{ports.keys_admin}, :{ports.usage_admin}\n"
            f"  worker             http://localhost:{ports.worker}/metrics\n"
            f"  web admin          http://localhost:{ports.web_admin}/metrics\n"
            f"{mail_line}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        if demo:  # last, so it is what a newcomer sees
            print(
                "Demo: OpenRouter is the local emulator "
                f"(http://localhost:{ports.emulator}/api/v1), with one account and four keys.\n"
                f"  open http://localhost:{ports.gateway}/ : you are signed in as the demo user ({DEMO_EMAIL} /"
                f" {DEMO_PASSWORD!r}, to sign in again after signing out; README, 'Try the demo')\n",
                flush=True,
            )
        # A child that exits is restarted (tools/supervisor.py), not a reason to stop the others.
        supervisor = Supervisor(group)
        while not stop_requested:
            supervisor.tick()
            time.sleep(0.2)
        supervisor.stopping = True
        print("stopping ...", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
