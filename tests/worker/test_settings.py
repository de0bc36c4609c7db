"""Worker settings: prefixes, the shared OpenRouter URL, and secrets refused in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from owr_worker.settings import WorkerSettings


def test_environment_names(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "test")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:8010/api/v1/")
    monkeypatch.setenv("WORKER_OPENROUTER_MAX_RPS", "7.5")
    monkeypatch.setenv("WORKER_KEYS_URL", "http://keys:8002")
    monkeypatch.setenv("WORKER_SERVICE_CLIENT_SECRET", "s3cr3t-value-for-tests")
    settings = WorkerSettings()
    assert settings.openrouter_base_url == "http://127.0.0.1:8010/api/v1"
    assert settings.openrouter_max_rps == 7.5
    assert settings.keys_url == "http://keys:8002"
    assert settings.service_client_secret is not None
    assert "s3cr3t" not in repr(settings)
    assert settings.activity_backfill_days == 30
    assert settings.retention_days == 400


def test_default_openrouter_url(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "test")
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    assert WorkerSettings().openrouter_base_url == "https://openrouter.ai/api/v1"


@pytest.mark.parametrize("secret", [None, "change-me"])
def test_production_needs_a_real_client_secret(monkeypatch, secret):
    monkeypatch.setenv("OWR_ENV", "production")
    if secret is None:
        monkeypatch.delenv("WORKER_SERVICE_CLIENT_SECRET", raising=False)
    else:
        monkeypatch.setenv("WORKER_SERVICE_CLIENT_SECRET", secret)
    with pytest.raises(ValidationError, match="service_client_secret"):
        WorkerSettings()


def test_lock_must_outlive_a_job():
    with pytest.raises(ValidationError, match="lock_ttl_seconds"):
        WorkerSettings.model_validate({"environment": "test", "job_timeout_seconds": 600, "lock_ttl_seconds": 300})


def test_urls_must_be_http():
    with pytest.raises(ValidationError):
        WorkerSettings.model_validate({"environment": "test", "usage_url": "file:///etc/passwd"})


def test_email_and_delivery_settings(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "test")
    monkeypatch.setenv("SMTP_URL", "smtp://mail.internal:2525?starttls=true")
    monkeypatch.setenv("MAIL_FROM", "Alerts <alerts@example.com>")
    monkeypatch.setenv("WORKER_DELIVERY_CONCURRENCY", "4")
    monkeypatch.setenv("WORKER_DELIVERY_POLL_SECONDS", "2")
    settings = WorkerSettings()
    assert settings.smtp_url is not None
    assert settings.smtp_url.get_secret_value() == "smtp://mail.internal:2525?starttls=true"
    assert (settings.mail_from, settings.delivery_concurrency, settings.delivery_poll_seconds) == (
        "Alerts <alerts@example.com>",
        4,
        2,
    )
    monkeypatch.setenv("SMTP_URL", "")
    assert WorkerSettings().smtp_url is None  # set but empty: no email
    monkeypatch.delenv("SMTP_URL")
    assert (WorkerSettings().smtp_url, WorkerSettings().delivery_batch) == (None, 32)


def test_an_unusable_smtp_url_stops_the_worker_without_echoing_it(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "test")
    monkeypatch.setenv("SMTP_URL", "http://user:pw-9f8e7d@mail.internal")
    with pytest.raises(ValidationError) as refused:
        WorkerSettings()
    assert "pw-9f8e7d" not in str(refused.value)


def test_production_refuses_a_template_smtp_password(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "production")
    monkeypatch.setenv("WORKER_SERVICE_CLIENT_SECRET", "Zq8" + "x7Lm" * 10)
    monkeypatch.setenv("SMTP_URL", "smtps://alerts:change-me@smtp.example.internal:465")
    with pytest.raises(ValidationError, match="placeholder password"):
        WorkerSettings()
    monkeypatch.setenv("SMTP_URL", "smtps://alerts:Vq3nT8xLm2Rk9wPz@smtp.example.internal:465")
    assert WorkerSettings().smtp_url is not None
