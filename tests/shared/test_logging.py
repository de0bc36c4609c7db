import json
import logging
from typing import Any

import pytest

from owr_shared.context import request_id_var, trace_id_var
from owr_shared.logging import configure_logging, get_logger, is_sensitive_key, redact_text


def test_redact_text_patterns():
    text = "key sk-or-v1-0123456789abcdef token owr_abcdefghijklmnopqrstuvwxyz Bearer abc.def.ghi"
    redacted = redact_text(text)
    assert "sk-or-v1-0123456789abcdef" not in redacted
    assert "owr_abcdefghijklmnopqrstuvwxyz" not in redacted
    assert "abc.def.ghi" not in redacted
    assert redacted.count("***") == 3


def test_log_lines_are_json_with_context_and_redacted(capsys):
    configure_logging("svc-test", "INFO", json=True)
    rid = request_id_var.set("req-123")
    tid = trace_id_var.set("0af7651916cd43dd8448eb211c80319c")
    try:
        get_logger("t").info(
            "stored",
            password="hunter2-hunter2",
            detail="got sk-or-v1-deadbeefdeadbeef0000",
            nested={"token": "x"},
        )
        logging.getLogger("uvicorn.error").warning("Authorization: Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.sig")
    finally:
        request_id_var.reset(rid)
        trace_id_var.reset(tid)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    first, second = lines[-2], lines[-1]
    assert first["service"] == "svc-test"
    assert first["request_id"] == "req-123"
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["password"] == "***"
    assert first["nested"] == {"token": "***"}
    assert "sk-or-v1-deadbeef" not in json.dumps(first)
    assert "eyJhbGciOiJFZERTQSJ9" not in json.dumps(second)
    assert second["level"] == "warning"


def _real_keys() -> dict[str, str]:
    """Real key material of every kind the services hold, generated here (never a fixture's constant)."""
    import base64
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    def pem(key: Any) -> str:
        raw: bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return raw.decode()

    def pkcs1(key: Any) -> str:
        raw: bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        return raw.decode()

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "ed25519": pem(ed25519.Ed25519PrivateKey.generate()),
        "ec": pem(ec.generate_private_key(ec.SECP256R1())),
        "ec_sec1": pkcs1(ec.generate_private_key(ec.SECP256R1())),
        "rsa": pem(rsa_key),
        "rsa_pkcs1": pkcs1(rsa_key),
        "kek": base64.b64encode(secrets.token_bytes(32)).decode(),
        "kek_urlsafe": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def _body(pem: str) -> str:
    """A PEM's base64 body on one line, as a flattened env value or a paste shows it."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@pytest.mark.parametrize("kind", ["ed25519", "ec", "ec_sec1", "rsa", "rsa_pkcs1"])
def test_pem_blocks_and_bare_key_bodies_are_redacted(kind):
    """Finding 16: no PEM pattern existed, so a private key in a message was logged whole."""
    pem = _real_keys()[kind]
    body = _body(pem)
    flattened = pem.replace("\n", "\\n")
    for text in (f"loaded {pem} ok", f"value={flattened}", f"key body {body} end", pem[:-30]):
        redacted = redact_text(text)
        assert body[:24] not in redacted, (kind, redacted)
        assert body[-24:] not in redacted, (kind, redacted)
        assert "***" in redacted


def test_a_bare_32_byte_key_in_base64_is_redacted():
    for kind in ("kek", "kek_urlsafe"):
        value = _real_keys()[kind]
        assert value not in redact_text(f'KEYS_KEKS={{"v1": "{value}"}}')


@pytest.mark.parametrize(
    "secret",
    [
        # A webhook channel's signing secret (Standard Webhooks: whsec_ + base64 of 24-64 bytes).
        "whsec_I/cyzmgPwibPWutnHQalM3FzQXDQP//+uceUB56Z7Do=",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        # Slack and Discord incoming-webhook URLs are credentials in themselves.
        "https://hooks.slack.com/services/T0000AAAA/B0000BBBB/abcdefghijklmnopqrstuvwx",
        "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOP-0123456789",
        "https://discordapp.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz",
        # A TOTP secret inside an otpauth URI.
        "otpauth://totp/OpenRouter%20Watcher:a%40b.example?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=OpenRouter",
    ],
)
def test_alert_channel_and_totp_secrets_are_redacted(secret):
    redacted = redact_text(f"delivery to {secret} failed")
    assert secret not in redacted
    for part in ("I/cyzmgPwibPWutnHQalM3", "MfKQ9r8GKYqrTwjUPD8", "abcdefghijklmnopqrstuvwx", "JBSWY3DPEHPK3PXP"):
        assert part not in redacted


def test_ids_and_ordinary_text_are_kept():
    import uuid

    text = f"key {uuid.uuid4()} synced 12 rows in 0.5 s (status=valid, page=3)"
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "name",
    [
        "client_secret",
        "api_token_pepper",
        "AUTH_API_TOKEN_PEPPER",
        "keks",
        "KEYS_KEKS",
        "jwt_private_key",
        "service_token",
        "X-Api-Key",
        "set-cookie",
        "db_password",
        "signing_key",
        "credentials",
    ],
)
def test_sensitive_names_are_matched_by_substring_and_last_word(name):
    assert is_sensitive_key(name)


@pytest.mark.parametrize(
    "name", ["token_id", "key_id", "management_key_id", "keys", "tokens", "kek_version", "user_id"]
)
def test_ids_and_counts_keep_their_names(name):
    assert not is_sensitive_key(name)


def test_log_fields_named_like_secrets_are_redacted_whole(capsys):
    configure_logging("svc-test", "INFO", json=True)
    keys = _real_keys()
    get_logger("t").info(
        "settings",
        client_secret="a-client-secret-that-is-long-enough",
        api_token_pepper="pepper-pepper-pepper-pepper-pepper",
        keks={"v1": keys["kek"]},
        jwt_private_key=keys["ed25519"],
        nested={"AUTH_JWT_PRIVATE_KEY": keys["ed25519"], "kek_version": "v1"},
        key_id="a3b0",
    )
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    for field in ("client_secret", "api_token_pepper", "keks", "jwt_private_key"):
        assert line[field] == "***", field
    assert line["nested"] == {"AUTH_JWT_PRIVATE_KEY": "***", "kek_version": "v1"}
    assert line["key_id"] == "a3b0"
