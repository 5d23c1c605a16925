"""Every number and string from a config is bounded before it is converted or
printed, every value that reaches a message or the crontab is one line, and
run-job and cron-generate judge a job file valid by one function (issue 9).

Table-driven, so that many inputs cost few process starts: one job directory
of many bad job files goes through one `run-job --check`, one `--status` and
one cron-generate process; the runs of each bad job, and each bad global
config through run-job --check, a run, --status and cron-generate, go through
the scripts' main() in one process per table (BATCH_DRIVER), checked against
real processes of their own for a few of them.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import (CRON_GENERATE, CURRENT_USER, IS_ROOT, UNPRIVILEGED,  # noqa: E402
                         SandboxTest, root_only)

HEX_5000 = "0x" + "f" * 5000
# The longest message line a bad value may make: the value is cut, not the hint.
MAX_LINE = 400

# name -> (job file text, line of the error, a fragment of its message)
BAD_JOB_FILES = {
    "hex_timeout": ("command: /bin/true\ntimeout: %s\n" % HEX_5000, 2,
                    "hexadecimal integer with more than 3300 digits"),
    "hex_kill_grace": ("command: /bin/true\nkill_grace: %s\n" % HEX_5000, 2,
                       "hexadecimal integer with more than 3300 digits"),
    "hex_environment": ("command: /bin/true\nenvironment:\n  A: %s\n" % HEX_5000, 3,
                        "hexadecimal integer with more than 3300 digits"),
    "hex_exit_codes": ("command: /bin/true\nsuccess_exit_codes: [%s]\n" % HEX_5000, 2,
                       "hexadecimal integer with more than 3300 digits"),
    "hex_threshold": ("command: /bin/true\nfailure_threshold_for_mail: %s\n" % HEX_5000, 2,
                      "hexadecimal integer with more than 3300 digits"),
    "hex_in_range_timeout": ("command: /bin/true\ntimeout: 0x%s\n" % ("f" * 3300), 2,
                             "a 13200-bit number is longer than ten years"),
    "decimal_timeout": ("command: /bin/true\ntimeout: %s\n" % ("9" * 5000), 2,
                        "integer with more than 4000 digits"),
    "decimal_in_range_timeout": ("command: /bin/true\ntimeout: %s\n" % ("9" * 4000), 2,
                                 "-bit number is longer than ten years"),
    "decimal_environment": ("command: /bin/true\nenvironment:\n  A: %s\n" % ("9" * 5000), 3,
                            "integer with more than 4000 digits"),
    "octal_timeout": ("command: /bin/true\ntimeout: 0o%s\n" % ("7" * 5000), 2,
                      "is a different number (or a string) in YAML 1.1 and YAML 1.2"),
    "binary_timeout": ("command: /bin/true\ntimeout: 0b%s\n" % ("1" * 5000), 2,
                       "is a different number (or a string) in YAML 1.1 and YAML 1.2"),
    "sexagesimal_timeout": ("command: /bin/true\ntimeout: 190:20:30\n", 2,
                            "is a different number (or a string)"),
    "exponent_timeout": ("command: /bin/true\ntimeout: 1e400\n", 2,
                         "is a different number (or a string)"),
    "float_overflow_timeout": ("command: /bin/true\ntimeout: 1.0e+400\n", 2,
                               "is too large for a number"),
    "float_overflow_environment": ("command: /bin/true\nenvironment:\n  A: %s.5\n"
                                   % ("9" * 5000), 3, "is too large for a number"),
    "long_duration_text": ("command: /bin/true\ntimeout: \"%ss\"\n" % ("9" * 5000), 2,
                           "is longer than ten years"),
    "threshold_too_large": ("command: /bin/true\nfailure_threshold_for_mail: 2147483648\n",
                            2, "a whole number from 0 to 2147483647"),
    "long_schedule_word": ("command: /bin/true\nschedule: \"@%s\"\n" % ("x" * 5000), 2,
                           "is not a cron schedule"),
    "long_argument": ("command: /bin/echo %s\n" % ("x" * 131072), 1,
                      "`command`: a word is longer than 131071 bytes"),
    "long_environment": ("command: /bin/true\nenvironment:\n  A: %s\n" % ("\u00e9" * 65535),
                         3, "`environment: A` is longer than 131071 bytes"),
    "long_schedule": ("command: /bin/true\nschedule: '%s * * * *'\n" % ",".join(["0"] * 450),
                      2, "`schedule` is 907 characters long, too long for its crontab line"),
    "long_duplicate_key": ("command: /bin/true\n%s: 1\n%s: 2\n" % ("k" * 900, "k" * 900), 3,
                           "duplicate key"),
}


# Many command lines in one process: each through the scripts' own main(), its
# stdout and stderr captured, any exception that escapes main recorded as a
# traceback. A real process of its own, so the scripts' start-up is theirs.
BATCH_DRIVER = r"""
import io, json, os, sys, traceback
sys.path.insert(0, %r)
import cron_generate, run_job
results = []
for program, argv in json.load(sys.stdin):
    main = cron_generate.main if program == "cron-generate" else run_job.main
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err
    try:
        code = main(argv)
    except BaseException:
        code = None
        err.write(traceback.format_exc())
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, sys.stdout)
""" % HERE


def run_batch(sandbox, calls):
    """[(exit code, stdout, stderr)] of each (program, argv) in CALLS, run by
    one process in the sandbox, with its config."""
    calls = [(program, ["--config", sandbox.config] + list(argv)) for program, argv in calls]
    process = subprocess.run([sys.executable, "-c", BATCH_DRIVER], input=json.dumps(calls),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, cwd=sandbox.root, timeout=60)
    if process.returncode != 0:
        raise AssertionError(process.stderr)
    return [tuple(result) for result in json.loads(process.stdout)]


def bad_job_path(sandbox, name):
    return os.path.realpath(os.path.join(sandbox.jobs, name + ".yaml"))


class BadJobFileTests(SandboxTest):
    """Each bad job file: one located line from --check, --status, cron-generate
    and a run of it; the good job beside them is still scheduled."""

    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.sandbox.write_job("good", "command: /bin/true\nschedule: '0 3 * * *'\n")
        for name, (text, _, _) in BAD_JOB_FILES.items():
            self.sandbox.write_job(name, text)

    def assert_clean(self, err):
        self.assertNotIn("Traceback", err)
        for line in err.splitlines():
            self.assertLess(len(line), MAX_LINE, line)

    def lines_by_job(self, err, prefix):
        """Each stderr line, by the bad job whose file it names."""
        found = {}
        for line in err.splitlines():
            self.assertTrue(line.startswith(prefix), line)
            for name in BAD_JOB_FILES:
                if (bad_job_path(self.sandbox, name) + ":") in line:
                    self.assertNotIn(name, found, err)
                    found[name] = line
        return found

    def assert_located(self, name, line):
        _, number, fragment = BAD_JOB_FILES[name]
        place = "%s:%d:" % (bad_job_path(self.sandbox, name), number)
        self.assertIn(place, line)
        self.assertIn(fragment, line)

    def test_check_reports_each_bad_file_on_one_located_line(self):
        code, out, err = self.sandbox.run("--check")
        self.assert_clean(err)
        self.assertEqual(code, 78, err)
        found = self.lines_by_job(err, "run-job: ")
        self.assertEqual(sorted(found), sorted(BAD_JOB_FILES))
        self.assertEqual(len(err.splitlines()), len(BAD_JOB_FILES), err)
        for name, line in found.items():
            with self.subTest(job=name):
                self.assert_located(name, line)

    def test_status_shows_each_bad_file_as_invalid_on_one_line(self):
        code, out, err = self.sandbox.run("--status")
        self.assert_clean(err + out)
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        for name in BAD_JOB_FILES:
            with self.subTest(job=name):
                index = lines.index("%s ***Invalid configuration***" % name)
                self.assert_located(name, lines[index + 1])
                following = lines[index + 2] if index + 2 < len(lines) else ""
                self.assertFalse(following.startswith(" "), following)

    def test_cron_generate_skips_each_bad_file_on_one_line(self):
        code, out, err = self.sandbox.run("--stdout", script=CRON_GENERATE)
        self.assert_clean(err + out)
        self.assertEqual(code, 78, err)
        found = self.lines_by_job(err, "cron-generate: ")
        self.assertEqual(sorted(found), sorted(BAD_JOB_FILES))
        for name, line in found.items():
            self.assert_located(name, line)
            self.assertTrue(line.endswith("job %s is left off the schedule" % name), line)
        lines = out.splitlines()
        skipped = [line for line in lines if line.startswith("# Skipping invalid job ")]
        self.assertEqual(len(skipped), len(BAD_JOB_FILES), out)
        entries = [line for line in lines if line and not line.startswith("#")]
        self.assertEqual(len(entries), 1, out)
        self.assertIn("--job good ", entries[0])
        self.assertEqual(len(lines), 2 + 2 + len(BAD_JOB_FILES), out)

    def test_a_run_of_each_bad_file_is_one_located_line(self):
        names = sorted(BAD_JOB_FILES)
        results = run_batch(self.sandbox, [("run-job", [name]) for name in names])
        # The batch runs main() in one process; two real runs show the same.
        for name in ("hex_timeout", "float_overflow_environment"):
            self.assertEqual(self.sandbox.run(name), results[names.index(name)])
        for name, (code, out, err) in zip(names, results):
            with self.subTest(job=name):
                self.assert_clean(err)
                self.assertEqual(code, 78, err)
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertTrue(err.startswith("run-job: "), err)
                self.assert_located(name, err)


# (global key, its value, a fragment of the error[, the error's column: 1, or
# the name's in cron_environment's flow mapping]). Values in double quotes are
# YAML escapes: "\0" is a NUL, "\n" a line break.
BAD_GLOBAL_VALUES = [
    ("job_directory", r'"a\0b"', "`job_directory` holds a NUL character"),
    ("user", r'"x\0"', "`user` holds a NUL character"),
    ("log_group", r'"g\0"', "`log_group` holds a NUL character"),
    ("user", r'"x\ny"', "`user`: the user name 'x\\ny' holds a line break"),
    ("user", r'"x y"', "is not a user name cron can read"),
    ("job_directory", r'"jobs\n* * * * * root /bin/evil"', "holds a line break"),
    ("output_directory", r'"log\rx"', "holds a line break or control character (\\r)"),
    ("run_directory", r'"run\u2028x"', "(\\u2028)"),
    ("state_directory", r'"state\x85x"', "(\\x85)"),
    ("runner_path", r'"/usr/bin/run-job\n* * * * * root /bin/evil"', "holds a line break"),
    ("output_crontab", r'"crontab\nx"', "holds a line break"),
    ("state_directory", r'"state\tx"', "(\\t)"),
    ("output_directory", "/tmp" + "/c" * 2000, "is longer than 1024 bytes"),
    ("run_directory", "/tmp/" + "r" * 256, "has a name longer than 255 bytes"),
    # What only cron-generate refused before, now refused as the config loads.
    ("runner_path", "'/usr/bin/run job'", "must be an absolute path of letters"),
    ("output_crontab", "process-control.cron", "cron ignores files whose names"),
    ("mailto", r'"ops@example.org\n* * * * * root /bin/evil"', "mailto 'ops@example.org\\n"),
    ("mailto", "'a b'", "write addresses separated by commas"),
    ("mailto", "a" * 992, "mailto is 992 characters long; cron reads lines of at most 998"),
    ("cron_environment", "{A: %s}" % ("x" * 995), "A' is too long for its crontab line"),
    ("cron_environment", r'{A: "x\n* * * * * root /bin/evil"}', "A holds a line break"),
    ("cron_environment", r'{A: "x\u2028y"}', "A holds a line break"),
    ("cron_environment", "{BAD NAME: x}", "'BAD NAME' is not a variable name cron reads"),
    ("cron_environment", "{A: ' \"x\" '}", "needs quoting for cron but holds a double"),
    ("cron_template", "'{schedule} {user} {command'", "expected '}' before end of string"),
    ("cron_template", "'{schedule} {user} {command} {host}'", "unknown placeholder {host}"),
    # Applied only by a run, but a NUL fails there: refused as the config loads.
    ("logging", r'{version: 1, handlers: {h: {class: logging.FileHandler, filename: "a\0"}}}',
     "`logging: handlers: h: filename` holds a NUL character", 66),
    ("logging", r'{version: 1, handlers: {h: {class: logging.handlers.SysLogHandler, '
     r'address: "\0"}}}', "`logging: handlers: h: address` holds a NUL character", 77),
]


class BadGlobalConfigTests(SandboxTest):
    """Each bad global value: --check, a run, --status and cron-generate exit
    78 with one line at the key, and no crontab is written."""

    def write_bad_config(self, key, value):
        crontab = self.sandbox.path("crontab")
        lines = ["user: %s" % CURRENT_USER, "job_directory: jobs", "output_directory: log",
                 "run_directory: run", "state_directory: state",
                 "output_crontab: %s" % crontab]
        lines = [line for line in lines if not line.startswith(key + ":")]
        lines.append("%s: %s" % (key, value))
        self.sandbox.write_config_text("\n".join(lines) + "\n")
        return len(lines), crontab

    def test_each_bad_value_is_one_located_line_everywhere(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("good", "command: /bin/true\nschedule: '0 3 * * *'\n")
        commands = [("run-job", ("--check",)), ("run-job", ("good",)),
                    ("run-job", ("--status",)), ("cron-generate", ()),
                    ("cron-generate", ("--check",))]
        for index, case in enumerate(BAD_GLOBAL_VALUES):
            key, value, fragment = case[:3]
            column = case[3] if len(case) > 3 else 20 if key == "cron_environment" else 1
            number, crontab = self.write_bad_config(key, value)
            results = run_batch(self.sandbox, commands)
            if index < 3:  # the batch runs main() in one process; so do real ones
                for (program, args), result in zip(commands, results):
                    script = CRON_GENERATE if program == "cron-generate" else None
                    options = {"script": script} if script else {}
                    self.assertEqual(self.sandbox.run(*args, **options), result)
            for (program, args), (code, out, err) in zip(commands, results):
                with self.subTest(key=key, value=value, command=(program,) + args):
                    self.assertNotIn("Traceback", err)
                    self.assertEqual(code, 78, err)
                    self.assertEqual(out, "")
                    self.assertEqual(len(err.splitlines()), 1, err)
                    self.assertTrue(err.startswith("%s: %s:%d:%d: " % (
                        program, self.sandbox.config, number, column)), err)
                    self.assertIn(fragment, err)
                    self.assertFalse(os.path.lexists(crontab), err)


class CrontabLineTests(SandboxTest):
    """No name on the way to a job file puts a line of its own in the crontab."""

    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.crontab = self.sandbox.path("crontab")
        self.sandbox.write_config(extra="output_crontab: %s\n" % self.crontab)

    def generate(self):
        return self.sandbox.run(script=CRON_GENERATE)

    def test_a_job_file_symlink_to_a_name_with_a_line_break_is_skipped_on_one_line(self):
        self.sandbox.write_job("good", "command: /bin/true\nschedule: '0 3 * * *'\n")
        target = os.path.join(self.sandbox.jobs, "x\n* * * * * root evil #")
        with open(target, "w") as stream:
            stream.write("command: /bin/true\nschedule: '0 3 * * *'\n")
        os.chmod(target, 0o644)
        os.symlink(target, os.path.join(self.sandbox.jobs, "linked.yaml"))
        code, out, err = self.generate()
        self.assertEqual(code, 78, err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("a name with a line break or control character", err)
        with open(self.crontab) as stream:
            lines = stream.read().splitlines()
        self.assertEqual([line for line in lines if not line.startswith("#")],
                         ["0 3 * * * %s %s --job good --scheduled '0 3 * * *'"
                          % (CURRENT_USER, self.sandbox.load().runner_path)])
        self.assertEqual(len(lines), 5, lines)
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("a name with a line break or control character", err)

    def test_a_job_directory_reached_through_a_name_with_a_line_break_is_refused(self):
        real = self.sandbox.path("jobs\n* * * * * root evil")
        shutil.move(self.sandbox.jobs, real)
        os.symlink(real, self.sandbox.jobs)
        self.sandbox.write_job("good", "command: /bin/true\nschedule: '0 3 * * *'\n")
        for args, script, code_wanted in ((("--check",), None, 78), (("good",), None, 77),
                                          ((), CRON_GENERATE, 77)):
            with self.subTest(args=args, script=script):
                options = {"script": script} if script else {}
                code, out, err = self.sandbox.run(*args, **options)
                self.assertEqual(code, code_wanted, err)
                self.assertNotIn("Traceback", err)
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertIn("holds a line break or control character", err)
        self.assertFalse(os.path.lexists(self.crontab))


class LongProgramTests(SandboxTest):
    def test_a_long_program_name_is_cut_in_every_message(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("long", "command: /bin/%s * 'a\\nb'\n" % ("9" * 5000))
        for args in (("--check",), ("long",)):
            code, out, err = self.sandbox.run(*args)
            self.assertEqual(code, 78 if args == ("--check",) else 1, err)
            self.assertNotIn("Traceback", err)
            self.assertIn("/bin/999", err)
            self.assertTrue(all(len(line) < 600 for line in err.splitlines()), err)


class StatusLineTests(SandboxTest):
    def test_status_never_prints_a_line_break_or_control_character_of_a_job_file(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("odd", 'name: "a\\nb\\x1b[31m"\n'
                               'description: "one\\u2028two\\nthree\\x1b]0;x\\x07"\n'
                               'command: /bin/true\ntags: ["t\\rx"]\n')
        code, out, err = self.sandbox.run("--status", "odd")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, "odd - a\\nb\\x1b[31m\n    one\n    two\n"
                              "    three\\x1b]0;x\\x07\n    tags: t\\rx\n")


class ServiceUserViewTests(SandboxTest):
    """cron-generate, as root, judges a job file as the service user would,
    exactly as run-job --check does."""

    def assert_judged_alike(self, fragment, run_code):
        check_code, _, check_err = self.sandbox.run("--check")
        self.assertEqual(check_code, 78, check_err)
        self.assertEqual(len(check_err.splitlines()), 1, check_err)
        self.assertIn(fragment, check_err)
        run_exit, _, run_err = self.sandbox.run("private")
        self.assertEqual(run_exit, run_code, run_err)
        self.assertEqual(run_err, check_err)
        code, out, err = self.sandbox.run("--stdout", script=CRON_GENERATE)
        self.assertNotIn("Traceback", err)
        self.assertEqual(code, 78, err)
        reason = check_err[len("run-job: "):].rstrip("\n")
        self.assertIn("# Skipping invalid job private: %s\n" % reason, out)
        self.assertEqual(err, "cron-generate: %s; job private is left off the schedule\n"
                         % reason)
        self.assertNotIn("--job private", out)
        self.assertIn("--job good", out)

    def write_jobs(self, user):
        self.sandbox.write_config(user=user)
        self.sandbox.make_directories()
        if user != CURRENT_USER:
            for name in ("log", "run", "state"):
                os.chown(self.sandbox.path(name), pwd.getpwnam(user).pw_uid, -1)
        self.sandbox.write_job("good", "command: /bin/true\nschedule: '0 3 * * *'\n")

    @root_only
    def test_a_job_file_only_root_can_read_is_invalid_for_both(self):
        self.write_jobs(UNPRIVILEGED)
        path = self.sandbox.write_job("private", "command: /bin/true\nschedule: '0 3 * * *'\n",
                                      mode=0o600)
        self.assert_judged_alike("%s: refused: the service user %s cannot read the job file; "
                                 "chmod 0644" % (os.path.realpath(path), UNPRIVILEGED), 77)

    @unittest.skipIf(IS_ROOT, "root reads a mode 0000 file; as root the 0600 case runs")
    def test_a_job_file_the_service_user_cannot_read_is_invalid_for_both(self):
        self.write_jobs(CURRENT_USER)
        path = self.sandbox.write_job("private", "command: /bin/true\nschedule: '0 3 * * *'\n",
                                      mode=0o000)
        self.assert_judged_alike("%s: refused: the service user %s cannot read the job file; "
                                 "chmod 0644" % (os.path.realpath(path), CURRENT_USER), 77)

    @root_only
    def test_a_job_directory_only_root_can_list_is_refused_by_both(self):
        self.write_jobs(UNPRIVILEGED)
        os.chmod(self.sandbox.jobs, 0o700)
        fragment = ("refused: the service user %s cannot reach the job directory %s"
                    % (UNPRIVILEGED, os.path.realpath(self.sandbox.jobs)))
        results = [self.sandbox.run("--check"), self.sandbox.run("good"),
                   self.sandbox.run(script=CRON_GENERATE)]
        self.assertEqual([code for code, _, _ in results], [78, 77, 77])
        for (_, _, err), program in zip(results, ("run-job", "run-job", "cron-generate")):
            self.assertEqual(err, "%s: %s: %s is not searchable; chmod o+x %s\n" % (
                program, fragment, os.path.realpath(self.sandbox.jobs),
                os.path.realpath(self.sandbox.jobs)))


class OneLineHelperTests(unittest.TestCase):
    def test_printable_escapes_every_line_break(self):
        for char in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029\0\t\x1b":
            with self.subTest(char=char):
                text = run_job.printable("a%sb" % char)
                self.assertEqual(len(text.splitlines()), 1, text)
                self.assertTrue(text.isprintable(), text)
        self.assertEqual(run_job.printable("caf\u00e9 / x"), "caf\u00e9 / x")
        self.assertEqual(run_job.printable("x" * 100, 10), "x" * 10 + "...")

    def test_quoted_value_is_bounded_for_any_value(self):
        for value in (16 ** 5000 - 1, "x" * 100000, ["a"] * 10000, -(10 ** 4000)):
            with self.subTest(value=type(value)):
                self.assertLess(len(run_job.quoted_value(value)), 80)
        self.assertEqual(run_job.quoted_value(12), "12")
        self.assertEqual(run_job.quoted_value("a\nb"), "'a\\nb'")

    def test_cron_generate_prints_through_the_same_helper(self):
        code = ("import sys; sys.path.insert(0, %r); import cron_generate, run_job; "
                "print(cron_generate.printable is run_job.printable)" % HERE)
        out = subprocess.check_output([sys.executable, "-c", code])
        self.assertEqual(out, b"True\n")


if __name__ == "__main__":
    unittest.main()
