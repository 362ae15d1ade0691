"""The web channel: the chat widget's server side (docs/web.md)."""
