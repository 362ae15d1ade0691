"""VK wall comments without the desk: the events parsed into `vk-wall:` conversations, the
fake's token types (error 27 for a community token on user-only methods), /ban's terms."""

from __future__ import annotations

import pytest

from bots.desk.wall import ban_terms
from bots.vk.client import VkClient, VkError
from bots.vk.updates import parse_event
from bots.vk.wall_events import DELETED, RESTORED, post_link, post_of
from fakes.vk import FakeVk

GROUP = 77
TROLL = 6601


async def test_wall_events_become_a_thread_conversation() -> None:
    vk = FakeVk(group_id=GROUP)
    new = vk.wall_reply_new(TROLL, 12, "вы все жулики")
    event = parse_event(new, GROUP)
    assert event is not None and event.conversation == "vk-wall:-77_12"
    assert (event.kind, event.text, event.chat_id) == ("text", "вы все жулики", TROLL)
    comment = event.message_id
    assert event.profile.user_id == str(TROLL) and event.event_id.startswith("vk:77:")

    reply = parse_event(vk.wall_reply_new(TROLL + 1, 12, "согласен", reply_to=comment), GROUP)
    assert reply is not None and reply.reply_to == comment

    edit = parse_event(vk.wall_reply_edit(comment, "вы все молодцы"), GROUP)
    assert edit is not None and (edit.kind, edit.message_id, edit.text) == (
        "edit", comment, "вы все молодцы")
    deleted = parse_event(vk.wall_reply_delete(comment, deleter_id=1), GROUP)
    assert deleted is not None and (deleted.kind, deleted.text) == ("edit", DELETED)
    restored = parse_event(vk.wall_reply_restore(comment), GROUP)
    assert restored is not None and restored.kind == "text"
    assert restored.text.startswith(RESTORED)

    # the community's own comments (our public answers) come back as events: not customers'
    own = vk.wall_reply_new(-GROUP, 12, "Здравствуйте!")
    assert parse_event(own, GROUP) is None
    assert post_of("vk-wall:-77_12") == (-77, 12)
    assert post_link("vk-wall:-77_12") == "https://vk.com/wall-77_12"


async def test_board_events_become_a_topic_thread_of_the_same_channel() -> None:
    vk = FakeVk(group_id=GROUP)
    new = parse_event(vk.board_post_new(TROLL, 5, "когда скидка?"), GROUP)
    assert new is not None and new.conversation == "vk-wall:topic-77_5"
    assert (new.kind, new.text, new.chat_id, new.channel) == ("text", "когда скидка?", TROLL,
                                                               "vk-wall")
    comment = new.message_id
    edit = parse_event(vk.board_post_edit(comment, "скидка?"), GROUP)
    assert edit is not None and (edit.kind, edit.message_id) == ("edit", comment)
    deleted = parse_event(vk.board_post_delete(comment, deleter_id=1), GROUP)
    assert deleted is not None and (deleted.kind, deleted.text) == ("edit", DELETED)
    restored = parse_event(vk.board_post_restore(comment), GROUP)
    assert restored is not None and restored.text.startswith(RESTORED)
    assert parse_event(vk.board_post_new(-GROUP, 5, "Ответ"), GROUP) is None
    assert post_of("vk-wall:topic-77_5") == (-77, 5)
    assert post_link("vk-wall:topic-77_5") == "https://vk.com/topic-77_5"


async def test_a_community_token_cannot_delete_or_ban_a_user_token_can() -> None:
    async with FakeVk(group_id=GROUP) as vk:
        group = VkClient(vk.token, GROUP, vk.url)
        admin = VkClient(vk.admin_token, GROUP, vk.url)
        try:
            vk.push(vk.wall_reply_new(TROLL, 12, "спам спам"))
            (troll,) = vk.comments_on(12)
            made = await group.call("wall.createComment", owner_id=-GROUP, post_id=12,
                                    from_group=GROUP, message="Не спамьте, пожалуйста",
                                    reply_to_comment=troll.id)
            answer = vk.wall.comments[made["comment_id"]]
            assert (answer.from_id, answer.reply_to_comment) == (-GROUP, troll.id)

            for method, params in (
                    ("wall.deleteComment", {"owner_id": -GROUP, "comment_id": troll.id}),
                    ("groups.ban", {"group_id": GROUP, "owner_id": TROLL}),
                    ("board.createComment", {"group_id": GROUP, "topic_id": 5,
                                             "message": "Ответ", "from_group": 1})):
                with pytest.raises(VkError) as caught:
                    await group.call(method, **params)
                assert caught.value.code == 27
                assert caught.value.message == ("Group authorization failed: method is "
                                                "unavailable with group auth.")
            assert not troll.deleted and not vk.wall.bans

            await admin.call("wall.deleteComment", owner_id=-GROUP, comment_id=troll.id)
            await admin.call("groups.ban", group_id=GROUP, owner_id=TROLL, reason=1)
            assert troll.deleted and vk.wall.bans[0].owner_id == TROLL
        finally:
            group.close()
            admin.close()


def test_ban_terms() -> None:
    assert ban_terms([]) == {"days": 7, "reason": 0, "note": ""}
    assert ban_terms(["30", "спам", "в", "комментариях"]) == {
        "days": 30, "reason": 1, "note": "спам в комментариях"}
    assert ban_terms(["навсегда", "оскорбления"])["days"] == 0
    assert ban_terms(["9999"])["days"] == 365
    assert ban_terms(["мат"])["reason"] == 3
