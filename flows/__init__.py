"""YAML dialogue flows and the pure engine that runs them (no I/O, no Redis)."""
