"""`make run`'s first admin: an e-mail the API's login would read as another address (spaces
stripped, fullwidth letters made plain) is refused before anything starts, since the account
would be stored as given and no login would ever find it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskmill_local.preflight import PreflightError, check_admin


@pytest.mark.parametrize(
    "email", ["admin@example.com ", " admin@example.com", "\uff41dmin@example.com", "admin"]
)
def test_an_admin_email_the_login_would_read_otherwise_is_refused(
    tmp_path: Path, email: str
) -> None:
    with pytest.raises(PreflightError, match=r"TASKMILL_ADMIN_EMAIL .* is not an e-mail address"):
        check_admin(email, None, tmp_path)


@pytest.mark.parametrize(
    "email", ["admin@example.com", "Admin@Example.com", "admin@taskmill.local"]
)
def test_an_admin_email_the_login_reads_as_it_is_is_taken(tmp_path: Path, email: str) -> None:
    check_admin(email, "long-enough-password", tmp_path)
