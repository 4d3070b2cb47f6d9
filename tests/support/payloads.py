"""Every Payload inside a protobuf message (history events, nested, repeated, map values): the
secret-leak tests decode each one with the suite's codec and search the text."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload


def payloads_in(message: Message) -> Iterator[Payload]:
    if isinstance(message, Payload):
        yield message
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = [item for item in value.values() if isinstance(item, Message)]
        else:
            items = list(value) if descriptor.is_repeated else [value]
        for item in items:
            yield from payloads_in(item)
