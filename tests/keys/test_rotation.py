"""KEK rotation while the service serves: every key keeps opening, then the old KEK can go."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import subprocess
import sys
import uuid

from sqlalchemy import text

from owr_keys.app import create_app
from owr_keys.rotate_kek import rotate
from owr_keys.vault.crypto import SealedSecret, Vault
from owr_keys.vault.errors import KeyUnreadable
from owr_shared.db import create_sessionmaker
from tests.keys.conftest import BOTH_KEKS, KEK_NEW, KEK_OLD, NEW_VERSION, OLD_VERSION, keks_json, new_secret, store_key
from tests.support.apps import running

KEY_COUNT = 24


async def _foreign_rows(db_engine) -> int:
    """Rows the tests' KEKs cannot open: sealed by other processes on this database (the e2e system's keys)."""
    vault = Vault({OLD_VERSION: base64.b64decode(KEK_OLD), NEW_VERSION: base64.b64decode(KEK_NEW)}, NEW_VERSION)
    async with db_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, workspace_id, ciphertext, nonce, wrapped_dek, dek_nonce, kek_version"
                    " FROM keys.openrouter_keys"
                )
            )
        ).all()
    foreign = 0
    for row in rows:
        sealed = SealedSecret(row.ciphertext, row.nonce, row.wrapped_dek, row.dek_nonce, row.kek_version)
        try:
            vault.open(sealed, workspace_id=row.workspace_id, key_id=row.id)
        except KeyUnreadable:
            foreign += 1
    return foreign


async def test_rotation_under_load_then_only_the_new_kek(
    committed_client, tenant_factory, service_headers, settings_factory, keyring, db_engine
):
    tenant = tenant_factory()
    secrets_ = {}
    for i in range(KEY_COUNT):
        secret = new_secret()
        secrets_[(await store_key(committed_client, tenant, secret, name=f"k{i}"))["id"]] = secret
    ids = list(secrets_)
    reveal = service_headers("keys:reveal")

    # A request holds one row locked while rotation starts: SKIP LOCKED passes over it, a later pass takes it.
    locked_id = ids[0]
    holder = await db_engine.connect()
    await holder.begin()
    await holder.execute(text("SELECT id FROM keys.openrouter_keys WHERE id = :k FOR UPDATE"), {"k": locked_id})

    settings = settings_factory(active_kek_version=NEW_VERSION)
    rotation = asyncio.create_task(
        rotate(
            create_sessionmaker(db_engine, walled=True),
            Vault.from_settings(settings),
            batch_size=5,
            max_passes=600,
            pause_seconds=0.05,
        )
    )
    failures: list[str] = []
    operations = 0

    async def traffic() -> None:
        nonlocal operations
        rng = random.Random(7)
        while not rotation.done() or operations < 40:
            key_id = rng.choice(ids)
            r = await committed_client.post(f"/internal/keys/{key_id}/reveal", headers=reveal)
            if r.status_code != 200 or r.json()["key"] != secrets_[key_id]:
                failures.append(f"reveal {r.status_code}")
            r = await committed_client.get("/api/v1/keys", headers=tenant.headers, params={"per_page": 250})
            if r.status_code != 200 or r.json()["total"] != KEY_COUNT:
                failures.append(f"list {r.status_code}")
            r = await committed_client.patch(
                f"/api/v1/keys/{key_id}", headers=tenant.headers, json={"name": f"n{operations}"}
            )
            if r.status_code != 200:
                failures.append(f"patch {r.status_code}")
            operations += 1

    async def release_lock_after_the_first_pass() -> None:
        # Every other row of the tenant re-wrapped while this one stayed locked: it was passed over.
        for _ in range(600):
            async with db_engine.connect() as conn:
                done = await conn.scalar(
                    text("SELECT count(*) FROM keys.openrouter_keys WHERE workspace_id = :w AND kek_version = :v"),
                    {"w": tenant.workspace_id, "v": NEW_VERSION},
                )
            if done == KEY_COUNT - 1 or rotation.done():
                break
            await asyncio.sleep(0.05)
        await holder.rollback()
        await holder.close()

    await asyncio.gather(traffic(), release_lock_after_the_first_pass())
    report = await rotation
    assert failures == []
    assert report.rewrapped >= KEY_COUNT
    assert report.passes >= 2  # the locked row was passed over first, then taken
    # Rows sealed under KEKs this configuration lacks (other processes' ephemeral ones) are all that remain.
    assert report.remaining == report.unreadable == await _foreign_rows(db_engine)

    async with db_engine.connect() as conn:
        versions = (
            await conn.execute(
                text("SELECT DISTINCT kek_version FROM keys.openrouter_keys WHERE workspace_id = :w"),
                {"w": tenant.workspace_id},
            )
        ).all()
    assert [v[0] for v in versions] == [NEW_VERSION]

    # The old KEK leaves the configuration: everything still opens.
    only_new = settings_factory(keks=keks_json({NEW_VERSION: KEK_NEW}), active_kek_version=NEW_VERSION)
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
    only_old = settings_factory(keks=keks_json({OLD_VERSION: KEK_OLD}), active_kek_version=OLD_VERSION)
    async with running(create_app(only_old, jwks_fetcher=keyring.fetch)) as old_client:
        r = await old_client.post(f"/internal/keys/{ids[1]}/reveal", headers=reveal)
        assert r.status_code == 500
        assert r.json()["type"].endswith("/key-unreadable")
        assert secrets_[ids[1]] not in r.text


async def test_rotation_is_idempotent(settings_factory, db_engine):
    vault = Vault.from_settings(settings_factory(active_kek_version=NEW_VERSION))
    await rotate(create_sessionmaker(db_engine, walled=True), vault)
    again = await rotate(create_sessionmaker(db_engine, walled=True), vault, max_passes=1)
    foreign = await _foreign_rows(db_engine)
    assert (again.rewrapped, again.unreadable, again.remaining) == (0, foreign, foreign)


def _cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "owr_keys.rotate_kek", "--batch-size", "50"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_prints_counts_only(database_url, committed_client, tenant_factory, db_engine):
    tenant = tenant_factory()
    secret = new_secret()
    key = await store_key(committed_client, tenant, secret)  # sealed under the old KEK by the shared app
    foreign = await _foreign_rows(db_engine)
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEYS_")}
    env = {**base, "OWR_ENV": "test", "DATABASE_URL": database_url, "LOG_JSON": "true"}
    result = await asyncio.to_thread(
        _cli, {**env, "KEYS_KEKS": keks_json(BOTH_KEKS), "KEYS_ACTIVE_KEK_VERSION": NEW_VERSION}
    )
    assert result.returncode == (0 if foreign == 0 else 1), result.stderr
    counts = dict(item.split("=") for item in result.stdout.strip().splitlines()[-1].split())
    assert set(counts) == {"rewrapped", "unreadable", "remaining"}
    assert int(counts["rewrapped"]) >= 1
    assert int(counts["unreadable"]) == int(counts["remaining"]) == foreign
    async with db_engine.connect() as conn:
        version = await conn.scalar(
            text("SELECT kek_version FROM keys.openrouter_keys WHERE id = :k"), {"k": key["id"]}
        )
    assert version == NEW_VERSION
    for stream in (result.stdout, result.stderr):
        assert secret not in stream
        assert KEK_OLD not in stream
        assert KEK_NEW not in stream

    refused = await asyncio.to_thread(_cli, env)
    assert refused.returncode == 2
    assert "KEYS_KEKS" in refused.stderr


async def test_rotation_counts_rows_it_cannot_open_and_leaves_them(settings_factory, db_engine, tenant_factory):
    tenant = tenant_factory()
    workspace_id, key_id = uuid.UUID(tenant.workspace_id), uuid.uuid4()
    sealed = Vault({"lost": os.urandom(32)}, "lost").seal(new_secret(), workspace_id=workspace_id, key_id=key_id)
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO keys.openrouter_keys (id, workspace_id, name, label, fingerprint, ciphertext, nonce,"
                " wrapped_dek, dek_nonce, kek_version) VALUES (:id, :w, 'lost', 'sk-or-v1-abc...xyz', :fp, :c, :n,"
                " :d, :dn, 'lost')"
            ),
            {
                "id": key_id,
                "w": workspace_id,
                "fp": os.urandom(32),
                "c": sealed.ciphertext,
                "n": sealed.nonce,
                "d": sealed.wrapped_dek,
                "dn": sealed.dek_nonce,
            },
        )
    try:
        foreign = await _foreign_rows(db_engine)
        report = await rotate(
            create_sessionmaker(db_engine, walled=True),
            Vault.from_settings(settings_factory(active_kek_version=NEW_VERSION)),
        )
        assert report.unreadable == foreign >= 1
        assert report.remaining == foreign
        async with db_engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT kek_version, wrapped_dek FROM keys.openrouter_keys WHERE id = :k"), {"k": key_id}
                )
            ).one()
        assert row.kek_version == "lost"
        assert bytes(row.wrapped_dek) == sealed.wrapped_dek
    finally:
        async with db_engine.begin() as conn:
            await conn.execute(text("DELETE FROM keys.openrouter_keys WHERE id = :k"), {"k": key_id})
