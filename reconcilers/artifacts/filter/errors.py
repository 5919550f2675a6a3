"""The errors of artifact filters: a filter that is not valid, and one that cannot be evaluated."""


class InvalidArtifactFilter(ValueError):
    """A filter that is not valid; ``position`` is the 0-based offset in the filter text."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (at column {self.position + 1})"


class FilterEvaluationError(Exception):
    """A filter could not be evaluated for an artifact; such an artifact is not selected."""
