"""Fake platform servers on 127.0.0.1 (Telegram Bot API, VK API, Rasa) for tests and benchmarks.

They live outside `tests/` because the benchmarks drive them too, and `bench/` must not depend
on the test suite. Each fake cites the public API documentation it follows.
"""
