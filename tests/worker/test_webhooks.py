"""Standard Webhooks signatures, checked by the `standardwebhooks` package as a stranger's verifier would."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from owr_worker.webhooks import BadSecret, headers, new_secret, secret_bytes

BODY = b'{"type":"test","timestamp":"2026-12-05T00:00:00Z","data":{}}'


def test_a_delivery_verifies_with_the_channel_secret() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    signed = headers([secret], "evt_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, signed) is not None


def test_during_a_rotation_both_secrets_sign() -> None:
    old, new = new_secret(), new_secret()
    signed = headers([new, old], "evt_2", int(time.time()), BODY)
    assert len(signed["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, signed)
    Webhook(new).verify(BODY, signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, signed)


def test_a_changed_body_or_id_fails() -> None:
    secret = new_secret()
    signed = headers([secret], "evt_3", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**signed, "webhook-id": "evt_4"})


@pytest.mark.parametrize("bad", ["sk_live_9f8e7d", "whsec_not base64!", "whsec_" + "QUJD" * 2])
def test_bad_secrets_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(BadSecret) as refused:
        secret_bytes(bad)
    assert bad not in str(refused.value)
