"""Auth service metrics (`owr_auth_` prefix; outcomes only, never users, addresses or tokens in labels)."""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter("owr_auth_logins_total", "Password logins that reached a verdict, by outcome.", ["outcome"])
REFRESH_TOKEN_REUSES = Counter(
    "owr_auth_refresh_token_reuses_total", "Rotated refresh tokens presented again (their family is revoked)."
)
MFA_CHECKS = Counter(
    "owr_auth_mfa_checks_total",
    "Second-factor codes checked, by purpose (login, enable, disable, recovery_codes), kind (totp, recovery) and outcome.",
    ["purpose", "kind", "outcome"],
)

# Email (docs/architecture.md, "Email from auth"): kind is verify_email, password_reset, invitation, or one of
# the security notices (mfa_enabled, mfa_disabled, recovery_codes_replaced, password_changed, new_sign_in).
MAILS_QUEUED = Counter("owr_auth_mails_queued_total", "Emails queued for the worker to send, by kind.", ["kind"])
SECURITY_NOTICES_HELD = Counter(
    "owr_auth_security_notices_held_total",
    "Security notices not queued because the account had as many of that kind in the last hour, by kind.",
    ["kind"],
)
MAIL_ENQUEUES = Counter(
    "owr_auth_mail_enqueues_total",
    "send_auth_mail jobs put on the queue, by outcome (failed: Redis refused; the worker's cron queues it later).",
    ["outcome"],
)
MAIL_OUTCOMES = Counter(
    "owr_auth_mails_total",
    "Emails that reached an end, by kind and outcome (sent, failed, cancelled).",
    ["kind", "outcome"],
)
# purpose: verify_email or password_reset; outcome: used, invalid (no such link), expired (or used before).
EMAIL_LINKS = Counter(
    "owr_auth_email_links_total", "Emailed links presented, by purpose and outcome.", ["purpose", "outcome"]
)

for _outcome in ("queued", "failed"):
    MAIL_ENQUEUES.labels(_outcome)
