"""Crontab drift: a crontab written by cron-generate, job files changed after
it, and run-job started as that crontab's lines start it (real processes,
real files in a temporary directory)."""

import json
import os
import shlex
import shutil
import tempfile
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import RUN_JOB_CODE, read_history  # noqa: E402
import test_cron_generate  # noqa: E402
from test_cron_generate import job_lines  # noqa: E402

RUN_JOB = RUN_JOB_CODE  # see test_config.compiled_script
EVERY_5 = "*/5 * * * *"
OUT_OF_DATE = "the crontab is out of date: run cron-generate"


class DriftSandbox(test_cron_generate.Sandbox):
    """cron-generate's sandbox, run-job beside it, and a directory that the
    service user's jobs can write their marks into."""

    def __init__(self, **settings):
        test_cron_generate.Sandbox.__init__(self, **settings)
        self.marks = os.path.join(self.root, "marks")
        os.mkdir(self.marks)
        os.chmod(self.marks, 0o777)

    def mark(self, name):
        return os.path.join(self.marks, name)

    def touching_job(self, name, extra=""):
        """Job NAME, whose command creates marks/NAME."""
        self.job(name, "command: /usr/bin/touch %s\n%s" % (self.mark(name), extra))

    def run_job(self, *arguments):
        process = subprocess.Popen([sys.executable, RUN_JOB, "--config", self.config]
                                   + list(arguments), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.root)
        out, err = process.communicate(timeout=60)
        return process.returncode, out.decode(), err.decode()

    def crontab_argv(self, name):
        """The arguments after run-job in the crontab line of job NAME, read
        as the shell that cron starts reads them."""
        for line in job_lines(self.read_crontab()):
            argv = shlex.split(line.split(None, 6)[6])
            if argv[1:3] == ["--job", name]:
                return argv[1:]
        raise AssertionError("no line for %s in %s" % (name, self.read_crontab()))

    def global_config(self):
        return run_job.load_global_config(self.config, {})

    def state(self, name):
        return run_job.read_job_state(self.global_config(), name)

    def history(self, name):
        return read_history(self.global_config(), name)

    def logs(self, name):
        directory = os.path.join(self.settings["output_directory"], name)
        return os.listdir(directory) if os.path.isdir(directory) else []


class DriftTest(unittest.TestCase):
    def setUp(self):
        self.box = DriftSandbox()
        self.addCleanup(self.box.remove)

    def generate(self):
        code, out, err = self.box.run()
        self.assertEqual(code, 0, err)

    def assert_skipped(self, name, stale_line, reason):
        """The stale crontab line starts run-job: exit 0, silent, nothing run
        or logged, the reason in the state and the history."""
        logs_before = self.box.logs(name)
        self.assertEqual(self.box.run_job(*stale_line), (0, "", ""))
        self.assertFalse(os.path.exists(self.box.mark(name)), "the command ran")
        self.assertEqual(self.box.logs(name), logs_before, "a job log was written")
        state = self.box.state(name)
        self.assertEqual(state["last_skip_reason"], "%s; %s" % (reason, OUT_OF_DATE))
        self.assertRegex(state["last_skip"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
        last = self.box.history(name)[-1]
        self.assertEqual((last["status"], last["reason"]), ("skipped", state["last_skip_reason"]))
        return state


class ScheduledRunTests(DriftTest):
    def test_the_generated_line_runs_the_job(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.generate()
        line = self.box.crontab_argv("tick")
        self.assertEqual(line, ["--job", "tick", "--scheduled", EVERY_5])
        code, out, err = self.box.run_job(*line)
        self.assertEqual((code, out, err), (0, "", ""))
        self.assertTrue(os.path.exists(self.box.mark("tick")))
        self.assertNotIn("last_skip", self.box.state("tick"))

    def test_schedules_compare_with_their_blanks_normalised(self):
        self.box.touching_job("tick", "schedule: '*/5  *\t* * *'\n")
        self.assertEqual(self.box.run_job("--job", "tick", "--scheduled", " */5 * *  * * "),
                         (0, "", ""))
        self.assertTrue(os.path.exists(self.box.mark("tick")))

    def test_a_disabled_job_is_skipped_by_its_stale_line_and_keeps_its_last_run(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.generate()
        stale = self.box.crontab_argv("tick")
        self.assertEqual(self.box.run_job(*stale)[0], 0)  # a real run first
        os.unlink(self.box.mark("tick"))
        self.box.touching_job("tick", "schedule: '%s'\ndisabled: true\n" % EVERY_5)
        state = self.assert_skipped("tick", stale, "disabled")
        self.assertEqual((state["status"], state["exit_code"]), ("success", 0))
        self.assertEqual([record["status"] for record in self.box.history("tick")],
                         ["success", "skipped"])
        # A second skip replaces the first in the state; the history has both.
        self.assert_skipped("tick", stale, "disabled")
        self.assertEqual(len(self.box.history("tick")), 3)
        self.assertEqual(self.box.state("tick")["status"], "success")

    def test_a_job_whose_schedule_was_removed_is_skipped(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.generate()
        stale = self.box.crontab_argv("tick")
        self.box.touching_job("tick")
        state = self.assert_skipped("tick", stale, "unscheduled")
        self.assertNotIn("status", state)  # it never ran

    def test_a_rescheduled_job_is_skipped_by_the_old_line(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.generate()
        stale = self.box.crontab_argv("tick")
        self.box.touching_job("tick", "schedule: '0 3 * * *'\n")
        self.assert_skipped("tick", stale, "rescheduled: the crontab says '*/5 * * * *', "
                                           "the job file says '0 3 * * *'")

    def test_a_manual_run_still_runs_a_disabled_job(self):
        self.box.touching_job("tick", "schedule: '%s'\ndisabled: true\n" % EVERY_5)
        self.assertEqual(self.box.run_job("tick"), (0, "", ""))
        self.assertTrue(os.path.exists(self.box.mark("tick")))
        self.assertEqual(self.box.state("tick")["status"], "success")

    def test_failures_count_on_across_a_skip(self):
        self.box.job("bad", "command: /bin/false\nschedule: '%s'\n" % EVERY_5)
        self.assertEqual(self.box.run_job("bad")[0], 1)
        self.box.job("bad", "command: /bin/false\nschedule: '%s'\ndisabled: true\n" % EVERY_5)
        self.assertEqual(self.box.run_job("--job", "bad", "--scheduled", EVERY_5), (0, "", ""))
        self.assertEqual(self.box.state("bad")["consecutive_failures"], 1)
        self.assertEqual(self.box.run_job("bad")[0], 1)
        self.assertEqual(self.box.state("bad")["consecutive_failures"], 2)

    def test_a_line_for_a_deleted_job_says_the_crontab_is_out_of_date(self):
        self.box.touching_job("other")
        code, out, err = self.box.run_job("--job", "gone", "--scheduled", EVERY_5)
        self.assertEqual(code, 64)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("no job named gone", err)
        self.assertIn(OUT_OF_DATE, err)

    def test_a_huge_scheduled_value_is_cut_in_the_recorded_reason(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.assertEqual(self.box.run_job("--job", "tick", "--scheduled", "1 " * 50000)[0], 0)
        reason = self.box.state("tick")["last_skip_reason"]
        self.assertTrue(reason.startswith("rescheduled: the crontab says '1 1 "), reason)
        self.assertLess(len(reason), 2 * run_job.SCHEDULE_TEXT_MAX)

    def test_scheduled_applies_only_to_a_run(self):
        self.box.touching_job("tick")
        for arguments in (["--status", "--scheduled", EVERY_5], ["--check", "--scheduled", "x"],
                          ["--kill-job", "tick", "--scheduled", "x"], ["tick", "--scheduled"]):
            code, out, err = self.box.run_job(*arguments)
            self.assertEqual(code, 64, (arguments, err))
            self.assertEqual(len(err.splitlines()), 1, err)
        code, out, err = self.box.run_job("--help")
        self.assertIn("--scheduled EXPR", out)

    def test_a_skip_while_the_job_runs_is_recorded_and_the_run_after_it(self):
        started = self.box.mark("started")
        self.box.job("slow", "command: /bin/sh -c 'touch %s; sleep 30'\ndisabled: true\n" % started)
        run = subprocess.Popen([sys.executable, RUN_JOB, "--config", self.box.config, "slow"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        self.addCleanup(run.wait)
        self.addCleanup(run.terminate)
        deadline = time.monotonic() + 10
        while not os.path.exists(started):
            self.assertLess(time.monotonic(), deadline, "the run never started")
            time.sleep(0.01)
        self.assertEqual(self.box.run_job("--job", "slow", "--scheduled", EVERY_5), (0, "", ""))
        self.assertEqual(self.box.state("slow")["last_skip_reason"].split(";")[0], "disabled")
        self.assertNotIn("status", self.box.state("slow"))  # the run's record comes at its end
        run.terminate()
        run.wait()
        self.assertEqual([record["status"] for record in self.box.history("slow")],
                         ["skipped", "killed"])
        self.assertNotIn("last_skip", self.box.state("slow"))  # a run clears it

    def test_the_skip_reaches_the_configured_logger_as_a_warning(self):
        events = self.box.mark("events.log")
        self.box.write_config(
            "logging:\n  version: 1\n"
            "  formatters:\n    plain:\n      format: '%%(levelname)s %%(message)s'\n"
            "  handlers:\n    events:\n      class: logging.FileHandler\n"
            "      filename: %s\n      formatter: plain\n"
            "  loggers:\n    process-control:\n      handlers: [events]\n      level: INFO\n"
            % events)
        self.box.touching_job("tick", "disabled: true\n")
        self.assertEqual(self.box.run_job("--job", "tick", "--scheduled", EVERY_5), (0, "", ""))
        with open(events) as stream:
            self.assertEqual(stream.read().splitlines(), [
                "WARNING job tick skipped: disabled; " + OUT_OF_DATE])

    def test_a_skip_imports_no_json(self):
        self.box.touching_job("tick", "disabled: true\n")
        probe = ("import sys, run_job; code = run_job.main(['--config', %r, '--job', 'tick', "
                 "'--scheduled', %r]); print(code, 'json' in sys.modules)"
                 % (self.box.config, EVERY_5))
        out = subprocess.check_output([sys.executable, "-c", probe], cwd=HERE,
                                      stdin=subprocess.DEVNULL).decode()
        self.assertEqual(out.split(), ["0", "False"])
        self.assertIn("last_skip", self.box.state("tick"))


class RenderTests(unittest.TestCase):
    def test_the_longest_name_with_a_long_schedule_stays_within_cron_lines(self):
        import cron_generate
        name = "n" * run_job.JOB_NAME_MAX_LENGTH
        schedule = ("0,5,10,15,20,25,30,35,40,45,50,55 0,2,4,6,8,10,12,14,16,18,20,22 "
                    "1,8,15,22,29 1,3,5,7,9,11 mon-fri")
        config = run_job.GlobalConfig(user="nobody", runner_path="/usr/local/bin/run-job")
        entry = cron_generate.Entry(name, job=run_job.Job(
            name, source="/var/lib/process-control/%s.yaml" % name,
            schedule=run_job.Schedule(schedule), commands=[["/bin/true"]]))
        text = cron_generate.render_crontab(config, [entry])
        cron_generate.validate_crontab(text, config)
        line = text.splitlines()[-1]
        self.assertTrue(line.endswith(" --job %s --scheduled '%s'" % (name, schedule)), line)
        self.assertLessEqual(max(len(each) for each in text.splitlines()), cron_generate.CRON_MAX_LINE)


class StateTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.config = run_job.GlobalConfig(run_directory=self.tmp, state_directory=self.tmp)

    def test_a_skip_keeps_the_run_and_replaces_an_earlier_skip(self):
        run_job.write_file_atomic(run_job.state_path(self.config, "a"), run_job.json_line(
            {"job": "a", "status": "failed", "consecutive_failures": 3}).encode())
        run_job.record_skip(self.config, "a", "disabled", 1e9)
        run_job.record_skip(self.config, "a", 'say "why"', 2e9)
        with open(run_job.state_path(self.config, "a"), "rb") as state:
            text = state.read()
        record = json.loads(text.decode())
        self.assertEqual(record["status"], "failed")
        self.assertEqual(record["consecutive_failures"], 3)
        self.assertEqual(record["last_skip_reason"], 'say "why"')
        self.assertEqual(record["last_skip"], run_job._iso_time(2e9))
        self.assertEqual(text.count(b"last_skip_reason"), 1)
        self.assertEqual([entry["reason"] for entry in read_history(self.config, "a")],
                         ["disabled", 'say "why"'])

    def test_a_state_that_is_not_the_jobs_is_set_aside(self):
        for text in (b"garbage\n", run_job.json_line({"job": "b"}).encode()):
            run_job.write_file_atomic(run_job.state_path(self.config, "a"), text)
            run_job.record_skip(self.config, "a", "x", 1e9)
            state = run_job.read_job_state(self.config, "a")
            self.assertEqual(state["last_skip_reason"], "x")
            self.assertIn("state file set aside", state["set_aside"])

    def test_a_history_line_cut_short_does_not_swallow_the_next_record(self):
        with open(run_job.history_path(self.config, "a"), "wb") as history:
            history.write(b'{"job": "a", "status": "skipped"}\n{"job": "a", "sta')
        run_job.record_skip(self.config, "a", "x", 1e9)
        self.assertEqual([entry["status"] for entry in read_history(self.config, "a")],
                         ["skipped", "skipped"])
        self.assertEqual(read_history(self.config, "a")[-1]["reason"], "x")

    def test_parse_record_reads_what_json_line_writes(self):
        record = {"job": "a", "text": 'quote " back \\ nl \n tab \t \u2028 \udc80 é',
                  "int": -12, "float": 1.5, "big": 1e+300, "small": 0.125, "t": True,
                  "f": False, "none": None, "empty": ""}
        line = run_job.json_line(record).encode("utf-8", "surrogateescape")
        self.assertEqual(run_job.parse_record(line), record)
        self.assertEqual(run_job.parse_record(b"{}\n"), {})

    def test_parse_record_refuses_anything_else(self):
        for text in (b"", b"{", b"{}", b'{"a": 1}\n{"b": 2}\n', b'{"a" : 1}\n',
                     b'{"a": 1,"b": 2}\n', b'{"a": nan}\n', b'{"a": inf}\n',
                     b'{"a": 1e}\n', b'{"a": "\\n"}\n', b'{"a": "\\u12"}\n',
                     b'{"a": tru}\n', b'{"a": 1, }\n', b'{"a": [1]}\n', b'{"a"}\n',
                     b'{"a": "x}\n', b'{"a": 1}}\n', b'{a: 1}\n', b'["a"]\n',
                     b'{"a": 1} \n', b'{"a": --1}\n', b'{"a": 1.2.3}\n',
                     b'{"a": 1e999}\n', b'{"a": -1e400}\n'):
            self.assertIsNone(run_job.parse_record(text), text)


class ReportTests(DriftTest):
    """--status, --check and cron-generate --check say when the installed
    crontab is not what the job files generate, and stop once it is."""

    def drifted_sandbox(self):
        """Four jobs drifted every way, and one that did not."""
        box = self.box
        for name in ("off", "plain", "moved", "fine", "gone"):
            box.touching_job(name, "schedule: '%s'\n" % EVERY_5)
        self.generate()
        box.touching_job("off", "schedule: '%s'\ndisabled: true\n" % EVERY_5)
        box.touching_job("plain")
        box.touching_job("moved", "schedule: '0 3 * * *'\n")
        box.touching_job("new", "schedule: '0 4 * * *'\n")
        os.unlink(os.path.join(box.job_directory, "gone.yaml"))

    EXPECTED = {
        "off": "disabled, still scheduled '*/5 * * * *'",
        "plain": "no schedule in the job file, still scheduled '*/5 * * * *'",
        "moved": "rescheduled to '0 3 * * *', still scheduled '*/5 * * * *'",
        "new": "scheduled '0 4 * * *', but not in the crontab",
    }

    def status_lines(self):
        code, out, err = self.box.run_job("--status")
        self.assertEqual((code, err), (0, ""))
        return out.splitlines()

    def test_status_shows_drift_under_each_job_and_the_last_skip(self):
        self.drifted_sandbox()
        self.assertEqual(self.box.run_job(*["--job", "off", "--scheduled", EVERY_5])[0], 0)
        lines = self.status_lines()
        for name, problem in self.EXPECTED.items():
            block = lines[lines.index("%s - %s" % (name, name)):]
            self.assertIn("    crontab: out of date (%s); run cron-generate" % problem, block[:4])
        off = lines[lines.index("off - off"):]
        self.assertRegex(off[3], r"^    last skipped start: \d{4}-\S+ \(disabled; %s\)$" % OUT_OF_DATE)
        fine = lines.index("fine - fine")
        self.assertEqual(lines[fine + 2], "moved - moved")  # nothing about the crontab for fine
        self.assertEqual(lines[-1], "crontab: %s is out of date (it runs gone, which has no job "
                                    "file); run cron-generate" % self.box.crontab)
        self.generate()
        self.assertFalse([line for line in self.status_lines() if "crontab:" in line])

    def test_check_warns_once_per_drifted_job(self):
        self.drifted_sandbox()
        code, out, err = self.box.run_job("--check")
        self.assertEqual(code, 0, err)
        warnings = err.splitlines()
        self.assertEqual(len(warnings), 5, err)
        for name, problem in self.EXPECTED.items():
            self.assertTrue(any(line.startswith("run-job: %s/%s.yaml:" % (self.box.job_directory, name))
                                and line.endswith(": warning: the crontab %s is out of date (%s); run "
                                                  "cron-generate" % (self.box.crontab, problem))
                                for line in warnings), (name, err))
        self.assertIn("(it runs gone, which has no job file); run cron-generate", err)
        self.assertRegex(err, r"off\.yaml:3:1: warning")  # at its `disabled`
        self.generate()
        self.assertEqual(self.box.run_job("--check"), (0, "", ""))

    def test_check_keeps_its_exit_code(self):
        self.drifted_sandbox()
        self.box.job("broken", "command: x\ntimout: 3\n")
        code, out, err = self.box.run_job("--check")
        self.assertEqual(code, 78)
        self.assertIn("out of date", err)

    def test_cron_generate_check_compares_the_text_it_would_write(self):
        self.drifted_sandbox()
        code, out, err = self.box.run("--check")
        self.assertEqual(code, 0, err)
        self.assertEqual(err.splitlines(), [
            "cron-generate: warning: %s is out of date (job moved: %s; job new: %s; job off: %s; "
            "job plain: %s; it runs gone, which has no job file); run cron-generate"
            % (self.box.crontab, self.EXPECTED["moved"], self.EXPECTED["new"],
               self.EXPECTED["off"], self.EXPECTED["plain"])])
        self.generate()
        self.assertEqual(self.box.run("--check"), (0, "", ""))
        # Any other difference in the text counts too.
        self.box.settings["mailto"] = "ops@example.org"
        self.box.write_config()
        code, out, err = self.box.run("--check")
        self.assertEqual(code, 0, err)
        self.assertIn("is out of date (its text differs from what the config and job files "
                      "generate)", err)

    def test_a_line_from_an_older_cron_generate_is_out_of_date(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.box.write(self.box.crontab, "%s %s /usr/bin/run-job --job tick\n"
                       % (EVERY_5, test_cron_generate.service_user()))
        self.assertIn("    crontab: out of date (written by an older cron-generate); "
                      "run cron-generate", self.status_lines())
        self.assertIn("tick: written by an older cron-generate", self.box.run("--check")[2])

    def test_no_crontab_installed(self):
        self.box.touching_job("manual")
        self.assertEqual(self.box.run_job("--check"), (0, "", ""))
        self.assertFalse([line for line in self.status_lines() if "crontab:" in line])
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        code, out, err = self.box.run_job("--check")
        self.assertEqual(code, 0, err)
        self.assertEqual(err.splitlines(), [
            "run-job: %s:7:1: warning: no crontab installed: %s does not exist; run cron-generate"
            % (self.box.config, self.box.crontab)])
        self.assertIn("    crontab: out of date (no crontab installed: %s does not exist); run "
                      "cron-generate" % self.box.crontab, self.status_lines())
        self.assertIn("%s does not exist; run cron-generate" % self.box.crontab,
                      self.box.run("--check")[2])

    def test_console_compares_nothing(self):
        self.box.settings["output_crontab"] = "console"
        self.box.write_config()
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        self.assertEqual(self.box.run_job("--check"), (0, "", ""))
        self.assertFalse([line for line in self.status_lines() if "crontab:" in line])

    def test_a_fifo_or_a_symlink_to_dev_zero_neither_hangs_nor_fills_memory(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        for make in (os.mkfifo, lambda path: os.symlink("/dev/zero", path)):
            make(self.box.crontab)
            lines = self.status_lines()  # each run's communicate() has a timeout
            self.assertEqual(len([line for line in lines if "cannot compare" in line]), 1, lines)
            code, out, err = self.box.run_job("--status", "tick")  # one job: the same line
            self.assertEqual(len([line for line in out.splitlines() if "cannot compare" in line]),
                             1, out)
            code, out, err = self.box.run_job("--check")
            self.assertEqual(code, 0, err)
            self.assertIn("warning: cannot compare the crontab with the job files", err)
            code, out, err = self.box.run("--check")
            self.assertEqual(code, 0, err)
            self.assertIn("run cron-generate", err)
            self.generate()  # replaced by the file cron-generate writes
            self.assertEqual(self.box.run_job("--check"), (0, "", ""))
            os.unlink(self.box.crontab)

    def test_a_huge_file_is_not_read_whole(self):
        self.box.touching_job("tick", "schedule: '%s'\n" % EVERY_5)
        with open(self.box.crontab, "wb") as stream:
            stream.truncate(run_job.CRONTAB_MAX_BYTES + 1)
        code, out, err = self.box.run_job("--check")
        self.assertIn("larger than any crontab cron-generate writes", err)


if __name__ == "__main__":
    unittest.main()
