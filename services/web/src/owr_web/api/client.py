"""One HTTP client of the gateway, made in the lifespan; every page's calls go through `Api`.

A call carries the person's access token, their address (`X-Forwarded-For`: the gateway lists web
among its trusted proxies, so per-IP limits and auth's login throttle see the person, never web), their
browser's `User-Agent` (auth lists sessions by it and binds a sign-in's second step to it) and the
request id. Answers become data or one of `api.errors`; a 401 is `SignedOut` (the page sends the
person to sign in again). JSON numbers are read as `Decimal`: money is shown exactly as the API gives it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx

from owr_shared.context import REQUEST_ID_HEADER, request_id_var
from owr_shared.logging import get_logger
from owr_shared.wire import codec
from owr_web.api.errors import ApiProblem, ApiUnavailable, PageNotFound
from owr_web.metrics import API_CALLS
from owr_web.sessions.errors import SignedOut

log = get_logger(__name__)


def read_json(response: httpx.Response) -> Any:
    """The body with every number exact (`Decimal`), as the API sends money."""
    return json.loads(response.content, parse_float=Decimal) if response.content else None


class Api:
    """The public API for one person: `await api.get("/api/v1/keys")`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_ip: str,
        access_token: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._http = http
        self._client_ip = client_ip
        self._user_agent = user_agent
        self.access_token = access_token
        # Called once when the gateway refuses a token that has not expired (the person's role in the
        # workspace was lowered, or they left it): the session's refresh, giving the token to retry with.
        self.renew: Callable[[str], Awaitable[str]] | None = None

    def _headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"x-forwarded-for": self._client_ip, "accept": "application/json"}
        if self._user_agent:
            headers["user-agent"] = self._user_agent
        token = token or self.access_token
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        request_id = request_id_var.get()
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    async def call(
        self, method: str, path: str, *, json_body: Any = None, params: Any = None, token: str | None = None
    ) -> httpx.Response:
        """The raw answer of a call (with `token` rather than the session's when given); transport failures and
        5xx raise `ApiUnavailable` (with the API's `Retry-After` when it gave one). Bodies are written with money
        exact (`Decimal` as a JSON number)."""
        headers = self._headers(token)
        content = None
        if json_body is not None:
            content = codec.dumps(json_body)
            headers["content-type"] = "application/json"
        try:
            response = await self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.HTTPError as exc:
            API_CALLS.labels("unavailable").inc()
            log.warning("api_unreachable", method=method, error_type=type(exc).__name__)
            raise ApiUnavailable() from None
        API_CALLS.labels(str(response.status_code // 100) + "xx").inc()
        if response.status_code >= 500:
            log.warning("api_failed", method=method, status=response.status_code)
            raise ApiUnavailable.after(response.headers.get("retry-after"))
        return response

    async def stream(self, method: str, path: str, *, params: Any = None) -> httpx.Response:
        """An answer whose body is read as it arrives (`aiter_bytes`, decoded); the caller closes it."""
        request = self._http.build_request(method, path, params=params, headers=self._headers())
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            API_CALLS.labels("unavailable").inc()
            log.warning("api_unreachable", method=method, error_type=type(exc).__name__)
            raise ApiUnavailable() from None
        API_CALLS.labels(str(response.status_code // 100) + "xx").inc()
        return response

    async def request(self, method: str, path: str, *, json_body: Any = None, params: Any = None) -> Any:
        """The parsed answer of a call that must succeed; 401, 404 and other refusals raise."""
        response = await self.call(method, path, json_body=json_body, params=params)
        if response.status_code == 401 and self.renew is not None and self.access_token is not None:
            # Refreshed once, then asked again; a second 401 signs the person out.
            self.access_token = await self.renew(self.access_token)
            response = await self.call(method, path, json_body=json_body, params=params)
        if response.status_code == 401:
            raise SignedOut()
        if response.status_code == 404:
            raise PageNotFound()
        if response.status_code >= 400:
            body = read_json(response) if response.headers.get("content-type", "").endswith("json") else None
            retry_after = response.headers.get("retry-after")
            raise ApiProblem(response.status_code, body if isinstance(body, dict) else {}, retry_after=retry_after)
        return read_json(response)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    async def get_optional(self, path: str, **params: Any) -> Any:
        """Like `get`, but None for a 404 (a key that has no figures yet)."""
        try:
            return await self.get(path, **params)
        except PageNotFound:
            return None

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, json_body=body)

    async def patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, json_body=body)

    async def put(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, json_body=body)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    # Budgets, channels and alerts (DESIGN §11). Ids are the API's own, passed back as it gave them.

    async def budgets(self, *, page: int = 1, per_page: int = 100) -> Any:
        return await self.get("/api/v1/budgets", page=page, per_page=per_page)

    async def budget(self, budget_id: str) -> Any:
        return await self.get(f"/api/v1/budgets/{budget_id}")

    async def create_budget(self, body: dict[str, Any]) -> Any:
        return await self.post("/api/v1/budgets", body)

    async def update_budget(self, budget_id: str, body: dict[str, Any]) -> Any:
        return await self.patch(f"/api/v1/budgets/{budget_id}", body)

    async def delete_budget(self, budget_id: str) -> None:
        await self.delete(f"/api/v1/budgets/{budget_id}")

    async def channels(self, *, page: int = 1, per_page: int = 100) -> Any:
        return await self.get("/api/v1/channels", page=page, per_page=per_page)

    async def channel(self, channel_id: str) -> Any:
        return await self.get(f"/api/v1/channels/{channel_id}")

    async def create_channel(self, body: dict[str, Any]) -> Any:
        """The new channel; a webhook's answer carries its `secret`, this once."""
        return await self.post("/api/v1/channels", body)

    async def update_channel(self, channel_id: str, body: dict[str, Any]) -> Any:
        return await self.patch(f"/api/v1/channels/{channel_id}", body)

    async def delete_channel(self, channel_id: str) -> None:
        await self.delete(f"/api/v1/channels/{channel_id}")

    async def rotate_channel_secret(self, channel_id: str) -> Any:
        """The channel with its new `secret`, this once; the old one keeps signing for a day."""
        return await self.post(f"/api/v1/channels/{channel_id}/rotate-secret")

    async def test_channel(self, channel_id: str) -> Any:
        return await self.post(f"/api/v1/channels/{channel_id}/test")

    async def resend_channel_confirmation(self, channel_id: str) -> Any:
        """Another confirmation email to an email channel whose address has not confirmed yet."""
        return await self.post(f"/api/v1/channels/{channel_id}/resend-confirmation")

    async def deliveries(self, channel_id: str, *, page: int = 1, per_page: int = 50) -> Any:
        return await self.get(f"/api/v1/channels/{channel_id}/deliveries", page=page, per_page=per_page)

    async def retry_delivery(self, channel_id: str, delivery_id: str) -> Any:
        return await self.post(f"/api/v1/channels/{channel_id}/deliveries/{delivery_id}/retry")

    async def alerts(self, *, page: int = 1, per_page: int = 50) -> Any:
        return await self.get("/api/v1/alerts", page=page, per_page=per_page)

    async def alert_rules(self) -> Any:
        return await self.get("/api/v1/alert-rules")

    async def put_alert_rules(self, body: Any) -> Any:
        return await self.put("/api/v1/alert-rules", body)
