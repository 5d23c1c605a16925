#!/usr/bin/env python3
"""cron-generate: write every scheduled job into /etc/cron.d/process-control.

Developers change schedules through audited job files; nobody needs write
access to cron. Configuration and job loading come from run_job (one source
of truth for what a valid job is): run_job.py beside this script in the
source tree, or the installed run-job beside /usr/bin/cron-generate.
"""

import os
import re
import sys


def _load_run_job():
    """Import run_job from beside this file, never from elsewhere on sys.path."""
    if "run_job" in sys.modules:
        return sys.modules["run_job"]
    here = os.path.dirname(os.path.realpath(__file__))
    for candidate in ("run_job.py", "run-job"):
        path = os.path.join(here, candidate)
        if os.path.isfile(path):
            break
    else:
        sys.stderr.write("cron-generate: cannot find run-job or run_job.py in %s; "
                         "install both scripts together (make install)\n" % here)
        sys.exit(70)
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("run_job", path)
    spec = importlib.util.spec_from_loader("run_job", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_job"] = module
    # No __pycache__ beside /usr/bin/run-job.
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


run_job = _load_run_job()
ConfigError = run_job.ConfigError
printable = run_job.printable  # every value a message or the crontab quotes: one line

USAGE = """\
usage: cron-generate [-c FILE] [--stdout | --check]

Write a crontab entry for every enabled, scheduled job to the configured
output_crontab (default /etc/cron.d/process-control), atomically, and only
when something changed.

options:
  -c FILE, --config FILE  the global config (default: $PROCESS_CONTROL_CONFIG,
                          else /etc/process-control.yaml, else built-in defaults)
  --stdout                print the crontab instead of writing it
  --check                 validate the global config and every job file, and warn
                          when the installed crontab is out of date; write nothing
  --version               print the version
  -h, --help              print this help

exit status: 0 written, unchanged or valid; 64 usage; 77 refused (an unsafe
job directory, or a user that is root under another name; nothing written);
78 configuration error (invalid jobs are listed as skipped and the rest is
still written).
"""


# ---- what Debian cron accepts --------------------------------------------------

# Beyond these, cron rejects or silently truncates a line, or ignores the file.
CRON_MAX_LINE = run_job.CRON_LINE_MAX
CRON_MAX_LINES = 10000
DEFAULT_TEMPLATE = "# Generated from {source}\n{schedule} {user} {command}\n"


def check_user(config):
    """The user every entry runs as: it must exist, and be root only by name,
    as run-job checks it (with the same advice); that cron can read its name
    is checked as the config loads (run_job.parse_user)."""
    run_job.require_service_account(config)


def check_runner_path(config):
    """A configured runner_path is checked as the config loads; the default
    one, beside run_job, by the same function here."""
    problem = run_job.runner_path_problem(config.runner_path)
    if problem is not None:
        raise config.error(problem, "runner_path")


def environment_lines(config):
    """MAILTO= and cron_environment lines, quoted where cron would trim."""
    lines = []
    if config.mailto is not None:  # checked as the config loads (run_job.parse_mailto)
        lines.append("MAILTO=%s" % (config.mailto or '""'))
    for name, value in (config.cron_environment or {}).items():
        try:
            lines.append("%s=%s" % (name, environment_value(name, value)))
        except ConfigError as error:
            raise config.error(error.message, "cron_environment", name)
    return lines


def environment_value(name, value):
    """VALUE as cron_environment writes it; ConfigError (no position) if cron
    cannot carry it, by the rule the config's loading applies
    (run_job.cron_setting_problem)."""
    if not isinstance(value, str):
        raise ConfigError("cron_environment: %s must be a string" % name)
    problem = run_job.cron_setting_problem(name, value)
    if problem is not None:
        raise ConfigError(problem)
    # cron trims blanks around a value and strips one pair of matching quotes.
    if value == "" or value != value.strip() or value[:1] in "'\"" or value[-1:] in "'\"":
        value = '"%s"' % value
    return value


# ---- rendering -----------------------------------------------------------------

class Entry(object):
    """One job file's place in the crontab: scheduled, skipped, or invalid.
    `label` is "job", or "job file" for a file whose name is no job name."""

    def __init__(self, name, job=None, error=None, label="job"):
        self.name = name
        self.job = job
        self.error = error
        self.label = label

    @property
    def scheduled(self):
        return self.job is not None and run_job.is_scheduled(self.job)


def collect_entries(config, directory):
    """An Entry per .yaml file in the job directory (DIRECTORY, as
    run_job.job_directory_path resolved and checked it), in name order."""
    names, bad_files = run_job.scan_job_directory(config)
    entries = [Entry(printable(error.file_name), error=error, label="job file")
               for error in bad_files]
    for name in names:
        try:
            entries.append(Entry(name, job=run_job.load_job(config, name, directory)))
        except run_job.ProcessControlError as error:  # refused files too
            entries.append(Entry(name, error=error))
    return sorted(entries, key=lambda entry: entry.name)


def render_crontab(config, entries):
    template = config.cron_template or DEFAULT_TEMPLATE
    lines = [
        "# Generated by cron-generate from the job files in %s" % printable(config.job_directory),
        "# Do not edit: change the job files, then run cron-generate again.",
    ]
    lines.extend(environment_lines(config))
    text = "\n".join(lines) + "\n"
    for entry in entries:
        text += render_entry(config, template, entry)
    return text + render_catch_up(config, template, entries)


def render_entry(config, template, entry):
    if entry.error is not None:
        return one_line("# Skipping invalid %s %s: %s"
                        % (entry.label, entry.name, printable(str(entry.error)))) + "\n"
    if not entry.scheduled:
        return "# Skipping %s job %s\n" % (
            "disabled" if entry.job.disabled else "unscheduled", entry.name)
    expression = entry.job.schedule_expression
    # A valid Schedule holds neither, so single quotes carry it through sh.
    assert "'" not in expression and "%" not in expression, expression
    values = {
        "source": entry.job.source,
        "schedule": expression,
        "user": config.user,
        "command": job_command(config, entry.name, expression),
    }
    return render_template(template, values, "job %s" % entry.name, entry.job.source)


def render_catch_up(config, template, entries):
    """The line that runs run-job --catch-up when cron starts at boot, in the
    template's form, when a scheduled job has catch_up: true; else nothing."""
    if not any(entry.scheduled and entry.job.catch_up for entry in entries):
        return ""
    values = {
        "source": config.job_directory,
        "schedule": "@reboot",
        "user": config.user,
        "command": "%s --catch-up" % config.runner_path,
    }
    return (CATCH_UP_COMMENT
            + render_template(template, values, "the catch-up line", config.job_directory))


CATCH_UP_COMMENT = ("# Catch-up: at boot, run-job --catch-up runs once each job with "
                    "catch_up: true that missed a scheduled time\n")


def render_template(template, values, what, where):
    """TEMPLATE filled with VALUES, the lines of WHAT, ending in a newline."""
    for key, value in values.items():
        if "\n" in value or "\r" in value or (key != "source" and "%" in value):
            raise ConfigError("%s of %s holds a line break or %%, which cron would "
                              "misread" % (key, what), where)
    rendered = template.format(**values)
    if not rendered.endswith("\n"):
        rendered += "\n"
    return rendered


def job_command(config, name, expression):
    """The command of job NAME's line: run-job sees the schedule the line was
    written for, and skips a start the job file no longer asks for."""
    return "%s --job %s --scheduled '%s'" % (config.runner_path, name, expression)


def one_line(text):
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= CRON_MAX_LINE else text[:CRON_MAX_LINE - 3] + "..."


def validate_crontab(text, config):
    """Any line Debian cron would reject or misread, as one error."""
    where = config.output_crontab
    if not text.endswith("\n"):
        raise ConfigError("the crontab must end in a newline", where)
    for number, line in enumerate(text.split("\n")[:-1], 1):
        problem = cron_line_problem(line, config.user)
        if problem:
            raise ConfigError("generated line %d: %s; check cron_template and the job "
                              "files" % (number, problem), where)


def cron_line_problem(line, user):
    stripped = line.lstrip(" \t")
    if "\r" in line:
        return "a carriage return"
    if len(line) > CRON_MAX_LINE:
        return "longer than %d characters" % CRON_MAX_LINE
    if stripped == "" or stripped.startswith("#"):
        return None
    setting = ENVIRONMENT_LINE.match(stripped)
    if setting:
        return environment_line_problem(stripped[setting.end():].strip(" \t"))
    # @reboot (the catch-up line) stands for the five time fields.
    time_fields = 1 if stripped.split(None, 1)[0] == "@reboot" else 5
    fields = stripped.split(None, time_fields + 1)
    if len(fields) < time_fields + 2:
        return "not a cron entry of five time fields (or @reboot), a user and a command"
    if time_fields == 5:
        try:
            run_job.Schedule(" ".join(fields[:5]))
        except ConfigError as error:
            return "schedule: %s" % error.message
    if fields[-2] != user:
        return "runs as %s, not the service user %s" % (run_job.quoted_value(fields[-2]),
                                                        run_job.quoted_value(user))
    if UNESCAPED_PERCENT.search(fields[-1]):
        return "an unescaped % in the command, which cron turns into a newline"
    return None


def environment_line_problem(value):
    """cron reads `NAME=` as a broken job line and an unclosed quote as an
    error: either way it ignores the whole file."""
    if value == "":
        return "an empty setting, which cron reads as a broken entry; write NAME=\"\""
    if value[0] in "'\"" and (len(value) < 2 or value[-1] != value[0]):
        return "a setting with an unclosed quote"
    return None


ENVIRONMENT_LINE = re.compile(r"""(?:[A-Za-z_][A-Za-z0-9_]*|'[^']*'|"[^"]*")[ \t]*=""")
UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")


# ---- writing -------------------------------------------------------------------

def check_line_count(text, path):
    count = text.count("\n")
    if count > CRON_MAX_LINES:
        raise ConfigError("%d lines; Debian cron ignores a file of more than %d lines, so "
                          "disable or remove jobs" % (count, CRON_MAX_LINES), path)


def target_path(config):
    path = config.output_crontab
    if not isinstance(path, str) or not os.path.isabs(path):
        raise config.error("output_crontab %s must be an absolute path or 'console'"
                           % run_job.quoted_value(path), "output_crontab")
    return path  # its file name is checked as the config loads (parse_crontab_path)


def read_existing(path):
    """The current bytes and stat of path, or None; anything but a regular
    file (a symlink, a FIFO) counts as different, and is replaced."""
    try:
        return run_job.read_crontab_file(path)
    except run_job.ProcessControlError:
        return None


def is_current(existing, data):
    if existing is None:
        return False
    content, status = existing
    owner_ok = os.geteuid() != 0 or status.st_uid == 0
    return content == data and (status.st_mode & 0o7777) == 0o644 and owner_ok


# ---- logging -------------------------------------------------------------------

def crontab_changes(path, existing, data):
    """A line per job that DATA, the crontab PATH as written, schedules
    differently from EXISTING (read_existing's before): added, removed or
    rescheduled, in name order."""
    before = {} if existing is None else run_job.parse_installed_crontab(path, existing[0]).jobs
    after = run_job.parse_installed_crontab(path, data).jobs
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append("job %s added to %s: %s" % (name, path, schedules_text(after[name])))
        elif name not in after:
            changes.append("job %s removed from %s, was %s"
                           % (name, path, schedules_text(before[name])))
        elif schedules_text(before[name]) != schedules_text(after[name]):
            changes.append("job %s rescheduled in %s: %s, was %s" % (
                name, path, schedules_text(after[name]), schedules_text(before[name])))
    return changes


def schedules_text(schedules):
    """The schedules of a job's crontab lines (None: a line of an older
    cron-generate, without --scheduled), as the events quote them."""
    return ", ".join("an unknown schedule" if schedule is None
                     else "'%s'" % run_job.normalised_schedule(schedule)
                     for schedule in schedules)


def log_changes(config, changes):
    """One event per change, as run-job's (ident cron-generate); a logging
    failure is a warning, never a failure of the deployment."""
    if not changes:
        return
    events = run_job.run_events(config, "cron-generate")
    for change in changes:
        run_job.log_event(events, run_job.LOG_INFO, change)
    if events is not None and events.failure is not None:
        sys.stderr.write("cron-generate: warning: logging: %s\n" % printable(events.failure))

# ---- the command line ----------------------------------------------------------

def parse_arguments(argv):
    options = {"config": None, "stdout": False, "check": False}
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        if argument in ("-h", "--help"):
            options["help"] = True
        elif argument == "--version":
            options["version"] = True
        elif argument in ("--stdout", "--check"):
            options[argument[2:]] = True
        elif argument in ("-c", "--config"):
            if not arguments:
                raise run_job.UsageError("%s needs a file name; see cron-generate --help"
                                         % argument)
            options["config"] = arguments.pop(0)
        elif argument.startswith("--config="):
            options["config"] = argument.split("=", 1)[1]
        elif argument.startswith("-c"):  # -cFILE, as run-job reads it too
            options["config"] = argument[2:]
        elif argument.startswith("-") and argument != "-":
            raise run_job.UsageError("unknown option %s; see cron-generate --help"
                                     % argument[:40])
        else:
            raise run_job.UsageError("unexpected argument %s: cron-generate schedules every "
                                     "job and takes only the options -c FILE, --stdout and "
                                     "--check; see cron-generate --help"
                                     % run_job.quoted_value(argument))
    if options["stdout"] and options["check"]:
        raise run_job.UsageError("--stdout and --check exclude each other; see "
                                 "cron-generate --help")
    return options


def report_out_of_date(path, data, entries):
    """--check: warn when the installed crontab is not DATA, saying which
    jobs it runs differently from their job files."""
    try:
        existing = run_job.read_crontab_file(path)
    except run_job.ProcessControlError as error:
        warn("%s; run cron-generate" % error)
        return
    if existing is None:
        warn("%s does not exist; run cron-generate" % path)
    elif existing[0] != data:
        warn("%s is out of date (%s); run cron-generate"
             % (path, "; ".join(drift_descriptions(path, existing[0], entries))))


def drift_descriptions(path, installed, entries):
    """What the crontab PATH, INSTALLED (bytes), runs differently from ENTRIES."""
    crontab = run_job.parse_installed_crontab(path, installed)
    descriptions = []
    for entry in entries:
        if entry.job is not None:
            problem = run_job.job_crontab_problem(entry.job, crontab)
        elif crontab.jobs.get(entry.name):  # the new crontab skips an invalid job
            problem = "invalid, still in the crontab"
        else:
            problem = None
        if problem is not None:
            descriptions.append("job %s: %s" % (entry.name, problem))
    orphans = run_job.crontab_orphans(crontab, [entry.name for entry in entries])
    if orphans:
        descriptions.append(run_job.orphans_problem(orphans))
    catch_up = run_job.catch_up_lines_problem(
        crontab, [entry.job for entry in entries if entry.job is not None])
    if catch_up is not None:
        descriptions.append(catch_up)
    return descriptions or ["its text differs from what the config and job files generate"]


def warn(text):
    sys.stderr.write("cron-generate: warning: %s\n" % printable(text))


def report_problems(entries, config):
    for entry in entries:
        if entry.error is not None:
            sys.stderr.write("cron-generate: %s; %s %s is left off the schedule\n"
                             % (printable(str(entry.error)), entry.label, entry.name))
        elif entry.scheduled:
            for warning in run_job.schedule_warnings(entry.job):
                sys.stderr.write("cron-generate: %s\n" % printable(str(warning)))


def create_directories(config):
    """As root, at every deployment: the output, state and run directories,
    owned by the service user, who could not create them under root's
    /var/log and /var/lib on its first cron run. One that cannot be made is
    reported by the warnings that follow."""
    account = run_job.service_account(config)
    for key, path, mode, gid in run_job.written_directories(config, account):
        try:
            if run_job.ensure_directory(config, account, key, path, mode, gid):
                print("cron-generate: created %s (owner %s, mode %04o)"
                      % (path, config.user, mode))
        except (run_job.ProcessControlError, OSError):
            pass


def report_service_user_problems(entries, config):
    """What would make the service user's cron runs fail: warnings, as the
    job's program, say, may be deployed next; run-job --check fails on them."""
    account = run_job.service_account(config)
    problems = run_job.directory_problems(config, account)
    for entry in entries:
        if entry.scheduled:
            problems.extend(run_job.command_problems(config, entry.job, account))
    for problem in problems:
        sys.stderr.write("cron-generate: warning: %s\n" % printable(str(problem)))


def generate(options):
    config = run_job.load_global_config(options["config"])
    directory = run_job.job_directory_path(config)  # refused: keep the crontab cron has
    check_user(config)
    check_runner_path(config)
    entries = collect_entries(config, directory)
    report_problems(entries, config)
    text = render_crontab(config, entries)
    validate_crontab(text, config)
    console = options["stdout"] or config.output_crontab == "console"
    if not console:
        path = target_path(config)
        check_line_count(text, path)
    if not options["check"] and not console and os.geteuid() == 0:
        create_directories(config)
    report_service_user_problems(entries, config)
    invalid = any(entry.error is not None for entry in entries)
    status = run_job.EXIT_CONFIG if invalid else run_job.EXIT_OK
    data = text.encode("utf-8")
    if options["check"]:
        if config.output_crontab != "console":
            report_out_of_date(path, data, entries)
        return status
    if console:
        sys.stdout.write(text)
        return status
    existing = read_existing(path)
    if is_current(existing, data):
        print("cron-generate: %s is up to date" % path)
        return status
    try:
        run_job.write_file_atomic(path, data, 0o644)  # a leading dot: cron ignores the temporary
    except IsADirectoryError:
        raise run_job.RefusedError("%s is a directory, not a crontab; remove it" % path)
    scheduled = sum(1 for entry in entries if entry.scheduled)
    print("cron-generate: wrote %s (%d scheduled, %d skipped)"
          % (path, scheduled, len(entries) - scheduled))
    log_changes(config, crontab_changes(path, existing, data))
    return status



def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    run_job.utf8_standard_streams()  # Python 3.6 in cron's C locale
    try:
        options = parse_arguments(argv)
        if options.get("help"):
            sys.stdout.write(USAGE)
            return run_job.EXIT_OK
        if options.get("version"):
            print("cron-generate %s" % run_job.VERSION)
            return run_job.EXIT_OK
        return generate(options)
    except run_job.ProcessControlError as error:
        sys.stderr.write("cron-generate: %s\n" % printable(str(error)))
        return error.exit_code
    except OSError as error:
        sys.stderr.write("cron-generate: %s\n" % printable(str(error)))
        return run_job.EXIT_REFUSED if error.errno in (1, 13) else run_job.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
