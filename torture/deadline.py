"""deadline: jobs of every shape that outlive their timeout: zero processes
of the job survive run-job, which returns within timeout + kill_grace + 0.5 s
of the run's start, exits 124 and records the run as a timeout."""

import concurrent.futures
import json
import os
import random
import time

import common

TIMEOUT = 0.6
KILL_GRACE = 0.4
SLACK = 0.5

DAEMON = ("import os, sys, time\n"
          "if os.fork() == 0:\n"
          "    os.setsid()\n"
          "    if os.fork() == 0:\n"
          "        null = os.open(os.devnull, os.O_RDWR)\n"
          "        for fd in (0, 1, 2):\n"
          "            os.dup2(null, fd)\n"
          "        time.sleep(60)\n"
          "    os._exit(0)\n"
          "time.sleep(60)\n")

FLOOD = ("import os, signal, sys\n"
         "if sys.argv[1] == 'deaf':\n"
         "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "chunk = os.urandom(65536)\n"
         "while True:\n"
         "    os.write(1, chunk)\n"
         "    os.write(2, chunk[:1000] + b'\\n')\n")


def shapes(sandbox):
    """(name, command): each runs far past the deadline."""
    daemon = sandbox.path("daemon.py")
    flood = sandbox.path("flood.py")
    common.write_file(daemon, DAEMON)
    common.write_file(flood, FLOOD)
    python = common.PYTHON
    return [
        ("plain sleep", "/bin/sleep 60"),
        ("ignores SIGTERM", "/bin/sh -c 'trap \"\" TERM; while :; do /bin/sleep 0.05; done'"),
        ("grandchildren hold the pipes",
         "/bin/sh -c '/bin/sleep 60 & /bin/sh -c \"/bin/sleep 60 &\"; echo started; /bin/sleep 60'"),
        ("double-forked setsid daemon", "%s %s" % (python, daemon)),
        ("floods output", "%s %s %s" % (python, flood, "loud")),
        ("floods output, ignores SIGTERM", "%s %s %s" % (python, flood, "deaf")),
    ]


def trial(sandbox, name, token, command):
    sandbox.write_job(name, common.job_text(command, token, timeout=str(TIMEOUT),
                                            kill_grace="%ss" % KILL_GRACE))
    code, _, err, wall = sandbox.run([name], timeout=30)
    ended = time.time()
    left = common.marked_processes(token)
    problems = []
    if left:
        problems.append("%d processes of the job survived run-job" % len(left))
        common.kill_marked(token)
    if code != 124:
        problems.append("exit %s, not 124: %s" % (code, common.last_line(err)))
    try:
        with open(sandbox.state(name)) as stream:
            record = json.load(stream)
        status = record.get("status")
        # From the run's start (its `start_time`), where the deadline counts
        # from; the interpreter's start-up before it is in WALL.
        seconds = ended - float(record["start_time"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        status, seconds = "unreadable (%s)" % error, wall
    if seconds > TIMEOUT + KILL_GRACE + SLACK:
        problems.append("run-job returned %.2f s after the run started, over %.1f s" % (
            seconds, TIMEOUT + KILL_GRACE + SLACK))
    if status != "timeout":
        problems.append("state records %s, not timeout" % status)
    if b"Traceback" in err:
        problems.append("traceback: %s" % common.last_line(err))
    return problems, seconds, wall, len(left)


def run(args):
    trials = 12 if args.quick else 50
    rng = random.Random(args.seed)
    sandboxes = [common.Sandbox() for _ in range(2)]
    tally = common.Tally(args.failures)
    worst = {}
    survivors = 0
    worst_wall = 0
    plan = []
    for index in range(trials):
        sandbox = sandboxes[index % 2]
        shape_list = shapes(sandbox)
        shape, command = shape_list[index % len(shape_list)] if index < 2 * len(shape_list) \
            else rng.choice(shape_list)
        plan.append((sandbox, "deadline%d" % index, "deadline-%d-%d" % (os.getpid(), index),
                     shape, command))
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(trial, sandbox, name, token, command)
                       for sandbox, name, token, shape, command in plan]
            for future, (_, _, token, shape, _) in zip(futures, plan):
                problems, seconds, wall, left = future.result()
                worst_wall = max(worst_wall, wall)
                survivors += left
                worst[shape] = max(worst.get(shape, 0), seconds)
                tally.check(problems, shape)
    finally:
        for _, _, token, _, _ in plan:
            common.kill_marked(token)
        for sandbox in sandboxes:
            sandbox.remove()
    figure = ("%d surviving processes; timeout %ss + kill_grace %ss, bound %.1f s: worst return %.2f s "
              "after the run's start (%s), %.2f s with the interpreter's start-up" % (
                  survivors, TIMEOUT, KILL_GRACE, TIMEOUT + KILL_GRACE + SLACK, max(worst.values()),
                  ", ".join("%s %.2f" % item for item in sorted(worst.items(), key=lambda i: -i[1])[:2]),
                  worst_wall))
    return tally.trials, tally.ok, figure
