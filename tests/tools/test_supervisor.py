"""The dev runner's supervisor: a child that exits is restarted after a growing, jittered backoff, at most
`max_per_minute` times a minute; a healthy child is left alone; stopping the group stops everything."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tools.devstack import ProcessGroup, ProcessSpec
from tools.supervisor import RestartPolicy, Supervisor

CRASHING = ProcessSpec("crashing", "tests.tools.child", 0, args=["exit", "3"])
HEALTHY = ProcessSpec("healthy", "tests.tools.child", 0, args=["sleep"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_exited(group: ProcessGroup, name: str) -> None:
    proc = group.find(name)
    deadline = time.monotonic() + 10
    while proc.popen.poll() is None:
        assert time.monotonic() < deadline, f"{name} did not exit"
        time.sleep(0.02)


def restart_delay(logs: list[str]) -> float:
    """The delay the last "exited ...; restarting it in <s> s" line announced."""
    return float(logs[-1].rsplit(" in ", 1)[1].split()[0])


def test_a_crashing_child_is_restarted_with_backoff_and_a_cap_per_minute(tmp_path: Path) -> None:
    group = ProcessGroup(dict(os.environ), log_dir=tmp_path)
    clock, logs = FakeClock(), list[str]()
    policy = RestartPolicy(base_seconds=1, cap_seconds=8, max_per_minute=3, stable_seconds=60)
    supervisor = Supervisor(group, policy, clock=clock, rand=lambda: 1.0, log=logs.append)
    group.start(CRASHING)
    group.start(HEALTHY)
    healthy_pid = group.find("healthy").popen.pid
    try:
        delays = []
        for _ in range(4):
            wait_exited(group, "crashing")
            supervisor.tick()
            assert supervisor.waiting() == ["crashing"]
            assert "crashing exited with status 3; restarting it in" in logs[-1]
            delay = restart_delay(logs)
            delays.append(delay)
            clock.now += delay - 0.1
            supervisor.tick()  # not due yet
            assert supervisor.waiting() == ["crashing"]
            clock.now += 0.1
            supervisor.tick()
            assert supervisor.waiting() == []
            assert logs[-1].startswith("crashing restarted")
        # Doubling from 1 s (rand=1 is the top of the jitter); the fourth waits for the minute's three restarts
        # to age: the first of them was at 1001 s, so not before 1061 s, though its backoff alone was 8 s.
        assert delays[:3] == [1.0, 2.0, 4.0]
        assert delays[3] == 1061.0 - (1000.0 + 1 + 2 + 4)
        assert supervisor.restart_count("crashing") == 3
        # The healthy child was never touched.
        assert group.find("healthy").popen.pid == healthy_pid
        assert group.find("healthy").popen.poll() is None
    finally:
        group.stop(timeout=5)
    assert group.running == []
    assert (tmp_path / "crashing.log").exists()


def test_backoff_starts_afresh_after_a_stable_run_and_is_jittered(tmp_path: Path) -> None:
    group = ProcessGroup(dict(os.environ), log_dir=tmp_path)
    clock, logs = FakeClock(), list[str]()
    policy = RestartPolicy(base_seconds=2, cap_seconds=30, max_per_minute=10, stable_seconds=60)
    supervisor = Supervisor(group, policy, clock=clock, rand=lambda: 0.0, log=logs.append)
    group.start(CRASHING)
    try:
        delays = []
        for advance_after_restart in (0.0, 0.0, 120.0):
            wait_exited(group, "crashing")
            clock.now += advance_after_restart
            supervisor.tick()
            delay = restart_delay(logs)
            delays.append(delay)
            clock.now += delay
            supervisor.tick()
        # rand=0 is the bottom of the jitter: half the backoff. After 120 s up, the third starts from 2 s again.
        assert delays == [1.0, 2.0, 1.0]
    finally:
        group.stop(timeout=5)


def test_no_restart_once_stopping(tmp_path: Path) -> None:
    group = ProcessGroup(dict(os.environ), log_dir=tmp_path)
    clock = FakeClock()
    supervisor = Supervisor(group, RestartPolicy(base_seconds=1), clock=clock, log=lambda _: None)
    group.start(CRASHING)
    try:
        wait_exited(group, "crashing")
        supervisor.tick()
        supervisor.stopping = True
        clock.now += 60
        supervisor.tick()
        assert group.running == []
    finally:
        group.stop(timeout=5)
