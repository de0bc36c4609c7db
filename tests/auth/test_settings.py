"""Settings floors, production secrets, key loading, and the password policy's data file."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError

from owr_auth.passwords.service import PasswordService, common_passwords
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring, private_key_pem, public_key_pem

KEY = Ed25519PrivateKey.generate()


def settings(**values):
    return AuthSettings(**{"OWR_ENV": "test", **values})


def test_defaults():
    s = settings()
    assert (s.host, s.port, s.forwarded_allow_ips) == ("127.0.0.1", 8001, "127.0.0.1")
    assert (s.jwt_issuer, s.jwt_audience) == ("owr-auth", "owr-api")
    assert s.access_token_ttl_seconds == 900
    assert s.refresh_token_ttl_seconds == 30 * 24 * 3600
    assert (s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism) == (19456, 2, 1)


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "development")
    monkeypatch.setenv("AUTH_PORT", "9101")
    monkeypatch.setenv("AUTH_JWT_PRIVATE_KEY", private_key_pem(KEY).replace("\n", "\\n"))
    monkeypatch.setenv("AUTH_JWT_RETIRED_PUBLIC_KEYS", json.dumps([public_key_pem(KEY.public_key())]))
    s = AuthSettings()
    assert s.port == 9101
    assert Keyring.from_settings(s).private_key.public_key() == KEY.public_key()
    assert len(s.jwt_retired_public_keys) == 1


def test_access_token_lifetime_is_at_most_15_minutes():
    with pytest.raises(ValidationError):
        settings(access_token_ttl_seconds=901)


@pytest.mark.parametrize("env", ["development", "production"])
def test_argon2_below_owasp_minimum_is_refused_outside_tests(env):
    extra = {"jwt_private_key": private_key_pem(KEY)}
    with pytest.raises(ValidationError, match="OWASP"):
        AuthSettings(OWR_ENV=env, argon2_memory_kib=1024, **extra)
    with pytest.raises(ValidationError, match="OWASP"):
        AuthSettings(OWR_ENV=env, argon2_time_cost=1, **extra)
    AuthSettings(OWR_ENV=env, argon2_memory_kib=65536, argon2_time_cost=3, **extra)
    settings(argon2_memory_kib=1024, argon2_time_cost=1)


def test_production_requires_a_signing_key():
    with pytest.raises(ValidationError, match="jwt_private_key"):
        AuthSettings(OWR_ENV="production")
    assert AuthSettings(OWR_ENV="production", jwt_private_key=private_key_pem(KEY)).jwt_private_key is not None


@pytest.mark.parametrize("env", ["production", "development"])
def test_bad_signing_keys_are_refused_without_echoing_them(env):
    ec_pem = generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    for bad in ("change-me", "not a pem at all", ec_pem):
        with pytest.raises(ValidationError) as info:
            AuthSettings(OWR_ENV=env, jwt_private_key=bad)
        errors = json.dumps(info.value.errors(include_input=False, include_url=False, include_context=False))
        assert "jwt_private_key" in errors
        assert bad not in errors
    with pytest.raises(ValidationError):
        settings(jwt_retired_public_keys=[ec_pem])


def test_ephemeral_key_outside_production():
    a, b = Keyring.from_settings(settings()), Keyring.from_settings(settings())
    assert a.active_kid != b.active_kid


def test_common_password_list():
    words = common_passwords()
    assert len(words) == 10_000
    assert {"123456", "password", "qwerty123456"} <= words
    assert all(w == w.lower() and not w.startswith("#") for w in words)


async def test_hashes_use_argon2id_with_the_configured_parameters():
    service = PasswordService(memory_kib=19456, time_cost=2, parallelism=1, max_concurrency=2)
    digest = await service.hash("correct horse battery staple")
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await service.verify(digest, "correct horse battery staple")
    assert not await service.verify(digest, "wrong horse battery staple")
    assert not await service.verify("not a hash", "whatever")
    assert not service.needs_rehash(digest)
    assert service.needs_rehash(digest.replace("m=19456", "m=4096"))
    # NFKC: the same password typed with a compatibility character still verifies.
    assert await service.verify(await service.hash("\ufb01le passphrase long"), "file passphrase long")
