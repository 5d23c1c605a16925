"""state: rounds of N simultaneous launches of one job that fails every
third run (each launch a process that has imported run_job and waits for a
go-file, then a random moment): plain runs, cron runs by the job's own
crontab line, drift skips by a line for another schedule, and the lock-held
skips they cause each other. Every launch is recorded exactly once in the
history, with the status its exit code says; the runs are recorded in the
order they ran, with the right consecutive_failures; the state parses as
JSON, run_job reads the same, and it holds the last run, the last success and
the last skip since; one log per run, none per skip; no temporary or
set-aside file is left."""

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import types

import common
import overlap

sys.path.insert(0, common.REPO)
import run_job  # noqa: E402

DRIVER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import run_job
open(sys.argv[2] + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
time.sleep(float(sys.argv[4]))
sys.exit(run_job.main(sys.argv[5:]))
"""

NAME = "flaky"
SCHEDULE = "*/5 * * * *"
OTHER_SCHEDULE = "0 1 * * *"
RUN_STATUSES = ("success", "failed")
# What each kind of launch may exit with, and the history status each exit means.
KINDS = {
    "run": {0: "success", 1: "failed", 75: "lock held"},
    "cron run": {0: "success", 1: "failed", 75: "lock held"},
    "drift skip": {0: "rescheduled"},
}


def job_command(sandbox):
    """Counts its runs in COUNTER (the job lock serialises them), notes each
    in RAN, fails on every third."""
    counter, ran = sandbox.path("counter"), sandbox.path("ran")
    return ("/bin/sh -c 'n=$(cat %s 2>/dev/null); n=$((${n:-0}+1)); echo $n > %s; "
            "echo $n >> %s; sleep 0.02; [ $((n %% 3)) -ne 0 ]'" % (counter, counter, ran))


def launch_arguments(kind, config):
    if kind == "run":
        return ["--config", config, NAME]
    schedule = SCHEDULE if kind == "cron run" else OTHER_SCHEDULE
    return ["--config", config, "--job", NAME, "--scheduled", schedule]


class Launch(object):
    def __init__(self, kind, process):
        self.kind = kind
        self.process = process
        self.code = None
        self.out = self.err = b""


def start_launches(sandbox, library, kinds, spread, rng):
    driver = sandbox.path("driver.py")
    common.write_file(driver, DRIVER)
    ready, go = sandbox.path("ready-"), sandbox.path("go")
    launches = []
    for kind in kinds:
        argv = [common.PYTHON, driver, library, ready, go, "%.3f" % rng.uniform(0, spread)]
        launches.append(Launch(kind, subprocess.Popen(
            argv + launch_arguments(kind, sandbox.config), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=sandbox.root,
            start_new_session=True)))
    deadline = time.monotonic() + 120
    while len([e for e in os.listdir(sandbox.root) if e.startswith("ready-")]) < len(kinds):
        if time.monotonic() > deadline or any(l.process.poll() is not None for l in launches):
            break
        time.sleep(0.02)
    common.write_file(go, "")
    for launch in launches:
        launch.code, launch.out, launch.err, _ = common.finish(launch.process, 60)
    return launches


def read_lines(path):
    try:
        with open(path, "rb") as stream:
            return stream.read().splitlines()
    except FileNotFoundError:
        return []


def read_history(sandbox, problems):
    """The history's records in order; a line that is not JSON is a problem."""
    records = []
    path = os.path.join(sandbox.path("state"), NAME + ".history")
    for line in read_lines(path + ".1") + read_lines(path):
        try:
            records.append(json.loads(line.decode("utf-8")))
        except ValueError as error:
            problems.append("a history line is not JSON (%s): %r" % (error, line[:80]))
    return records


def read_state(sandbox, problems):
    """The state as json.loads reads it, checked against run_job's reading."""
    path = sandbox.state(NAME)
    try:
        with open(path, "rb") as stream:
            data = stream.read()
        state = json.loads(data.decode("utf-8"))
    except (OSError, ValueError) as error:
        problems.append("the state does not parse: %s" % error)
        return None
    config = types.SimpleNamespace(state_directory=sandbox.path("state"))
    try:
        theirs = run_job.read_job_state(config, NAME)
    except (run_job.ProcessControlError, OSError) as error:
        problems.append("run_job cannot read the state: %s" % error)
        return state
    if theirs != state:
        problems.append("run_job reads the state as %r, json as %r" % (theirs, state))
    return state


def launch_problems(launch):
    """What is wrong with one launch's own exit, output and stderr."""
    expected = KINDS[launch.kind]
    if launch.code is common.HUNG:
        return ["%s hung" % launch.kind]
    if b"Traceback" in launch.err:
        return ["%s: traceback: %s" % (launch.kind, common.last_line(launch.err))]
    problems = []
    if launch.code not in expected:
        problems.append("%s exited %s, expected %s: %s" % (
            launch.kind, launch.code, "/".join(map(str, sorted(expected))),
            common.last_line(launch.err)))
    if launch.out:
        problems.append("%s printed on stdout: %r" % (launch.kind, launch.out[:100]))
    if launch.code == 0 and launch.err:
        problems.append("%s succeeded but printed on stderr: %s" % (
            launch.kind, common.last_line(launch.err)))
    elif launch.code != 0 and common.one_line_error(launch.err, ("run-job",)):
        problems.append("%s exited %s: %s" % (
            launch.kind, launch.code, common.one_line_error(launch.err, ("run-job",))))
    return problems


def recorded_as(entry):
    """What a history entry says a launch did, in KINDS' terms."""
    if entry.get("status") in RUN_STATUSES:
        return entry["status"]
    reason = str(entry.get("reason"))
    for prefix in ("lock held", "rescheduled"):
        if entry.get("status") == "skipped" and reason.startswith(prefix):
            return prefix
    return "%s (%s)" % (entry.get("status"), reason[:60])


def history_problems(launches, history):
    """Every launch recorded exactly once, as its exit code says."""
    problems = []
    by_pid = {}
    for entry in history:
        by_pid.setdefault(entry.get("pid"), []).append(entry)
    pids = set()
    for launch in launches:
        pid = launch.process.pid
        pids.add(pid)
        entries = by_pid.get(pid, [])
        if len(entries) != 1:
            problems.append("a %s (exit %s) is recorded %d times in the history" % (
                launch.kind, launch.code, len(entries)))
            continue
        expected = KINDS[launch.kind].get(launch.code)
        if expected is not None and recorded_as(entries[0]) != expected:
            problems.append("a %s that exited %s is recorded as %s" % (
                launch.kind, launch.code, recorded_as(entries[0])))
    strangers = [entry for entry in history if entry.get("pid") not in pids]
    if strangers:
        problems.append("%d history entries of no launch: %r" % (len(strangers), strangers[0]))
    return problems


def run_problems(sandbox, history):
    """The runs in history order are the runs in the order they ran (the
    counter), each failure counted."""
    problems = []
    runs = [entry for entry in history if entry.get("status") in RUN_STATUSES]
    ran = read_lines(sandbox.path("ran"))
    if len(ran) != len(runs):
        problems.append("the command ran %d times, the history has %d runs" % (len(ran), len(runs)))
    failures = 0
    for number, entry in enumerate(runs, 1):
        expected = "failed" if number % 3 == 0 else "success"
        if entry["status"] != expected:
            problems.append("run %d is recorded as %s, it was a %s: runs recorded out of order"
                            % (number, entry["status"], expected))
            break
        failures = failures + 1 if expected == "failed" else 0
        if entry.get("consecutive_failures") != failures:
            problems.append("run %d records consecutive_failures %r, expected %d" % (
                number, entry.get("consecutive_failures"), failures))
            break
    logs = sandbox.logs(NAME)
    if len(logs) != len(runs):
        problems.append("%d logs for %d runs (a skip writes no log)" % (len(logs), len(runs)))
    return problems


def state_problems(state, history, vandalised=False):
    """The state holds the last run, the last success (VANDALISED: a state
    replaced since may have lost it) and the skips since."""
    if state is None:
        return []
    problems = []
    runs = [entry for entry in history if entry.get("status") in RUN_STATUSES]
    if not runs:
        return ["no run in the history"]
    last = runs[-1]
    for key in run_job.RUN_KEYS + ("consecutive_failures",):
        if state.get(key) != last.get(key):
            problems.append("state %s is %r, the last run's is %r" % (key, state.get(key), last.get(key)))
            break
    successes = [entry for entry in runs if entry["status"] == "success"]
    if vandalised and last["status"] != "success":
        successes = []
    if successes and state.get("last_success") != successes[-1]["start"]:
        problems.append("state last_success %r, the last success started %r" % (
            state.get("last_success"), successes[-1]["start"]))
    skips_since = history[history.index(last) + 1:]
    expected = skips_since[-1]["reason"] if skips_since else None
    if state.get("last_skip_reason") != expected:
        problems.append("state last_skip_reason %r, expected %r" % (
            state.get("last_skip_reason"), expected))
    return problems


def leftovers(sandbox, set_aside_too=True):
    """Temporary files left behind, and set-aside ones unless SET_ASIDE_TOO is false."""
    found = []
    for directory in ("run", "state", "log"):
        for root, dirs, files in os.walk(sandbox.path(directory)):
            found.extend(entry for entry in dirs + files
                         if entry.endswith(".tmp") or set_aside_too and ".bad-" in entry)
    return ["left behind: %s" % ", ".join(sorted(found)[:3])] if found else []


class Vandal(object):
    """A thread that keeps replacing the state file, ignoring the state
    lock, by garbage, another job's record, a record of wrong types or a
    FIFO, each put in place by a rename (so never half-written)."""

    def __init__(self, sandbox, seed):
        self.path = sandbox.state(NAME)
        self.spare = sandbox.path("state", "vandal")
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.replaced = 0
        self.thread = threading.Thread(target=self.work)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exception):
        self.stopped.set()
        self.thread.join()

    def work(self):
        while not self.stopped.wait(self.rng.uniform(0.005, 0.05)):
            kind = self.rng.randrange(4)
            if kind == 3:
                os.mkfifo(self.spare)
            else:
                common.write_file(self.spare, (
                    b"\x00garbage\xff\n", b'{"job": "other", "consecutive_failures": 7}\n',
                    b'{"job": "%s", "consecutive_failures": "x", "start_time": {}}\n'
                    % NAME.encode())[kind])
            os.rename(self.spare, self.path)
            self.replaced += 1


def vandalised_run_problems(history):
    """With the state replaced under them, the runs' failure counts may
    restart from 0, never grow past the true count."""
    failures = 0
    for number, entry in enumerate((e for e in history if e.get("status") in RUN_STATUSES), 1):
        failures = failures + 1 if number % 3 == 0 else 0
        recorded = entry.get("consecutive_failures")
        if type(recorded) is not int or not (0 < recorded <= failures if failures else recorded == 0):
            return ["run %d records consecutive_failures %r, at most %d (and 0 only after a success)"
                    % (number, recorded, failures)]
    return []


def one_round(library, count, spread, rng, tally, counts, vandal=False):
    if vandal:
        return vandal_round(library, count, spread, rng, tally, counts)
    sandbox = common.Sandbox()
    try:
        sandbox.write_job(NAME, common.job_text(job_command(sandbox), schedule="'%s'" % SCHEDULE,
                                                timeout="1m"))
        kinds = [rng.choice(("run", "run", "cron run", "drift skip")) for _ in range(count)]
        launches = start_launches(sandbox, library, kinds, spread, rng)
        for launch in launches:
            outcome = KINDS[launch.kind].get(launch.code, "exit %s" % launch.code)
            counts[outcome] = counts.get(outcome, 0) + 1
            tally.check(launch_problems(launch), "launch")
        problems = []
        history = read_history(sandbox, problems)
        state = read_state(sandbox, problems)
        problems += history_problems(launches, history)
        problems += run_problems(sandbox, history)
        problems += state_problems(state, history)
        problems += leftovers(sandbox)
        tally.check(problems, "round of %d launches" % count)
    finally:
        sandbox.remove()


def run(args):
    rounds, count = (2, 25) if args.quick else (5, 50)
    rng = random.Random(args.seed)
    tally = common.Tally(args.failures)
    library = overlap.compiled_library()
    counts = {}
    try:
        for number in range(rounds):
            one_round(library, count, 1.0, rng, tally, counts, vandal=number == rounds - 1)
    finally:
        shutil.rmtree(library, True)
    figure = "%d rounds of %d launches: %s" % (rounds, count, ", ".join(
        "%s x%d" % item for item in sorted(counts.items(), key=lambda item: -item[1])))
    return tally.trials, tally.ok, figure


def vandal_round(library, count, spread, rng, tally, counts):
    """The round with the state file replaced all along: every launch still
    ends as it should and is recorded once; a last run, once the vandal
    stopped, leaves a valid state that holds it."""
    sandbox = common.Sandbox()
    try:
        sandbox.write_job(NAME, common.job_text(job_command(sandbox), schedule="'%s'" % SCHEDULE,
                                                timeout="1m"))
        kinds = [rng.choice(("run", "run", "cron run", "drift skip")) for _ in range(count)]
        with Vandal(sandbox, rng.random()) as vandal:
            launches = start_launches(sandbox, library, kinds, spread, rng)
        last = Launch("run", subprocess.Popen(
            [common.PYTHON, common.RUN_JOB] + launch_arguments("run", sandbox.config),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=sandbox.root))
        last.code, last.out, last.err, _ = common.finish(last.process, 30)
        launches.append(last)
        counts["state replaced"] = counts.get("state replaced", 0) + vandal.replaced
        for launch in launches:
            outcome = KINDS[launch.kind].get(launch.code, "exit %s" % launch.code)
            counts[outcome] = counts.get(outcome, 0) + 1
            tally.check(launch_problems(launch), "launch, the state replaced all along")
        problems = []
        history = read_history(sandbox, problems)
        state = read_state(sandbox, problems)
        problems += history_problems(launches, history)
        problems += vandalised_run_problems(history)
        problems += state_problems(state, history, vandalised=True)
        problems += leftovers(sandbox, set_aside_too=False)
        tally.check(problems, "round of %d launches, the state replaced all along" % count)
    finally:
        sandbox.remove()
