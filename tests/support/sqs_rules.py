"""What real SQS refuses and moto lets through, enforced on a test's boto3 client."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

# SQS's documented rule for message bodies and string attribute values: #x9, #xA, #xD,
# #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF. Anything else is
# InvalidParameterValue / InvalidMessageContents.
_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _check_message(operation: str, message: dict[str, Any]) -> None:
    texts = [message.get("MessageBody", "")] + [
        value.get("StringValue", "") for value in (message.get("MessageAttributes") or {}).values()
    ]
    for text in texts:
        found = _REFUSED.search(text)
        if found:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidParameterValue",
                        "Message": f"invalid character {found.group()!r} in the message",
                    }
                },
                operation,
            )


def enforce_sqs_characters(client: Any) -> None:
    """Make `client` refuse a message SQS would refuse for its characters, as SQS does."""

    def send(params: dict[str, Any], **_: Any) -> None:
        _check_message("SendMessage", params)

    def send_batch(params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            _check_message("SendMessageBatch", entry)

    client.meta.events.register("provide-client-params.sqs.SendMessage", send)
    client.meta.events.register("provide-client-params.sqs.SendMessageBatch", send_batch)
