"""/v1/auth: register, login, refresh, logout, me."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from taskmill.api.caller import identity_from_event, request_id, source_ip
from taskmill.api.models import (
    Credentials,
    RefreshRequest,
    TokenResponse,
    UserOut,
    WebhookSecretOut,
)
from taskmill.api.openapi import operation
from taskmill.api.services import ApiServices
from taskmill.errors import Forbidden
from taskmill.jobtypes.webhook_deliver import SIGNATURE_HEADER


def router(services: ApiServices) -> Router:
    r = Router()

    def correlation_id() -> str | None:
        return request_id(r.current_event.raw_event)

    @r.post(
        "/v1/auth/register",
        **operation(
            "register",
            "Create a user account (where sign-up is enabled)",
            tag="auth",
            errors=[409],  # the e-mail has an account
            success={201: "The account."},
        ),
    )
    def register(body: Credentials) -> Response[UserOut]:
        if not services.settings.allow_signup:
            raise Forbidden("sign-up is disabled; ask an admin for an account")
        user = services.auth.sign_up(
            body.email,
            body.password,
            source_ip=source_ip(r.current_event.raw_event),
            correlation_id=correlation_id(),
        )
        return Response(201, "application/json", UserOut.model_validate(user.model_dump()))

    @r.post(
        "/v1/auth/login",
        **operation("login", "Sign in: an access and a refresh token", tag="auth", errors=[401]),
    )
    def login(body: Credentials) -> TokenResponse:
        pair = services.auth.login(
            body.email,
            body.password,
            source_ip=source_ip(r.current_event.raw_event),
            correlation_id=correlation_id(),
        )
        return TokenResponse(**pair.__dict__)

    @r.post(
        "/v1/auth/refresh",
        **operation(
            "refreshTokens",
            "Trade a refresh token for a new pair (a reused one ends its session)",
            tag="auth",
            errors=[401],
        ),
    )
    def refresh(body: RefreshRequest) -> TokenResponse:
        pair = services.auth.refresh(body.refresh_token, correlation_id=correlation_id())
        return TokenResponse(**pair.__dict__)

    @r.post(
        "/v1/auth/logout",
        **operation(
            "logout",
            "End the session (its tokens stop working)",
            tag="auth",
            success={204: "Signed out (also when the session had already ended)."},
        ),
    )
    def logout(body: RefreshRequest) -> Response[None]:
        # The token's identity suffices: ending a session that has already ended (or an
        # account that is gone) changes nothing, so logging out twice is not an error.
        identity = identity_from_event(r.current_event.raw_event)
        services.auth.logout(body.refresh_token, identity.id, identity.session_id)
        return Response(204)

    @r.get("/v1/auth/me", **operation("getMe", "The caller's account", tag="auth"))
    def me() -> UserOut:
        caller = services.caller(r.current_event.raw_event)
        return UserOut.model_validate(services.users.get(caller.id).model_dump())

    @r.get(
        "/v1/auth/me/webhook-secret",
        **operation(
            "getMyWebhookSecret",
            "The key that signs the caller's webhook deliveries",
            tag="auth",
        ),
    )
    def my_webhook_secret() -> WebhookSecretOut:
        # Only one's own: another user's key would let a receiver be sent forged events.
        caller = services.caller(r.current_event.raw_event)
        return WebhookSecretOut(
            webhook_secret=services.owner_webhook_secret(caller.id),
            signature_header=SIGNATURE_HEADER,
            signature_format="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
        )

    return r
