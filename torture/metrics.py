"""metrics: the metrics directory (metrics_directory) replaced, between two
runs, by a symlink to another directory, a FIFO, a regular file, nothing, or
a directory the service user cannot write; the job's .prom file replaced by
a FIFO, a symlink to a file outside or a directory; then swapped among all
of these over and over while runs and skips go on in parallel. Each run's
exit code and output are those of the job (a success silent, a failure one
line), its state records it (the outcome counters grow by exactly one per
start), nothing hangs, nothing is ever written through a symlink (the
directory a symlink leads to stays empty, the outside file unchanged), no
temporary file is left, a failure is noted (the state's metrics_error, the
log's `metrics` record), and every .prom file written parses strictly."""

import concurrent.futures
import os
import random
import stat
import sys
import threading

import common

sys.path.insert(0, common.REPO)
import run_job  # noqa: E402
from test_metrics import parse_exposition, samples_of  # noqa: E402

GOOD, FAILING = "/bin/true", "/bin/false"
SECRET = "precious outside file\n"
# Between two runs: what the metrics directory becomes, whether a run can
# still write its file (None: as root only), and what .prom path is made.
DIRECTORY_KINDS = ("directory", "symlink", "fifo", "file", "missing", "unwritable")
PROM_KINDS = ("fifo", "symlink", "directory")


class Place(object):
    """The sandbox's metrics directory and what is put in its place."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.path = sandbox.path("metrics")
        self.elsewhere = sandbox.path("elsewhere")  # where a symlink leads: must stay empty
        self.outside = sandbox.path("outside")
        self.graveyard = sandbox.path("graveyard")  # real metrics directories moved away
        for directory in (self.elsewhere, self.graveyard):
            os.mkdir(directory)
        common.write_file(self.outside, SECRET)
        self.moved = 0
        os.mkdir(self.path)

    def clear(self):
        """Move a real directory away (a run may be writing in it), remove anything else."""
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            os.chmod(self.path, 0o755)
            self.moved += 1
            os.rename(self.path, os.path.join(self.graveyard, str(self.moved)))
        elif os.path.lexists(self.path):
            os.unlink(self.path)

    def make(self, kind):
        self.clear()
        if kind in ("directory", "unwritable"):
            os.mkdir(self.path, 0o755 if kind == "directory" else 0o555)
        elif kind == "symlink":
            os.symlink(self.elsewhere, self.path)
        elif kind == "fifo":
            os.mkfifo(self.path)
        elif kind == "file":
            common.write_file(self.path, "not a directory\n")

    def make_prom(self, name, kind):
        path = os.path.join(self.path, "process_control_%s.prom" % name)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink":
            os.symlink(self.outside, path)
        else:
            os.mkdir(path)

    def harm(self):
        """What was written where it must not be, or None."""
        if os.listdir(self.elsewhere):
            return "written through a symlink: %s" % os.listdir(self.elsewhere)
        with open(self.outside) as outside:
            if outside.read() != SECRET:
                return "the file a .prom symlink led to was changed"
        return None

    def directories(self):
        found = [os.path.join(self.graveyard, entry) for entry in os.listdir(self.graveyard)]
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            found.append(self.path)
        return found

    def leftovers(self):
        """Temporary files or unparsable .prom files in any metrics directory."""
        problems = []
        for directory in self.directories():
            for entry in os.listdir(directory):
                path = os.path.join(directory, entry)
                if entry.endswith(".tmp"):
                    problems.append("a temporary file left: %s" % entry)
                elif entry.endswith(".prom") and stat.S_ISREG(os.lstat(path).st_mode):
                    try:
                        with open(path) as prom:
                            parse_exposition(prom.read())
                    except (AssertionError, ValueError) as error:
                        problems.append("%s does not parse: %s" % (entry, error))
        return problems


def read_state(sandbox, name):
    config = run_job.load_global_config(sandbox.config, {})
    return run_job.read_job_state(config, name) or {}


def counts(state):
    return dict((outcome, run_job.recorded_count(state, "count_" + outcome))
                for outcome in run_job.COUNTED_OUTCOMES)


def start_problems(sandbox, name, command, paused, before):
    """One start of job NAME (COMMAND, PAUSED): its exit code and output,
    and the one counter it adds; return (problems, state after)."""
    code, out, err, seconds = sandbox.run([name], timeout=30)
    if code is common.HUNG:
        return ["the run hung (killed after 30 s)"], {}
    expected = 0 if paused or command == GOOD else 1
    problems = []
    if code != expected or out or (expected == 0 and err):
        problems.append("exit %s, printed %r" % (code, (out + err)[:200]))
    elif expected == 1 and common.one_line_error(err) is not None:
        problems.append(common.one_line_error(err))
    state = read_state(sandbox, name)
    outcome = "skipped" if paused else "success" if command == GOOD else "failed"
    grown = dict(before, **{outcome: before[outcome] + 1})
    if counts(state) != grown:
        problems.append("counters %s after %s, not %s" % (counts(state), before, grown))
    return problems, state


def noted_problems(sandbox, name, state, paused, writable):
    """The failure noted (state and log) when the file could not be written,
    none when it could."""
    error = state.get("metrics_error")
    if writable:
        return [] if error is None else ["metrics_error although writable: %s" % error]
    if not error:
        return ["no metrics_error in the state"]
    if paused:
        return []  # a skip has no log
    logs = sandbox.logs(name)
    notes = [value for key, value in common.footer(read(logs[-1])) if key == "metrics"]
    return [] if notes == [error] else ["the log's metrics record %r is not %r" % (notes, error)]


def read(path):
    with open(path, "rb") as stream:
        return stream.read()


def prom_problems(place, name, state):
    """The job's file matches its state."""
    try:
        with open(os.path.join(place.path, "process_control_%s.prom" % name)) as prom:
            samples = samples_of(parse_exposition(prom.read()), name)
    except (OSError, AssertionError, ValueError) as error:
        return ["the .prom file: %s" % error]
    wanted = counts(state)
    found = dict((outcome, samples.get("runs_total/" + outcome)) for outcome in wanted)
    return [] if found == wanted else ["the file says %s, the state %s" % (found, wanted)]


JOBS = (("good", GOOD, False), ("failing", FAILING, False), ("paused", GOOD, True))


def set_up_jobs(sandbox):
    for name, command, paused in JOBS:
        sandbox.write_job(name, common.job_text(command, timeout="1m"))
        if paused:
            code, _, err, _ = sandbox.run(["--pause", name])
            if code != 0:
                raise RuntimeError("--pause %s: exit %s %r" % (name, code, err))


def between_runs(tally):
    """Each kind of metrics directory, and each kind of .prom path, in turn."""
    cases = [(kind, None) for kind in DIRECTORY_KINDS] + [("directory", kind) for kind in PROM_KINDS]
    for kind, prom in cases:
        if kind == "unwritable" and common.IS_ROOT:
            continue  # root writes there
        sandbox = common.Sandbox(extra="metrics_directory: metrics\n")
        try:
            place = Place(sandbox)
            set_up_jobs(sandbox)
            place.make(kind)
            label = "metrics directory %s" % kind if prom is None else ".prom path a %s" % prom
            for name, command, paused in JOBS:
                if prom is not None:
                    place.make_prom(name, prom)
                before = counts(read_state(sandbox, name))
                problems, state = start_problems(sandbox, name, command, paused, before)
                writable = kind == "directory" and prom != "directory"
                if not problems:
                    problems = noted_problems(sandbox, name, state, paused, writable)
                if not problems and writable:
                    problems = prom_problems(place, name, state)
                problems += [harm for harm in [place.harm()] if harm] + place.leftovers()
                tally.check(problems, "%s (%s job)" % (label, name))
        finally:
            sandbox.remove()


def during_runs(tally, quick, seed):
    """Runs and skips of the three jobs, two at a time, while a thread
    swaps the metrics directory among every kind as fast as it can."""
    sandbox = common.Sandbox(extra="metrics_directory: metrics\n")
    stop = threading.Event()
    swaps = [0]
    try:
        place = Place(sandbox)
        set_up_jobs(sandbox)
        chooser = random.Random(seed)
        kinds = [kind for kind in DIRECTORY_KINDS if kind != "unwritable" or not common.IS_ROOT]

        def swap():
            while not stop.is_set():
                place.make(chooser.choice(kinds))
                swaps[0] += 1
                stop.wait(0.002)
        swapper = threading.Thread(target=swap)
        swapper.start()
        starts = [JOBS[number % len(JOBS)] for number in range(9 if quick else 60)]
        lock = threading.Lock()  # one start of a job at a time: counters are checked per start
        job_locks = dict((name, threading.Lock()) for name, _, _ in JOBS)

        def one(job):
            name, command, paused = job
            with job_locks[name]:
                with lock:
                    before = counts(read_state(sandbox, name))
                problems, state = start_problems(sandbox, name, command, paused, before)
                if not problems and state.get("metrics_error") is not None \
                        and "metrics" not in state["metrics_error"] \
                        and "cannot" not in state["metrics_error"]:
                    problems.append("an odd metrics_error: %s" % state["metrics_error"])
                return problems
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for job, problems in zip(starts, pool.map(one, starts)):
                tally.check(problems + [harm for harm in [place.harm()] if harm],
                            "while swapped (%s job)" % job[0])
        stop.set()
        swapper.join()
        place.make("directory")
        for name, command, paused in JOBS:  # the directory back: the next start writes it
            before = counts(read_state(sandbox, name))
            problems, state = start_problems(sandbox, name, command, paused, before)
            if not problems:
                problems = noted_problems(sandbox, name, state, paused, True) \
                    + prom_problems(place, name, state)
            tally.check(problems + place.leftovers(), "directory back (%s job)" % name)
    finally:
        stop.set()
        sandbox.remove()
    return swaps[0]


def run(args):
    tally = common.Tally(args.failures)
    between_runs(tally)
    between = tally.trials
    swaps = during_runs(tally, args.quick, args.seed)
    figure = ("%d starts after the metrics directory or a .prom path was replaced, %d while "
              "it was swapped %d times; %d kept every promise"
              % (between, tally.trials - between, swaps, tally.ok))
    return tally.trials, tally.ok, figure
