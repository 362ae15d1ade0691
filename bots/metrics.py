"""Prometheus metrics of the runtime (served at /metrics by the HTTP server)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INBOUND = Counter(
    "supportbot_inbound_events_total", "Inbound platform events by outcome",
    ["channel", "outcome"],  # stored, duplicate, rejected, ignored
)
OUTBOUND = Counter(
    "supportbot_outbound_messages_total", "Outbound calls by outcome",
    ["channel", "lane", "outcome"],  # sent, retried, unreachable, failed
)
OUTBOUND_DELAY = Histogram(
    "supportbot_outbound_delay_seconds",
    "From the reply being decided to the platform accepting it",
    ["channel", "lane"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TURNS = Counter("supportbot_bot_turns_total", "Events handled by the worker", ["state", "result"])
HANDOFFS = Counter("supportbot_handoffs_total", "Conversations handed to humans", ["reason"])
QUIETED = Counter(
    "supportbot_customer_messages_quieted_total",
    "Customer messages stored but not answered: the customer wrote faster than the bot answers",
)
HTTP_REFUSED = Counter(
    "supportbot_http_refused_total",
    "Requests the HTTP guard refused before any work (429 limits, 503 busy, 408 slow body)",
    ["status"],
)
