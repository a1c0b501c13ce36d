"""/v1/users: admin CRUD; a user may read, update and delete itself (not its own role)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from taskmill.api.caller import Caller, request_id, source_ip
from taskmill.api.models import (
    RoleChange,
    UserCreate,
    UserDelete,
    UserList,
    UserOut,
    UserUpdate,
)
from taskmill.api.openapi import operation
from taskmill.api.services import ApiServices
from taskmill.errors import InvalidInput, NotFound
from taskmill.lifecycle.outcomes import REPORTING_ROLES


def _out(user: object) -> UserOut:
    return UserOut.model_validate(user.model_dump())  # type: ignore[attr-defined]


def router(services: ApiServices) -> Router:
    r = Router()

    def caller() -> Caller:
        return services.caller(r.current_event.raw_event)

    def self_or_admin(user_id: UUID) -> Caller:
        who = caller()
        if not who.is_admin and who.id != user_id:
            # Someone else's account is not even acknowledged to exist.
            raise NotFound("user not found")
        return who

    def audit(action: str, who: Caller, user_id: UUID, **detail: object) -> None:
        services.audit.record(
            action,
            actor_id=who.id,
            target_type="user",
            target_id=str(user_id),
            detail=detail,
            correlation_id=request_id(r.current_event.raw_event),
        )

    @r.get("/v1/users", **operation("listUsers", "List accounts (admin)", tag="users"))
    def list_users(
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> UserList:
        caller().require("admin")
        try:
            after = UUID(cursor) if cursor else None
        except ValueError:
            raise InvalidInput("cursor is not valid") from None
        users = services.users.list(limit=limit + 1, after=after)
        page = users[:limit]
        more = len(users) > limit
        return UserList(
            items=[_out(u) for u in page], next_cursor=str(page[-1].id) if more else None
        )

    @r.post(
        "/v1/users",
        **operation(
            "createUser",
            "Create an account of any role (admin)",
            tag="users",
            errors=[409],  # the e-mail has an account
            success={201: "The account."},
        ),
    )
    def create_user(body: UserCreate) -> Response[UserOut]:
        who = caller().require("admin")
        user = services.auth.register(body.email, body.password, role=body.role)
        audit("user.created", who, user.id, role=body.role)
        return Response(201, "application/json", _out(user))

    @r.get(
        "/v1/users/<user_id>",
        **operation(
            "getUser", "Read an account (admin, or the account itself)", tag="users", errors=[404]
        ),
    )
    def get_user(user_id: UUID) -> UserOut:
        self_or_admin(user_id)
        return _out(services.users.get(user_id))

    @r.patch(
        "/v1/users/<user_id>",
        **operation(
            "updateUser",
            "Change an account's e-mail, password or disabled state",
            tag="users",
            errors=[404, 409],  # the e-mail is taken; the last enabled admin
        ),
    )
    def update_user(user_id: UUID, body: UserUpdate) -> UserOut:
        who = self_or_admin(user_id)
        if body.disabled is not None and not who.is_admin:
            raise InvalidInput("only an admin can disable or enable an account")
        if body.disabled and who.id == user_id:
            # It would end the caller's own sessions and, for the last admin, every admin's.
            raise InvalidInput("an account cannot disable itself")
        if who.id == user_id and (body.email or body.password):
            services.auth.confirm_password(
                services.users.get(user_id),
                body.current_password,
                source_ip=source_ip(r.current_event.raw_event),
                correlation_id=request_id(r.current_event.raw_event),
                action="change your own e-mail or password",
            )
        user = services.users.update(
            user_id,
            email=body.email,
            password_hash=services.passwords.hash(body.password) if body.password else None,
            disabled=body.disabled,
        )
        if body.password or body.disabled:
            # Sessions end with the old password (a thief's among them), except the one
            # that changed its own; a disabled account keeps none.
            keep = who.session_id if who.id == user_id and not body.disabled else None
            services.auth.tokens.revoke_user(user_id, keep_session=keep)
        if body.disabled:
            services.outcomes.release_held_by(
                user_id, "the account that claimed it was disabled", actor=who.actor
            )
        fields = sorted(set(body.model_dump(exclude_none=True)) - {"current_password"})
        if who.id != user_id:
            audit("user.updated", who, user_id, fields=fields)
        elif fields:
            # One's own e-mail or password changed: what an account taken over looks like, so
            # it is on record (with where the request came from), as an admin's change is.
            audit(
                "user.updated",
                who,
                user_id,
                fields=fields,
                source_ip=source_ip(r.current_event.raw_event),
            )
        return _out(user)

    @r.delete(
        "/v1/users/<user_id>",
        **operation(
            "deleteUser",
            "Delete an account (admin, or the account itself with its password)",
            tag="users",
            errors=[404, 409],  # the last admin
            success={204: "Deleted."},
        ),
    )
    def delete_user(
        user_id: UUID, body: Annotated[UserDelete | None, Body()] = None
    ) -> Response[None]:
        who = self_or_admin(user_id)
        if who.id == user_id:
            # As for a password change: a token copied for minutes must not end the account.
            services.auth.confirm_password(
                services.users.get(user_id),
                body.current_password if body else None,
                source_ip=source_ip(r.current_event.raw_event),
                correlation_id=request_id(r.current_event.raw_event),
                action="delete your own account",
            )
        services.users.delete(user_id)
        services.outcomes.release_held_by(
            user_id, "the account that claimed it was deleted", actor=who.actor
        )
        audit("user.deleted", who, user_id)
        return Response(204)

    @r.put(
        "/v1/users/<user_id>/role",
        **operation(
            "setUserRole",
            "Set an account's role (admin)",
            tag="users",
            errors=[404, 409],  # the last admin
        ),
    )
    def set_role(user_id: UUID, body: RoleChange) -> UserOut:
        who = caller().require("admin")
        before = services.users.get(user_id)
        # No session ends: every request reads the role afresh, so the new one applies to
        # the user's very next request (a demoted admin's included).
        user = services.users.set_role(user_id, body.role)
        if body.role not in REPORTING_ROLES:
            services.outcomes.release_held_by(
                user_id, f"the account that claimed it is now a {body.role}", actor=who.actor
            )
        audit("user.role_changed", who, user_id, before=before.role, after=body.role)
        return _out(user)

    return r
