"""The Slack surface (Bolt for Python): events and buttons in, the agent's replies out as Block Kit."""
