"""Error types the command line maps to exit codes."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input (workflow, arguments, store): exit code 2, one line, nothing written."""


class ConfigError(UsageError):
    """A workflow key holds a value that is not allowed.

    The message names the key, the value and what is allowed.
    """

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        # a missing key has no value to show (TOML has no null)
        super().__init__(f"{key} {allowed}" if value is None else f"{key} = {value!r}: {allowed}")


class RunError(Exception):
    """A failure while running (a block that failed, a locked store): exit code 1."""
