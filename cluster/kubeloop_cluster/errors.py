"""One error type for every setup problem, so that the CLI can print one line instead of a traceback."""


class SetupError(RuntimeError):
    """The local cluster cannot be set up; the message names the cause and the fix."""
