"""Channel-neutral conversation store on Redis: ingest streams, state machine, outbox, journal."""
