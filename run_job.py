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

import fcntl  # noqa: E402
import select  # noqa: E402
import time  # noqa: E402

# One flock(2) per job on RUN_DIRECTORY/NAME.lock. The kernel drops it when the
# last descriptor goes, and the job's processes inherit the descriptor, so the
# lock lives exactly as long as anything of the run lives: never stale, no pid
# files to clean up. The file is never removed (a removed lock file would let
# two runs lock two different inodes); its text only describes the holder.

LOCK_RECORD_SIZE = 96


def lock_path(config, name):
    return os.path.join(config.run_directory, name + ".lock")


def _open_regular_file(path, flags, mode=0o644):
    """Open PATH refusing symlinks and anything but a regular file (a FIFO
    planted there would block us); set MODE when we own the file."""
    import stat
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise RefusedError("%s: not a regular file; remove it" % path)
        if status.st_uid == os.geteuid() and status.st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


class JobLock(object):
    """The held lock of one run: `fd` is inherited by the job's processes."""

    def __init__(self, path, fd):
        self.path = path
        self.fd = fd

    def describe(self, pid, pgid, start, kill_grace):
        # One fixed-size pwrite, so a concurrent reader sees the old or the new
        # record, never an empty file.
        text = "pid %d pgid %d start %.3f kill_grace %.3f\n" % (pid, pgid, start, kill_grace)
        os.pwrite(self.fd, text.encode("ascii").ljust(LOCK_RECORD_SIZE), 0)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def acquire_lock(config, job):
    """Take JOB's lock without waiting. Return a JobLock; None when the job
    is still running and allows overtime; else raise LockHeldError."""
    import fcntl
    path = lock_path(config, job.name)
    try:
        fd = _open_regular_file(path, os.O_RDWR | os.O_CREAT)
    except OSError as error:
        raise RefusedError("%s: cannot open the lock file: %s; check run_directory"
                           % (path, error.strerror))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        if job.allow_overtime:
            return None
        raise LockHeldError(_still_running_message(job.name, read_lock_record(path)))
    except BaseException:
        os.close(fd)
        raise
    return JobLock(path, fd)


def _still_running_message(name, record):
    if not record:
        return "job %s is still running; not starting another run" % name
    return ("job %s is still running (pid %d, started %s); not starting another run"
            % (name, record["pid"], _local_time_text(record["start"])))


def read_lock_record(path):
    """The holder description in a lock file: {"pid", "pgid", "start",
    "kill_grace"}, or None when there is none yet."""
    try:
        with open(path, "rb") as lock_file:
            words = lock_file.read(LOCK_RECORD_SIZE).split()
    except OSError:
        return None
    record = dict(zip(words[0::2], words[1::2]))
    try:
        return {"pid": int(record[b"pid"]), "pgid": int(record[b"pgid"]),
                "start": float(record[b"start"]),
                "kill_grace": float(record[b"kill_grace"])}
    except (KeyError, ValueError):
        return None


def _lock_is_held(path):
    """Whether anyone holds the flock on PATH, found without taking it (even a
    shared lock for an instant could make a starting run exit 75)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return False
    try:
        with open("/proc/locks") as locks:
            table = locks.read()
    except OSError:
        return bool(lock_holders(path))
    wanted = "%02x:%02x:%d" % (os.major(status.st_dev), os.minor(status.st_dev),
                               status.st_ino)
    for line in table.splitlines():
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields and wanted in fields:
            return True
    return False


def running_info(config, name):
    """{"pid", "pgid", "start", "kill_grace"} of the run holding NAME's lock,
    or None when it is not running. Read-only: never touches the lock."""
    path = lock_path(config, name)
    if not _lock_is_held(path):
        return None
    return read_lock_record(path) or {"pid": None, "pgid": None, "start": None,
                                      "kill_grace": None}


class ProcessInfo(object):
    """One process as /proc/PID/stat shows it; `start` (clock ticks since
    boot) tells a process from a later one that reused its pid."""

    def __init__(self, pid, ppid, pgrp, state, start):
        self.pid = pid
        self.ppid = ppid
        self.pgrp = pgrp
        self.state = state
        self.start = start


def read_process(pid):
    """ProcessInfo for PID, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as stat_file:
            text = stat_file.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ")".
    fields = text[text.rindex(b")") + 2:].split()
    return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0].decode("ascii"),
                       int(fields[19]))


def same_process(info):
    """Whether INFO's process still lives (a zombie does not) and is the same one."""
    now = read_process(info.pid)
    return now is not None and now.start == info.start and now.state not in ("Z", "X")


def signal_verified(info, signum, group=False):
    """Send SIGNUM to INFO's process (or, with GROUP, to its process group, which
    cannot be reused while it has this member) after checking it is still the
    same process. Return whether the signal was sent."""
    if info.pid == os.getpid() or (group and info.pgrp == os.getpgrp()):
        return False
    if not same_process(info):
        return False
    try:
        if group:
            os.killpg(info.pgrp, signum)
        else:
            os.kill(info.pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _all_processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_process(int(entry))
            if info is not None:
                yield info


def lock_holders(path, with_descendants=False):
    """The live processes, other than this one, holding a descriptor of the
    lock file PATH (compared by device and inode, whatever name they used),
    and WITH_DESCENDANTS their descendants too."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return []
    wanted = (status.st_dev, status.st_ino)
    processes = [info for info in _all_processes()
                 if info.pid != os.getpid() and info.state not in ("Z", "X")]
    holders = [info for info in processes if _has_open_file(info.pid, wanted)]
    if with_descendants:
        holders = descendants(processes, [info.pid for info in holders], holders)
    return holders


def descendants(processes, roots, found=()):
    """FOUND plus the PROCESSES descending from the pids ROOTS."""
    children = {}
    for info in processes:
        children.setdefault(info.ppid, []).append(info)
    found = list(found)
    seen = set(info.pid for info in found)
    pending = list(roots)
    while pending:
        for info in children.get(pending.pop(), ()):
            if info.pid not in seen:
                seen.add(info.pid)
                found.append(info)
                pending.append(info.pid)
    return found


def _has_open_file(pid, wanted):
    directory = "/proc/%d/fd" % pid
    try:
        descriptors = os.listdir(directory)
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            status = os.stat(os.path.join(directory, descriptor))
        except OSError:
            continue
        if (status.st_dev, status.st_ino) == wanted:
            return True
    return False


def kill_job(config, name):
    """Stop NAME's running job as its deadline would. A live run-job is asked
    with SIGTERM (it stops the whole tree and records the run as killed);
    processes left by a run-job that died are found by the lock they hold.
    Return 0 when something was stopped, 1 when nothing was running."""
    import time
    path = lock_path(config, name)
    if not _lock_is_held(path):
        print("run-job: job %s is not running" % name)
        return EXIT_FAILED
    record = read_lock_record(path) or {}
    kill_grace = record.get("kill_grace", 10.0)
    holders = lock_holders(path)
    runner = [info for info in holders if info.pid == record.get("pid")]
    if runner and signal_verified(runner[0], _signals().SIGTERM):
        # run-job waits kill_grace before SIGKILL, then records the outcome.
        deadline = time.monotonic() + kill_grace + 5.0
        while time.monotonic() < deadline and _lock_is_held(path):
            time.sleep(0.02)
    if _lock_is_held(path):
        stop_lock_holders(path, kill_grace)
    return EXIT_OK


def stop_lock_holders(path, kill_grace):
    """SIGTERM every process holding the lock file, its process group and its
    descendants, SIGKILL after KILL_GRACE seconds what is still there."""
    import time
    signals = _signals()
    first = signals.SIGKILL if kill_grace <= 0 else signals.SIGTERM
    deadline = time.monotonic() + kill_grace
    signalled = set()
    while True:
        holders = lock_holders(path, with_descendants=True)
        if not holders:
            return
        late = time.monotonic() >= deadline
        for info in holders:
            if late or (info.pid, info.start) not in signalled:
                signum = signals.SIGKILL if late else first
                signal_verified(info, signum, group=True)
                signal_verified(info, signum)
                if signum == signals.SIGTERM:
                    signal_verified(info, signals.SIGCONT)
                signalled.add((info.pid, info.start))
        if late and time.monotonic() > deadline + 5.0:
            return
        time.sleep(0.02)


def _signals():
    """The signal module without the enum machinery `signal` imports (3 ms)."""
    try:
        import _signal as signals
    except ImportError:
        import signal as signals
    return signals


def _local_time_text(epoch):
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


# ---- 7. running ------------------------------------------------------------------

# A plain run must stay cheap (bench/bench_run_job.py): no subprocess, logging,
# datetime or json here; one fork/exec per command; output is read in large
# chunks and stamped with bulk bytes operations, one timestamp per chunk.

READ_SIZE = 131072
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
STDERR_TAIL_BYTES = 4096
STDERR_TAIL_LINES = 20
KILL_WAIT = 2.0          # seconds to wait after SIGKILL before giving up
DRAIN_WAIT = 0.5         # seconds to wait for end of output once the tree is gone
_SHELL_SAFE = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789@%+=:,./-_")


class Outcome(object):
    """How a run ended: status is success, failed, timeout or killed; the last
    command's exit_code or signal when it ended."""

    EXIT_CODES = {"success": EXIT_OK, "failed": EXIT_FAILED, "killed": EXIT_FAILED,
                  "timeout": EXIT_TIMEOUT}

    def __init__(self, status, reason, wait_status=None):
        self.status = status
        self.reason = reason
        self.exit_code = None
        self.signal = None
        if wait_status is not None:
            self.set_wait_status(wait_status)

    def set_wait_status(self, wait_status):
        if os.WIFSIGNALED(wait_status):
            self.signal = os.WTERMSIG(wait_status)
        elif os.WIFEXITED(wait_status):
            self.exit_code = os.WEXITSTATUS(wait_status)

    @property
    def run_job_exit_code(self):
        return self.EXIT_CODES[self.status]


class RunLog(object):
    """The log file of one run; the record format is in README "Log format"."""

    def __init__(self, fd, path):
        self.fd = fd
        self.path = path
        self._second = None
        self._second_text = b""

    def _stamp(self):
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime(
                "%Y-%m-%d %H:%M:%S.", time.localtime(second)).encode("ascii")
        return self._second_text + b"%03d " % int((now - second) * 1000)

    def write(self, tag, data):
        """Log DATA read from stream TAG (b"O" stdout, b"E" stderr, b"#" run-job):
        one record per line, the piece after the last newline marked "+"."""
        stamp = self._stamp() + tag
        whole = stamp + b"| "
        if data.endswith(b"\n"):
            records = whole + data[:-1].replace(b"\n", b"\n" + whole) + b"\n"
        else:
            cut = data.rfind(b"\n") + 1
            records = stamp + b"+ " + data[cut:] + b"\n"
            if cut:
                records = (whole + data[:cut - 1].replace(b"\n", b"\n" + whole)
                           + b"\n" + records)
        _write_all(self.fd, records)

    def note(self, key, value):
        """A run-job record: "KEY VALUE" on stream "#"."""
        text = "%s %s\n" % (key, value)
        self.write(b"#", text.encode("utf-8", "surrogateescape"))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _write_all(fd, data):
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)
        while written < len(data):
            written += os.write(fd, view[written:])


def _ensure_directory(path, mode=0o755):
    """Create directory PATH with MODE unless it exists; refuse a symlink."""
    import stat
    try:
        os.mkdir(path, mode)
        os.chmod(path, mode)  # mkdir obeys the umask
    except FileExistsError:
        pass
    except OSError as error:
        raise RefusedError("%s: cannot create the directory: %s; check its parent's "
                           "owner and mode" % (path, error.strerror))
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise RefusedError("%s: not a directory; remove it" % path)


def open_run_log(config, name, start):
    """Create OUTPUT_DIRECTORY/NAME/NAME-YYYYMMDD-HHMMSS[-N].log (local time of
    START, N counting runs that started within the same second)."""
    directory = os.path.join(config.output_directory, name)
    _ensure_directory(directory)
    base = os.path.join(directory, "%s-%s" % (
        name, time.strftime("%Y%m%d-%H%M%S", time.localtime(start))))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for number in range(10000):
        path = "%s-%d.log" % (base, number) if number else base + ".log"
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            continue
        except OSError as error:
            raise RefusedError("%s: cannot create the log: %s; check output_directory"
                               % (path, error.strerror))
        os.fchmod(fd, 0o644)  # the umask may have taken bits away
        return RunLog(fd, path)
    raise RefusedError("%s: too many logs in one second" % base)


def _set_child_subreaper(on):
    """Make orphaned descendants our children instead of init's, so that nothing
    escapes the kill by double-forking or setsid (Linux 3.4+, via ctypes).
    Return the previous setting, or None where unsupported."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        previous = ctypes.c_int(0)
        zero = ctypes.c_ulong(0)
        if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), zero, zero, zero):
            return None
        if bool(previous.value) != on and libc.prctl(
                PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(int(on)), zero, zero, zero):
            return None
        return bool(previous.value)
    except (ImportError, OSError, AttributeError):
        return None


def _ensure_standard_fds():
    """Open /dev/null on closed descriptors 0-2, so pipes never land there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _quote_word(word):
    if word and not word.strip(_SHELL_SAFE):
        return word
    if word.isprintable():
        return "'" + word.replace("'", "'\\''") + "'"
    return "$'" + word.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"


def quote_argv(argv):
    """ARGV as one line a shell would read back."""
    return " ".join(_quote_word(word) for word in argv)


def _signal_name(signum):
    try:
        import signal
        return signal.Signals(signum).name
    except (ImportError, ValueError, AttributeError):
        return "signal %d" % signum


def describe_wait_status(wait_status):
    if os.WIFSIGNALED(wait_status):
        return "killed by %s" % _signal_name(os.WTERMSIG(wait_status))
    return "exit status %d" % os.WEXITSTATUS(wait_status)


def _iso_time(epoch):
    local = time.localtime(epoch)
    return "%s.%03d%s" % (time.strftime("%Y-%m-%dT%H:%M:%S", local),
                          int((epoch - int(epoch)) * 1000), time.strftime("%z", local))


def _user_name():
    import pwd
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _exec_child(argv, environment, stdio, keep, dispositions, mask, error_w):
    """In the forked child: lead a new process group, stdin /dev/null, stdout
    and stderr the pipes, no other descriptor but KEEP (the lock), then exec.
    Never returns; a failure is written to ERROR_W for the parent."""
    try:
        signals = _signals()
        os.setpgid(0, 0)
        for signum, disposition in dispositions:
            signals.signal(signum, disposition)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        keep = set(keep) | {0, 1, 2, error_w}
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            names = os.listdir("/dev/fd")
        for name in names:
            if int(name) not in keep:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        for fd in keep - {error_w}:
            os.set_inheritable(fd, True)
        signals.pthread_sigmask(signals.SIG_SETMASK, mask)
        os.execvpe(argv[0], argv, environment)
    except BaseException as error:
        try:
            message = getattr(error, "strerror", None) or str(error) or "error"
            os.write(error_w, message.encode("utf-8", "replace"))
        finally:
            os._exit(127)


class JobRun(object):
    """One run in flight: its lock, log, pipes and processes. As a child
    subreaper run-job is the parent of every orphan of the job, so "the job's
    processes are gone" is simply "run-job has no children left"."""

    def __init__(self, job, lock, log, live, start):
        self.job = job
        self.lock = lock
        self.log = log
        self.live = live
        self.start = start
        self.started = time.monotonic()
        self.deadline = self.started + job.timeout if job.timeout > 0 else None
        self.signals = _signals()
        self.stop_signal = None
        self.command_pids = set()
        self.statuses = {}        # command pid -> wait status, once reaped
        self.readers = {}         # pipe read end -> stream tag
        self.write_ends = []
        self.stderr_bytes = 0
        self.stderr_tail = b""
        self.poller = select.poll()
        self.saved_handlers = []
        self.saved_wakeup = None
        self.wakeup = None
        self.devnull = None
        self.subreaper_before = None
        self.environment = dict(os.environ)
        self.environment.update((str(key), str(value))
                                for key, value in job.environment.items())

    # -- setting up and tearing down

    def open(self):
        self._install_signals()
        self.subreaper_before = _set_child_subreaper(True)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        for tag in (b"O", b"E"):
            read_end, write_end = os.pipe()
            try:
                fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # a smaller pipe only costs more wake-ups
            self.readers[read_end] = tag
            self.write_ends.append(write_end)
            self.poller.register(read_end, select.POLLIN)

    def _install_signals(self):
        signals = self.signals
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self.wakeup = (read_end, write_end)
        self.poller.register(read_end, select.POLLIN)
        self.saved_wakeup = signals.set_wakeup_fd(write_end)
        for signum in (signals.SIGTERM, signals.SIGINT, signals.SIGHUP):
            self.saved_handlers.append((signum, signals.signal(signum, self._on_stop)))
        # A handler, even one doing nothing, makes SIGCHLD wake up poll().
        self.saved_handlers.append(
            (signals.SIGCHLD, signals.signal(signals.SIGCHLD, self._on_child)))

    def _on_stop(self, signum, frame):
        if self.stop_signal is None:
            self.stop_signal = signum

    def _on_child(self, signum, frame):
        pass

    def child_dispositions(self):
        """What the job starts with: our handlers reset, what was ignored when
        run-job started stays ignored, SIGPIPE and SIGXFSZ back to default
        (Python ignores them)."""
        signals = self.signals
        dispositions = [(signals.SIGPIPE, signals.SIG_DFL)]
        if hasattr(signals, "SIGXFSZ"):
            dispositions.append((signals.SIGXFSZ, signals.SIG_DFL))
        for signum, before in self.saved_handlers:
            ignored = before == signals.SIG_IGN
            dispositions.append((signum, signals.SIG_IGN if ignored else signals.SIG_DFL))
        return dispositions

    def close(self):
        signals = self.signals
        if self._reap():
            self._signal_tree(signals.SIGKILL)  # only after a bug in run-job
        for fd in list(self.readers) + self.write_ends:
            os.close(fd)
        self.readers = {}
        self.write_ends = []
        if self.devnull is not None:
            os.close(self.devnull)
            self.devnull = None
        if self.subreaper_before is False:
            _set_child_subreaper(False)
        if self.wakeup is not None:
            for signum, handler in reversed(self.saved_handlers):
                signals.signal(signum, signals.SIG_DFL if handler is None else handler)
            signals.set_wakeup_fd(self.saved_wakeup)
            for fd in self.wakeup:
                os.close(fd)
            self.wakeup = None

    # -- running

    def run(self, commands):
        """Run COMMANDS in sequence until one fails; stop whatever they leave
        behind; log all output. Return the Outcome."""
        outcome = None
        last_status = 0
        for number, argv in enumerate(commands, 1):
            outcome = self._interruption()
            if outcome is None:
                outcome, last_status = self._run_command(number, argv)
            if outcome is not None:
                break
        if outcome is None:
            outcome = Outcome("success", "success", last_status)
        if self._reap():
            self.log.note("leftovers", "%d processes left behind; stopping them"
                          % len(self._tree()))
            self._stop_tree()
        self._drain()
        return outcome

    def _interruption(self):
        if self.stop_signal is not None:
            return Outcome("killed", "stopped by %s sent to run-job"
                           % _signal_name(self.stop_signal))
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return Outcome("timeout", "timeout %gs reached" % self.job.timeout)
        return None

    def _run_command(self, number, argv):
        """Run one command; return (Outcome or None to go on, wait status)."""
        self.log.note("run", "%d %s" % (number, quote_argv(argv)))
        pid, error = self._spawn(argv)
        if error is not None:
            self.log.note("status", "%d cannot start: %s" % (number, error))
            return Outcome("failed", "cannot start %s: %s" % (argv[0], error)), None
        self.lock.describe(os.getpid(), pid, self.start, self.job.kill_grace)
        stderr_before = self.stderr_bytes
        status = self._wait(pid)
        if status is None:
            outcome = self._interruption()
            self._stop_tree()
            status = self.statuses.get(pid)
            if status is not None:
                outcome.set_wait_status(status)
                self.log.note("status", "%d %s" % (number, describe_wait_status(status)))
            return outcome, status
        self._pump_ready()
        self.log.note("status", "%d %s" % (number, describe_wait_status(status)))
        if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) not in self.job.success_exit_codes:
            return Outcome("failed", describe_wait_status(status), status), status
        if self.job.fail_on_stderr and self.stderr_bytes > stderr_before:
            return Outcome("failed", "wrote to stderr (fail_on_stderr)", status), status
        return None, status

    def _spawn(self, argv):
        """Fork and exec ARGV; return (pid, None), or (None, why it cannot start)."""
        signals = self.signals
        error_r, error_w = os.pipe()
        handled = [signum for signum, _ in self.saved_handlers]
        # Blocked across fork so that a signal between fork and exec is not
        # swallowed by Python's handler in the child but acted on after exec.
        mask = signals.pthread_sigmask(signals.SIG_BLOCK, handled)
        try:
            pid = os.fork()
            if pid == 0:
                _exec_child(argv, self.environment, [self.devnull] + self.write_ends,
                            [self.lock.fd], self.child_dispositions(), mask, error_w)
        finally:
            signals.pthread_sigmask(signals.SIG_SETMASK, mask)
        os.close(error_w)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child has done it already and exec'd
        try:
            report = b""
            chunk = os.read(error_r, 4096)
            while chunk:
                report += chunk
                chunk = os.read(error_r, 4096)
        finally:
            os.close(error_r)
        if report:
            os.waitpid(pid, 0)
            return None, report.decode("utf-8", "replace")
        self.command_pids.add(pid)
        return pid, None

    def _wait(self, pid):
        """Log output until command PID ends; return its wait status, or None
        when the deadline passed or run-job was asked to stop first."""
        while True:
            self._reap()
            if pid in self.statuses:
                return self.statuses[pid]
            if self.stop_signal is not None:
                return None
            timeout = None
            if self.deadline is not None:
                timeout = self.deadline - time.monotonic()
                if timeout <= 0:
                    return None
            self._pump(timeout)

    def _pump(self, timeout):
        """Wait up to TIMEOUT seconds (None: no limit) for output or a signal,
        and log the output. Return whether output was read."""
        milliseconds = -1 if timeout is None else max(0, int(timeout * 1000) + 1)
        got_output = False
        for fd, _ in self.poller.poll(milliseconds):
            if fd == self.wakeup[0]:
                try:
                    os.read(fd, 4096)
                except BlockingIOError:
                    pass
                continue
            data = os.read(fd, READ_SIZE)
            if data:
                self._output(self.readers[fd], data)
                got_output = True
            else:
                self.poller.unregister(fd)
                os.close(fd)
                del self.readers[fd]
        return got_output

    def _pump_ready(self):
        """Log what is already in the pipes (bounded: others may still write)."""
        for _ in range(2 * PIPE_SIZE // READ_SIZE + 2):
            if not self._pump(0):
                return

    def _output(self, tag, data):
        self.log.write(tag, data)
        if tag == b"E":
            self.stderr_bytes += len(data)
            self.stderr_tail = (self.stderr_tail + data)[-STDERR_TAIL_BYTES:]
        if self.live:
            try:
                _write_all(1 if tag == b"O" else 2, data)
            except OSError:
                self.live = False

    def _drain(self):
        """Close our write ends and log output until every pipe is at its end;
        only a process that escaped the kill could hold one open, so wait
        DRAIN_WAIT at most."""
        for fd in self.write_ends:
            os.close(fd)
        self.write_ends = []
        end = time.monotonic() + DRAIN_WAIT
        while self.readers and time.monotonic() < end:
            self._pump(end - time.monotonic())

    # -- stopping the tree

    def _reap(self):
        """Reap exited children (commands and adopted orphans); return
        whether any child remains, that is whether the job still lives."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid in self.command_pids:
                self.statuses[pid] = status

    def _tree(self):
        try:
            processes = list(_all_processes())
        except OSError:
            return []
        return [info for info in descendants(processes, [os.getpid()])
                if info.state not in ("Z", "X")]

    def _signal_tree(self, signum):
        """SIGNUM to every live descendant and to their process groups, each
        verified just before it is signalled."""
        tree = self._tree()
        groups = {}
        for info in tree:
            groups.setdefault(info.pgrp, info)
        for info in groups.values():
            signal_verified(info, signum, group=True)
        for info in tree:
            signal_verified(info, signum)
            if signum == self.signals.SIGTERM:
                signal_verified(info, self.signals.SIGCONT)  # a stopped process must run to die

    def _stop_tree(self):
        """SIGTERM the whole tree (SIGKILL at once when kill_grace is 0), wait
        up to kill_grace logging output, then SIGKILL whatever is left."""
        if self.job.kill_grace > 0:
            self._signal_tree(self.signals.SIGTERM)
            end = time.monotonic() + self.job.kill_grace
            while self._reap() and time.monotonic() < end:
                self._pump(min(end - time.monotonic(), 0.1))
        end = time.monotonic() + KILL_WAIT
        while self._reap() and time.monotonic() < end:
            self._signal_tree(self.signals.SIGKILL)
            self._pump(0.05)


def execute_job(config, job, slow_start=False, live=None):
    """Run JOB under its lock; log, record and report the outcome. Return
    the exit code: 0 success (or still running with allow_overtime), 1 failed
    or killed, 124 timed out; raise LockHeldError when still running. LIVE
    (default: whether stdout is a terminal) also shows the output. Must be the
    only thing in this process that has child processes."""
    lock = acquire_lock(config, job)
    if lock is None:
        return EXIT_OK
    try:
        return _execute_locked(config, job, lock, slow_start, live)
    finally:
        lock.close()


def _execute_locked(config, job, lock, slow_start, live):
    start = time.time()
    lock.describe(os.getpid(), 0, start, job.kill_grace)
    _ensure_standard_fds()
    if live is None:
        live = os.isatty(1)
    commands = job.commands
    if slow_start and job.slow_start_commands:
        commands = job.slow_start_commands
    log = open_run_log(config, job.name, start)
    try:
        _log_header(log, job, commands, start)
        run = JobRun(job, lock, log, live, start)
        try:
            run.open()
            outcome = run.run(commands)
        finally:
            run.close()
        duration = time.monotonic() - run.started
        _log_footer(log, outcome, duration)
    finally:
        log.close()
    record_run(config, job, outcome, start, duration, log.path)
    report_outcome(job, outcome, duration, log.path, run.stderr_tail, live)
    return outcome.run_job_exit_code


def _log_header(log, job, commands, start):
    log.note("job", job.name)
    for argv in commands:
        log.note("command", quote_argv(argv))
    log.note("user", _user_name())
    log.note("pid", os.getpid())
    log.note("start", _iso_time(start))


def _log_footer(log, outcome, duration):
    log.note("outcome", outcome.status)
    log.note("reason", outcome.reason)
    if outcome.exit_code is not None:
        log.note("exit", outcome.exit_code)
    if outcome.signal is not None:
        log.note("signal", "%d %s" % (outcome.signal, _signal_name(outcome.signal)))
    log.note("duration", "%.3f" % duration)


def report_outcome(job, outcome, duration, log_path, stderr_tail, live):
    """Quiet on success unless on a terminal (cron mails any output); on
    failure one summary line and the tail of the job's stderr, on stderr."""
    if outcome.status == "success":
        if live:
            _write_stderr("run-job: job %s succeeded after %.1fs; log %s\n"
                          % (job.name, duration, log_path))
        return
    verb = {"failed": "failed", "timeout": "timed out", "killed": "was killed"}
    text = "run-job: job %s %s (%s) after %.1fs; log %s\n" % (
        job.name, verb[outcome.status], outcome.reason, duration, log_path)
    if stderr_tail and not live:
        lines = stderr_tail.splitlines(True)[-STDERR_TAIL_LINES:]
        tail = b"".join(lines)
        if not tail.endswith(b"\n"):
            tail += b"\n"
        text = text.encode("utf-8", "surrogateescape") + (
            b"run-job: the end of its stderr:\n") + tail
    _write_stderr(text)


def _write_stderr(text):
    if not isinstance(text, bytes):
        text = text.encode("utf-8", "surrogateescape")
    try:
        sys.stderr.flush()
        _write_all(2, text)
    except (OSError, ValueError):
        pass


# ---- 8. state and history --------------------------------------------------------

# STATE_DIRECTORY/NAME.state holds the last run's record, replaced atomically;
# STATE_DIRECTORY/NAME.history gets one line per run, appended under the job's
# lock; past HISTORY_MAX_BYTES it becomes NAME.history.1 (replacing the older
# one), so a job keeps at most about twice that. Records are JSON objects,
# written here without the json module to keep it off a plain run.

HISTORY_MAX_BYTES = 1 << 20
RECORD_KEYS = ("job", "status", "reason", "exit_code", "signal", "start",
               "start_time", "duration", "log", "pid", "consecutive_failures")


def state_path(config, name):
    return os.path.join(config.state_directory, name + ".state")


def history_path(config, name):
    return os.path.join(config.state_directory, name + ".history")


def _json_string(text):
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"%s"' % text
    escaped = []
    for character in text:
        code = ord(character)
        if character in '"\\' or code < 0x20 or 0xd800 <= code < 0xe000 \
                or not character.isprintable():
            escaped.append("\\u%04x" % code if code < 0x10000 else character)
        else:
            escaped.append(character)
    return '"%s"' % "".join(escaped)


def _json_value(value):
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 3))
    return _json_string(str(value))


def json_line(record):
    """RECORD (a flat dict of str, int, float, bool, None) as one JSON line."""
    return "{%s}\n" % ", ".join("%s: %s" % (_json_string(key), _json_value(value))
                                for key, value in record.items())


def write_file_atomic(path, data, mode=0o644):
    """Replace PATH with DATA (bytes): a temporary file in the same directory,
    fsync, explicit MODE, rename. Readers see the old or the new file."""
    directory, base = os.path.split(path)
    temporary = os.path.join(directory, ".%s.%d.tmp" % (base, os.getpid()))
    try:
        os.unlink(temporary)  # left by a crashed process that had our pid
    except FileNotFoundError:
        pass
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    os.rename(temporary, path)


def append_history(path, line, max_bytes=HISTORY_MAX_BYTES):
    """Append LINE (bytes) to the history file PATH, first moving a file that
    would grow past MAX_BYTES to PATH.1. Callers hold the job's lock."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    fd = _open_regular_file(path, flags)
    try:
        if os.fstat(fd).st_size and os.fstat(fd).st_size + len(line) > max_bytes:
            os.rename(path, path + ".1")
            os.close(fd)
            fd = _open_regular_file(path, flags)
        _write_all(fd, line)
    finally:
        os.close(fd)


def read_job_state(config, name):
    """The last recorded outcome of job NAME as a dict (keys RECORD_KEYS), or
    None when it never ran."""
    import json
    path = state_path(config, name)
    try:
        with open(path, "rb") as state_file:
            text = state_file.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ProcessControlError("%s: cannot read: %s" % (path, error.strerror))
    try:
        record = json.loads(text.decode("utf-8", "surrogateescape"))
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise ProcessControlError("%s: not a run record; remove it, the next run "
                                  "writes a new one" % path)
    return record


def read_history(config, name):
    """Every recorded run of job NAME, oldest first (rotated file included)."""
    import json
    records = []
    path = history_path(config, name)
    for each in (path + ".1", path):
        try:
            with open(each, "rb") as history_file:
                lines = history_file.read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            try:
                records.append(json.loads(line.decode("utf-8", "surrogateescape")))
            except ValueError:
                pass  # a line cut by a full disk
    return records


def _consecutive_failures(config, name, status):
    if status == "success":
        return 0  # and no need to read the previous state on the plain path
    try:
        previous = read_job_state(config, name) or {}
    except ProcessControlError:
        previous = {}
    count = previous.get("consecutive_failures")
    return (count if isinstance(count, int) else 0) + 1


def run_record(config, job, outcome, start, duration, log_path):
    values = (job.name, outcome.status, outcome.reason, outcome.exit_code,
              outcome.signal, _iso_time(start), round(start, 3), duration, log_path,
              os.getpid(), _consecutive_failures(config, job.name, outcome.status))
    return dict(zip(RECORD_KEYS, values))


def record_run(config, job, outcome, start, duration, log_path):
    """Record the run in state and history; a failure to do so is reported on
    stderr but does not change the run's exit code."""
    record = run_record(config, job, outcome, start, duration, log_path)
    line = json_line(record).encode("utf-8", "surrogateescape")
    try:
        write_file_atomic(state_path(config, job.name), line)
        append_history(history_path(config, job.name), line)
    except (OSError, ProcessControlError) as error:
        _write_stderr("run-job: job %s: cannot record the run in %s: %s\n" % (
            job.name, config.state_directory, getattr(error, "strerror", None) or error))


# ---- 9. reporting ----------------------------------------------------------------


# ---- 10. the command line --------------------------------------------------------

def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
