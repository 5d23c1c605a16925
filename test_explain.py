"""Tests for run-job --explain NAME: each setting's value and origin (the
built-in default, default_job_config at FILE:LINE, the job file at
FILE:LINE), the command words and environment a run gets, the paths, the
next scheduled times, the installed crontab against the job file, and that
nothing is run or written. Real files in temporary directories; the command
line in-process (run_job.main) where being a process does not matter."""

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import test_config  # noqa: E402

DEFAULTS = ("default_job_config:\n"
            "  kill_grace: 30s\n"
            "  retries: 1\n")
JOB = ("description: nightly\n"
       "command:\n"
       "  - /bin/sh -c 'echo \"a b\"'\n"
       "  - printf '%s\\n' \"it's\" ''\n"
       "schedule: '30 2 * * *'\n"
       "retries: 3\n"
       "environment:\n"
       "  GREETING: hello world\n"
       "  PATH: /opt/bin:/usr/bin\n"
       "  COLOUR: blue\n")


class ExplainTest(test_config.SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.write_config(extra=DEFAULTS + "cron_environment: {COLOUR: red}\n")
        self.job_file = self.sandbox.write_job("nightly", JOB)

    def explain(self, *args):
        """(exit code, stdout, stderr) of run-job --explain, in-process."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_job.main(["--config", self.sandbox.config, "--explain"] + list(args))
        return code, out.getvalue(), err.getvalue()

    def explanation(self, name="nightly", now=None):
        config = self.sandbox.load()
        return run_job.job_explanation(config, run_job.load_job(config, name),
                                       time.time() if now is None else now)

    def settings(self, explanation):
        return dict((setting["key"], setting) for setting in explanation["settings"])

    def setting_line(self, out, key):
        lines = [line for line in out.splitlines() if line.split()[:1] == [key]]
        self.assertEqual(len(lines), 1, out)
        return lines[0]


class OriginTests(ExplainTest):
    def test_every_job_key_is_shown_once_in_key_table_order(self):
        code, out, err = self.explain("nightly")
        self.assertEqual((code, err), (0, ""))
        keys = [line.split()[0] for line in out.split("settings:\n")[1].split("\n\n")[0]
                .splitlines()]
        self.assertEqual(keys, [key.name for key in run_job.JOB_KEYS])

    def test_a_key_set_nowhere_is_the_built_in_default_as_documented(self):
        settings = self.settings(self.explanation())
        self.assertEqual((settings["timeout"]["value"], settings["timeout"]["origin"]),
                         ("10m", "built-in default"))
        self.assertEqual((settings["overlap"]["file"], settings["overlap"]["line"]), (None, None))
        line = self.setting_line(self.explain("nightly")[1], "timeout")
        self.assertEqual(line.split(), ["timeout", "10m", "built-in", "default"])

    def test_a_key_from_default_job_config_names_the_config_file_and_line(self):
        settings = self.settings(self.explanation())
        self.assertEqual(settings["kill_grace"]["value"], "'30s'")
        self.assertEqual(settings["kill_grace"]["origin"],
                         "default_job_config at %s:7" % self.sandbox.config)
        self.assertEqual(settings["kill_grace"]["line"], 7)
        line = self.setting_line(self.explain("nightly")[1], "kill_grace")
        self.assertTrue(line.endswith("  default_job_config at %s:7" % self.sandbox.config), line)

    def test_a_key_of_the_job_file_names_its_line_over_the_default(self):
        settings = self.settings(self.explanation())
        self.assertEqual((settings["retries"]["value"], settings["retries"]["origin"]),
                         ("3", "%s:6" % self.job_file))
        self.assertEqual((settings["schedule"]["value"], settings["schedule"]["origin"]),
                         ("'30 2 * * *'", "%s:5" % self.job_file))
        self.assertEqual(settings["command"]["origin"], "%s:2" % self.job_file)

    def test_origins_are_aligned_after_values_cut_to_fit(self):
        self.sandbox.write_job("long", "command: [/bin/true, /bin/true, /bin/true, /bin/true]\n"
                                       "description: %s\n" % ("x" * 100))
        settings = self.settings(self.explanation("long"))
        self.assertEqual(settings["command"]["value"], "[a list of 4]")
        self.assertEqual(settings["description"]["value"], "'" + "x" * 36 + "...")
        out = self.explain("long")[1]
        lines = out.split("settings:\n")[1].split("\n\n")[0].splitlines()
        columns = set(line.rindex(settings[line.split()[0]]["origin"]) for line in lines)
        self.assertEqual(len(columns), 1, out)

    def test_a_bad_job_file_is_the_usual_one_line_config_error(self):
        self.sandbox.write_job("broken", "command: /bin/true\ntimeout: [1\n")
        code, out, err = self.explain("broken")
        self.assertEqual((code, out), (78, ""))
        self.assert_one_error_line(err, self.sandbox.path("jobs", "broken.yaml") + ":2:")


class CommandAndEnvironmentTests(ExplainTest):
    def test_command_words_are_shell_quoted_as_exec_gets_them(self):
        explanation = self.explanation()
        self.assertEqual(explanation["commands"],
                         [["/bin/sh", "-c", 'echo "a b"'], ["printf", "%s\\n", "it's", ""]])
        out = self.explain("nightly")[1]
        self.assertIn("\n  1. /bin/sh -c 'echo \"a b\"'\n", out)
        self.assertIn("\n  2. printf '%s\\n' 'it'\\''s' ''\n", out)

    def test_the_shown_words_read_back_as_the_same_words(self):
        import shlex
        out = self.explain("nightly")[1]
        shown = [line.split(". ", 1)[1] for line in out.splitlines()
                 if line.startswith(("  1. ", "  2. "))]
        self.assertEqual([shlex.split(line) for line in shown], self.explanation()["commands"])

    def test_environment_variables_added_or_replacing_what_cron_gives(self):
        changes = dict((change["name"], change) for change in self.explanation()["environment"])
        self.assertEqual(changes["GREETING"]["change"], "added")
        self.assertEqual(changes["PATH"]["change"], "replaces cron's default PATH=/usr/bin:/bin")
        self.assertEqual(changes["COLOUR"]["change"], "replaces cron_environment's COLOUR=red")
        out = self.explain("nightly")[1]
        self.assertIn("  GREETING='hello world'  added\n", out)
        self.assertIn("  PATH=/opt/bin:/usr/bin  replaces cron's default PATH=/usr/bin:/bin\n",
                      out)

    def test_home_and_logname_are_the_service_user_s(self):
        import pwd
        account = pwd.getpwnam(test_config.CURRENT_USER)
        self.sandbox.write_job("home", "command: /bin/true\nenvironment: {HOME: /srv/x}\n")
        self.assertEqual(self.explanation("home")["environment"][0]["change"],
                         "replaces cron's default HOME=%s" % run_job._quote_word(account.pw_dir))

    def test_a_job_without_environment_says_so(self):
        self.sandbox.write_job("plain", "command: /bin/true\n")
        self.assertEqual(self.explanation("plain")["environment"], [])
        self.assertIn("\nenvironment: as cron gives it\n", self.explain("plain")[1])

    def test_user_lock_log_and_state_paths(self):
        config = self.sandbox.load()
        out = self.explain("nightly")[1]
        self.assertIn("\nuser           %s (uid %d)\n" % (test_config.CURRENT_USER, os.geteuid()),
                      out)
        self.assertIn("\nlock           %s (free)\n" % run_job.lock_path(config, "nightly"), out)
        self.assertIn("\nlog directory  %s\n" % self.sandbox.path("log", "nightly"), out)
        self.assertIn("\nstate          %s\n" % self.sandbox.path("state", "nightly.state"), out)
        self.assertIn("\nhistory        %s\n" % self.sandbox.path("state", "nightly.history"),
                      out)


class NextRunTests(ExplainTest):
    def test_the_next_five_times_after_a_fixed_now(self):
        now = time.mktime((2026, 2, 26, 12, 0, 0, 0, 0, -1))
        expected = [time.mktime((2026, month, day, 2, 30, 0, 0, 0, -1))
                    for month, day in ((2, 27), (2, 28), (3, 1), (3, 2), (3, 3))]
        explanation = self.explanation(now=now)
        self.assertEqual(explanation["next_run_times"], [int(epoch) for epoch in expected])
        self.assertTrue(explanation["next_runs"][0].startswith("2026-02-27T02:30:00.000"))
        lines = run_job.explanation_lines(explanation)
        first = lines.index([line for line in lines if line.startswith("next runs")][0])
        self.assertTrue(lines[first].startswith("next runs      2026-02-27 02:30 Fri "), lines)
        self.assertTrue(lines[first + 4].startswith("               2026-03-03 02:30 Tue "),
                        lines)
        self.assertTrue(lines[first + 5].startswith("crontab"), lines)

    def test_a_disabled_or_unscheduled_job_has_none(self):
        self.sandbox.write_job("off", "command: /bin/true\nschedule: '* * * * *'\n"
                                      "disabled: true\n")
        self.sandbox.write_job("manual", "command: /bin/true\n")
        for name in ("off", "manual"):
            self.assertEqual(self.explanation(name)["next_run_times"], [])
            self.assertIn("\nnext runs      none: cron does not start it\n",
                          self.explain(name)[1])


class CrontabTests(ExplainTest):
    def setUp(self):
        super().setUp()
        os.mkdir(self.sandbox.path("cron.d"))
        self.crontab = self.sandbox.path("cron.d", "jobs")
        self.sandbox.write_config(extra=DEFAULTS + "output_crontab: %s\n" % self.crontab)

    def write_crontab(self, schedule):
        test_config.write_file(self.crontab, "%s root /usr/bin/run-job --job nightly "
                                             "--scheduled '%s'\n" % (schedule, schedule))

    def crontab_line(self):
        return [line for line in self.explain("nightly")[1].splitlines()
                if line.startswith("crontab")]

    def test_a_crontab_line_as_the_job_file_says_matches(self):
        self.write_crontab("30 2 * * *")
        self.assertEqual(self.crontab_line(), ["crontab        matches %s" % self.crontab])

    def test_a_line_for_another_schedule_differs(self):
        self.write_crontab("0 4 * * *")
        self.assertEqual(self.explanation()["crontab"],
                         "line differs: rescheduled to '30 2 * * *', still scheduled "
                         "'0 4 * * *'")

    def test_a_crontab_without_the_job_or_no_crontab_has_no_line(self):
        test_config.write_file(self.crontab, "# nothing\n")
        self.assertEqual(self.explanation()["crontab"],
                         "no line: scheduled '30 2 * * *', but not in the crontab")
        os.unlink(self.crontab)
        self.assertEqual(self.explanation()["crontab"], "no line: no crontab installed: "
                                                        "%s does not exist" % self.crontab)

    def test_a_crontab_that_cannot_be_read_says_so(self):
        os.mkdir(self.crontab)
        self.assertTrue(self.explanation()["crontab"].startswith(
            "cannot read the crontab: %s is a directory" % self.crontab),
            self.explanation()["crontab"])

    def test_a_disabled_job_still_in_the_crontab_differs(self):
        self.write_crontab("30 2 * * *")
        self.sandbox.write_job("nightly", JOB + "disabled: true\n")
        self.assertEqual(self.explanation()["crontab"],
                         "line differs: disabled, still scheduled '30 2 * * *'")
        os.unlink(self.crontab)
        self.assertEqual(self.explanation()["crontab"],
                         "matches %s: no line, as the job is disabled" % self.crontab)


class ReadOnlyTests(ExplainTest):
    def tree(self):
        """{path: (mode, size, mtime_ns)} of everything in the sandbox."""
        found = {}
        for directory, names, files in os.walk(self.sandbox.root):
            for name in names + files:
                path = os.path.join(directory, name)
                status = os.lstat(path)
                found[path] = (status.st_mode, status.st_size, status.st_mtime_ns)
        return found

    def test_nothing_is_created_where_nothing_is(self):
        before = self.tree()
        code, out, err = self.sandbox.run("--explain", "nightly")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("\ncommands, shell-quoted:\n", out)
        self.assertEqual(self.tree(), before)

    def test_nothing_is_written_beside_a_state_and_logs(self):
        self.sandbox.make_directories()
        config = self.sandbox.load()
        os.mkdir(self.sandbox.path("log", "nightly"))
        test_config.write_file(run_job.state_path(config, "nightly"), "{not json\n")
        test_config.write_file(run_job.lock_path(config, "nightly"), "")
        before = self.tree()
        code, out, err = self.sandbox.run("--explain", "nightly", "--json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(json.loads(out)["job"], "nightly")
        self.assertEqual(self.tree(), before)

    def test_a_running_job_holds_the_lock(self):
        self.sandbox.write_job("sleeper", "command: sleep 30\n")
        self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        explanation = self.explanation("sleeper")
        self.assertTrue(explanation["running"])
        self.assertIn("(held: the job is running, pid ", self.explain("sleeper")[1])


class StartNowTests(ExplainTest):
    def test_a_start_now_runs_or_is_skipped_or_refused_by_the_state(self):
        self.sandbox.make_directories()
        config = self.sandbox.load()
        self.assertEqual(self.explanation()["start_now"], "runs")
        run_job.pause_job(config, "nightly", "alice", "disk full", time.time())
        self.assertEqual(self.explanation()["start_now"][:30], "skipped: paused by alice at 20")
        self.assertIn(": disk full; run-job --force nightly runs it anyway",
                      self.explanation()["start_now"])
        run_job.resume_job(config, "nightly", "alice", None, time.time())
        run_job.update_state(config, "nightly", lambda state: state.update(
            halted="2026-01-01T00:00:00", halt_reason="3 consecutive failures"), time.time())
        self.assertEqual(self.explanation()["start_now"],
                         "refused (exit 69): halted since 2026-01-01T00:00:00: 3 consecutive "
                         "failures; run-job --reset nightly clears it")
        self.assertIn("\na start now    refused (exit 69): ", self.explain("nightly")[1])

    def test_a_bad_state_file_is_set_aside_by_the_run_not_by_explain(self):
        self.sandbox.make_directories()
        path = run_job.state_path(self.sandbox.load(), "nightly")
        test_config.write_file(path, "{not a record\n")
        self.assertTrue(self.explanation()["start_now"].startswith(
            "runs, after setting aside the state file %s" % path))
        with open(path) as state:
            self.assertEqual(state.read(), "{not a record\n")


class CommandLineTests(ExplainTest):
    def test_json_has_the_text_s_facts(self):
        code, out, err = self.explain("nightly", "--json")
        self.assertEqual((code, err), (0, ""))
        explanation = json.loads(out)
        self.assertEqual(sorted(explanation), sorted(self.explanation()))
        self.assertEqual(explanation["commands"][1], ["printf", "%s\\n", "it's", ""])

    def test_one_name_only_and_not_a_file_name(self):
        for args, fragment in ((["nightly", "other"], "one job at a time"),
                               (["nightly.yaml"], "run-job --explain nightly"),
                               ([], "--explain needs a value"),
                               (["nosuch"], "no job named nosuch")):
            code, out, err = self.explain(*args)
            self.assertEqual((code, out), (64, ""), args)
            self.assert_one_error_line(err, fragment)

    @test_config.root_only
    def test_as_root_it_reads_as_the_service_user_with_what_it_needs_preloaded(self):
        # The pyenv interpreter is unreadable to nobody: what --explain
        # imports after the switch (datetime, json) must be preloaded.
        self.sandbox.write_config(user=test_config.UNPRIVILEGED)
        code, out, err = self.sandbox.run("--explain", "nightly", "--json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(json.loads(out)["user"], test_config.UNPRIVILEGED)
        code, out, err = self.sandbox.run("--explain", "nightly")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("\nnext runs      20", out)

    def test_help_names_the_option(self):
        out = subprocess.check_output([sys.executable, test_config.RUN_JOB, "--help"])
        self.assertIn(b"--explain NAME", out)


if __name__ == "__main__":
    unittest.main()
