"""`python -m tools.deploy_check` (`make deploy-check`): every checker in turn, one line each, then the count."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

import tools.deploy_check
from tools.deploy_check.common import CheckFailed
from tools.deploy_check.compose import check_compose
from tools.deploy_check.images import check_images
from tools.deploy_check.kubernetes import check_kubernetes
from tools.deploy_check.metrics import check_metrics_named, check_workspace_dashboard
from tools.deploy_check.prometheus import check_prometheus


@dataclass
class Report:
    passed: int = 0
    failed: list[str] = field(default_factory=list)

    def run(self, name: str, check: Callable[[], str]) -> None:
        try:
            detail = check()
        except CheckFailed as exc:
            self.failed.append(name)
            print(f"FAIL {name}\n  " + str(exc).replace("\n", "\n  "), flush=True)
        else:
            self.passed += 1
            print(f"ok   {name}: {detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.deploy_check", description=tools.deploy_check.__doc__.split("\n")[0]
    )
    parser.add_argument("--write", action="store_true", help="regenerate the PrometheusRule from alerts.yml")
    args = parser.parse_args(argv)
    report = Report()
    report.run("hadolint", check_images)
    report.run("compose", check_compose)
    report.run("prometheus", lambda: check_prometheus(args.write))
    report.run("kubernetes", check_kubernetes)
    report.run("dashboard and alert metrics", check_metrics_named)
    report.run("workspace dashboard metrics", check_workspace_dashboard)
    print(f"deploy-check: {report.passed} passed, {len(report.failed)} failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
