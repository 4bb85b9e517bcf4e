"""Talking to providers: pooled httpx clients, body encoding and response parsing."""
