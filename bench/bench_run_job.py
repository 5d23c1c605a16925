#!/usr/bin/python3
"""Speed and memory of run-job, side by side with what it replaces.

    /usr/bin/python3 bench/bench_run_job.py [--quick]

Runs everything with the system interpreter (as on a server) and prints, for
each case, run-job's figure, the reference's and their ratio against the goal:

  start-up   a run of a /bin/true job (median of N) against `python3 -c pass`
             (goal <= 2.5x) and against `flock -n LOCK timeout 600 /bin/true
             >LOG 2>&1` in sh (for information);
  capture    200 MB of 100-byte lines (goal <= 2x) and 50 MB of 2-byte lines
             (goal <= 20x) against the same command redirected to a file by sh;
  memory     peak RSS of those run-job runs against `python3 -c pass`
             (goal <= 1.5x), each process's VmHWM read by itself at its end.

run-job is driven through its entry point execute_job by a small driver
script (the command line is not involved), with a GlobalConfig and a Job
built in code; logs, locks and state go to a temporary directory.
"""

import os
import py_compile
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"

DRIVER = r"""
import sys
sys.path.insert(0, %r)
import run_job
root = sys.argv[1]
config = run_job.GlobalConfig(output_directory=root + "/out", run_directory=root + "/run",
                              state_directory=root + "/state")
job = run_job.Job("bench", commands=[sys.argv[2:]], timeout=600)
code = run_job.execute_job(config, job, live=False)
with open("/proc/self/status", "rb") as status, open(root + "/rss", "wb") as rss:
    rss.write(status.read())
sys.exit(code)
"""

# The reference for memory: python3 -c pass, and a look at its own peak.
PYTHON_PASS_RSS = "open(%r, 'wb').write(open('/proc/self/status', 'rb').read())"


def peak_rss(status_file):
    """VmHWM in KiB from a copy of /proc/PID/status. Not wait4's ru_maxrss: that
    counts the pages of the forked bench process before it exec'd."""
    with open(status_file, "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1])
    raise ValueError("no VmHWM in " + status_file)


def run(argv, stdout=None):
    """(seconds, peak RSS in KiB, exit status) of one run of ARGV."""
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
    _, status, usage = os.wait4(pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss, status


def median_run(argv, count):
    results = [run(argv) for _ in range(count)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main():
    quick = "--quick" in sys.argv
    root = tempfile.mkdtemp(prefix="bench-run-job-")
    try:
        for name in ("out", "run", "state"):
            os.mkdir(os.path.join(root, name))
        # run_job.py as a module with its bytecode compiled, as after
        # `python3 -m compileall`; PYTHONDONTWRITEBYTECODE would stop Python
        # from caching it itself.
        library = os.path.join(root, "lib")
        os.mkdir(library)
        shutil.copy(os.path.join(HERE, "run_job.py"), library)
        py_compile.compile(os.path.join(library, "run_job.py"), doraise=True)
        driver = os.path.join(root, "driver.py")
        with open(driver, "w") as driver_file:
            driver_file.write(DRIVER % library)
        run_job = [PYTHON, driver, root]
        count = 10 if quick else 40
        run(run_job + ["/bin/true"])  # compile run_job.py's cache once
        print("interpreter: %s (%s)" % (PYTHON, sys.version.split()[0]))
        print()
        print("%-44s %10s %10s %7s %6s" % ("case", "run-job", "reference", "ratio", "goal"))
        rss = []
        # start-up: interleaved so that load from elsewhere hits both alike
        timings = {"run-job": [], "python": [], "flock": []}
        lock = os.path.join(root, "flock.lock")
        log = os.path.join(root, "flock.log")
        flock = ["/bin/sh", "-c", "flock -n %s timeout 600 /bin/true >%s 2>&1" % (lock, log)]
        for _ in range(count):
            for key, argv in (("run-job", run_job + ["/bin/true"]),
                              ("python", [PYTHON, "-c", "pass"]), ("flock", flock)):
                timings[key].append(run(argv)[0])
        rss.append(peak_rss(os.path.join(root, "rss")))
        run([PYTHON, "-c", PYTHON_PASS_RSS % os.path.join(root, "python-rss")])
        python_rss = peak_rss(os.path.join(root, "python-rss"))
        ours = statistics.median(timings["run-job"])
        for key, label, goal in (("python", "/bin/true job vs python3 -c pass", 2.5),
                                 ("flock", "/bin/true job vs flock+timeout in sh", None)):
            theirs = statistics.median(timings[key])
            print("%-44s %8.1fms %8.1fms %6.2fx %6s" % (
                label, ours * 1e3, theirs * 1e3, ours / theirs, "%gx" % goal if goal else "-"))
        for size, line, goal in ((200 * 10 ** 6, 100, 2.0), (50 * 10 ** 6, 2, 20.0)):
            if quick:
                size //= 10
            producer = "yes %s | head -c %d" % ("x" * (line - 1), size)
            output = os.path.join(root, "sh.out")
            theirs, _, _ = run(["/bin/sh", "-c", producer + " >" + output])
            os.unlink(output)
            ours, _, status = run(run_job + ["/bin/sh", "-c", producer])
            assert status == 0, status
            rss.append(peak_rss(os.path.join(root, "rss")))
            log_bytes = sum(os.path.getsize(os.path.join(root, "out", "bench", entry))
                            for entry in os.listdir(os.path.join(root, "out", "bench")))
            shutil.rmtree(os.path.join(root, "out", "bench"))
            print("%-44s %8.2fs %9.2fs %6.2fx %6s" % (
                "capture %d MB of %d-byte lines (log %d MB)" % (size // 10 ** 6, line,
                                                             log_bytes // 10 ** 6),
                ours, theirs, ours / theirs, "%gx" % goal))
        print("peak RSS of each run-job run: %s KiB" % ", ".join(map(str, rss)))
        print("%-44s %8dKiB %7dKiB %6.2fx %6s" % (
            "peak RSS, worst run-job run vs python3 -c pass", max(rss), python_rss,
            max(rss) / python_rss, "1.5x"))
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
