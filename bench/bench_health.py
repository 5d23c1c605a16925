#!/usr/bin/env python3
"""run-job --health over many jobs: 10,000 job files with their states.

Usage: python3 bench/bench_health.py [--jobs N] [--repeat R]
Builds bench_cron_generate's job directory of N job files (five schedules)
and a state per job as runs record them: most jobs fine, some failing,
halted, paused, or never run, so that the check judges every kind; then runs
`run-job --health` with the system interpreter (/usr/bin/python3 when
present, as on a server) R times and prints the wall and CPU times against
the issue's goal, 3 s for 10,000 jobs.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_cron_generate  # noqa: E402

SOURCE = bench_cron_generate.SOURCE
PYTHON = bench_cron_generate.PYTHON
GOAL_SECONDS = 3.0  # for 10,000 jobs


def iso_time(epoch):
    local = time.localtime(epoch)
    return "%s.000%s" % (time.strftime("%Y-%m-%dT%H:%M:%S", local),
                         time.strftime("%z", local))


def state_of(name, index, now):
    """The state a run would have left for job NAME (the INDEX-th), or None
    for a job that never ran: one in 100 failing, one in 200 halted, one in
    50 paused, one in 20 never run."""
    if index % 20 == 19:
        return None
    start = now - 60 - index % 50
    failed = index % 100 == 7
    state = {"job": name, "status": "failed" if failed else "success",
             "reason": "exit status 1" if failed else "success",
             "exit_code": 1 if failed else 0, "signal": None, "start": iso_time(start),
             "start_time": start, "duration": 0.5, "log": "/var/log/x/%s.log" % name,
             "pid": 4242, "logging_error": None, "set_aside": None,
             "consecutive_failures": 1 if failed else 0,
             "last_success": iso_time(start - 86400), "last_success_time": start - 86400}
    if index % 200 == 3:
        state.update(halted=iso_time(start), halted_time=start, halt_reason="3 failures")
    if index % 50 == 11:
        state.update(paused=iso_time(start), paused_time=start, paused_by="alice")
    return state


def make_sandbox(count):
    """(root, config path) of bench_cron_generate's temporary job directory
    of COUNT jobs, each with its state."""
    root, config = bench_cron_generate.make_sandbox(count)
    states = os.path.join(root, "state")
    os.mkdir(states, 0o755)
    now = time.time()
    for index in range(count):
        name = "job_%05d" % index
        state = state_of(name, index, now)
        if state is not None:
            with open(os.path.join(states, name + ".state"), "w") as handle:
                handle.write(json.dumps(state) + "\n")  # json_line's separators
    return root, config


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def health_times(config, repeat):
    """(wall times, CPU times) of REPEAT runs of run-job --health, and the
    last one's first line; RuntimeError unless it exits 0 to 3 with its
    first line. CPU time says what a loaded machine's wall time hides."""
    command = [PYTHON, os.path.join(SOURCE, "run_job.py"), "--config", config, "--health"]
    times, cpu, first = [], [], None
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), children_cpu()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate()
        times.append(time.perf_counter() - start)
        cpu.append(children_cpu() - cpu_start)
        first = out.decode(errors="replace").split("\n", 1)[0]
        if process.returncode not in (0, 1, 2, 3) or not first.startswith("PROCESS-CONTROL "):
            raise RuntimeError("run-job --health exited %d: %s %s" % (
                process.returncode, first, err.decode(errors="replace")))
    return times, cpu, first


def measure(count, repeat):
    """(wall times and CPU times of --health over COUNT jobs, its first line)."""
    root, config = make_sandbox(count)
    try:
        return health_times(config, repeat)
    finally:
        shutil.rmtree(root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    print("interpreter: %s" % PYTHON)
    try:
        times, cpu, first = measure(options.jobs, options.repeat)
    except RuntimeError as error:
        sys.exit("bench: %s" % error)
    print(first[:160])
    median = statistics.median(times)
    verdict = "the goal is for 10000 jobs"
    if options.jobs == 10000:
        verdict = "goal %.1f s: %s" % (GOAL_SECONDS, "met" if median <= GOAL_SECONDS
                                       else "MISSED")
    print("run-job --health, %d jobs: median %.3f s (min %.3f, max %.3f), CPU %.3f s; %s; "
          "load average %.2f" % (options.jobs, median, min(times), max(times),
                                 statistics.median(cpu), verdict, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
