#!/usr/bin/env python3
"""run-job --health over many jobs: 10,000 job files with their states.

Usage: python3 bench/bench_health.py [--jobs N] [--repeat R]
Builds a job directory of N job files (five schedules) and a state per job
as runs record them: most jobs fine, some failing, halted, paused, or never
run, so that the check judges every kind; then runs `run-job --health` with
the system interpreter (/usr/bin/python3 when present, as on a server) R
times and prints the wall times against the issue's goal, 3 s for 10,000.
"""

import argparse
import json
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SCHEDULES = ["*/5 * * * *", "30 12 * * *", "0 0 1 * *", "15 3 * * 1-5", "2-59/10 * * * *"]
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
    """(root, config path) of a temporary job directory of COUNT jobs, each
    with its state."""
    root = tempfile.mkdtemp(prefix="pc-bench-health-")
    os.chmod(root, 0o755)
    jobs, states = os.path.join(root, "jobs"), os.path.join(root, "state")
    for directory in (jobs, states, os.path.join(root, "run")):
        os.mkdir(directory, 0o755)
    now = time.time()
    for index in range(count):
        name = "job_%05d" % index
        with open(os.path.join(jobs, name + ".yaml"), "w") as handle:
            handle.write("name: Benchmark job %d\n"
                         "description: one of many\n"
                         "command: /usr/bin/env true --flag %d\n"
                         "schedule: '%s'\n"
                         "timeout: 10m\n"
                         "tags: [bench, group%d]\n" % (index, index, SCHEDULES[index % 5],
                                                       index % 7))
        state = state_of(name, index, now)
        if state is not None:
            with open(os.path.join(states, name + ".state"), "w") as handle:
                handle.write(json.dumps(state) + "\n")  # json_line's separators
    user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    config = os.path.join(root, "process-control.yaml")
    with open(config, "w") as handle:
        handle.write("user: %s\njob_directory: %s\noutput_directory: %s/log\n"
                     "run_directory: %s/run\nstate_directory: %s\n"
                     "output_crontab: console\n" % (user, jobs, root, root, states))
    os.chmod(config, 0o644)
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
    goal = GOAL_SECONDS * options.jobs / 10000
    print("run-job --health, %d jobs: median %.3f s (min %.3f, max %.3f), CPU %.3f s; goal "
          "%.1f s: %s; load average %.2f" % (
              options.jobs, median, min(times), max(times), statistics.median(cpu), goal,
              "met" if median <= goal else "MISSED", os.getloadavg()[0]))


if __name__ == "__main__":
    main()
