"""Outbound messages are typed, round-trip through JSON, and entries written before the
fields were typed (`params`/`meta` bags) are still read after an upgrade."""

from __future__ import annotations

import json

import pytest

from handoff.events import (
    FORMAT_VERSION,
    BotTrace,
    CopyOf,
    EventFormatError,
    MediaFile,
    OutboundMessage,
    OutButton,
)


def test_every_field_survives_the_round_trip() -> None:
    message = OutboundMessage(
        "tg:1", kind="copy", text="подпись", buttons=((OutButton("Да", payload="yes"),),),
        lane="desk", created_at=12.5, route="vk:2", copy=CopyOf(-100, 7, "album-1"),
        edit_of=3, files=(MediaFile("photo", url="https://example.com/a.jpg"),),
        operator="tg:1001", bot=BotTrace("order_status", 0.93, ("step",), 11.0, True),
        priority=0, coalesce="card:tg:1", mention=(1001, 1002), refusal=True)
    assert OutboundMessage.from_json(message.to_json()) == message
    assert message.album == "album-1"


def test_entries_written_with_params_and_meta_are_read_into_the_fields() -> None:
    def old(**fields: object) -> str:
        return json.dumps({"v": FORMAT_VERSION, "conversation": "tg:1", "id": "x", **fields})

    copied = OutboundMessage.from_json(old(
        kind="copy", text="фото",
        params={"from_chat": -100, "message_id": 5, "album": "a", "priority": 1},
        meta={"operator": "tg:7", "files": [{"kind": "photo", "url": "u"}]}))
    assert (copied.copy, copied.priority, copied.operator, copied.files) == (
        CopyOf(-100, 5, "a"), 1, "tg:7", (MediaFile("photo", url="u"),))
    edit = OutboundMessage.from_json(old(kind="edit", params={"message_id": 9}))
    assert (edit.edit_of, edit.copy) == (9, None)
    card = OutboundMessage.from_json(old(kind="card", lane="desk", params={
        "coalesce": "card:tg:1", "priority": 0, "mention": [5], "refusal": True}))
    assert (card.coalesce, card.priority, card.mention, card.refusal) == (
        "card:tg:1", 0, (5,), True)
    said = OutboundMessage.from_json(old(text="Привет", meta={
        "intent": "greet", "confidence": 0.9, "trace": ["a → b"], "received_at": 1.0,
        "handoff": True}))
    assert said.bot == BotTrace("greet", 0.9, ("a → b",), 1.0, True)


def test_an_unknown_version_is_refused_and_an_unknown_field_left_out() -> None:
    with pytest.raises(EventFormatError):
        OutboundMessage.from_json(json.dumps({"v": 99, "conversation": "tg:1"}))
    # Written by a newer version during a rolling upgrade: still delivered (a full test run
    # once had a newer worker's `said_at` make an older sender drop a customer's answer).
    message = OutboundMessage.from_json(json.dumps({
        "v": FORMAT_VERSION, "conversation": "tg:1", "text": "ok", "colour": "red"}))
    assert (message.conversation, message.text) == ("tg:1", "ok")
