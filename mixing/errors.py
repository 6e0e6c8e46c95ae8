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


class SessionError(MixingError):
    """The set of stems as a whole was rejected (none given, or too many tracks)."""


class StemsRejected(MixingError):
    """Some stems of a session were rejected. ``errors`` holds one StemError per bad file, in input order."""

    def __init__(self, errors: list[StemError]):
        self.errors = list(errors)
        noun = "stem was" if len(self.errors) == 1 else "stems were"
        super().__init__(f"{len(self.errors)} {noun} rejected: " + " ".join(str(e) for e in self.errors))
