"""`owr_shared.envelope`: one envelope scheme for keys and usage, keys' stored bytes unchanged."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from owr_keys.settings import KeysSettings
from owr_keys.vault.crypto import Vault
from owr_shared.envelope import AadContext, Envelope, SealedSecret
from owr_usage.settings import UsageSettings

WS, ROW = uuid.uuid4(), uuid.uuid4()
A = AadContext(secret=b"owr:a:v1:", dek=b"owr:a-dek:v1:")
B = AadContext(secret=b"owr:b:v1:", dek=b"owr:b-dek:v1:")


class Unreadable(Exception):
    pass


def _envelope(context: AadContext, keks: dict[str, bytes] | None = None) -> Envelope:
    keks = keks or {"v1": os.urandom(32)}
    return Envelope(keks, next(iter(keks)), context=context, unreadable=Unreadable, event="unreadable")


def test_keys_rows_sealed_with_the_old_associated_data_still_open():
    """A row as the pre-extraction vault sealed it (its AAD spelled out here) opens, and a new one is the same."""
    kek = os.urandom(32)
    secret = "sk-or-v1-" + os.urandom(24).hex()
    dek, nonce, dek_nonce = os.urandom(32), os.urandom(12), os.urandom(12)
    old_row = SealedSecret(
        AESGCM(dek).encrypt(nonce, secret.encode(), f"owr:key:v1:{WS}:{ROW}".encode()),
        nonce,
        AESGCM(kek).encrypt(dek_nonce, dek, f"owr:dek:v1:{WS}:{ROW}:v1".encode()),
        dek_nonce,
        "v1",
    )
    vault = Vault({"v1": kek}, "v1")
    assert vault.open(old_row, workspace_id=WS, key_id=ROW) == secret
    new_row = vault.seal(secret, workspace_id=WS, key_id=ROW)
    new_dek = AESGCM(kek).decrypt(new_row.dek_nonce, new_row.wrapped_dek, f"owr:dek:v1:{WS}:{ROW}:v1".encode())
    plaintext = AESGCM(new_dek).decrypt(new_row.nonce, new_row.ciphertext, f"owr:key:v1:{WS}:{ROW}".encode())
    assert plaintext.decode() == secret


def test_a_context_opens_only_its_own_rows_and_only_under_its_binding():
    kek = {"v1": os.urandom(32)}
    a, b = _envelope(A, kek), _envelope(B, kek)
    binding = {"workspace_id": WS, "row": ROW, "kind": "secret"}
    sealed = a.seal("whsec_abc", binding)
    assert a.open(sealed, binding) == "whsec_abc"
    with pytest.raises(Unreadable):
        b.open(sealed, binding)
    for other in ({**binding, "kind": "target"}, {**binding, "workspace_id": uuid.uuid4()}):
        with pytest.raises(Unreadable) as caught:
            a.open(sealed, other)
        assert caught.value.__cause__ is None


def test_rewrap_and_reprs():
    old, new = os.urandom(32), os.urandom(32)
    binding = {"row": ROW}
    sealed = _envelope(A, {"old": old}).seal("x" * 40, binding)
    both = Envelope({"old": old, "new": new}, "new", context=A, unreadable=Unreadable, event="e")
    rewrapped = both.rewrap(sealed, binding)
    assert (rewrapped.kek_version, rewrapped.ciphertext) == ("new", sealed.ciphertext)
    assert _envelope(A, {"new": new}).open(rewrapped, binding) == "x" * 40
    for shown in (repr(sealed), repr(both)):
        assert sealed.ciphertext.hex() not in shown
        assert old.hex() not in shown
        assert "x" * 40 not in shown


def _keks(*versions: str) -> str:
    return json.dumps({v: base64.b64encode(os.urandom(32)).decode() for v in versions})


@pytest.mark.parametrize(("cls", "prefix"), [(KeysSettings, "KEYS_"), (UsageSettings, "USAGE_")])
def test_both_services_configure_keks_alike(cls, prefix, monkeypatch):
    with pytest.raises(ValidationError) as caught:
        cls(OWR_ENV="test", keks=_keks("v1"))
    assert f"{prefix}ACTIVE_KEK_VERSION is required" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        cls(OWR_ENV="production")
    assert "keks" in str(caught.value)
    monkeypatch.setenv(f"{prefix}KEKS", _keks("a", "b"))
    monkeypatch.setenv(f"{prefix}ACTIVE_KEK_VERSION", "b")
    settings = cls(OWR_ENV="test")
    assert set(settings.kek_map()) == {"a", "b"}
    keks, active = settings.keks_or_ephemeral("lost at restart")
    assert active == "b"
    assert set(keks) == {"a", "b"}


def test_an_unset_kek_is_ephemeral_outside_production_only():
    keks, active = UsageSettings(OWR_ENV="development").keks_or_ephemeral("lost at restart")
    assert active == "ephemeral"
    assert len(keks["ephemeral"]) == 32
