"""The overlap policy (`overlap: skip | wait | replace`): real run-job
processes, locks and job trees in a temporary directory."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import RUN_JOB, SandboxTest, read_history  # noqa: E402

LAUNCHES = 20
LIBRARY = None
# A launch imports a byte-compiled copy of run_job.py: compiling it in each of
# twenty simultaneous launches costs seconds on two cores.
DRIVER = "import sys; sys.path.insert(0, sys.argv.pop(1)); import run_job; sys.exit(run_job.main())"


def setUpModule():
    import py_compile
    global LIBRARY
    LIBRARY = tempfile.mkdtemp(prefix="run-job-test-overlap-")
    shutil.copy(RUN_JOB, LIBRARY)
    py_compile.compile(os.path.join(LIBRARY, "run_job.py"), doraise=True)


def tearDownModule():
    shutil.rmtree(LIBRARY, True)


def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %r" % condition)
        time.sleep(0.01)


class OverlapTests(SandboxTest):
    def setUp(self):
        super(OverlapTests, self).setUp()
        self.launched = []

    def job(self, name, command, extra=""):
        # MARK in every process's environment finds what a run left behind.
        self.sandbox.write_job(name, "command: %s\nenvironment:\n  MARK: '%s'\n%s"
                               % (command, self.sandbox.root, extra))

    def launch(self, *args):
        process = subprocess.Popen([sys.executable, "-c", DRIVER, LIBRARY, "--config",
                                    self.sandbox.config] + list(args), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   cwd=self.sandbox.root)
        self.launched.append(process)

        def stop():
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
            process.stderr.close()
        self.addCleanup(stop)
        return process

    def finish(self, process, seconds=30):
        """(exit code, stderr) of PROCESS once it ends."""
        code = process.wait(timeout=seconds)
        return code, process.stderr.read().decode()

    def path(self, name):
        return self.sandbox.path(name)

    def lines(self, name):
        if not os.path.exists(self.path(name)):
            return []
        with open(self.path(name)) as lines:
            return lines.read().split()

    def wait_lock_held(self, name, process):
        """Wait until PROCESS holds job NAME's wait lock: waits its turn."""
        path = run_job.wait_lock_path(self.sandbox.load(), name)
        wait_for(lambda: run_job._lock_is_held(path)
                 and (run_job.read_lock_record(path) or {}).get("pid") == process.pid)

    def leftovers(self):
        """The live processes whose environment holds this sandbox's MARK."""
        found = []
        mark = ("MARK=%s" % self.sandbox.root).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            info = run_job.read_process(int(entry))
            try:
                with open("/proc/%s/environ" % entry, "rb") as environ:
                    marked = mark in environ.read().split(b"\0")
            except OSError:
                continue
            if marked and info is not None and info.state not in ("Z", "X"):
                found.append(int(entry))
        return found

    def history(self, name):
        return read_history(self.sandbox.load(), name)

    # -- wait

    def test_wait_runs_once_the_previous_run_ended(self):
        self.job("serial", "sh -c 'echo start >> %s; sleep 0.4; echo end >> %s'"
                 % (self.path("trace"), self.path("trace")), "overlap: wait\n")
        first = self.launch("serial")
        wait_for(lambda: self.lines("trace"))
        code, out, err = self.sandbox.run("serial")
        self.assertEqual((code, out, err), (0, "", ""))
        self.assertEqual(self.finish(first), (0, ""))
        self.assertEqual(self.lines("trace"), ["start", "end", "start", "end"])
        runs = self.history("serial")
        self.assertEqual([run["status"] for run in runs], ["success", "success"])
        self.assertGreaterEqual(runs[1]["start_time"],
                                runs[0]["start_time"] + runs[0]["duration"] - 0.01)

    def test_a_job_paused_while_a_run_waited_is_skipped_when_its_turn_comes(self):
        self.job("held", "sh -c 'echo run >> %s; until [ -e %s ]; do sleep 0.02; done'"
                 % (self.path("runs"), self.path("go")), "overlap: wait\n")
        first = self.launch("held")
        wait_for(lambda: self.lines("runs"))
        waiter = self.launch("held")
        self.wait_lock_held("held", waiter)
        self.assertEqual(self.sandbox.run("--pause", "held", "--reason", "disk swap")[0], 0)
        with open(self.path("go"), "w"):
            pass
        self.assertEqual(self.finish(first), (0, ""))
        self.assertEqual(self.finish(waiter), (0, ""))  # a quiet policy skip
        self.assertEqual(self.lines("runs"), ["run"])
        entry = self.history("held")[-1]
        self.assertEqual((entry["status"], entry["pid"]), ("skipped", waiter.pid))
        self.assertTrue(entry["reason"].startswith("paused by "), entry)
        self.assertTrue(entry["reason"].endswith(": disk swap"), entry)

    def test_a_second_waiter_is_skipped_with_75_and_recorded(self):
        # Each run lasts until the test creates `go`.
        self.job("busy", "sh -c 'echo run >> %s; until [ -e %s ]; do sleep 0.02; done'"
                 % (self.path("runs"), self.path("go")), "overlap: wait\n")
        first = self.launch("busy")
        wait_for(lambda: self.lines("runs"))
        waiter = self.launch("busy")
        self.wait_lock_held("busy", waiter)
        code, out, err = self.sandbox.run("busy")
        self.assertEqual((code, out), (75, ""))
        self.assert_one_error_line(err, "job busy: another launch (run-job pid %d) is next "
                                   "in line (overlap: wait)" % waiter.pid)
        with open(self.path("go"), "w"):
            pass
        self.assertEqual(self.finish(first), (0, ""))
        self.assertEqual(self.finish(waiter), (0, ""))
        self.assertEqual(self.lines("runs"), ["run", "run"])
        history = self.history("busy")
        self.assertEqual(sorted(entry["status"] for entry in history),
                         ["skipped", "success", "success"])
        skip = [entry for entry in history if entry["status"] == "skipped"][0]
        self.assertTrue(skip["reason"].startswith("lock held: job busy: another launch"), skip)

    def test_the_wait_runs_out_after_overlap_wait_with_75(self):
        for extra, limit in (("overlap_wait: 0.3\n", "0.3s"), ("timeout: 0.4\n", "0.4s")):
            self.job("long", "sleep 30", "overlap: wait\n")
            first = self.launch("long")
            self.wait_until_running("long")
            self.job("long", "sleep 30", "overlap: wait\n" + extra)
            started = time.monotonic()
            code, out, err = self.sandbox.run("long")
            waited = time.monotonic() - started
            self.assertEqual((code, out), (75, ""))
            self.assert_one_error_line(err, "waited overlap_wait %s: job long is still running "
                                       "(pid %d" % (limit, first.pid))
            self.assertGreaterEqual(waited, float(limit[:-1]))
            self.assertLess(waited, 5)
            skip = self.history("long")[-1]
            self.assertEqual(skip["status"], "skipped")
            self.assertTrue(skip["reason"].startswith("lock held: waited overlap_wait"), skip)
            self.assertEqual(self.sandbox.run("--kill-job", "long")[0], 0)
            self.assertEqual(self.finish(first)[0], 1)
            self.assertEqual(self.leftovers(), [])

    def test_sigterm_or_kill_job_ends_a_waiter_cleanly(self):
        self.job("held", "sh -c 'echo run >> %s; exec sleep 30'" % self.path("runs"),
                 "overlap: wait\noverlap_wait: 0\n")
        first = self.launch("held")
        self.wait_until_running("held")
        waiter = self.launch("held")
        self.wait_lock_held("held", waiter)
        waiter.send_signal(signal.SIGTERM)
        code, err = self.finish(waiter, 5)
        self.assertEqual(code, 75)
        self.assert_one_error_line(err, "stopped by SIGTERM while waiting: job held is still "
                                   "running")
        # --kill-job stops the waiter first: nothing starts once the run is stopped.
        waiter = self.launch("held")
        self.wait_lock_held("held", waiter)
        self.assertEqual(self.sandbox.run("--kill-job", "held")[0], 0)
        self.assertEqual(self.finish(waiter, 5)[0], 75)
        self.assertEqual(self.finish(first, 5)[0], 1)
        self.assertEqual(self.lines("runs"), ["run"])
        self.assertEqual(sorted(entry["status"] for entry in self.history("held")),
                         ["killed", "skipped", "skipped"])
        self.assertEqual(self.leftovers(), [])

    # -- replace

    def test_replace_stops_the_previous_tree_grandchild_included_and_runs(self):
        # The first run leaves a grandchild in a session (and group) of its own.
        script = ("if [ -e {first} ]; then echo second >> {runs}; else touch {first}; "
                  "setsid sleep 30 & echo $! > {grandchild}; exec sleep 30; fi").format(
                      first=self.path("first"), runs=self.path("runs"),
                      grandchild=self.path("grandchild"))
        self.job("fresh", "sh -c '%s'" % script, "overlap: replace\nkill_grace: 1\n")
        first = self.launch("fresh")
        wait_for(lambda: self.lines("grandchild"))
        grandchild = int(self.lines("grandchild")[0])
        self.assertIsNotNone(run_job.read_process(grandchild))
        self.assertNotEqual(os.getpgid(grandchild), first.pid)
        second = self.launch("fresh")
        self.assertEqual(self.finish(second), (0, ""))
        # Replaced: neither a success nor a failure, and as quiet as a success.
        self.assertEqual(self.finish(first), (0, ""))
        self.assertEqual(self.lines("runs"), ["second"])
        self.assertIsNone(run_job.read_process(grandchild))
        history = self.history("fresh")
        self.assertEqual([(entry["status"], entry["pid"]) for entry in history],
                         [("replaced", first.pid), ("success", second.pid)])
        self.assertEqual(history[0]["reason"],
                         "replaced by run-job pid %d (overlap: replace)" % second.pid)
        self.assertEqual(history[0]["consecutive_failures"], 0)
        self.assertEqual(self.leftovers(), [])

    def test_replace_records_a_run_whose_run_job_had_died(self):
        self.job("orphan", "sh -c 'if [ -e %s ]; then exit 0; fi; touch %s; exec sleep 30'"
                 % (self.path("first"), self.path("first")), "overlap: replace\n")
        first = self.launch("orphan")
        wait_for(lambda: os.path.exists(self.path("first")))
        self.wait_until_running("orphan")
        first.kill()  # run-job dies; its sleep holds the lock
        first.wait()
        code, out, err = self.sandbox.run("orphan")
        self.assertEqual((code, out, err), (0, "", ""))
        history = self.history("orphan")
        self.assertEqual([(entry["status"], entry["pid"]) for entry in history],
                         [("replaced", first.pid), ("success", history[1]["pid"])])
        self.assertEqual(history[0]["reason"], "replaced by run-job pid %d (overlap: replace)"
                         % history[1]["pid"])
        self.assertEqual(self.leftovers(), [])

    # -- many launches at once

    def launch_all(self, name):
        processes = [self.launch(name) for _ in range(LAUNCHES)]
        return processes

    def assert_every_launch_recorded(self, name, processes, codes):
        history = self.history(name)
        self.assertEqual(sorted(entry["pid"] for entry in history),
                         sorted(process.pid for process in processes), history)
        by_pid = dict((entry["pid"], entry) for entry in history)
        for process, code in zip(processes, codes):
            entry = by_pid[process.pid]
            expected = {0: ("success", "replaced"), 1: ("killed",), 75: ("skipped",)}[code]
            self.assertIn(entry["status"], expected, (code, entry))
            if code == 75:
                self.assertTrue(entry["reason"].startswith("lock held: "), entry)
        self.assertEqual(run_job.read_job_state(self.sandbox.load(), name)["status"],
                         [entry for entry in history if entry["status"] != "skipped"][-1]
                         ["status"])
        return history

    def test_simultaneous_waits_run_one_at_a_time_and_are_all_recorded(self):
        self.job("queue", "sh -c 'echo start >> %s; sleep 0.3; echo end >> %s'"
                 % (self.path("trace"), self.path("trace")), "overlap: wait\n")
        processes = self.launch_all("queue")
        results = [self.finish(process, 60) for process in processes]
        codes = [code for code, _ in results]
        self.assertEqual(set(codes) - {0, 75}, set(), results)
        runs = codes.count(0)
        self.assertGreaterEqual(runs, 2, results)  # the first one, and one waited
        self.assertEqual(self.lines("trace"), ["start", "end"] * runs)  # never two at once
        history = self.assert_every_launch_recorded("queue", processes, codes)
        ran = sorted((entry["start_time"], entry["duration"]) for entry in history
                     if entry["status"] == "success")
        for (start, duration), (later, _) in zip(ran, ran[1:]):
            self.assertGreaterEqual(later, start + duration - 0.01)
        self.assertEqual(self.leftovers(), [])

    def test_simultaneous_replaces_leave_one_run_and_record_every_launch(self):
        script = "setsid sleep 30 & exec sleep 30"
        self.job("latest", "sh -c '%s'" % script, "overlap: replace\nkill_grace: 1\n")
        processes = self.launch_all("latest")
        wait_for(lambda: sum(process.poll() is not None for process in processes)
                 == LAUNCHES - 1, 60)
        survivor = [process for process in processes if process.poll() is None][0]
        config = self.sandbox.load()
        # The survivor describes itself in the lock a moment after taking it:
        # until then the record is the replaced run's.
        def described_by_the_survivor():
            info = run_job.running_info(config, "latest") or {}
            return info.get("pgid") and info.get("pid") == survivor.pid
        wait_for(described_by_the_survivor, 10)
        wait_for(lambda: len(self.leftovers()) == 2)  # its sleep and the grandchild
        self.assertEqual(self.sandbox.run("--kill-job", "latest")[0], 0)
        results = [self.finish(process, 60) for process in processes]
        codes = [code for code, _ in results]
        self.assertEqual(set(codes) - {0, 1, 75}, set(), results)
        history = self.assert_every_launch_recorded("latest", processes, codes)
        replaced = [entry for entry in history if entry["status"] == "replaced"]
        killed = [entry for entry in history if entry["status"] == "killed"]
        self.assertEqual([entry["pid"] for entry in killed], [survivor.pid])  # --kill-job
        self.assertEqual(killed[0]["consecutive_failures"], 0)  # killed, replaced: no failure
        ran = set(entry["pid"] for entry in replaced + killed)
        for entry in replaced:
            replacer = int(entry["reason"].split()[4])
            self.assertEqual(entry["reason"], run_job.replaced_reason(replacer))
            self.assertIn(replacer, ran)
        self.assertEqual(self.leftovers(), [])

    # -- skip, and the keys

    def test_skip_is_unchanged_and_never_touches_the_wait_lock(self):
        self.job("plain", "sleep 30")
        first = self.launch("plain")
        self.wait_until_running("plain")
        code, out, err = self.sandbox.run("plain")
        self.assertEqual((code, out), (75, ""))
        self.assert_one_error_line(err, "job plain is still running (pid %d" % first.pid)
        self.job("plain", "sleep 30", "allow_overtime: true\n")
        self.assertEqual(self.sandbox.run("plain"), (0, "", ""))
        self.assertEqual(sorted(os.listdir(self.sandbox.path("run"))), ["plain.lock",
                                                                      "plain.state.lock"])
        reasons = [entry["reason"] for entry in self.history("plain")]
        self.assertEqual(len(reasons), 2)
        self.assertTrue(reasons[1].endswith("(allow_overtime)"), reasons)

    def test_check_names_a_wrong_overlap_value_at_its_place(self):
        self.sandbox.write_job("odd", "command: /bin/true\noverlap: sometimes\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assertIn("odd.yaml:2:1: `overlap` must be skip, wait or replace, not "
                      "'sometimes'", err)
        self.sandbox.write_job("odd", "command: /bin/true\noverlap: wait\noverlap_wait: soon\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assertIn("odd.yaml:3:1: `overlap_wait`", err)
        self.sandbox.write_job("odd", "command: /bin/true\noverlap_wait: 1m\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0)
        self.assertIn("odd.yaml:2:1: warning: `overlap_wait` has no effect with `overlap: "
                      "skip`; set `overlap: wait` or remove it", err)
        self.sandbox.write_job("odd", "command: /bin/true\n")
        self.sandbox.write_config(extra="default_job_config:\n  overlap_wait: 1m\n")
        self.assertEqual(self.sandbox.run("--check"), (0, "", ""))

    def test_overlap_wait_defaults_to_the_timeout_and_zero_means_no_limit(self):
        job = run_job.Job("demo", commands=[["true"]], timeout=90.0)
        self.assertEqual((job.overlap, job.overlap_wait), ("skip", None))
        self.assertEqual(run_job.overlap_wait_limit(job), 90.0)
        job = run_job.Job("demo", commands=[["true"]], overlap="wait", overlap_wait=0.0)
        self.assertEqual(run_job.overlap_wait_limit(job), 0.0)


if __name__ == "__main__":
    unittest.main()
