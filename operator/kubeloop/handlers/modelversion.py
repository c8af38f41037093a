"""ModelVersion handlers (in progress: stages and the registry index land in a later commit)."""
