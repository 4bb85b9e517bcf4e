"""What the gateway tells operators about itself: log lines (logformat), the request a line
belongs to (context), request ids (requestid) and OpenTelemetry traces (tracing).

Imported by ``runtime`` and ``http``; imports neither."""
