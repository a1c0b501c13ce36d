"""Disabling is the third way to lose the last admin, next to demoting and deleting: it is
refused like them. Found by schemathesis as an admin: the stateful run disabled its own
account (`PATCH /v1/users/{own id} {"disabled": true}` answered 200), which ended its
sessions and left the platform without an enabled admin."""

from __future__ import annotations

import pytest
from taskmill.errors import Conflict
from taskmill.users.store import UserStore

from tests.integration.api.conftest import make_account
from tests.support.apigw import ApiClient


def _id(client: ApiClient) -> str:
    return str(client.get("/v1/auth/me").body["id"])


def test_an_admin_cannot_disable_itself(as_admin: ApiClient) -> None:
    answer = as_admin.patch(f"/v1/users/{_id(as_admin)}", {"disabled": True})
    assert (answer.status, answer.error_code) == (400, "invalid_input")
    assert as_admin.get("/v1/users").status == 200  # still an admin, still signed in


def test_an_admin_disables_another_admin(as_admin: ApiClient, db) -> None:
    other = make_account(db, "second@example.com", role="admin")
    assert as_admin.patch(f"/v1/users/{other.id}", {"disabled": True}).status == 200


def test_the_last_enabled_admin_cannot_be_disabled(db) -> None:
    # Two admins disabling each other at the same moment: the second statement finds no
    # other enabled admin and is refused.
    users = UserStore(db)
    first = make_account(db, "first@example.com", role="admin")
    second = make_account(db, "second@example.com", role="admin")
    assert users.update(second.id, disabled=True).disabled
    with pytest.raises(Conflict, match="last admin"):
        users.update(first.id, disabled=True)
    assert not users.get(first.id).disabled
    assert users.update(first.id, email="renamed@example.com").email == "renamed@example.com"
    assert users.update(second.id, disabled=False).disabled is False
