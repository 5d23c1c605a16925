"""Job state under concurrency: runs, skips and commands changing one job's
state at once (real processes, real files and locks in a temporary
directory)."""

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import RUN_JOB_CODE, SandboxTest, read_history  # noqa: E402

LAUNCHES = 50


def is_locked(path):
    """Whether another process holds the flock of PATH."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class ConcurrentStateTests(SandboxTest):
    def launch(self, *args):
        return subprocess.Popen([sys.executable, RUN_JOB_CODE, "--config", self.sandbox.config]
                                + list(args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=self.sandbox.root)

    def test_simultaneous_runs_and_skips_are_each_recorded_in_a_valid_state(self):
        # Half start as cron would for a job rescheduled since (a drift skip,
        # recorded whatever the lock), half as plain runs: each of those runs
        # or finds the lock held (75), which is recorded as a skip too.
        self.sandbox.write_job("busy", "command: /bin/sleep 0.05\nschedule: '*/5 * * * *'\n")
        processes = []
        for number in range(LAUNCHES):
            args = ("--job", "busy", "--scheduled", "0 * * * *") if number % 2 else ("busy",)
            processes.append(self.launch(*args))
        results = [(process.wait(timeout=60), process.stderr.read()) for process in processes]
        for process in processes:
            process.stdout.close()
            process.stderr.close()
        codes = [code for code, _ in results]
        self.assertEqual(sorted(set(codes)) in ([0], [0, 75]), True, results)
        config = self.sandbox.load()
        history = read_history(config, "busy")
        self.assertEqual(len(history), LAUNCHES)
        runs = [entry for entry in history if entry["status"] == "success"]
        skips = [entry for entry in history if entry["status"] == "skipped"]
        self.assertEqual(len(runs), codes[::2].count(0))
        self.assertEqual(len(skips), LAUNCHES - len(runs))
        self.assertEqual(sum(entry["reason"].startswith("lock held") for entry in skips),
                         codes.count(75))
        self.assertEqual(sum(entry["reason"].startswith("rescheduled") for entry in skips),
                         LAUNCHES // 2)
        with open(run_job.state_path(config, "busy"), "rb") as state_file:
            state = json.loads(state_file.read().decode())
        self.assertEqual(state, run_job.read_job_state(config, "busy"))
        self.assertEqual(state["status"], "success")
        self.assertEqual(state["start_time"], max(entry["start_time"] for entry in runs))
        self.assertEqual(sorted(os.listdir(self.sandbox.path("state"))), ["busy.history", "busy.state"])

    def test_simultaneous_runs_skips_pauses_and_resumes_are_each_recorded(self):
        # A quarter each: plain runs (run, lock held or paused), starts by an
        # out-of-date crontab line (drift skips), --pause and --resume.
        self.sandbox.write_job("busy", "command: /bin/sleep 0.05\nschedule: '*/5 * * * *'\n")
        self.sandbox.make_directories()
        kinds = (("busy",), ("--job", "busy", "--scheduled", "0 * * * *"),
                 ("--pause", "busy", "--reason", "load"), ("--resume", "busy"))
        processes = [self.launch(*kinds[number % 4]) for number in range(LAUNCHES)]
        results = [(process.wait(timeout=60), process.stderr.read()) for process in processes]
        for process in processes:
            process.stdout.close()
            process.stderr.close()
        codes = [code for code, _ in results]
        self.assertEqual(set(codes[1::4] + codes[2::4] + codes[3::4]), {0}, results)
        self.assertLessEqual(set(codes[::4]), {0, 75}, results)
        config = self.sandbox.load()
        history = read_history(config, "busy")
        self.assertEqual(len(history), LAUNCHES)
        statuses = [entry["status"] for entry in history]
        self.assertEqual(statuses.count("paused"), len(range(2, LAUNCHES, 4)))
        self.assertEqual(statuses.count("resumed"), len(range(3, LAUNCHES, 4)))
        skips = [entry["reason"] for entry in history if entry["status"] == "skipped"]
        self.assertEqual(sum(reason.startswith("rescheduled") for reason in skips),
                         len(range(1, LAUNCHES, 4)))
        self.assertEqual(sum(reason.startswith("lock held") for reason in skips),
                         codes.count(75))
        paused_skips = sum(reason.startswith("paused by ") for reason in skips)
        self.assertEqual(statuses.count("success") + paused_skips + codes.count(75),
                         len(range(0, LAUNCHES, 4)))
        with open(run_job.state_path(config, "busy"), "rb") as state_file:
            state = json.loads(state_file.read().decode())
        self.assertEqual(state, run_job.read_job_state(config, "busy"))
        # The state's pause is the last command's, in the order they were recorded.
        last_command = [status for status in statuses if status in ("paused", "resumed")][-1]
        self.assertEqual("paused" in state, last_command == "paused", state)
        self.assertEqual(sorted(os.listdir(self.sandbox.path("state"))), ["busy.history", "busy.state"])

    def test_a_lock_held_start_is_recorded_as_a_skip_and_not_a_failure(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 30\n")
        self.start_in_background("slow")
        self.wait_until_running("slow")
        code, out, err = self.sandbox.run("slow")
        self.assertEqual((code, out), (75, ""))
        state = run_job.read_job_state(self.sandbox.load(), "slow")
        self.assertTrue(state["last_skip_reason"].startswith("lock held: job slow is still "
                                                             "running"), state)
        self.assertNotIn("consecutive_failures", state)

    def test_a_lock_held_skip_records_what_it_set_aside(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 30\n")
        self.start_in_background("slow")
        self.wait_until_running("slow")
        config = self.sandbox.load()
        with open(run_job.state_path(config, "slow"), "wb") as state:
            state.write(b"garbage\n")
        self.assertEqual(self.sandbox.run("slow")[0], 75)
        entry = read_history(config, "slow")[-1]
        self.assertEqual(entry["status"], "skipped")
        self.assertTrue(entry["set_aside"].startswith("state file set aside: "), entry)
        self.assertIn("state file set aside: ",
                      run_job.read_job_state(config, "slow")["set_aside"])

    def test_a_state_held_locked_too_long_is_an_error_not_a_hang(self):
        # Only processes of the service user can hold it: a job gone wrong.
        self.sandbox.write_job("quick", "command: /bin/true\n")
        self.sandbox.make_directories()
        config = self.sandbox.load()
        holder = subprocess.Popen(["flock", run_job.state_lock_path(config, "quick"),
                                   "sleep", "30"])
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        old, run_job.STATE_LOCK_WAIT = run_job.STATE_LOCK_WAIT, 0.2
        self.addCleanup(setattr, run_job, "STATE_LOCK_WAIT", old)
        path = run_job.state_lock_path(config, "quick")
        deadline = time.monotonic() + 10
        while not is_locked(path):
            self.assertLess(time.monotonic(), deadline, "flock never took the lock")
            time.sleep(0.01)
        with self.assertRaises(run_job.ProcessControlError) as raised:
            run_job.update_state(config, "quick", lambda state: None, 0)
        self.assertIn("held by another process", str(raised.exception))

    def test_a_state_replaced_while_it_is_changed_never_loses_the_change(self):
        # A process that ignores the state lock keeps putting garbage in
        # place: each change sets it aside and is made, none is refused.
        self.sandbox.make_directories()
        config = self.sandbox.load()
        path, spare = run_job.state_path(config, "a"), self.sandbox.path("state", "spare")
        stopped = threading.Event()

        def vandal():
            while not stopped.is_set():
                with open(spare, "wb") as stream:
                    stream.write(b"garbage\n")
                os.rename(spare, path)
        thread = threading.Thread(target=vandal)
        thread.start()
        try:
            for number in range(150):
                run_job.update_state(config, "a", lambda state: {"job": "a", "n": number}, 0)
        finally:
            stopped.set()
            thread.join()
        self.assertEqual([entry["n"] for entry in read_history(config, "a")], list(range(150)))


class TimeTextTests(unittest.TestCase):
    def test_a_times_text_and_number_agree_to_the_millisecond(self):
        for epoch in (1e9 + 0.5475, 1e9 + 0.9996, 1e9, 1e9 + 0.0004, 1764633600.1239):
            text = run_job._iso_time(epoch)
            seconds = time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
            self.assertAlmostEqual(seconds + int(text[20:23]) / 1000.0, round(epoch, 3),
                                   places=6, msg=text)


if __name__ == "__main__":
    unittest.main()
