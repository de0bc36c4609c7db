"""Budget errors; none echoes input."""

from __future__ import annotations

from owr_shared.errors import NotFound, ProblemError, field_errors


class BudgetNotFound(NotFound):
    """No budget with this id in the caller's workspace (also when it exists in another one)."""

    slug, title = "budget-not-found", "Budget Not Found"
    default_detail = "No budget with this id exists in this workspace."


class UnknownChannels(ProblemError):
    """`channel_ids` names a channel the workspace does not have."""

    status, slug, title = 422, "unknown-channels", "Unknown Channels"

    def __init__(self) -> None:
        detail = "Every id in `channel_ids` must be a channel of this workspace."
        super().__init__(detail, errors=field_errors("body", "channel_ids", detail, "unknown_channel"))


class KillSwitchNeedsKeyScope(ProblemError):
    """`disable_key_on_exceed` on a budget that does not count one key."""

    status, slug, title = 422, "kill-switch-needs-key-scope", "Kill Switch Needs a Key Budget"

    def __init__(self) -> None:
        detail = "`disable_key_on_exceed` is only for budgets whose scope is one key."
        super().__init__(detail, errors=field_errors("body", "disable_key_on_exceed", detail, "key_scope_only"))
