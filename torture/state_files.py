"""state files: a job's state, history and state lock replaced, between two
runs, by anything hostile: garbage, a cut record, another job's record,
values of the wrong type, out of range or not finite, nested objects, NaN,
control characters, a 2 MB file, a FIFO, a symlink to /dev/zero or to a file
outside, a directory; or put there by the job itself as it runs. --status
shows it (exit 0, no traceback, no control character); the job still runs
(a succeeding one exits 0 and is silent, a failing one exits 1 with one
line); what is not a record is set aside (renamed NAME.*.bad-*), which the
run's log (a `records` note), its history line and the state (`set_aside`)
say, and --status shows; what is a record of the job, however odd its
values, is read without harm and leaves a valid state; the next run records
normally; a file a symlink pointed to is never written. A state lock that is
not a regular file is said in one stderr line (exit 0, the job ran, or 77).
Every process runs with a time limit."""

import concurrent.futures
import json
import os
import resource
import sys

import common

sys.path.insert(0, common.REPO)
import run_job  # noqa: E402

GOOD, FAILING = "/bin/true", "/bin/false"
CONTROL_CHARACTERS = [bytes([code]) for code in range(0x20) if code not in (0x0a,)] + [b"\x7f"]
SECRET = "precious outside file\n"


def limited_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def record(name, **values):
    """A state line as run-job writes it."""
    state = {"job": name, "status": "success", "reason": "success", "exit_code": 0,
             "signal": None, "start": "2026-01-01T00:00:00.000+0000",
             "start_time": 1767225600.0, "duration": 0.1, "log": "/nonexistent.log",
             "pid": 1, "logging_error": None, "set_aside": None, "consecutive_failures": 0}
    state.update(values)
    return run_job.json_line(state).encode("utf-8", "surrogateescape")


def raw_record(name, text):
    """A record of job NAME with TEXT (raw JSON, maybe not JSON) as its last value."""
    return ('{"job": "%s", "status": "failed", "consecutive_failures": %s}\n' % (name, text)).encode()


# (label, what is put in place, whether the file must be set aside: True,
# False (read as it is), None (either)). A maker gets the job name and the
# path of a file outside, and returns bytes, or a callable that puts
# something else at the path.
STATE_CASES = [
    ("garbage bytes", lambda name, outside: bytes(range(256)) * 4, True),
    ("empty", lambda name, outside: b"", True),
    ("a cut record", lambda name, outside: record(name)[:57], True),
    ("two records", lambda name, outside: record(name) * 2, True),
    ("another job's record", lambda name, outside: record("other"), True),
    ("a record without job", lambda name, outside: b'{"status": "success"}\n', True),
    ("a JSON list", lambda name, outside: b'["job", "%s"]\n' % name.encode(), True),
    ("a nested object", lambda name, outside: raw_record(name, '{"a": {"b": 1}}'), True),
    ("a list value", lambda name, outside: raw_record(name, '[1, 2]'), True),
    ("NaN", lambda name, outside: raw_record(name, "NaN"), True),
    ("Infinity", lambda name, outside: raw_record(name, "Infinity"), True),
    ("a number that overflows to inf (1e999)", lambda name, outside: raw_record(name, "1e999"), None),
    ("every number 1e999", lambda name, outside: record(
        name, status="failed", start_time="@", duration="@", last_success_time="@",
        consecutive_failures="@", exit_code="@", pid="@").replace(b'"@"', b"1e999"), None),
    ("every number -1e999", lambda name, outside: record(
        name, status="failed", start_time="@", duration="@", last_success_time="@",
        consecutive_failures="@", exit_code="@", pid="@").replace(b'"@"', b"-1e999"), None),
    ("a huge float", lambda name, outside: raw_record(name, "1.7e308"), None),
    ("a 300-digit integer", lambda name, outside: raw_record(name, "9" * 300), None),
    ("a 5000-digit integer", lambda name, outside: raw_record(name, "9" * 5000), None),
    ("a negative count", lambda name, outside: raw_record(name, "-5"), None),
    ("strings where numbers belong", lambda name, outside: record(
        name, consecutive_failures="x", start_time="x", duration="x", exit_code="x",
        last_success_time="x", pid="x"), None),
    ("booleans and nulls where numbers belong", lambda name, outside: record(
        name, consecutive_failures=True, start_time=None, duration=False, exit_code=True,
        pid=None), None),
    ("numbers where strings belong", lambda name, outside: record(
        name, status=5, reason=1.5, start=7, log=3, last_success=1, set_aside=8,
        last_skip=9, last_skip_reason=10, logging_error=11), None),
    ("control characters in strings", lambda name, outside: record(
        name, status="failed\x1b]0;title\x07", reason="line\nbreak\x1b[31m",
        start="\r\x1b[2J", log="\x00", set_aside="\x1b[5m", last_success="\x9b31m",
        last_skip_reason="\x1b[1m", logging_error="\x1b[1m"), None),
    ("marks cleared by hand (false, 0, empty)", lambda name, outside: record(
        name, paused=False, paused_by="", halted=0, halt_reason=""), False),
    # A mark, however odd its values, is honoured until --resume or --reset clears it.
    ("a pause mark of the wrong types", lambda name, outside: record(
        name, paused=2, paused_time="x", paused_by=6, pause_reason=3), "paused"),
    ("a pause mark with control characters", lambda name, outside: record(
        name, paused="\x1b[2J", paused_time=1e308, paused_by="\x1b]0;title\x07",
        pause_reason="a\nb\r\x1b[31m\x9b"), "paused"),
    ("a halt mark of the wrong types", lambda name, outside: record(
        name, halted=4, halted_time="x", halt_reason=5.5, consecutive_failures=9), "halted"),
    ("a halt mark with control characters", lambda name, outside: record(
        name, halted="\x1b[2J", halted_time=-1e308, halt_reason="a\nb\r\x1b[31m\x9b"),
     "halted"),
    ("backoff after a huge count and times", lambda name, outside: record(
        name, status="failed", consecutive_failures=10 ** 30, start_time=1e308,
        duration=1e308), "backoff"),
    ("backoff after a negative count and times", lambda name, outside: record(
        name, status="failed", consecutive_failures=-5, start_time=-1e308,
        duration=-1.0), "backoff"),
    ("invalid UTF-8", lambda name, outside: raw_record(name, '"\xff\xfe"').replace(
        b"\xc3\xbf\xc3\xbe", b"\xff\xfe"), None),
    ("a 2 MB file", lambda name, outside: record(name) + b" " * (2 << 20), True),
    ("a FIFO", lambda name, outside: lambda path: os.mkfifo(path, 0o644), True),
    ("a symlink to /dev/zero", lambda name, outside: lambda path: os.symlink("/dev/zero", path), True),
    ("a symlink to a record outside", lambda name, outside: lambda path: os.symlink(outside, path), True),
    ("a dangling symlink", lambda name, outside: lambda path: os.symlink(outside + ".none", path), True),
    ("a directory", lambda name, outside: lambda path: os.mkdir(path), True),
]

HISTORY_CASES = [
    ("garbage bytes", lambda name, outside: bytes(range(256)) * 4, False),
    ("a cut last line", lambda name, outside: record(name) + record(name)[:40], False),
    ("a 3 MB file", lambda name, outside: b"x" * (3 << 20), True),
    ("a FIFO", lambda name, outside: lambda path: os.mkfifo(path, 0o644), True),
    ("a symlink to /dev/zero", lambda name, outside: lambda path: os.symlink("/dev/zero", path), True),
    ("a symlink to a file outside", lambda name, outside: lambda path: os.symlink(outside, path), True),
    ("a directory", lambda name, outside: lambda path: os.mkdir(path), True),
]

LOCK_CASES = [
    ("garbage bytes", lambda name, outside: bytes(range(256)) * 4, False),
    ("a 2 MB file", lambda name, outside: b"x" * (2 << 20), False),
    ("a directory", lambda name, outside: lambda path: os.mkdir(path), "refused"),
    ("a FIFO", lambda name, outside: lambda path: os.mkfifo(path, 0o644), "refused"),
    ("a symlink to /dev/zero", lambda name, outside: lambda path: os.symlink("/dev/zero", path), "refused"),
    ("a symlink to a file outside", lambda name, outside: lambda path: os.symlink(outside, path), "refused"),
]



class ByTheJob(object):
    """The job's own command puts it in place while it runs (SCRIPT, a shell
    script with {path} and {outside}), so the run's record finds it."""

    def __init__(self, script):
        self.script = script

    def command(self, path, outside):
        return "/bin/sh -c '%s'" % self.script.format(path=path, outside=outside)


BY_THE_JOB_CASES = [
    ("garbage bytes", lambda name, outside: ByTheJob("printf garbage > {path}"), "state"),
    ("a FIFO", lambda name, outside: ByTheJob("rm -f {path}; mkfifo {path}"), True),
    ("a symlink to a file outside", lambda name, outside: ByTheJob("rm -f {path}; ln -s {outside} {path}"), True),
    ("a directory", lambda name, outside: ByTheJob("rm -f {path}; mkdir {path}"), True),
]

# A failing run counts the failures recorded before it: these, odd counts.
FAILING_TOO = {"a number that overflows to inf (1e999)", "every number 1e999",
               "a 300-digit integer", "a negative count", "strings where numbers belong"}
HISTORY_1_CASES = {"a 3 MB file", "a FIFO", "a symlink to a file outside"}

QUICK = {("state", "garbage bytes"), ("state", "every number 1e999"),
         ("state", "control characters in strings"), ("state", "a FIFO"),
         ("state", "a symlink to a record outside"),
         ("history", "a cut last line"), ("history", "a symlink to a file outside"),
         ("state lock", "a directory"),
         ("state", "a pause mark with control characters"),
         ("state", "a halt mark with control characters"),
         ("state, by the job as it runs,", "a symlink to a file outside"),
         ("history, by the job as it runs,", "garbage bytes")}


def put(path, made):
    if os.path.lexists(path):
        os.unlink(path)
    if callable(made):
        made(path)
    else:
        common.write_file(path, made)


def read(path):
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None


def last_history_entry(sandbox, name):
    data = read(os.path.join(sandbox.path("state"), name + ".history")) or b""
    lines = data.splitlines()
    if not lines:
        return None, "the history is empty"
    try:
        return json.loads(lines[-1].decode("utf-8")), None
    except ValueError:
        return None, "the history's last line is not JSON: %r" % lines[-1][-120:]


def valid_state(sandbox, name):
    """(state, problem): the state must be JSON and a record of the job."""
    data = read(sandbox.state(name))
    if data is None:
        return None, "no state after the run"
    try:
        state = json.loads(data.decode("utf-8"))
    except ValueError:
        return None, "the state is not JSON after the run: %r" % data[:160]
    if not isinstance(state, dict) or state.get("job") != name:
        return None, "the state is not a record of the job: %r" % data[:120]
    failures = state.get("consecutive_failures")
    if type(failures) is not int or failures < 0:
        return None, "consecutive_failures is %r after a run" % (failures,)
    return state, None


def invoke(sandbox, args):
    """(problems, code, out, err) of one run-job with a time limit."""
    code, out, err, _ = sandbox.run(args, timeout=10, preexec_fn=limited_memory)
    what = " ".join(args)
    if code is common.HUNG:
        return ["%s hung" % what], code, out, err
    if b"Traceback" in err:
        return ["%s: traceback: %s" % (what, common.last_line(err))], code, out, err
    return [], code, out, err


def status_problems(sandbox, name, must_mention=None):
    problems, code, out, err = invoke(sandbox, ["--status", name])
    if problems:
        return problems
    if code != 0:
        return ["--status exited %s: %s" % (code, common.last_line(err))]
    shown = out + err
    if SECRET.encode() in shown:
        return ["--status printed the outside file"]
    bad = [c for c in CONTROL_CHARACTERS if c in shown]
    if bad or b"\xc2\x9b" in shown:
        return ["--status printed control character %r: %r" % ((bad or [b"\x9b"])[0], shown[:200])]
    if must_mention and must_mention.encode() not in shown:
        return ["--status does not show %r: %r" % (must_mention, shown[-200:])]
    return []


def run_problems(sandbox, name, command):
    """A run of the job: a succeeding one exits 0 silently, a failing one 1
    with one line; either leaves a valid state."""
    problems, code, out, err = invoke(sandbox, [name])
    if problems:
        return problems
    if command == GOOD and (code != 0 or out or err):
        return ["the run exited %s, printed %r" % (code, (out + err)[:200])]
    if command == FAILING and (code != 1 or out or len(err.splitlines()) != 1):
        return ["the failing run exited %s, printed %r" % (code, (out + err)[:200])]
    return []


def set_aside_files(sandbox, path):
    directory, base = os.path.split(path)
    return [entry for entry in os.listdir(directory) if entry.startswith(base + ".bad-")]


def set_aside_problems(sandbox, name, path, expected):
    """After the first run: the run recorded, and the bad file renamed and
    said so, or the record read as it is."""
    entry, problem = last_history_entry(sandbox, name)
    state, state_problem = valid_state(sandbox, name)
    problem = problem or state_problem
    if problem:
        return [problem]
    if entry.get("pid") != state.get("pid") or entry.get("status") not in ("success", "failed"):
        return ["the run is not the history's last record: %r" % entry]
    aside = set_aside_files(sandbox, path)
    if expected is None:
        expected = bool(aside)  # either is a promise kept
    if not expected:
        return ["set aside a file that is a record of the job: %s" % aside] if aside else []
    if not aside:
        return ["the bad file was not set aside"]
    problems = []
    for where, values in (("history line", entry), ("state", state)):
        if aside[0] not in str(values.get("set_aside")):
            problems.append("the run's %s does not say it set %s aside: %r" % (
                where, os.path.basename(path), values.get("set_aside")))
    logs = sandbox.logs(name)
    notes = [value for key, value in common.footer(read(logs[-1]) or b"") if key == "records"] \
        if logs else []
    if not any(aside[0] in note for note in notes):
        problems.append("the run's log has no `records` note about %s" % aside[0])
    problems += status_problems(sandbox, name, must_mention=aside[0])
    return problems


def next_run_problems(sandbox, name, command):
    problems = run_problems(sandbox, name, command)
    if problems:
        return ["the next run: " + problems[0]]
    entry, problem = last_history_entry(sandbox, name)
    state, state_problem = valid_state(sandbox, name)
    problem = problem or state_problem
    if problem:
        return ["after the next run: " + problem]
    expected = "success" if command == GOOD else "failed"
    if entry.get("status") != expected or entry.get("pid") != state.get("pid"):
        return ["the next run is recorded as %r in history, state %r" % (
            entry.get("status"), state.get("status"))]
    if entry.get("set_aside") or state.get("set_aside"):
        return ["the next run still says it set something aside: %r" % entry.get("set_aside")]
    return []


def leftovers(sandbox, name):
    found = [entry for directory in ("run", "state") for entry in os.listdir(sandbox.path(directory))
             if entry.startswith(name + ".") and entry.endswith(".tmp")
             or entry.startswith("." + name + ".")]
    return ["left behind: %s" % ", ".join(found[:3])] if found else []


def file_case(sandbox, number, role, label, maker, expected, command):
    name = "c%02d" % number
    outside = sandbox.path("outside-%s" % name)
    common.write_file(outside, record(name) if role.startswith("state") else SECRET)
    before = read(outside)
    path = {"state": sandbox.state(name),
            "history": os.path.join(sandbox.path("state"), name + ".history"),
            "history.1": os.path.join(sandbox.path("state"), name + ".history.1"),
            "state lock": os.path.join(sandbox.path("run"), name + ".state.lock")}[role.split(",")[0]]
    common.write_file(sandbox.state(name), record(name))
    if role.startswith("history"):
        common.write_file(os.path.join(sandbox.path("state"), name + ".history"), record(name))
    made = maker(name, outside)
    if isinstance(made, ByTheJob):
        sandbox.write_job(name, common.job_text(made.command(path, outside), timeout="10s"))
        if expected == "state":  # garbage: a state is set aside, a history is not
            expected = role.startswith("state")
    else:
        sandbox.write_job(name, "command: %s\ntimeout: 10s\n%s" % (
            command, "backoff: true\n" if expected == "backoff" else ""))
        put(path, made)
    problems = status_problems(sandbox, name)
    if expected == "refused":
        problems += refused_problems(sandbox, name, path)
    elif expected in MARK_EXPECTATIONS:
        problems = problems or mark_problems(sandbox, name, command, expected)
    else:
        problems = problems or run_problems(sandbox, name, command)
        problems = problems or set_aside_problems(sandbox, name, path, expected)
        sandbox.write_job(name, "command: %s\ntimeout: 10s\n" % command)
        problems = problems or next_run_problems(sandbox, name, command)
    if read(outside) != before:
        problems.append("the file outside a symlink pointed to was written")
    problems += leftovers(sandbox, name)
    return problems


# What a run does with an odd mark, and what clears it: (exit code, history
# reasons that start so, the command that clears it).
MARK_EXPECTATIONS = {"paused": (0, ("paused",), "--resume"),
                     "halted": (69, ("halted",), "--reset"),
                     "backoff": (0, ("backing off", "success"), "--reset")}


def mark_problems(sandbox, name, command, expected):
    """A state whose pause, halt or backoff mark has odd values: the run
    honours it (a quiet skip, or 69 with one line), --status shows it, the
    command that clears it does, and the next run records normally."""
    code, reasons, clear = MARK_EXPECTATIONS[expected]
    problems, got, out, err = invoke(sandbox, [name])
    if problems:
        return problems
    if got != code or out or (err if code == 0 else common.one_line_error(err, ("run-job",))):
        return ["the run with %s exited %s, printed %r" % (expected, got, (out + err)[:200])]
    bad = [c for c in CONTROL_CHARACTERS if c in err]
    if bad or b"\xc2\x9b" in err:
        return ["the run printed control character %r: %r" % ((bad or [b"\x9b"])[0], err[:200])]
    entry, problem = last_history_entry(sandbox, name)
    if problem:
        return [problem]
    said = str(entry.get("reason")) if entry.get("status") == "skipped" else entry.get("status")
    if not said.startswith(reasons):
        return ["the run with %s is recorded as %s (%s)" % (expected, entry.get("status"), said)]
    problems = status_problems(sandbox, name)
    if problems:
        return problems
    problems, got, out, err = invoke(sandbox, [clear, name])
    if problems or got != 0 or out or err:
        return problems or ["%s exited %s, printed %r" % (clear, got, (out + err)[:200])]
    entry, problem = last_history_entry(sandbox, name)
    if problem or entry.get("status") != clear[2:].replace("resume", "resumed"):
        return [problem or "%s is recorded as %r" % (clear, entry.get("status"))]
    return next_run_problems(sandbox, name, command)


def refused_problems(sandbox, name, path):
    """A state lock that is not a regular file: the run says so in one line
    (it may run the job, or refuse, 77); once the lock is put right, the next
    run records normally."""
    problems, code, out, err = invoke(sandbox, [name])
    if problems:
        return problems
    if code not in (0, 77):
        return ["exited %s with the state lock replaced: %s" % (code, common.last_line(err))]
    wrong = common.one_line_error(err, ("run-job",))
    if wrong:
        return ["with the state lock replaced: %s" % wrong]
    if os.path.basename(path).encode() not in err:
        return ["the refusal does not name the state lock: %s" % common.last_line(err)]
    if os.path.isdir(path) and not os.path.islink(path):
        os.rmdir(path)
    else:
        os.unlink(path)
    return next_run_problems(sandbox, name, GOOD)


def cases(quick):
    found = []
    for role, table in (("state", STATE_CASES), ("history", HISTORY_CASES),
                        ("history.1", HISTORY_CASES), ("state lock", LOCK_CASES),
                        ("state, by the job as it runs,", BY_THE_JOB_CASES),
                        ("history, by the job as it runs,", BY_THE_JOB_CASES)):
        for label, maker, expected in table:
            if quick and (role, label) not in QUICK:
                continue
            if role == "history.1" and label not in HISTORY_1_CASES:
                continue
            found.append((role, label, maker, expected, GOOD))
            if role == "state" and label in FAILING_TOO and not quick:
                found.append((role, label, maker, expected, FAILING))
    return found


def run(args):
    tally = common.Tally(args.failures)
    sandbox = common.Sandbox()
    try:
        chosen = cases(args.quick)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(file_case, sandbox, number, role, label, maker, expected, command)
                       for number, (role, label, maker, expected, command) in enumerate(chosen)]
            for future, (role, label, maker, expected, command) in zip(futures, chosen):
                tally.check(future.result(), "%s replaced by %s%s" % (
                    role, label, " (a failing job)" if command == FAILING else ""))
    finally:
        sandbox.remove()
    figure = "%d state, history and state lock files replaced by hostile ones; %d kept every promise" % (
        tally.trials, tally.ok)
    return tally.trials, tally.ok, figure
