"""One exception hierarchy for everything the user can get wrong; the CLI maps it to exit code 2."""


class AdvisorError(Exception):
    """Base class: a problem with what the user gave us, reported as one line (exit code 2)."""

    exit_code = 2


class InputError(AdvisorError):
    """A value on the command line or in an API call is invalid (names the value)."""


class ModelLoadError(AdvisorError):
    """The user's model could not be found, imported, built or run at the requested crop."""


class ConfigError(AdvisorError):
    """A config file could not be read (syntax error, missing or cyclic base, unreadable YAML)."""


class DataError(AdvisorError):
    """A dataset folder is missing, malformed or inconsistent."""


class MissingExtraError(AdvisorError):
    """A command needs an optional dependency (the `torch` extra) that is not installed."""


class RetuneRequired(AdvisorError):
    """A training pre-flight check with ``strict=True`` found a head to retune: the run stops before its first step."""
