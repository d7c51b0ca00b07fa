"""Named prompt and message templates, per language. No prompt text lives in code."""
