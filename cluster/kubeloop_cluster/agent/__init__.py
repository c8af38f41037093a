"""The local node agent."""
