"""Faithful simulators of real gift card providers' APIs, built on :mod:`examples.simkit`.

Each subpackage runs with ``python -m examples.providers.<name>`` and embeds with
``examples.providers.<name>.app.create_app(...)``; its README.md lists what it implements.
"""
