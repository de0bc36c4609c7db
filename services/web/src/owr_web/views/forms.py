"""Forms' outcomes: the API's refusal said next to the fields it blames, and one-word flash notices.

A form posts, web calls the API, and on a 422 the same form comes back with what the person typed and each
message under its field (`aria-describedby`); what no field claims is said above the form. A success answers
with a redirect whose `?done=` names a fixed notice (never an echo of input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

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


# A number typed into a form: bounded before `Decimal` sees it, so `1e999999999` (a gigabyte of digits once
# formatted), `NaN` or `Infinity` never reach the API's body; the API's own bounds say the rest.
NUMBER_MAX_CHARS = 40
NUMBER_MAX_EXPONENT = 30


def parse_number(text: str) -> Decimal | None:
    """A finite number of at most 40 characters with a small exponent (`12.50`, `1e3`); None otherwise."""
    text = text.strip()
    if not text or len(text) > NUMBER_MAX_CHARS:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    exponent = value.as_tuple().exponent
    if not value.is_finite() or not isinstance(exponent, int) or abs(exponent) > NUMBER_MAX_EXPONENT:
        return None
    return value


def notice(done: str | None, notices: Mapping[str, str]) -> str | None:
    """The fixed notice a redirect's `?done=` names; anything else says nothing."""
    return notices.get(done or "")
