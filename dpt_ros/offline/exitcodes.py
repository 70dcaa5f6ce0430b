"""Exit codes of `dpt-ros`: scripts that batch-process many bags branch on these."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What happened, as the process exit status (documented in docs/offline.md)."""

    OK = 0  # everything processed and written
    ERROR = 1  # unexpected internal error (a bug: please report the traceback)
    USAGE = 2  # bad command line (argparse also uses 2)
    SKIPPED = 3  # output complete, but some input messages/files were skipped (see summary)
    INPUT = 4  # input missing, unreadable, or the requested topic is not in the bag
    OUTPUT_EXISTS = 5  # output exists and --force was not given; nothing was written
    CONFIG = 6  # bad parameter file, model or device (the message says what to change)
    FAILED = 7  # fleet: some bags failed (see the manifest); every other bag completed
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); no output under the final name


class CliError(Exception):
    """An expected failure with a message for the user and the exit code that names it."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def run_exit_code(interrupted: bool, skipped: bool) -> ExitCode:
    """The status of a run that got through: interrupted beats skipped beats OK."""
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.SKIPPED if skipped else ExitCode.OK
