"""KEK rotation while the service serves: every key keeps opening, then the old KEK can go."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys

from sqlalchemy import text

from owr_keys.app import create_app
from owr_keys.rotate_kek import rotate
from owr_keys.vault.crypto import Vault
from owr_shared.db import create_sessionmaker
from tests.keys.conftest import KEK_V1, KEK_V2, keks_json, new_secret, running, store_key

KEY_COUNT = 24


async def test_rotation_under_load_then_only_the_new_kek(
    client, tenant_factory, service_headers, settings_factory, keyring, db_engine
):
    tenant = tenant_factory()
    secrets_ = {}
    for i in range(KEY_COUNT):
        secret = new_secret()
        secrets_[(await store_key(client, tenant, secret, name=f"k{i}"))["id"]] = secret
    ids = list(secrets_)
    reveal = service_headers("keys:reveal")

    # A request holds one row locked while rotation starts: SKIP LOCKED passes over it, a later pass takes it.
    locked_id = ids[0]
    holder = await db_engine.connect()
    await holder.begin()
    await holder.execute(text("SELECT id FROM keys.openrouter_keys WHERE id = :k FOR UPDATE"), {"k": locked_id})

    settings = settings_factory(active_kek_version="v2")
    rotation = asyncio.create_task(
        rotate(create_sessionmaker(db_engine), Vault.from_settings(settings), batch_size=5, pause_seconds=0.1)
    )
    failures: list[str] = []
    operations = 0

    async def traffic() -> None:
        nonlocal operations
        rng = random.Random(7)
        while not rotation.done() or operations < 40:
            key_id = rng.choice(ids)
            r = await client.post(f"/internal/keys/{key_id}/reveal", headers=reveal)
            if r.status_code != 200 or r.json()["key"] != secrets_[key_id]:
                failures.append(f"reveal {r.status_code}")
            r = await client.get("/api/v1/keys", headers=tenant.headers, params={"per_page": 250})
            if r.status_code != 200 or r.json()["total"] != KEY_COUNT:
                failures.append(f"list {r.status_code}")
            r = await client.patch(f"/api/v1/keys/{key_id}", headers=tenant.headers, json={"name": f"n{operations}"})
            if r.status_code != 200:
                failures.append(f"patch {r.status_code}")
            operations += 1

    async def release_lock_later() -> None:
        await asyncio.sleep(0.3)
        await holder.rollback()
        await holder.close()

    await asyncio.gather(traffic(), release_lock_later())
    report = await rotation
    assert failures == []
    assert report.unreadable == 0
    assert report.remaining == 0
    assert report.rewrapped >= KEY_COUNT
    assert report.passes >= 2  # the locked row was passed over first, then taken

    async with db_engine.connect() as conn:
        versions = (
            await conn.execute(
                text("SELECT DISTINCT kek_version FROM keys.openrouter_keys WHERE workspace_id = :w"),
                {"w": tenant.workspace_id},
            )
        ).all()
    assert [v[0] for v in versions] == ["v2"]

    # The old KEK leaves the configuration: everything still opens.
    only_new = settings_factory(keks=keks_json(v2=KEK_V2), active_kek_version="v2")
    async with running(create_app(only_new, jwks_fetcher=keyring.fetch)) as new_client:
        for key_id, secret in secrets_.items():
            r = await new_client.post(f"/internal/keys/{key_id}/reveal", headers=reveal)
            assert r.status_code == 200, r.text
            assert r.json()["key"] == secret
        # New keys are sealed under the new KEK.
        fresh = new_secret()
        created = await store_key(new_client, tenant, fresh)
        r = await new_client.post(f"/internal/keys/{created['id']}/reveal", headers=reveal)
        assert r.json()["key"] == fresh

    # An app that knows only the old KEK can no longer open the re-wrapped rows, and says so safely.
    only_old = settings_factory(keks=keks_json(v1=KEK_V1), active_kek_version="v1")
    async with running(create_app(only_old, jwks_fetcher=keyring.fetch)) as old_client:
        r = await old_client.post(f"/internal/keys/{ids[1]}/reveal", headers=reveal)
        assert r.status_code == 500
        assert r.json()["type"].endswith("/key-unreadable")
        assert secrets_[ids[1]] not in r.text


async def test_rotation_is_idempotent(settings_factory, db_engine):
    vault = Vault.from_settings(settings_factory(active_kek_version="v2"))
    await rotate(create_sessionmaker(db_engine), vault)
    again = await rotate(create_sessionmaker(db_engine), vault)
    assert (again.rewrapped, again.unreadable, again.remaining) == (0, 0, 0)


def _cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "owr_keys.rotate_kek", "--batch-size", "50"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_prints_counts_only(database_url, client, tenant_factory):
    tenant = tenant_factory()
    secret = new_secret()
    await store_key(client, tenant, secret)  # sealed under v1 by the shared app
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEYS_")}
    env = {**base, "OWR_ENV": "test", "DATABASE_URL": database_url, "LOG_JSON": "true"}
    result = await asyncio.to_thread(
        _cli, {**env, "KEYS_KEKS": keks_json(v1=KEK_V1, v2=KEK_V2), "KEYS_ACTIVE_KEK_VERSION": "v2"}
    )
    assert result.returncode == 0, result.stderr
    counts = result.stdout.strip().splitlines()[-1]
    assert counts.startswith("rewrapped=")
    assert counts.endswith("unreadable=0 remaining=0")
    for stream in (result.stdout, result.stderr):
        assert secret not in stream
        assert KEK_V1 not in stream
        assert KEK_V2 not in stream

    refused = await asyncio.to_thread(_cli, env)
    assert refused.returncode == 2
    assert "KEYS_KEKS" in refused.stderr
