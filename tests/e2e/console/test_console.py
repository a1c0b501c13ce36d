"""The web console (SPEC §7) against the local stack, in headless Chromium: what a user and
an operator see and do. Screenshots of every page land in tests/e2e/console/screenshots/."""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Http,
    RunningStack,
    live_redrive_task,
    start_stack,
)
from tests.e2e.console.conftest import Console

pytestmark = pytest.mark.e2e
PASSWORD = "a long password"
ADMIN_PAGES = ["Queues", "Dead letters", "Limits", "Users", "Audit"]
ADMIN_ROUTES = ["/queues", "/dead-letters", "/limits", "/users", "/audit"]


def wait_until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return result


def new_user(stack: RunningStack) -> tuple[str, Http]:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    http = Http(stack.url)
    status, body = http.call("POST", "/v1/auth/register", {"email": email, "password": PASSWORD})
    assert status == 201, body
    http.login(email, PASSWORD)
    return email, http


def admin(stack: RunningStack) -> Http:
    http = Http(stack.url)
    http.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    return http


def dead_letter(stack: RunningStack, operator: Http, priority: str) -> dict[str, Any]:
    """A new user's job that fails at once, once it is in `priority`'s DLQ."""
    _, user = new_user(stack)
    status, job = user.call(
        "POST", "/v1/jobs", {"type": "fail", "max_attempts": 1, "priority": priority}
    )
    assert status == 201, job
    wait_until(
        lambda: any(
            item["job_id"] == job["id"]
            for item in operator.call("GET", f"/v1/dlq/{priority}")[1]["items"]
        )
    )
    return job


def raw_session(console: Console) -> str | None:
    return console.page.evaluate("sessionStorage.getItem('taskmill.session')")


def stored_session(console: Console) -> dict[str, Any]:
    raw = raw_session(console)
    assert raw, "signed in"
    return json.loads(raw)


def put_session(console: Console, value: dict[str, Any]) -> None:
    console.page.evaluate(
        "value => sessionStorage.setItem('taskmill.session', value)", json.dumps(value)
    )


def test_sign_in_create_a_job_from_the_form_and_watch_it_succeed(
    console: Console, stack: RunningStack
) -> None:
    email, _ = new_user(stack)
    page = console.page
    console.open()
    page.get_by_role("heading", name="Sign in to Taskmill").wait_for()
    console.shoot("sign-in")
    console.sign_in(email, PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    # No filter applied: not "No jobs match these filters."
    page.get_by_text("No jobs yet: create one with New job.").wait_for()
    page.get_by_role("button", name="New job").click()
    page.get_by_role("heading", level=1, name="New job").wait_for()
    page.get_by_label("Type").select_option("sleep")
    seconds = page.get_by_label("Seconds")
    # Out of the schema's bounds: the API's 400 details are shown next to the field.
    seconds.fill("5000")
    console.expected_errors.append("status of 400")
    page.get_by_role("button", name="Create").click()
    field_error = page.locator(".field-error:visible")
    field_error.wait_for()
    assert "3600" in field_error.inner_text()
    assert seconds.get_attribute("aria-invalid") == "true"
    assert seconds.evaluate("el => el === document.activeElement")
    console.shoot("new-job-error")
    seconds.fill("0.5")
    page.get_by_label("Name").fill("made in the console")
    page.get_by_label("Tags").fill("console, e2e")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", level=1, name="Job made in the console").wait_for()
    facts = page.locator("dl.facts")
    facts.get_by_text("succeeded", exact=True).wait_for()
    assert page.get_by_label(re.compile("^Progress: 100%")).get_attribute("value") == "100"
    history = page.get_by_role("table", name="History of transitions")
    assert [history.get_by_text(s, exact=True).count() >= 1 for s in ("queued", "running")] == [
        True,
        True,
    ]
    # Created by the one signed in, run by the platform's worker.
    by = history.locator("td[data-label=By]").all_inner_texts()
    assert (by[0], "worker" in by) == ("you", True), by
    assert '"slept": 0.5' in page.locator("pre.json").nth(1).inner_text()
    page.get_by_text("This job has no children.").wait_for()
    console.shoot("job-detail")
    page.get_by_role("link", name="← Jobs").click()
    page.get_by_role("link", name="made in the console").wait_for()
    console.shoot("jobs")

    token = stored_session(console)["access"]
    api_requests = [r for r in console.requests if "/v1/" in r.url]
    assert api_requests
    assert all(token not in r.url for r in console.requests)
    assert not any(token in text for text in console.everything)
    signed = [r for r in api_requests if r.headers.get("authorization")]
    assert signed, "the API calls carry the token in the Authorization header"

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert raw_session(console) is None
    console.open("/jobs")
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_role("navigation", name="Main").count() == 0


def test_an_expired_access_token_is_refreshed_with_the_refresh_token(
    console: Console, stack: RunningStack
) -> None:
    email, _ = new_user(stack)
    page = console.page
    console.open()
    console.sign_in(email, PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    first = stored_session(console)
    # Past its expiry as the console knows it: refreshed before the next request.
    put_session(console, {**first, "expiresAt": 0})
    with page.expect_response(lambda r: r.url.endswith("/v1/auth/refresh")) as refreshed:
        page.get_by_role("button", name="Apply filters").click()
    assert refreshed.value.status == 200
    # The console stores the new pair after the response arrives, not with it.
    wait_until(lambda: stored_session(console)["access"] != first["access"])
    second = stored_session(console)
    assert second["refresh"] != first["refresh"]
    # Refused by the API (a token the console thought valid): refreshed once, then retried.
    console.expected_errors.append("status of 401")
    far = (time.time() + 600) * 1000
    put_session(console, {**second, "access": "not.a.token", "expiresAt": far})
    with page.expect_response(lambda r: r.url.endswith("/v1/auth/refresh")) as again:
        page.get_by_role("button", name="Apply filters").click()
    assert again.value.status == 200
    wait_until(lambda: stored_session(console)["access"] != "not.a.token")
    assert page.get_by_role("alert").filter(has_text=re.compile(".+")).count() == 0


def test_an_unreadable_stored_session_falls_back_to_the_sign_in_form(
    console: Console, stack: RunningStack
) -> None:
    """Anything else in the session's storage (a hand edit, an extension) stopped every page
    on "Loading the console…" without a Sign out button, and reloading did not help."""
    page = console.page
    console.open("/jobs")
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    for stored in ('{"access": "x", "refresh": "y"}', '"hello"', "{not json", "null"):
        page.get_by_role("heading", level=1, name="Jobs").wait_for()
        page.evaluate("value => sessionStorage.setItem('taskmill.session', value)", stored)
        page.reload()
        page.get_by_role("button", name="Sign in").wait_for()
        page.get_by_role("alert").filter(has_text="Your session could not be read").wait_for()
        assert raw_session(console) is None, stored
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)


def test_a_session_gone_while_a_page_is_open_goes_to_the_sign_in_form(
    console: Console, stack: RunningStack
) -> None:
    """Its stored session removed (another way of signing out), a page kept the header of a
    signed-in user and answered every action with "Sign in first." and no form."""
    page = console.page
    page.clock.install()
    console.open("/jobs")
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    page.evaluate("sessionStorage.removeItem('taskmill.session')")
    # The live refresh is the page's next request (jumped to, if it has not come already).
    page.clock.fast_forward(JOBS_REFRESH_MS)
    page.get_by_role("button", name="Sign in").wait_for()
    page.get_by_role("alert").filter(has_text="Your session has ended").wait_for()
    assert page.get_by_role("button", name="Sign out").count() == 0
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()


def test_a_request_after_signing_out_does_not_say_the_session_ended(
    console: Console, stack: RunningStack
) -> None:
    """A request still on its way when the user signed out (a redrive's progress check after
    its wait, a refresh) found no session, routed to the sign-in form again saying the
    session had ended, and cleared what was being typed there."""
    page = console.page
    console.open("/jobs")
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.get_by_label("Email").fill("typing@example.com")
    # The console's own module instance (same URL as main.js imports), as a late request.
    late = page.evaluate(
        """async () => {
            const client = await import(new URL("js/api.js", document.baseURI).href);
            try {
                await client.api("GET", "/v1/jobs");
                return "answered";
            } catch (error) {
                return error.code;
            }
        }"""
    )
    assert late == "signed_out"
    assert page.get_by_label("Email").input_value() == "typing@example.com"
    assert page.get_by_role("alert").filter(has_text=re.compile(".+")).count() == 0


def test_a_field_error_inside_a_field_says_where(console: Console, stack: RunningStack) -> None:
    """A header that is not a string said "Input should be a valid string" under Headers,
    without naming the header."""
    page = console.page
    console.open("/jobs/new")
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="New job").wait_for()
    page.get_by_label("Type").select_option("http.request")
    page.get_by_label("URL").fill("http://example.com/hook")
    headers = page.get_by_label("Headers")
    headers.fill('{"X-Count": 1}')
    console.expected_errors.append("status of 400")
    page.get_by_role("button", name="Create").click()
    page.locator(".field-error:visible").get_by_text(
        "X-Count: Input should be a valid string"
    ).wait_for()
    assert headers.get_attribute("aria-invalid") == "true"


def test_an_external_type_declared_without_properties_takes_its_payload_as_json(
    console: Console, stack: RunningStack
) -> None:
    """The README's external type (`"schema": {"type": "object", "required": ["url"]}`) showed
    "This type takes no payload.": every create from the form was refused for its missing
    url, and there was no field to give it in."""
    page = console.page
    console.open("/jobs/new")
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="New job").wait_for()
    page.get_by_label("Type").select_option("video.render")
    assert page.get_by_text("This type takes no payload.").count() == 0
    payload = page.get_by_label("Payload (JSON)")
    assert "url" in page.locator("fieldset.payload").inner_text()  # what the type requires
    console.expected_errors.append("status of 400")
    page.get_by_role("button", name="Create").click()
    page.locator(".field-error:visible").get_by_text("'url' is a required property").wait_for()
    assert payload.get_attribute("aria-invalid") == "true"
    payload.fill("[1, 2]")
    page.get_by_role("button", name="Create").click()
    page.locator(".field-error:visible").get_by_text("a JSON object").wait_for()
    payload.fill('{"url": "https://example.com/film.mp4"}')
    page.get_by_label("Name").fill("render from the console")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", level=1, name="Render from the console").wait_for()
    assert "https://example.com/film.mp4" in page.locator("pre.json").first.inner_text()


def test_a_job_that_does_not_exist_says_so_and_stops_loading(
    console: Console, stack: RunningStack
) -> None:
    """The answer came with "Loading…" under it for good (and the page marked busy)."""
    page = console.page
    console.expected_errors.append("status of 404")
    console.open(f"/jobs/{uuid.uuid4()}")
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("alert").filter(
        has_text="This job does not exist, or it is not yours."
    ).wait_for()
    page.get_by_role("link", name="Back to your jobs").click()
    page.get_by_role("heading", level=1, name="Jobs").wait_for()


def test_a_role_change_that_fails_leaves_the_role_shown_as_it_is(
    console: Console, stack: RunningStack
) -> None:
    """The select stayed on the role asked for, under an alert ("user not found") that did
    not say whose change failed: as if the change had been made."""
    operator = admin(stack)
    email = f"role-{uuid.uuid4().hex[:8]}@example.com"
    status, _ = operator.call("POST", "/v1/users", {"email": email, "password": PASSWORD})
    assert status == 201
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Users")
    console.expected_errors.append("status of 404")
    gone = {"error": {"code": "not_found", "message": "user not found", "details": None}}
    page.route(
        "**/v1/users/*/role",
        lambda route: route.fulfill(
            status=404, content_type="application/json", body=json.dumps(gone)
        ),
    )
    page.get_by_label(f"Role of {email}").select_option("admin")
    page.get_by_role("alert").filter(has_text=f"{email} was not changed: user not found").wait_for()
    wait_until(lambda: page.get_by_label(f"Role of {email}").input_value() == "user")


def test_a_session_ended_elsewhere_says_so_on_the_sign_in_page(
    console: Console, stack: RunningStack
) -> None:
    """The refresh token was revoked (signed out elsewhere, the account disabled): when the
    access token runs out the console cannot go on, and the sign-in form it falls back to says
    why instead of appearing as if nothing had happened."""
    email, http = new_user(stack)
    page = console.page
    page.clock.install()
    console.open("/jobs")
    console.sign_in(email, PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    # The page's first reads done: on a loaded machine one still on its way when the logout
    # below lands met it first (401), and the page went to the sign-in form before the click.
    page.wait_for_load_state("networkidle")
    # No live refresh between the change and the click: the click is what meets it.
    page.clock.pause_at(page.evaluate("Date.now()") + 100)
    current = stored_session(console)
    status, _ = http.call("POST", "/v1/auth/logout", {"refresh_token": current["refresh"]})
    assert status in (200, 204)
    console.expected_errors.append("status of 401")
    put_session(console, {**current, "expiresAt": 0})
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.get_by_role("alert").filter(has_text="Your session has ended").wait_for()
    assert raw_session(console) is None
    page.clock.resume()
    console.sign_in(email, PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    # A sign out of one's own is no surprise: the form says nothing then.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_role("alert").filter(has_text=re.compile(".+")).count() == 0


def test_find_a_failed_job_on_the_dead_letters_page_and_redrive_it(
    console: Console, stack: RunningStack
) -> None:
    _, user = new_user(stack)
    operator = admin(stack)
    status, job = user.call(
        "POST",
        "/v1/jobs",
        {"type": "fail", "max_attempts": 1, "payload": {"message": "broken on purpose"}},
    )
    assert status == 201, job
    assert user.wait_for(job["id"], {"failed"}, timeout=30)["status"] == "failed"
    wait_until(
        lambda: any(
            item["job_id"] == job["id"]
            for item in operator.call("GET", "/v1/dlq/normal")[1]["items"]
        )
    )
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Dead letters")
    row_box = page.get_by_label(f"Select job {job['id']}")
    row_box.wait_for()
    assert page.get_by_text("broken on purpose").count() >= 1
    console.shoot("dead-letters")
    row_box.check()
    page.get_by_role("button", name="Dry run").click()
    outcome = page.locator(".outcome")
    outcome.get_by_text("Dry run: 1 job would be redriven.").wait_for()
    assert operator.call("GET", f"/v1/jobs/{job['id']}")[1]["redrive_count"] == 0
    page.get_by_role("button", name="Redrive selected (1)").click()
    outcome.get_by_text("Done: 1 job redriven.").wait_for()
    console.shoot("dead-letters-redriven")
    redriven = operator.call("GET", f"/v1/jobs/{job['id']}")[1]
    assert redriven["redrive_count"] == 1
    assert redriven["attempts"] in (0, 1)  # a fresh budget; it may have run (and failed) again


def test_the_dead_letters_page_says_when_a_background_redrive_hides_messages(
    console: Console, stack: RunningStack
) -> None:
    operator = admin(stack)
    job = dead_letter(stack, operator, "high")
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    note = page.locator("#main").get_by_text(
        "A background redrive is running: the messages it has passed over are hidden until it ends."
    )
    with live_redrive_task(stack.data_dir, "high"):
        console.nav("Dead letters")
        page.get_by_label("Priority").select_option("high")
        page.get_by_label(f"Select job {job['id']}").wait_for()
        note.wait_for()
        console.shoot("dead-letters-while-redriving")
    page.get_by_label("Priority").select_option("normal")
    page.get_by_label("Priority").select_option("high")
    page.get_by_label(f"Select job {job['id']}").wait_for()
    note.wait_for(state="detached")


def test_pause_and_resume_a_queue(console: Console, stack: RunningStack) -> None:
    operator = admin(stack)
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Queues")
    page.get_by_role("img", name="Jobs finished per minute, last hour").wait_for()

    def paused() -> bool:
        items = operator.call("GET", "/v1/queues")[1]["items"]
        return next(q for q in items if q["priority"] == "low")["paused"]

    page.get_by_role("button", name="Pause low").click()
    page.get_by_role("button", name="Resume low").wait_for()
    assert paused() is True
    console.shoot("queues-paused")
    page.get_by_role("button", name="Resume low").click()
    page.get_by_role("button", name="Pause low").wait_for()
    assert paused() is False
    console.shoot("queues")


def test_a_user_is_refused_the_admin_pages(console: Console, stack: RunningStack) -> None:
    email, _ = new_user(stack)
    page = console.page
    console.open()
    console.sign_in(email, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Jobs", exact=True).wait_for()
    assert nav.get_by_role("link").all_inner_texts() == ["Jobs"]
    for name in ADMIN_PAGES:
        assert page.get_by_role("link", name=name, exact=True).count() == 0
    for route in ADMIN_ROUTES:
        console.open(route)
        page.get_by_role("heading", level=1, name="Not allowed").wait_for()
        assert page.get_by_role("alert").filter(has_text="for administrators").count() == 1
    console.shoot("refused")
    admin_calls = [
        r.url
        for r in console.requests
        if re.search(r"/v1/(queues|dlq|limits|users|audit|stats)", r.url)
    ]
    assert admin_calls == [], "a user's console never asks for admin data"


def test_a_worker_account_is_told_what_it_is_for_instead_of_refused_requests(
    console: Console, stack: RunningStack
) -> None:
    """A worker signing in got the Jobs page with "You are not allowed to do this." (a 403 it
    asked for itself, again at every live refresh) and a New job button that could only fail."""
    email = f"worker-{uuid.uuid4().hex[:8]}@example.com"
    status, body = admin(stack).call(
        "POST", "/v1/users", {"email": email, "password": PASSWORD, "role": "worker"}
    )
    assert status == 201, body
    page = console.page
    console.open()
    console.sign_in(email, PASSWORD)
    for route in ["/jobs", "/jobs/new", *ADMIN_ROUTES]:
        console.open(route)
        page.get_by_role("heading", level=1, name="A worker account").wait_for()
        assert page.get_by_role("alert").filter(has_text="POST /v1/workers/claim").count() == 1
        assert page.get_by_role("button", name="New job").count() == 0
    assert page.get_by_role("navigation", name="Main").get_by_role("link").count() == 0
    console.shoot("worker")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    refused = [r.url for r in console.requests if re.search(r"/v1/(jobs|job-types|queues)", r.url)]
    assert refused == [], "a worker's console asks for nothing a worker may not read"


def test_sign_in_with_the_keyboard_alone_and_see_where_focus_is(
    console: Console, stack: RunningStack
) -> None:
    email, _ = new_user(stack)
    page = console.page
    console.open()
    page.get_by_role("button", name="Sign in").wait_for()
    # The form takes focus as the page opens: typing goes straight into Email.
    assert page.evaluate("document.activeElement.id") == page.get_by_label("Email").get_attribute(
        "id"
    )
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    assert outline not in ("none", ""), "the focused button shows where focus is"
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="Jobs").wait_for()


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_the_screen(console: Console, stack: RunningStack, width: int) -> None:
    """Each page at a desktop and a phone width: nothing scrolls sideways; screenshots."""
    _, user = new_user(stack)
    status, job = user.call(
        "POST", "/v1/jobs", {"type": "sleep", "payload": {"seconds": 0}, "tags": ["layout"]}
    )
    assert status == 201, job
    operator = admin(stack)
    if operator.call("GET", "/v1/limits")[0] == 404:
        console.expected_errors.append("status of 404")  # issue 15's routes not landed yet
    page = console.page
    page.set_viewport_size({"width": width, "height": 900})
    console.open()
    page.get_by_role("button", name="Sign in").wait_for()
    console.no_horizontal_scroll()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    page.get_by_role("link", name=job["id"][:8]).wait_for()
    console.no_horizontal_scroll()
    console.shoot("jobs-admin")
    page.get_by_role("link", name=job["id"][:8]).click()
    page.locator("dl.facts").wait_for()
    console.no_horizontal_scroll()
    console.shoot("job")
    console.open("/jobs/new")
    page.get_by_label("Type").select_option("http.request")
    # One line for the URL (a URI in the type's schema), not a three-row text area.
    assert page.get_by_label("URL").evaluate("el => `${el.tagName}:${el.type}`") == "INPUT:url"
    console.no_horizontal_scroll()
    console.shoot("new-job")
    for name in ADMIN_PAGES:
        console.nav(name)
        page.wait_for_load_state("networkidle")
        console.no_horizontal_scroll()
        console.shoot(name.lower().replace(" ", "-"))


def test_an_admin_changes_a_users_role_and_finds_it_in_the_audit_log(
    console: Console, stack: RunningStack
) -> None:
    email, user = new_user(stack)
    status, job = user.call("POST", "/v1/jobs", {"type": "noop", "delay_seconds": 3600})
    assert status == 201, job
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Users")
    page.get_by_label(f"Role of {email}").select_option("worker")
    # Said where it was done, not only to screen readers.
    page.locator(".notice").get_by_text(f"{email} is now worker.").wait_for()
    wait_until(lambda: user.call("GET", "/v1/auth/me")[1]["role"] == "worker")
    console.nav("Audit")
    page.get_by_label("Action").fill("user.role_changed")
    page.get_by_role("button", name="Filter").click()
    # The detail in words, not JSON.
    row = page.get_by_role("row").filter(has_text="after: worker")
    row.first.wait_for()
    assert "before: user" in row.first.inner_text()
    # The admin who did it, by e-mail, not by an id to look up.
    assert row.first.locator("td[data-label=Actor]").inner_text() == ADMIN_EMAIL
    console.shoot("audit-role-changed")
    # A job the admin cancelled names both accounts in its history.
    console.open(f"/jobs/{job['id']}")
    page.get_by_role("button", name="Cancel job").click()
    history = page.get_by_role("table", name="History of transitions")
    history.get_by_text("cancelled", exact=True).wait_for()
    assert history.locator("td[data-label=By]").all_inner_texts() == [email, "you"]


def test_set_edit_and_delete_a_limit(console: Console, stack: RunningStack) -> None:
    operator = admin(stack)
    key = f"customer:{uuid.uuid4().hex[:8]}"
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Limits")
    page.get_by_label("Key").fill(key)
    page.get_by_label("Concurrency").fill("3")
    page.get_by_label("Rate limit").fill("10")
    page.get_by_label("Period seconds").fill("60")
    page.get_by_role("button", name="Save limit").click()
    row = page.get_by_role("row").filter(has_text=key)
    row.get_by_text("10 per 60 s").wait_for()
    page.locator(".notice").get_by_text(f"Limit {key} saved.").wait_for()
    assert "running: 0" in row.inner_text()
    stored = operator.call("GET", f"/v1/limits/{key}")[1]
    assert stored["concurrency"] == 3
    assert stored["rate"] == {"limit": 10, "period_seconds": 60}
    console.shoot("limits-set")
    page.get_by_role("button", name=f"Edit {key}").click()
    assert page.get_by_label("Key").input_value() == key
    page.get_by_label("Concurrency").fill("5")
    page.get_by_label("Rate limit").fill("")
    page.get_by_role("button", name="Save limit").click()
    row.get_by_role("cell", name="5", exact=True).wait_for()
    stored = operator.call("GET", f"/v1/limits/{key}")[1]
    assert stored["concurrency"] == 5
    assert stored["rate"] is None
    # Deleting asks first, as deleting a user does: declined, the limit stays.
    asked: list[str] = []

    def decline(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.get_by_role("button", name=f"Delete {key}").click()
    wait_until(lambda: asked)
    assert asked == [f"Delete the limit on {key}? Its jobs run without it."]
    assert operator.call("GET", f"/v1/limits/{key}")[0] == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {key}").click()
    row.wait_for(state="detached")
    page.locator(".notice").get_by_text(f"Limit {key} deleted.").wait_for()
    assert operator.call("GET", f"/v1/limits/{key}")[0] == 404


def test_a_limit_refused_by_the_api_says_which_fields_to_fix(
    console: Console, stack: RunningStack
) -> None:
    """The form's own alert was the API's generic "the request is not valid"."""
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Limits")
    console.expected_errors.append("status of 400")
    page.get_by_label("Key").fill(f"customer:{uuid.uuid4().hex[:8]}")
    page.get_by_label("Concurrency").fill("-3")
    page.get_by_role("button", name="Save limit").click()
    said = "The limit was not saved: fix the fields marked below."
    page.get_by_role("alert").filter(has_text=said).wait_for()


def links(console: Console, table: str) -> list[str]:
    """The hrefs of the links in a table, in the order shown."""
    return list(
        console.page.get_by_role("table", name=table)
        .get_by_role("link")
        .evaluate_all("els => els.map(e => e.getAttribute('href'))")
    )


@dataclass
class Family:
    email: str
    parent: str
    children: set[str]
    total: str  # the child that sums the others


FAN_OUT = 25  # 25 squares and a sum: more than a page of jobs (25) and of children (20)


@pytest.fixture(scope="module")
def family(stack: RunningStack) -> Family:
    """A parent job whose body submitted its children (`context.submit`), run to the end."""
    email, done = run_fanout(stack)
    children = {*done["result"]["parts"], done["result"]["total"]}
    assert len(children) == FAN_OUT + 1
    return Family(email, done["id"], children, done["result"]["total"])


def run_fanout(stack: RunningStack) -> tuple[str, dict[str, Any]]:
    """A new user's `example.fanout` job of FAN_OUT squares, run until the parent succeeded
    (its children may still be unfinished); the user's email and the parent job."""
    email, user = new_user(stack)
    status, parent = user.call(
        "POST", "/v1/jobs", {"type": "example.fanout", "payload": {"count": FAN_OUT}}
    )
    assert status == 201, parent
    done = user.wait_for(parent["id"], {"succeeded", "failed"}, timeout=60)
    assert done["status"] == "succeeded", done
    return email, done


def test_filter_jobs_by_parent_and_page_through_exactly_its_children(
    console: Console, family: Family
) -> None:
    page = console.page
    expected = {f"#/jobs/{c}" for c in family.children}
    console.open()
    console.sign_in(family.email, PASSWORD)
    # Unfiltered, the parent is listed among the owner's jobs.
    wait_until(lambda: len(links(console, "Jobs")) == 25)
    page.get_by_label("Parent job").fill(family.parent)
    page.get_by_role("button", name="Apply filters").click()
    first = wait_until(
        lambda: (shown := links(console, "Jobs")) and set(shown) <= expected and shown
    )
    assert len(first) == 25
    assert f"#/jobs/{family.parent}" not in first
    console.shoot("jobs-by-parent")
    page.get_by_role("button", name="Next page").click()
    page.get_by_text("Page 2", exact=True).wait_for()
    second = wait_until(lambda: (shown := links(console, "Jobs")) and len(shown) == 1 and shown)
    assert set(first) | set(second) == expected
    assert page.get_by_role("button", name="Next page").is_disabled()
    page.get_by_role("button", name="Previous page").click()
    page.get_by_text("Page 1", exact=True).wait_for()
    wait_until(lambda: links(console, "Jobs") == first)


def test_a_jobs_page_lists_its_children_with_their_status(console: Console, family: Family) -> None:
    page = console.page
    expected = {f"#/jobs/{c}" for c in family.children}
    console.open(f"/jobs/{family.parent}")
    console.sign_in(family.email, PASSWORD)
    page.get_by_role("heading", level=2, name="Children").wait_for()
    children = page.get_by_role("table", name="Child jobs")
    wait_until(lambda: len(links(console, "Child jobs")) == 20)
    assert set(links(console, "Child jobs")) <= expected
    page.get_by_text("20 children shown; there are more.").wait_for()
    page.get_by_role("button", name="More children").click()
    # In the page, not the live region that announces the same words to screen readers.
    page.locator("#main").get_by_text(f"{FAN_OUT + 1} children shown.").wait_for()
    assert set(links(console, "Child jobs")) == expected
    assert page.get_by_role("button", name="More children").count() == 0
    # The button is gone: the keyboard lands on the last child, not on the page's top.
    assert page.evaluate("document.activeElement.getAttribute('href')") in expected
    # Every child ran (the sum last, after its dependencies): their statuses are shown.
    wait_until(lambda: children.get_by_text("succeeded", exact=True).count() == FAN_OUT + 1)
    assert children.get_by_text("example.square", exact=True).count() == FAN_OUT
    console.shoot("job-children")
    children.get_by_role("link", name=family.total[:8]).click()
    page.locator("dl.facts").get_by_role("link", name=family.parent).wait_for()
    page.get_by_text("This job has no children.").wait_for()


def test_more_children_keeps_the_keyboard_where_it_was_while_the_page_is_live(
    console: Console, stack: RunningStack
) -> None:
    """While children are unfinished the page re-reads them every 2 s; the children "More
    children" added must not count as a change to redraw (that drops the focus to the top of
    the page)."""
    operator = admin(stack)
    assert operator.call("POST", "/v1/job-types/example.square/pause")[0] == 200
    try:
        email, parent = run_fanout(stack)
        page = console.page
        console.open(f"/jobs/{parent['id']}")
        console.sign_in(email, PASSWORD)
        page.get_by_text("20 children shown; there are more.").wait_for()
        page.get_by_role("button", name="More children").click()
        # In the page, not the live region that announces the same words to screen readers.
        page.locator("#main").get_by_text(f"{FAN_OUT + 1} children shown.").wait_for()
        focused = page.evaluate("document.activeElement.getAttribute('href')")
        assert focused is not None
        assert focused.startswith("#/jobs/")

        # Two more polls of the page, answered (the squares are paused: nothing changes).
        for _ in range(2):
            with page.expect_response(
                lambda r: f"parent_id={parent['id']}" in r.url and "cursor=" in r.url
            ):
                pass
        page.locator("#main").get_by_text(f"{FAN_OUT + 1} children shown.").wait_for()
        assert page.evaluate("document.activeElement.getAttribute('href')") == focused
    finally:
        assert operator.call("POST", "/v1/job-types/example.square/resume")[0] == 200


def names(console: Console) -> set[str]:
    return set(console.page.get_by_role("table", name="Jobs").get_by_role("link").all_inner_texts())


def test_filter_jobs_by_status_type_priority_tag_and_time_and_see_new_ones_live(
    console: Console, stack: RunningStack
) -> None:
    email, user = new_user(stack)
    tag = f"t{uuid.uuid4().hex[:8]}"
    made = {
        "filter a": {"type": "sleep", "payload": {"seconds": 0}, "priority": "high"},
        "filter b": {"type": "fail", "payload": {"message": "no"}, "priority": "low"},
        "filter c": {"type": "sleep", "payload": {"seconds": 0}, "priority": "high"},
    }
    ids = {}
    for name, job in made.items():
        tags = [tag] if name != "filter c" else ["elsewhere"]
        status, body = user.call(
            "POST", "/v1/jobs", {**job, "name": name, "tags": tags, "max_attempts": 1}
        )
        assert status == 201, body
        ids[name] = body["id"]
    assert user.wait_for(ids["filter b"], {"failed"}, timeout=30)["status"] == "failed"
    page = console.page
    console.open()
    console.sign_in(email, PASSWORD)
    wait_until(lambda: names(console) == set(made))

    def apply(expected: set[str], **controls: str) -> None:
        for label, value in controls.items():
            control = page.get_by_label(label, exact=True)
            if control.evaluate("el => el.tagName") == "SELECT":
                control.select_option(value)
            else:
                control.fill(value)
        page.get_by_role("button", name="Apply filters").click()
        if expected:
            wait_until(lambda: names(console) == expected)
        else:
            page.get_by_text("No jobs match these filters.").wait_for()

    apply({"filter a", "filter b"}, Tag=tag)
    apply({"filter b"}, Status="failed")
    apply({"filter a"}, Status="", Type="sleep")
    apply({"filter b"}, Type="", Priority="low")
    apply({"filter a"}, Priority="high")
    # datetime-local is the browser's local time; a day either side is clear of any zone.
    day = datetime.timedelta(days=1)
    now = datetime.datetime.now()
    apply(set(), Priority="", **{"Created after": (now + day).strftime("%Y-%m-%dT%H:%M")})
    apply(
        {"filter a", "filter b"},
        **{
            "Created after": (now - day).strftime("%Y-%m-%dT%H:%M"),
            "Created before": (now + day).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    apply(set(), **{"Created after": "", "Created before": (now - day).strftime("%Y-%m-%dT%H:%M")})
    apply({"filter a", "filter b"}, **{"Created before": ""})
    console.shoot("jobs-filtered")
    # Live refresh: a job created elsewhere appears without a click, within the filters.
    status, body = user.call(
        "POST",
        "/v1/jobs",
        {"type": "sleep", "payload": {"seconds": 0}, "name": "filter d", "tags": [tag]},
    )
    assert status == 201, body
    wait_until(lambda: names(console) == {"filter a", "filter b", "filter d"})
    page.get_by_role("button", name="Clear").click()
    wait_until(lambda: names(console) == {*made, "filter d"})


def test_a_failed_jobs_attempts_and_last_error_then_retry_and_cancel(
    console: Console, stack: RunningStack
) -> None:
    email, user = new_user(stack)
    status, failed = user.call(
        "POST",
        "/v1/jobs",
        {"type": "fail", "max_attempts": 1, "payload": {"message": "broken for the page"}},
    )
    assert status == 201, failed
    assert user.wait_for(failed["id"], {"failed"}, timeout=30)["status"] == "failed"
    status, later = user.call(
        "POST", "/v1/jobs", {"type": "sleep", "payload": {"seconds": 0}, "delay_seconds": 3600}
    )
    assert status == 201, later
    page = console.page
    console.open(f"/jobs/{failed['id']}")
    console.sign_in(email, PASSWORD)
    facts = page.locator("dl.facts")
    facts.get_by_text("1 of 1", exact=True).wait_for()
    page.get_by_role("heading", level=2, name="Last error").wait_for()
    assert "broken for the page" in page.locator("pre.error-text").inner_text()
    assert page.get_by_role("button", name="Cancel job").count() == 0
    console.shoot("job-failed")
    history = page.get_by_role("table", name="History of transitions")
    before = history.get_by_role("row").count()
    page.get_by_role("button", name="Retry job").click()
    # Queued again by its owner: a transition out of "failed" joins the history.
    wait_until(lambda: history.get_by_role("row").count() > before)
    events = user.call("GET", f"/v1/jobs/{failed['id']}/events")[1]["items"]
    assert any(e["from_status"] == "failed" for e in events)
    # Its attempt in words beside the transition it belongs to.
    failed_row = (
        history.get_by_role("row")
        .filter(has=page.get_by_role("cell", name="failed", exact=True))
        .first
    )
    assert "attempt 1" in failed_row.locator("td[data-label=Detail]").inner_text()

    console.open(f"/jobs/{later['id']}")
    facts.get_by_text("scheduled", exact=True).wait_for()
    assert page.get_by_role("button", name="Retry job").count() == 0
    page.get_by_role("button", name="Cancel job").click()
    facts.get_by_text("cancelled", exact=True).wait_for()
    page.get_by_role("button", name="Retry job").wait_for()
    assert user.call("GET", f"/v1/jobs/{later['id']}")[1]["status"] == "cancelled"
    console.shoot("job-cancelled")


def add_history(stack: RunningStack, job_id: str, count: int) -> None:
    """`count` transitions appended to a job's history in the stack's Postgres (running and
    queued in turn, each with its number in `detail`), as hundreds of attempts leave."""
    import psycopg
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(stack.data_dir / "pgdata")
    assert info is not None, "the stack's Postgres is running"
    with psycopg.connect(info.get_uri(database="taskmill"), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO job_events (job_id, to_status, actor, detail) "
            "SELECT %(id)s, CASE WHEN g %% 2 = 1 THEN 'running' ELSE 'queued' END, 'worker', "
            "jsonb_build_object('n', g) FROM generate_series(1, %(count)s) g ORDER BY g",
            {"id": job_id, "count": count},
        )


def test_a_long_history_shows_whole_and_is_read_again_only_when_the_job_moved(
    console: Console, stack: RunningStack
) -> None:
    """The job page read the whole history on every refresh (every 2 s while the job was
    unfinished), and the API's history is a paged list: a history longer than a page must be
    read across pages, and only when the job made a transition since the last read."""
    email, user = new_user(stack)
    status, job = user.call(
        "POST", "/v1/jobs", {"type": "sleep", "payload": {"seconds": 0}, "delay_seconds": 3600}
    )
    assert status == 201, job
    add_history(stack, job["id"], 450)  # with its first event, 451: three pages of 200
    page = console.page
    console.open(f"/jobs/{job['id']}")
    console.sign_in(email, PASSWORD)
    history = page.get_by_role("table", name="History of transitions")
    wait_until(lambda: history.get_by_role("row").count() == 1 + 451)
    rows = history.get_by_role("row")
    assert "scheduled" in rows.nth(1).inner_text()  # the oldest first
    assert rows.nth(451).locator("td[data-label=Detail]").inner_text() == "n 450"  # the newest

    def reads(suffix: str) -> list[str]:
        path = f"/v1/jobs/{job['id']}{suffix}"
        return [r.url for r in console.requests if r.url.split("?")[0].endswith(path)]

    # Polled on while the job is scheduled (a poll starts after the last load ended); its
    # history is not read again meanwhile.
    job_url = f"{stack.url}/v1/jobs/{job['id']}"
    for _ in range(3):
        with page.expect_response(lambda r: r.url == job_url, timeout=30_000):
            pass
    first_reads = reads("/events")
    assert len(first_reads) == 3, first_reads
    assert "cursor=" not in first_reads[0]
    assert all("cursor=" in u for u in first_reads[1:])
    # A transition elsewhere: the next poll reads from the last page read, not from the start.
    assert user.call("POST", f"/v1/jobs/{job['id']}/cancel")[0] == 200
    wait_until(lambda: history.get_by_role("row").count() == 1 + 452)
    assert "cancelled" in rows.nth(452).inner_text()
    assert reads("/events") == [*first_reads, first_reads[-1]]


def test_queues_show_depth_in_flight_oldest_age_and_dlq_depth(
    console: Console, stack: RunningStack
) -> None:
    operator = admin(stack)
    dead_letter(stack, operator, "high")
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Queues")
    queues = page.get_by_role("table", name="Queues")
    queues.wait_for()
    assert queues.get_by_role("columnheader").all_inner_texts() == [
        "Queue",
        "Depth",
        "Delayed",
        "In flight",
        "Oldest age",
        "DLQ depth",
        "State",
        "Action",
    ]
    assert queues.get_by_role("row").count() == 4  # a header and high, normal, low

    def dlq_shown() -> bool:
        depth = next(
            q["dlq_depth"]
            for q in operator.call("GET", "/v1/queues")[1]["items"]
            if q["priority"] == "high"
        )
        return page.get_by_role("link", name=f"{depth} dead letters in high").count() == 1

    wait_until(dlq_shown)
    page.get_by_role("link", name=re.compile("dead letters in high$")).click()
    page.get_by_role("heading", level=1, name="Dead letters").wait_for()


def test_redrive_a_whole_dead_letter_queue_in_the_background_with_its_progress(
    console: Console, stack: RunningStack
) -> None:
    operator = admin(stack)
    job = dead_letter(stack, operator, "low")
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Dead letters")
    page.get_by_label("Priority").select_option("low")
    page.get_by_label(f"Select job {job['id']}").wait_for()
    page.get_by_role("button", name="Redrive all").click()
    page.get_by_role("progressbar", name="Redrive progress").wait_for()
    page.locator(".outcome").get_by_text(
        re.compile(r"^Redrive finished: \d+ redriven\.$")
    ).wait_for(timeout=60_000)
    console.shoot("dead-letters-redrive-all")
    assert operator.call("GET", f"/v1/jobs/{job['id']}")[1]["redrive_count"] == 1


def test_an_admin_adds_disables_and_deletes_a_user(console: Console, stack: RunningStack) -> None:
    operator = admin(stack)
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Users")
    form = page.get_by_role("form", name="Add a user")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("Role").select_option("worker")
    form.get_by_role("button", name="Add user").click()
    page.get_by_label(f"Role of {email}").wait_for()
    page.locator(".notice").get_by_text(f"{email} added as worker.").wait_for()
    assert page.get_by_label(f"Role of {email}").input_value() == "worker"
    page.get_by_role("button", name=f"Disable {email}").click()
    page.get_by_role("button", name=f"Enable {email}").wait_for()
    page.locator(".notice").get_by_text(f"{email} disabled: it can no longer sign in.").wait_for()
    users = operator.call("GET", "/v1/users?limit=200")[1]["items"]
    assert next(u for u in users if u["email"] == email)["disabled"] is True
    assert Http(stack.url).call("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})[
        0
    ] in (401, 403)
    console.shoot("users")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {email}").click()
    page.get_by_label(f"Role of {email}").wait_for(state="detached")
    users = operator.call("GET", "/v1/users?limit=200")[1]["items"]
    assert all(u["email"] != email for u in users)


def test_move_around_with_the_keyboard_and_see_where_focus_is(
    console: Console, stack: RunningStack
) -> None:
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    # Backwards from the page's heading (where focus lands): the header's controls in
    # order, each with a visible focus ring, up to the skip link.
    seen = []
    for _ in range(9):
        page.keyboard.press("Shift+Tab")
        seen.append(page.evaluate("document.activeElement.textContent"))
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", ""), f"focus on {seen[-1]!r} is not visible"
    assert seen == [
        "Sign out",
        "Audit",
        "Users",
        "Limits",
        "Dead letters",
        "Queues",
        "Jobs",
        "Taskmill",
        "Skip to content",
    ]
    for _ in range(7):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Audit"
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="Audit").wait_for()
    # The new page's heading has the focus: the next Tab goes into the page, not the header.
    assert page.evaluate("document.activeElement.tagName") == "H1"


def test_the_limits_page_pages_through_every_limit(console: Console, stack: RunningStack) -> None:
    """Limits per customer key add up; the page showed the first page the API answered and
    nothing to say there were more."""
    operator = admin(stack)
    keys = [f"zz-paging:{n:03d}" for n in range(210)]  # past the 200 the page asked for
    try:
        for key in keys:
            status, body = operator.call("PUT", f"/v1/limits/{key}", {"concurrency": 3})
            assert status == 200, body
        page = console.page
        console.open()
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        console.nav("Limits")
        main = page.locator("#main")
        main.get_by_text(keys[0], exact=True).wait_for()
        next_page = page.get_by_role("button", name="Next page")
        seen = 0
        while main.get_by_text(keys[-1], exact=True).count() == 0:
            seen += 1
            assert seen < 20, "no page shows the last limit"
            assert next_page.count() == 1, "no Next page button"
            assert next_page.is_enabled(), "the last page does not show the last limit"
            next_page.click()
            main.locator("[aria-busy=true]").wait_for(state="detached")
        main.get_by_text(keys[-1], exact=True).wait_for()
        page.get_by_role("button", name="Previous page").click()
        main.get_by_text(keys[-1], exact=True).wait_for(state="detached")
    finally:
        for key in keys:
            operator.call("DELETE", f"/v1/limits/{key}")


# The console's timers (console/js/pages): tests that wait for one jump the page's clock
# (installed before the page loads) instead of waiting it out.
QUEUES_REFRESH_MS = 5_000  # queues.js
JOB_REFRESH_MS = 2_000  # job.js
JOBS_REFRESH_MS = 3_000  # jobs.js


def unavailable_once(console: Console, pattern: str | re.Pattern[str], times: int = 1) -> list[str]:
    """The next `times` requests matching `pattern` answer 503 in the API's envelope, as a
    gateway or a database failover does for a moment; later ones reach the API. Returns the
    URLs refused so far."""
    refused: list[str] = []
    body = json.dumps(
        {"error": {"code": "unavailable", "message": "Try again shortly.", "details": None}}
    )

    def handle(route: Any) -> None:
        if len(refused) < times:
            refused.append(route.request.url)
            route.fulfill(status=503, content_type="application/json", body=body)
        else:
            route.continue_()

    console.page.route(pattern, handle)
    console.expected_errors.append("status of 503")
    return refused


def test_a_failed_redrive_progress_check_is_retried_until_the_redrive_is_shown_finished(
    console: Console, stack: RunningStack
) -> None:
    """One failed poll of a background redrive's task left the page with no progress and an
    error, while the redrive went on."""
    operator = admin(stack)
    job = dead_letter(stack, operator, "low")
    page = console.page
    page.clock.install()
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Dead letters")
    page.get_by_label("Priority").select_option("low")
    page.get_by_label(f"Select job {job['id']}").wait_for()
    refused = unavailable_once(console, "**/v1/dlq/redrives/*", times=2)
    page.get_by_role("button", name="Redrive all").click()
    outcome = page.locator(".outcome")
    outcome.get_by_text(
        re.compile(r"The last progress check failed \(Try again shortly\.\); checking again in")
    ).wait_for()
    page.clock.fast_forward(2_000)  # the second check, refused: then 4 s
    outcome.get_by_text(re.compile(r"checking again in 4 s")).wait_for()
    page.clock.fast_forward(4_000)
    outcome.get_by_text(re.compile(r"^Redrive finished: \d+ redriven\.$")).wait_for(timeout=60_000)
    assert len(refused) == 2
    assert page.get_by_role("alert").filter(has_text="Try again shortly").count() == 0
    assert operator.call("GET", f"/v1/jobs/{job['id']}")[1]["redrive_count"] >= 1


def test_a_pause_error_stays_through_refreshes_until_dismissed(
    console: Console, stack: RunningStack
) -> None:
    """The queues page refreshes every 5 s; a refresh that brought new figures cleared the
    error of a pause that had failed, before it could be read."""
    operator = admin(stack)
    page = console.page
    page.clock.install()
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Queues")
    page.get_by_role("img", name="Jobs finished per minute, last hour").wait_for()
    unavailable_once(console, "**/v1/queues/low/pause")
    refused = page.get_by_role("alert").filter(has_text="Try again shortly.")
    page.get_by_role("button", name="Pause low").click()
    refused.wait_for()
    assert refused.inner_text().startswith("Pausing low failed: Try again shortly.")
    try:
        # Something changes (another admin pauses high): a refresh draws it, error or not.
        assert operator.call("POST", "/v1/queues/high/pause")[0] == 200
        page.clock.fast_forward(QUEUES_REFRESH_MS)
        page.get_by_role("button", name="Resume high").wait_for()
    finally:
        assert operator.call("POST", "/v1/queues/high/resume")[0] == 200
    assert refused.is_visible()
    page.get_by_role("button", name="Pause low").wait_for()  # not paused
    refused.get_by_role("button", name="Dismiss").click()
    refused.wait_for(state="hidden")
    # Acting again is the other way an action's error goes: this pause works.
    page.get_by_role("button", name="Pause low").click()
    page.get_by_role("button", name="Resume low").click()
    page.get_by_role("button", name="Pause low").wait_for()


def test_a_queues_refresh_error_goes_when_a_refresh_answers_again(
    console: Console, stack: RunningStack
) -> None:
    """A refresh that failed left its error up for good while the figures stayed the same:
    an unchanged answer returned before the error was cleared."""
    page = console.page
    page.clock.install()
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Queues")
    page.get_by_role("img", name="Jobs finished per minute, last hour").wait_for()
    unavailable_once(console, "**/v1/queues")
    refused = page.get_by_role("alert").filter(has_text="Try again shortly.")
    page.clock.fast_forward(QUEUES_REFRESH_MS)  # the next refresh, refused
    refused.wait_for()
    page.clock.fast_forward(QUEUES_REFRESH_MS)  # the one after, answered
    refused.wait_for(state="hidden")


def test_the_jobs_page_says_why_its_type_filter_is_empty_until_the_types_arrive(
    console: Console, stack: RunningStack
) -> None:
    """The job types failed to load: the error went with the next live refresh (3 s) and
    the Type filter stayed at "Any" for good, with nothing to say why."""
    email, user = new_user(stack)
    page = console.page
    page.clock.install()
    refused = unavailable_once(console, "**/v1/job-types")
    console.open()
    console.sign_in(email, PASSWORD)
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    said = page.get_by_role("alert").filter(has_text="The job types could not be read")
    said.wait_for()
    page.clock.fast_forward(JOBS_REFRESH_MS)
    noop = page.get_by_label("Type").locator("option[value=noop]")
    noop.wait_for(state="attached")
    said.wait_for(state="hidden")
    assert len(refused) == 1
    names = [t["name"] for t in user.call("GET", "/v1/job-types")[1]]
    options = page.get_by_label("Type").locator("option").all_inner_texts()
    assert options == ["Any", *names]  # each once, though the page kept refreshing


def test_older_audit_events_keep_the_filter_of_the_page_shown(
    console: Console, stack: RunningStack
) -> None:
    """ "Older" sent whatever was in the Action box, applied or not: the next page of one
    action's events became a page of another action's (or none)."""
    operator = admin(stack)
    keys = [f"zz-audit-paging:{n:02d}" for n in range(51)]  # a page is 50 events
    try:
        for key in keys:
            status, body = operator.call("PUT", f"/v1/limits/{key}", {"concurrency": 1})
            assert status == 200, body
        page = console.page
        console.open()
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        console.nav("Audit")
        action = page.get_by_label("Action")
        action.fill("limit.put")
        page.get_by_role("button", name="Filter").click()
        older = page.get_by_role("button", name="Older")
        wait_until(older.is_enabled)
        action.fill("queue.pause")  # typed, not applied
        older.click()
        wait_until(page.get_by_role("button", name="Newer").is_enabled)
        actions = page.get_by_role("table", name="Audit log").locator("td[data-label=Action]")
        shown = actions.all_inner_texts()
        assert set(shown) == {"limit.put"}, shown  # not another action's, not none
        page.get_by_role("button", name="Newer").click()
        wait_until(lambda: page.get_by_role("button", name="Newer").is_disabled())
        assert set(actions.all_inner_texts()) == {"limit.put"}
    finally:
        for key in keys:
            operator.call("DELETE", f"/v1/limits/{key}")


@contextlib.contextmanager
def database_down(stack: RunningStack) -> Iterator[None]:
    """The stack's database refusing connections (as during a failover or a restart), its
    open sessions ended: every API call needing it answers 503 until it is back. Each worker
    poller finds its ended session only with its next batch, whose jobs then wait as after
    a crashed invocation: tests that need jobs to run promptly come before the one using it."""
    import psycopg
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(stack.data_dir / "pgdata")
    assert info is not None, "the stack's Postgres is running"
    with psycopg.connect(info.get_uri(database="postgres"), autocommit=True) as conn:
        conn.execute("ALTER DATABASE taskmill ALLOW_CONNECTIONS false")
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'taskmill'"
            )
            yield
        finally:
            conn.execute("ALTER DATABASE taskmill ALLOW_CONNECTIONS true")


def test_a_jobs_page_drops_its_error_once_the_api_answers_again(
    console: Console, stack: RunningStack
) -> None:
    """A live page that met a 503 said so, and kept saying it after the API had recovered
    and the page showed fresh data again."""
    email, user = new_user(stack)
    status, job = user.call(
        "POST", "/v1/jobs", {"type": "noop", "delay_seconds": 3600, "name": "blip"}
    )
    assert status == 201, job
    page = console.page
    page.clock.install()
    console.open(f"/jobs/{job['id']}")
    console.sign_in(email, PASSWORD)
    page.get_by_role("heading", level=1, name="Job blip").wait_for()
    console.expected_errors.append("status of 503")
    unreachable = page.get_by_role("alert").filter(has_text="the database is unreachable")
    with database_down(stack):
        page.clock.fast_forward(JOB_REFRESH_MS)
        unreachable.wait_for()
    page.clock.fast_forward(JOB_REFRESH_MS)
    unreachable.wait_for(state="hidden")
    page.locator("dl.facts").get_by_text("scheduled", exact=True).wait_for()


def test_an_empty_dead_letter_queue_still_names_failed_jobs_without_a_message(
    browser: Any, tmp_path: Any
) -> None:
    """A failed job whose DLQ message is gone (past the DLQ's retention, purged, never sent
    in an SQS outage) can no longer be redriven from the DLQ. With nothing else in the queue
    the page said only "No dead letters", as if no job had failed."""
    import boto3

    own = start_stack(tmp_path / "data")
    try:
        operator = admin(own)
        job = dead_letter(own, operator, "normal")
        sqs = boto3.client(
            "sqs",
            endpoint_url=(own.data_dir / "sqs.endpoint").read_text().strip(),
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        sqs.purge_queue(
            QueueUrl=sqs.get_queue_url(QueueName="taskmill-local-jobs-normal-dlq")["QueueUrl"]
        )
        peek = wait_until(lambda: operator.call("GET", "/v1/dlq/normal")[1])
        assert (peek["items"], peek["failed_without_message"]) == ([], [job["id"]])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            console = Console(context.new_page(), own.url)
            console.page.set_default_timeout(20_000)
            console.open()
            console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
            console.nav("Dead letters")
            main = console.page.locator("#main")
            main.get_by_text("No dead letters in the normal queue.").wait_for()
            main.get_by_text("1 failed job has no message here").wait_for()
        finally:
            context.close()
    finally:
        own.stop()


def test_a_users_load_error_goes_when_a_refresh_answers(
    console: Console, stack: RunningStack
) -> None:
    """The users list failed to load: its error stayed after a later load worked, and the
    page had no way to load again but leaving it."""
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    refused = unavailable_once(console, re.compile(r"/v1/users\?"))
    console.nav("Users")
    said = page.get_by_role("alert").filter(has_text="Try again shortly.")
    said.wait_for()
    assert page.get_by_role("table", name="Users").count() == 0
    page.get_by_role("button", name="Refresh").click()
    page.get_by_role("table", name="Users").get_by_text(ADMIN_EMAIL, exact=True).wait_for()
    said.wait_for(state="hidden")
    assert len(refused) == 1


def open_new_job_with_types_refused(
    console: Console, stack: RunningStack, times: int, *, timers: bool = True
) -> Any:
    """The New job page, its first `times` reads of the job types refused (the jobs page's
    own read is done before); returns the alert that says so. As the admin: the module's
    tests register as many users as the stack's sign-up throttle lets one address. Without
    `timers` (the page's clock installed), no timer fires once the Jobs page is read."""
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_label("Type").locator("option[value=noop]").wait_for(state="attached")
    refused = unavailable_once(console, "**/v1/job-types", times=times)
    if not timers:
        page.clock.pause_at(page.evaluate("Date.now()") + 100)
    page.get_by_role("button", name="New job").click()
    page.get_by_role("heading", level=1, name="New job").wait_for()
    said = page.get_by_role("alert").filter(
        has_text=re.compile(r"^The job types could not be read \(.+\): trying again in \d+ s\.")
    )
    said.wait_for()
    return said, refused


def test_the_new_job_page_reads_the_job_types_again_until_they_come(
    console: Console, stack: RunningStack
) -> None:
    """The job types failed to load: the page said so once, never asked again, and offered
    an empty Type list for good."""
    page = console.page
    page.clock.install()
    said, refused = open_new_job_with_types_refused(console, stack, times=2)
    page.clock.fast_forward(2_000)  # the first retry (refused), then one twice as late
    page.get_by_text(re.compile(r"trying again in 4 s\.")).wait_for()
    page.clock.fast_forward(4_000)
    page.get_by_label("Type").locator("option[value=sleep]").wait_for(state="attached")
    said.wait_for(state="hidden")
    assert len(refused) == 2
    page.get_by_label("Type").select_option("sleep")
    page.get_by_label("Seconds").wait_for()


def test_try_again_reads_the_job_types_at_once(console: Console, stack: RunningStack) -> None:
    page = console.page
    page.clock.install()
    # No timer fires once the page is open: only the button can read the types again.
    said, refused = open_new_job_with_types_refused(console, stack, times=1, timers=False)
    page.get_by_role("button", name="Create").click()
    page.get_by_text("No job types yet: they could not be read.").wait_for()
    said.get_by_role("button", name="Try again").click()
    page.get_by_label("Type").locator("option[value=noop]").wait_for(state="attached")
    said.wait_for(state="hidden")
    assert len(refused) == 1


def test_the_queues_page_keeps_the_keyboard_where_it_was_while_it_polls(
    console: Console, stack: RunningStack
) -> None:
    """The Queues page re-reads its figures every 5 s and redraws only what changed, so a
    keyboard user on a Pause button stays there. The job figures say when they were computed
    (`computed_at`), new on every poll that finds them older than 5 s: that alone must not
    redraw the tables (it took the focus back to the top of the page every few seconds)."""
    page = console.page
    console.open()
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    console.nav("Queues")
    button = page.get_by_role("table", name="Queues").get_by_role("button", name="Pause low")
    button.focus()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Pause low"
    computed = set()
    # Polls until one brings figures computed anew (the second or third, 5 s apart).
    for _ in range(3):
        with page.expect_response(lambda r: "/v1/stats" in r.url) as answer:
            pass
        computed.add(answer.value.json()["computed_at"])
    assert len(computed) > 1, "no poll brought figures computed anew"
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Pause low"
