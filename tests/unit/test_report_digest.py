"""What makes an external worker's report a repeat: the same call, lease token and body,
whatever the order of the body's fields."""

from __future__ import annotations

from uuid import uuid4

from taskmill.lifecycle.outcomes import report_digest


def test_the_same_report_digests_the_same_whatever_its_key_order() -> None:
    token = uuid4()
    first = report_digest("complete", token, {"result": {"a": 1, "b": [1.5, "x"]}})
    assert report_digest("complete", token, {"result": {"b": [1.5, "x"], "a": 1}}) == first


def test_another_call_token_or_body_is_another_report() -> None:
    token = uuid4()
    fail = report_digest("fail", token, {"error": "boom", "retryable": True})
    assert (
        len(
            {
                fail,
                report_digest("fail", token, {"error": "boom", "retryable": False}),
                report_digest("fail", token, {"error": "boom!", "retryable": True}),
                report_digest("fail", uuid4(), {"error": "boom", "retryable": True}),
                report_digest("complete", token, {"error": "boom", "retryable": True}),
                report_digest("complete", token, {"result": None}),
                report_digest("complete", token, {"result": 0}),
            }
        )
        == 7
    )
