"""What the gateway tells operators about itself: metrics (``metrics``, ``multiproc``), log lines
(``logformat``), the request a line belongs to (``context``), request ids (``requestid``) and
OpenTelemetry traces (``tracing``).

A leaf package: ``runtime`` and ``http`` call its small functions; it imports neither.
"""
