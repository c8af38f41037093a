"""TrainingRun handlers (in progress: the training flow lands in the next commit)."""
