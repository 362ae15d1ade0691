"""The operator desk's logic, channel-neutral: commands, templates, what a desk event does."""
