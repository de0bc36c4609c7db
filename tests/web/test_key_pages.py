"""`/keys/{id}/delete`: the confirmation step without JavaScript names the key and deletes nothing yet."""

from __future__ import annotations

from tests.web.conftest import Browser, text
from tests.web.test_budget_pages import KEY


async def test_deleting_a_key_asks_first(web: Browser) -> None:
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}", KEY)
    r = await web.get(f"/keys/{KEY['id']}/delete")
    said = text(r.text)
    assert "Delete the key “prod”?" in said
    assert f"The key {KEY['label']} and its ciphertext are deleted." in said
    assert f'action="/keys/{KEY["id"]}/delete"' in r.text
    assert [c.method for c in web.gateway.calls] == ["GET"]
