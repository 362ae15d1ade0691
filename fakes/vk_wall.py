"""The community wall of the fake VK server: comment events and the wall/ban methods.

Token types follow VKCOM/vk-api-schema (PLATFORMS.md, addendum B): `wall.createComment` takes a
community (group) token or a user token; `wall.deleteComment`, `wall.restoreComment` and
`groups.ban` take a user token only, and a community token gets VK's error 27 ("Group
authorization failed: method is unavailable with group auth."). The fake's user token is
`admin_token` (an administrator of the community).

The discussion board: `board_post_*` events (objects with `topic_id`, `topic_owner_id`, and on
deletion `id` and `deleter_id`), board.createComment — a user token only in the schema (5.199):
error 27 with the community token; `from_group=1` posts as the community — and
board.deleteComment, which takes a user or a community token (`group_id` positive).
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fakes.vk_longpoll import ERRORS, VkApiFailure

ERRORS.update({
    15: "Access denied",
    27: "Group authorization failed: method is unavailable with group auth.",
    211: "Access to wall's comment denied",
})
USER_ONLY = frozenset({"wall.deleteComment", "wall.restoreComment", "groups.ban",
                       "board.createComment", "wall.getById"})


@dataclass
class Comment:
    id: int
    owner_id: int
    post_id: int
    from_id: int
    text: str
    reply_to_comment: int = 0
    deleted: bool = False
    topic: bool = False  # a board topic's comment: post_id is the topic's id
    guid: str = ""


@dataclass
class Ban:
    group_id: int
    owner_id: int
    end_date: int  # 0: for ever
    reason: int
    comment: str


@dataclass
class WallState:
    comments: dict[int, Comment] = field(default_factory=dict)
    bans: list[Ban] = field(default_factory=list)
    posts: dict[int, str] = field(default_factory=dict)  # the community's posts: id -> text


class Wall:
    """Mixed into FakeVk: `token` is the community token, `admin_token` a user token."""

    group_id: int
    token: str
    admin_token = "vk-admin-user-token"

    def __init__(self) -> None:
        self.wall = WallState()
        self._comment_ids = itertools.count(500)

    def check_token_type(self, method: str, token: str) -> None:
        if method in USER_ONLY and token != self.admin_token:
            raise VkApiFailure(27)

    def valid_token(self, token: str) -> bool:
        return token in (self.token, self.admin_token)

    # --- events (Callback API / Bots Long Poll objects) ------------------------------------
    def _wall_wrap(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "object": obj, "group_id": self.group_id,
                "event_id": secrets.token_hex(20), "v": "5.199"}

    def wall_reply_new(self, user_id: int, post_id: int, text: str, *,
                       reply_to: int = 0) -> dict[str, Any]:
        """A visitor's comment on the community's post (a reply when `reply_to` is given);
        it is on the wall from now on, as VK keeps it."""
        owner = -self.group_id
        comment = Comment(next(self._comment_ids), owner, post_id, user_id, text, reply_to)
        self.wall.comments[comment.id] = comment
        return self._wall_wrap("wall_reply_new", self._comment_object(comment))

    def wall_reply_edit(self, comment_id: int, text: str) -> dict[str, Any]:
        comment = self.wall.comments[comment_id]
        comment.text = text
        return self._wall_wrap("wall_reply_edit", self._comment_object(comment))

    def wall_reply_restore(self, comment_id: int) -> dict[str, Any]:
        comment = self.wall.comments[comment_id]
        comment.deleted = False
        return self._wall_wrap("wall_reply_restore", self._comment_object(comment))

    def wall_reply_delete(self, comment_id: int, deleter_id: int) -> dict[str, Any]:
        comment = self.wall.comments[comment_id]
        comment.deleted = True
        return self._wall_wrap("wall_reply_delete", {
            "owner_id": comment.owner_id, "id": comment.id, "deleter_id": deleter_id,
            "post_id": comment.post_id})

    def _comment_object(self, comment: Comment) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": comment.id, "from_id": comment.from_id, "date": int(time.time()),
            "text": comment.text, "post_id": comment.post_id, "owner_id": comment.owner_id,
            "post_owner_id": comment.owner_id, "parents_stack": [], "attachments": [],
            "thread": {"count": 0}}
        if comment.reply_to_comment:
            parent = self.wall.comments.get(comment.reply_to_comment)
            obj["reply_to_comment"] = comment.reply_to_comment
            obj["parents_stack"] = [comment.reply_to_comment]
            if parent is not None:
                obj["reply_to_user"] = parent.from_id
        return obj

    def comments_on(self, post_id: int, *, topic: bool = False) -> list[Comment]:
        return [c for c in self.wall.comments.values()
                if c.post_id == post_id and c.topic == topic]

    # --- an administrator's ban made in VK itself ---------------------------------------------
    def user_block(self, user_id: int, admin_id: int, *, unblock_date: int = 0, reason: int = 0,
                   comment: str = "") -> dict[str, Any]:
        """`user_block` (as the schema's callback object: admin_id, user_id, unblock_date,
        reason, comment); the ban is recorded like groups.ban's."""
        self.wall.bans.append(Ban(self.group_id, user_id, unblock_date, reason, comment))
        return self._wall_wrap("user_block", {
            "admin_id": admin_id, "user_id": user_id, "unblock_date": unblock_date,
            "reason": reason, "comment": comment})

    def user_unblock(self, user_id: int, admin_id: int, *, by_end_date: int = 0
                     ) -> dict[str, Any]:
        self.wall.bans = [b for b in self.wall.bans if b.owner_id != user_id]
        return self._wall_wrap("user_unblock", {
            "admin_id": admin_id, "user_id": user_id, "by_end_date": by_end_date})

    # --- the discussion board ----------------------------------------------------------------
    def board_post_new(self, user_id: int, topic_id: int, text: str) -> dict[str, Any]:
        comment = Comment(next(self._comment_ids), -self.group_id, topic_id, user_id, text,
                          topic=True)
        self.wall.comments[comment.id] = comment
        return self._wall_wrap("board_post_new", self._board_object(comment))

    def board_post_edit(self, comment_id: int, text: str) -> dict[str, Any]:
        comment = self.wall.comments[comment_id]
        comment.text = text
        return self._wall_wrap("board_post_edit", self._board_object(comment))

    def board_post_restore(self, comment_id: int) -> dict[str, Any]:
        comment = self.wall.comments[comment_id]
        comment.deleted = False
        return self._wall_wrap("board_post_restore", self._board_object(comment))

    def board_post_delete(self, comment_id: int, deleter_id: int) -> dict[str, Any]:
        comment = self.wall.comments[comment_id]
        comment.deleted = True
        return self._wall_wrap("board_post_delete", {
            "topic_owner_id": comment.owner_id, "topic_id": comment.post_id, "id": comment.id,
            "deleter_id": deleter_id})

    def _board_object(self, comment: Comment) -> dict[str, Any]:
        return {"id": comment.id, "from_id": comment.from_id, "date": int(time.time()),
                "text": comment.text, "topic_id": comment.post_id,
                "topic_owner_id": comment.owner_id, "attachments": []}

    def m_board_createComment(self, p: dict[str, str]) -> int:
        if not p.get("message") and not p.get("attachments") and not p.get("sticker_id"):
            raise VkApiFailure(100, "message is empty or invalid")
        if int(p.get("group_id", 0)) != self.group_id or not p.get("topic_id"):
            raise VkApiFailure(100, "group_id and topic_id are required")
        guid = p.get("guid", "")
        for made in self.wall.comments.values():  # a repeated guid: the same comment
            if guid and made.topic and made.guid == guid:
                return made.id
        from_id = -self.group_id if p.get("from_group") == "1" else 1
        comment = Comment(next(self._comment_ids), -self.group_id, int(p["topic_id"]),
                          from_id, p.get("message", ""), topic=True, guid=guid)
        self.wall.comments[comment.id] = comment
        return comment.id  # board.createComment returns the new comment's id

    def m_board_deleteComment(self, p: dict[str, str]) -> int:
        comment = self.wall.comments.get(int(p.get("comment_id", 0)))
        if (comment is None or not comment.topic or comment.post_id != int(p.get("topic_id", 0))
                or int(p.get("group_id", 0)) != self.group_id):
            raise VkApiFailure(100, "comment_id is invalid")
        comment.deleted = True
        return 1

    # --- methods ---------------------------------------------------------------------------
    def m_wall_getById(self, p: dict[str, str]) -> dict[str, Any]:
        """`posts=-77_12,-77_13` (a user or service token: error 27 for the community's).
        Posts that do not exist are left out, as VK does."""
        items = []
        for wanted in p.get("posts", "").split(","):
            owner, _, post = wanted.partition("_")
            if post.isdigit() and owner == str(-self.group_id) \
                    and int(post) in self.wall.posts:
                items.append({"id": int(post), "owner_id": -self.group_id,
                              "from_id": -self.group_id, "text": self.wall.posts[int(post)]})
        return {"items": items}

    def m_wall_createComment(self, p: dict[str, str]) -> dict[str, Any]:
        if not p.get("message") and not p.get("attachments"):
            raise VkApiFailure(100, "message is empty or invalid")
        owner = int(p.get("owner_id", 0))
        from_id = -self.group_id if p.get("from_group") else 1  # the admin user otherwise
        if p.get("from_group") and int(p["from_group"]) != self.group_id:
            raise VkApiFailure(15)
        reply_to = int(p.get("reply_to_comment") or 0)
        if reply_to and reply_to not in self.wall.comments:
            raise VkApiFailure(100, "reply_to_comment is invalid")
        comment = Comment(next(self._comment_ids), owner, int(p["post_id"]), from_id,
                          p.get("message", ""), reply_to)
        self.wall.comments[comment.id] = comment
        return {"comment_id": comment.id, "parents_stack": [reply_to] if reply_to else []}

    def m_wall_deleteComment(self, p: dict[str, str]) -> int:
        comment = self.wall.comments.get(int(p.get("comment_id", 0)))
        if comment is None or comment.owner_id != int(p.get("owner_id", 0)):
            raise VkApiFailure(211)
        comment.deleted = True
        return 1

    def m_wall_restoreComment(self, p: dict[str, str]) -> int:
        comment = self.wall.comments.get(int(p.get("comment_id", 0)))
        if comment is None:
            raise VkApiFailure(211)
        comment.deleted = False
        return 1

    def m_groups_ban(self, p: dict[str, str]) -> int:
        if int(p.get("group_id", 0)) != self.group_id or not p.get("owner_id"):
            raise VkApiFailure(100, "group_id and owner_id are required")
        end = int(p.get("end_date") or 0)
        if end and end > time.time() + 366 * 86400:
            raise VkApiFailure(100, "end_date is more than a year ahead")
        self.wall.bans.append(Ban(self.group_id, int(p["owner_id"]), end,
                                  int(p.get("reason") or 0), p.get("comment", "")))
        return 1
