"""The command's exit codes and the errors that carry them (documented in docs/operations.md)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    ATTENTION = 1  # something needs a human: dead letters, lost ranges, an alarm, a failed run
    USAGE = 2  # the command line is wrong: an unknown table, a day in the future, a bad option
    UNREACHABLE = 3  # the stack cannot be reached: no credentials, no such stack, no endpoint


class CliError(Exception):
    """An error the command reports as one line on stderr, with its exit code."""

    exit_code: Exit = Exit.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    exit_code = Exit.USAGE


class UnreachableError(CliError):
    exit_code = Exit.UNREACHABLE


class DeployError(CliError):
    """The deploy ``changelake attach --deploy`` ran failed: the stack needs a look."""

    exit_code = Exit.ATTENTION
