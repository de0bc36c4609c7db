"""Many requests' Lua calls pipelined over one dedicated Redis connection, each still one atomic EVALSHA."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


class ScriptBatcher:
    """Pipeline the script calls of concurrent requests over one dedicated Redis connection.

    Each call is still one atomic EVALSHA; batching only shares the socket writes and reads. It
    also skips redis-py's per-command pool checkout (a lock, a liveness poll and a timer) and its
    generic argument encoding, which together cost more than the Lua script itself. While one
    batch is in flight the next one gathers.
    """

    def __init__(self, redis: Redis, script: Any, *, timeout: float) -> None:
        self._redis = redis
        self._script = script
        self._timeout = timeout
        self._connection: Any = None
        self._pending: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        sha = bulk(script.sha.encode())
        # `EVALSHA sha numkeys key... arg...`, with everything but the keys and args precomputed.
        self.prefix_one_key = b"*5\r\n$7\r\nEVALSHA\r\n" + sha + bulk(b"1")
        self.prefix_two_keys = b"*7\r\n$7\r\nEVALSHA\r\n" + sha + bulk(b"2")
        self.prefix_three_keys = b"*8\r\n$7\r\nEVALSHA\r\n" + sha + bulk(b"3")
        self.prefix_four_keys = b"*9\r\n$7\r\nEVALSHA\r\n" + sha + bulk(b"4")
        self.prefix_one_key_eight_args = b"*12\r\n$7\r\nEVALSHA\r\n" + sha + bulk(b"1")

    def call(self, command: bytes) -> asyncio.Future[Any]:
        """Queue one packed EVALSHA command; the future gets its reply (or the batch's error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start)  # after this loop iteration's other requests have queued
        return future

    def _start(self) -> None:
        task = asyncio.ensure_future(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                error = await self._run(batch)
                if error is not None:
                    # Whoever queued meanwhile would wait for the same failure: fail them now, so a
                    # request never waits longer than one timeout; the caller's breaker takes over.
                    batch, self._pending = self._pending, []
                    _fail(batch, error)
        finally:
            self._busy = False

    async def _execute(self, commands: list[bytes]) -> list[Any]:
        connection = self._connection
        if connection is None:
            pool: Any = self._redis.connection_pool
            # Same server, credentials and connect timeout as the pool, but no per-read timer: the
            # whole batch runs under one deadline below, which is much cheaper than one per reply.
            connection = self._connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        try:
            async with asyncio.timeout(self._timeout):
                await connection.send_packed_command(commands, check_health=False)
                results: list[Any] = []
                for _ in commands:
                    try:
                        results.append(await connection.read_response())
                    except ResponseError as exc:  # one call's error; the connection is still in sync
                        results.append(exc)
        except BaseException:
            await connection.disconnect(nowait=True)  # replies may be half read: never reuse it
            raise
        return results

    async def _run(self, batch: list[tuple[bytes, asyncio.Future[Any]]]) -> Exception | None:
        try:
            results = await self._execute([command for command, _ in batch])
            missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:  # Redis restarted or its script cache was flushed: load once, redo those calls
                async with asyncio.timeout(self._timeout):
                    await self._redis.script_load(self._script.script)
                redone = await self._execute([batch[i][0] for i in missing])
                for i, result in zip(missing, redone, strict=True):
                    results[i] = result
        except Exception as exc:
            _fail(batch, exc)
            return exc
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        return None

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        _fail(self._pending, ConnectionError("rate limiter closed"))
        self._pending = []
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None


def _fail(batch: list[tuple[bytes, asyncio.Future[Any]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
