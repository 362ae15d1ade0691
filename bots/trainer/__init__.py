"""Trainers' tools: the inbox, operator replies as knowledge, hot reload, analytics."""
