"""Channel adapters, the runtime that wires everything together, the CLI and settings."""
