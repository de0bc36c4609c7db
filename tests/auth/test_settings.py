"""Settings floors, production secrets, key loading, and the password policy's data file."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError

from owr_auth.passwords.service import PasswordService, common_passwords
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring, private_key_pem, public_key_pem
from owr_shared.settings import load_settings

KEY = Ed25519PrivateKey.generate()
PEPPER = "Zq8vJ2mK5xN9pR3tW6yB1cF4hL7dS0gA-pepper"
KEKS = json.dumps({"v1": base64.b64encode(bytes(range(32))).decode()})
RECOVERY_PEPPER = "Yq8vJ2mK5xN9pR3tW6yB1cF4hL7dS0gA-recovery"
# What production needs besides the signing key and the API-token pepper: two-factor sign-in's secrets.
MFA_SECRETS: dict[str, Any] = {"keks": KEKS, "active_kek_version": "v1", "recovery_code_pepper": RECOVERY_PEPPER}


def settings(**values: Any) -> AuthSettings:
    return AuthSettings(**{"OWR_ENV": "test", **values})


def test_defaults():
    s = settings()
    assert (s.host, s.port, s.forwarded_allow_ips) == ("127.0.0.1", 8001, "127.0.0.1")
    assert (s.jwt_issuer, s.jwt_audience) == ("owr-auth", "owr-api")
    assert s.access_token_ttl_seconds == 900
    assert s.refresh_token_ttl_seconds == 30 * 24 * 3600
    assert (s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism) == (19456, 2, 1)
    assert s.service_clients == {}
    assert s.service_token_ttl_seconds == 300
    assert (s.keys_url, s.internal_timeout_seconds) == ("http://127.0.0.1:8002", 5.0)


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
    extra: dict[str, Any] = {"jwt_private_key": private_key_pem(KEY), "api_token_pepper": PEPPER, **MFA_SECRETS}
    with pytest.raises(ValidationError, match="OWASP"):
        AuthSettings(OWR_ENV=env, argon2_memory_kib=1024, **extra)
    with pytest.raises(ValidationError, match="OWASP"):
        AuthSettings(OWR_ENV=env, argon2_time_cost=1, **extra)
    AuthSettings(OWR_ENV=env, argon2_memory_kib=65536, argon2_time_cost=3, **extra)
    settings(argon2_memory_kib=1024, argon2_time_cost=1)


def test_production_requires_a_signing_key_and_a_token_pepper():
    with pytest.raises(ValidationError, match="jwt_private_key"):
        AuthSettings(OWR_ENV="production", api_token_pepper=PEPPER)
    with pytest.raises(ValidationError, match="api_token_pepper"):
        AuthSettings(OWR_ENV="production", jwt_private_key=private_key_pem(KEY))
    with pytest.raises(ValidationError, match="api_token_pepper"):
        AuthSettings(OWR_ENV="production", jwt_private_key=private_key_pem(KEY), api_token_pepper="too short")
    s = AuthSettings(OWR_ENV="production", jwt_private_key=private_key_pem(KEY), api_token_pepper=PEPPER, **MFA_SECRETS)
    assert s.api_token_pepper_bytes == PEPPER.encode()


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


GOOD_SECRET = "Zq8vJ2mK5xN9pR3tW6yB1cF4hL7dS0gA"  # 32 characters


def client(secret: str = GOOD_SECRET, **overrides: Any) -> dict[str, Any]:
    return {"secret": secret, "scopes": ["keys:due", "keys:reveal"], "audiences": ["owr-keys"], **overrides}


def production(**values: Any) -> AuthSettings:
    secrets = {"jwt_private_key": private_key_pem(KEY), "api_token_pepper": PEPPER, **MFA_SECRETS}
    return AuthSettings(OWR_ENV="production", **{**secrets, **values})


def refusal(env: str, monkeypatch, capsys, **clients) -> str:
    """What an operator sees when `AUTH_SERVICE_CLIENTS` is refused at start (stderr of `load_settings`)."""
    monkeypatch.setenv("OWR_ENV", env)
    monkeypatch.setenv("AUTH_JWT_PRIVATE_KEY", private_key_pem(KEY))
    monkeypatch.setenv("AUTH_API_TOKEN_PEPPER", PEPPER)
    monkeypatch.setenv("AUTH_KEKS", KEKS)
    monkeypatch.setenv("AUTH_ACTIVE_KEK_VERSION", "v1")
    monkeypatch.setenv("AUTH_RECOVERY_CODE_PEPPER", RECOVERY_PEPPER)
    monkeypatch.setenv("AUTH_SERVICE_CLIENTS", json.dumps(clients))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        load_settings(AuthSettings)
    err: str = capsys.readouterr().err
    return err


def test_service_clients_from_the_environment(monkeypatch):
    value = {"worker": client(), "usage-sync": client(scopes=["keys:status"], audiences=["owr-usage", "owr-keys"])}
    monkeypatch.setenv("AUTH_SERVICE_CLIENTS", json.dumps(value))
    monkeypatch.setenv("AUTH_SERVICE_TOKEN_TTL_SECONDS", "120")
    monkeypatch.setenv("AUTH_KEYS_URL", "http://keys.internal:8002/")
    s = production()
    worker = s.service_clients["worker"]
    assert worker.secret.get_secret_value() == GOOD_SECRET
    assert worker.scopes == {"keys:due", "keys:reveal"}
    assert s.service_clients["usage-sync"].audiences == {"owr-usage", "owr-keys"}
    assert s.service_token_ttl_seconds == 120
    assert s.keys_url == "http://keys.internal:8002"
    assert GOOD_SECRET not in repr(s)
    assert GOOD_SECRET not in str(s.model_dump())


@pytest.mark.parametrize("env", ["production", "development", "test"])
def test_short_client_secrets_are_refused_everywhere(env, monkeypatch, capsys):
    short = "Zq8vJ2mK5xN9pR3tW6yB1cF4hL7dS0g"  # 31 characters
    with pytest.raises(ValidationError) as info:
        AuthSettings(
            OWR_ENV=env,
            jwt_private_key=private_key_pem(KEY),
            api_token_pepper=PEPPER,
            **MFA_SECRETS,
            service_clients={"worker": client(short)},
        )
    assert "service_clients.worker.secret" in str(info.value)
    assert "at least 32 characters" in str(info.value)
    assert short not in str(info.value)
    err = refusal(env, monkeypatch, capsys, worker=client(short))
    assert "service_clients.worker.secret" in err
    assert short not in err


@pytest.mark.parametrize("placeholder", ["change-me-" + GOOD_SECRET, GOOD_SECRET + "-example", "x" * 40])
def test_placeholder_client_secrets_are_refused_in_production(placeholder, monkeypatch, capsys):
    with pytest.raises(ValidationError) as info:
        production(service_clients={"worker": client(), "billing": client(placeholder)})
    assert "placeholder secret(s) in production for: billing" in str(info.value)
    assert placeholder not in str(info.value)
    assert GOOD_SECRET not in str(info.value)
    err = refusal("production", monkeypatch, capsys, worker=client(placeholder))
    assert "worker" in err
    assert placeholder not in err
    # Outside production a development placeholder is fine, as long as it is long enough.
    assert settings(service_clients={"worker": client(placeholder)}).service_clients["worker"]


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        (client(scopes=["keys:due", "keys:everything"]), "service_clients.worker.scopes"),
        (client(scopes=[]), "service_clients.worker.scopes"),
        (client(audiences=[]), "service_clients.worker.audiences"),
        (client(audiences=["Owr Keys"]), "service_clients.worker.audiences"),
        (client(grants=["password"]), "service_clients.worker.grants"),
        ({"scopes": ["keys:due"], "audiences": ["owr-keys"]}, "service_clients.worker.secret"),
    ],
)
def test_malformed_clients_are_refused(entry, where):
    with pytest.raises(ValidationError) as info:
        settings(service_clients={"worker": entry})
    assert where in str(info.value)
    assert GOOD_SECRET not in str(info.value)


def test_client_ids_and_audiences_that_would_blur_identities_are_refused():
    with pytest.raises(ValidationError, match="reserved for auth"):
        settings(service_clients={"auth": client()})
    with pytest.raises(ValidationError, match="for user tokens"):
        settings(service_clients={"worker": client(audiences=["owr-keys", "owr-api"])})
    with pytest.raises(ValidationError):
        settings(service_clients={"Worker!": client()})


def test_service_token_lifetime_and_peer_settings_are_bounded():
    with pytest.raises(ValidationError):
        settings(service_token_ttl_seconds=901)
    assert settings(service_token_ttl_seconds=900).service_token_ttl_seconds == 900
    with pytest.raises(ValidationError):
        settings(keys_url="keys:8002")
    with pytest.raises(ValidationError):
        settings(internal_timeout_seconds=0)


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


def test_production_requires_keks_and_a_recovery_code_pepper():
    base: dict[str, Any] = {"jwt_private_key": private_key_pem(KEY), "api_token_pepper": PEPPER}
    with pytest.raises(ValidationError, match="keks"):
        AuthSettings(OWR_ENV="production", **base, recovery_code_pepper=RECOVERY_PEPPER)
    with pytest.raises(ValidationError, match="recovery_code_pepper"):
        AuthSettings(OWR_ENV="production", **base, keks=KEKS, active_kek_version="v1")
    with pytest.raises(ValidationError, match="AUTH_ACTIVE_KEK_VERSION"):
        production(active_kek_version="v2")
    short = base64.b64encode(b"k" * 16).decode()
    for bad in (json.dumps({"v1": short}), "not json at all"):
        with pytest.raises(ValidationError) as info:
            production(keks=bad)
        assert "keks" in str(info.value)
        assert short not in str(info.value)
    with pytest.raises(ValidationError, match="recovery_code_pepper"):
        production(recovery_code_pepper="too short")
    s = production()
    assert s.kek_map() == {"v1": bytes(range(32))}
    assert s.recovery_code_pepper_bytes == RECOVERY_PEPPER.encode()


def test_outside_production_unset_mfa_secrets_are_ephemeral():
    s = AuthSettings(OWR_ENV="development")
    keks, active = s.keks_or_ephemeral("test")
    assert len(keks[active]) == 32
    assert len(s.recovery_code_pepper_bytes) == 32
    assert s.recovery_code_pepper_bytes == s.recovery_code_pepper_bytes  # one per process, not one per use
