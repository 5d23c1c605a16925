#!/usr/bin/python3
"""Speed and memory of run-job, side by side with what it replaces.

    /usr/bin/python3 bench/bench_run_job.py [--quick]

Runs everything with the system interpreter (as on a server) and prints, for
each case, run-job's figure, the reference's and their ratio against the goal:

  start-up   a run of a /bin/true job (median of N, interleaved) against
             `python3 -c pass` (goal <= 2.5x) and, for information, against
             `flock -n LOCK timeout 600 /bin/true >LOG 2>&1` in sh;
  capture    200 MB of 100-byte lines (goal <= 2x) and 50 MB of 2-byte lines
             (goal <= 20x) against the same command redirected to a file by sh
             (medians of 3);
  memory     peak RSS of run-job in those runs against `python3 -c pass`
             (goal <= 1.5x): each process's VmHWM, read by itself at its end
             (wait4's ru_maxrss would count the forked bench before exec).

run-job is measured three ways, all with a global config, job files, logs,
locks and state in a temporary directory:
  script    `python3 run_job.py --config CFG NAME`: what /usr/bin/run-job is,
            a script, compiled from source on every run;
  module    the same command line through a 3-line stub importing run_job.py
            from a directory where it was byte-compiled (compileall);
  runner    execute_job called by a small driver with a GlobalConfig and a Job
            built in code: the runner alone, no configuration loading.
"""

import os
import py_compile
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"

# Each writes its own /proc/self/status to ROOT/rss when done.
DUMP_STATUS = """
def dump_status(root):
    with open("/proc/self/status", "rb") as status, open(root + "/rss", "wb") as rss:
        rss.write(status.read())
"""

RUNNER = DUMP_STATUS + r"""
import sys
root = sys.argv[1]
sys.path.insert(0, root + "/lib")
import run_job
config = run_job.GlobalConfig(output_directory=root + "/out", run_directory=root + "/run",
                              state_directory=root + "/state")
job = run_job.Job(sys.argv[2], commands=[sys.argv[3:]], timeout=600)
code = run_job.execute_job(config, job, live=False)
dump_status(root)
sys.exit(code)
"""

MODULE = DUMP_STATUS + r"""
import sys
root = sys.argv[1]
sys.path.insert(0, root + "/lib")
from run_job import main
code = main(sys.argv[2:])
dump_status(root)
sys.exit(code)
"""

# Only for the peak RSS of the script: runpy compiles it as `python3 FILE` does.
SCRIPT_RSS = DUMP_STATUS + r"""
import runpy, sys
root = sys.argv[1]
sys.argv = [sys.argv[2]] + sys.argv[3:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    dump_status(root)
"""

CONFIG = """user: {user}
job_directory: {root}/jobs
output_directory: {root}/out
run_directory: {root}/run
state_directory: {root}/state
"""


def peak_rss(root):
    """VmHWM in KiB from the copy of /proc/PID/status a process left in ROOT."""
    with open(os.path.join(root, "rss"), "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1])
    raise ValueError("no VmHWM")


def run(argv, stdout=None):
    """(seconds, exit status) of one run of ARGV."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it
            if stdout is not None:
                fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    return time.perf_counter() - started, status


def write(path, text):
    with open(path, "w") as output:
        output.write(text)


def set_up(root):
    for name in ("jobs", "out", "run", "state", "lib"):
        os.mkdir(os.path.join(root, name))
    os.chmod(root, 0o755)
    shutil.copy(os.path.join(HERE, "run_job.py"), os.path.join(root, "lib"))
    py_compile.compile(os.path.join(root, "lib", "run_job.py"), doraise=True)
    for name, text in (("runner.py", RUNNER), ("module.py", MODULE),
                       ("script_rss.py", SCRIPT_RSS)):
        write(os.path.join(root, name), text)
    user = pwd.getpwuid(os.geteuid()).pw_name
    write(os.path.join(root, "config.yaml"), CONFIG.format(user=user, root=root))
    os.chmod(os.path.join(root, "config.yaml"), 0o644)


def commands(root, name, argv):
    """The three ways of running job NAME whose command is ARGV."""
    config = ["--config", os.path.join(root, "config.yaml"), name]
    line = " ".join('"%s"' % word for word in argv)  # read back by shlex
    write(os.path.join(root, "jobs", name + ".yaml"),
          "command: '%s'\ntimeout: 10m\n" % line.replace("'", "''"))
    return {"script": [PYTHON, os.path.join(root, "lib", "run_job.py")] + config,
            "module": [PYTHON, os.path.join(root, "module.py"), root] + config,
            "runner": [PYTHON, os.path.join(root, "runner.py"), root, name] + argv,
            "script-rss": [PYTHON, os.path.join(root, "script_rss.py"), root,
                           os.path.join(root, "lib", "run_job.py")] + config}


def row(label, ours, theirs, unit, goal):
    scale, form = {"ms": (1e3, "%8.1fms"), "s": (1, "%9.2fs"), "KiB": (1, "%7dKiB")}[unit]
    print(("%-48s " + form + " " + form + " %6.2fx %5s") % (
        label, ours * scale, theirs * scale, ours / theirs, "%gx" % goal if goal else "-"))


def main():
    quick = "--quick" in sys.argv
    count = 10 if quick else 30
    root = tempfile.mkdtemp(prefix="bench-run-job-")
    try:
        set_up(root)
        ways = commands(root, "true", ["/bin/true"])
        for way in ("script", "module", "runner"):
            _, status = run(ways[way])
            if status != 0:
                print("run-job %s does not run (exit status %d): left out" % (way, status >> 8))
                del ways[way]
        flock = ["/bin/sh", "-c", "flock -n %s/flock.lock timeout 600 /bin/true >%s/flock.log 2>&1"
                 % (root, root)]
        references = {"python3 -c pass": [PYTHON, "-c", "pass"], "flock": flock}
        timings = dict((key, []) for key in list(ways) + list(references))
        for _ in range(count):  # interleaved: load from elsewhere hits all alike
            for key, argv in list(ways.items()) + list(references.items()):
                if key != "script-rss":
                    timings[key].append(run(argv)[0])
        median = dict((key, statistics.median(values)) for key, values in timings.items()
                      if values)
        version = subprocess.check_output([PYTHON, "-c", "import platform; "
                                           "print(platform.python_version())"]).decode().strip()
        print("interpreter %s (Python %s); medians of %d runs; %s"
              % (PYTHON, version, count, time.strftime("%Y-%m-%d %H:%M")))
        print()
        print("%-48s %10s %10s %7s %5s" % ("case", "run-job", "reference", "ratio", "goal"))
        for way in ("script", "module", "runner"):
            if way in ways:
                row("%s: /bin/true job vs python3 -c pass" % way, median[way],
                    median["python3 -c pass"], "ms", 2.5)
        for way in ("script", "module", "runner"):
            if way in ways:
                row("%s: /bin/true job vs flock+timeout in sh" % way, median[way],
                    median["flock"], "ms", None)

        rss = {}
        write(os.path.join(root, "pass.py"), DUMP_STATUS + "import sys\ndump_status(sys.argv[1])\n")
        run([PYTHON, os.path.join(root, "pass.py"), root])
        python_rss = peak_rss(root)
        for way in ("script-rss", "module", "runner"):
            if way in ways or (way == "script-rss" and "script" in ways):
                run(ways[way])
                rss["%s, /bin/true" % way.replace("-rss", "")] = peak_rss(root)
        capture_way = "module" if "module" in ways else "runner"
        for size, line, goal in ((200 * 10 ** 6, 100, 2.0), (50 * 10 ** 6, 2, 20.0)):
            if quick:
                size //= 10
            producer = "yes %s | head -c %d" % ("x" * (line - 1), size)
            output = os.path.join(root, "sh.out")
            name = "capture%d" % line
            argv = commands(root, name, ["/bin/sh", "-c", producer])[capture_way]
            times = {"ours": [], "theirs": []}
            for _ in range(1 if quick else 3):  # medians, interleaved
                times["theirs"].append(run(["/bin/sh", "-c", producer + " >" + output])[0])
                os.unlink(output)
                seconds, status = run(argv)
                assert status == 0, status
                times["ours"].append(seconds)
                key = "%s, %d MB, %d-byte lines" % (capture_way, size // 10 ** 6, line)
                rss[key] = max(rss.get(key, 0), peak_rss(root))
                directory = os.path.join(root, "out", name)
                log_bytes = sum(os.path.getsize(os.path.join(directory, entry))
                                for entry in os.listdir(directory))
                shutil.rmtree(directory)
            ours, theirs = statistics.median(times["ours"]), statistics.median(times["theirs"])
            row("%s: %d MB, %d-byte lines (log %d MB)" % (
                capture_way, size // 10 ** 6, line, log_bytes // 10 ** 6),
                ours, theirs, "s", goal)
        for label, kilobytes in sorted(rss.items()):
            row("peak RSS, %s" % label, kilobytes, python_rss, "KiB", 1.5)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
