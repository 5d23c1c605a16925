"""Tests for run-job --health, the monitoring check: its first line and
perfdata as the Monitoring Plugins guidelines write them, one line per job at
fault, and the exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, never
another) for each cause. Real files in temporary directories and the real
clock: states are recorded with run_job.update_state and record_skip, as runs
and skips record them, with times relative to now."""

import contextlib
import datetime
import io
import itertools
import os
import random
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import test_config  # noqa: E402

FIRST_LINE = re.compile(r"^PROCESS-CONTROL (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)"
                        r"(?: \| (.*))?$")
# The guidelines' 'label'=value[UOM];[warn];[crit];[min];[max], trailing
# semicolons optional; value, min and max in [-0-9.], warn and crit ranges.
PERFDATA_ITEM = re.compile(r"^(?:'(?:[^']|'')+'|[^'= ]+)=(-?[0-9.]+)(?:[a-zA-Z%]*)"
                           r"(?:;([~@0-9.:-]*)){0,2}(?:;(-?[0-9.]*)){0,2}$")
STATE_CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
DAILY = "0 3 * * *"


def perfdata(line):
    """{label: value} of the first line's perfdata, each item checked
    against the guidelines' syntax."""
    match = FIRST_LINE.match(line)
    figures = {}
    for item in match.group(3).split(" "):
        found = PERFDATA_ITEM.match(item)
        if found is None:
            raise AssertionError("not perfdata: %r" % item)
        figures[item.split("=", 1)[0].strip("'")] = int(found.group(1))
    return figures


def daily_times_before(moment):
    """The two latest 03:00s strictly before MOMENT (Unix time), earlier first:
    worked out here by the calendar, not by run_job."""
    local = datetime.datetime.fromtimestamp(moment)
    latest = local.replace(hour=3, minute=0, second=0, microsecond=0)
    if latest >= local:
        latest -= datetime.timedelta(days=1)
    earlier = latest - datetime.timedelta(days=1)
    return [time.mktime(day.timetuple()) for day in (earlier, latest)]


class HealthTest(test_config.SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.config = self.sandbox.load()

    def job(self, name, text="", schedule=DAILY, age=None):
        """A job file NAME (TEXT its extra keys) scheduled SCHEDULE, last
        changed AGE seconds ago (now when None)."""
        lines = "command: /bin/true\n"
        if schedule is not None:
            lines += "schedule: '%s'\n" % schedule
        path = self.sandbox.write_job(name, lines + text)
        if age is not None:
            then = time.time() - age
            os.utime(path, (then, then))
        return path

    def record(self, name, **keys):
        """Job NAME's state gains KEYS, as update_state writes a state."""
        def change(state):
            state.update(keys)
        run_job.update_state(self.config, name, change, time.time())

    def ran(self, name, start, status="success", failures=0):
        """Job NAME's state says its last run started at START (Unix time)."""
        keys = dict(status=status, reason=status, exit_code=0 if status == "success" else 1,
                    start=run_job._iso_time(start), start_time=start, duration=1.0,
                    consecutive_failures=failures)
        if status == "success":
            keys.update(last_success=keys["start"], last_success_time=start)
        self.record(name, **keys)

    def health(self, *args):
        """run-job --health ARGS in this process: (exit code, stdout lines, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_job.main(["--config", self.sandbox.config, "--health"] + list(args))
        lines = out.getvalue().splitlines()
        self.assertTrue(lines, "no output")
        match = FIRST_LINE.match(lines[0])
        self.assertIsNotNone(match, lines[0])
        self.assertEqual(STATE_CODES[match.group(1)], code, lines)
        return code, lines, err.getvalue()

    def assert_state(self, expected, *args):
        code, lines, err = self.health(*args)
        self.assertEqual((code, err), (STATE_CODES[expected], ""), lines)
        return lines

    def fault_lines(self, lines):
        """{job: its line} of the lines after the first."""
        faults = {}
        for line in lines[1:]:
            match = re.match(r"^\[(WARNING|CRITICAL)\] (\S+): (.+)$", line)
            self.assertIsNotNone(match, line)
            faults[match.group(2)] = (match.group(1), match.group(3))
        return faults


class HealthyTests(HealthTest):
    def test_ok_with_perfdata_and_no_other_line(self):
        self.job("nightly", age=3 * 86400)
        self.ran("nightly", daily_times_before(time.time())[1] + 1)
        self.job("manual", schedule=None)  # never ran, never scheduled: nothing to say
        lines = self.assert_state("OK")
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^PROCESS-CONTROL OK - 2 jobs, none at fault \| ")
        figures = perfdata(lines[0])
        self.assertEqual((figures["jobs"], figures["ok"], figures["warning"],
                          figures["critical"], figures["overdue"]), (2, 2, 0, 0, 0))
        self.assertEqual(set(figures), {"jobs", "ok", "warning", "critical"}
                         | set(run_job.HEALTH_CAUSES))

    def test_one_missed_start_is_tolerated_two_are_not(self):
        earlier, latest = daily_times_before(time.time() - 300)  # overdue_grace 5m
        self.job("nightly", age=5 * 86400)
        self.ran("nightly", earlier + 60)  # the latest 03:00 was missed
        self.assert_state("OK")
        self.ran("nightly", earlier - 60)  # both
        lines = self.assert_state("CRITICAL")
        state, text = self.fault_lines(lines)["nightly"]
        self.assertEqual(state, "CRITICAL")
        self.assertIn("overdue: nothing started since %s" % run_job._iso_time(earlier - 60),
                      text)
        self.assertIn("though scheduled at %s and %s"
                      % tuple(time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))
                              for moment in (earlier, latest)), text)
        self.assertEqual(perfdata(lines[0])["overdue"], 1)

    def test_overdue_grace_moves_the_scheduled_times_looked_at(self):
        # Every minute: with no grace the two latest minutes are looked at; a
        # grace of an hour looks an hour back, where a start 10 minutes ago is new.
        self.job("ticker", "overdue_grace: 0\n", schedule="* * * * *", age=86400)
        self.ran("ticker", time.time() - 600)
        self.assertIn("overdue", self.fault_lines(self.assert_state("CRITICAL"))["ticker"][1])
        self.job("ticker", "overdue_grace: 1h\n", schedule="* * * * *", age=86400)
        self.assert_state("OK")

    def test_a_recorded_skip_counts_as_a_start(self):
        earlier, _ = daily_times_before(time.time() - 300)
        self.job("nightly", age=5 * 86400)
        self.ran("nightly", earlier - 86400)
        self.assert_state("CRITICAL")
        run_job.record_skip(self.config, "nightly", "lock held: still running", time.time())
        state = run_job.read_job_state(self.config, "nightly")
        self.assertAlmostEqual(state["last_skip_time"], time.time(), delta=5)
        self.assert_state("OK")

    def test_a_state_written_before_last_skip_time_falls_back_to_its_text(self):
        earlier, _ = daily_times_before(time.time() - 300)
        self.job("nightly", age=5 * 86400)
        self.ran("nightly", earlier - 86400)
        self.record("nightly", last_skip=run_job._iso_time(time.time() - 60),
                    last_skip_reason="paused by alice")
        self.assert_state("OK")
        self.record("nightly", last_skip="not a time")
        self.assert_state("CRITICAL")

    def test_a_run_keeps_the_last_skip_time(self):
        self.job("nightly")
        run_job.record_skip(self.config, "nightly", "lock held: still running", 1000.0)
        outcome = run_job.Outcome("success", "success", 0)
        run_job.record_run(self.config, "nightly", outcome, 2000.0, 1.0, "/x.log")
        state = run_job.read_job_state(self.config, "nightly")
        self.assertNotIn("last_skip", state)
        self.assertEqual(state["last_skip_time"], 1000.0)

    def test_paused_disabled_and_unscheduled_jobs_are_never_overdue(self):
        long_ago = time.time() - 30 * 86400
        self.job("paused", age=60 * 86400)
        self.ran("paused", long_ago)
        self.record("paused", paused=run_job._iso_time(long_ago), paused_time=long_ago,
                    paused_by="alice")
        self.job("disabled", "disabled: true\n", age=60 * 86400)
        self.ran("disabled", long_ago)
        self.job("unscheduled", schedule=None, age=60 * 86400)
        self.ran("unscheduled", long_ago)
        self.job("never", "disabled: true\n", age=60 * 86400)  # never ran: no warning either
        self.assert_state("OK")
        self.record("paused", paused=False)  # resumed
        self.assertEqual(set(self.fault_lines(self.assert_state("CRITICAL"))), {"paused"})


class CriticalTests(HealthTest):
    def test_halted(self):
        self.job("purge")
        self.ran("purge", time.time() - 60, status="failed", failures=1)
        self.record("purge", halted=run_job._iso_time(time.time()), halted_time=time.time(),
                    halt_reason="exit code 4 is in halt_on_exit_codes")
        lines = self.assert_state("CRITICAL")
        state, text = self.fault_lines(lines)["purge"]
        self.assertRegex(text, r"^halted since \S+: exit code 4 is in halt_on_exit_codes; "
                               r"run-job --reset purge clears it; 1 consecutive failure")
        figures = perfdata(lines[0])
        self.assertEqual((figures["halted"], figures["failing"], figures["critical"]), (1, 1, 1))

    def test_failures_from_alert_after_failures(self):
        self.job("upload", "alert_after_failures: 3\n")
        self.ran("upload", time.time() - 60, status="failed", failures=2)
        self.assert_state("OK")
        self.ran("upload", time.time() - 30, status="failed", failures=3)
        lines = self.assert_state("CRITICAL")
        self.assertRegex(self.fault_lines(lines)["upload"][1],
                         r"^3 consecutive failures \(alert_after_failures: 3\), last status: "
                         r"failed at \S+ \(exit code 1, 1\.0 s\)$")

    def test_a_real_failed_run_is_critical_by_default(self):
        self.sandbox.write_job("broken", "command: /bin/false\n")
        code, _, _ = self.sandbox.run("broken")
        self.assertEqual(code, 1)
        self.assertIn("1 consecutive failure (alert_after_failures: 1)",
                      self.fault_lines(self.assert_state("CRITICAL"))["broken"][1])

    def test_no_success_for_longer_than_max_success_age(self):
        self.job("report", "max_success_age: 1d\nalert_after_failures: 10\n",
                 schedule="0 * * * *", age=10 * 86400)
        self.ran("report", time.time() - 2 * 86400)
        self.ran("report", time.time() - 60, status="failed", failures=5)
        lines = self.assert_state("CRITICAL")
        self.assertRegex(self.fault_lines(lines)["report"][1],
                         r"^no success since \S+, longer than max_success_age \(1d 00h\)$")
        self.assertEqual(perfdata(lines[0])["no_success"], 1)
        self.job("report", "max_success_age: 3d\nalert_after_failures: 10\n",
                 schedule="0 * * * *", age=10 * 86400)
        self.assert_state("OK")

    def test_an_invalid_job_file_is_critical_for_that_job_only(self):
        self.job("good", schedule=None)
        self.sandbox.write_job("broken", "command: /bin/true\ntimout: 5\n")
        self.sandbox.write_job("bad.name", "command: /bin/true\n")
        lines = self.assert_state("CRITICAL")
        faults = self.fault_lines(lines)
        self.assertEqual(set(faults), {"broken", "bad.name.yaml"})
        self.assertIn("invalid job file: %s:2:1: unknown key `timout`"
                      % os.path.join(os.path.realpath(self.sandbox.jobs), "broken.yaml"),
                      faults["broken"][1])
        figures = perfdata(lines[0])
        self.assertEqual((figures["jobs"], figures["ok"], figures["invalid"]), (2, 1, 2))


class WarningTests(HealthTest):
    def test_never_ran_although_scheduled_since_its_job_file_changed(self):
        self.job("fresh")  # changed now: no 03:00 passed since
        self.assert_state("OK")
        self.job("fresh", age=3 * 86400)
        lines = self.assert_state("WARNING")
        self.assertRegex(self.fault_lines(lines)["fresh"][1],
                         r"^never ran, though scheduled at \S+ 03:00 since its job file "
                         r"changed \(\S+\)$")
        self.assertEqual(perfdata(lines[0])["never_ran"], 1)

    def test_a_state_file_set_aside_and_one_to_be_set_aside(self):
        self.job("aside", schedule=None)
        self.ran("aside", time.time())
        self.record("aside", set_aside="state file set aside: X is a FIFO; renamed to Y\n"
                                       "history file set aside: Z")
        lines = self.assert_state("WARNING")
        self.assertEqual(self.fault_lines(lines)["aside"][1],
                         "state file set aside: X is a FIFO; renamed to Y; "
                         "history file set aside: Z")
        self.job("garbage", schedule=None)
        path = run_job.state_path(self.config, "garbage")
        test_config.write_file(path, "not a state\n")
        faults = self.fault_lines(self.assert_state("WARNING"))
        self.assertRegex(faults["garbage"][1], r"^state file .*; the next run sets it aside$")
        with open(path) as state:  # read only: left where it is
            self.assertEqual(state.read(), "not a state\n")

    def test_the_installed_crontab_out_of_date(self):
        crontab = self.sandbox.path("crontab")
        self.sandbox.write_config(extra="output_crontab: %s\n" % crontab)
        self.config = self.sandbox.load()
        self.job("ticker", schedule="*/5 * * * *")
        test_config.write_file(crontab, "*/5 * * * * u /r --job ticker --scheduled '*/5 * * * *'\n")
        self.assert_state("OK")
        test_config.write_file(crontab, "*/5 * * * * u /r --job ticker --scheduled '0 3 * * *'\n"
                                        "1 * * * * u /r --job gone --scheduled '1 * * * *'\n")
        lines = self.assert_state("WARNING")
        faults = self.fault_lines(lines)
        self.assertEqual(faults["ticker"][1], "crontab out of date (rescheduled to '*/5 * * * *', "
                                              "still scheduled '0 3 * * *'); run cron-generate")
        self.assertIn("it runs gone, which has no job file", faults["crontab"][1])
        self.assertEqual(perfdata(lines[0])["crontab"], 2)
        # Named jobs: the crontab's other lines are none of theirs.
        self.assertEqual(set(self.fault_lines(self.assert_state("WARNING", "ticker"))),
                         {"ticker"})

    def test_critical_lines_come_first_and_the_summary_names_them(self):
        self.job("zeta", age=3 * 86400)  # never ran: warning
        for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
            self.job(name, schedule=None)
            self.ran(name, time.time(), status="failed", failures=1)
        lines = self.assert_state("CRITICAL")
        self.assertEqual([line.split(":")[0] for line in lines[1:]],
                         ["[CRITICAL] a%d" % n for n in range(1, 7)] + ["[WARNING] zeta"])
        self.assertRegex(lines[0], r" - 7 jobs: 6 critical \(a1, a2, a3, a4, a5 and 1 more\), "
                                   r"1 warning \(zeta\) \| ")


class SelectionTests(HealthTest):
    def setUp(self):
        super().setUp()
        self.job("db", "tags: [database]\n", schedule=None)
        self.ran("db", time.time(), status="failed", failures=1)
        self.job("queue", "tag: queue\n", schedule=None)
        self.job("web", "tag: queue\n", schedule=None)

    def test_names_and_tags_select_the_jobs(self):
        self.assertEqual(perfdata(self.assert_state("CRITICAL")[0])["jobs"], 3)
        lines = self.assert_state("OK", "web", "queue")
        self.assertRegex(lines[0], r" - 2 jobs, none at fault \| jobs=2")
        self.assert_state("OK", "--tag", "queue")
        self.assert_state("CRITICAL", "--tag", "database", "--tag", "queue")

    def test_usage_errors_are_unknown(self):
        for args, fragment in (
                (["nosuch"], "no job named nosuch"),
                (["--tag", "nosuch"], "no job has the tag 'nosuch'"),
                (["--tag", "queue", "web"], "not both"),
                (["--bogus"], "unknown option --bogus"),
                (["--json"], "--json applies only to --status"),
                (["web.yaml"], "run-job --health web"),
                (["--status"], "one job or action at a time")):
            code, lines, err = self.health(*args)
            self.assertEqual((code, len(lines), err), (3, 1, ""), args)
            self.assertIn(fragment, lines[0])


class UnknownTests(HealthTest):
    def assert_unknown(self, *fragments):
        code, lines, err = self.health()
        self.assertEqual((code, len(lines), err), (3, 1, ""), lines)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_a_config_the_check_cannot_use(self):
        self.sandbox.write_config(mode=0o600)  # refused whoever reads it: private
        self.assert_unknown("must be readable by everyone")
        self.sandbox.write_config(extra="job_directry: jobs\n")
        self.assert_unknown("unknown key `job_directry`")
        os.unlink(self.sandbox.config)
        self.assert_unknown("no such config file")

    def test_a_missing_job_or_state_directory(self):
        os.rename(self.sandbox.path("state"), self.sandbox.path("elsewhere"))
        self.assert_unknown("the state directory", "does not exist")
        os.rename(self.sandbox.path("elsewhere"), self.sandbox.path("state"))
        os.rmdir(self.sandbox.jobs)
        self.assert_unknown("the job directory", "does not exist")

    @unittest.skipIf(test_config.IS_ROOT, "root can read any directory")
    def test_a_job_or_state_directory_the_check_cannot_read(self):
        os.chmod(self.sandbox.path("state"), 0o600)
        self.addCleanup(os.chmod, self.sandbox.path("state"), 0o755)
        self.assert_unknown("cannot read the state directory")
        os.chmod(self.sandbox.path("state"), 0o755)
        os.chmod(self.sandbox.jobs, 0o300)
        self.addCleanup(os.chmod, self.sandbox.jobs, 0o755)
        self.assert_unknown("cannot list the job directory")


    @unittest.skipIf(test_config.IS_ROOT, "root can read any file")
    def test_a_state_the_check_cannot_read_is_unknown_below_critical(self):
        self.job("nightly", age=3 * 86400)
        self.ran("nightly", daily_times_before(time.time())[1] + 1)
        os.chmod(run_job.state_path(self.config, "nightly"), 0)
        lines = self.assert_state("UNKNOWN")
        self.assertRegex(lines[1], r"^\[UNKNOWN\] nightly: cannot read .*nightly\.state: "
                                   r"Permission denied; run the check as root or the service "
                                   r"user$")
        self.assertEqual(perfdata(lines[0])["unreadable"], 1)
        self.record("halted", halted="2026-01-01", halt_reason="x")
        self.job("halted", age=3 * 86400)
        self.assertEqual(self.assert_state("CRITICAL")[1][:19], "[CRITICAL] halted: ")


class ProcessTests(HealthTest):
    """The exit codes of a real process, which monitoring systems read."""

    def test_each_exit_code_and_nothing_written(self):
        self.job("fine", schedule=None)
        config = ["--config", self.sandbox.config]
        code, out, err = self.sandbox.run("--health", with_config=False, *config)
        self.assertEqual((code, err), (0, ""), out)
        self.job("stale", age=3 * 86400)
        self.assertEqual(self.sandbox.run("--health")[0], 1)
        self.job("failing", schedule=None)
        self.ran("failing", time.time(), status="failed", failures=1)
        test_config.write_file(run_job.state_path(self.config, "stale"), "garbage\n")
        before = self.listing()
        code, out, err = self.sandbox.run("--health")
        self.assertEqual((code, err), (2, ""), out)
        self.assertEqual(self.listing(), before)  # no lock, nothing set aside
        code, out, err = self.sandbox.run("--health", "--tag")
        self.assertEqual((code, out, err), (3, "PROCESS-CONTROL UNKNOWN - --tag needs a value; "
                                               "see run-job --help\n", ""))

    def listing(self):
        found = {}
        for directory in ("run", "state", "log"):
            for name in os.listdir(self.sandbox.path(directory)):
                path = self.sandbox.path(directory, name)
                found[path] = os.stat(path).st_mtime
        return found

    @test_config.root_only
    def test_root_checks_as_the_service_user_and_nobody_as_itself(self):
        self.sandbox.write_config(user=test_config.UNPRIVILEGED)
        self.job("fine", schedule=None)
        code, out, err = self.sandbox.run("--health")
        self.assertEqual((code, err), (0, ""), out)
        self.sandbox.write_config(user="root")
        self.job("failing", schedule=None)
        self.ran("failing", time.time(), status="failed", failures=1)
        code, out, err = self.sandbox.run("--health", **test_config.as_nobody(self.sandbox))
        self.assertEqual((code, err), (2, ""), out)
        self.assertIn("[CRITICAL] failing: 1 consecutive failure", out)


class ScheduledTimesTests(unittest.TestCase):
    """scheduled_times_back against stepping back minute by minute."""

    WINDOW = 60 * 24 * 35  # minutes looked back: five weeks

    def brute_force(self, schedule, moment, count):
        """(the COUNT latest matching minutes before MOMENT within WINDOW,
        earlier first; the window's start)."""
        times = []
        cursor = datetime.datetime.fromtimestamp(moment).replace(second=0, microsecond=0)
        if time.mktime(cursor.timetuple()) >= moment:
            cursor -= datetime.timedelta(minutes=1)
        minute = datetime.timedelta(minutes=1)
        for _ in range(self.WINDOW):
            if len(times) == count:
                break
            if self.matches(schedule, cursor):
                times.insert(0, time.mktime(cursor.timetuple()))
            cursor -= minute
        return times, time.mktime(cursor.timetuple())

    @staticmethod
    def matches(schedule, moment):
        weekday = (moment.weekday() + 1) % 7
        dom = moment.day in schedule.days_of_month
        dow = weekday in schedule.days_of_week
        day = (dom and dow) if schedule.days_match_both else (dom or dow)
        return day and moment.minute in schedule.minutes and moment.hour in schedule.hours \
            and moment.month in schedule.months

    def test_random_schedules_against_minute_stepping(self):
        chooser = random.Random(11)
        fields = (["*", "*/7", "5", "0,30", "10-20/5"], ["*", "3", "*/6", "9-17", "0,23"],
                  ["*", "1", "15", "*/10", "28-31"], ["*", "2", "1-6", "*/4"],
                  ["*", "1-5", "0", "6", "mon,fri"])
        now = time.time()
        for _ in range(30):
            expression = " ".join(chooser.choice(options) for options in fields)
            try:
                schedule = run_job.Schedule(expression)
            except run_job.ConfigError:
                continue
            moment = now - chooser.uniform(0, 400 * 86400)
            expected, window_start = self.brute_force(schedule, moment, 2)
            found = list(itertools.islice(run_job.scheduled_times_back(schedule, moment), 2))
            found.reverse()
            self.assertEqual(found[2 - len(expected):], expected, expression)
            # What the window did not reach is older than it.
            self.assertTrue(all(early < window_start for early in found[:2 - len(expected)]),
                            expression)


if __name__ == "__main__":
    unittest.main()
