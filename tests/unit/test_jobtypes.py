from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from taskmill.errors import InvalidInput, SettingsError
from taskmill.jobs.retry import JobFailure
from taskmill.jobtypes import builtin
from taskmill.jobtypes.defaults import build_registry
from taskmill.jobtypes.registry import JobTypeRegistry
from taskmill.settings import JobTypeSettings


class Context:
    def __init__(self) -> None:
        self.reports: list[tuple[int, str | None]] = []

    def progress(self, percent: int, message: str | None = None) -> None:
        self.reports.append((percent, message))

    def cancelled(self) -> bool:
        return False

    def remaining_time(self) -> float:
        return 60.0


def test_builtin_types_are_registered_with_their_defaults() -> None:
    registry = build_registry(JobTypeSettings())
    assert {"noop", "sleep", "fail"} <= {t.name for t in registry.all()}
    assert registry.get("noop").defaults.max_attempts == 1
    assert registry.get("sleep").payload_schema()["required"] == ["seconds"]


def test_unknown_type_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown job type"):
        build_registry(JobTypeSettings()).get("nope")


def test_payload_errors_name_the_field() -> None:
    registry = build_registry(JobTypeSettings())
    with pytest.raises(InvalidInput) as caught:
        registry.get("sleep").validate_payload({"seconds": "soon"})
    assert caught.value.details[0]["loc"] == ["seconds"]
    with pytest.raises(InvalidInput):
        registry.get("noop").validate_payload({"unexpected": 1})


class Picky(BaseModel):
    n: int = 0

    @field_validator("n")
    @classmethod
    def unlucky(cls, value: int) -> int:
        # pydantic v1 made a TypeError a validation error; v2 lets it through.
        if value == 13:
            raise TypeError("13 is unlucky")
        if value == 14:
            raise KeyError("fourteen")
        return value


def _broken_default() -> int:
    raise RuntimeError("no default today")


class Defaulted(BaseModel):
    n: int = Field(default_factory=_broken_default)


@pytest.mark.parametrize(
    ("payload_model", "payload", "problem"),
    [
        (Picky, {"n": 13}, "TypeError: 13 is unlucky"),
        (Picky, {"n": 14}, "KeyError: 'fourteen'"),
        (Defaulted, {}, "RuntimeError: no default today"),
    ],
)
def test_a_payload_model_that_raises_refuses_the_payload(
    payload_model: Any, payload: dict[str, Any], problem: str
) -> None:
    # Anything but a ValueError escaped the API's create as a 500 internal_error.
    registry = JobTypeRegistry()
    registry.register("picky", payload=payload_model)(lambda context, payload: None)
    with pytest.raises(InvalidInput, match="payload is not valid for job type 'picky'") as refused:
        registry.get("picky").validate_payload(payload)
    assert refused.value.details == [
        {"loc": [], "msg": f"the type's payload model raised {problem}", "type": "model_error"}
    ]
    assert registry.get("picky").validate_payload({"n": 1}) == {"n": 1}


def test_duplicate_registration_is_refused() -> None:
    registry = JobTypeRegistry()
    builtin.register(registry)
    with pytest.raises(ValueError, match="already registered"):
        builtin.register(registry)


@pytest.mark.parametrize("name", ["", "x" * 101, " padded", "two words", "tab\there"])
def test_a_name_no_client_could_submit_is_refused_at_registration(name: str) -> None:
    registry = JobTypeRegistry()
    with pytest.raises(ValueError, match="job type name"):
        registry.register(name)(lambda context, payload: {})
    with pytest.raises(ValueError, match="job type name"):
        registry.load_external([{"name": name}])


def test_an_external_declaration_without_a_name_says_so() -> None:
    with pytest.raises(ValueError, match=r"external job type declaration .* has no 'name'"):
        JobTypeRegistry().load_external([{"schema": {"type": "object"}}])
    with pytest.raises(ValueError, match=r"'render\.video' is not an object"):
        JobTypeRegistry().load_external(["render.video"])  # type: ignore[list-item]


def test_user_modules_register_code_types() -> None:
    registry = build_registry(JobTypeSettings(job_modules="tests.support.user_jobs"))
    greet = registry.get("greet")
    assert greet.defaults.priority == "high"
    assert greet.defaults.max_attempts == 7
    payload = greet.parse_payload(greet.validate_payload({"name": "Ada"}))
    assert greet.function is not None
    assert greet.function(Context(), payload) == {"greeting": "hello Ada"}


def test_external_types_are_declared_by_configuration() -> None:
    declarations = [
        {
            "name": "render.video",
            "schema": {
                "type": "object",
                "properties": {"url": {"type": "string"}},
                "required": ["url"],
                "additionalProperties": False,
            },
            "timeout_seconds": 7200,
            "priority": "low",
        }
    ]
    registry = build_registry(JobTypeSettings(external_types=json.dumps(declarations)))
    render = registry.get("render.video")
    assert render.external
    assert render.function is None
    assert render.defaults.timeout_seconds == 7200
    assert render.validate_payload({"url": "s3://x"}) == {"url": "s3://x"}
    with pytest.raises(InvalidInput) as caught:
        render.validate_payload({"link": "s3://x", "url": 5})
    # Field errors in the shape the OpenAPI document gives every one: loc, msg and type (the
    # schema keyword that refused it).
    assert sorted((d["type"], d["loc"]) for d in caught.value.details) == [
        ("additionalProperties", []),
        ("type", ["url"]),
    ]
    assert all(set(d) == {"loc", "msg", "type"} for d in caught.value.details)
    with pytest.raises(InvalidInput) as missing:
        render.validate_payload({})
    [required] = missing.value.details
    assert required["type"] == "required"
    assert "url" in required["msg"]


def test_broken_external_configuration_fails_at_cold_start() -> None:
    with pytest.raises(SettingsError):
        build_registry(JobTypeSettings(external_types="{not json"))


def test_sleep_reports_progress_and_result() -> None:
    context = Context()
    assert builtin.sleep(context, builtin.SleepPayload(seconds=0.05)) == {"slept": 0.05}
    assert context.reports
    assert context.reports[-1][0] == 100


def test_fail_fails_with_its_probability() -> None:
    payload = builtin.FailPayload(probability=0.5, message="boom")
    with pytest.raises(JobFailure, match="boom"):
        builtin.fail(Context(), payload, rand=lambda: 0.2)
    assert builtin.fail(Context(), payload, rand=lambda: 0.8) == {"failed": False}


def test_register_without_a_name_is_refused_not_ignored() -> None:
    # `@registry.register` without its call used to register nothing, silently: the body's
    # name was taken for the type's and the decorator never ran.
    registry = JobTypeRegistry()

    def resize(context: Any, payload: Any) -> None:
        return None

    with pytest.raises(TypeError, match=r'@registry\.register\("name"'):
        registry.register(resize)  # type: ignore[arg-type]
    assert registry.all() == []


@pytest.mark.parametrize("function", [None, "resize"])
def test_a_type_without_a_callable_body_is_refused_at_registration(function: Any) -> None:
    # It used to be accepted, its jobs created (201), and each failed when it ran with
    # "job type 'resize' is not run by this worker".
    registry = JobTypeRegistry()
    with pytest.raises(ValueError, match="job type 'resize': its function must be callable"):
        registry.register("resize")(function)
    assert "resize" not in registry


class Opaque:
    pass


class Unschemable(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    thing: Opaque | None = None


class Fine(BaseModel):
    width: int


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (dict, "a pydantic model class"),
        (Fine(width=1), "a pydantic model class"),
        ("Fine", "a pydantic model class"),
        (Unschemable, "has no JSON schema"),
    ],
)
def test_a_payload_that_is_not_a_model_with_a_schema_is_refused_at_registration(
    payload: Any, problem: str
) -> None:
    # `dict` was accepted and every create of the type answered 500; a model with a field
    # JSON Schema cannot describe made GET /v1/job-types answer 500 for every type.
    registry = JobTypeRegistry()
    registry.register("resize", payload=payload)(lambda context, payload: None)
    with pytest.raises(ValueError, match="job type 'resize': its payload") as refused:
        registry.check()
    assert problem in str(refused.value)


# Declarations whose schema no payload could be checked against: each create of the type
# (and, for one that is not an object, `GET /v1/job-types` for every type) answered 500.
BAD_SCHEMAS = {
    "unknown type": ({"type": "nonsense"}, "'nonsense' is not valid"),
    "bad pattern": (
        {"properties": {"a": {"type": "string", "pattern": "("}}},
        "'(' is not a 'regex'",
    ),
    "bad bound": ({"properties": {"a": {"minimum": "x"}}}, "'x' is not of type 'number'"),
    "not an object": ("object", "must be a JSON object"),
    "a list": ([{"type": "object"}], "must be a JSON object"),
    "a boolean": (True, "must be a JSON object"),
    "a reference to nothing": (
        {"properties": {"a": {"$ref": "#/$defs/missing"}}},
        "$ref '#/$defs/missing' that does not resolve",
    ),
    "a remote reference": (
        {"properties": {"a": {"$ref": "https://example.com/a.json"}}},
        "$ref 'https://example.com/a.json' that does not resolve",
    ),
}


@pytest.mark.parametrize("name", list(BAD_SCHEMAS))
def test_an_external_schema_that_is_not_a_json_schema_is_refused_at_declaration(
    name: str,
) -> None:
    schema, problem = BAD_SCHEMAS[name]
    registry = JobTypeRegistry()
    registry.load_external([{"name": "render", "schema": schema}])
    with pytest.raises(ValueError, match="external job type 'render': its schema") as refused:
        registry.check()
    assert problem in str(refused.value)


def test_an_external_schema_with_references_that_resolve_is_declared() -> None:
    registry = JobTypeRegistry()
    registry.load_external(
        [
            {
                "name": "render",
                "schema": {
                    "$defs": {"url": {"type": "string", "pattern": "^s3://"}},
                    "type": "object",
                    "properties": {"source": {"$ref": "#/$defs/url"}},
                },
            }
        ]
    )
    registry.check()
    render = registry.get("render")
    assert render.validate_payload({"source": "s3://a"}) == {"source": "s3://a"}
    with pytest.raises(InvalidInput):
        render.validate_payload({"source": "http://a"})


BAD_DEFAULTS = [
    ({"timeout_seconds": 0}, "timeout_seconds: input should be greater than or equal to 1"),
    ({"max_attempts": 100}, "max_attempts: input should be less than or equal to 25"),
    ({"priority": "urgent"}, "priority: input should be 'high', 'normal' or 'low'"),
    ({"timeout": 60}, "unknown option 'timeout'"),
]


@pytest.mark.parametrize(("options", "said"), BAD_DEFAULTS)
def test_a_bad_default_names_the_type_and_the_option(options: dict[str, Any], said: str) -> None:
    """It was pydantic's own text: '1 validation error for JobDefaults timeout_seconds Input
    should be ... [type=..., input_value=0, input_type=int] For further information visit
    https://errors.pydantic.dev/...', naming neither the type nor where it was declared."""
    with pytest.raises(ValueError, match=r"video\.render") as external:
        JobTypeRegistry().load_external([{"name": "video.render", **options}])
    with pytest.raises(ValueError, match=r"image\.resize") as code:
        JobTypeRegistry().register("image.resize", **options)(lambda context, payload: {})
    for raised, name in ((external, "video.render"), (code, "image.resize")):
        message = str(raised.value)
        assert message.startswith(f"job type {name!r}: "), message
        assert said in message
        assert "errors.pydantic.dev" not in message
        assert "\n" not in message  # one line, as make run and make synth print it
    if "unknown option" in said:  # what each may hold: a declaration, its schema too
        assert "timeout_seconds" in str(code.value)
        assert "schema" in str(external.value)
        assert "schema" not in str(code.value)
