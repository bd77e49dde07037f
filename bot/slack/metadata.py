"""A modal's `private_metadata`, signed: Slack hands it back verbatim on submit, but it travels through the client,
so orderbot checks that it wrote it (a tampered one could name another order than the one the modal showed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass


class TamperedMetadata(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ModalContext:
    order_id: str
    channel: str | None  # where the button was clicked (for the ephemeral answer)
    message_ts: str | None  # the alert the modal was opened from
    card_url: str | None = None  # opened from an `/orders show` card: the click's response_url, to answer there
    # The Move form: the fulfillment order it moves, and the locations it offers (id -> name), as read when it opened.
    fulfillment_order_id: str | None = None
    locations: dict[str, str] | None = None


_MOVE_FIELDS = ("fulfillment_order_id", "locations")


@dataclass(frozen=True, slots=True)
class RunFormContext:
    """A bulk cancel's form: the run it confirms, and the preview's response_url (to replace it once it starts)."""

    run_id: int
    response_url: str | None


def pack(context: ModalContext | RunFormContext, secret: str) -> str:
    """Signed JSON of the context's fields, leaving out the Move form's when it is not that form."""
    fields = {key: value for key, value in asdict(context).items() if value is not None or key not in _MOVE_FIELDS}
    body = json.dumps(fields, separators=(",", ":"))
    return f"{body}.{_signature(body, secret)}"


def unpack(metadata: str, secret: str) -> ModalContext:
    fields = _verified(metadata, secret)
    return ModalContext(
        str(fields["order_id"]),
        fields.get("channel"),
        fields.get("message_ts"),
        fields.get("card_url"),
        fields.get("fulfillment_order_id"),
        fields.get("locations"),
    )


def unpack_run_form(metadata: str, secret: str) -> RunFormContext:
    fields = _verified(metadata, secret)
    return RunFormContext(int(fields["run_id"]), fields.get("response_url"))


def _verified(metadata: str, secret: str) -> dict:
    body, _, signature = metadata.rpartition(".")
    if not body or not hmac.compare_digest(signature.encode(), _signature(body, secret).encode()):
        raise TamperedMetadata("the modal's metadata was not written by orderbot")
    return json.loads(body)


def claimed_order_id(metadata: str) -> str | None:
    """The order a metadata string names, unverified: for the audit row of a refused form, never to act on."""
    try:
        fields = json.loads(metadata.rpartition(".")[0] or metadata)
    except ValueError:
        return None
    order_id = fields.get("order_id") if isinstance(fields, dict) else None
    return order_id if isinstance(order_id, str) and order_id.startswith("gid://shopify/Order/") else None


def _signature(body: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()
