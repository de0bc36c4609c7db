"""Sealing a channel's target and signing secrets (`owr_shared.envelope`), and making a new secret.

Each sealed value is bound to its workspace, its channel and its kind (`target`, `secret`,
`previous_secret`): a value copied to another row, channel or kind does not open.
"""

from __future__ import annotations

import base64
import os
import uuid

from owr_shared.envelope import AadContext, Binding, Envelope
from owr_usage.channels.errors import ChannelUnreadable
from owr_usage.settings import UsageSettings

CHANNEL_CONTEXT = AadContext(secret=b"owr:channel:v1:", dek=b"owr:channel-dek:v1:")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def channel_envelope(settings: UsageSettings) -> Envelope:
    """The envelope of channel values under `USAGE_KEKS`; outside production an unset one is ephemeral."""
    keks, active = settings.keks_or_ephemeral(
        "sealing alert channels with a KEK generated at start; their URLs, addresses and secrets will not be "
        "readable after a restart."
    )
    return Envelope(keks, active, context=CHANNEL_CONTEXT, unreadable=ChannelUnreadable, event="channel_unreadable")


def binding(workspace_id: uuid.UUID, channel_id: uuid.UUID, kind: str) -> Binding:
    return {"workspace_id": workspace_id, "channel_id": channel_id, "kind": kind}


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()
