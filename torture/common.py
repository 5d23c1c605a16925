"""What the experiments share: a sandbox (job directory and global config with
safe modes in a temporary directory), running the two scripts as processes
with a time limit, finding a job's processes by their marker, and rebuilding
a stream from a log."""

import collections
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_JOB = os.path.join(REPO, "run_job.py")
CRON_GENERATE = os.path.join(REPO, "cron_generate.py")
PYTHON = sys.executable
IS_ROOT = os.geteuid() == 0
CURRENT_USER = pwd.getpwuid(os.geteuid()).pw_name
MARK_VARIABLE = "TORTURE_MARK"
HUNG = None  # the exit code of a process that did not end in time


class Failures(object):
    """Distinct failure reasons of one experiment, with their counts."""

    def __init__(self):
        self.counts = collections.OrderedDict()

    def add(self, reason):
        reason = " ".join(str(reason).split())[:300]
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def lines(self, limit=5):
        out = []
        for reason, count in list(self.counts.items())[:limit]:
            out.append("%s%s" % (reason, " (x%d)" % count if count > 1 else ""))
        if len(self.counts) > limit:
            out.append("... and %d more distinct failures" % (len(self.counts) - limit))
        return out


class Tally(object):
    """Trials and their outcomes: check() records one trial."""

    def __init__(self, failures):
        self.trials = 0
        self.ok = 0
        self.failures = failures

    def check(self, problems, label=""):
        """PROBLEMS: a list of reasons, empty when the trial held."""
        self.trials += 1
        if not problems:
            self.ok += 1
            return True
        for problem in problems[:1]:
            self.failures.add("%s%s" % (label + ": " if label else "", problem))
        return False


def write_file(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(path, "wb") as stream:
        stream.write(data)
    os.chmod(path, mode)


class Sandbox(object):
    """A temporary job directory and global config with safe modes."""

    def __init__(self, prefix="pc-torture-", user=CURRENT_USER, extra="", directories=True):
        self.root = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.root, 0o755)
        self.jobs = self.path("jobs")
        os.mkdir(self.jobs)
        os.chmod(self.jobs, 0o755)
        self.config = self.path("process-control.yaml")
        self.write_config(user=user, extra=extra)
        if directories:
            for name in ("log", "run", "state"):
                os.mkdir(self.path(name))

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_config(self, user=CURRENT_USER, extra=""):
        if "output_crontab:" not in extra:
            extra += "output_crontab: console\n"
        write_file(self.config,
                   "user: %s\n"
                   "job_directory: jobs\n"
                   "output_directory: log\n"
                   "run_directory: run\n"
                   "state_directory: state\n%s" % (user, extra))

    def write_job(self, name, text, mode=0o644):
        path = os.path.join(self.jobs, name + ".yaml")
        write_file(path, text, mode)
        return path

    def argv(self, tool, args):
        script = RUN_JOB if tool == "run-job" else CRON_GENERATE
        return [PYTHON, script, "--config", self.config] + list(args)

    def popen(self, args, tool="run-job", **options):
        environ = dict(os.environ)
        environ.pop("PROCESS_CONTROL_CONFIG", None)
        options.setdefault("stdout", subprocess.PIPE)
        options.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv(tool, args), stdin=subprocess.DEVNULL,
                                env=environ, cwd=self.root, start_new_session=True, **options)

    def run(self, args, tool="run-job", timeout=30, **options):
        """(exit code or HUNG, stdout bytes, stderr bytes, seconds)."""
        start = time.monotonic()
        process = self.popen(args, tool, **options)
        return finish(process, timeout, start)

    def state(self, name):
        return os.path.join(self.path("state"), name + ".state")

    def logs(self, name):
        directory = self.path("log", name)
        if not os.path.isdir(directory):
            return []
        return sorted(os.path.join(directory, entry) for entry in os.listdir(directory))

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


def finish(process, timeout, start=None):
    """Wait for PROCESS at most TIMEOUT seconds; a process that takes longer
    is killed with its session and reported as HUNG."""
    start = time.monotonic() if start is None else start
    try:
        out, err = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        kill_session(process.pid)
        out, err = process.communicate()
        code = HUNG
    return code, out or b"", err or b"", time.monotonic() - start


def kill_session(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def marked_processes(token):
    """PIDs of live (not zombie) processes whose environment holds
    TORTURE_MARK=TOKEN: every process of a job carries it."""
    needle = ("%s=%s\0" % (MARK_VARIABLE, token)).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as stream:
                if needle not in stream.read():
                    continue
            with open("/proc/%s/stat" % entry, "rb") as stream:
                state = stream.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def wait_until_gone(token, seconds):
    deadline = time.monotonic() + seconds
    while True:
        left = marked_processes(token)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def kill_marked(token):
    for pid in marked_processes(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def rebuild(log, stream):
    """The bytes of STREAM (b"O" or b"E") from the records of LOG (bytes),
    as README's "Log format" says."""
    out = []
    for record in log.split(b"\n")[:-1]:
        if record[24:25] == stream:
            out.append(record[27:] + (b"\n" if record[25:26] == b"|" else b""))
    return b"".join(out)


def footer(log):
    """The `#` records' keys at the end of LOG: [(key, value)] in order."""
    records = []
    for record in log.split(b"\n")[:-1]:
        if record[24:25] == b"#":
            key, _, value = record[27:].partition(b" ")
            records.append((key.decode("ascii", "replace"), value.decode("utf-8", "replace")))
    return records


def log_ends_with_footer(log):
    keys = [key for key, _ in footer(log)]
    if not log.endswith(b"\n"):
        return "the log does not end with a newline"
    if "outcome" not in keys:
        return "the log has no `outcome` record"
    tail = keys[keys.index("outcome"):] if "outcome" in keys else []
    if tail[-1:] != ["duration"]:
        return "the log's last record is not `duration` (%s)" % (keys[-1:] or ["nothing"])
    return None


def one_line_error(err, tools=("run-job", "cron-generate")):
    """None when ERR (bytes) is exactly one line starting with a tool name,
    else what is wrong with it."""
    if b"Traceback" in err:
        return "traceback: %s" % last_line(err)
    lines = err.splitlines()
    if len(lines) != 1:
        return "%d lines on stderr, not one: %r" % (len(lines), err[:200])
    if not any(lines[0].startswith(tool.encode() + b": ") for tool in tools):
        return "stderr line does not start with the tool's name: %r" % lines[0][:200]
    return None


def last_line(data):
    lines = [line for line in data.splitlines() if line.strip()]
    return lines[-1].decode("utf-8", "replace")[:200] if lines else ""


def no_traceback(err):
    return "traceback: %s" % last_line(err) if b"Traceback" in err else None


def job_text(command, token=None, **keys):
    """A job file: COMMAND (one string, written as a YAML single-quoted scalar)
    and KEYS; TOKEN marks every process of the job through its environment."""
    lines = ["command: '%s'" % command.replace("'", "''")]
    for key, value in keys.items():
        lines.append("%s: %s" % (key, value))
    if token is not None:
        lines.append("environment:\n    %s: %s" % (MARK_VARIABLE, token))
    return "\n".join(lines) + "\n"


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
