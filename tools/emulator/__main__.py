"""`python -m tools.emulator --host 127.0.0.1 --port 8010 [--seed demo]`: serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from tools.emulator.server import SEEDS, running_emulator


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m tools.emulator", description="An OpenRouter API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010, help="0 picks a free port")
    parser.add_argument("--seed", choices=SEEDS, help="start with demo data instead of an empty world")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.seed))


async def _serve(host: str, port: int, seed: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_emulator(host, port, seed=seed) as emu:
        seeded = f"; seeded account {emu.seed.account_id}" if emu.seed else ""
        # One line, no keys: demo plaintexts are importable from tools.emulator.seed.DEMO_KEYS.
        print(
            f"OpenRouter emulator listening on {emu.url} (API {emu.base_url}, admin {emu.admin_url}{seeded})",
            flush=True,
        )
        await stop.wait()


if __name__ == "__main__":
    main()
