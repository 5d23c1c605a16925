"""signals: SIGTERM, SIGINT and SIGHUP to run-job while its job runs: the
whole tree stopped, the run recorded as killed, the log ends with its footer."""

import json
import os
import signal
import time

import common

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def shapes(started):
    return [
        ("plain sleep", "/bin/sh -c 'echo x > %s; exec /bin/sleep 60'" % started),
        ("grandchildren", "/bin/sh -c '/bin/sleep 60 & /bin/sh -c \"/bin/sleep 60 &\"; "
                          "echo x > %s; /bin/sleep 60'" % started),
        ("ignores SIGTERM", "/bin/sh -c 'trap \"\" TERM INT HUP; echo x > %s; "
                            "while :; do /bin/sleep 0.05; done'" % started),
    ]


def trial(sandbox, index, number, shape, command, token):
    name = "signal%d" % index
    started = sandbox.path("started%d" % index)
    sandbox.write_job(name, common.job_text(command, token, timeout="1m", kill_grace="0.5s"))
    process = sandbox.popen([name])
    deadline = time.monotonic() + 10
    while not os.path.exists(started) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    problems = []
    if not os.path.exists(started):
        problems.append("the job never started")
    process.send_signal(number)
    code, _, err, _ = common.finish(process, 10)
    left = common.marked_processes(token)
    if code is common.HUNG:
        problems.append("run-job did not end within 10 s of the signal")
    if left:
        problems.append("%d processes of the job survived" % len(left))
        common.kill_marked(token)
    try:
        with open(sandbox.state(name)) as stream:
            status = json.load(stream).get("status")
    except (OSError, ValueError) as error:
        status = "unreadable (%s)" % error
    if status != "killed":
        problems.append("state records %s, not killed" % status)
    logs = sandbox.logs(name)
    if not logs:
        problems.append("no log")
    else:
        with open(logs[-1], "rb") as stream:
            log = stream.read()
        problem = common.log_ends_with_footer(log)
        if problem:
            problems.append(problem)
        elif dict(common.footer(log)).get("outcome") != "killed":
            problems.append("the log's outcome is %s, not killed" % dict(common.footer(log)).get("outcome"))
    if b"Traceback" in err:
        problems.append("traceback: %s" % common.last_line(err))
    return problems, code


def run(args):
    repeat = 1 if args.quick else 3
    sandbox = common.Sandbox()
    tally = common.Tally(args.failures)
    codes = {}
    index = 0
    try:
        for _ in range(repeat):
            for number in SIGNALS:
                for shape_index in range(len(shapes(""))):
                    shape, command = shapes(sandbox.path("started%d" % index))[shape_index]
                    token = "signals-%d-%d" % (os.getpid(), index)
                    problems, code = trial(sandbox, index, number, shape, command, token)
                    name = signal.Signals(number).name
                    codes.setdefault(name, set()).add(code)
                    tally.check(problems, "%s, %s" % (name, shape))
                    index += 1
    finally:
        sandbox.remove()
    figure = "%d runs (3 signals x plain, grandchildren, deaf to SIGTERM); run-job exits %s" % (
        index, ", ".join("%s %s" % (name, "/".join(map(str, sorted(c, key=str)))) for name, c in codes.items()))
    return tally.trials, tally.ok, figure
