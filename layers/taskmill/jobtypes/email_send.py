"""`email.send`: send an e-mail through SES."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskmill.jobs.retry import JobFailure, PermanentJobFailure


class EmailPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: list[str] = Field(min_length=1, max_length=50)
    subject: str = Field(max_length=998)
    text: str = Field(max_length=256 * 1024)
    html: str | None = Field(default=None, max_length=256 * 1024)
    reply_to: list[str] = Field(default_factory=list, max_length=10)


def email_send(context: Any, payload: EmailPayload) -> dict[str, str]:
    """Sends an e-mail through SES from the configured sender."""
    sender = context.services.settings.ses_sender
    if not sender:
        raise PermanentJobFailure("e-mail is not configured: set TASKMILL_SES_SENDER")
    body: dict[str, Any] = {"Text": {"Data": payload.text, "Charset": "UTF-8"}}
    if payload.html is not None:
        body["Html"] = {"Data": payload.html, "Charset": "UTF-8"}
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = context.services.client("ses").send_email(
            Source=sender,
            Destination={"ToAddresses": payload.to},
            Message={"Subject": {"Data": payload.subject, "Charset": "UTF-8"}, "Body": body},
            ReplyToAddresses=payload.reply_to,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in (
            "MessageRejected",
            "MailFromDomainNotVerifiedException",
            "InvalidParameterValue",
        ):
            raise PermanentJobFailure(f"SES refused the message: {code}") from exc
        raise JobFailure(f"SES error: {code or exc}") from exc
    except BotoCoreError as exc:
        raise JobFailure(f"SES unreachable: {exc}") from exc
    return {"message_id": response["MessageId"]}
