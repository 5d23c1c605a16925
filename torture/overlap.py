"""overlap: N simultaneous launches of one job (each process has imported
run_job and waits for a go-file, then, after its own delay if any, runs
`run-job --config CONFIG NAME`).

`overlap: skip` (the default): exactly one runs its command, every other
exits 75 (0 with allow_overtime), with the directories in place and on a
fresh server where none exists yet.

`overlap: wait` and `replace`: runs never overlap (each run writes its start
to a trace file and the experiment watches every process of the job by its
marker: no process of a run is seen alive after the next run started); at
most one launch waits at a time (the first run is held until every launch
has decided: besides it only one may be alive); every launch is recorded
exactly once in the history (a run, or a skip `lock held: ...` exiting 75);
the state file parses and agrees with the last run; no traceback; nothing of
the job is left. With `replace` (a command in its own process group with a
grandchild in its own session, and one deaf to SIGTERM with a short
kill_grace), once every launch has ended but one, exactly that one runs and
nothing of a replaced run lives; each replaced run is recorded as replaced,
`replaced by run-job pid N`, N a launch that ran; --kill-job stops the last.
"""

import json
import os
import py_compile
import random
import shutil
import subprocess
import tempfile
import time

import common

# A launch: python3 driver.py LIBRARY READY-PREFIX GO-FILE DELAY ARGUMENTS...
# It notes in times-PID beside READY-PREFIX when it called run_job.main and
# when that returned (torture/state.py reads them).
DRIVER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import run_job
open(sys.argv[2] + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
time.sleep(float(sys.argv[4]))
called = time.time()
try:
    code = run_job.main(sys.argv[5:])
finally:
    with open(os.path.join(os.path.dirname(sys.argv[2]), "times-%d" % os.getpid()), "w") as times:
        times.write("%r %r" % (called, time.time()))
sys.exit(code)
"""

# In every process of a run: the run's id, PID-NANOSECONDS (its shell's pid
# and start: a pid may come again), which the shell puts in its environment
# by executing itself once more.
RUN_VARIABLE = "TORTURE_RUN"
NAME_THE_RUN = """\
if [ -z "$%(run)s" ]; then export %(run)s=$$-$(date +%%s%%N); exec /bin/sh "$0"; fi
"""

# One run of a `wait` job: its start and end in the trace; the first run
# holds until the release file exists (a later one finds it there).
WAIT_SCRIPT = NAME_THE_RUN + """\
echo "start $%(run)s $(date +%%s.%%N)" >> %(trace)s
i=0
while [ ! -e %(release)s ] && [ $i -lt 1200 ]; do sleep 0.02; i=$((i+1)); done
sleep %(pause)s
echo "end $%(run)s $(date +%%s.%%N)" >> %(trace)s
"""

# One run of a `replace` job: runs until stopped, with a grandchild in its
# own session; DEAF ignores SIGTERM (its processes inherit that).
REPLACE_SCRIPT = NAME_THE_RUN + """\
%(deaf)s
echo "start $%(run)s $(date +%%s.%%N)" >> %(trace)s
setsid sleep 60 &
exec sleep 60
"""


def compiled_library():
    library = tempfile.mkdtemp(prefix="pc-torture-library-")
    shutil.copy(common.RUN_JOB, library)
    py_compile.compile(os.path.join(library, "run_job.py"), doraise=True)
    return library


def start_launches(sandbox, library, name, delays):
    """One launch of job NAME per delay, all released at once by the go-file
    once every one has imported run_job; each waits its delay, then runs."""
    driver = sandbox.path("driver.py")
    common.write_file(driver, DRIVER)
    ready, go = sandbox.path("ready-"), sandbox.path("go")
    processes = []
    for delay in delays:
        processes.append(subprocess.Popen(
            [common.PYTHON, driver, library, ready, go, "%.3f" % delay,
             "--config", sandbox.config, name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            cwd=sandbox.root, start_new_session=True))
    deadline = time.monotonic() + 120
    while len([e for e in os.listdir(sandbox.root) if e.startswith("ready-")]) < len(delays):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    common.write_file(go, "")
    return processes


def alive(processes):
    return [process for process in processes if process.poll() is None]


# -- overlap: skip

def skip_round(library, launches, fresh, allow_overtime, tally, codes_seen):
    sandbox = common.Sandbox(directories=not fresh)
    try:
        ran = sandbox.path("ran")
        release = sandbox.path("release")
        command = "/bin/sh -c 'echo $$ >> %s; i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done'" % (ran, release)
        keys = {"timeout": "2m"}
        if allow_overtime:
            keys["allow_overtime"] = "true"
        sandbox.write_job("busy", common.job_text(command, **keys))
        processes = start_launches(sandbox, library, "busy", [0] * launches)
        # Every launch but the one running ends on its own; then release it.
        deadline = time.monotonic() + 120
        while len(alive(processes)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        common.write_file(release, "")
        label = "skip, %s, %s" % ("fresh" if fresh else "directories present",
                                  "allow_overtime" if allow_overtime else "plain")
        results = []
        for process in processes:
            code, _, err, _ = common.finish(process, 60)
            results.append((code, err))
        runs = 0
        if os.path.exists(ran):
            with open(ran) as stream:
                runs = len(stream.read().split())
        winners = 0
        for code, err in results:
            codes_seen[code] = codes_seen.get(code, 0) + 1
            problems = []
            expected = (0,) if allow_overtime else (0, 75)
            if code not in expected:
                problems.append("exit %s, expected %s: %s" % (
                    code, " or ".join(map(str, expected)), common.last_line(err)))
            if code == 0 and not allow_overtime:
                winners += 1
            if b"Traceback" in err:
                problems.append("traceback: %s" % common.last_line(err))
            tally.check(problems, label)
        problems = []
        if runs != 1:
            problems.append("the command ran %d times, not once" % runs)
        if not allow_overtime and winners != 1:
            problems.append("%d launches exited 0, not one" % winners)
        tally.check(problems, label)
        return runs
    finally:
        sandbox.remove()


# -- overlap: wait and replace

class Watch(object):
    """Looks again and again at the job's live processes (found by the
    marker) and notes when a process of each run (by RUN_VARIABLE) was last
    seen."""

    def __init__(self, token):
        self.mark = ("%s=%s" % (common.MARK_VARIABLE, token)).encode()
        self.run_prefix = ("%s=" % RUN_VARIABLE).encode()
        self.last_seen = {}

    def look(self):
        """{pid: run id} of the job's live processes, now (None: a shell
        before it named its run)."""
        seen = time.time()  # before: each process found was alive after it
        runs = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % entry, "rb") as stream:
                    environ = stream.read().split(b"\0")
                if self.mark not in environ:
                    continue
                with open("/proc/%s/stat" % entry, "rb") as stream:
                    fields = stream.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] in (b"Z", b"X"):
                continue
            run = None
            for item in environ:
                if item.startswith(self.run_prefix):
                    run = item[len(self.run_prefix):].decode()
            runs[int(entry)] = run
            if run is not None:
                self.last_seen[run] = seen
        return runs


def read_trace(path):
    """[(word, run id, time)] of the trace file's lines."""
    if not os.path.exists(path):
        return []
    lines = []
    with open(path) as stream:
        for line in stream:
            word, run, when = line.split()
            lines.append((word, run, float(when)))
    return lines


def shell_pid(run):
    return int(run.split("-")[0])


def overlap_problems(trace, watch):
    """Whether a process of a run was seen alive after a later run's command
    started; and the closest call: the least time from the last sight of a
    run's process to the next run's start (negative: they overlapped)."""
    starts = sorted((when, run) for word, run, when in trace if word == "start")
    problems, closest = [], None
    for index in range(1, len(starts)):
        start, run = starts[index]
        for _, earlier in starts[:index]:
            gap = start - watch.last_seen.get(earlier, float("-inf"))
            if earlier == starts[index - 1][1]:
                closest = gap if closest is None else min(closest, gap)
            if gap < 0:
                problems.append("a process of run %s was alive %.3f s after run %s started"
                                % (earlier, -gap, run))
    return problems, closest


def read_history(sandbox, name):
    """(entries, problem or None)."""
    path = sandbox.path("state", name + ".history")
    entries = []
    if not os.path.exists(path):
        return entries, "no history file"
    with open(path, "rb") as stream:
        for number, line in enumerate(stream, 1):
            try:
                entry = json.loads(line.decode("utf-8"))
            except ValueError:
                return entries, "history line %d does not parse: %r" % (number, line[:200])
            if not isinstance(entry, dict):
                return entries, "history line %d is not an object: %r" % (number, line[:200])
            entries.append(entry)
    return entries, None


EXPECTED_STATUS = {0: ("success", "replaced"), 1: ("killed",), 75: ("skipped",)}


def record_problems(sandbox, name, processes, codes):
    """Every launch recorded exactly once, as its exit code says (0 a
    success or replaced, 1 killed, 75 a skip `lock held: ...`); the state parses and is
    the last run's. Returns (problems, history)."""
    history, problem = read_history(sandbox, name)
    if problem:
        return [problem], history
    problems = []
    by_pid = {}
    for entry in history:
        by_pid.setdefault(entry.get("pid"), []).append(entry)
    for process, code in zip(processes, codes):
        entries = by_pid.pop(process.pid, [])
        if len(entries) != 1:
            problems.append("launch %d (exit %s) is in the history %d times" % (
                process.pid, code, len(entries)))
            continue
        entry = entries[0]
        if entry.get("status") not in EXPECTED_STATUS.get(code, ()):
            problems.append("launch %d exited %s but its record says %s (%s)" % (
                process.pid, code, entry.get("status"), entry.get("reason")))
        elif code == 75 and not str(entry.get("reason")).startswith("lock held"):
            problems.append("launch %d's skip has the reason %r" % (process.pid,
                                                                    entry.get("reason")))
    if by_pid:
        problems.append("history entries of no launch: %r" % sorted(by_pid, key=str))
    runs = [entry for entry in history if entry.get("status") != "skipped"]
    try:
        with open(sandbox.state(name)) as stream:
            state = json.load(stream)
    except (OSError, ValueError) as error:
        return problems + ["the state file does not parse: %s" % error], history
    if not isinstance(state, dict):
        problems.append("the state file holds no object")
    elif runs:
        for key in ("status", "pid", "start_time", "reason"):
            if state.get(key) != runs[-1].get(key):
                problems.append("the state's %s is %r, the last run's %r" % (
                    key, state.get(key), runs[-1].get(key)))
    return problems, history


def stderr_problem(code, err):
    if code == 0:
        return "exit 0 with output on stderr: %r" % err[:200] if err else None
    return common.one_line_error(err, ("run-job",))


def finish_launches(processes, watch, seconds=60):
    """(codes, errs) once every launch ended, WATCH looking meanwhile."""
    deadline = time.monotonic() + seconds
    while alive(processes) and time.monotonic() < deadline:
        watch.look()
        time.sleep(0.01)
    results = [common.finish(process, 1) for process in processes]
    return [result[0] for result in results], [result[2] for result in results]


def launch_problems(tally, label, codes, errs, expected):
    for code, err in zip(codes, errs):
        problems = []
        if code not in expected:
            problems.append("exit %s, expected %s: %s" % (
                code, " or ".join(map(str, expected)), common.last_line(err)))
        problem = stderr_problem(code, err)
        if problem:
            problems.append(problem)
        tally.check(problems, label)


def leftover_problems(token):
    left = common.wait_until_gone(token, 5)
    common.kill_marked(token)
    return ["%d processes of the job left: %s" % (len(left), left)] if left else []


def wait_round(library, launches, span, held, seed, tally):
    """`overlap: wait`, launches within SPAN seconds; HELD: the first run
    holds until every other launch has decided. Returns (runs, overlaps,
    closest gap between two runs, launches alive while held)."""
    sandbox = common.Sandbox()
    token = "wait-%d-%s" % (os.getpid(), os.path.basename(sandbox.root))
    label = "wait, %d within %gs%s" % (launches, span, ", the first run held" if held else "")
    try:
        trace, release = sandbox.path("trace"), sandbox.path("release")
        script = sandbox.path("job.sh")
        common.write_file(script, WAIT_SCRIPT % {"run": RUN_VARIABLE, "trace": trace,
                                                 "release": release, "pause": "0.15"})
        if not held:
            common.write_file(release, "")
        sandbox.write_job("queue", common.job_text("/bin/sh %s" % script, token,
                                                   overlap="wait", timeout="1m"))
        rng = random.Random(seed)
        delays = [rng.uniform(0, span) for _ in range(launches)]
        watch = Watch(token)
        processes = start_launches(sandbox, library, "queue", delays)
        most_alive = None
        if held:
            # Every launch decides while the first run holds: it runs, waits,
            # or exits 75; besides the run, at most one may wait.
            deadline = time.monotonic() + 30
            while len(alive(processes)) > 2 and time.monotonic() < deadline:
                watch.look()
                time.sleep(0.01)
            time.sleep(0.1)
            most_alive = len(alive(processes))
            tally.check(["%d launches alive while the first run holds: more than one waits"
                         % most_alive] if most_alive > 2 else [], label)
            common.write_file(release, "")
        codes, errs = finish_launches(processes, watch)
        launch_problems(tally, label, codes, errs, (0, 75))
        lines = read_trace(trace)
        problems, closest = overlap_problems(lines, watch)
        overlaps = len(problems)
        expected = []
        for word, run, _ in lines:
            if word == "start":
                expected.extend([("start", run), ("end", run)])
        if [(word, run) for word, run, _ in lines] != expected:
            problems.append("the trace's starts and ends interleave: %s" % (
                " ".join("%s %s" % (word, run) for word, run, _ in lines)[:200]))
        runs = len(expected) // 2
        if runs != codes.count(0):
            problems.append("%d runs in the trace, %d launches exited 0" % (runs,
                                                                           codes.count(0)))
        tally.check(problems, label + ": runs never overlap")
        problems, _ = record_problems(sandbox, "queue", processes, codes)
        tally.check(problems, label + ": every launch recorded once")
        tally.check(leftover_problems(token), label)
        return runs, overlaps, closest, most_alive
    finally:
        common.kill_marked(token)
        sandbox.remove()


def lock_record(sandbox, name):
    """{word: number} of the job lock's record ("pid N pgid N start T ...")."""
    try:
        with open(sandbox.path("run", name + ".lock"), "rb") as stream:
            words = stream.read(4096).split()
    except OSError:
        return {}
    record = {}
    for key, value in zip(words[0:8:2], words[1:8:2]):
        try:
            record[key.decode()] = float(value)
        except ValueError:
            pass
    return record


def wait_for(condition, seconds, watch):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        watch.look()
        time.sleep(0.01)
    return True


def survivor_problems(sandbox, processes, trace, watch):
    """Once every launch but one ended: that one runs its command (the lock
    says so), and nothing of a replaced run is alive. Returns (problems,
    survivor)."""
    left = alive(processes)
    if len(left) != 1:
        return ["%d launches alive once the others ended, not one" % len(left)], None
    survivor = left[0]

    def running():
        starts = [run for word, run, _ in read_trace(trace) if word == "start"]
        record = lock_record(sandbox, "latest")
        return bool(starts) and record.get("pid") == survivor.pid \
            and record.get("pgid") == shell_pid(starts[-1])
    if not wait_for(running, 10, watch):
        return ["the lock (%r) does not name the last launch %d running the last command"
                % (lock_record(sandbox, "latest"), survivor.pid)], survivor
    last = [run for word, run, _ in read_trace(trace) if word == "start"][-1]
    # Its shell became `sleep`, beside the grandchild in its own session.
    wait_for(lambda: len(watch.look()) >= 2, 5, watch)
    runs = watch.look()
    others = sorted(pid for pid, run in runs.items() if run != last)
    if others:
        return ["%d processes of replaced runs alive beside the last run: %s" % (
            len(others), others)], survivor
    if len(runs) != 2:
        return ["the last run has %d processes, not 2 (sleep and its grandchild)"
                % len(runs)], survivor
    return [], survivor


def replaced_problems(history, survivor):
    """Each run but the last (killed by --kill-job) was replaced, by a launch
    that ran. Returns (problems, number replaced)."""
    runs = [entry for entry in history if entry.get("status") != "skipped"]
    ran = set(entry.get("pid") for entry in runs)
    problems = []
    replaced = 0
    for entry in runs:
        reason = str(entry.get("reason"))
        if entry.get("pid") == survivor.pid:
            if entry.get("status") != "killed" or "replaced by" in reason:
                problems.append("the last run's record says %s (%s), not killed by "
                                "--kill-job" % (entry.get("status"), reason))
            continue
        words = reason.split()
        if entry.get("status") != "replaced" or not reason.startswith("replaced by run-job pid "):
            problems.append("run of launch %s recorded as %s (%s), not replaced" % (
                entry.get("pid"), entry.get("status"), reason))
        elif not words[4].isdigit() or int(words[4]) not in ran - {entry.get("pid")}:
            problems.append("run of launch %s replaced by %s, a launch that did not run" % (
                entry.get("pid"), words[4]))
        else:
            replaced += 1
    return problems, replaced


def replace_round(library, launches, span, deaf, seed, tally):
    """`overlap: replace`, launches within SPAN seconds (0: all at once), the
    command DEAF to SIGTERM or not. Returns (replaced runs, overlaps, closest
    gap between two runs)."""
    sandbox = common.Sandbox()
    token = "replace-%d-%s" % (os.getpid(), os.path.basename(sandbox.root))
    label = "replace, %s%s" % ("staggered over %gs" % span if span else "simultaneous",
                               ", deaf to SIGTERM" if deaf else "")
    try:
        trace = sandbox.path("trace")
        script = sandbox.path("job.sh")
        common.write_file(script, REPLACE_SCRIPT % {
            "run": RUN_VARIABLE, "trace": trace, "deaf": "trap '' TERM" if deaf else ""})
        sandbox.write_job("latest", common.job_text(
            "/bin/sh %s" % script, token, overlap="replace", timeout="2m",
            kill_grace="0.3s" if deaf else "5s"))
        rng = random.Random(seed)
        delays = [rng.uniform(0, span) for _ in range(launches)]
        watch = Watch(token)
        processes = start_launches(sandbox, library, "latest", delays)
        time_to_end = time.monotonic() + 60
        wait_for(lambda: len(alive(processes)) <= 1, 60, watch)
        problems, survivor = survivor_problems(sandbox, processes, trace, watch)
        tally.check(problems, label + ": exactly one runs at the end")
        code, _, err, _ = sandbox.run(["--kill-job", "latest"])
        tally.check(["--kill-job exited %s: %s" % (code, common.last_line(err))]
                    if code != 0 or err else [], label + ": --kill-job")
        codes, errs = finish_launches(processes, watch, max(5, time_to_end - time.monotonic()))
        launch_problems(tally, label, codes, errs, (0, 1, 75))
        problems, closest = overlap_problems(read_trace(trace), watch)
        tally.check(problems, label + ": runs never overlap")
        overlaps = len(problems)
        problems, history = record_problems(sandbox, "latest", processes, codes)
        tally.check(problems, label + ": every launch recorded once")
        replaced = 0
        if survivor is not None:
            problems, replaced = replaced_problems(history, survivor)
            tally.check(problems, label + ": replaced runs recorded so")
        tally.check(leftover_problems(token), label)
        return replaced, overlaps, closest
    finally:
        common.kill_marked(token)
        sandbox.remove()


def gap_text(gaps):
    gaps = [gap for gap in gaps if gap is not None]
    return "%.3f s" % min(gaps) if gaps else "none"


def run(args):
    quick = args.quick
    launches = 30 if quick else 200
    tally = common.Tally(args.failures)
    library = compiled_library()
    codes_seen = {}
    skip_runs = []
    try:
        for fresh, allow_overtime in ((False, False), (True, False), (True, True)):
            skip_runs.append(skip_round(library, launches, fresh, allow_overtime, tally,
                                        codes_seen))
        many, few, span = (12, 10, 1.2) if quick else (100, 40, 6.0)
        held_span = 0.5 if quick else 1.0
        held = wait_round(library, many, held_span, True, args.seed, tally)
        staggered = wait_round(library, few, span, False, args.seed, tally)
        replace_rounds = [(many, 0, False), (few, span, True)]
        if not quick:
            replace_rounds.append((few, span, False))
        replaced = [replace_round(library, count, stagger, deaf, args.seed, tally)
                    for count, stagger, deaf in replace_rounds]
    finally:
        shutil.rmtree(library, True)
    exits = ", ".join("%s x%d" % (code, count) for code, count in sorted(
        codes_seen.items(), key=lambda item: -1 if item[0] is None else item[0]))
    figure = ("skip: 3 rounds of %d launches (present, fresh, fresh+allow_overtime): the "
              "command ran %s times; exits %s" % (
                  launches, "/".join(map(str, skip_runs)), exits))
    waiter = ""
    if held[0] == 2 and held[2] is not None:
        waiter = ", the waiter %.3f s after the first run's last process" % held[2]
    figure += ("; wait: %d launches within %gs, the first run held: %d alive while held, "
               "ran %d%s; %d within %gs ran %d; %d overlaps (closest gap %s)" % (
                   many, held_span, held[3] or 0, held[0], waiter, few, span, staggered[0],
                   held[1] + staggered[1], gap_text([held[2], staggered[2]])))
    figure += ("; replace: %s: %s runs replaced; %d overlaps (closest gap %s)" % (
        ", ".join("%d %s%s" % (count, "within %gs" % stagger if stagger else "at once",
                               " deaf to SIGTERM" if deaf else "")
                  for count, stagger, deaf in replace_rounds),
        "/".join(str(result[0]) for result in replaced),
        sum(result[1] for result in replaced),
        gap_text([result[2] for result in replaced])))
    return tally.trials, tally.ok, figure
