"""Envelope encryption: sealing, binding to workspace and key id, KEK versions, redaction, tampering."""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from owr_keys.keys.models import OpenRouterKey
from owr_keys.settings import KeysSettings
from owr_keys.vault.crypto import Fingerprinter, SealedSecret, Vault
from owr_keys.vault.errors import KeyUnreadable
from tests.keys.conftest import new_secret, store_key
from tests.support.db import savepoint
from tests.support.http import assert_problem

WS, KEY = uuid.uuid4(), uuid.uuid4()


def _vault(**versions: bytes) -> Vault:
    keks = versions or {"v1": os.urandom(32)}
    return Vault(keks, next(iter(keks)))


def test_seal_and_open_round_trip_with_fresh_dek_and_nonce():
    vault = _vault()
    secret = new_secret()
    a = vault.seal(secret, workspace_id=WS, key_id=KEY)
    b = vault.seal(secret, workspace_id=WS, key_id=KEY)
    assert vault.open(a, workspace_id=WS, key_id=KEY) == secret
    assert a.ciphertext != b.ciphertext
    assert a.nonce != b.nonce
    assert a.wrapped_dek != b.wrapped_dek
    assert len(a.nonce) == 12
    assert len(a.dek_nonce) == 12
    assert len(a.ciphertext) == len(secret) + 16  # GCM tag
    assert len(a.wrapped_dek) == 32 + 16
    assert secret.encode() not in a.ciphertext
    assert a.kek_version == "v1"


def test_ciphertext_is_bound_to_workspace_and_key_id():
    vault = _vault()
    sealed = vault.seal(new_secret(), workspace_id=WS, key_id=KEY)
    for workspace_id, key_id in ((uuid.uuid4(), KEY), (WS, uuid.uuid4())):
        with pytest.raises(KeyUnreadable):
            vault.open(sealed, workspace_id=workspace_id, key_id=key_id)


def test_tampered_parts_do_not_open():
    vault = _vault()
    sealed = vault.seal(new_secret(), workspace_id=WS, key_id=KEY)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    other = vault.seal(new_secret(), workspace_id=WS, key_id=KEY)
    variants = [
        SealedSecret(flipped, sealed.nonce, sealed.wrapped_dek, sealed.dek_nonce, "v1"),
        SealedSecret(sealed.ciphertext, os.urandom(12), sealed.wrapped_dek, sealed.dek_nonce, "v1"),
        SealedSecret(sealed.ciphertext, sealed.nonce, other.wrapped_dek, other.dek_nonce, "v1"),
        SealedSecret(sealed.ciphertext, sealed.nonce, sealed.wrapped_dek, os.urandom(12), "v1"),
        SealedSecret(sealed.ciphertext, sealed.nonce, sealed.wrapped_dek, sealed.dek_nonce, "v9"),
        SealedSecret(sealed.ciphertext[:5], sealed.nonce, sealed.wrapped_dek, sealed.dek_nonce, "v1"),
    ]
    for variant in variants:
        with pytest.raises(KeyUnreadable) as caught:
            vault.open(variant, workspace_id=WS, key_id=KEY)
        # The error carries no cause with data: neither a chained InvalidTag nor any bytes.
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__ or caught.value.__context__ is None
        assert caught.value.status == 500
        assert caught.value.slug == "key-unreadable"


def test_a_wrong_kek_under_the_same_version_does_not_open():
    sealed = _vault(v1=os.urandom(32)).seal(new_secret(), workspace_id=WS, key_id=KEY)
    with pytest.raises(KeyUnreadable):
        _vault(v1=os.urandom(32)).open(sealed, workspace_id=WS, key_id=KEY)


def test_the_kek_version_is_bound_into_the_wrapped_dek():
    same = os.urandom(32)
    vault = Vault({"v1": same, "v2": same}, "v1")
    sealed = vault.seal(new_secret(), workspace_id=WS, key_id=KEY)
    relabelled = SealedSecret(sealed.ciphertext, sealed.nonce, sealed.wrapped_dek, sealed.dek_nonce, "v2")
    with pytest.raises(KeyUnreadable):
        vault.open(relabelled, workspace_id=WS, key_id=KEY)


def test_rewrap_changes_only_the_wrapping():
    old, new = os.urandom(32), os.urandom(32)
    secret = new_secret()
    sealed = Vault({"old": old}, "old").seal(secret, workspace_id=WS, key_id=KEY)
    rewrapped = Vault({"old": old, "new": new}, "new").rewrap(sealed, workspace_id=WS, key_id=KEY)
    assert rewrapped.kek_version == "new"
    assert (rewrapped.ciphertext, rewrapped.nonce) == (sealed.ciphertext, sealed.nonce)
    assert rewrapped.wrapped_dek != sealed.wrapped_dek
    assert Vault({"new": new}, "new").open(rewrapped, workspace_id=WS, key_id=KEY) == secret
    with pytest.raises(KeyUnreadable):
        Vault({"new": new}, "new").open(sealed, workspace_id=WS, key_id=KEY)


def test_reprs_never_show_key_material():
    secret = new_secret()
    kek = os.urandom(32)
    vault = Vault({"v1": kek}, "v1")
    sealed = vault.seal(secret, workspace_id=WS, key_id=KEY)
    row = OpenRouterKey(
        id=KEY,
        workspace_id=WS,
        name="n",
        label="sk-or-v1-abc...xyz",
        fingerprint=Fingerprinter(os.urandom(32))(secret, workspace_id=WS),
        ciphertext=sealed.ciphertext,
        nonce=sealed.nonce,
        wrapped_dek=sealed.wrapped_dek,
        dek_nonce=sealed.dek_nonce,
        kek_version="v1",
    )
    texts = [repr(sealed), str(sealed), repr(row), repr(row.sealed), repr(vault), repr(Fingerprinter(kek))]
    for shown in texts:
        for material in (sealed.ciphertext, sealed.wrapped_dek, sealed.nonce, kek, row.fingerprint):
            assert repr(material) not in shown
            assert material.hex() not in shown
        assert secret not in shown
    assert "ciphertext=***" in repr(row)
    assert "wrapped_dek=***" in repr(row)
    assert "fingerprint=***" in repr(row)


def test_fingerprints_are_keyed_and_per_workspace():
    key = os.urandom(32)
    secret = new_secret()
    fp = Fingerprinter(key)
    assert fp(secret, workspace_id=WS) == fp(secret, workspace_id=WS)
    assert fp(secret, workspace_id=WS) != fp(secret, workspace_id=uuid.uuid4())
    assert fp(secret, workspace_id=WS) != Fingerprinter(os.urandom(32))(secret, workspace_id=WS)
    assert len(fp(secret, workspace_id=WS)) == 32


# --- settings ---------------------------------------------------------------------------------------


def _b64(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def test_settings_validate_keks():
    good = json.dumps({"v1": _b64(32), "v2": _b64(32)})
    settings = KeysSettings(OWR_ENV="test", keks=good, active_kek_version="v2")
    assert set(settings.kek_map()) == {"v1", "v2"}
    urlsafe = json.dumps({"v1": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")})
    assert len(KeysSettings(OWR_ENV="test", keks=urlsafe, active_kek_version="v1").kek_map()["v1"]) == 32
    bad: list[tuple[dict[str, Any], str]] = [
        ({"keks": good, "active_kek_version": "v3"}, "does not contain"),
        ({"keks": good}, "required"),
        ({"keks": json.dumps({"v1": _b64(16)}), "active_kek_version": "v1"}, "32 bytes"),
        ({"keks": json.dumps({"v1": _b64(33)}), "active_kek_version": "v1"}, "32 bytes"),
        ({"keks": json.dumps({"v1": "not base64!"}), "active_kek_version": "v1"}, "base64"),
        ({"keks": "not json", "active_kek_version": "v1"}, "JSON"),
        ({"keks": "{}", "active_kek_version": "v1"}, "non-empty"),
        ({"keks": json.dumps({"bad version!": _b64(32)}), "active_kek_version": "v1"}, "versions"),
        ({"fingerprint_key": _b64(16)}, "at least 32"),
    ]
    for values, message in bad:
        with pytest.raises(ValidationError) as caught:
            KeysSettings(OWR_ENV="test", **values)
        errors = caught.value.errors(include_input=False)
        assert any(message in e["msg"] for e in errors), errors
        for error in errors:  # messages name the problem, never the key material
            for v in values.values():
                if len(v) > 20:
                    assert v not in error["msg"]


def test_settings_come_from_keys_prefixed_environment_variables(monkeypatch):
    keks = json.dumps({"2026-01": _b64(32)})
    monkeypatch.setenv("OWR_ENV", "production")
    monkeypatch.setenv("KEYS_KEKS", keks)
    monkeypatch.setenv("KEYS_ACTIVE_KEK_VERSION", "2026-01")
    monkeypatch.setenv("KEYS_FINGERPRINT_KEY", _b64(48))
    monkeypatch.setenv("KEYS_SYNC_INTERVAL_SECONDS", "900")
    settings = KeysSettings()
    assert settings.is_production
    assert list(settings.kek_map()) == ["2026-01"]
    assert settings.sync_interval_seconds == 900
    assert Vault.from_settings(settings).active_version == "2026-01"
    assert keks not in repr(settings)


def test_template_placeholders_are_refused_in_production_and_ignored_elsewhere():
    template: dict[str, Any] = {
        "keks": '{"v1": "change-me"}',
        "active_kek_version": "v1",
        "fingerprint_key": "change-me",
    }
    with pytest.raises(ValidationError) as caught:
        KeysSettings(OWR_ENV="production", **template)
    errors = caught.value.errors(include_input=False)
    assert any("placeholder" in e["msg"] and "keks" in e["msg"] and "fingerprint_key" in e["msg"] for e in errors)
    settings = KeysSettings(OWR_ENV="development", **template)
    assert settings.kek_map() == {}
    assert settings.fingerprint_key_bytes() is None
    assert Vault.from_settings(settings).active_version == "ephemeral"


def test_production_refuses_missing_secrets_and_development_generates_ephemeral_ones():
    with pytest.raises(ValidationError) as caught:
        KeysSettings(OWR_ENV="production")
    message = str(caught.value)
    assert "keks" in message
    assert "fingerprint_key" in message
    settings = KeysSettings(OWR_ENV="development")
    vault = Vault.from_settings(settings)
    assert vault.active_version == "ephemeral"
    secret = new_secret()
    assert vault.open(vault.seal(secret, workspace_id=WS, key_id=KEY), workspace_id=WS, key_id=KEY) == secret
    Fingerprinter.from_settings(settings)


# --- tampering with stored rows --------------------------------------------------------------------


async def _swap(db_connection, column: str, a: str, b: str) -> None:
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text(
                f"UPDATE keys.openrouter_keys t SET {column} = s.{column} "  # noqa: S608 - fixed column names
                "FROM keys.openrouter_keys s WHERE (t.id, s.id) IN ((:a, :b), (:b, :a))"
            ),
            {"a": a, "b": b},
        )


@pytest.mark.parametrize("columns", [("ciphertext", "nonce"), ("wrapped_dek", "dek_nonce"), ("workspace_id",)])
async def test_swapped_rows_fail_to_decrypt_with_an_error_carrying_no_secret(
    client, tenant_factory, service_headers, db_connection, columns
):
    tenant = tenant_factory()
    secrets_ = [new_secret(), new_secret()]
    keys = [await store_key(client, tenant, s) for s in secrets_]
    if columns == ("workspace_id",):
        other = tenant_factory()
        async with savepoint(db_connection) as conn:
            await conn.execute(
                text("UPDATE keys.openrouter_keys SET workspace_id = :w WHERE id = :k"),
                {"w": other.workspace_id, "k": keys[0]["id"]},
            )
    else:
        for column in columns:
            await _swap(db_connection, column, keys[0]["id"], keys[1]["id"])
    for key in keys[:1] if columns == ("workspace_id",) else keys:
        r = await client.post(f"/internal/keys/{key['id']}/reveal", headers=service_headers("keys:reveal"))
        problem = assert_problem(r, 500)
        assert problem["type"].endswith("/key-unreadable")
        for secret in secrets_:
            assert secret not in r.text
            assert secret[9:] not in r.text
    # A failed reveal is not recorded as a reveal.
    async with savepoint(db_connection) as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM keys.audit_events WHERE key_id = ANY(:ids) AND action = 'revealed'"),
            {"ids": [uuid.UUID(k["id"]) for k in keys]},
        )
        assert count == 0
    # The rows made unreadable on purpose vanish with the test's transaction: later tests (the rotation)
    # never meet them.
