"""Auth service metrics (`owr_auth_` prefix; outcomes only, never users, addresses or tokens in labels)."""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter("owr_auth_logins_total", "Password logins that reached a verdict, by outcome.", ["outcome"])
REFRESH_TOKEN_REUSES = Counter(
    "owr_auth_refresh_token_reuses_total", "Rotated refresh tokens presented again (their family is revoked)."
)
MFA_CHECKS = Counter(
    "owr_auth_mfa_checks_total",
    "Second-factor codes checked, by purpose (login, enable, disable), kind (totp, recovery) and outcome.",
    ["purpose", "kind", "outcome"],
)
