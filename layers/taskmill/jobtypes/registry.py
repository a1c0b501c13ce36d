"""The job type registry (SPEC §4).

A code type is a Python function registered under a name with a pydantic payload model
and defaults. An external type has no code here: it is declared (name, payload JSON
schema, defaults) and run by workers that claim it over the API.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taskmill.errors import InvalidInput, field_message
from taskmill.flow.keys import check_template
from taskmill.jobs.model import non_finite_at
from taskmill.jobs.retry import PermanentJobFailure
from taskmill.topology import MAX_ATTEMPTS_LIMIT, Priority


class JobContextProtocol(Protocol):
    """What a job body may use; the worker provides the implementation."""

    def progress(self, percent: int, message: str | None = None) -> None: ...
    def cancelled(self) -> bool: ...
    def remaining_time(self) -> float: ...


JobFunction = Callable[[Any, Any], Any]


class JobDefaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    priority: Priority = Priority.NORMAL
    max_attempts: int = Field(default=3, ge=1, le=MAX_ATTEMPTS_LIMIT)
    timeout_seconds: int = Field(default=60, ge=1, le=86400)
    backoff_base_seconds: float = Field(default=2.0, ge=0, le=86400)
    backoff_max_seconds: float = Field(default=300.0, ge=0, le=7 * 86400)


# What an external type's declaration holds besides the defaults (`load_external`).
DECLARATION_KEYS = ("name", "schema", "description", "limit_keys")


def job_defaults(name: str, options: dict[str, Any], *, external: bool = False) -> JobDefaults:
    """A type's defaults, or a ValueError of one line naming the type and each option that
    is wrong (pydantic's own text named neither the type nor where it was declared)."""
    try:
        return JobDefaults(**options)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            option = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                takes = (DECLARATION_KEYS if external else ()) + tuple(JobDefaults.model_fields)
                problems.append(f"unknown option {option!r} (it takes {', '.join(takes)})")
            else:
                problems.append(f"{option}: {field_message(error).lower()}")
        raise ValueError(f"job type {name!r}: " + "; ".join(problems)) from None


class EmptyPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The API takes a type of 1-100 characters; this alphabet is a limit key's (flow/keys.py).
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")


@dataclass(frozen=True)
class JobType:
    name: str
    description: str
    defaults: JobDefaults
    payload_model: type[BaseModel] | None = None
    # For external types, declared as JSON schema; for code types, derived from the model.
    declared_schema: dict[str, Any] | None = None
    function: JobFunction | None = None
    external: bool = False
    # Created by the platform only (e.g. `webhook.deliver`): clients cannot submit it, and
    # `GET /v1/job-types` does not offer it.
    internal: bool = False
    # Limit key templates every job of the type holds (SPEC §6), e.g. `customer:{payload.id}`.
    limit_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if NAME_PATTERN.fullmatch(self.name) is None:
            raise ValueError(
                f"job type name {self.name!r}: 1 to 100 of letters, digits, '.', '_' and '-' "
                "(what the API accepts as a job's type, and what a `{type}` limit key holds)"
            )
        for template in self.limit_keys:
            check_template(template)

    def payload_schema(self) -> dict[str, Any]:
        if self.payload_model is not None:
            return self.payload_model.model_json_schema()
        return dict(self.declared_schema or {"type": "object"})

    def validate_payload(self, payload: Any) -> dict[str, Any]:
        """Return the normalised payload or raise `InvalidInput` with the field errors."""
        if self.payload_model is not None:
            try:
                # As JSON text and back (what Postgres will hold, not what Python can), by
                # alias: the names the model reads, and its JSON schema shows.
                model = self.payload_model.model_validate(payload)
                stored = json.loads(model.model_dump_json(by_alias=True))
            except ValidationError as exc:
                raise InvalidInput(
                    f"payload is not valid for job type {self.name!r}", details=_details(exc)
                ) from None
            except Exception as exc:  # noqa: BLE001 - the type's own validator, not ours
                # pydantic turns only a ValueError or an AssertionError of a validator into
                # a validation error (v1 took a TypeError too); whatever else the model raised
                # for this payload refuses it, instead of a 500 for the client.
                raise InvalidInput(
                    f"payload is not valid for job type {self.name!r}",
                    details=[
                        {
                            "loc": [],
                            "msg": f"the type's payload model raised {_named(exc)}"[:500],
                            "type": "model_error",
                        }
                    ],
                ) from None
            try:
                # What is stored is what the body gets (`parse_payload`): a value JSON
                # cannot carry (pydantic writes NaN and Infinity as null) would be accepted
                # here and refused by the type's own model on every attempt.
                self.payload_model.model_validate(stored)
            except ValidationError as exc:
                raise InvalidInput(
                    f"payload for job type {self.name!r} does not survive being stored as "
                    "JSON (NaN and Infinity, for instance, would become null)",
                    details=_details(exc),
                ) from None
            return stored
        return _validate_declared(self, payload)

    def parse_payload(self, payload: dict[str, Any]) -> Any:
        """The payload as the job body receives it (a model instance for code types).

        A stored payload the model refuses was valid when the job was created: the model
        changed since. No later attempt reads another payload, so it is a
        `PermanentJobFailure` naming the fields, never a retry."""
        if self.payload_model is None:
            return payload
        try:
            return self.payload_model.model_validate(payload)
        except ValidationError as exc:
            fields = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or '(payload)'}: {field_message(e)}"
                for e in exc.errors(include_url=False, include_input=False)[:10]
            )
            raise PermanentJobFailure(
                f"the stored payload no longer matches job type {self.name!r} (its model "
                f"changed since the job was created): {fields}"
            ) from None


def _named(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # noqa: BLE001 - its __str__ is broken too
        return type(error).__name__


def _check_payload_model(name: str, model: Any) -> None:
    """Refuse a code type's payload that is not a pydantic model class with a JSON schema
    when the type is registered: every create of the type would fail on it (`dict` has no
    `model_validate`), or `GET /v1/job-types`, which lists every type's schema, would."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(
            f"job type {name!r}: its payload must be a pydantic model class "
            f"(a subclass of pydantic.BaseModel), not {model!r}"
        )
    try:
        model.model_json_schema()
    except Exception as exc:  # noqa: BLE001 - pydantic's several errors for it, named
        raise ValueError(
            f"job type {name!r}: its payload model {model.__name__} has no JSON schema "
            f"(GET /v1/job-types shows one for each type): {exc}"
        ) from None


def _check_declared_schema(name: str, schema: Any) -> None:
    """Refuse an external type's schema that no payload could be checked against, when the
    registry is built (so `make synth` and `make run` say so), instead of an error on every
    create of the type: not a JSON object, not a valid JSON Schema (an unknown `type`, a
    `pattern` that is no regular expression, ...), or a `$ref` that does not resolve within
    it (nothing is fetched from elsewhere)."""
    import jsonschema
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    where = f"external job type {name!r}: its schema"
    if not isinstance(schema, dict):
        raise ValueError(f"{where} must be a JSON object, not {json.dumps(schema)[:100]}")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(part) for part in exc.path)
        raise ValueError(
            f"{where} is not a valid JSON Schema{f' at {at}' if at else ''}: {exc.message}"
        ) from None
    resolver = Registry().with_resource("", DRAFT202012.create_resource(schema)).crawl().resolver()
    for ref in _references(schema):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise ValueError(
                f"{where} has a $ref {ref!r} that does not resolve within the schema"
            ) from None


def _references(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _details(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": field_message(e), "type": e["type"]}
        for e in error.errors(include_url=False, include_input=False)
    ]


def _validate_declared(job_type: JobType, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput(f"payload for job type {job_type.name!r} must be an object")
    # A JSON schema takes NaN and Infinity (which Python's parser reads) for numbers, but
    # they are not JSON: stored, they became null, and the worker got another payload than
    # the one accepted. Refused like the same number in a code type's payload.
    at = non_finite_at(payload)
    if at is not None:
        raise InvalidInput(
            f"payload for job type {job_type.name!r} holds a number JSON cannot carry "
            "(NaN and Infinity, for instance, would become null)",
            details=[
                {
                    "loc": list(at),
                    "msg": "NaN and Infinity are not JSON numbers; send a number or null",
                    "type": "json_number",
                }
            ],
        )
    schema = job_type.declared_schema
    if schema:
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.path))
        if errors:
            raise InvalidInput(
                f"payload is not valid for job type {job_type.name!r}",
                # `type`: the schema keyword that refused it, where a code type's field
                # errors name pydantic's error type (the OpenAPI document's field error).
                details=[
                    {"loc": list(e.path), "msg": e.message, "type": str(e.validator)}
                    for e in errors[:20]
                ],
            )
    return payload


@dataclass
class JobTypeRegistry:
    _types: dict[str, JobType] = field(default_factory=dict)

    def add(self, job_type: JobType) -> JobType:
        if job_type.name in self._types:
            raise ValueError(f"job type {job_type.name!r} is already registered")
        self._types[job_type.name] = job_type
        return job_type

    def register(
        self,
        name: str,
        *,
        payload: type[BaseModel] = EmptyPayload,
        description: str = "",
        internal: bool = False,
        limit_keys: Iterable[str] = (),
        **defaults: Any,
    ) -> Callable[[JobFunction], JobFunction]:
        """Decorator registering a code job type: `@registry.register("resize", payload=M)`.

        `internal=True`: only the platform's own code submits it (see `submittable`)."""
        if not isinstance(name, str):
            # `@registry.register` without its call: the body would be taken for the name
            # and, the decorator never running, nothing registered.
            raise TypeError(
                f'registry.register takes the type\'s name first: @registry.register("name", ...)'
                f", not {name!r}"
            )

        def decorate(function: JobFunction) -> JobFunction:
            if not callable(function):
                raise ValueError(
                    f"job type {name!r}: its function must be callable, not {function!r}"
                )
            self.add(
                JobType(
                    name=name,
                    description=description or (function.__doc__ or "").strip(),
                    defaults=job_defaults(name, defaults),
                    payload_model=payload,
                    function=function,
                    internal=internal,
                    limit_keys=tuple(limit_keys),
                )
            )
            return function

        return decorate

    def declare_external(
        self,
        name: str,
        *,
        schema: dict[str, Any] | None = None,
        description: str = "",
        limit_keys: Iterable[str] = (),
        **defaults: Any,
    ) -> JobType:
        return self.add(
            JobType(
                name=name,
                description=description,
                defaults=job_defaults(name, defaults, external=True),
                declared_schema=schema,
                external=True,
                limit_keys=tuple(limit_keys),
            )
        )

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            raise InvalidInput(f"unknown job type {name!r}") from None

    def submittable(self, name: str) -> JobType:
        """The type of a job a client asks for (directly or through a schedule): an internal
        type is refused, since the platform vouches for what such jobs do (a webhook job
        signs its event)."""
        job_type = self.get(name)
        if job_type.internal:
            raise InvalidInput(f"job type {name!r} is internal: only the platform creates it")
        return job_type

    def claimable(self, names: Iterable[str]) -> None:
        """Refuse (400, each offender named with its place in `types`) a claim for types no
        external worker can be handed: unknown ones (a typo, or a type this deployment does
        not declare) and code types, which the platform's own workers run. Answered with an
        empty list instead, such a worker would poll for ever without learning why."""
        problems = []
        for place, name in enumerate(names):
            job_type = self._types.get(name)
            if job_type is None:
                problems.append((place, name, "unknown_job_type", "unknown job type"))
            elif not job_type.external:
                problems.append(
                    (place, name, "not_external", "not an external type: the platform runs it")
                )
        if problems:
            raise InvalidInput(
                "only external job types can be claimed: "
                + "; ".join(f"{name!r}: {why}" for _, name, _, why in problems),
                details=[
                    {"loc": ["body", "types", str(place)], "msg": f"{name!r}: {why}", "type": kind}
                    for place, name, kind, why in problems
                ],
            )

    def offered(self) -> list[JobType]:
        """The types clients may submit (what `GET /v1/job-types` lists)."""
        return [t for t in self.all() if not t.internal]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def all(self) -> list[JobType]:
        return sorted(self._types.values(), key=lambda t: t.name)

    def check(self) -> None:
        """Refuse, with a `ValueError` naming the type, what the registry holds but could not
        serve: a code type's payload that is not a pydantic model class with a JSON schema,
        an external type's schema that is not a valid JSON Schema. Run where the registry is
        built once before a deployment or a local stack starts (the CDK synth, `make run`'s
        preflight), not at every cold start: it costs jsonschema's import and each model's
        schema."""
        for job_type in self.all():
            if job_type.payload_model is not None:
                _check_payload_model(job_type.name, job_type.payload_model)
            if job_type.declared_schema is not None:
                _check_declared_schema(job_type.name, job_type.declared_schema)

    def load_modules(self, module_names: Iterable[str]) -> None:
        """Import user modules; each exposes `register(registry)` and adds its types."""
        for module_name in module_names:
            module = importlib.import_module(module_name)
            hook = getattr(module, "register", None)
            if not callable(hook):
                raise ValueError(f"job module {module_name!r} has no register(registry) function")
            hook(self)

    def load_external(self, declarations: Iterable[dict[str, Any]]) -> None:
        for declaration in declarations:
            if not isinstance(declaration, dict):
                raise ValueError(f"external job type declaration {declaration!r} is not an object")
            data = dict(declaration)
            if "name" not in data:
                raise ValueError(f"external job type declaration {declaration!r} has no 'name'")
            name = data.pop("name")
            schema = data.pop("schema", None)
            description = data.pop("description", "")
            self.declare_external(name, schema=schema, description=description, **data)
