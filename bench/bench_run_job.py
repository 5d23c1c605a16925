#!/usr/bin/python3
"""Speed and memory of run-job as installed, side by side with what it replaces.

    /usr/bin/python3 bench/bench_run_job.py [--quick]

Installs run-job with `make install DESTDIR=TMP` (a copy of run_job.py as
TMP/usr/bin/run-job, compiled by CPython at every start) and runs it with the
system interpreter, as on a server, with a global config, job files, logs,
locks and state in a temporary directory. Prints, for each figure, run-job's
median, the reference's, their ratio, the goal and run-job's min and max:

  start-up   a /bin/true job against `python3 -c pass`; for information also
             against `flock -n LOCK timeout 600 /bin/true >LOG 2>&1` in sh, and
             run_job imported byte-compiled by a 3-line stub (the module form);
             and the same run sending its start and outcome to a syslog socket
             that the bench reads against one with `syslog_socket: null`;
  skip       a second launch of a job while its first run holds the lock
             (exit 75) against `python3 -c pass`; a start of a paused job
             (exit 0) and of a halted one (exit 69), neither writing a job
             log, against a /bin/true run (goal <= 1x: no dearer than a run);
  retention  a /bin/true run whose log directory holds 1,000 logs (its
             log_retention lists them and deletes the oldest) against a
             /bin/true run with few (goal <= 1.1x);
  memory     run-job's resident memory (VmRSS) while its job sleeps (goal
             <= 1.6x `python3 -c pass`'s) and its peak (VmHWM, goal <= 2.2x),
             read from /proc by this bench, also while it captures output;
  capture    a producer writing N-byte lines straight to its stdout, captured
             by run-job against `PRODUCER | cat > FILE` in sh, the limit for
             anything that reads a pipe and writes a file (goals: <= 2x for
             100-byte lines, <= 15x for 2-byte lines, whose stamped records are
             14.5x their bytes): each side's time less its time for an empty
             output, that is without the start-ups; for information against
             `head -c LOG_SIZE /dev/zero > FILE`, writing the log's bytes alone;
  matching   a job with fail_on_output or stderr_ignore patterns capturing N-byte
             lines (none matching fail_on_output, all matching stderr_ignore)
             against the same job without patterns, in CPU time (run-job's and
             the producer's), each less that of an empty output (goal <= 2x;
             none for the last case, a pattern with no literal text);
  ts         a job's whole run against `PRODUCER | ts > FILE`, per-line
             timestamps by moreutils' ts, start-ups included (skipped when ts
             is not installed);
  deadline   a job with timeout 1s and kill_grace 1s that ignores SIGTERM:
             milliseconds from the deadline plus kill_grace to run-job's exit
             (it sends SIGKILL then); a plain sleep job: from the deadline to
             the exit; both against coreutils' `timeout --kill-after=1 1 JOB`
             (goal: the deadline plus kill_grace plus 0.5 s, issue 9).

  metrics    a /bin/true run writing its metrics file (metrics_directory)
             against one without, for information; run-job --metrics over
             10,000 job files and states (goal: under 3 s).

Exits 1 if a goal is missed, else 0.
"""

import os
import platform
import py_compile
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from table import Table

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
EXIT_TIMEOUT = 124
EXIT_LOCKED = 75
# The deadline figures' job: a timeout and kill_grace of a second each.
DEADLINE_TIMEOUT = 1.0
DEADLINE_KILL_GRACE = 1.0

# Writes SIZE bytes of LINE-byte lines to fd 1 (or FD) itself, in 1 MB writes.
PRODUCER = """import os, sys
size, line = int(sys.argv[1]), int(sys.argv[2])
fd = int(sys.argv[3]) if len(sys.argv) > 3 else 1
chunk = memoryview((b"x" * (line - 1) + b"\\n") * (1048576 // line))
while size > 0:
    size -= os.write(fd, chunk[:size])
"""

# The module form: run_job imported from a directory where it is byte-compiled.
MODULE = """import sys
sys.path.insert(0, sys.argv.pop(1))
from run_job import main
sys.exit(main(sys.argv[1:]))
"""

CONFIG = """user: {user}
job_directory: {root}/jobs
output_directory: {root}/out
run_directory: {root}/run
state_directory: {root}/state
"""

PASS_STATUS = "import sys; sys.stdout.write(open('/proc/self/status').read())"


def write(path, text, mode=0o644):
    with open(path, "w") as output:
        output.write(text)
    os.chmod(path, mode)


def install(root):
    """The installed run-job as a command line run by the system interpreter."""
    destination = os.path.join(root, "dest")
    script = os.path.join(destination, "usr", "bin", "run-job")
    made = subprocess.call(["make", "-s", "-C", HERE, "install", "DESTDIR=" + destination,
                            "PREFIX=/usr", "PYTHON=" + PYTHON],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if made != 0 or not os.path.isfile(script):
        print("(make install failed: run_job.py copied as run-job instead)")
        os.makedirs(os.path.dirname(script), exist_ok=True)
        shutil.copy(os.path.join(HERE, "run_job.py"), script)
    with open(script) as source:
        shebang = source.readline().split()
    options = [word for word in shebang[1:] if word.startswith("-")]
    return [PYTHON] + options + [script]


def set_up(root):
    for name in ("jobs", "out", "run", "state", "lib"):
        os.mkdir(os.path.join(root, name))
    os.chmod(root, 0o755)
    shutil.copy(os.path.join(HERE, "run_job.py"), os.path.join(root, "lib"))
    py_compile.compile(os.path.join(root, "lib", "run_job.py"), doraise=True)
    write(os.path.join(root, "module.py"), MODULE)
    write(os.path.join(root, "producer.py"), PRODUCER)
    user = pwd.getpwuid(os.geteuid()).pw_name
    write(os.path.join(root, "config.yaml"), CONFIG.format(user=user, root=root))
    write(os.path.join(root, "syslog.yaml"), CONFIG.format(user=user, root=root)
          + "syslog_socket: %s/log.socket\n" % root)
    write(os.path.join(root, "no-syslog.yaml"), CONFIG.format(user=user, root=root)
          + "syslog_socket: null\n")
    installed = install(root)
    config = ["--config", os.path.join(root, "config.yaml")]
    return {"installed": installed + config,
            "syslog": installed + ["--config", os.path.join(root, "syslog.yaml")],
            "no syslog": installed + ["--config", os.path.join(root, "no-syslog.yaml")],
            "module": [PYTHON, os.path.join(root, "module.py"), os.path.join(root, "lib")]
            + config}


def write_job(root, name, command, extra="timeout: 10m\n"):
    write(os.path.join(root, "jobs", name + ".yaml"),
          "command: '%s'\n%s" % (command.replace("'", "''"), extra))


def start(argv, stdout=None):
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it
            fd = os.open(stdout or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def check_exit(argv, status, expected):
    """Raise unless wait STATUS is exit code EXPECTED (-N: killed by signal N)."""
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    if code != expected:
        raise RuntimeError("%s: exit %d, not %d" % (" ".join(argv), code, expected))


def run(argv, stdout=None, expected=0):
    """Seconds one run of ARGV takes; raises unless it exits EXPECTED."""
    started = time.perf_counter()
    _, status = os.waitpid(start(argv, stdout), 0)
    seconds = time.perf_counter() - started
    check_exit(argv, status, expected)
    return seconds


def memory(pid):
    """(VmRSS, VmHWM) of PID in KiB, or None once it is gone."""
    figures = {}
    try:
        with open("/proc/%d/status" % pid, "rb") as status:
            for line in status:
                key, _, value = line.partition(b":")
                if key in (b"VmRSS", b"VmHWM"):
                    figures[key] = int(value.split()[0])
    except OSError:
        return None
    if len(figures) < 2:
        return None  # a zombie has no memory left to show
    return figures[b"VmRSS"], figures[b"VmHWM"]


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def command_name(pid):
    try:
        with open("/proc/%d/comm" % pid, "rb") as comm:
            return comm.read().strip()
    except OSError:
        return b""


def wait_for_sleep_job(pid, argv):
    """Wait until run-job PID (started as ARGV) has started its `sleep` job."""
    deadline = time.monotonic() + 10
    while not any(command_name(child) == b"sleep" for child in children(pid)):
        if time.monotonic() > deadline or os.waitpid(pid, os.WNOHANG)[0]:
            raise RuntimeError("%s: the sleep job never started" % " ".join(argv))
        time.sleep(0.005)


def memory_while_sleeping(argv):
    """(VmRSS, VmHWM) of run-job ARGV, whose job is `sleep`, 0.1 s after the
    job started (its start is when run-job gives freed memory back)."""
    pid = start(argv)
    try:
        wait_for_sleep_job(pid, argv)
        time.sleep(0.1)
        return memory(pid)
    finally:
        os.kill(pid, signal.SIGTERM)  # run-job stops its job and records it
        os.waitpid(pid, 0)


def timed_with_peak(argv):
    """(seconds, VmHWM in KiB sampled until the end) of one run of ARGV."""
    started = time.perf_counter()
    pid = start(argv)
    peak = 0
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        figures = memory(pid)
        if figures is not None:
            peak = max(peak, figures[1])
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError("%s: wait status %d" % (" ".join(argv), status))
    return seconds, peak


def machine():
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    version = subprocess.check_output(
        [PYTHON, "-c", "import platform; print(platform.python_version())"]).decode().strip()
    return "%s, %d cores, load %.2f; %s (Python %s); %s" % (
        model, os.cpu_count() or 0, os.getloadavg()[0], PYTHON, version,
        time.strftime("%Y-%m-%d %H:%M"))


# The run_job.py that issue 11 (logging, mail, hooks, retention, metrics...)
# started from: a plain run must cost no more than with it.
BEFORE_ISSUE_11 = "9e94b29"


def script_before(root, commit):
    """run_job.py of COMMIT (from git) in ROOT, or None without git or it."""
    try:
        source = subprocess.check_output(["git", "-C", HERE, "show", commit + ":run_job.py"],
                                          stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    path = os.path.join(root, "before-%s.py" % commit)
    with open(path, "wb") as script:
        script.write(source)
    return path


def start_up(report, root, ways, count):
    write_job(root, "true", "/bin/true")
    flock = ["/bin/sh", "-c", "flock -n %s/flock.lock timeout 600 /bin/true >%s/flock.log 2>&1"
             % (root, root)]
    cases = [("installed", ways["installed"] + ["true"]), ("module", ways["module"] + ["true"]),
             ("python3 -c pass", [PYTHON, "-c", "pass"]), ("flock", flock)]
    before = script_before(root, BEFORE_ISSUE_11)
    if before is not None:  # as installed: the same interpreter, options and config
        installed = ways["installed"]
        cases.append(("before", installed[:-3] + [before] + installed[-2:] + ["true"]))
        library = os.path.join(root, "before-lib")
        os.mkdir(library)
        shutil.copy(before, os.path.join(library, "run_job.py"))
        py_compile.compile(os.path.join(library, "run_job.py"), doraise=True)
        module = ways["module"]
        cases.append(("module before", module[:2] + [library] + module[3:] + ["true"]))
    times = dict((name, []) for name, _ in cases)
    for _ in range(count):  # interleaved: load from elsewhere hits all alike
        for name, argv in cases:
            times[name].append(run(argv))
    python = times["python3 -c pass"]
    report.row("start-up: /bin/true job vs python3 -c pass", times["installed"], python, "ms")
    report.row("  module form (for information)", times["module"], python, "ms")
    report.row("  vs flock+timeout in sh", times["installed"], times["flock"], "ms")
    if before is None:
        report.note("  vs before issue 11", "skipped: no git, or no commit %s" % BEFORE_ISSUE_11)
    else:
        report.row("  vs before issue 11 (%s)" % BEFORE_ISSUE_11, times["installed"],
                   times["before"], "ms", 1.05)
        # Without the compile of the script's lines (the design card accepts
        # it): what a run itself does, against the same before it.
        report.row("  module form vs before issue 11, module form", times["module"],
                   times["module before"], "ms", 1.05)


def syslog_receiver(path):
    """A socket bound at PATH, read by a thread as a syslog daemon would:
    returns the list its datagrams go to."""
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    received = []

    def read():
        while True:
            received.append(receiver.recv(65536))
    threading.Thread(target=read, daemon=True).start()
    return received


def with_syslog(report, root, ways, count):
    """A plain run sending its two events to a syslog socket that is read,
    against one with `syslog_socket: null` (no events: what a run without
    `logging` cost before syslog)."""
    received = syslog_receiver(os.path.join(root, "log.socket"))
    cases = [("syslog", ways["syslog"] + ["true"]), ("no syslog", ways["no syslog"] + ["true"])]
    times = dict((name, []) for name, _ in cases)
    for _ in range(count):  # interleaved
        for name, argv in cases:
            times[name].append(run(argv))
    deadline = time.monotonic() + 5
    while len(received) < 2 * count and time.monotonic() < deadline:
        time.sleep(0.01)  # the last datagrams may still be on their way to the thread
    if len(received) != 2 * count:
        raise RuntimeError("the syslog socket received %d datagrams, not %d"
                           % (len(received), 2 * count))
    report.row("  to a syslog socket vs syslog_socket: null", times["syslog"],
               times["no syslog"], "ms")


def skip_when_locked(report, root, ways, count):
    """A launch while an earlier run of the job holds its lock: exit 75."""
    write_job(root, "holder", "/bin/sleep 600")
    argv = ways["installed"] + ["holder"]
    holder = start(argv)
    try:
        wait_for_sleep_job(holder, argv)
        ours, python = [], []
        for _ in range(count):  # interleaved
            ours.append(run(argv, expected=EXIT_LOCKED))
            python.append(run([PYTHON, "-c", "pass"]))
    finally:
        os.kill(holder, signal.SIGTERM)
        os.waitpid(holder, 0)
    report.row("skip (lock held, exit 75) vs python3 -c pass", ours, python, "ms")


def skip_when_paused(report, root, ways, count):
    """A start of a paused job, skipped quietly (exit 0, recorded, no job
    log), and of a halted one (exit 69), against a plain /bin/true run: the
    skip and refusal paths must cost no more than a run (goal <= 1x)."""
    write_job(root, "true", "/bin/true")
    write_job(root, "paused", "/bin/true")
    write_job(root, "halted", "/bin/false", "halt_after_failures: 1\n")
    run(ways["installed"] + ["--pause", "paused"])
    run(ways["installed"] + ["halted"], expected=1)
    plain, paused, halted = [], [], []
    for _ in range(count):  # interleaved
        plain.append(run(ways["installed"] + ["true"]))
        paused.append(run(ways["installed"] + ["paused"]))
        halted.append(run(ways["installed"] + ["halted"], expected=69))
    report.row("skip (paused, exit 0) vs a /bin/true run", paused, plain, "ms", 1.0)
    report.row("refusal (halted, exit 69) vs a /bin/true run", halted, plain, "ms", 1.0)


def run_among_many_logs(report, root, ways, count):
    """A /bin/true run whose log directory holds 1,000 logs, so that each
    run's log_retention (default: 1,000 runs) lists them and deletes the
    oldest, against a /bin/true run with few logs (goal <= 1.1x)."""
    write_job(root, "true", "/bin/true")
    write_job(root, "many", "/bin/true")
    directory = os.path.join(root, "out", "many")
    os.mkdir(directory)
    source = os.path.join(root, "old.log")
    write(source, "an old run's log\n")
    day_ago = time.time() - 86400
    for index in range(1000):  # hard links: creating 1,000 inodes is slow on some disks
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(day_ago + index))
        os.link(source, os.path.join(directory, "many-%s.log" % stamp))
    plain, many = [], []
    for _ in range(count):  # interleaved
        plain.append(run(ways["installed"] + ["true"]))
        many.append(run(ways["installed"] + ["many"]))
    if len(os.listdir(directory)) != 1000:
        raise RuntimeError("%s: %d logs, not 1000" % (directory, len(os.listdir(directory))))
    report.row("a run among 1,000 logs vs a /bin/true run", many, plain, "ms", 1.1)


METRICS_JOBS = 10000
# A state as a run writes it: one job in ten never ran, one in five failed last.
STATE = ('{"job": "%s", "status": "%s", "reason": "x", "exit_code": %d, "signal": null, '
         '"start": "2026-12-01T10:00:00.000+0000", "start_time": %.3f, "duration": 0.5, '
         '"log": "/x.log", "pid": 1, "logging_error": null, "set_aside": null, '
         '"consecutive_failures": %d, "count_success": 40, "count_failed": %d}\n')


def many_jobs(root, count):
    """A job directory of COUNT jobs with their states, and its config."""
    os.mkdir(root)
    for name in ("jobs", "out", "run", "state"):
        os.mkdir(os.path.join(root, name))
    user = pwd.getpwuid(os.geteuid()).pw_name
    write(os.path.join(root, "config.yaml"), CONFIG.format(user=user, root=root))
    now = time.time()
    for number in range(count):
        name = "job-%05d" % number
        write(os.path.join(root, "jobs", name + ".yaml"),
              "command: /bin/true %d\nschedule: '*/5 * * * *'\ntimeout: 10m\n" % number)
        if number % 10:
            failed = number % 5 == 0
            write(os.path.join(root, "state", name + ".state"),
                  STATE % (name, "failed" if failed else "success", int(failed), now - 300,
                           int(failed), int(failed)))
    return ["--config", os.path.join(root, "config.yaml")]


def metrics_figures(report, root, ways, count):
    """A /bin/true run writing its metrics file (metrics_directory) against
    one without, for information; run-job --metrics over METRICS_JOBS jobs
    (job files and states), goal under 3 s."""
    write_job(root, "true", "/bin/true")
    os.mkdir(os.path.join(root, "metrics"))
    user = pwd.getpwuid(os.geteuid()).pw_name
    with_metrics = os.path.join(root, "metrics.yaml")
    write(with_metrics, CONFIG.format(user=user, root=root)
          + "metrics_directory: %s/metrics\n" % root)
    plain, metrics = [], []
    for _ in range(count):  # interleaved
        plain.append(run(ways["installed"] + ["true"]))
        metrics.append(run(ways["installed"][:-2] + ["--config", with_metrics, "true"]))
    report.row("run with metrics_directory vs without", metrics, plain, "ms")
    config = many_jobs(os.path.join(root, "many"), METRICS_JOBS)
    installed = ways["installed"][:-2] + config  # the installed run-job, another config
    times = [run(installed + ["--metrics"]) for _ in range(max(3, count // 10))]
    report.row("--metrics over %d jobs" % METRICS_JOBS, times, None, "s", limit=3)


def recorded_start(root, name):
    """The start of NAME's last run (time.time()), from its lock file."""
    with open(os.path.join(root, "run", name + ".lock"), "rb") as lock:
        words = lock.read().split()
    return float(words[words.index(b"start") + 1])


def run_job_overrun(root, ways, name, grace):
    """Seconds from NAME's deadline (its start plus timeout, plus GRACE) to
    the exit of run-job, which must exit 124."""
    argv = ways["installed"] + [name]
    _, status = os.waitpid(start(argv), 0)
    ended = time.time()
    check_exit(argv, status, EXIT_TIMEOUT)
    return ended - (recorded_start(root, name) + DEADLINE_TIMEOUT + grace)


def timeout_overrun(command, grace, expected):
    """The same for coreutils' `timeout --kill-after=GRACE TIMEOUT COMMAND`."""
    argv = ["/usr/bin/timeout", "--kill-after=%g" % DEADLINE_KILL_GRACE,
            "%g" % DEADLINE_TIMEOUT, "/bin/sh", "-c", command]
    started = time.time()
    _, status = os.waitpid(start(argv), 0)
    ended = time.time()
    check_exit(argv, status, expected)
    return ended - (started + DEADLINE_TIMEOUT + grace)


def kill_latency(report, root, ways, count):
    """How long past its deadline a job's run-job exits: for a job ignoring
    SIGTERM past the deadline plus kill_grace (when run-job sends SIGKILL),
    for a plain sleep past the deadline (SIGTERM ends it at once). Against
    coreutils' timeout, which only signals; the goal is issue 9's promise:
    back within the deadline plus kill_grace plus 0.5 s."""
    extra = "timeout: %gs\nkill_grace: %gs\n" % (DEADLINE_TIMEOUT, DEADLINE_KILL_GRACE)
    # timeout's SIGKILL reaches its whole process group, itself included.
    cases = (("deaf", "trap '' TERM; /bin/sleep 60", DEADLINE_KILL_GRACE, -signal.SIGKILL,
              "timeout, SIGTERM ignored: exit past it + grace", 500),
             ("asleep", "/bin/sleep 60", 0, EXIT_TIMEOUT,
              "timeout, sleep job: exit past the deadline", (DEADLINE_KILL_GRACE + 0.5) * 1e3))
    for name, command, grace, timeout_exit, label, limit in cases:
        write_job(root, name, "/bin/sh -c \"%s\"" % command, extra)
        ours, theirs = [], []
        for _ in range(count):  # interleaved
            ours.append(run_job_overrun(root, ways, name, grace))
            theirs.append(timeout_overrun(command, grace, timeout_exit))
        report.row(label, ours, theirs, "ms", limit=limit)


def python_memory(count):
    """VmRSS and VmHWM lists of `python3 -c pass`, as it reads them itself."""
    resident, peak = [], []
    for _ in range(count):
        status = subprocess.check_output([PYTHON, "-c", PASS_STATUS]).decode()
        figures = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        resident.append(int(figures["VmRSS"].split()[0]))
        peak.append(int(figures["VmHWM"].split()[0]))
    return resident, peak


def memory_figures(report, root, ways, count):
    write_job(root, "sleeper", "/bin/sleep 10")
    python_resident, python_peak = python_memory(count)
    for way in ("installed", "module"):
        figures = [memory_while_sleeping(ways[way] + ["sleeper"]) for _ in range(count)]
        resident, peak = [f[0] for f in figures], [f[1] for f in figures]
        if way == "installed":
            report.row("resident while the job sleeps", resident, python_resident, "KiB", 1.6)
            report.row("peak RSS, sleep job", peak, python_peak, "KiB", 2.2)
        else:
            report.row("  module form: resident while it sleeps", resident, python_resident,
                       "KiB")
            report.row("  module form: peak RSS", peak, python_peak, "KiB")
    return python_peak


def capture_times(root, ways, name, argv, repeats):
    """Seconds of (sh, run-job, run-job's peak RSS) capturing what ARGV writes."""
    output = os.path.join(root, "sh.out")
    write_job(root, name, " ".join(argv))
    theirs, ours, peaks = [], [], []
    for _ in range(repeats):  # interleaved
        theirs.append(run(["/bin/sh", "-c", "%s | cat > %s" % (" ".join(argv), output)]))
        os.unlink(output)
        seconds, peak = timed_with_peak(ways["installed"] + [name])
        ours.append(seconds)
        peaks.append(peak)
        directory = os.path.join(root, "out", name)
        logged = sum(os.path.getsize(os.path.join(directory, entry))
                     for entry in os.listdir(directory))
        shutil.rmtree(directory)
    return theirs, ours, peaks, logged


def captures(report, root, ways, quick, python_peak):
    """Throughput: each side's time for N bytes less its time for none (the
    start-up of sh, cat, the producer and run-job), medians of interleaved runs."""
    producer = [PYTHON, os.path.join(root, "producer.py")]
    repeats = 3 if quick else 5
    empty_theirs, empty_ours, _, _ = capture_times(root, ways, "empty", producer + ["0", "1"],
                                                   repeats)
    sh_start, our_start = statistics.median(empty_theirs), statistics.median(empty_ours)
    all_peaks = []
    for megabytes, line, goal in ((100 if quick else 200, 100, 2.0),
                                  (20 if quick else 50, 2, 15.0)):
        argv = producer + [str(megabytes * 10 ** 6), str(line)]
        theirs, ours, peaks, logged = capture_times(root, ways, "capture%d" % line, argv,
                                                    repeats)
        all_peaks += peaks
        ours = [t - our_start for t in ours]
        report.row("capture %d MB of %d-byte lines (log %d MB)" % (
            megabytes, line, logged // 10 ** 6), ours, [t - sh_start for t in theirs], "s", goal)
        output = os.path.join(root, "zero.out")
        writes = []
        for _ in range(repeats):
            writes.append(run(["/bin/sh", "-c", "head -c %d /dev/zero > %s" % (logged, output)]))
            os.unlink(output)
        report.row("  vs writing the log's bytes: head -c %d MB" % (logged // 10 ** 6),
                   ours, writes, "s")
    report.row("peak RSS while capturing", all_peaks, python_peak, "KiB", 2.2)


# Jobs matching their output (fail_on_output, stderr_ignore) against the
# same jobs without patterns: goal 2x. The lines match no fail_on_output
# pattern, so every one is searched; on stderr every line is ignored, so each
# one is matched by stderr_ignore too.
MATCHING_CASES = (
    (100, 100, 1, "fail_on_output: ['ERROR', '(?i)fatal']\n", "fail_on_output", 2.0),
    (20, 2, 1, "fail_on_output: ['ERROR', '(?i)fatal']\n", "fail_on_output", 2.0),
    (100, 100, 2, "fail_on_stderr: true\nstderr_ignore: ['^x', 'warning']\n"
                  "fail_on_output: ERROR\n", "stderr_ignore + fail_on_output", 2.0),
    (20, 2, 2, "fail_on_stderr: true\nstderr_ignore: ['^x', 'warning']\n",
     "stderr_ignore", 2.0),
    (100, 100, 2, "fail_on_stderr: true\nstderr_ignore: ['^x', '^warning:']\n",
     "stderr_ignore, anchored", 2.0),
    (100, 100, 1, "fail_on_output: '\\s(ERROR|FATAL)\\s'\n",
     "fail_on_output, \\s and a group", 2.0),
    (100, 100, 1, "fail_on_output: '(?<!no )ERROR'\n",
     "fail_on_output, a lookbehind", 2.0),
    # No text a matching line must hold: the regex engine tries every byte.
    (100, 100, 1, "fail_on_output: '^\\s*$'\n",
     "fail_on_output, no literal text", None),
)


def job_capture_time(root, ways, name, argv, extra):
    """CPU seconds (user and system, run-job's and its job's) of one run of
    a job NAME (keys EXTRA) capturing what ARGV writes: on a shared machine
    far steadier than the time it takes."""
    write_job(root, name, " ".join(argv), "timeout: 10m\n" + extra)
    command = ways["installed"] + [name]
    _, status, usage = os.wait4(start(command), 0)
    check_exit(command, status, 0)
    shutil.rmtree(os.path.join(root, "out", name))
    return usage.ru_utime + usage.ru_stime


def matching(report, root, ways, quick):
    """Capture by a job with output patterns against the same job without,
    in CPU time, each less the CPU time of an empty output (the start-ups)."""
    producer = [PYTHON, os.path.join(root, "producer.py")]
    repeats = 3 if quick else 5
    start = statistics.median(job_capture_time(root, ways, "empty", producer + ["0", "1"], "")
                              for _ in range(repeats))
    for megabytes, line, fd, extra, label, goal in MATCHING_CASES:
        if quick:
            megabytes //= 2
        argv = producer + [str(megabytes * 10 ** 6), str(line), str(fd)]
        plain, patterned = [], []
        for _ in range(repeats):  # interleaved
            plain.append(job_capture_time(root, ways, "plain", argv, "") - start)
            patterned.append(job_capture_time(root, ways, "patterned", argv, extra) - start)
        report.row("%s: %d MB of %d-byte lines on %s vs none" % (
            label, megabytes, line, "stdout" if fd == 1 else "stderr"),
            patterned, plain, "s", goal)


def against_ts(report, root, ways, quick):
    ts = shutil.which("ts")
    if ts is None:
        report.note("stamp lines vs ts", "skipped: ts (moreutils) is not installed")
        return
    producer = [PYTHON, os.path.join(root, "producer.py")]
    output = os.path.join(root, "ts.out")
    for megabytes, line in ((10 if quick else 50, 100), (0.5 if quick else 2, 2)):
        argv = producer + [str(int(megabytes * 10 ** 6)), str(line)]
        name = "stamp%d" % line
        write_job(root, name, " ".join(argv))
        ours, theirs = [], []
        for _ in range(3):
            theirs.append(run(["/bin/sh", "-c", "%s | %s > %s" % (" ".join(argv), ts, output)]))
            os.unlink(output)
            ours.append(run(ways["installed"] + [name]))
            shutil.rmtree(os.path.join(root, "out", name))
        report.faster("stamp %s lines of %d bytes vs ts" % (
            "{:,}".format(int(megabytes * 10 ** 6) // line), line), ours, theirs, "s")


def main():
    quick = "--quick" in sys.argv
    root = tempfile.mkdtemp(prefix="bench-run-job-")
    try:
        ways = set_up(root)
        print("run-job installed: %s" % " ".join(ways["installed"][:-2]).replace(root, "TMP"))
        print("%s; %s mode" % (machine(), "quick" if quick else "full"))
        print()
        report = Table()
        start_up(report, root, ways, 10 if quick else 30)
        with_syslog(report, root, ways, 10 if quick else 30)
        skip_when_locked(report, root, ways, 10 if quick else 30)
        skip_when_paused(report, root, ways, 10 if quick else 30)
        run_among_many_logs(report, root, ways, 10 if quick else 30)
        python_peak = memory_figures(report, root, ways, 3 if quick else 7)
        kill_latency(report, root, ways, 3 if quick else 5)
        captures(report, root, ways, quick, python_peak)
        matching(report, root, ways, quick)
        against_ts(report, root, ways, quick)
        metrics_figures(report, root, ways, 10 if quick else 30)
    finally:
        shutil.rmtree(root)
    print()
    report.summary()
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
