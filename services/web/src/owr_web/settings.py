"""Web settings: `WEB_*` variables on top of the shared infrastructure ones (`REDIS_URL` holds sessions)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import HttpServiceSettings, Port, http_url


class WebSettings(HttpServiceSettings):
    """Configuration of the web dashboard (`WEB_` prefix). It owns no schema: no database settings are read."""

    model_config = SettingsConfigDict(env_prefix="WEB_", env_file=None, extra="ignore", frozen=True)

    port: Port = 8005
    admin_port: Port = 9005
    # The public API, reached through the gateway like any client (the person's address in X-Forwarded-For).
    gateway_url: str = "http://127.0.0.1:8000"
    api_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # A session ends this long after sign-in, or after this long without a request, whichever comes first.
    session_lifetime_seconds: int = Field(default=7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    session_idle_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)
    # The access token is refreshed when it has less than this left.
    refresh_margin_seconds: int = Field(default=60, ge=5, le=600)
    # Secure cookies (with the `__Host-` prefix); off only in local development and tests over plain http.
    secure_cookies: bool | None = None
    # How often the keys table and the dashboard tiles ask for fresh figures while something is pending.
    live_poll_seconds: int = Field(default=5, ge=1, le=300)

    # `make demo` only: a visitor without a session is signed in as this user at once (refused in production).
    demo_email: str | None = None
    demo_password: SecretStr | None = None

    @model_validator(mode="after")
    def _demo_only_in_development(self) -> Self:
        if self.is_production and (self.demo_email or self.demo_password):
            raise ValueError("demo_email / demo_password sign visitors in automatically: never in production")
        return self

    @field_validator("gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.is_production
