"""A small client for the emulator's admin surface (docs/architecture.md, "The OpenRouter emulator")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx


class EmulatorAdmin:
    """Drives the emulator's world: accounts, keys, spend, the clock, faults, and its ground truth."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=f"{url}/_admin", timeout=10)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = await self.http.request(method, path, json=body)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    async def set_clock(self, now: datetime) -> datetime:
        body = await self._call("POST", "/clock", {"now": now.isoformat()})
        return datetime.fromisoformat(body["now"])

    async def account(self, total_credits: str) -> str:
        body = await self._call("POST", "/accounts", {"total_credits": total_credits}, expect=201)
        return str(body["id"])

    async def key(self, account: str, kind: str, **fields: Any) -> dict[str, Any]:
        body = await self._call("POST", f"/accounts/{account}/keys", {"kind": kind, **fields}, expect=201)
        (item,) = body["items"]
        return dict(item)

    async def keys(self, account: str, kind: str, count: int) -> list[dict[str, Any]]:
        """`count` new keys of the account at once (their plaintexts exist only in this answer)."""
        body = await self._call("POST", f"/accounts/{account}/keys", {"kind": kind, "count": count}, expect=201)
        return [dict(item) for item in body["items"]]

    async def events(self, events: list[dict[str, Any]]) -> None:
        await self._call("POST", "/events", {"events": events}, expect=201)

    async def revoke(self, key_hash: str) -> None:
        await self._call("POST", f"/keys/{key_hash}/revoke", expect=204)

    async def key_state(self, key_hash: str) -> dict[str, Any]:
        """The key as `/keys` shows it, with its kind: what a `PATCH /keys/{hash}` left."""
        return dict(await self._call("GET", f"/keys/{key_hash}"))

    async def faults(self, **faults: Any) -> None:
        await self._call("PUT", "/faults", faults)

    async def clear_faults(self) -> None:
        await self.http.delete("/faults")

    async def truth(self, account: str) -> dict[str, Any]:
        r = await self.http.get("/truth", params={"account": account})
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def stats(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/stats"))


@asynccontextmanager
async def fault_free_emulator(url: str) -> AsyncIterator[EmulatorAdmin]:
    """An admin client of the emulator at `url`, with no faults injected before or after the test."""
    admin = EmulatorAdmin(url)
    try:
        await admin.clear_faults()
        yield admin
        await admin.clear_faults()
    finally:
        await admin.aclose()
