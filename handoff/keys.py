"""Every Redis key the product uses, in one place.

Keys of one conversation share the hash tag `{channel:peer}` (e.g. `sb:{tg:42}:conv`) so the
layout maps onto Redis Cluster slots. An inbound shard's stream and its dedup markers share the
tag `{in:N}`, so the ingest script touches a single slot.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "sb:"

    # --- one conversation -------------------------------------------------------------
    def conversation(self, conv: str) -> str:
        """Hash: state, version, dialogue JSON, profile JSON, handoff fields, last event."""
        return f"{self.prefix}{{{conv}}}:conv"

    def mirror(self, conv: str) -> str:
        """Hash: desk message id -> the customer's copy of it (to mirror operators' edits)."""
        return f"{self.prefix}{{{conv}}}:mirror"

    def transcript(self, conv: str) -> str:
        """List of JSON entries (in/out/system), capped: older entries move to the archive."""
        return f"{self.prefix}{{{conv}}}:transcript"

    def transcript_archive(self, conv: str) -> str:
        """List of the transcript's older entries, oldest first (lua/lib_transcript.lua derives
        it from the transcript's key: keep the two names in step)."""
        return f"{self.prefix}{{{conv}}}:archive"

    # --- inbound ----------------------------------------------------------------------
    def inbound_stream(self, shard: int) -> str:
        return f"{self.prefix}{{in:{shard}}}:events"

    def seen(self, shard: int, event_id: str) -> str:
        """Dedup marker of a platform event (update_id / event_id), kept for a TTL."""
        return f"{self.prefix}{{in:{shard}}}:seen:{event_id}"

    def dead_letters(self) -> str:
        """Stream of inbound events that failed processing again and again (for a human)."""
        return f"{self.prefix}deadletters"

    def shard_lease(self, shard: int) -> str:
        return f"{self.prefix}{{in:{shard}}}:lease"

    # --- outbound ---------------------------------------------------------------------
    def outbox(self, channel: str, lane: str) -> str:
        """Stream of outbound calls for one channel; lane is `customer` or `desk`."""
        return f"{self.prefix}out:{{{channel}}}:{lane}"

    def callback_payloads(self) -> str:
        """Hash digest -> button payload, for payloads too long for a platform's callback data."""
        return f"{self.prefix}callbacks"

    def text_buttons(self, channel: str) -> str:
        """Set of peers whose app cannot show callback buttons (they get text buttons)."""
        return f"{self.prefix}{channel}:text-buttons"

    # --- linked accounts (one customer on two networks) ---------------------------------
    def link_code(self, code: str) -> str:
        """String: the conversation that asked for this one-time /link code (with a TTL)."""
        return f"{self.prefix}link:code:{code}"

    # --- shared -----------------------------------------------------------------------
    def journal(self) -> str:
        """Stream of state transitions: who, what, when, why."""
        return f"{self.prefix}journal"

    def queue(self) -> str:
        """Sorted set of queued conversations; the score orders by priority, then age."""
        return f"{self.prefix}queue"

    def lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    def workers(self) -> str:
        """Sorted set: worker processes alive -> when their heartbeat expires (ms)."""
        return f"{self.prefix}workers"

    def waiting(self) -> str:
        """Sorted set: assigned conversations whose customer waits for a reply, by since when."""
        return f"{self.prefix}waiting"

    # --- the desk ---------------------------------------------------------------------
    def desk_threads(self) -> str:
        """Hash "<desk chat>:<thread or anchor message id>" -> conversation."""
        return f"{self.prefix}desk:threads"

    def desk_state(self, desk: int | None = None) -> str:
        """Hash: the desk chat id (after a migration), forum or not, summary message id. One
        per desk group; the first desk's is the key of the single-desk set-up."""
        return f"{self.prefix}desk:state" + (f":{desk}" if desk is not None else "")

    # --- operators and history --------------------------------------------------------
    def operators(self) -> str:
        """Set of every operator id seen."""
        return f"{self.prefix}operators"

    def operator(self, op: str) -> str:
        """Hash: name, username, status, capacity, status_since, shift, shift_state."""
        return f"{self.prefix}op:{op}"

    def operator_convs(self, op: str) -> str:
        """Set of conversations assigned to the operator."""
        return f"{self.prefix}op:{op}:convs"

    def operator_stats(self, op: str) -> str:
        """Hash: handled (closes), first_responses, first_response_seconds (their sum)."""
        return f"{self.prefix}op:{op}:stats"

    def ratings(self, op: str) -> str:
        """Hash: count, sum and one counter per score 1..5."""
        return f"{self.prefix}op:{op}:ratings"

    def wait_samples(self) -> str:
        """List of recent queue waits in seconds (claim time - queued time), capped."""
        return f"{self.prefix}stats:waits"

    def history(self, conv: str) -> str:
        """List of this conversation's closed handoffs (JSON)."""
        return f"{self.prefix}{{{conv}}}:history"

    # --- the trainers -----------------------------------------------------------------
    def inbox(self) -> str:
        """Stream of messages the bot did not understand (field `e`: JSON), capped."""
        return f"{self.prefix}inbox"

    def inbox_done(self) -> str:
        """Hash inbox entry id -> what a trainer made of it (`intent:<name>` or `dismissed`)."""
        return f"{self.prefix}inbox:done"

    def api_tokens(self) -> str:
        """Hash: SHA-256 of an API token -> its JSON (name, role, created); handoff/tokens.py."""
        return f"{self.prefix}api:tokens"

    def api_token_names(self) -> str:
        """Hash: token name -> its SHA-256 (to revoke by name)."""
        return f"{self.prefix}api:token-names"

    # --- the operators' web console (bots/web/console_auth.py) ---------------------------
    def console_accounts(self) -> str:
        """Set of operator ids that have a console account (listed without a scan)."""
        return f"{self.prefix}console:accounts"

    def console_account(self, op: str) -> str:
        """Hash: name, salt, hash (scrypt), created_by, created_at."""
        return f"{self.prefix}console:account:{op}"

    def console_session(self, digest: str) -> str:
        """Hash of one signed-in session, by the SHA-256 of its cookie: operator, name, csrf,
        created_at; expires when idle (and is refused past its absolute lifetime)."""
        return f"{self.prefix}console:session:{digest}"

    def console_sessions(self, op: str) -> str:
        """Set of an operator's session digests (to sign them out everywhere)."""
        return f"{self.prefix}console:sessions:{op}"

    def console_link(self, digest: str) -> str:
        """String: the JSON {operator, name} of a one-time login link, by the SHA-256 of its
        token, with a TTL; read and deleted in one step (GETDEL)."""
        return f"{self.prefix}console:link:{digest}"

    def console_url(self) -> str:
        """String: where people reach the console (its public base URL), written by each
        process that serves it, for the desk's /console to build links with."""
        return f"{self.prefix}console:url"

    def console_failures(self, scope: str) -> str:
        """Counter of failed console logins of `op:<id>` or `ip:<address>` (with a TTL)."""
        return f"{self.prefix}console:failures:{scope}"

    def role(self, role: str) -> str:
        """Set of operator ids ("tg:123") with a role: operator, supervisor, trainer."""
        return f"{self.prefix}roles:{role}"

    def revoked(self) -> str:
        """Set of operator ids whose access was revoked (handoff/access.py)."""
        return f"{self.prefix}access:revoked"

    def access_told(self, op: str) -> str:
        """Marker: this person was told they have no access (for a day)."""
        return f"{self.prefix}access:told:{op}"

    def report_hour(self, hour: int) -> str:
        """Hash of the team's report counters of one hour since the epoch (handoff/reports.py).
        The scripts derive it themselves from the event's time (lua/lib_report.lua)."""
        return f"{self.prefix}report:{hour}"

    def report_day(self, day: int) -> str:
        """The same counters for one UTC day since the epoch (kept longer than the hours)."""
        return f"{self.prefix}report:d{day}"

    def report_total(self) -> str:
        """The team's counters since the start (`all` only), for Prometheus' histograms."""
        return f"{self.prefix}report:total"

    def closed_index(self) -> str:
        """Zset of finished handoffs, `<conv>|<closed at>` scored by the close time (written by
        close.lua, which derives the name from the prefix; handoff/records.py reads it)."""
        return f"{self.prefix}closed"

    def report_comments(self) -> str:
        """List (newest first, capped) of customers' comments on rated handoffs, as JSON."""
        return f"{self.prefix}report:comments"

    def stats_day(self, day: str) -> str:
        """Hash of one UTC day's bot counters: turns, fallbacks, intent:<name>, handoff:<why>."""
        return f"{self.prefix}stats:day:{day}"

    def stats_day_convs(self, day: str) -> str:
        """HyperLogLog of the conversations the bot talked to that day."""
        return f"{self.prefix}stats:day:{day}:convs"

    def stats_day_handoffs(self, day: str) -> str:
        """HyperLogLog of the conversations the bot handed to a human that day."""
        return f"{self.prefix}stats:day:{day}:handoffs"

    def rules_day(self, day: str) -> str:
        """Hash of one UTC day's automation rule firings: rule name -> count."""
        return f"{self.prefix}rules:day:{day}"

    def reload(self) -> str:
        """Hash: version (bumped by every reload request), by, reply_to (a desk conversation)."""
        return f"{self.prefix}brain:reload"

    def reload_channel(self) -> str:
        """Pub/sub channel that wakes every process up for a reload."""
        return f"{self.prefix}brain:reload:wake"

    def reload_reported(self, version: int, outcome: str) -> str:
        """Set once per request and outcome, so several processes report a result once."""
        return f"{self.prefix}brain:reload:{version}:{outcome}"

    # --- the web widget (bots/web) ---------------------------------------------------------
    def web_chat(self, conv: str) -> str:
        """Stream of what a web visitor's widget shows, in order (its ids are the `seq`)."""
        return f"{self.prefix}web:chat:{conv}"

    def web_sent(self, message_id: str) -> str:
        """Set once an outbound message reached `web_chat`: a redelivery is not shown twice."""
        return f"{self.prefix}web:sent:{message_id}"

    def web_file(self, file_id: str) -> str:
        """Hash: an image a visitor uploaded or an operator sent (type, data)."""
        return f"{self.prefix}web:file:{file_id}"

    def web_rate(self, visitor: str, minute: int) -> str:
        """Counter of a visitor's messages in one minute (the widget's rate limit)."""
        return f"{self.prefix}web:rate:{visitor}:{minute}"

    def web_profile(self, visitor: str) -> str:
        """A signed-in visitor's name, as the brand's site gave it."""
        return f"{self.prefix}web:name:{visitor}"

    def web_wake(self) -> str:
        """Pub/sub channel: the id of a conversation whose chat stream grew."""
        return f"{self.prefix}web:wake"

    def web_secret(self) -> str:
        """The key that signs visitors' widget tokens, made once and shared by every process."""
        return f"{self.prefix}web:secret"

    def vk_post(self, thread: str) -> str:
        """String: a wall post's text, fetched once for the cards of its comments (a day)."""
        return f"{self.prefix}vk:post:{thread}"

    def vk_author_threads(self, user: int) -> str:
        """Set: the VK wall and board threads (`vk-wall:` conversations) a user commented in,
        kept a while (bots/vk/blocks.py: an admin's ban in VK is told in their topics)."""
        return f"{self.prefix}vk:author:{user}:threads"

    # --- proactive notices (handoff/notices.py) --------------------------------------------
    def customers(self) -> str:
        """Zset: every conversation whose customer wrote -> when they last wrote (seconds).
        Written by commit_turn.lua, which derives the name from the prefix (keep in step)."""
        return f"{self.prefix}customers"

    def notices(self) -> str:
        """Zset of notice ids by creation time."""
        return f"{self.prefix}notices"

    def notice(self, notice_id: str) -> str:
        """Hash of one notice: text, segment (JSON), created_by, created_at, status, total, and
        one counter per outcome (sent, opted_out, unreachable, banned, missing)."""
        return f"{self.prefix}notice:{notice_id}"

    def notice_recipients(self, notice_id: str) -> str:
        """Set of the notice's conversations, resolved once when it was created."""
        return f"{self.prefix}notice:{notice_id}:to"

    def notice_done(self, notice_id: str) -> str:
        """Hash conversation -> outcome, written once per recipient by notice_send.lua."""
        return f"{self.prefix}notice:{notice_id}:done"


def shard_of(conv: str, shards: int) -> int:
    """Stable shard for a conversation: every event of one conversation lands in one stream."""
    return zlib.crc32(conv.encode()) % shards
