"""The error types of the mixing library. Each message is meant to be shown to a user as it is."""


class MixingError(Exception):
    """Base of every error the library raises on bad input."""


class StemError(MixingError):
    """An audio file was rejected. Carries the file's name and the reason."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class PresetError(MixingError):
    """A preset (parameters as JSON) does not fit the schema."""


class CheckpointError(MixingError):
    """A controller checkpoint is missing, corrupt, or was made for another schema or config."""
