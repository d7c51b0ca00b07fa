"""The transactional LTC core. Imports no chat, LLM or web library."""
