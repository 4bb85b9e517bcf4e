"""The integrator's commands beside ``serve``: ``lint``, ``gateway test`` (``mapping_tests``),
``render``, ``schema`` and ``new`` (``scaffold``)."""
