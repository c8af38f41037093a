"""The trainer image runtime: the `train` and `serve` entrypoints."""
