"""Tests for run_job.py: real processes, files and locks in temporary directories.

Run as `python3 test_run_job.py` (what `make test` does): it runs every
test_*.py beside it, each in its own process, as many at once as there are
cores (at most 4; $TEST_JOBS sets it), and ends with one summary line.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402


class ErrorTests(unittest.TestCase):
    def test_config_error_reads_source_line_column(self):
        error = run_job.ConfigError("tab used as indentation; use spaces", "a.yaml", 3, 1)
        self.assertEqual(str(error), "a.yaml:3:1: tab used as indentation; use spaces")
        self.assertEqual((error.source, error.line, error.column), ("a.yaml", 3, 1))
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.exit_code, 78)

    def test_config_error_without_position(self):
        self.assertEqual(str(run_job.ConfigError("bad")), "bad")
        self.assertEqual(str(run_job.ConfigError("bad", "f")), "f: bad")



# ---- the lock, running, log, state (sections 6, 7, 8) -----------------------------

import contextlib  # noqa: E402
import errno  # noqa: E402
import fcntl  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pwd  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

# Runs execute_job or kill_job in a process of its own, as run-job would:
# argv[1] is a JSON spec {"config", "job", "action", "live", "slow_start", "rss"},
# and "ready", "go" to start many at once: each makes file READY+PID, then waits for GO.
DRIVER = r"""
import json, os, sys, time
sys.path.insert(0, %r)
import run_job
assert run_job.__file__.startswith(sys.path[0]), run_job.__file__
spec = json.load(open(sys.argv[1]))
if spec.get("ready"):
    open(spec["ready"] + str(os.getpid()), "w").close()
while spec.get("go") and not os.path.exists(spec["go"]):
    time.sleep(0.002)
config = run_job.GlobalConfig(**spec["config"])
try:
    if spec.get("action") == "kill":
        code = run_job.kill_job(config, spec["job"]["name"], "test", None)
    else:
        code = run_job.execute_job(config, run_job.Job(**spec["job"]),
                                   slow_start=spec.get("slow_start", False),
                                   live=spec.get("live"))
except run_job.ProcessControlError as error:
    sys.stderr.write("run-job: %%s\n" %% error)
    code = error.exit_code
if spec.get("rss"):  # peak RSS in KiB (VmHWM: ru_maxrss counts the parent's before exec)
    with open("/proc/self/status") as status, open(spec["rss"], "w") as rss:
        rss.write([line.split()[1] for line in status if line.startswith("VmHWM:")][0])
sys.exit(code)
"""


def setUpModule():
    # The drivers import a byte-compiled copy of run_job.py: compiling 4000
    # lines in each of a hundred drivers (PYTHONDONTWRITEBYTECODE) costs seconds.
    import py_compile
    global LIBRARY
    LIBRARY = tempfile.mkdtemp(prefix="run-job-test-library-")
    shutil.copy(os.path.join(HERE, "run_job.py"), LIBRARY)
    py_compile.compile(os.path.join(LIBRARY, "run_job.py"), doraise=True)


def tearDownModule():
    shutil.rmtree(LIBRARY, True)

STAMP_LENGTH = len("2026-11-27 11:40:00.123 ")
RECORD_PREFIX = re.compile(
    rb"20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{3} [OE#][|+] ")


def parse_log(log):
    """The records of a run log as (stamp, stream tag, mark, payload) tuples;
    checks each record's shape on the way."""
    records = []
    assert log.endswith(b"\n"), "a log ends with a whole record"
    for record in log[:-1].split(b"\n"):
        assert RECORD_PREFIX.match(record), record
        records.append((record[:STAMP_LENGTH], record[STAMP_LENGTH:STAMP_LENGTH + 1],
                        record[STAMP_LENGTH + 1:STAMP_LENGTH + 2], record[STAMP_LENGTH + 3:]))
    return records


def rebuild_streams(log):
    """The original bytes of stdout (b"O") and stderr (b"E") from a run log:
    a "|" record is a line whose newline the record's own ends, a "+" record
    a piece that did not end in a newline; "#" records are run-job's."""
    streams = {b"O": [], b"E": []}
    for _, tag, mark, payload in parse_log(log):
        if tag != b"#":
            streams[tag] += [payload, b"\n"] if mark == b"|" else [payload]
    return dict((tag, b"".join(pieces)) for tag, pieces in streams.items())


def notes(log):
    """run-job's own records as (key, value) text pairs."""
    pairs = []
    for _, tag, _, payload in parse_log(log):
        if tag == b"#":
            key, _, value = payload.decode("utf-8", "replace").partition(" ")
            pairs.append((key, value))
    return pairs


def alive(pid):
    """Whether PID is a live process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid) as stat_file:
            return stat_file.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("gave up waiting for %s" % predicate)
        time.sleep(0.005)


class RunnerTestCase(unittest.TestCase):
    """Temporary run, output and state directories; jobs run by a driver process."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="run-job-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.config_fields = {}
        for key in ("output_directory", "run_directory", "state_directory"):
            path = os.path.join(self.tmp, key.split("_")[0])
            os.mkdir(path)
            self.config_fields[key] = path
        self.config = run_job.GlobalConfig(**self.config_fields)
        self.driver = self.path("driver.py")
        with open(self.driver, "w") as driver:
            driver.write(DRIVER % LIBRARY)
        self.launched = []
        self.addCleanup(self._stop_launched)

    def _stop_launched(self):
        # SIGTERM: run-job stops its job's tree; then whatever still holds a
        # lock (orphans of a run-job killed with -9, or of a broken run-job).
        for process in self.launched:
            if process.poll() is None:
                process.terminate()
        for process in self.launched:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream:
                    stream.close()
        leaked = self._processes_started_here()
        run_directory = self.config.run_directory
        for entry in os.listdir(run_directory):
            run_job.stop_process_tree(functools.partial(
                run_job.lock_holders, os.path.join(run_directory, entry), True), 0)
        for info in self._processes_started_here():
            run_job.signal_verified(info, signal.SIGKILL)
        self.assertEqual(leaked, [], "processes left running")

    def _processes_started_here(self):
        """Live processes whose command line names this test's directory."""
        found = []
        for info in run_job._all_processes():
            try:
                with open("/proc/%d/cmdline" % info.pid, "rb") as cmdline:
                    if self.tmp.encode() in cmdline.read() and alive(info.pid):
                        found.append(info)
            except OSError:
                pass
        return found

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def job(self, commands, name="demo", **fields):
        fields.setdefault("kill_grace", 0.3)
        fields.setdefault("timeout", 20)
        fields.update(name=name, commands=commands)
        return fields

    def launch(self, job, action="execute", stdout=subprocess.PIPE, closed_stdio=False,
               preexec_fn=None, **spec):
        """Start a driver; CLOSED_STDIO starts it with descriptors 0, 1, 2 closed."""
        spec.update(config=self.config_fields, job=job, action=action)
        spec_path = self.path("spec-%d.json" % len(self.launched))
        with open(spec_path, "w") as spec_file:
            json.dump(spec, spec_file)
        argv = [sys.executable, self.driver, spec_path]
        if closed_stdio:
            argv = ["sh", "-c", '"$@" <&- >&- 2>&-', "sh"] + argv
        process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
        self.launched.append(process)
        return process

    def run_job(self, job, **spec):
        """(exit code, stdout, stderr) of one run-job run."""
        process = self.launch(job, **spec)
        stdout, stderr = process.communicate(timeout=30)
        return process.returncode, stdout, stderr

    def logs(self, name="demo"):
        """The job's logs, oldest first: NAME-DATE-TIME.log, then -1, -2..."""
        directory = self.path("output", name)

        def order(entry):
            stem = entry[len(name) + 1:-len(".log")].split("-")
            return stem[:2], int(stem[2]) if len(stem) > 2 else 0
        entries = sorted(os.listdir(directory), key=order)
        return [os.path.join(directory, entry) for entry in entries]

    def last_log(self, name="demo"):
        with open(self.logs(name)[-1], "rb") as log:
            return log.read()

    def read_pids(self, name):
        wait_for(lambda: os.path.exists(self.path(name + ".done")))
        with open(self.path(name)) as pids:
            return [int(word) for word in pids.read().split()]

    def lock_is_free(self, name="demo"):
        fd = os.open(run_job.lock_path(self.config, name), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)


# A job tree that ignores SIGTERM everywhere: the command, a background
# grandchild, and a daemon that escaped with setsid from a parent that exited
# (an orphan: only a subreaper still sees it). Writes their pids to PIDS,
# then creates PIDS.done.
STUBBORN_TREE = """
trap '' TERM
sleep 30 & echo $! >> {pids}
( setsid sh -c 'trap "" TERM; echo $$ >> {pids}; exec sleep 30' & )
sh -c 'trap "" TERM; while :; do sleep 1; done' & echo $! >> {pids}
echo $$ >> {pids}
while [ $(wc -l < {pids}) -lt 4 ]; do sleep 0.01; done
touch {pids}.done
while :; do sleep 1; done
"""


class LockTests(RunnerTestCase):
    def test_fifty_simultaneous_launches_run_the_command_once(self):
        go, release = self.path("go"), self.path("release")
        # The run holds the lock until every other launch has given up, so a
        # slow launcher on a loaded machine cannot arrive after it ended.
        job = self.job([["sh", "-c", "echo ran >> %s; while [ ! -e %s ]; do sleep 0.05; done"
                         % (self.path("ran"), release)]])
        os.mkdir(self.path("ready"))
        launches = [self.launch(job, go=go, ready=self.path("ready", "")) for _ in range(50)]
        wait_for(lambda: len(os.listdir(self.path("ready"))) == 50, 30)
        with open(go, "w"):
            pass
        wait_for(lambda: sum(process.poll() is not None for process in launches) == 49, 60)
        with open(release, "w"):
            pass
        codes = sorted(process.wait(timeout=30) for process in launches)
        self.assertEqual(codes, [0] + [75] * 49)
        with open(self.path("ran")) as ran:
            self.assertEqual(ran.read(), "ran\n")

    def test_a_run_finding_the_lock_held_exits_75_with_one_line_naming_the_holder(self):
        first = self.launch(self.job([["sh", "-c", "touch %s; sleep 30" % self.path("up")]]))
        wait_for(lambda: os.path.exists(self.path("up")))
        code, stdout, stderr = self.run_job(self.job([["true"]]))
        self.assertEqual((code, stdout), (75, b""))
        self.assertEqual(stderr.count(b"\n"), 1, stderr)
        self.assertIn(b"job demo is still running (pid %d, started " % first.pid, stderr)
        self.assertEqual(len(self.logs()), 1)

    def test_allow_overtime_exits_0_quietly(self):
        self.launch(self.job([["sh", "-c", "touch %s; sleep 30" % self.path("up")]]))
        wait_for(lambda: os.path.exists(self.path("up")))
        self.assertEqual(self.run_job(self.job([["true"]], allow_overtime=True)), (0, b"", b""))

    def test_running_info_while_running_and_after(self):
        self.assertIsNone(run_job.running_info(self.config, "demo"))
        pid_file = self.path("pid")
        first = self.launch(self.job([["sh", "-c", "echo $$ > %s; exec sleep 30" % pid_file]]))
        wait_for(lambda: os.path.getsize(pid_file) if os.path.exists(pid_file) else 0)
        with open(pid_file) as pid:
            job_pid = int(pid.read())
        info = run_job.running_info(self.config, "demo")
        self.assertEqual((info["pid"], info["pgid"], info["log"]),
                         (first.pid, job_pid, self.logs()[0]))
        self.assertLess(abs(info["start"] - time.time()), 10)
        self.assertFalse(self.lock_is_free())  # running_info took nothing
        first.send_signal(signal.SIGTERM)
        self.assertEqual(first.wait(timeout=10), 1)
        self.assertIsNone(run_job.running_info(self.config, "demo"))

    def test_kill_9_of_run_job_never_lets_a_run_overlap_and_kill_job_stops_the_orphans(self):
        pids = self.path("pids")
        orphaned = self.launch(self.job([["sh", "-c", STUBBORN_TREE.format(pids=pids)]]))
        job_pids = self.read_pids("pids")
        orphaned.kill()
        orphaned.wait()
        with open(run_job.lock_path(self.config, "demo")) as lock_file:
            # Has the lock file open but not the lock, like a run-job trying it.
            bystander = subprocess.Popen(["sleep", "30"], stdin=lock_file)
        self.addCleanup(bystander.wait)
        self.addCleanup(bystander.kill)
        time.sleep(0.05)
        self.assertTrue(all(alive(pid) for pid in job_pids))
        self.assertEqual(self.run_job(self.job([["true"]]))[0], 75)
        self.assertIsNotNone(run_job.running_info(self.config, "demo"))
        started = time.monotonic()
        self.assertEqual(run_job.kill_job(self.config, "demo", "test", None), 0)
        self.assertLess(time.monotonic() - started, 0.3 + 3.0)  # no hang: speed is bench's
        wait_for(lambda: not any(alive(pid) for pid in job_pids), 2)
        self.assertIsNone(bystander.poll())
        self.assertIsNone(run_job.running_info(self.config, "demo"))
        state = run_job.read_job_state(self.config, "demo")  # recorded by kill_job
        self.assertEqual((state["status"], state["log"]), ("killed", self.logs()[0]))
        self.assertIn("run-job (pid %d) had died" % orphaned.pid, state["reason"])
        self.assertEqual(state["pid"], orphaned.pid)  # that run's run-job, not the killer
        self.assertEqual(notes(self.last_log())[-3:-1], [("outcome", "killed"),
                                                         ("reason", state["reason"])])
        self.assertEqual(self.run_job(self.job([["true"]])), (0, b"", b""))

    def test_kill_job_stops_a_live_run_which_records_it_as_killed(self):
        pids = self.path("pids")
        run = self.launch(self.job([["sh", "-c", STUBBORN_TREE.format(pids=pids)]]))
        job_pids = self.read_pids("pids")
        kill = self.launch({"name": "demo"}, action="kill")
        self.assertEqual(kill.wait(timeout=10), 0)
        self.assertEqual(run.wait(timeout=10), 1)
        self.assertFalse(any(alive(pid) for pid in job_pids))
        state = run_job.read_job_state(self.config, "demo")
        self.assertEqual((state["status"], state["signal"]), ("killed", 9))
        self.assertIn(b"was killed (stopped by SIGTERM sent to run-job)", run.stderr.read())
        self.assertEqual(len(read_test_history(self.config, "demo")), 1)  # not twice

    def test_a_process_is_signalled_only_while_it_is_the_same_one(self):
        sleeper = subprocess.Popen(["sleep", "30"])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        info = run_job.read_process(sleeper.pid)
        self.assertEqual((info.pid, info.ppid, info.pgrp), (sleeper.pid, os.getpid(), os.getpgrp()))
        recycled = run_job.ProcessInfo(info.pid, info.ppid, info.pgrp, info.state, info.start + 1)
        self.assertFalse(run_job.signal_verified(recycled, signal.SIGTERM))
        self.assertFalse(run_job.signal_verified(info, signal.SIGTERM, group=True))  # ours
        self.assertIsNone(sleeper.poll())
        self.assertTrue(run_job.signal_verified(info, signal.SIGTERM))
        self.assertEqual(sleeper.wait(timeout=5), -signal.SIGTERM)
        self.assertFalse(run_job.signal_verified(info, signal.SIGTERM))  # gone now

    def test_a_process_group_is_signalled_only_while_its_member_is_the_same_one(self):
        leader = subprocess.Popen(["sleep", "30"], start_new_session=True)
        self.addCleanup(leader.wait)
        self.addCleanup(leader.kill)
        info = run_job.read_process(leader.pid)
        self.assertEqual(info.pgrp, leader.pid)
        recycled = run_job.ProcessInfo(info.pid, info.ppid, info.pgrp, info.state, info.start + 1)
        self.assertFalse(run_job.signal_verified(recycled, signal.SIGTERM, group=True))
        self.assertTrue(run_job.signal_verified(info, signal.SIGTERM, group=True))
        self.assertEqual(leader.wait(timeout=5), -signal.SIGTERM)

    def test_kill_job_never_signals_a_recorded_pid_that_holds_no_lock(self):
        # run-job died (kill -9) and its pid went to an unrelated process, still
        # named by the lock record: only the lock's holders may be signalled.
        orphaned = self.launch(self.job([["sh", "-c", "echo $$ > %s; touch %s.done; exec sleep 30"
                                          % (self.path("pids"), self.path("pids"))]]))
        job_pid, = self.read_pids("pids")
        orphaned.kill()
        orphaned.wait()
        stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
        self.addCleanup(stranger.wait)
        self.addCleanup(stranger.kill)
        path = run_job.lock_path(self.config, "demo")
        record = run_job.read_lock_record(path)
        self.assertEqual(record["pid"], orphaned.pid)
        recycled = run_job.JobLock(path, os.open(path, os.O_WRONLY))
        recycled.describe(stranger.pid, stranger.pid, record["start"], record["kill_grace"],
                          record["log"])
        recycled.close()
        self.assertEqual(run_job.read_lock_record(path)["pid"], stranger.pid)
        self.assertEqual(self.launch({"name": "demo"}, action="kill").wait(timeout=20), 0)
        self.assertIsNone(stranger.poll())
        self.assertFalse(alive(job_pid))
        self.assertTrue(self.lock_is_free())

    def test_a_lock_record_with_a_kill_grace_that_never_ends_is_no_record(self):
        # The job's processes can write the lock file: --kill-job must not
        # wait forever to send SIGKILL.
        path = self.path("forged.lock")
        for grace, start in (("inf", "1700000000.0"), ("nan", "1700000000.0"),
                             ("-1", "1700000000.0"), ("5", "inf"), ("5", "nan")):
            with open(path, "wb") as lock:
                lock.write(("pid 1 pgid 1 start %s kill_grace %s log /x\n" % (start, grace)).encode())
            self.assertIsNone(run_job.read_lock_record(path), (grace, start))
        with open(path, "wb") as lock:
            lock.write(b"pid 1 pgid 1 start 1700000000.0 kill_grace 5 log /x\n")
        self.assertEqual(run_job.read_lock_record(path)["kill_grace"], 5.0)

    def test_kill_job_with_nothing_running_says_so_on_stderr_and_returns_1(self):
        jobs = self.path("jobs")
        os.mkdir(jobs)
        with open(os.path.join(jobs, "demo.yaml"), "w") as job_file:
            job_file.write("command: /bin/true\n")
        config = run_job.GlobalConfig(job_directory=jobs, user=pwd.getpwuid(os.geteuid()).pw_name,
                                      **self.config_fields)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            self.assertEqual(run_job.kill_job(config, "demo", "test", None), 1)
            with self.assertRaisesRegex(run_job.UsageError, "^no job named nosuch: "):
                run_job.kill_job(config, "nosuch", "test", None)  # no file, no lock: no such job
        self.assertEqual((out.getvalue(), err.getvalue()), ("", "run-job: job demo is not running\n"))

    def test_a_symlink_as_lock_file_is_refused(self):
        os.symlink(self.path("elsewhere"), run_job.lock_path(self.config, "demo"))
        with self.assertRaises(run_job.RefusedError):
            run_job.acquire_lock(self.config, run_job.Job("demo", commands=[["true"]]))
        self.assertFalse(os.path.exists(self.path("elsewhere")))


class RunningTests(RunnerTestCase):
    def test_timeout_stops_a_term_ignoring_job_its_grandchildren_and_a_setsid_daemon(self):
        pids = self.path("pids")
        started = time.monotonic()
        code, stdout, stderr = self.run_job(self.job(
            [["sh", "-c", STUBBORN_TREE.format(pids=pids)]], timeout=0.5))
        elapsed = time.monotonic() - started
        self.assertEqual(code, 124)
        job_pids = self.read_pids("pids")
        self.assertEqual(len(job_pids), 4)
        self.assertFalse([pid for pid in job_pids if alive(pid)])
        state = run_job.read_job_state(self.config, "demo")
        self.assertEqual((state["status"], state["signal"]), ("timeout", 9))
        self.assertLess(state["duration"], 0.5 + 0.3 + 0.5)
        self.assertLess(elapsed, 0.5 + 0.3 + 0.5 + 0.5)  # plus the driver's start-up
        self.assertIn(b"job demo timed out (timeout 0.5s reached)", stderr)
        self.assertTrue(self.lock_is_free())

    def test_a_stopped_job_is_continued_to_die_of_sigterm_within_the_grace(self):
        # A stopped process keeps SIGTERM pending: without SIGCONT only the
        # SIGKILL after kill_grace would end it.
        code, _, _ = self.run_job(self.job([["sh", "-c", "kill -STOP $$"]],
                                           timeout=0.2, kill_grace=5))
        self.assertEqual(code, 124)
        state = run_job.read_job_state(self.config, "demo")
        self.assertEqual(state["signal"], signal.SIGTERM)
        self.assertLess(state["duration"], 0.2 + 1.0)

    def test_kill_grace_0_kills_at_once(self):
        code, _, _ = self.run_job(self.job([["sh", "-c", "trap '' TERM; sleep 30"]],
                                           timeout=0.2, kill_grace=0))
        self.assertEqual(code, 124)
        self.assertLess(run_job.read_job_state(self.config, "demo")["duration"], 0.2 + 0.4)

    def test_a_command_leaving_a_background_process_ends_and_releases_the_lock(self):
        pid_file = self.path("pid")
        code, stdout, stderr = self.run_job(self.job(
            [["sh", "-c", "sleep 30 & echo $! > %s; echo done" % pid_file]]))
        self.assertEqual((code, stdout, stderr), (0, b"", b""))
        with open(pid_file) as pid:
            self.assertFalse(alive(int(pid.read())))
        self.assertTrue(self.lock_is_free())
        self.assertIsNone(run_job.running_info(self.config, "demo"))
        self.assertIn(("leftovers", "1 processes left behind; stopping them"),
                      notes(self.last_log()))
        self.assertLess(run_job.read_job_state(self.config, "demo")["duration"], 0.5)

    def test_a_leftover_ignoring_term_and_holding_stdout_is_killed_after_the_grace(self):
        code, _, _ = self.run_job(self.job([["sh", "-c", (
            "sh -c 'trap \"\" TERM; while :; do echo tick; sleep 0.05; done' & sleep 0.1")]]))
        self.assertEqual(code, 0)
        duration = run_job.read_job_state(self.config, "demo")["duration"]
        self.assertTrue(0.1 + 0.3 <= duration < 0.1 + 0.3 + 0.5, duration)
        self.assertIn(b"tick\n", rebuild_streams(self.last_log())[b"O"])

    def test_term_int_and_hup_to_run_job_stop_the_job_recorded_as_killed(self):
        runs = {}
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            name = "job%d" % signum
            pids = self.path(name)
            runs[signum] = (name, self.launch(self.job(
                [["sh", "-c", STUBBORN_TREE.format(pids=pids)]], name=name)))
        for signum, (name, run) in runs.items():
            job_pids = self.read_pids(name)
            run.send_signal(signum)
            self.assertEqual(run.wait(timeout=10), 1)
            self.assertFalse([pid for pid in job_pids if alive(pid)])
            state = run_job.read_job_state(self.config, name)
            self.assertEqual(state["status"], "killed")
            self.assertEqual(state["reason"], "stopped by %s sent to run-job"
                             % signal.Signals(signum).name)
            self.assertIn(("outcome", "killed"), notes(self.last_log(name)))

    def test_commands_run_in_sequence_and_stop_at_the_first_failure(self):
        code, _, stderr = self.run_job(self.job(
            [["echo", "one"], ["sh", "-c", "exit 3"], ["echo", "three"]]))
        self.assertEqual(code, 1)
        self.assertIn(b"job demo failed (exit status 3)", stderr)
        self.assertEqual(rebuild_streams(self.last_log())[b"O"], b"one\n")
        state = run_job.read_job_state(self.config, "demo")
        self.assertEqual((state["status"], state["exit_code"], state["signal"]),
                         ("failed", 3, None))

    def test_timeout_covers_all_commands_together(self):
        code, _, _ = self.run_job(self.job([["sleep", "0.3"], ["sleep", "0.3"]], timeout=0.45))
        self.assertEqual(code, 124)

    def test_timeout_0_means_none(self):
        self.assertEqual(self.run_job(self.job([["sleep", "0.1"]], timeout=0))[0], 0)

    def test_the_longest_timeout_is_waited_in_turns(self):
        # poll() takes at most 2**31-1 ms (24.8 days); the longest duration
        # a job file accepts must neither crash nor cut the run short.
        longest = run_job.parse_duration("3650d")
        self.assertEqual(self.run_job(self.job([["sleep", "0.1"]], timeout=longest))[0], 0)

    def test_environment_is_added_to_the_inherited_one(self):
        os.environ["RUN_JOB_TEST_INHERITED"] = "yes"
        self.addCleanup(os.environ.pop, "RUN_JOB_TEST_INHERITED")
        code, _, _ = self.run_job(self.job(
            [["sh", "-c", "echo $RUN_JOB_TEST_INHERITED $GREETING"]],
            environment={"GREETING": "hello world"}))
        self.assertEqual(code, 0)
        self.assertEqual(rebuild_streams(self.last_log())[b"O"], b"yes hello world\n")

    def test_success_exit_codes(self):
        self.assertEqual(self.run_job(self.job([["sh", "-c", "exit 3"]],
                                               success_exit_codes=[0, 3]))[0], 0)
        self.assertEqual(self.run_job(self.job([["true"]], success_exit_codes=[3]))[0], 1)

    def test_fail_on_stderr(self):
        command = [["sh", "-c", "echo oops >&2"]]
        self.assertEqual(self.run_job(self.job(command))[0], 0)
        code, _, stderr = self.run_job(self.job(command + [["touch", self.path("second")]],
                                                fail_on_stderr=True))
        self.assertEqual(code, 1)
        self.assertIn(b"(wrote to stderr (fail_on_stderr))", stderr)
        self.assertFalse(os.path.exists(self.path("second")))

    def test_a_command_that_cannot_start_fails(self):
        code, _, stderr = self.run_job(self.job([[self.path("missing")]]))
        self.assertEqual(code, 1)
        self.assertIn(b"(cannot start %s: No such file or directory)"
                      % self.path("missing").encode(), stderr)
        self.assertEqual(run_job.read_job_state(self.config, "demo")["status"], "failed")

    def test_a_command_is_searched_for_in_the_job_path(self):
        # As execvp: a file found but not executable is passed over for a later
        # one, and reported only when nothing later is found.
        first, second = self.path("first"), self.path("second")
        for directory in (first, second):
            os.mkdir(directory)
        for directory, mode in ((first, 0o644), (second, 0o755)):
            with open(os.path.join(directory, "tool"), "w") as tool:
                tool.write("#!/bin/sh\necho from %s\n" % os.path.basename(directory))
            os.chmod(os.path.join(directory, "tool"), mode)
        environment = {"PATH": "%s:/nonexistent:%s" % (first, second)}
        self.assertEqual(self.run_job(self.job([["tool"]], environment=environment))[0], 0)
        self.assertEqual(rebuild_streams(self.last_log())[b"O"], b"from second\n")
        environment = {"PATH": "/nonexistent:%s" % first}
        code, _, stderr = self.run_job(self.job([["tool"]], environment=environment))
        self.assertEqual(code, 1)
        self.assertIn(b"(cannot start tool: Permission denied)", stderr)
        code, _, stderr = self.run_job(self.job([["tool"]], environment={"PATH": "/nonexistent"}))
        self.assertIn(b"(cannot start tool: No such file or directory)", stderr)

    def test_a_directory_as_command_says_so(self):
        os.mkdir(self.path("bin"))
        os.mkdir(self.path("bin", "tool"))
        for command, environment in ((self.path("bin"), {}), ("tool", {"PATH": self.path("bin")})):
            code, _, stderr = self.run_job(self.job([[command]], environment=environment))
            self.assertEqual(code, 1)
            self.assertIn(b"(cannot start %s: it is a directory, not a program)" % command.encode(),
                          stderr)

    def test_death_by_signal_fails(self):
        code, _, stderr = self.run_job(self.job([["sh", "-c", "kill -SEGV $$"]]))
        self.assertEqual(code, 1)
        self.assertIn(b"(killed by SIGSEGV)", stderr)
        self.assertEqual(run_job.read_job_state(self.config, "demo")["signal"], 11)

    def test_the_job_has_its_own_group_dev_null_stdin_and_the_lock_descriptor(self):
        script = ('echo "$$ $(cut -d" " -f5 /proc/$$/stat)"; cat; readlink /proc/$$/fd/0; '
                  'ls -l /proc/$$/fd | grep -c demo.lock')
        for closed_stdio in (False, True):  # run-job started with 0, 1, 2 closed
            code, _, _ = self.run_job(self.job([["sh", "-c", script]]),
                                      closed_stdio=closed_stdio)
            self.assertEqual(code, 0)
            lines = rebuild_streams(self.last_log())[b"O"].split(b"\n")
            pid, pgid = lines[0].split()
            self.assertEqual(pid, pgid)
            self.assertEqual(lines[1:], [b"/dev/null", b"1", b""])

    def test_slow_start_runs_the_slow_start_commands(self):
        job = self.job([["echo", "normal"]], slow_start_commands=[["echo", "slow"]])
        self.assertEqual(self.run_job(job, slow_start=True)[0], 0)
        self.assertEqual(rebuild_streams(self.last_log())[b"O"], b"slow\n")

    def test_quiet_on_success_and_a_summary_with_the_stderr_tail_on_failure(self):
        self.assertEqual(self.run_job(self.job([["sh", "-c", "echo out; echo err >&2"]])),
                         (0, b"", b""))
        code, stdout, stderr = self.run_job(self.job([["sh", "-c", (
            "for i in $(seq 100); do echo line$i >&2; done; echo out; exit 2")]]))
        self.assertEqual((code, stdout), (1, b""))
        lines = stderr.decode().splitlines()
        self.assertRegex(lines[0], r"^run-job: job demo failed \(exit status 2\) after "
                                   r"[0-9.]+s; log %s$" % self.logs()[-1])
        self.assertEqual(lines[2:], ["line%d" % i for i in range(81, 101)])

    def test_output_is_shown_live_on_a_terminal(self):
        import pty
        master, slave = pty.openpty()
        run = self.launch(self.job([["sh", "-c", "echo live; sleep 0.2; echo after"]]),
                          stdout=slave)
        os.close(slave)
        seen = b""
        while b"live" not in seen:
            seen += os.read(master, 1024)
        self.assertIsNone(run.poll())  # shown while the job still runs
        self.assertEqual(run.wait(timeout=10), 0)
        os.close(master)
        self.assertIn(b"job demo succeeded after", run.stderr.read())


class LogTests(RunnerTestCase):
    def test_invalid_utf8_long_lines_and_a_final_partial_line_rebuild_byte_for_byte(self):
        generator = random.Random(6)
        expected = {}
        for tag, name in ((b"O", "stdout"), (b"E", "stderr")):
            pieces = [bytes(generator.getrandbits(8) for _ in range(generator.randrange(300)))
                      for _ in range(400)]
            pieces += [b"x" * 300000, b"y\n" * 70000, b"\n" * 70000, b"\xff\xfe\xc3(\n" * 3,
                       b"\n\n", b"no newline at the end"]
            expected[tag] = b"\n".join(pieces)
            with open(self.path(name), "wb") as data:
                data.write(expected[tag])
        script = "cat {0} & cat {1} >&2; wait".format(self.path("stdout"), self.path("stderr"))
        self.assertEqual(self.run_job(self.job([["sh", "-c", script]]))[0], 0)
        log = self.last_log()
        self.assertEqual(rebuild_streams(log), expected)
        self.assertIn(b"E| \xff\xfe\xc3(\n", log)

    def test_any_chunking_of_any_bytes_rebuilds_exactly(self):
        generator = random.Random(7)
        path = self.path("log")
        for case in range(100):
            alphabet = generator.choice([b"\n", b"ab\n", b"abcdefgh\n\xff", bytes(range(256))])
            size = generator.choice([0, 1, 5, 1000, 70000, 200000])
            data = bytes(generator.choice(alphabet) for _ in range(size)) if size < 5000 else \
                alphabet[:1] * size
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            log = run_job.RunLog(fd, path)
            start, streams = 0, {b"O": b"", b"E": b""}
            while start < len(data):
                end = start + generator.randrange(1, 2 * run_job.READ_SIZE)
                tag = generator.choice([b"O", b"E"])
                log.write(tag, data[start:end])
                streams[tag] += data[start:end]
                start = end
            log.close()
            with open(path, "rb") as written:
                records = written.read()
            self.assertEqual(rebuild_streams(records) if records else streams, streams, case)

    def test_stamping_short_lines_takes_bounded_memory(self):
        # Each newline gains a ~30-byte prefix: a chunk of empty lines would
        # swell thirtyfold if stamped at once.
        log = run_job.RunLog(os.open(os.devnull, os.O_WRONLY), os.devnull)
        self.addCleanup(log.close)
        data = b"\n" * (2 * run_job.READ_SIZE)
        tracemalloc.start()
        try:
            log.write(b"O", data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 2 * run_job.RECORDS_MAX)

    def test_records_are_in_the_order_read(self):
        script = "echo a; sleep 0.05; echo b >&2; sleep 0.05; printf c"
        self.run_job(self.job([["sh", "-c", script]]))
        output = [(tag, mark, payload) for _, tag, mark, payload in parse_log(self.last_log())
                  if tag != b"#"]
        self.assertEqual(output, [(b"O", b"|", b"a"), (b"E", b"|", b"b"), (b"O", b"+", b"c")])

    def test_header_and_footer(self):
        self.run_job(self.job([["echo", "it's"], ["sh", "-c", "exit 4"]]))
        pairs = notes(self.last_log())
        keys = [key for key, _ in pairs]
        self.assertEqual(keys[:6], ["job", "command", "command", "user", "pid", "start"])
        self.assertEqual(pairs[0], ("job", "demo"))
        self.assertEqual(pairs[1:3], [("command", "echo 'it'\\''s'"),
                                      ("command", "sh -c 'exit 4'")])
        self.assertEqual(pairs[4], ("pid", str(self.launched[-1].pid)))
        self.assertEqual(keys[-4:], ["outcome", "reason", "exit", "duration"])
        self.assertEqual(pairs[-4:-1], [("outcome", "failed"), ("reason", "exit status 4"),
                                        ("exit", "4")])
        self.assertRegex(pairs[-1][1], r"^[0-9]+\.[0-9]{3}$")

    def test_a_log_that_cannot_be_written_keeps_its_first_error(self):
        fd = os.open("/dev/full", os.O_WRONLY)
        log = run_job.RunLog(fd, "/dev/full")
        log.write(b"O", b"x\n" * 1000)
        log.note("outcome", "success")
        log.close()
        self.assertEqual(log.error, os.strerror(28))  # ENOSPC

    def test_a_run_whose_log_cannot_be_written_fails(self):
        # Files of at most 4 KiB (Python ignores SIGXFSZ: writes fail with
        # EFBIG): the header fits, the job's 64 KiB of output does not.
        def small_files():
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        code, _, stderr = self.run_job(self.job([["sh", "-c", "head -c 65536 /dev/zero"]]),
                                       preexec_fn=small_files)
        self.assertEqual(code, 1, stderr)
        self.assertIn(b"(cannot write the log: %s)" % os.strerror(errno.EFBIG).encode(), stderr)
        state = run_job.read_job_state(self.config, "demo")
        self.assertEqual((state["status"], state["reason"]),
                         ("failed", "cannot write the log: %s" % os.strerror(errno.EFBIG)))

    def test_log_names_are_unique_within_a_second(self):
        start = time.mktime((2026, 3, 4, 5, 6, 7, 0, 0, -1))
        paths = []
        for _ in range(3):
            log = run_job.open_run_log(self.config, "demo", start)
            log.close()
            paths.append(os.path.basename(log.path))
        self.assertEqual(paths, ["demo-20260304-050607.log", "demo-20260304-050607-1.log",
                                 "demo-20260304-050607-2.log"])
        self.assertEqual(os.stat(self.path("output", "demo")).st_mode & 0o777, 0o750)
        self.assertEqual(os.stat(self.path("output", "demo", paths[0])).st_mode & 0o777, 0o640)

    def test_memory_stays_bounded_for_a_32_mb_line(self):
        rss = self.path("rss")
        code, _, _ = self.run_job(self.job(
            [["sh", "-c", "head -c 33554432 /dev/zero | tr '\\0' x"]]), rss=rss)
        self.assertEqual(code, 0)
        records = [record for record in parse_log(self.last_log()) if record[1] == b"O"]
        self.assertTrue(all(mark == b"+" for _, _, mark, _ in records))
        self.assertLessEqual(max(len(payload) for _, _, _, payload in records),
                             run_job.READ_SIZE)
        self.assertEqual(sum(len(payload) for _, _, _, payload in records), 1 << 25)
        with open(rss) as kilobytes:
            self.assertLess(int(kilobytes.read()), 32 * 1024)


def read_test_history(config, name):
    from test_config import read_history  # not beside the copy SummaryTests runs
    return read_history(config, name)


class StateTests(RunnerTestCase):
    def test_state_and_history_record_each_run(self):
        self.assertIsNone(run_job.read_job_state(self.config, "demo"))
        self.run_job(self.job([["true"]]))
        self.run_job(self.job([["false"]]))
        self.run_job(self.job([["false"]]))
        state = run_job.read_job_state(self.config, "demo")
        marks = ("consecutive_failures", "last_success", "last_success_time",
                 "count_success", "count_failed")
        self.assertEqual(sorted(state), sorted(run_job.RUN_KEYS + marks))
        self.assertEqual((state["status"], state["exit_code"], state["consecutive_failures"],
                          state["count_success"], state["count_failed"]), ("failed", 1, 2, 1, 2))
        self.assertEqual(state["log"], self.logs()[-1])
        history = read_test_history(self.config, "demo")
        self.assertEqual([record["status"] for record in history],
                         ["success", "failed", "failed"])
        self.assertEqual(state["last_success"], history[0]["start"])
        self.assertEqual(state["last_success_time"], history[0]["start_time"])
        for key in ("last_success", "last_success_time", "count_success", "count_failed"):
            del state[key]  # the state's alone
        self.assertEqual(history[-1], state)
        for name in ("demo.state", "demo.history"):
            self.assertEqual(os.stat(self.path("state", name)).st_mode & 0o777, 0o644)
        self.assertEqual(sorted(os.listdir(self.path("state"))), ["demo.history", "demo.state"])

    def test_history_rotates_past_its_bound(self):
        path = self.path("state", "demo.history")
        third = run_job.HISTORY_MAX_BYTES // 3 - 40  # three lines fit, a fourth does not
        for number in range(10):
            run_job.append_history(path, b'{"n": %d, "pad": "%s"}\n' % (number, b"x" * third))
        with open(path, "rb") as current, open(path + ".1", "rb") as older:
            self.assertEqual(([line[:8] for line in older], [line[:8] for line in current]),
                             ([b'{"n": 6,', b'{"n": 7,', b'{"n": 8,'], [b'{"n": 9,']))

    def test_write_file_atomic_replaces_with_mode_0644_and_leaves_no_temporary(self):
        path = self.path("state", "file")
        old_umask = os.umask(0o077)
        try:
            run_job.write_file_atomic(path, b"one")
            run_job.write_file_atomic(path, b"two")
        finally:
            os.umask(old_umask)
        with open(path, "rb") as written:
            self.assertEqual(written.read(), b"two")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        self.assertEqual(os.listdir(self.path("state")), ["file"])

    def test_signal_names_match_the_signal_module(self):
        for number in range(1, 65):
            try:
                expected = signal.Signals(number).name
            except ValueError:
                expected = "signal %d" % number
            self.assertEqual(run_job._signal_name(number), expected)

    def test_json_line_reads_back_with_the_json_module(self):
        generator = random.Random(8)
        alphabet = ['"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "\u2028", "\udcff",
                    "\U0001f600", "a", " ", "/"]
        for _ in range(2000):
            text = "".join(generator.choice(alphabet) for _ in range(generator.randrange(8)))
            record = {"text": text, "number": generator.randrange(-5, 10 ** 12),
                      "float": generator.random() * 1000, "none": None, "flag": True}
            decoded = json.loads(run_job.json_line(record))
            self.assertEqual(decoded["text"], text)
            self.assertEqual(decoded["number"], record["number"])
            self.assertAlmostEqual(decoded["float"], record["float"], places=3)
            self.assertEqual((decoded["none"], decoded["flag"]), (None, True))


SAMPLE_TESTS = """
import unittest


class Sample(unittest.TestCase):
    def test_runs(self):
        pass

    @unittest.skip("needs a frobnicator")
    def test_skipped(self):
        pass


@unittest.skip("the whole class:\\n  over two lines")
class Whole(unittest.TestCase):
    def test_first(self):
        pass
"""


class SummaryTests(unittest.TestCase):
    def test_make_test_says_why_each_skipped_test_was_skipped(self):
        # This file's run_all, as `make test` runs it, beside a sample test file.
        directory = tempfile.mkdtemp(prefix="run-job-test-summary-")
        self.addCleanup(shutil.rmtree, directory, True)
        shutil.copy(os.path.join(HERE, "run_job.py"), directory)
        shutil.copy(os.path.abspath(__file__), os.path.join(directory, "runner.py"))
        with open(os.path.join(directory, "test_sample.py"), "w") as sample:
            sample.write(SAMPLE_TESTS)
        process = subprocess.run([sys.executable, "runner.py"], cwd=directory, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 universal_newlines=True, timeout=60)
        self.assertEqual(process.returncode, 0, process.stderr)
        self.assertIn("\nOK (skipped=2)\n", process.stdout)  # the module's own output
        self.assertTrue(process.stdout.endswith(
            "\nskipped: test_sample.Sample.test_skipped: needs a frobnicator\n"
            "skipped: test_sample.Whole.test_first: the whole class: over two lines\n"
            "tests: 1 passed, 0 failed, 2 skipped\n"), process.stdout)

    def test_a_failing_or_broken_module_fails_the_suite(self):
        directory = tempfile.mkdtemp(prefix="run-job-test-summary-")
        self.addCleanup(shutil.rmtree, directory, True)
        shutil.copy(os.path.join(HERE, "run_job.py"), directory)
        shutil.copy(os.path.abspath(__file__), os.path.join(directory, "runner.py"))
        for name, text in (("test_fails", "import unittest\nclass F(unittest.TestCase):\n"
                            "    def test_no(self):\n        self.fail('no')\n"),
                           ("test_broken", "import no_such_module_here\n")):
            with open(os.path.join(directory, name + ".py"), "w") as module:
                module.write(text)
        process = subprocess.run([sys.executable, "runner.py"], cwd=directory,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        self.assertEqual(process.returncode, 1)
        self.assertIn("AssertionError: no", process.stdout)
        self.assertIn("no_such_module_here", process.stdout)
        self.assertTrue(process.stdout.endswith("tests: 0 passed, 2 failed, 0 skipped\n"),
                        process.stdout)


def skip_lines(skipped):
    """`skipped: TEST_ID: REASON` for each (test, reason) that unittest skipped;
    a module or class skipped whole has no test method: its id says which."""
    return ["skipped: %s: %s" % (test.id(), " ".join(str(reason).split()))
            for test, reason in skipped]


class CountingResult(unittest.TextTestResult):
    """Counts the tests that passed itself: Python 3.12.1 leaves the tests of
    a class skipped whole out of testsRun, so testsRun - failed - skipped
    undercounts there."""

    def __init__(self, *arguments, **settings):
        super(CountingResult, self).__init__(*arguments, **settings)
        self.passed = 0

    def addSuccess(self, test):
        super(CountingResult, self).addSuccess(test)
        self.passed += 1

    def addExpectedFailure(self, test, error):
        super(CountingResult, self).addExpectedFailure(test, error)
        self.passed += 1


# `make test` runs the modules in parallel, one process each, as many at a
# time as there are cores (at most 4, or $TEST_JOBS), the largest files
# first: the suite's processes mostly wait on the processes they start.
# Each module's output is printed whole once it is done.
MAX_TEST_JOBS = 4


def run_module(name):
    """Run the test module NAME in this process: its unittest output on
    stderr, then one JSON line on stdout with the counts and the skips."""
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    result = unittest.TextTestRunner(verbosity=int(os.environ.get("VERBOSE", "1")),
                                     resultclass=CountingResult).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(json.dumps({"passed": result.passed, "failed": failed, "ran": result.testsRun,
                      "skipped": skip_lines(result.skipped)}))
    return 0


def run_all():
    """Run every test_*.py beside this file, each as its own process; print
    each one's output, why each skipped test was skipped, then one summary
    line."""
    names = sorted((entry[:-3] for entry in os.listdir(HERE)
                    if entry.startswith("test_") and entry.endswith(".py")),
                   key=lambda name: -os.path.getsize(os.path.join(HERE, name + ".py")))
    jobs = int(os.environ.get("TEST_JOBS") or min(MAX_TEST_JOBS, os.cpu_count() or 1))
    waiting, running, totals, skips = list(names), {}, {"passed": 0, "failed": 0, "ran": 0}, []
    while waiting or running:
        while waiting and len(running) < jobs:
            output = tempfile.TemporaryFile()
            process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--module", waiting.pop(0)],
                cwd=HERE, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
            running[process.pid] = (process, output)
        pid, _ = os.wait()  # whichever module ends first
        if pid not in running:
            continue  # not a module's process: a test's, reaped too late
        process, output = running.pop(pid)
        process.returncode = 0  # reaped here, not by Popen
        output.seek(0)
        lines = output.read().decode("utf-8", "replace").rstrip("\n").split("\n")
        output.close()
        try:
            counts = json.loads(lines[-1])
        except ValueError:  # the module could not even be run
            counts = {"passed": 0, "failed": 1, "ran": 0, "skipped": []}
            lines.append("")
        sys.stdout.write("\n".join(lines[:-1]) + "\n")
        sys.stdout.flush()
        for key in totals:
            totals[key] += counts[key]
        skips.extend(counts["skipped"])
    for line in sorted(skips):
        print(line)
    print("tests: %d passed, %d failed, %d skipped" % (totals["passed"], totals["failed"],
                                                      len(skips)))
    return 0 if totals["failed"] == 0 and totals["ran"] > 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--module"]:
        sys.exit(run_module(sys.argv[2]))
    sys.exit(run_all())
