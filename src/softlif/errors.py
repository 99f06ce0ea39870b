"""softlif's error model: every failure softlif foresees is a :class:`SoftlifError`.

The command line prints such an error as one line naming what was wrong and what to do, and
exits with :attr:`SoftlifError.exit_code` (1 for bad data, files or checkpoints, 2 for bad
arguments or configuration); any other exception is a bug and keeps its traceback. Each class
also derives from the built-in exception that code written before this module caught
(``ValueError``, ``RuntimeError``, ``AssertionError``), so existing handlers keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SoftlifError(Exception):
    """Base of every error softlif raises on purpose (bad input, not a bug)."""

    exit_code = 1


class ConfigError(SoftlifError, ValueError):
    """A configuration value (TOML file, command-line flag or settings object) is invalid."""

    exit_code = 2


class CheckpointError(SoftlifError, ValueError):
    """A checkpoint file is missing, unreadable, malformed or holds non-finite values."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
