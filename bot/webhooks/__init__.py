"""Outbound webhooks for ERP/billing: the outbox sink that queues them, signing, and the deliverer.
The event reference (types, payloads, headers, signature, retries) is README.md beside this file."""
