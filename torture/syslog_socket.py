"""syslog socket: runs whose syslog socket (`syslog_socket`) is gone, stale, full,
of the wrong type, or replaced while the job runs by a regular file, a
directory, a FIFO or a symlink (dangling, to a FIFO, to another live socket):
each run's exit code, state and output stay right, a successful run prints
nothing, nothing hangs; a live socket receives the start and the outcome."""

import json
import os
import socket
import time

import common

GOOD = "/bin/true"
FAILING = "/bin/sh -c 'exit 3'"
SLOW_RUN = 10  # seconds: a run sending to a full socket must not wait for it


class Receiver(object):
    """A Unix datagram socket bound at PATH (nobody reads it unless asked)."""

    def __init__(self, path):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(path)
        self.socket.setblocking(False)

    def drain(self):
        messages = []
        while True:
            try:
                messages.append(self.socket.recv(65536).decode("utf-8", "replace"))
            except BlockingIOError:
                return messages

    def fill(self, path):
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.setblocking(False)
        try:
            while True:
                sender.sendto(b"<14>torture: filler", path)
        except BlockingIOError:
            pass
        finally:
            sender.close()

    def close(self):
        self.socket.close()


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)


def replacement_command(kind, path, other):
    """Shell words that put KIND at PATH (the job does it, mid-run)."""
    quoted = "'%s'" % path
    steps = {
        "regular file": "echo x > %s" % quoted,
        "directory": "mkdir %s" % quoted,
        "FIFO": "mkfifo %s" % quoted,
        "dangling symlink": "ln -s /nonexistent/log %s" % quoted,
        "symlink to a FIFO": "mkfifo %s.fifo && ln -s %s.fifo %s" % (quoted, path, quoted),
        "symlink to a live socket": "ln -s '%s' %s" % (other, quoted),
    }
    return "rm -f %s && %s" % (quoted, steps[kind])


def read_state(sandbox, name):
    try:
        with open(sandbox.state(name), "rb") as stream:
            return json.loads(stream.read().decode("utf-8"))
    except (OSError, ValueError) as error:
        return {"unreadable": str(error)}


def outcome_problems(sandbox, name, failing, result, logging_error):
    """What is wrong with a run's RESULT (exit, out, err, seconds) and state;
    LOGGING_ERROR: whether the state must (True), must not (False) or may
    (None) note a logging failure."""
    code, out, err, seconds = result
    if code is common.HUNG:
        return ["hung (killed after 30 s)"]
    problem = common.no_traceback(err)
    if problem:
        return [problem]
    if seconds > SLOW_RUN:
        return ["took %.1f s" % seconds]
    state = read_state(sandbox, name)
    expected = ("failed", 1) if failing else ("success", 0)
    if (state.get("status"), code) != expected:
        return ["exit %s, state %r: expected %s" % (code, state.get("status"), expected)]
    if not failing and (out or err):
        return ["a successful run printed %r" % (out + err)[:200]]
    if failing and not err.startswith(b"run-job: job %s failed (exit status 3)" % name.encode()):
        return ["the failing run's stderr: %r" % err[:200]]
    noted = state.get("logging_error") is not None
    if logging_error is not None and noted != logging_error:
        return ["logging_error %r" % state.get("logging_error")]
    return []


def static_cases(sandbox, address, failing):
    """(label, problems) of runs against a socket that stays what it is."""
    name = "static-%s" % ("bad" if failing else "ok")
    sandbox.write_job(name, common.job_text(FAILING if failing else GOOD, timeout="1m"))
    results = []
    remove(address)
    results.append(("gone", outcome_problems(
        sandbox, name, failing, sandbox.run([name]), False)))
    receiver = Receiver(address)
    receiver.close()
    results.append(("stale (nothing reads it)", outcome_problems(
        sandbox, name, failing, sandbox.run([name]), False)))
    remove(address)
    receiver = Receiver(address)
    try:
        result = sandbox.run([name])
        problems = outcome_problems(sandbox, name, failing, result, False)
        received = receiver.drain()
        if not problems and (len(received) != 2 or " started (pid " not in received[0]):
            problems = ["the live socket received %r" % received]
        results.append(("live", problems))
        receiver.fill(address)
        results.append(("full", outcome_problems(
            sandbox, name, failing, sandbox.run([name]), True)))
    finally:
        receiver.close()
    remove(address)
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stream.bind(address)
        stream.listen(1)
        results.append(("a stream socket", outcome_problems(
            sandbox, name, failing, sandbox.run([name]), True)))
    finally:
        stream.close()
    remove(address)
    return results


def replaced_case(sandbox, address, kind, failing, number):
    """A run whose job replaces the live socket at ADDRESS by KIND."""
    other = sandbox.path("other-%d.socket" % number)
    name = "replaced-%d" % number
    live, target = Receiver(address), Receiver(other)
    try:
        command = replacement_command(kind, address, other)
        if failing:
            command += " && exit 3"
        sandbox.write_job(name, common.job_text("/bin/sh -c \"%s\"" % command, timeout="1m"))
        problems = outcome_problems(sandbox, name, failing, sandbox.run([name]), False)
        started, finished = live.drain(), target.drain()
        if not problems and (len(started) != 1 or " started (pid " not in started[0]):
            problems = ["the socket replaced received %r" % started]
        expected = 1 if kind == "symlink to a live socket" else 0
        if not problems and len(finished) != expected:
            problems = ["the socket the symlink names received %r" % finished]
        return problems
    finally:
        live.close()
        target.close()
        for path in (address, address + ".fifo", other):
            remove(path)


def crontab_case(sandbox, address):
    """cron-generate writing a crontab with the syslog socket full: written,
    exit 0, a warning at most, no traceback, no hang."""
    crontab = sandbox.path("crontab")
    sandbox.write_config(extra="syslog_socket: %s\noutput_crontab: %s\n" % (address, crontab))
    sandbox.write_job("scheduled", common.job_text(GOOD, schedule="'*/5 * * * *'"))
    receiver = Receiver(address)
    try:
        receiver.fill(address)
        code, out, err, seconds = sandbox.run([], tool="cron-generate")
    finally:
        receiver.close()
        remove(address)
    if code is common.HUNG or seconds > SLOW_RUN:
        return ["cron-generate hung or took %.1f s" % seconds]
    if code != 0 or b"Traceback" in err or not os.path.exists(crontab):
        return ["cron-generate exited %s: %r" % (code, err[:200])]
    if err and not err.startswith(b"cron-generate: warning: logging: syslog socket "):
        return ["cron-generate printed %r" % err[:200]]
    return []


def suffix(failing):
    return " (a failing job)" if failing else ""


KINDS = ("regular file", "directory", "FIFO", "dangling symlink", "symlink to a FIFO",
         "symlink to a live socket")


def run(args):
    tally = common.Tally(args.failures)
    sandbox = common.Sandbox(prefix="pc-syslog-")
    address = sandbox.path("log.socket")
    sandbox.write_config(extra="syslog_socket: %s\n" % address)
    # --quick: the static cases with a succeeding job, each replacement once
    # with either outcome in turn; else three rounds of everything, both ways.
    if args.quick:
        static = [False]
        replaced = [(kind, number % 2 == 1) for number, kind in enumerate(KINDS)]
    else:
        static = [False, True] * 3
        replaced = [(kind, failing) for kind in KINDS for failing in (False, True)] * 3
    start = time.monotonic()
    try:
        for failing in static:
            for label, problems in static_cases(sandbox, address, failing):
                tally.check(problems, "socket " + label + suffix(failing))
        for number, (kind, failing) in enumerate(replaced):
            tally.check(replaced_case(sandbox, address, kind, failing, number),
                        "socket replaced mid-run by a %s%s" % (kind, suffix(failing)))
        tally.check(crontab_case(sandbox, address), "cron-generate, socket full")
    finally:
        sandbox.remove()
    figure = ("%d runs and crontab writes against a syslog socket gone, stale, full, of the "
              "wrong type or replaced mid-run (%s): %d kept outcome, state and quiet "
              "without hanging (%.1f s)" % (tally.trials, ", ".join(KINDS), tally.ok,
                                      time.monotonic() - start))
    return tally.trials, tally.ok, figure
