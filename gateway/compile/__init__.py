"""Configuration -> the immutable plan (``gateway.plan``).

``gateway_file.load`` reads ``gateway.yaml``, compiles each mapping it names
(``mapping.compile_mapping``, with the scope checks of ``checks`` and ``references``), binds
secrets, tenants and the idempotency settings, and returns the plan or the diagnostics. What
compiling and binding a mapping's ``auth`` means is each kind's own, in ``gateway.auth``. Nothing
here opens a connection: ``runtime`` does that from the plan."""
