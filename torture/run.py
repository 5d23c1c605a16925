#!/usr/bin/env python3
"""The torture suite: runs every experiment (a module of this directory with
run(args) -> (trials, ok, figure_text)) against run_job.py and cron_generate.py
of the repository, as processes, in temporary directories.

    python3 torture/run.py [--quick] [--only NAME]... [--seed N]

Prints one line per experiment, `NAME: N trials, N ok, FIGURE`, under it one
line per distinct failure (at most 5), and last
`torture: N experiments, N trials, N ok, N failed`. Exits 1 when a trial failed.
"""

import argparse
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

EXPERIMENTS = ["overlap", "crash", "deadline", "signals", "output", "faults",
               "bad_input", "hostile", "state", "state_files", "syslog_socket", "mail",
               "hooks", "metrics"]


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description="the process-control torture suite")
    parser.add_argument("--quick", action="store_true", help="fewer trials: under a minute")
    parser.add_argument("--only", action="append", choices=EXPERIMENTS, metavar="NAME",
                        help="run only this experiment (repeatable): " + ", ".join(EXPERIMENTS))
    parser.add_argument("--seed", type=int, default=9, help="the random seed (default 9)")
    return parser.parse_args(argv)


def run_experiment(name, args):
    """(trials, ok, figure, failure lines): an experiment that raises counts
    as one failed trial, its traceback's last line as the reason."""
    failures = common.Failures()
    args.failures = failures
    try:
        module = importlib.import_module(name)
        trials, ok, figure = module.run(args)
    except Exception:
        lines = traceback.format_exc().strip().splitlines()
        failures.add("the experiment crashed: %s" % lines[-1])
        sys.stderr.write(traceback.format_exc())
        trials, ok, figure = 1, 0, "crashed"
    return trials, ok, figure, failures.lines()


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    names = args.only or EXPERIMENTS
    print("torture: %s run, seed %d, %s as %s, Python %s" % (
        "quick" if args.quick else "full", args.seed, os.path.relpath(common.RUN_JOB),
        common.CURRENT_USER, sys.version.split()[0]))
    sys.stdout.flush()
    total_trials = total_ok = 0
    suite_start = time.monotonic()
    for name in names:
        start = time.monotonic()
        trials, ok, figure, failure_lines = run_experiment(name, args)
        print("%s: %d trials, %d ok, %s [%.1f s]" % (
            name.replace("_", " "), trials, ok, figure, time.monotonic() - start))
        for line in failure_lines:
            print("    FAILED: %s" % line)
        sys.stdout.flush()
        total_trials += trials
        total_ok += ok
    print("torture: %d experiments, %d trials, %d ok, %d failed [%.0f s]" % (
        len(names), total_trials, total_ok, total_trials - total_ok,
        time.monotonic() - suite_start))
    return 1 if total_ok != total_trials else 0


if __name__ == "__main__":
    sys.exit(main())
