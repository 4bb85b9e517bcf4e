"""What the gateway tells its operators about itself while it runs: metrics (``metrics``).

A leaf package: the runtime calls its small functions, it imports nothing of the runtime.
"""
