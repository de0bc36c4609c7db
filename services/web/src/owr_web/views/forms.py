"""Forms' outcomes: the API's refusal said next to the fields it blames, and one-word flash notices.

A form posts, web calls the API, and on a 422 the same form comes back with what the person typed and each
message under its field (`aria-describedby`); what no field claims is said above the form. A success answers
with a redirect whose `?done=` names a fixed notice (never an echo of input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from owr_web.api.errors import ApiProblem


@dataclass(slots=True)
class Refusal:
    """Messages by form field, and the one said above the form (None when every message has a field)."""

    fields: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    def __bool__(self) -> bool:
        return bool(self.fields or self.message)


def blame(problem: ApiProblem, fields: Mapping[str, str]) -> Refusal:
    """Map the API's errors to form fields: `fields` takes a body path (`scope.id`, `thresholds`) to a form
    field; the longest path that prefixes an error's location wins (`thresholds.2` → `thresholds`)."""
    refusal = Refusal()
    unclaimed = []
    for location, text in problem.field_errors().items():
        claimed = [p for p in fields if location == p or location.startswith(p + ".")]
        if claimed:
            refusal.fields.setdefault(fields[max(claimed, key=len)], text)
        else:
            unclaimed.append(text)
    if unclaimed or not refusal.fields:
        refusal.message = "; ".join(unclaimed) if unclaimed else problem.detail
    return refusal


def notice(done: str | None, notices: Mapping[str, str]) -> str | None:
    """The fixed notice a redirect's `?done=` names; anything else says nothing."""
    return notices.get(done or "")
