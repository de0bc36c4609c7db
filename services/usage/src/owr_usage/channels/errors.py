"""Channel errors; none of them ever carries a channel's URL, address or secret, or an echo of one."""

from __future__ import annotations

from owr_shared.errors import (
    RETRY_SOON,
    VALIDATION_ERROR,
    BadRequest,
    Conflict,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    field_errors,
)

# Issue 16: what a caller whose address is not verified is told when they point alerts somewhere (403
# `email-not-verified`).
RECEIVE_ALERTS = "Verify your email address to receive alerts: use the link we emailed you, or ask for a new one."


class ChannelNotFound(NotFound):
    """No such channel in the caller's workspace (also when it exists in another one)."""

    slug, title = "channel-not-found", "Channel Not Found"
    default_detail = "No channel with this id exists in this workspace."


class ChannelDisabled(Conflict):
    slug, title = "channel-disabled", "Channel Disabled"
    default_detail = "The channel is disabled; enable it first (PATCH with enabled: true)."


class ChannelHasNoSecret(Conflict):
    slug, title = "channel-has-no-secret", "Channel Has No Secret"
    default_detail = "Only webhook channels sign their deliveries; this channel has no secret to rotate."


class TooManyChannels(Conflict):
    """The workspace holds `USAGE_MAX_CHANNELS_PER_WORKSPACE` channels already."""

    slug, title = "too-many-channels", "Too Many Channels"

    def __init__(self, cap: int) -> None:
        super().__init__(f"This workspace already has {cap} channels, the most it may have; delete one first.")


class InvalidChannelTarget(ProblemError):
    """A URL or address this channel type or this deployment does not take; the message never echoes it."""

    status, slug, title = VALIDATION_ERROR

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, errors=field_errors("body", field, message, "channel_target"))


class ChannelUnreadable(ProblemError):
    """A channel's sealed URL, address or secret failed to decrypt (tampered row, a KEK not configured).

    The detail is fixed text: it never carries the value, the ciphertext or the cause's message.
    """

    status, slug, title = 500, "channel-unreadable", "Channel Unreadable"
    default_detail = "The channel's stored target or secret could not be decrypted."


class ChannelTestsThrottled(TooManyRequests):
    """The channel was sent `USAGE_CHANNEL_TESTS_PER_MINUTE` tests and retries in the last minute, or (with
    `workspace`) the workspace's channels `USAGE_WORKSPACE_CHANNEL_TESTS_PER_MINUTE` in all."""

    slug, title = "channel-tests-throttled", "Too Many Tests"

    def __init__(self, per_minute: int, *, retry_after: int, workspace: bool = False) -> None:
        who = "A workspace's channels take" if workspace else "A channel takes"
        total = " in all" if workspace else ""
        super().__init__(
            f"{who} at most {per_minute} test events and retried deliveries a minute{total}; "
            f"try again in {retry_after} s.",
            retry_after=retry_after,
        )


class ConfirmationsThrottled(TooManyRequests):
    """An address (or one channel) was sent `USAGE_CONFIRMATIONS_PER_DAY` confirmation emails in the last day."""

    slug, title = "confirmations-throttled", "Too Many Confirmation Emails"

    def __init__(self, per_day: int, *, retry_after: int) -> None:
        super().__init__(
            f"An address (and a channel) is sent at most {per_day} confirmation emails a day; "
            f"try again in {retry_after} s, or ask its recipient to use the last email's link.",
            retry_after=retry_after,
        )


class ChannelTestsUnavailable(ServiceUnavailable):
    slug, title = "channel-tests-unavailable", "Tests Unavailable"
    default_detail = "Test events and retries cannot be counted right now; try again in a few seconds."

    def __init__(self) -> None:
        super().__init__(headers=dict(RETRY_SOON))


class EmailNotConfirmed(Conflict):
    """An email channel whose address has not followed its confirmation link yet: it gets no mail but that link."""

    slug, title = "email-not-confirmed", "Email Not Confirmed"
    default_detail = (
        "The channel's address has not confirmed that it wants alerts: it gets nothing until its recipient uses "
        "the link in the confirmation email (POST .../resend-confirmation sends a new one)."
    )


class NothingToConfirm(Conflict):
    slug, title = "nothing-to-confirm", "Nothing To Confirm"
    default_detail = "Only an email channel whose address is not confirmed yet is sent a confirmation email."


class InvalidConfirmationLink(BadRequest):
    slug, title = "invalid-link", "Invalid Link"
    default_detail = "This link is not valid. Use the link in the newest confirmation email."


class ConfirmationLinkExpired(ProblemError):
    """Expired, used already, replaced by a newer email, or its channel deleted or its address changed."""

    status, slug, title = 410, "link-expired", "Link Expired"
    default_detail = (
        "This link has expired, has been used already, or was replaced by a newer email. "
        "Ask the workspace's admin to send a new one."
    )
