"""The process exit codes of every paperbell command, in one place.

They follow sysexits.h and the shell's conventions, so service managers and scripts can
tell a usage mistake from a bad configuration (which a restart will not fix).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # the command ran and something failed (a source, a health check)
    USAGE = 2  # a bad argument or query: fix the command line
    CONFIG = 78  # EX_CONFIG: a setting, the data directory or the database needs the operator
    INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C
    BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`| head`)
