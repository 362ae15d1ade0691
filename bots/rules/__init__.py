"""Automation rules (docs/rules.md): a YAML file of "when ... do ..." rules, loaded into the
Brain with flows and NLU, run in the customer's turn (message rules) and in the desk
scheduler's rounds (timed rules)."""
