"""hooks: on_failure, on_recovery and on_success hooks that hang, ignore
SIGTERM, flood output, fork children and daemons, die of signals, exit
non-zero, vanish (a missing program, one that closes its output and lingers)
or signal run-job itself, after runs that succeed, fail, time out, recover
or are killed. Each run exits with its job's own code and records its own
outcome, hook_error says exactly whether a hook failed, no hook runs after a
killed run, run-job returns within its bound, and no process is left."""

import concurrent.futures
import json
import os
import random
import signal
import time

import common
import deadline

HOOK_TIMEOUT = 0.5
KILL_GRACE = 0.3
JOB_TIMEOUT = 0.3
SLACK = 1.5
LOG_MAX = 16 << 20  # a hook's 1 MiB of output, stamped, and the job's few lines

# deadline's double-forking setsid daemon, its parent exiting at once.
DAEMON = deadline.DAEMON[:deadline.DAEMON.rindex("time.sleep(60)")]

FLOOD = ("import os, sys\n"
         "chunk = os.urandom(65536)\n"
         "for _ in range(int(sys.argv[1])):\n"
         "    os.write(1, chunk)\n"
         "    os.write(2, chunk[:999] + b'\\n')\n")

def shapes(sandbox):
    """(shape, command, what its hook_error holds or None when it succeeds)."""
    daemon, flood = sandbox.path("daemon.py"), sandbox.path("flood.py")
    common.write_file(daemon, DAEMON)
    common.write_file(flood, FLOOD)
    python = common.PYTHON
    timed_out = "hook_timeout %gs reached" % HOOK_TIMEOUT
    return [
        ("hangs", "/bin/sleep 60", timed_out),
        ("hangs deaf to SIGTERM",
         "/bin/sh -c 'trap \"\" TERM; while :; do /bin/sleep 0.05; done'", timed_out),
        ("floods output without end", "%s %s 1000000" % (python, flood), timed_out),
        ("floods 2 MiB and exits 0", "%s %s 32" % (python, flood), None),
        ("forks children that keep running",
         "/bin/sh -c '/bin/sleep 60 & /bin/sh -c \"/bin/sleep 60 &\"; echo started'", None),
        ("double-forks a setsid daemon", "%s %s" % (python, daemon), None),
        ("leaves a child writing to the log",
         "/bin/sh -c '(while :; do echo tick; /bin/sleep 0.01; done) &'", None),
        ("dies of SIGKILL", "/bin/sh -c 'kill -KILL $$'", "killed by SIGKILL"),
        ("dies of SIGSEGV", "/bin/sh -c 'kill -SEGV $$'", "killed by SIGSEGV"),
        ("exits 7", "/bin/sh -c 'exit 7'", "exit status 7"),
        ("vanished: its program is missing", "/nonexistent/hook", "cannot start"),
        ("vanishes: closes its output and lingers",
         "/bin/sh -c 'exec >&- 2>&- </dev/null; /bin/sleep 60'", timed_out),
        ("sends SIGTERM to run-job", "/bin/sh -c 'kill -TERM $PPID; /bin/sleep 60'",
         "stopped by SIGTERM sent to run-job"),
    ]


# outcome: (the job's command and keys, run-job's exit code, the status
# recorded, the hooks that run)
OUTCOMES = {
    "success": ("/bin/true", {}, 0, "success", ["on_success"]),
    "failed": ("/bin/sh -c \"echo oops >&2; exit 3\"", {}, 1, "failed", ["on_failure"]),
    "timeout": ("/bin/sleep 60", {"timeout": JOB_TIMEOUT}, 124, "timeout", ["on_failure"]),
    "recovery": ("/bin/true", {}, 0, "success", ["on_recovery", "on_success"]),
    "killed": ("/bin/sleep 60", {}, 1, "killed", []),
}


def hook_keys(command):
    quoted = "'%s'" % command.replace("'", "''")
    return {"on_failure": quoted, "on_recovery": quoted, "on_success": quoted,
            "hook_timeout": "%ss" % HOOK_TIMEOUT, "kill_grace": "%ss" % KILL_GRACE}


def read_state(sandbox, name):
    try:
        with open(sandbox.state(name)) as stream:
            return json.load(stream)
    except (OSError, ValueError) as error:
        return {"status": "unreadable (%s)" % error}


def run_killed(sandbox, name, token):
    """Start run-job NAME, SIGTERM it once its job runs: (code, out, err,
    seconds from the signal)."""
    start = time.monotonic()
    process = sandbox.popen([name])
    while not common.marked_processes(token) and time.monotonic() - start < 10:
        time.sleep(0.01)
    time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    return common.finish(process, 30)


def hook_error_problem(recorded, hooks, reason):
    """What is wrong with the hook_error RECORDED after HOOKS ran, each
    failing for REASON (None: none fails), or None."""
    if reason is None or not hooks:
        if recorded is not None:
            return "hook_error %r recorded for hooks that did not fail" % recorded
        return None
    parts = (recorded or "").split("; ")
    if len(parts) != len(hooks) or not all(
            part.startswith(key + ": ") and reason in part for key, part in zip(hooks, parts)):
        return "hook_error %r, not %s for each of %s" % (recorded, reason, ", ".join(hooks))
    return None


def trial(sandbox, name, token, outcome, shape, command, shape_error):
    job_command, keys, code_wanted, status_wanted, hooks = OUTCOMES[outcome]
    keys = dict(keys, **hook_keys(command))
    if outcome == "recovery":  # one failure first, without hooks
        sandbox.write_job(name, common.job_text("/bin/sh -c \"exit 3\"", token))
        sandbox.run([name], timeout=30)
    sandbox.write_job(name, common.job_text(job_command, token, **keys))
    if outcome == "killed":
        code, out, err, seconds = run_killed(sandbox, name, token)
    else:
        code, out, err, seconds = sandbox.run([name], timeout=30)
    left = common.marked_processes(token)
    problems = []
    if left:
        problems.append("%d processes survived run-job" % len(left))
        common.kill_marked(token)
    if code != code_wanted:
        problems.append("exit %s, not %s: %s" % (code, code_wanted, common.last_line(err)))
    bound = len(hooks) * (HOOK_TIMEOUT + KILL_GRACE) + SLACK
    if outcome in ("timeout", "killed"):
        bound += JOB_TIMEOUT + KILL_GRACE
    if seconds > bound:
        problems.append("run-job took %.2f s, over %.1f s" % (seconds, bound))
    state = read_state(sandbox, name)
    if state.get("status") != status_wanted:
        problems.append("state records %s, not %s" % (state.get("status"), status_wanted))
    failures_wanted = {"failed": 1, "timeout": 1}.get(outcome, 0)
    if outcome == "killed":
        failures_wanted = 0
    if state.get("consecutive_failures") != failures_wanted:
        problems.append("consecutive_failures %s, not %d"
                        % (state.get("consecutive_failures"), failures_wanted))
    problem = hook_error_problem(state.get("hook_error"), hooks, shape_error)
    if problem is not None:
        problems.append(problem)
    if code_wanted == 0 and (out or err):
        problems.append("a successful run printed %r" % (out + err)[:200])
    # A hook that stops run-job leaves the next one unstarted.
    started = hooks[:1] if "SIGTERM" in (shape_error or "") else hooks
    problems.extend(log_problems(state.get("log"), started))
    if b"Traceback" in err:
        problems.append("traceback: %s" % common.last_line(err))
    return problems, seconds, len(left)


def log_problems(path, hooks):
    """What is wrong with the run's log PATH after HOOKS started."""
    if not path or not os.path.isfile(path):
        return ["no log: %r" % path]
    if os.path.getsize(path) > LOG_MAX:
        return ["the log is %d bytes, over %d" % (os.path.getsize(path), LOG_MAX)]
    with open(path, "rb") as stream:
        log = stream.read()
    problems = []
    footer = common.log_ends_with_footer(log)
    if footer is not None:
        problems.append(footer)
    ran = [value.split(" ", 1)[0] for key, value in common.footer(log) if key == "hook"]
    if sorted(set(ran)) != sorted(hooks):
        problems.append("the hooks run were %s, not %s" % (ran, hooks))
    if len(common.rebuild(log, b"H")) > len(hooks) << 20:
        problems.append("more than 1 MiB of a hook's output logged")
    return problems


def run(args):
    trials = 14 if args.quick else 40
    rng = random.Random(args.seed)
    sandboxes = [common.Sandbox() for _ in range(2)]
    tally = common.Tally(args.failures)
    plan = []
    outcomes = sorted(OUTCOMES)
    for index in range(trials):
        sandbox = sandboxes[index % 2]
        shape_list = shapes(sandbox)
        if index < len(shape_list):  # every shape once, then at random
            shape, command, error = shape_list[index]
        else:
            shape, command, error = rng.choice(shape_list)
        outcome = outcomes[index % len(outcomes)] if index < len(shape_list) \
            else rng.choice(outcomes)
        plan.append((sandbox, "hooks%d" % index, "hooks-%d-%d" % (os.getpid(), index),
                     outcome, shape, command, error))
    worst = 0.0
    counts = {}
    survivors = 0
    shape_count = len(shapes(sandboxes[0]))
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(trial, *entry) for entry in plan]
            for future, entry in zip(futures, plan):
                problems, seconds, left = future.result()
                worst = max(worst, seconds)
                survivors += left
                counts[entry[3]] = counts.get(entry[3], 0) + 1
                tally.check(problems, "%s after %s" % (entry[4], entry[3]))
    finally:
        for entry in plan:
            common.kill_marked(entry[2])
        for sandbox in sandboxes:
            sandbox.remove()
    figure = ("%d hook shapes after runs %s; hook_timeout %ss + kill_grace %ss: slowest "
              "run-job %.2f s, %d surviving processes" % (
                  shape_count, ", ".join("%s x%d" % item for item in sorted(counts.items())),
                  HOOK_TIMEOUT, KILL_GRACE, worst, survivors))
    return tally.trials, tally.ok, figure
