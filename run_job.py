#!/usr/bin/env python3
"""run-job: run a declared job as the service user, never twice at once,
within its deadline, with every byte of its output logged.

Self-contained: standard library only, Python 3.6 or newer. Installed as
/usr/bin/run-job; cron_generate.py imports its configuration and schedule
code from here.
"""

import os
import sys

VERSION = "0.1.0"


# ---- 1. errors and exit codes -------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 64
EXIT_HALTED = 69
EXIT_RUNNING = 75
EXIT_REFUSED = 77
EXIT_CONFIG = 78
EXIT_TIMEOUT = 124


class ProcessControlError(Exception):
    """An error meant for the user: one line, no traceback."""

    exit_code = EXIT_FAILED


class UsageError(ProcessControlError):
    exit_code = EXIT_USAGE


class LockHeldError(ProcessControlError):
    exit_code = EXIT_RUNNING


class RefusedError(ProcessControlError):
    exit_code = EXIT_REFUSED


class ConfigError(ProcessControlError, ValueError):
    """A configuration mistake, located as SOURCE:LINE:COLUMN when known."""

    exit_code = EXIT_CONFIG

    def __init__(self, message, source=None, line=None, column=None):
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self.__str__())

    def __str__(self):
        place = [str(part) for part in (self.source, self.line, self.column)
                 if part is not None]
        if not place:
            return self.message
        return "%s: %s" % (":".join(place), self.message)

    def at(self, source, line=None, column=None):
        """The same error, located; keeps a position it already has."""
        if self.source is not None and self.line is not None:
            return self
        return ConfigError(self.message, source, line, column)


# ---- 2. the YAML subset ----------------------------------------------------------

def load_yaml(text, source="<string>"):
    """Return what yaml.safe_load(text) returns, or raise ConfigError."""
    return parse_yaml_document(text, source)[0]


def parse_yaml_document(text, source="<string>"):
    """Return (value, marks): marks maps a path tuple of keys and indexes to
    the 1-based (line, column) where that key or item starts."""
    raise ConfigError("the YAML parser is not written yet", source, 1, 1)


# ---- 3. durations and schedules -------------------------------------------------


# ---- 4. configuration ------------------------------------------------------------

class GlobalConfig(object):
    """The global configuration, every path absolute. `source` is the file it
    was read from, or None for the built-in defaults."""

    def __init__(self, source=None, user="process-control",
                 job_directory="/var/lib/process-control",
                 output_directory="/var/log/process-control",
                 run_directory="/run/process-control",
                 state_directory="/var/lib/process-control-state",
                 runner_path="/usr/bin/run-job", cron_template=None,
                 output_crontab="/etc/cron.d/process-control",
                 default_job_config=None, logging=None, mailto=None,
                 cron_environment=None):
        self.source = source
        self.user = user
        self.job_directory = job_directory
        self.output_directory = output_directory
        self.run_directory = run_directory
        self.state_directory = state_directory
        self.runner_path = runner_path
        self.cron_template = cron_template
        self.output_crontab = output_crontab
        self.default_job_config = default_job_config or {}
        self.logging = logging
        self.mailto = mailto
        self.cron_environment = cron_environment or {}


class Job(object):
    """One validated job file. `commands` and `slow_start_commands` are lists
    of argv lists, run in sequence; timeout and kill_grace are seconds
    (timeout 0 means none)."""

    def __init__(self, name, source=None, description=None, commands=(),
                 slow_start_commands=None, schedule=None, disabled=False,
                 timeout=600.0, kill_grace=10.0, environment=None, tags=(),
                 allow_overtime=False, fail_on_stderr=False,
                 success_exit_codes=(0,), failmail=None,
                 failure_threshold_for_mail=None):
        self.name = name
        self.source = source
        self.description = description
        self.commands = [list(argv) for argv in commands]
        self.slow_start_commands = slow_start_commands
        self.schedule = schedule
        self.disabled = disabled
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.environment = dict(environment or {})
        self.tags = list(tags)
        self.allow_overtime = allow_overtime
        self.fail_on_stderr = fail_on_stderr
        self.success_exit_codes = frozenset(success_exit_codes)
        self.failmail = failmail
        self.failure_threshold_for_mail = failure_threshold_for_mail


# ---- 5. privileges ---------------------------------------------------------------


# ---- 6. the lock -----------------------------------------------------------------


# ---- 7. running ------------------------------------------------------------------


# ---- 8. state and history --------------------------------------------------------


# ---- 9. reporting ----------------------------------------------------------------


# ---- 10. the command line --------------------------------------------------------

def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
