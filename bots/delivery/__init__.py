"""The delivery core every outbound lane shares (Telegram customers, the desk, VK, ...).

`lanes.LaneSender` reads a channel's outbox under the channel's sender lease (one sender per
bot token at a time, a stable consumer name), never hands out an entry twice while it is in
flight, and runs one ordered lane per peer. `policy.Delivery` is the one retry policy: a
platform adapter only classifies what went wrong (retry after N seconds, transient, the peer
is unreachable, a permanent refusal, the target moved) and the policy decides what happens,
counts it in the metrics and journals every message it gives up on.
"""
