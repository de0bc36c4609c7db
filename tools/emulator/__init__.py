"""An OpenRouter emulator: a real aiohttp server speaking the part of OpenRouter's API the worker uses.

`python -m tools.emulator --port 8010 [--seed demo]` serves it; tests and benchmarks run it in-process with
`running_emulator()`. The API (`/api/v1`) follows /work/shared/openrouter/CONTRACT.md; the admin surface
(`/_admin`) is described in docs/architecture.md ("The OpenRouter emulator").
"""

from tools.emulator.server import RunningEmulator, build_app, running_emulator
from tools.emulator.state import EmulatorState

__all__ = ["EmulatorState", "RunningEmulator", "build_app", "running_emulator"]
