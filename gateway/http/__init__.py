"""The gateway on the network: the Litestar app (``app``), the HTTP front and the ASGI entry
point of ``gateway serve`` (``serve``), and the development companions it starts
(``companions``)."""
