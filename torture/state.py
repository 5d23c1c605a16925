"""state: rounds of N simultaneous launches of one job that fails its 3rd
and 4th run in every 4 (each launch a process that has imported run_job and
waits for a go-file, then a random moment): plain runs, cron runs by the
job's own crontab line, drift skips by a line for another schedule, the
lock-held skips they cause each other, and --pause, --resume and --reset
among them (by name or by --tag). Every launch is recorded exactly once in
the history, with the status its exit code says; the runs are recorded in
the order they ran, with the right consecutive_failures (a reset restarts
the count); a start decided while the job was surely paused is a quiet skip
(exit 0, reason "paused..."), and a paused skip was decided while it may
have been; the state parses as JSON, run_job reads the same, and it holds
the last run, the last success, the last skip since and the pause of the
last pause or resume; a thread reading it all along never finds it torn;
one log per run, none per skip; no temporary or set-aside file is left. A
last round has the state file replaced all along by a thread ignoring the
state lock."""

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

NAME = "flaky"
TAG = "torture"
SCHEDULE = "*/5 * * * *"
OTHER_SCHEDULE = "0 1 * * *"
RUN_STATUSES = ("success", "failed")
COMMAND_STATUSES = {"paused": "pause", "resumed": "resume", "reset": "reset"}
# What each kind of launch may exit with, and what the history may say each
# exit was (see recorded_as).
KINDS = {
    "run": {0: ("success", "paused"), 1: ("failed",), 75: ("lock held",)},
    "cron run": {0: ("success", "paused"), 1: ("failed",), 75: ("lock held",)},
    "drift skip": {0: ("rescheduled",)},
    "pause": {0: ("pause",)},
    "resume": {0: ("resume",)},
    "reset": {0: ("reset",)},
}
PLAIN_KINDS = ["run", "run", "cron run", "drift skip"]
MARK_KINDS = ["run"] * 4 + ["cron run"] * 2 + ["drift skip", "pause", "pause", "resume",
                                                "resume", "reset"]
# The times recorded are rounded to the millisecond.
SLACK = 0.002


def job_command(sandbox):
    """Counts its runs in COUNTER (the job lock serialises them), notes each
    in RAN, fails two in a row in every four (see fails)."""
    counter, ran = sandbox.path("counter"), sandbox.path("ran")
    return ("/bin/sh -c 'n=$(cat %s 2>/dev/null); n=$((${n:-0}+1)); echo $n > %s; "
            "echo $n >> %s; sleep 0.02; [ $((n %% 4)) -eq 1 ] || [ $((n %% 4)) -eq 2 ]'"
            % (counter, counter, ran))


def fails(number):
    """Whether the job's run NUMBER (from 1) fails."""
    return number % 4 in (0, 3)


def launch_arguments(kind, config, number):
    if kind == "run":
        return ["--config", config, NAME]
    # Half the commands name the job, half select it by its tag.
    selection = ["--tag", TAG] if number % 2 else [NAME]
    if kind == "pause":
        return ["--config", config, "--pause"] + selection + ["--reason", pause_reason(number)]
    if kind in ("resume", "reset"):
        return ["--config", config, "--" + kind] + selection
    schedule = SCHEDULE if kind == "cron run" else OTHER_SCHEDULE
    return ["--config", config, "--job", NAME, "--scheduled", schedule]


def pause_reason(number):
    return "torture pause %d" % number


class Launch(object):
    def __init__(self, kind, process, number=None):
        self.kind = kind
        self.process = process
        self.number = number
        self.code = None
        self.out = self.err = b""
        self.called = self.returned = None  # when run_job.main was called, returned

    def read_times(self, directory):
        try:
            with open(os.path.join(directory, "times-%d" % self.process.pid)) as times:
                self.called, self.returned = map(float, times.read().split())
        except (OSError, ValueError):
            pass


def start_launches(sandbox, library, kinds, spread, rng):
    driver = sandbox.path("driver.py")
    common.write_file(driver, overlap.DRIVER)
    ready, go = sandbox.path("ready-"), sandbox.path("go")
    launches = []
    for number, kind in enumerate(kinds):
        argv = [common.PYTHON, driver, library, ready, go, "%.3f" % rng.uniform(0, spread)]
        launches.append(Launch(kind, subprocess.Popen(
            argv + launch_arguments(kind, sandbox.config, number), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=sandbox.root,
            start_new_session=True), number))
    deadline = time.monotonic() + 120
    while len([e for e in os.listdir(sandbox.root) if e.startswith("ready-")]) < len(kinds):
        if time.monotonic() > deadline or any(l.process.poll() is not None for l in launches):
            break
        time.sleep(0.02)
    common.write_file(go, "")
    for launch in launches:
        launch.code, launch.out, launch.err, _ = common.finish(launch.process, 60)
        launch.read_times(sandbox.root)
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
    status = entry.get("status")
    if status in RUN_STATUSES:
        return status
    if status in COMMAND_STATUSES:
        return COMMAND_STATUSES[status]
    reason = str(entry.get("reason"))
    for prefix in ("lock held", "rescheduled", "paused"):
        if status == "skipped" and reason.startswith(prefix):
            return prefix
    return "%s (%s)" % (status, reason[:60])


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
        if expected is not None and recorded_as(entries[0]) not in expected:
            problems.append("a %s that exited %s is recorded as %s" % (
                launch.kind, launch.code, recorded_as(entries[0])))
        launch.entry = entries[0]
    strangers = [entry for entry in history if entry.get("pid") not in pids]
    if strangers:
        problems.append("%d history entries of no launch: %r" % (len(strangers), strangers[0]))
    return problems


def run_problems(sandbox, history):
    """The runs in history order are the runs in the order they ran (the
    counter), each failure counted since the last success or reset."""
    problems = []
    runs = [entry for entry in history if entry.get("status") in RUN_STATUSES]
    ran = read_lines(sandbox.path("ran"))
    if len(ran) != len(runs):
        problems.append("the command ran %d times, the history has %d runs" % (len(ran), len(runs)))
    failures, number = 0, 0
    for entry in history:
        if entry.get("status") == "reset":
            failures = 0
        if entry.get("status") not in RUN_STATUSES:
            continue
        number += 1
        expected = "failed" if fails(number) else "success"
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
    for key in run_job.RUN_KEYS:
        if state.get(key) != last.get(key):
            problems.append("state %s is %r, the last run's is %r" % (key, state.get(key), last.get(key)))
            break
    successes = [entry for entry in runs if entry["status"] == "success"]
    if vandalised and last["status"] != "success":
        successes = []
    if successes and state.get("last_success") != successes[-1]["start"]:
        problems.append("state last_success %r, the last success started %r" % (
            state.get("last_success"), successes[-1]["start"]))
    since = history[history.index(last) + 1:]
    failures = 0 if any(entry.get("status") == "reset" for entry in since) \
        else last.get("consecutive_failures")
    if state.get("consecutive_failures") != failures:
        problems.append("state consecutive_failures %r, the last run's and resets since say %r"
                        % (state.get("consecutive_failures"), failures))
    skips_since = [entry for entry in since if entry.get("status") == "skipped"]
    expected = skips_since[-1]["reason"] if skips_since else None
    if state.get("last_skip_reason") != expected:
        problems.append("state last_skip_reason %r, expected %r" % (
            state.get("last_skip_reason"), expected))
    return problems + pause_mark_problems(state, history)


def pause_mark_problems(state, history):
    """The state is paused as the last pause or resume in the history says:
    by whom and why of the last pause, since the first of those in a row."""
    commands = [entry for entry in history if entry.get("status") in ("paused", "resumed")]
    since = None
    for entry in commands:
        if entry["status"] == "resumed":
            since = None
        elif since is None:
            since = entry
    if since is None:
        if any(state.get(key) is not None for key in run_job.PAUSE_KEYS):
            return ["the last command was %s, yet the state says paused %r" % (
                "a resume" if commands else "none", state.get("paused"))]
        return []
    last = commands[-1]
    expected = {"paused": since["start"], "paused_time": since["start_time"],
                "paused_by": last.get("by"), "pause_reason": last.get("reason")}
    for key, value in expected.items():
        if state.get(key) != value:
            return ["after the last pause, state %s is %r, expected %r" % (key, state.get(key), value)]
    return []


def pause_problems(launches):
    """A start decided while the job was surely paused is a paused skip; a
    paused skip was decided while it may have been. A pause or resume takes
    effect between its recorded start and the return of its run_job.main,
    in history order; a run decides between the call of run_job.main and
    its recorded start, a skip between its recorded start and the return."""
    commands = sorted((launch for launch in launches if launch.kind in ("pause", "resume")),
                      key=lambda launch: launch.history_index)
    surely, maybe = [], []
    for index, command in enumerate(commands):
        if command.kind != "pause":
            continue
        following = commands[index + 1] if index + 1 < len(commands) else None
        surely.append((command.returned + SLACK,
                       following.entry["start_time"] - SLACK if following else float("inf")))
        maybe.append((command.entry["start_time"] - SLACK,
                      following.returned + SLACK if following else float("inf")))
    problems = []
    for launch in launches:
        if launch.kind not in ("run", "cron run"):
            continue
        what = recorded_as(launch.entry)
        if what in RUN_STATUSES:
            decided = (launch.called, launch.entry["start_time"] + SLACK)
        else:
            decided = (launch.entry["start_time"] - SLACK, launch.returned)
        if what != "paused" and any(start <= decided[0] and decided[1] <= end
                                    for start, end in surely):
            problems.append("a %s decided while the job was surely paused is recorded as %s"
                            % (launch.kind, what))
        if what == "paused" and not any(start <= decided[1] and decided[0] <= end
                                        for start, end in maybe):
            problems.append("a %s is recorded as a paused skip, decided while no pause "
                            "was in effect" % launch.kind)
    return problems[:1]


def leftovers(sandbox, set_aside_too=True):
    """Temporary files left behind, and set-aside ones unless SET_ASIDE_TOO is false."""
    found = []
    for directory in ("run", "state", "log"):
        for root, dirs, files in os.walk(sandbox.path(directory)):
            found.extend(entry for entry in dirs + files
                         if entry.endswith(".tmp") or set_aside_too and ".bad-" in entry)
    return ["left behind: %s" % ", ".join(sorted(found)[:3])] if found else []


class Background(object):
    """A thread doing step() on the state file every PAUSE() seconds within
    a `with` block."""

    def __init__(self, sandbox, pause):
        self.path = sandbox.state(NAME)
        self.pause = pause
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.work)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exception):
        self.stopped.set()
        self.thread.join()

    def work(self):
        while not self.stopped.wait(self.pause()):
            self.step()


class Reader(Background):
    """Reads the state all along, as --status does (no lock): every read
    must find a whole record of the job."""

    def __init__(self, sandbox):
        Background.__init__(self, sandbox, lambda: 0.002)
        self.reads = 0
        self.problem = None

    def step(self):
        try:
            with open(self.path, "rb") as stream:
                data = stream.read()
        except FileNotFoundError:
            return  # not yet written
        self.reads += 1
        try:
            state = json.loads(data.decode("utf-8"))
        except ValueError:
            state = None
        if (not isinstance(state, dict) or state.get("job") != NAME) and not self.problem:
            self.problem = "a reader found the state torn or invalid: %r" % data[:100]


class Vandal(Background):
    """Keeps replacing the state file, ignoring the state lock, by garbage,
    another job's record, a record of wrong types or a FIFO, each put in
    place by a rename (so never half-written)."""

    def __init__(self, sandbox, seed):
        rng = random.Random(seed)
        Background.__init__(self, sandbox, lambda: rng.uniform(0.005, 0.05))
        self.spare = sandbox.path("state", "vandal")
        self.rng = rng
        self.replaced = 0

    def step(self):
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
        failures = failures + 1 if fails(number) else 0
        recorded = entry.get("consecutive_failures")
        if type(recorded) is not int or not (0 < recorded <= failures if failures else recorded == 0):
            return ["run %d records consecutive_failures %r, at most %d (and 0 only after a success)"
                    % (number, recorded, failures)]
    return []


def count_outcomes(launches, counts):
    for launch in launches:
        entry = getattr(launch, "entry", None)
        outcome = recorded_as(entry) if entry else "exit %s" % launch.code
        counts[outcome] = counts.get(outcome, 0) + 1


def timing_problems(launches):
    missing = [launch for launch in launches if launch.returned is None]
    return ["a %s noted no times: its driver failed" % missing[0].kind] if missing else []


def write_job(sandbox):
    sandbox.write_job(NAME, common.job_text(job_command(sandbox), schedule="'%s'" % SCHEDULE,
                                            timeout="1m", tags="[%s]" % TAG))


def recorded(sandbox, launches, label, tally, counts):
    """Each launch's own problems, a trial each; (history, state, problems)
    of the round: each launch recorded once, as it ended."""
    for launch in launches:
        tally.check(launch_problems(launch), "launch" + label)
    problems = []
    history = read_history(sandbox, problems)
    state = read_state(sandbox, problems)
    problems += history_problems(launches, history)
    count_outcomes(launches, counts)
    return history, state, problems


def one_round(library, count, spread, rng, tally, counts, kinds):
    sandbox = common.Sandbox()
    label = ", with pauses" if kinds is MARK_KINDS else ""
    try:
        write_job(sandbox)
        with Reader(sandbox) as reader:
            launches = start_launches(sandbox, library, [rng.choice(kinds) for _ in range(count)],
                                      spread, rng)
        counts["state read"] = counts.get("state read", 0) + reader.reads
        history, state, problems = recorded(sandbox, launches, label, tally, counts)
        if reader.problem:
            problems.append(reader.problem)
        problems += run_problems(sandbox, history)
        problems += state_problems(state, history)
        problems += leftovers(sandbox)
        problems += timing_problems(launches)
        if not problems:
            for launch in launches:
                launch.history_index = history.index(launch.entry)
            problems += pause_problems(launches)
        tally.check(problems, "round of %d launches%s" % (count, label))
    finally:
        sandbox.remove()


def run(args):
    # Launches start within SPREAD seconds of the go-file: some runs, many skips.
    marked, count, spread = (1, 20, 0.6) if args.quick else (4, 50, 1.0)
    rng = random.Random(args.seed)
    tally = common.Tally(args.failures)
    library = overlap.compiled_library()
    counts = {}
    try:
        one_round(library, count, spread, rng, tally, counts, PLAIN_KINDS)
        for _ in range(marked):
            one_round(library, count, spread, rng, tally, counts, MARK_KINDS)
        vandal_round(library, count, spread, rng, tally, counts)
    finally:
        shutil.rmtree(library, True)
    figure = "%d rounds of %d launches (plain, %d with pauses, state replaced all along): %s" % (
        marked + 2, count, marked, ", ".join(
            "%s x%d" % item for item in sorted(counts.items(), key=lambda item: -item[1])))
    return tally.trials, tally.ok, figure


def vandal_round(library, count, spread, rng, tally, counts):
    """The round with the state file replaced all along: every launch still
    ends as it should and is recorded once; a last run, once the vandal
    stopped, leaves a valid state that holds it."""
    sandbox = common.Sandbox()
    try:
        write_job(sandbox)
        kinds = [rng.choice(PLAIN_KINDS) for _ in range(count)]
        with Vandal(sandbox, rng.random()) as vandal:
            launches = start_launches(sandbox, library, kinds, spread, rng)
        last = Launch("run", subprocess.Popen(
            [common.PYTHON, common.RUN_JOB] + launch_arguments("run", sandbox.config, None),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=sandbox.root))
        last.code, last.out, last.err, _ = common.finish(last.process, 30)
        launches.append(last)
        counts["state replaced"] = counts.get("state replaced", 0) + vandal.replaced
        history, state, problems = recorded(sandbox, launches, ", the state replaced all along",
                                            tally, counts)
        problems += vandalised_run_problems(history)
        problems += state_problems(state, history, vandalised=True)
        problems += leftovers(sandbox, set_aside_too=False)
        tally.check(problems, "round of %d launches, the state replaced all along" % count)
    finally:
        sandbox.remove()
