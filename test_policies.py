"""Pause, halt and backoff, and the --tag selection: real run-job processes
on job files, state and history in temporary directories. Backoff windows
are tested on recorded failures whose times lie in the past (written with
update_state), not by waiting and not with a fake clock."""

import datetime
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import (CURRENT_USER, IS_ROOT, SandboxTest, as_nobody,  # noqa: E402
                         read_history)

# No SUDO_USER: the caller recorded is the real user, whoever runs the suite.
AS_CALLER = {"environ": {"SUDO_USER": ""}}


class PolicyTest(SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.config = self.sandbox.load()

    def write_counting_job(self, name, extra=""):
        """A job that appends a line to NAME.ran at each run."""
        self.sandbox.write_job(name, "command: /bin/sh -c 'echo run >> %s'\n%s"
                               % (self.sandbox.path(name + ".ran"), extra))

    def runs_of(self, name):
        try:
            with open(self.sandbox.path(name + ".ran")) as ran:
                return len(ran.readlines())
        except FileNotFoundError:
            return 0

    def logs_of(self, name):
        directory = self.sandbox.path("log", name)
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []

    def state(self, name):
        return run_job.read_job_state(self.config, name)

    def history(self, name):
        return read_history(self.config, name)

    def command(self, *args, **options):
        """A --pause, --resume or --reset that must succeed, silently."""
        options = dict(AS_CALLER, **options)
        self.assertEqual(self.sandbox.run(*args, **options), (0, "", ""), args)


class PauseTests(PolicyTest):
    def test_pause_and_resume_round_trip_with_their_history_lines(self):
        self.write_counting_job("report")
        before = time.time()
        self.command("--pause", "report", "--reason", "disk swap")
        state = self.state("report")
        self.assertEqual((state["paused_by"], state["pause_reason"]), (CURRENT_USER, "disk swap"))
        self.assertGreaterEqual(state["paused_time"], round(before, 3))
        since = state["paused"]
        self.assertEqual(self.history("report")[-1],
                         {"job": "report", "status": "paused", "reason": "disk swap",
                          "start": since, "start_time": state["paused_time"],
                          "pid": self.history("report")[-1]["pid"], "by": CURRENT_USER})

        # Paused again: who and why change, since when stays.
        self.command("--pause", "report", "--reason", "still swapping")
        state = self.state("report")
        self.assertEqual((state["paused"], state["pause_reason"]), (since, "still swapping"))

        self.command("--resume", "report")
        state = self.state("report")
        for key in run_job.PAUSE_KEYS:
            self.assertNotIn(key, state)
        resumed = self.history("report")[-1]
        self.assertEqual((resumed["status"], resumed["by"], resumed["reason"]),
                         ("resumed", CURRENT_USER,
                          "was paused by %s at %s: still swapping" % (CURRENT_USER, since)))
        # Resuming a job that is not paused is no error, and is recorded.
        self.command("--resume", "report")
        self.assertEqual(self.history("report")[-1]["reason"], "not paused")
        self.assertEqual([entry["status"] for entry in self.history("report")],
                         ["paused", "paused", "resumed", "resumed"])
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        self.assertEqual(self.runs_of("report"), 1)

    def test_a_paused_run_is_skipped_silently_without_a_log(self):
        self.write_counting_job("report")
        self.command("--pause", "report")
        for args in (["report"], ["--job", "report"]):
            self.assertEqual(self.sandbox.run(*args), (0, "", ""))
        self.assertEqual((self.runs_of("report"), self.logs_of("report")), (0, []))
        skips = self.history("report")[1:]
        self.assertEqual([entry["status"] for entry in skips], ["skipped", "skipped"])
        paused = self.state("report")["paused"]
        self.assertEqual(skips[0]["reason"], "paused by %s at %s" % (CURRENT_USER, paused))
        self.assertEqual(self.state("report")["last_skip_reason"], skips[0]["reason"])
        self.assertNotIn("status", self.state("report"))  # it never ran

    def test_force_runs_a_paused_job_once_and_it_stays_paused(self):
        self.write_counting_job("report")
        self.command("--pause", "report", "--reason", "why")
        self.assertEqual(self.sandbox.run("--force", "report"), (0, "", ""))
        self.assertEqual((self.runs_of("report"), len(self.logs_of("report"))), (1, 1))
        state = self.state("report")
        self.assertEqual((state["status"], state["pause_reason"]), ("success", "why"))
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        self.assertEqual(self.runs_of("report"), 1)

    def test_force_is_for_a_run_by_hand_only(self):
        self.write_counting_job("report")
        for args in (["--force", "--status"], ["--force", "--pause", "report"],
                     ["--force", "--job", "report", "--scheduled", "* * * * *"]):
            code, out, err = self.sandbox.run(*args)
            self.assertEqual(code, 64, args)
            self.assert_one_error_line(err, "--force applies only to running a job by hand")
        code, out, err = self.sandbox.run("--resume", "report", "--reason", "x")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "--reason applies only to --pause")
        code, out, err = self.sandbox.run("--reset")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "--reset needs job names or --tag TAG")

    def test_the_user_sudo_ran_it_for_is_recorded(self):
        self.write_counting_job("report")
        self.command("--pause", "report", environ={"SUDO_USER": "alice"})
        self.assertEqual(self.state("report")["paused_by"], "alice")
        self.assertEqual(self.history("report")[-1]["by"], "alice")

    def test_every_name_must_be_a_job_before_any_is_changed(self):
        self.write_counting_job("report")
        code, out, err = self.sandbox.run("--pause", "report", "nosuchjob")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "no job named nosuchjob")
        self.assertIsNone(self.state("report"))
        code, out, err = self.sandbox.run("--pause", "report.yaml")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "pause the job by its name: run-job --pause report")

    def test_a_user_other_than_the_service_user_gets_77(self):
        # As root, become nobody with a config naming daemon; otherwise name root.
        options = as_nobody(self.sandbox) if IS_ROOT else {}
        service_user = "daemon" if IS_ROOT else "root"
        self.sandbox.write_config(user=service_user)
        self.write_counting_job("report")
        for action in ("--pause", "--resume", "--reset"):
            with self.subTest(action=action):
                code, out, err = self.sandbox.run(action, "report", **options)
                self.assertEqual((code, out), (77, ""), err)
                self.assert_one_error_line(err, "run `run-job %s report` as root" % action)
        self.assertEqual(os.listdir(self.sandbox.path("state")), [])


class LoggerTests(PolicyTest):
    def test_commands_and_policy_skips_reach_the_configured_logger(self):
        events = self.sandbox.path("events.log")
        self.sandbox.write_config(extra=(
            "logging:\n  version: 1\n  formatters: {plain: {format: '%%(levelname)s "
            "%%(message)s'}}\n  handlers: {events: {class: logging.FileHandler, filename: %s, "
            "formatter: plain}}\n  loggers: {process-control: {handlers: [events], "
            "level: INFO}}\n" % events))
        self.sandbox.write_job("fatal", "command: /bin/false\nhalt_on_exit_codes: 1\n")
        self.command("--pause", "fatal", "--reason", "why")
        self.assertEqual(self.sandbox.run("fatal"), (0, "", ""))
        self.command("--resume", "fatal")
        self.sandbox.run("fatal")
        self.assertEqual(self.sandbox.run("fatal")[0], 69)
        self.command("--reset", "fatal")
        with open(events) as stream:
            lines = [line for line in stream.read().splitlines() if " started " not in line]
        paused = self.history("fatal")[0]["start"]
        halted = self.history("fatal")[-2]["reason"]
        self.assertEqual(lines, [
            "INFO job fatal paused by %s (why)" % CURRENT_USER,
            "INFO job fatal skipped: paused by %s at %s: why" % (CURRENT_USER, paused),
            "INFO job fatal resumed by %s (was paused by %s at %s: why)"
            % (CURRENT_USER, CURRENT_USER, paused),
            lines[3],  # the failure
            "WARNING job fatal skipped: %s" % halted,
            "INFO job fatal reset by %s (was %s; had 1 consecutive failure)"
            % (CURRENT_USER, halted)])
        self.assertTrue(lines[3].startswith("ERROR job fatal failed (exit status 1)"))


class MarkTests(PolicyTest):
    def test_a_mark_cleared_by_hand_with_false_or_0_is_no_mark_anywhere(self):
        # Runs, --status and --catch-up ask the same question of the state.
        self.write_counting_job("tidy", "schedule: '0 * * * *'\ncatch_up: true\n")
        for cleared in ({"halted": 0, "halted_time": 5}, {"paused": False}, {"paused": ""},
                        {"halted": None, "paused": None}):
            run_job.write_file_atomic(run_job.state_path(self.config, "tidy"), run_job.json_line(
                dict({"job": "tidy", "start_time": 1.0}, **cleared)).encode())
            state = self.state("tidy")
            self.assertIsNone(run_job.policy_skip_reason(
                run_job.load_job(self.config, "tidy"), state, time.time()), cleared)
            status = json.loads(self.sandbox.run("--status", "--json", "tidy")[1])["jobs"][0]
            self.assertEqual((status["paused"], status["halted"]), (None, None), cleared)
            now = datetime.datetime.now()
            self.assertIsNotNone(run_job.catch_up_decision(
                run_job.load_job(self.config, "tidy"), state, now)[0], cleared)
            self.assertEqual(self.sandbox.run("tidy"), (0, "", ""), cleared)


class BadLockTests(PolicyTest):
    def test_a_bad_state_lock_is_one_line_with_its_fix_and_shown_by_status(self):
        self.write_counting_job("fifo")
        os.mkfifo(run_job.state_lock_path(self.config, "fifo"))
        code, out, err = self.sandbox.run("--pause", "fifo", **AS_CALLER)
        self.assertEqual((code, out, len(err.splitlines())), (77, "", 1), err)
        self.assertTrue(err.rstrip().endswith("is a FIFO, not a regular file; remove it: it "
                                              "is job fifo's state lock"), err)
        code, out, err = self.sandbox.run("--status", "--json", "fifo")
        self.assertIn("fifo.state.lock is a FIFO",
                      json.loads(out)["jobs"][0]["lock_error"])


class HaltTests(PolicyTest):
    def test_a_halt_after_failures_survives_a_restart_and_clears_with_reset(self):
        self.sandbox.write_job("flaky", "command: /bin/false\nhalt_after_failures: 2\n")
        for expected_failures in (1, 2):
            code, out, err = self.sandbox.run("flaky")
            self.assertEqual(code, 1, err)
            self.assertEqual(self.state("flaky")["consecutive_failures"], expected_failures)
        state = self.state("flaky")
        self.assertEqual(state["halt_reason"], "2 consecutive failures")
        self.assertEqual(self.history("flaky")[-1]["halt_reason"], "2 consecutive failures")
        self.assertAlmostEqual(state["halted_time"], state["start_time"] + state["duration"],
                               delta=0.01)
        logs = self.logs_of("flaky")
        # Each run is a new process reading the same state directory.
        for _ in range(2):
            code, out, err = self.sandbox.run("flaky")
            self.assertEqual((code, out), (69, ""))
            self.assertEqual(err, "run-job: job flaky is halted since %s: 2 consecutive "
                             "failures; run-job --reset flaky clears it\n" % state["halted"])
        self.assertEqual(self.logs_of("flaky"), logs)
        skip = self.history("flaky")[-1]
        self.assertEqual((skip["status"], skip["reason"]),
                         ("skipped", "halted since %s: 2 consecutive failures" % state["halted"]))

        self.command("--reset", "flaky")
        halted, state = state, self.state("flaky")
        for key in run_job.HALT_KEYS:
            self.assertNotIn(key, state)
        self.assertEqual((state["consecutive_failures"], state["status"]), (0, "failed"))
        reset = self.history("flaky")[-1]
        self.assertEqual((reset["status"], reset["by"], reset["reason"]),
                         ("reset", CURRENT_USER, "was halted since %s: 2 consecutive failures; "
                          "had 2 consecutive failures" % halted["halted"]))
        code, out, err = self.sandbox.run("flaky")
        self.assertEqual(code, 1, err)  # runs again, and fails from one again
        self.assertEqual(self.state("flaky")["consecutive_failures"], 1)
        self.assertNotIn("halted", self.state("flaky"))

    def test_an_exit_code_in_halt_on_exit_codes_halts_at_once(self):
        self.sandbox.write_job("fatal", "command: /bin/sh -c 'exit 2'\n"
                                        "halt_on_exit_codes: [2, 78]\n")
        self.sandbox.write_job("other", "command: /bin/sh -c 'exit 3'\n"
                                        "halt_on_exit_codes: 2\n")
        self.assertEqual(self.sandbox.run("other")[0], 1)
        self.assertNotIn("halted", self.state("other"))
        self.assertEqual(self.sandbox.run("fatal")[0], 1)
        halted = self.state("fatal")
        self.assertEqual(halted["halt_reason"], "exit code 2 is in halt_on_exit_codes")
        code, out, err = self.sandbox.run("fatal")
        self.assertEqual(code, 69)
        self.assert_one_error_line(err, "exit code 2 is in halt_on_exit_codes; "
                                   "run-job --reset fatal clears it")
        # Forced, it runs; failing again leaves the halt as it was.
        self.assertEqual(self.sandbox.run("--force", "fatal")[0], 1)
        state = self.state("fatal")
        self.assertEqual((state["halted"], state["consecutive_failures"]), (halted["halted"], 2))
        self.assertNotIn("halt_reason", self.history("fatal")[-1])

    def test_a_timeout_counts_and_a_lock_held_start_does_not(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 30\ntimeout: 0.2\nkill_grace: 0.1\n"
                                       "halt_after_failures: 1\n")
        self.sandbox.write_job("busy", "command: /bin/sleep 30\nhalt_after_failures: 1\n")
        self.start_in_background("busy")
        self.wait_until_running("busy")
        self.assertEqual(self.sandbox.run("busy")[0], 75)
        self.assertNotIn("halted", self.state("busy"))
        self.assertEqual(self.sandbox.run("slow")[0], 124)
        self.assertEqual(self.state("slow")["halt_reason"], "1 consecutive failure")

    def test_a_run_killed_by_hand_is_no_failure(self):
        # Killed twice, then one failure: one consecutive failure, not three.
        self.sandbox.write_job("stopped", "command: /bin/sh -c 'test -e %s || exec sleep 30; "
                               "exit 3'\nhalt_after_failures: 2\nbackoff: true\n"
                               % self.sandbox.path("fail-now"))
        for _ in range(2):
            process = self.start_in_background("stopped")
            self.wait_until_running("stopped")
            self.assertEqual(self.sandbox.run("--kill-job", "stopped")[0], 0)
            self.assertEqual(process.wait(timeout=20), 1)
            self.assertEqual(self.state("stopped")["consecutive_failures"], 0)
        with open(self.sandbox.path("fail-now"), "w"):
            pass
        self.assertEqual(self.sandbox.run("stopped")[0], 1)
        state = self.state("stopped")
        self.assertEqual(state["consecutive_failures"], 1)
        self.assertNotIn("halted", state)

    def test_paused_wins_over_halted_quietly(self):
        self.sandbox.write_job("fatal", "command: /bin/false\nhalt_on_exit_codes: 1\n")
        self.sandbox.run("fatal")
        self.command("--pause", "fatal")
        self.assertEqual(self.sandbox.run("fatal"), (0, "", ""))
        self.assertTrue(self.history("fatal")[-1]["reason"].startswith("paused by "))


class BackoffTests(PolicyTest):
    def record_failures(self, name, failures, ended_ago, duration=2.0):
        """Job NAME's state as after FAILURES consecutive failures, the last of
        DURATION seconds ending ENDED_AGO seconds ago."""
        end = time.time() - ended_ago

        def change(state):
            state.update(status="failed", start_time=end - duration, duration=duration,
                         consecutive_failures=failures)
        run_job.update_state(self.config, name, change, time.time())
        state = self.state(name)  # its times as recorded, to the millisecond
        return state["start_time"] + state["duration"]

    def test_backoff_windows_follow_the_recorded_failures(self):
        self.write_counting_job("flaky", "backoff: {initial: 1m, max: 10m}\n")
        for failures, delay in ((1, 60), (2, 120), (4, 480), (5, 600), (10 ** 6, 600)):
            with self.subTest(failures=failures):
                end = self.record_failures("flaky", failures, delay - 30)
                runs = self.runs_of("flaky")
                self.assertEqual(self.sandbox.run("flaky"), (0, "", ""))
                self.assertEqual(self.runs_of("flaky"), runs)
                self.assertEqual(self.history("flaky")[-1]["reason"],
                                 "backing off until %s after %d consecutive failure%s"
                                 % (run_job._iso_time(end + delay), failures,
                                    "" if failures == 1 else "s"))
                self.record_failures("flaky", failures, delay + 30)
                self.assertEqual(self.sandbox.run("flaky"), (0, "", ""))
                self.assertEqual(self.runs_of("flaky"), runs + 1)

    def test_a_success_clears_the_backoff(self):
        marker = self.sandbox.path("ok")
        self.sandbox.write_job("flaky", "command: /bin/test -e %s\nbackoff: true\n" % marker)
        self.assertEqual(self.sandbox.run("flaky")[0], 1)
        self.assertEqual(self.sandbox.run("flaky"), (0, "", ""))  # backing off 5 minutes
        self.assertTrue(self.history("flaky")[-1]["reason"].startswith("backing off until "))
        self.assertEqual(self.sandbox.run("--force", "flaky")[0], 1)  # 2 failures now
        self.assertEqual(self.state("flaky")["consecutive_failures"], 2)
        open(marker, "w").close()
        self.assertEqual(self.sandbox.run("--force", "flaky"), (0, "", ""))
        self.assertEqual(self.state("flaky")["consecutive_failures"], 0)
        self.assertEqual(self.sandbox.run("flaky"), (0, "", ""))
        self.assertEqual(self.history("flaky")[-1]["status"], "success")

    def test_reset_clears_the_backoff(self):
        self.write_counting_job("flaky", "backoff: true\n")
        self.record_failures("flaky", 3, 1)
        self.assertEqual(self.sandbox.run("flaky"), (0, "", ""))
        self.assertEqual(self.runs_of("flaky"), 0)
        self.command("--reset", "flaky")
        self.assertEqual(self.history("flaky")[-1]["reason"], "had 3 consecutive failures")
        self.assertEqual(self.sandbox.run("flaky"), (0, "", ""))
        self.assertEqual(self.runs_of("flaky"), 1)

    def test_a_failure_recorded_in_the_future_backs_off_at_most_max_from_now(self):
        self.write_counting_job("flaky", "backoff: {initial: 1m, max: 2m}\n")
        job = run_job.load_job(self.config, "flaky")
        now = time.time()
        state = {"consecutive_failures": 9, "start_time": now + 10 ** 9, "duration": 1}
        self.assertEqual(run_job.backoff_until(job, state, now), now + 120)
        self.assertEqual(job.backoff, (60.0, 120.0))
        # A damaged state (anyone of the service user can write it) is no traceback.
        for damaged, until in (({"consecutive_failures": float("inf")}, None),
                               ({"consecutive_failures": 10 ** 400, "start_time": -10 ** 400,
                                 "duration": 1.5}, 121.5),
                               ({"consecutive_failures": -3}, None),
                               ({"consecutive_failures": "3"}, None),
                               ({"consecutive_failures": 1, "start_time": float("inf"),
                                 "duration": float("-inf")}, 60)):  # no time: long past
            self.assertEqual(run_job.backoff_until(job, damaged, now), until, damaged)
        self.write_counting_job("flaky", "backoff: true\n")
        self.assertEqual(run_job.load_job(self.config, "flaky").backoff, (300.0, 21600.0))
        self.write_counting_job("flaky", "backoff: {max: 1h}\n")
        self.assertEqual(run_job.load_job(self.config, "flaky").backoff, (300.0, 3600.0))


class KeyErrorTests(PolicyTest):
    def test_bad_values_are_errors_at_their_position(self):
        cases = [
            ("halt_after_failures: 0\n", 2, 1, "`halt_after_failures` must be a whole number "
                                               "from 1 to"),
            ("halt_after_failures: true\n", 2, 1, "must be a whole number from 1 to"),
            ("halt_on_exit_codes: [2, 256]\n", 2, 25, "must list exit codes from 0 to 255"),
            ("backoff: 5m\n", 2, 1, "`backoff` must be true, false or a mapping"),
            ("backoff: {initial: 5m, maxx: 6h}\n", 2, 24, "unknown key `maxx`; did you mean "
                                                          "`max`?"),
            ("backoff:\n    initial: 5x\n", 3, 5, "`backoff: initial`: "),
            ("backoff:\n    initial: 0\n", 3, 5, "`backoff: initial` must be longer than 0"),
            ("backoff:\n    initial: 7h\n", 2, 1, "initial 25200s is longer than max 21600s"),
            ("backoff: {initial: 1h, max: 30m}\n", 2, 24, "initial 3600s is longer than max "
                                                          "1800s"),
        ]
        for text, line, column, message in cases:
            with self.subTest(text=text):
                path = self.sandbox.write_job("bad", "command: /bin/true\n" + text)
                with self.assertRaises(run_job.ConfigError) as raised:
                    run_job.load_job(self.config, "bad")
                self.assertTrue(str(raised.exception).startswith("%s:%d:%d: " % (path, line,
                                                                               column)),
                                str(raised.exception))
                self.assertIn(message, str(raised.exception))

    def test_check_reports_them_too(self):
        self.sandbox.write_job("bad", "command: /bin/true\nbackoff: {intial: 5m}\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "bad.yaml:2:11: unknown key `intial`; did you mean "
                                        "`initial`?")


class TagTests(PolicyTest):
    def setUp(self):
        super().setUp()
        self.write_counting_job("alpha", "tags: [db, nightly]\n")
        self.write_counting_job("beta", "tag: web\n")
        self.write_counting_job("gamma")
        self.sandbox.write_job("broken", "command: /bin/true\ntags: [db]\ntimout: 1\n")

    def test_list_and_status_select_by_any_tag(self):
        self.assertEqual(self.sandbox.run("--list-jobs", "--tag", "db"), (0, "alpha\n", ""))
        self.assertEqual(self.sandbox.run("-l", "--tag", "web", "--tag=nightly"),
                         (0, "alpha\nbeta\n", ""))
        code, out, err = self.sandbox.run("--status", "--tag", "web")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines()[0], "beta - beta")
        self.assertNotIn("alpha", out)

    def test_a_tag_no_job_has_is_a_usage_error_listing_the_tags(self):
        for args in (["-l", "--tag", "nightyl"], ["--status", "--tag", "db", "--tag", "x"],
                     ["--pause", "--tag", "x"], ["--kill-job", "--tag", "x"]):
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual((code, out), (64, ""))
                self.assert_one_error_line(err, "no job has the tag '%s'; the tags are db, "
                                                "nightly, web" % args[-1])
        self.assertEqual(os.listdir(self.sandbox.path("state")), [])

    def test_names_and_tags_together_or_elsewhere_are_usage_errors(self):
        for args, message in ((["--status", "beta", "--tag", "db"], "not both"),
                              (["--pause", "beta", "--tag", "db"], "not both"),
                              (["--kill-job", "beta", "--tag", "db"], "not both"),
                              (["--check", "--tag", "db"], "--tag applies only to"),
                              (["--tag", "db", "beta"], "--tag applies only to")):
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual(code, 64)
                self.assert_one_error_line(err, message)

    def test_pause_resume_and_reset_by_tag(self):
        self.command("--pause", "--tag", "nightly", "--tag", "web", "--reason", "freeze")
        self.assertEqual(self.state("alpha")["pause_reason"], "freeze")
        self.assertEqual(self.state("beta")["pause_reason"], "freeze")
        self.assertIsNone(self.state("gamma"))
        for name in ("alpha", "beta", "gamma"):
            self.assertEqual(self.sandbox.run(name), (0, "", ""))
        self.assertEqual([self.runs_of(name) for name in ("alpha", "beta", "gamma")], [0, 0, 1])
        self.command("--resume", "--tag", "db")
        self.assertNotIn("paused", self.state("alpha"))
        self.assertIn("paused", self.state("beta"))
        self.command("--reset", "--tag", "web")
        self.assertEqual(self.history("beta")[-1]["status"], "reset")

    def test_kill_job_by_tag_stops_the_running_ones(self):
        code, out, err = self.sandbox.run("--kill-job", "--tag", "web")
        self.assertEqual((code, out), (1, ""))
        self.assert_one_error_line(err, "no job tagged web is running")
        self.sandbox.write_job("beta", "command: /bin/sleep 30\ntag: web\n")
        process = self.start_in_background("beta")
        self.wait_until_running("beta")
        self.assertEqual(self.sandbox.run("--kill-job", "--tag", "web", "--tag", "db"),
                         (0, "", ""))
        self.assertEqual(process.wait(timeout=10), 1)
        self.assertEqual(self.state("beta")["status"], "killed")


if __name__ == "__main__":
    unittest.main()
