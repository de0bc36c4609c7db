"""Deliveries to user-given URLs: checked addresses, pinned connections, no redirects (issue 15, item 5)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from aiohttp import web

from owr_worker.outbound import Outbound, OutboundRefused, refused_class
from owr_worker.settings import WorkerSettings


def outbound(environment: str = "production", **overrides: Any) -> Outbound:
    values: dict[str, Any] = {"OWR_ENV": environment, "service_client_secret": "s" * 40, **overrides}
    if environment == "production":
        values["service_client_secret"] = "Zq8" + "x7Lm" * 10
    return Outbound(WorkerSettings.model_validate(values))


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("fd00::1", "private"),  # unique local
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "an IPv4-mapped IPv6 address"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_every_non_public_class_is_named(address: str, why: str) -> None:
    assert refused_class(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254, the metadata service
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo whose client is 10.0.0.1
        "fec0::1",  # deprecated site-local
    ],
)
def test_ipv6_forms_of_a_non_public_address_are_refused(address: str) -> None:
    assert refused_class(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_class(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/hook",  # plain http in production
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/hook",
        "https://localhost/hook",  # a name that resolves to a loopback address
        "https://user:pw@93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
        "https://no-such-host.invalid/hook",
    ],
)
async def test_production_refuses(url: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        await outbound().target(url)
    assert "127.0.0.1" not in refused.value.reason  # a reason, never the address


async def test_an_allowed_host_may_be_private() -> None:
    allowed = outbound(outbound_allow_hosts="localhost, hooks.internal")
    host, port, addresses = await allowed.target("https://localhost:8443/hook")
    assert (host, port) == ("localhost", 8443)
    assert all(address.is_loopback for address in addresses)


async def test_development_calls_a_loopback_receiver_and_follows_no_redirect() -> None:
    seen: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=200, text="ok")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        client = outbound("test")
        answer = await client.post(f"http://localhost:{port}/hook", b'{"a": 1}', {"content-type": "application/json"})
        assert answer.status == 200
        assert seen == [b'{"a": 1}']
        redirected = await client.post(f"http://127.0.0.1:{port}/moved", b"{}", {})
        assert redirected.status == 302  # answered as is: a redirect is never followed
        with pytest.raises(OutboundRefused):
            await client.post("http://10.0.0.1/hook", b"{}", {})  # only loopback is allowed in test
    finally:
        await runner.cleanup()
