import subprocess
import sys

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import BaseServiceSettings, Environment, load_settings, secret_field


class DemoSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", frozen=True)
    signing_key: SecretStr | None = secret_field("a secret")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with only these variables (and PATH) set."""
    return subprocess.run(
        [sys.executable, "-c", code], env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False
    )


def test_production_refuses_missing_secret(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "production")
    monkeypatch.delenv("DEMO_SIGNING_KEY", raising=False)
    with pytest.raises(ValueError, match="signing_key"):
        DemoSettings()


@pytest.mark.parametrize("value", ["change-me", "CHANGEME-please", "example-secret", "  "])
def test_production_refuses_placeholder_secret(monkeypatch, value):
    monkeypatch.setenv("OWR_ENV", "production")
    monkeypatch.setenv("DEMO_SIGNING_KEY", value)
    with pytest.raises(ValueError, match="placeholder"):
        DemoSettings()


def test_production_accepts_real_secret_and_development_accepts_none(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "production")
    monkeypatch.setenv("DEMO_SIGNING_KEY", "k3y-" + "a" * 40)
    assert DemoSettings().signing_key is not None
    monkeypatch.setenv("OWR_ENV", "development")
    monkeypatch.delenv("DEMO_SIGNING_KEY")
    settings = DemoSettings()
    assert settings.environment is Environment.development
    assert settings.signing_key is None


def test_shared_variables_are_unprefixed(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/x")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/1")
    settings = DemoSettings()
    assert settings.database_url == "postgresql://u@db:5432/x"
    assert settings.redis_url == "redis://r:6379/1"


def test_refusal_exits_without_printing_the_value():
    """The process stops with status 2 and names the variable, never its value."""
    code = (
        "from tests.shared.test_settings import DemoSettings\n"
        "from owr_shared.settings import load_settings\n"
        "load_settings(DemoSettings)\n"
    )
    secret = "example-but-secret-Xq81"
    result = run_python(code, OWR_ENV="production", DEMO_SIGNING_KEY=secret)
    assert result.returncode == 2
    assert "signing_key" in result.stderr
    assert secret not in result.stderr + result.stdout


def test_load_settings_returns_instance(monkeypatch):
    monkeypatch.setenv("OWR_ENV", "test")
    assert isinstance(load_settings(DemoSettings), DemoSettings)


def test_unparsable_json_field_exits_cleanly():
    code = (
        "from pydantic_settings import SettingsConfigDict\n"
        "from owr_shared.settings import BaseServiceSettings, load_settings\n"
        "class S(BaseServiceSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='DEMO_', extra='ignore', frozen=True)\n"
        "    clients: dict[str, str] = {}\n"
        "load_settings(S)\n"
    )
    secret = '{"worker": "s3cr3t-value-Zz9' + "x" * 20
    result = run_python(code, OWR_ENV="test", DEMO_CLIENTS=secret)
    assert result.returncode == 2
    assert "clients" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cr3t" not in result.stderr


def test_random_key_material_is_never_taken_for_a_placeholder():
    import base64
    import os

    from owr_shared.settings import is_placeholder

    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        assert not any(is_placeholder(encode(os.urandom(32)).decode()) for _ in range(20000))
    for value in ("xxx", "XXX-key", "example", "example-secret", "please-change-me-now", "secret"):
        assert is_placeholder(value), value
    assert not is_placeholder("xxxQ9r2Lm0pZx8yWc1vB3nT5kJ7hG4fD6sA0eR2tY8u=")
    # url-safe base64 has `-` and `_`: a generated key may hold a stand-in word as a segment of its own.
    assert not is_placeholder("dev_Q9r2Lm0pZx8yWc1vB3nT5kJ7hG4f-xxx-D6sA0eR2tY8u")
    assert is_placeholder("my-dev-signing-key")
