"""Catch-up after downtime (`catch_up: true`, run-job --catch-up, the
crontab's @reboot line): real run-job and cron-generate processes, real
state files in temporary directories. A downtime is a recorded last start
older than the job's previous scheduled time: no fake clock."""

import datetime
import os
import pwd
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import cron_generate  # noqa: E402
import test_config  # noqa: E402
from test_config import read_history  # noqa: E402
import test_drift  # noqa: E402

YEARLY = "0 0 1 1 *"
TRIGGER_PREFIX = "catch-up: missed "


def last_new_year():
    """The previous scheduled time of YEARLY: last 1 January, 00:00."""
    return run_job.Schedule(YEARLY).previous_before(datetime.datetime.now())


def epoch(moment):
    return time.mktime(moment.timetuple())


class CatchUpTest(test_config.SandboxTest):
    """Jobs whose command appends a line to marks/NAME, each run once."""

    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        os.mkdir(self.sandbox.path("marks"))

    def mark(self, name):
        return self.sandbox.path("marks", name)

    def job(self, name, extra="schedule: '%s'\ncatch_up: true\n" % YEARLY, command=None):
        if command is None:
            command = "/bin/sh -c 'echo run >> %s'" % self.mark(name)
        self.sandbox.write_job(name, "command: %s\n%s" % (command, extra))

    def record_start(self, name, moment, **marks):
        """Job NAME's state as if its last run started at MOMENT (a naive
        local datetime), with MARKS (paused, halted) beside it."""
        start = epoch(moment)

        def change(state):
            state.update(status="success", reason="success", exit_code=0,
                         start=run_job._iso_time(start), start_time=start, **marks)
        run_job.update_state(self.sandbox.load(), name, change, time.time())

    def runs(self, name):
        """How many times job NAME's command ran."""
        if not os.path.exists(self.mark(name)):
            return 0
        with open(self.mark(name)) as marks:
            return len(marks.read().splitlines())

    def history(self, name):
        return read_history(self.sandbox.load(), name)


class CatchUpDecisionTests(CatchUpTest):
    def test_a_job_down_over_many_scheduled_times_runs_once(self):
        self.job("nightly")
        self.record_start("nightly", last_new_year() - datetime.timedelta(days=3 * 365))
        self.assertEqual(self.sandbox.run("--catch-up"), (0, "", ""))
        self.assertEqual(self.runs("nightly"), 1)
        last = self.history("nightly")[-1]
        self.assertEqual(last["status"], "success")
        self.assertEqual(last["trigger"], TRIGGER_PREFIX
                         + last_new_year().strftime("%Y-%m-%d %H:%M"))
        state = run_job.read_job_state(self.sandbox.load(), "nightly")
        self.assertEqual(state["trigger"], last["trigger"])
        with open(state["log"]) as log:
            self.assertIn("#| trigger %s" % last["trigger"], log.read())
        # Caught up: its last start is now after the missed time.
        self.assertEqual(self.sandbox.run("--catch-up"), (0, "", ""))
        self.assertEqual(self.runs("nightly"), 1)

    def test_a_job_that_ran_since_its_last_scheduled_time_is_not_run(self):
        self.job("nightly")
        self.record_start("nightly", last_new_year() + datetime.timedelta(seconds=1))
        self.assertEqual(self.sandbox.run("--catch-up"), (0, "", ""))
        self.assertEqual(self.sandbox.run("--catch-up", "nightly"), (0, "", ""))
        self.assertEqual(self.runs("nightly"), 0)
        self.assertEqual(self.history("nightly"), [])

    def test_only_due_catch_up_jobs_are_caught_up(self):
        long_ago = last_new_year() - datetime.timedelta(days=10)
        self.job("due")
        self.job("never_ran")
        self.job("paused")
        self.job("halted")
        self.job("disabled", "schedule: '%s'\ncatch_up: true\ndisabled: true\n" % YEARLY)
        self.job("unscheduled", "catch_up: true\n")
        self.job("not_asked", "schedule: '%s'\n" % YEARLY)
        for name in ("due", "disabled", "unscheduled", "not_asked"):
            self.record_start(name, long_ago)
        self.record_start("paused", long_ago, paused="2026-01-01T00:00:00.000+0000",
                          paused_by="ops", pause_reason="maintenance")
        self.record_start("halted", long_ago, halted="2026-01-01T00:00:00.000+0000",
                          halt_reason="exit code 3")
        self.assertEqual(self.sandbox.run("--catch-up"), (0, "", ""))
        ran = [name for name in ("due", "never_ran", "paused", "halted", "disabled",
                                 "unscheduled", "not_asked") if self.runs(name)]
        self.assertEqual(ran, ["due"])
        # By hand, one job at a time: the same rule.
        for name in ("never_ran", "halted"):
            self.assertEqual(self.sandbox.run("--catch-up", name), (0, "", ""), name)
            self.assertEqual(self.runs(name), 0, name)

    def test_a_hand_catch_up_of_one_job_runs_it_in_this_process(self):
        self.job("nightly", "schedule: '%s'\ncatch_up: true\n" % YEARLY,
                 command="/bin/sh -c 'echo run >> %s; exit 3'" % self.mark("nightly"))
        self.record_start("nightly", last_new_year() - datetime.timedelta(days=1))
        code, out, err = self.sandbox.run("--catch-up", "nightly")
        self.assertEqual((code, out, self.runs("nightly")), (1, "", 1))
        self.assertIn("job nightly failed (exit status 3)", err)
        last = self.history("nightly")[-1]
        self.assertEqual((last["status"], last["trigger"][:len(TRIGGER_PREFIX)]),
                         ("failed", TRIGGER_PREFIX))

    def test_an_ordinary_run_drops_the_trigger(self):
        self.job("nightly")
        self.record_start("nightly", last_new_year() - datetime.timedelta(days=1))
        self.assertEqual(self.sandbox.run("--catch-up")[0], 0)
        self.assertEqual(self.sandbox.run("nightly")[0], 0)
        self.assertEqual(self.runs("nightly"), 2)
        self.assertNotIn("trigger", run_job.read_job_state(self.sandbox.load(), "nightly"))
        self.assertNotIn("trigger", self.history("nightly")[-1])

    def test_a_bad_last_start_or_state_is_not_caught_up(self):
        self.job("huge")
        self.job("broken")

        def change(state):
            state.update(start_time=1e300)
        run_job.update_state(self.sandbox.load(), "huge", change, time.time())
        test_config.write_file(self.sandbox.path("state", "broken.state"), "not json\n")
        self.assertEqual(self.sandbox.run("--catch-up"), (0, "", ""))
        self.assertEqual((self.runs("huge"), self.runs("broken")), (0, 0))


class CatchUpProcessTests(CatchUpTest):
    def test_a_slow_job_does_not_delay_the_others(self):
        self.job("a_slow", command="/bin/sleep 30")
        self.job("b_fast")
        for name in ("a_slow", "b_fast"):
            self.record_start(name, last_new_year() - datetime.timedelta(days=1))
        config = self.sandbox.load()
        with open(self.sandbox.path("catch-up.out"), "w+") as output:
            started = time.monotonic()
            code = subprocess.call([sys.executable, test_config.RUN_JOB_CODE, "--config",
                                    self.sandbox.config, "--catch-up"],
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                   timeout=20)
            self.assertEqual(code, 0)
            self.assertLess(time.monotonic() - started, 10, "--catch-up waited")
            self.addCleanup(self.sandbox.run, "--kill-job", "a_slow")
            deadline = time.monotonic() + 10
            while self.runs("b_fast") == 0:
                self.assertLess(time.monotonic(), deadline, "b_fast never ran")
                time.sleep(0.02)
            self.wait_until_running("a_slow")
            running = run_job.running_info(config, "a_slow")
            self.assertIsNotNone(running, "a_slow ended already")
            # Each run is its own process, not --catch-up's.
            self.assertNotEqual(running["pid"], os.getpid())
        self.assertEqual(self.sandbox.run("--kill-job", "a_slow")[0], 0)
        self.assertEqual(self.history("a_slow")[-1]["status"], "killed")
        self.assertTrue(self.history("a_slow")[-1]["trigger"].startswith(TRIGGER_PREFIX))

    def test_a_running_job_is_not_caught_up(self):
        self.job("slow", command="/bin/sleep 30")
        self.record_start("slow", last_new_year() - datetime.timedelta(days=1))
        self.start_in_background("slow")
        self.wait_until_running("slow")
        self.assertEqual(self.sandbox.run("--catch-up"), (0, "", ""))
        self.assertEqual(self.sandbox.run("--catch-up", "slow"), (0, "", ""))
        self.assertEqual(self.history("slow"), [])  # no run, no lock-held skip

    def test_an_invalid_job_file_is_reported_and_the_others_caught_up(self):
        self.job("nightly")
        self.record_start("nightly", last_new_year() - datetime.timedelta(days=1))
        self.sandbox.write_job("broken", "command: /bin/true\ntimeot: 5\n")
        code, out, err = self.sandbox.run("--catch-up")
        self.assertEqual((code, out), (78, ""))
        self.assert_one_error_line(err, "broken.yaml", "timeot")
        self.assertEqual(self.runs("nightly"), 1)

    def test_usage(self):
        self.assertEqual(run_job.parse_command_line(["--catch-up"]).actions, ["catch-up"])
        hand = run_job.parse_command_line(["--catch-up", "x"])
        self.assertEqual((hand.actions, hand.job, hand.catch_up), (["run"], "x", True))
        for arguments in (("--catch-up", "--status"), ("--catch-up", "--check"),
                          ("--catch-up", "--scheduled", YEARLY, "x"),
                          ("--catch-up", "--kill-job", "x")):
            with self.assertRaises(run_job.UsageError, msg=arguments) as caught:
                run_job.parse_command_line(list(arguments))
            self.assertIn("--catch-up", str(caught.exception))
        code, out, err = self.sandbox.run("--catch-up", "--list-jobs")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "--catch-up")

    def test_only_the_service_user_or_root_catches_up(self):
        self.job("nightly")
        self.record_start("nightly", last_new_year() - datetime.timedelta(days=1))
        if os.geteuid() == 0:
            options = test_config.as_nobody(self.sandbox)
        else:  # jobs run as root: an ordinary user is refused
            self.sandbox.write_config(user="root")
            options = {}
        code, out, err = self.sandbox.run("--catch-up", **options)
        self.assertEqual(code, 77, err)
        self.assert_one_error_line(err, "run-job --catch-up")
        self.assertEqual(self.runs("nightly"), 0)


@test_config.root_only
class RootCatchUpTests(CatchUpTest):
    def test_root_catches_up_as_the_service_user(self):
        # The catch-up runs are started as the service user, with the
        # interpreter and the script --catch-up runs with.
        self.sandbox.write_config(user=test_config.UNPRIVILEGED)
        os.chmod(self.sandbox.path("marks"), 0o777)
        self.job("nightly", command="/bin/sh -c 'id -un >> %s'" % self.mark("nightly"))
        self.record_start("nightly", last_new_year() - datetime.timedelta(days=1))
        account = pwd.getpwnam(test_config.UNPRIVILEGED)
        for directory in ("state", "run", "log"):  # as cron-generate makes them
            for path in [self.sandbox.path(directory)] + [
                    self.sandbox.path(directory, name)
                    for name in os.listdir(self.sandbox.path(directory))]:
                os.chown(path, account.pw_uid, account.pw_gid)
        code, out, err = self.sandbox.run("--catch-up", python=test_config.SYSTEM_PYTHON,
                                          script=self.sandbox.copy_script())
        self.assertEqual((code, out, err), (0, "", ""))
        with open(self.mark("nightly")) as marks:
            self.assertEqual(marks.read(), test_config.UNPRIVILEGED + "\n")


class ScheduleTests(unittest.TestCase):
    def test_reboot_stays_refused_as_a_job_schedule(self):
        with self.assertRaises(run_job.ConfigError) as caught:
            run_job.Schedule("@reboot")
        self.assertIn("'@reboot' is not supported", caught.exception.message)


class CrontabTests(test_drift.DriftTest):
    """cron-generate's @reboot line, and --check and --status on it."""

    def reboot_lines(self):
        return [line for line in self.box.read_crontab().splitlines()
                if line.startswith("@reboot")]

    def assert_up_to_date(self, run_job_too=False):
        code, out, err = self.box.run("--check")
        self.assertEqual((code, err), (0, ""))
        if not run_job_too:
            return
        code, out, err = self.box.run_job("--check")
        self.assertEqual((code, err), (0, ""))
        code, out, err = self.box.run_job("--status")
        self.assertNotIn("out of date", out)

    def test_one_reboot_line_when_a_scheduled_job_catches_up(self):
        self.box.touching_job("a", "schedule: '%s'\ncatch_up: true\n" % YEARLY)
        self.box.touching_job("b", "schedule: '%s'\ncatch_up: true\n" % YEARLY)
        self.box.touching_job("c", "schedule: '%s'\n" % YEARLY)
        self.generate()
        user = self.box.settings["user"]
        self.assertEqual(self.reboot_lines(), ["@reboot %s /usr/bin/run-job --catch-up" % user])
        text = self.box.read_crontab()
        self.assertTrue(text.endswith("@reboot %s /usr/bin/run-job --catch-up\n" % user))
        cron_generate.validate_crontab(text, self.box.global_config())
        self.assert_up_to_date(run_job_too=True)

    def test_no_reboot_line_without_a_scheduled_catch_up_job(self):
        self.box.touching_job("a", "schedule: '%s'\n" % YEARLY)
        self.box.touching_job("b", "schedule: '%s'\ncatch_up: true\ndisabled: true\n" % YEARLY)
        self.box.touching_job("c", "catch_up: true\n")
        self.generate()
        self.assertEqual(self.reboot_lines(), [])
        self.assertNotIn("--catch-up", self.box.read_crontab())
        self.assert_up_to_date()

    def test_the_reboot_line_takes_the_template(self):
        self.box.write_config('cron_template: "{schedule} {user} nice {command}\\n"\n')
        self.box.touching_job("a", "schedule: '%s'\ncatch_up: true\n" % YEARLY)
        self.generate()
        self.assertEqual(self.reboot_lines(), ["@reboot %s nice /usr/bin/run-job --catch-up"
                                               % self.box.settings["user"]])
        self.assert_up_to_date()

    def test_a_missing_or_surplus_reboot_line_is_drift(self):
        self.box.touching_job("a", "schedule: '%s'\n" % YEARLY)
        self.generate()
        self.box.touching_job("a", "schedule: '%s'\ncatch_up: true\n" % YEARLY)
        missing = "catch_up: true, but the crontab has no @reboot line for run-job --catch-up"
        code, out, err = self.box.run("--check")
        self.assertEqual(code, 0)
        self.assertIn("(job a: %s)" % missing, err)
        code, out, err = self.box.run_job("--check")
        self.assertIn(missing, err)
        self.assertIn("a.yaml", err)
        self.assertIn("crontab: out of date (%s)" % missing, self.box.run_job("--status")[1])
        self.generate()
        self.box.touching_job("a", "schedule: '%s'\n" % YEARLY)
        surplus = "it runs run-job --catch-up, but no scheduled job has catch_up: true"
        code, out, err = self.box.run("--check")
        self.assertIn("(%s)" % surplus, err)
        self.assertIn(surplus, self.box.run_job("--check")[2])

    def test_the_reboot_line_is_no_job_line(self):
        crontab = run_job.parse_installed_crontab(
            "/etc/cron.d/x", b"# --catch-up\n@reboot u /usr/bin/run-job --catch-up\n"
                             b"0 3 * * * u /usr/bin/run-job --job a --scheduled '0 3 * * *'\n")
        self.assertEqual((crontab.jobs, crontab.catch_up_lines), ({"a": ["0 3 * * *"]}, 1))
        self.assertEqual(run_job.crontab_orphans(crontab, ["a"]), [])

    def test_cron_line_problems_of_reboot_lines(self):
        problem = cron_generate.cron_line_problem
        self.assertIsNone(problem("@reboot u /usr/bin/run-job --catch-up", "u"))
        self.assertIsNone(problem("@reboot\tu\t/usr/bin/run-job --catch-up", "u"))
        self.assertIn("not a cron entry", problem("@reboot u", "u"))
        self.assertIn("not the service user", problem("@reboot root /bin/true", "u"))
        self.assertIn("unescaped %", problem("@reboot u date +%s", "u"))
        self.assertIsNotNone(problem("@daily u /bin/true", "u"))


if __name__ == "__main__":
    unittest.main()
