"""Keep the dev runner's children running: a child that exits is started again rather than taking the
whole system down with it.

Each restart waits a backoff (doubling from `base_seconds` up to `cap_seconds`, with jitter), and a child
is restarted at most `max_per_minute` times in any minute, so one that can never start waits between
tries instead of spinning. A child that stayed up `stable_seconds` starts its backoff afresh. Every exit
and restart is logged.
"""

from __future__ import annotations

import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tools.devstack import ProcessGroup, ProcessSpec

WINDOW_SECONDS = 60.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RestartPolicy:
    base_seconds: float = 1.0
    cap_seconds: float = 30.0
    max_per_minute: int = 5
    stable_seconds: float = 60.0


@dataclass
class _Child:
    started_at: float
    quick_exits: int = 0
    restarts: deque[float] = field(default_factory=deque)
    due: float | None = None
    spec: ProcessSpec | None = None


class Supervisor:
    """Call `tick()` every fraction of a second; it notices exited children and restarts them when due."""

    def __init__(
        self,
        group: ProcessGroup,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        log: Callable[[str], None] = _stderr,
    ) -> None:
        self.group = group
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._rand = rand
        self._log = log
        self._children: dict[str, _Child] = {}
        self.stopping = False

    def restart_count(self, name: str) -> int:
        child = self._children.get(name)
        return len(child.restarts) if child else 0

    def waiting(self) -> list[str]:
        """The children that exited and wait for their restart."""
        return [name for name, child in self._children.items() if child.due is not None]

    def tick(self) -> None:
        now = self._clock()
        for proc in list(self.group.running):
            name = proc.spec.name
            child = self._children.setdefault(name, _Child(started_at=now))
            code = proc.popen.poll()
            if code is None:
                continue
            self.group.running.remove(proc)
            delay = self._delay(child, now)
            child.due, child.spec = now + delay, proc.spec
            self._log(f"{name} exited with status {code}; restarting it in {delay:.1f} s")
        for name, child in self._children.items():
            if child.due is None or child.spec is None or now < child.due or self.stopping:
                continue
            self.group.start(child.spec)
            child.started_at, child.due = now, None
            child.restarts.append(now)
            _trim(child, now)
            self._log(f"{name} restarted ({len(child.restarts)} in the last minute)")

    def _delay(self, child: _Child, now: float) -> float:
        policy = self.policy
        if now - child.started_at >= policy.stable_seconds:
            child.quick_exits = 0
        child.quick_exits += 1
        exponent = min(child.quick_exits - 1, 32)
        # Half fixed, half random: never a restart at once, and children that fail together spread out.
        delay = min(policy.cap_seconds, policy.base_seconds * 2.0**exponent) * (0.5 + self._rand() / 2)
        _trim(child, now)
        if len(child.restarts) >= policy.max_per_minute:
            # The minute's restarts are spent: wait until the oldest of them leaves the window.
            delay = max(delay, child.restarts[-policy.max_per_minute] + WINDOW_SECONDS - now)
        return delay


def _trim(child: _Child, now: float) -> None:
    while child.restarts and child.restarts[0] <= now - WINDOW_SECONDS:
        child.restarts.popleft()
