"""The channel forms as typed: kept as text, so a refused form comes back as the person left it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

EventName = Annotated[str, Field(max_length=40)]


class ChannelForm(BaseModel):
    """`/channels`: the API judges the values; these bounds only keep input small. The URL of a Slack or
    Discord webhook is a credential: it is sent on and never shown back, not even after a refusal."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(default="webhook", max_length=20)
    name: str = Field(default="", max_length=200)
    url: str = Field(default="", max_length=2048)
    email: str = Field(default="", max_length=320)
    events: list[EventName] = Field(default_factory=list, max_length=50)


class ChannelEditForm(BaseModel):
    """`/channels/{id}/edit`: the name and the events a channel takes."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(default="", max_length=200)
    events: list[EventName] = Field(default_factory=list, max_length=50)
