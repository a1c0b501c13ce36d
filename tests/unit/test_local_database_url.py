"""`make run`'s message for an unreachable `DATABASE_URL`: never the password, and still
readable when the password is short or is also the user name."""

from __future__ import annotations

from taskmill_local.preflight import describe_database, redact


def test_the_password_is_hidden_wherever_the_driver_quotes_it() -> None:
    text = 'connection to "postgresql://app:s3cr-et@db:5432/x" failed (password=s3cr-et); s3cr-et'
    hidden = redact(text, "s3cr-et", "app")
    assert "s3cr-et" not in hidden
    assert "postgresql://app@db:5432/x" in hidden
    assert hidden.endswith(" ***")


def test_a_short_password_does_not_mangle_the_words_around_it() -> None:
    """`postgres://u:p@host:notaport/db` printed "Servname not su******orted for ai_sockty***e"."""
    where, password = describe_database("postgres://u:p@host:5432/db")
    assert (where, password) == ("u@host:5432/db", "p")
    text = "failed to resolve host 'host': [Errno -8] Servname not supported for ai_socktype"
    assert redact(text, password, "u") == text


def test_a_password_that_is_the_user_name_leaves_the_user_name_readable() -> None:
    text = 'connection failed: FATAL: password authentication failed for user "postgres"'
    assert redact(text, "postgres", "postgres") == text
    assert "postgres" not in redact(text, "postgres", "admin")
