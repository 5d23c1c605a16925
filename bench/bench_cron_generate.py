#!/usr/bin/env python3
"""How cron-generate and run-job --status scale: 10 job files against 10,000.

Usage: python3 bench/bench_cron_generate.py [--jobs N] [--repeat R]
Runs both scripts with the system interpreter (/usr/bin/python3 when present,
as on a server) on generated job directories and prints the best wall time of
R runs for each size, and the cost per job file.
"""

import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SCHEDULES = ["*/5 * * * *", "30 12 * * *", "0 0 1 * *", "15 3 * * 1-5", "2-59/10 * * * *"]


def make_sandbox(count):
    root = tempfile.mkdtemp(prefix="pc-bench-cron-")
    os.chmod(root, 0o755)
    jobs = os.path.join(root, "jobs")
    os.mkdir(jobs, 0o755)
    for index in range(count):
        with open(os.path.join(jobs, "job_%05d.yaml" % index), "w") as handle:
            handle.write(
                "name: Benchmark job %d\n"
                "description: one of many\n"
                "command: /usr/bin/env true --flag %d\n"
                "schedule: '%s'\n"
                "timeout: 10m\n"
                "tags: [bench, group%d]\n" % (index, index, SCHEDULES[index % 5], index % 7))
    user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    config = os.path.join(root, "process-control.yaml")
    with open(config, "w") as handle:
        handle.write("user: %s\njob_directory: %s\noutput_directory: %s/log\n"
                     "run_directory: %s/run\nstate_directory: %s/state\n"
                     "output_crontab: console\n" % (user, jobs, root, root, root))
    os.chmod(config, 0o644)
    return root, config


def run_times(command, repeat):
    """Wall times of REPEAT runs of COMMAND; raises RuntimeError if one fails."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        errors = process.communicate()[1]
        times.append(time.perf_counter() - start)
        if process.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(command), process.returncode,
                                                       errors.decode(errors="replace")))
    return times


COMMANDS = (("cron-generate --stdout", ["cron_generate.py", "--stdout"]),
            ("run-job --status", ["run_job.py", "--status"]))


def measure(counts, repeat):
    """{(label, job count): [wall times]} for each of COMMANDS on a sandbox of
    each of COUNTS job files."""
    results = {}
    for count in counts:
        root, config = make_sandbox(count)
        try:
            for label, command in COMMANDS:
                full = [PYTHON, os.path.join(SOURCE, command[0]), "--config", config] + command[1:]
                results[label, count] = run_times(full, repeat)
        finally:
            shutil.rmtree(root)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print("interpreter: %s" % PYTHON)
    try:
        results = measure((10, options.jobs), options.repeat)
    except RuntimeError as error:
        sys.exit("bench: %s" % error)
    for label, _ in COMMANDS:
        small, large = min(results[label, 10]), min(results[label, options.jobs])
        print("%-24s %6d jobs: %8.3f s   %6d jobs: %8.3f s   %.3f ms per job file"
              % (label, 10, small, options.jobs, large,
                 1000.0 * (large - small) / (options.jobs - 10)))


if __name__ == "__main__":
    main()
