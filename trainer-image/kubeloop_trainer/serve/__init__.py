"""The ``serve`` entrypoint: one model artifact over the Open Inference Protocol (KServe V2 REST)."""
