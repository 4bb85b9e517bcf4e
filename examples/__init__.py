"""Runnable examples that accompany the gateway (not part of the installed package)."""
