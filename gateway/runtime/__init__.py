"""Serving webhooks from a plan, top-down:

``webhook`` (one webhook, start to finish) -> ``admission`` (route, key, body) -> ``idempotency``
(claim or replay) -> ``engine`` (the mapping's steps) -> ``upstream`` (HTTP to the provider).
Framework-free: ``http`` adapts it to Litestar."""
