"""Each mail kind's renderer (`owr_auth.mail.compose.Renderer`), from the domain that owns the kind."""

from __future__ import annotations

from typing import get_args

from owr_auth.invitations import mail as invitations
from owr_auth.mail.compose import Renderer
from owr_auth.notices import service as notices
from owr_auth.password_reset import service as password_reset
from owr_auth.verification import service as verification

RENDERERS: dict[str, Renderer] = {
    "verify_email": verification.render,
    "password_reset": password_reset.render,
    "invitation": invitations.render_mail,
    **dict.fromkeys(get_args(notices.NoticeKind), notices.render),
}
