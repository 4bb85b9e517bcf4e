"""Stateful simulators of gift card providers' APIs, built on :mod:`simulators.simkit`.

``simulators.sandbox`` is the fictional provider the shipped ``gateway.yaml`` starts as its
companion; the others (``adyen``, ``square``, ``shopify``, ``voucherify``, ``radial``) follow real
providers' APIs. Each runs with ``python -m simulators.<name>`` and embeds with
``simulators.<name>.app.create_app(...)``; its README.md lists what it implements. They ship in
the gateway's wheel, so an installed gateway can run its default configuration.
"""
