"""Tests for cron_generate.py: real job files, real config, real crontab files."""

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import cron_generate  # noqa: E402

CRON_GENERATE = os.path.join(HERE, "cron_generate.py")
IS_ROOT = os.geteuid() == 0


def service_user():
    """An existing unprivileged user: nobody as root, else ourselves."""
    return "nobody" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name


def job_lines(text):
    """The lines cron would run: neither comments, blanks nor settings."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not cron_generate.ENVIRONMENT_LINE.match(stripped):
            lines.append(line)
    return lines


class Sandbox(object):
    """A job directory, a global config and a cron.d directory in a temp dir."""

    def __init__(self, **settings):
        self.root = tempfile.mkdtemp(prefix="pc-cron-")
        os.chmod(self.root, 0o755)
        self.job_directory = os.path.join(self.root, "jobs")
        self.cron_directory = os.path.join(self.root, "cron.d")
        for directory in (self.job_directory, self.cron_directory):
            os.mkdir(directory)
            os.chmod(directory, 0o755)
        self.crontab = os.path.join(self.cron_directory, "process-control")
        self.config = os.path.join(self.root, "process-control.yaml")
        self.settings = {
            "user": service_user(),
            "job_directory": self.job_directory,
            "output_directory": os.path.join(self.root, "log"),
            "run_directory": os.path.join(self.root, "run"),
            "state_directory": os.path.join(self.root, "state"),
            "runner_path": "/usr/bin/run-job",
            "output_crontab": self.crontab,
        }
        self.settings.update(settings)
        self.write_config()

    def write_config(self, extra=""):
        lines = []
        for key, value in self.settings.items():
            lines.append("%s: %s" % (key, value))
        self.write(self.config, "\n".join(lines) + "\n" + extra)

    def write(self, path, text, mode=0o644):
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)

    def job(self, name, text):
        self.write(os.path.join(self.job_directory, name + ".yaml"), text)

    def run(self, *arguments):
        process = subprocess.Popen(
            [sys.executable, CRON_GENERATE, "--config", self.config] + list(arguments),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        out, err = process.communicate(timeout=60)
        return process.returncode, out.decode(), err.decode()

    def read_crontab(self):
        with open(self.crontab) as handle:
            return handle.read()

    def remove(self):
        shutil.rmtree(self.root)


class RenderTests(unittest.TestCase):
    """The crontab text itself, from Job objects."""

    def test_seed_readme_example_lines(self):
        directory = "/var/lib/process-control/barium"
        config = run_job.GlobalConfig(user="jenkins", job_directory=directory,
                                      runner_path="/usr/bin/run-job")

        def job(name, schedule, disabled=False):
            return cron_generate.Entry(name, job=run_job.Job(
                name, source="%s/%s.yaml" % (directory, name),
                schedule=run_job.Schedule(schedule), disabled=disabled,
                commands=[["/bin/true"]]))

        entries = [job("ingenico_wr1_audit_parse", "0 * * * *", disabled=True),
                   job("paypal_audit", "35 19 * * *"),
                   job("paypal_smashpig_job_runner", "2-59/5 * * * *")]
        text = cron_generate.render_crontab(config, entries)
        header, body = text.split("\n", 2)[:2], text.split("\n", 2)[2]
        self.assertTrue(all(line.startswith("# ") for line in header))
        self.assertEqual(body, (
            "# Skipping disabled job ingenico_wr1_audit_parse\n"
            "# Generated from /var/lib/process-control/barium/paypal_audit.yaml\n"
            "35 19 * * * jenkins /usr/bin/run-job --job paypal_audit --scheduled '35 19 * * *'\n"
            "# Generated from /var/lib/process-control/barium/paypal_smashpig_job_runner.yaml\n"
            "2-59/5 * * * * jenkins /usr/bin/run-job --job paypal_smashpig_job_runner"
            " --scheduled '2-59/5 * * * *'\n"))
        cron_generate.validate_crontab(text, config)

    def test_environment_values_are_quoted_where_cron_would_trim(self):
        quote = cron_generate.environment_value
        self.assertEqual(quote("PATH", "/usr/bin:/bin"), "/usr/bin:/bin")
        self.assertEqual(quote("EMPTY", ""), '""')
        self.assertEqual(quote("PADDED", "  x  "), '"  x  "')
        self.assertEqual(quote("QUOTED", "'x'"), "\"'x'\"")
        for name, value in (("A B", "x"), ("A=B", "x"), ("A", "x\ny"), ("A", "x\ry"),
                            ("A", '"x"'), ("A", ["x"]), ("A", True)):
            with self.assertRaises(run_job.ConfigError, msg=repr((name, value))):
                quote(name, value)

    def test_cron_line_problems(self):
        problem = cron_generate.cron_line_problem
        self.assertIsNone(problem("* * * * * u /usr/bin/run-job --job a", "u"))
        self.assertIsNone(problem("# anything % at all", "u"))
        self.assertIsNone(problem("PATH=/bin", "u"))
        self.assertIsNone(problem('EMPTY=""', "u"))
        self.assertIsNone(problem("  'QUOTED NAME' = 'x y'", "u"))
        self.assertIn("empty setting", problem("FOO=", "u"))
        self.assertIn("empty setting", problem("FOO =  ", "u"))
        self.assertIn("unclosed quote", problem('FOO="x', "u"))
        self.assertIn("unclosed quote", problem("FOO='", "u"))
        self.assertIn("five time fields", problem("* * * * u /x", "u"))
        self.assertIn("schedule", problem("5/10 * * * * u /x", "u"))
        self.assertIn("not the service user", problem("* * * * * root /x", "u"))
        self.assertIn("%", problem("* * * * * u /x 50%", "u"))
        self.assertIsNone(problem("* * * * * u /x 50\\%", "u"))
        self.assertIn("carriage return", problem("* * * * * u /x\r", "u"))
        self.assertIn("longer", problem("* * * * * u /" + "x" * 1000, "u"))

    def test_line_count_limit(self):
        cron_generate.check_line_count("x\n" * 10000, "f")
        with self.assertRaises(run_job.ConfigError) as caught:
            cron_generate.check_line_count("x\n" * 10001, "f")
        self.assertIn("10000", str(caught.exception))


class GenerateTests(unittest.TestCase):
    """cron_generate.py run as a program on real files."""

    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.remove)

    def test_writes_sorted_entries_with_header_and_skips(self):
        box = self.sandbox
        box.job("zeta", "command: /bin/true\nschedule: '*/5 * * * *'\n")
        box.job("alpha", "command: /bin/true\nschedule: '30 12 * * *'\n")
        box.job("middle", "command: /bin/true\n")
        box.job("off", "command: /bin/true\nschedule: '0 0 * * *'\ndisabled: true\n")
        code, out, err = box.run()
        self.assertEqual((code, err), (0, ""), err)
        text = box.read_crontab()
        user = service_user()
        self.assertIn("generated by cron-generate", text.splitlines()[0].lower())
        self.assertIn(box.job_directory, text.splitlines()[0])
        body = text.split("\n", 2)[2]
        self.assertEqual(body, (
            "# Generated from %(d)s/alpha.yaml\n"
            "30 12 * * * %(u)s /usr/bin/run-job --job alpha --scheduled '30 12 * * *'\n"
            "# Skipping unscheduled job middle\n"
            "# Skipping disabled job off\n"
            "# Generated from %(d)s/zeta.yaml\n"
            "*/5 * * * * %(u)s /usr/bin/run-job --job zeta --scheduled '*/5 * * * *'\n") % {"d": box.job_directory, "u": user})
        status = os.stat(box.crontab)
        self.assertEqual(stat.S_IMODE(status.st_mode), 0o644)
        if IS_ROOT:
            self.assertEqual(status.st_uid, 0)
        self.assertEqual(os.listdir(box.cron_directory), ["process-control"])
        self.assertIn("wrote", out)

    def test_unchanged_jobs_leave_the_file_untouched(self):
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        self.assertEqual(box.run()[0], 0)
        before = os.stat(box.crontab)
        first = box.read_crontab()
        code, out, err = box.run()
        self.assertEqual(code, 0, err)
        self.assertIn("up to date", out)
        after = os.stat(box.crontab)
        self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))
        self.assertEqual(first, box.read_crontab())
        box.job("a", "command: /bin/true\nschedule: '0 2 * * *'\n")
        self.assertEqual(box.run()[0], 0)
        self.assertIn("0 2 * * *", box.read_crontab())

    def test_wrong_mode_is_rewritten(self):
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        box.run()
        os.chmod(box.crontab, 0o664)
        code, out, _ = box.run()
        self.assertIn("wrote", out)
        self.assertEqual(stat.S_IMODE(os.stat(box.crontab).st_mode), 0o644)

    def test_symlink_target_is_replaced_not_followed(self):
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        elsewhere = os.path.join(box.root, "elsewhere")
        box.write(elsewhere, "keep me\n")
        os.symlink(elsewhere, box.crontab)
        self.assertEqual(box.run()[0], 0)
        self.assertFalse(os.path.islink(box.crontab))
        with open(elsewhere) as handle:
            self.assertEqual(handle.read(), "keep me\n")

    def test_invalid_job_is_skipped_reported_and_the_rest_written(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 1 * * *'\n")
        box.job("bad", "command: /bin/true\nschedule: '5/10 * * * *'\n")
        box.job("broken", "command: /bin/true\n\tschedule: x\n")
        code, out, err = box.run()
        self.assertEqual(code, 78)
        text = box.read_crontab()
        self.assertIn("/usr/bin/run-job --job good --scheduled '0 1 * * *'\n", text)
        self.assertEqual(len(job_lines(text)), 1)
        self.assertRegex(text, r"# Skipping invalid job bad: .*bad\.yaml:2:\d+: ")
        self.assertRegex(text, r"# Skipping invalid job broken: .*broken\.yaml:2:1: ")
        self.assertRegex(err, r"bad\.yaml:2:\d+: .*job bad is left off the schedule")
        self.assertRegex(err, r"broken\.yaml:2:1: ")

    def test_refused_job_file_is_skipped_and_the_rest_written(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 1 * * *'\n")
        box.job("writable", "command: /bin/true\nschedule: '0 2 * * *'\n")
        os.chmod(os.path.join(box.job_directory, "writable.yaml"), 0o664)
        code, out, err = box.run()
        self.assertEqual(code, 78, err)
        text = box.read_crontab()
        self.assertEqual(job_lines(text), ["0 1 * * * %s /usr/bin/run-job --job good --scheduled "
                                           "'0 1 * * *'" % service_user()])
        self.assertIn("# Skipping invalid job writable: ", text)
        self.assertIn("writable.yaml", err)

    def test_files_that_are_not_job_names_are_listed_and_reported(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 1 * * *'\n")
        for name in ("nightly.backup", "my job"):
            box.job(name, "command: /bin/true\nschedule: '0 2 * * *'\n")
        code, out, err = box.run()
        self.assertEqual(code, 78, err)
        text = box.read_crontab()
        self.assertEqual(job_lines(text), ["0 1 * * * %s /usr/bin/run-job --job good --scheduled "
                                           "'0 1 * * *'" % service_user()])
        self.assertIn("# Skipping invalid job file nightly.backup.yaml: ", text)
        self.assertIn("# Skipping invalid job file my job.yaml: ", text)
        self.assertIn("nightly.backup.yaml", err)
        self.assertEqual(box.run("--check")[0], 78)

    def test_an_unsafe_job_directory_leaves_the_crontab_alone(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 1 * * *'\n")
        self.assertEqual(box.run()[0], 0)
        before = box.read_crontab()
        os.chmod(box.job_directory, 0o777)
        code, out, err = box.run()
        self.assertEqual(code, 77, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertEqual(box.read_crontab(), before)

    def test_errors_in_global_values_name_line_and_column(self):
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        box.settings["runner_path"] = "'/usr/bin/run job'"
        box.write_config("mailto: ''\n")
        code, _, err = box.run()
        self.assertEqual(code, 78)
        self.assertRegex(err, r"process-control\.yaml:6:1: runner_path ")
        box.settings["runner_path"] = "/usr/bin/run-job"
        box.write_config("cron_environment:\n  BAD NAME: x\n")
        code, _, err = box.run()
        self.assertEqual(code, 78)
        self.assertRegex(err, r"process-control\.yaml:9:3: cron_environment: 'BAD NAME'")

    def test_an_empty_mailto_sends_no_mail(self):
        box = self.sandbox
        box.write_config("mailto: ''\n")
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        code, _, err = box.run()
        self.assertEqual(code, 0, err)
        self.assertIn('MAILTO=""\n', box.read_crontab())

    def test_a_template_cron_would_reject_is_refused(self):
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        for template in ('"{schedule} {user} {command}\\nFOO=\\n"',
                         '"{schedule} {user} {command}\\nFOO=\\"x\\n"'):
            box.write_config("cron_template: %s\n" % template)
            code, _, err = box.run()
            self.assertEqual(code, 78, (template, err))
            self.assertFalse(os.path.exists(box.crontab))

    def test_check_validates_without_writing(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 0 */2 * 5'\n")
        code, out, err = box.run("--check")
        self.assertEqual(code, 0, err)
        self.assertFalse(os.path.exists(box.crontab))
        self.assertIn("warning", err)
        self.assertIn("good.yaml", err)
        box.job("bad", "command: /bin/true\nschedule: '* * * *'\n")
        self.assertEqual(box.run("--check")[0], 78)
        self.assertFalse(os.path.exists(box.crontab))

    def test_stdout_and_console_print_instead_of_writing(self):
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        code, out, err = box.run("--stdout")
        self.assertEqual(code, 0, err)
        self.assertIn("0 1 * * * %s /usr/bin/run-job --job a --scheduled '0 1 * * *'\n"
                      % service_user(), out)
        self.assertFalse(os.path.exists(box.crontab))
        box.settings["output_crontab"] = "console"
        box.write_config()
        code, out, err = box.run()
        self.assertEqual(code, 0, err)
        self.assertIn("--job a --scheduled '0 1 * * *'\n", out)
        self.assertFalse(os.path.exists(box.crontab))

    def test_usage_errors_are_one_line(self):
        for arguments in (["extra"], ["--stdout", "--check"], ["--bogus"], ["-c"]):
            code, _, err = self.sandbox.run(*arguments)
            self.assertEqual(code, 64, arguments)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn("see cron-generate --help", err)
        # Options exist: an argument is not "no arguments", an unknown option is unknown.
        self.assertEqual(self.sandbox.run("extra")[2],
                         "cron-generate: unexpected argument 'extra': cron-generate schedules "
                         "every job and takes only the options -c FILE, --stdout and --check; "
                         "see cron-generate --help\n")
        self.assertEqual(self.sandbox.run("--bogus")[2],
                         "cron-generate: unknown option --bogus; see cron-generate --help\n")
        code, out, _ = self.sandbox.run("--help")
        self.assertEqual(code, 0)
        self.assertIn("usage: cron-generate", out)

    def test_c_FILE_as_run_job_reads_it(self):
        self.sandbox.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        for arguments in (["-c", self.sandbox.config], ["-c" + self.sandbox.config]):
            process = subprocess.run([sys.executable, CRON_GENERATE, "--stdout"] + arguments,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, universal_newlines=True)
            self.assertEqual((process.returncode, process.stderr), (0, ""), arguments)
            self.assertIn("--job a", process.stdout)

    def test_template_mailto_and_environment(self):
        box = self.sandbox
        box.settings["mailto"] = "ops@example.org,dev@example.org"
        box.write_config("cron_template: \"{schedule} {user} {command} # from {source}\\n\"\n"
                         "cron_environment:\n  PATH: /usr/local/bin:/usr/bin:/bin\n"
                         "  GREETING: '  padded  '\n")
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        code, out, err = box.run()
        self.assertEqual(code, 0, err)
        lines = box.read_crontab().splitlines()
        self.assertIn("MAILTO=ops@example.org,dev@example.org", lines)
        self.assertIn("PATH=/usr/local/bin:/usr/bin:/bin", lines)
        self.assertIn('GREETING="  padded  "', lines)
        self.assertIn("0 1 * * * %s /usr/bin/run-job --job a --scheduled '0 1 * * *' # from %s/a.yaml"
                      % (service_user(), box.job_directory), lines)

    def test_unknown_template_placeholder_is_a_config_error(self):
        box = self.sandbox
        box.write_config("cron_template: '{schedule} {user} {command} {host}'\n")
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        code, _, err = box.run()
        self.assertEqual(code, 78)
        self.assertIn("{host}", err)
        self.assertFalse(os.path.exists(box.crontab))

    def test_bad_global_values_are_refused(self):
        cases = [
            ("runner_path", "'/usr/bin/run job'", 78),
            ("runner_path", "'/usr/bin/run%job'", 78),
            ("runner_path", "'/usr/bin/run-job;rm'", 78),
            # Not root: our own config is not trusted for a user that does not exist.
            ("user", "no-such-user-pc", 78 if IS_ROOT else 77),
            ("output_crontab", "%s/cron.d/process-control.cron" % self.sandbox.root, 78),
            ("mailto", '"ops@example.org\\nx"', 78),
            ("mailto", "'a b'", 78),
        ]
        box = self.sandbox
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        original = dict(box.settings)
        for key, value, expected in cases:
            box.settings = dict(original)
            box.settings[key] = value
            box.write_config()
            code, _, err = box.run()
            self.assertEqual(code, expected, (key, value, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertFalse(os.path.exists(box.crontab), (key, value))

    def test_root_user_only_when_explicit(self):
        if not IS_ROOT:
            self.skipTest("the service user is root only in a root's test run")
        box = self.sandbox
        box.settings["user"] = "root"
        box.write_config()
        box.job("a", "command: /bin/true\nschedule: '0 1 * * *'\n")
        code, _, err = box.run()
        self.assertEqual(code, 0, err)
        self.assertIn("0 1 * * * root /usr/bin/run-job --job a --scheduled '0 1 * * *'\n",
                      box.read_crontab())

    def test_injection_never_adds_a_crontab_line(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 1 * * *'\n")
        attempts = {
            "newline": 'schedule: "0 1 * * *\\n* * * * * root /bin/sh"\n',
            "carriage": 'schedule: "0 1 * * *\\r* * * * * root /bin/sh"\n',
            "percent": "schedule: '0 1 * * * %x'\n",
            "equals": "schedule: 'A=* * * * *'\n",
            "seven": "schedule: '* * * * * root /bin/sh'\n",
        }
        for name, line in attempts.items():
            box.job(name, "command: /bin/true\n" + line)
        # A file whose name is not a job name never reaches the crontab.
        box.write(os.path.join(box.job_directory, "x\n* * * * * root sh.yaml"), "command: x\n")
        code, out, err = box.run()
        self.assertEqual(code, 78, err)
        text = box.read_crontab()
        self.assertEqual(job_lines(text), ["0 1 * * * %s /usr/bin/run-job --job good --scheduled "
                                           "'0 1 * * *'" % service_user()])
        for name in attempts:
            self.assertIn("# Skipping invalid job %s: " % name, text)

    def test_injection_through_user_or_template_is_refused(self):
        box = self.sandbox
        box.job("good", "command: /bin/true\nschedule: '0 1 * * *'\n")
        box.settings["user"] = '"nobody\\n* * * * * root sh"'
        box.write_config()
        code, _, err = box.run()
        self.assertIn(code, (77, 78), err)
        self.assertFalse(os.path.exists(box.crontab))
        box.settings["user"] = service_user()
        box.write_config('cron_template: "{schedule} {user} {command}\\n* * * * * root /bin/sh\\n"\n')
        code, _, err = box.run()
        self.assertEqual(code, 78, err)
        self.assertFalse(os.path.exists(box.crontab))
        box.write_config('cron_template: "{schedule} {user} {command} 100%\\n"\n')
        code, _, err = box.run()
        self.assertEqual(code, 78, err)
        self.assertFalse(os.path.exists(box.crontab))
        # A second entry as the service user itself, which cron would read as valid:
        # refused where the template is written, by both scripts.
        box.write_config('cron_template: "{schedule} {user} {command}\\n* * * * * %s /bin/sh\\n"\n'
                         % service_user())
        code, _, err = box.run()
        self.assertEqual(code, 78, err)
        self.assertIn("cron_template: 2 lines besides comments", err)
        self.assertFalse(os.path.exists(box.crontab))
        check = subprocess.run([sys.executable, os.path.join(HERE, "run_job.py"), "--config",
                                box.config, "--check"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(check.returncode, 78, check.stderr)
        self.assertIn(b"cron_template: 2 lines besides comments", check.stderr)


class SeedExampleTests(unittest.TestCase):
    """The seed README's example, from job files where the seed had them."""

    directory = "/var/lib/process-control/barium"

    def setUp(self):
        if not IS_ROOT:
            self.skipTest("writes /var/lib/process-control/barium: needs root")
        if os.path.exists(self.directory):
            self.skipTest("%s exists; not touching it" % self.directory)
        created = "/var/lib/process-control"
        if os.path.exists(created):
            created = self.directory
        os.makedirs(self.directory, 0o755)
        self.addCleanup(shutil.rmtree, created)
        self.sandbox = Sandbox(job_directory=self.directory, runner_path="/usr/bin/run-job")
        self.addCleanup(self.sandbox.remove)

    def test_seed_readme_lines_from_job_files(self):
        jobs = {
            "ingenico_wr1_audit_parse": "schedule: '0 3 * * *'\ndisabled: true\n",
            "paypal_audit": "schedule: '35 19 * * *'\n",
            "paypal_smashpig_job_runner": "schedule: 2-59/5 * * * *\n",
        }
        for name, text in jobs.items():
            self.sandbox.write(os.path.join(self.directory, name + ".yaml"),
                               "name: %s\ncommand: /usr/bin/env true\n%s" % (name, text))
        code, out, err = self.sandbox.run("--stdout")
        self.assertEqual(code, 0, err)
        # The seed's service user was jenkins; ours is whatever exists here.
        self.assertEqual(out.split("\n", 2)[2], (
            "# Skipping disabled job ingenico_wr1_audit_parse\n"
            "# Generated from /var/lib/process-control/barium/paypal_audit.yaml\n"
            "35 19 * * * jenkins /usr/bin/run-job --job paypal_audit --scheduled '35 19 * * *'\n"
            "# Generated from /var/lib/process-control/barium/paypal_smashpig_job_runner.yaml\n"
            "2-59/5 * * * * jenkins /usr/bin/run-job --job paypal_smashpig_job_runner"
            " --scheduled '2-59/5 * * * *'\n"
        ).replace(" jenkins ", " %s " % service_user()))


class LoadRunJobTests(unittest.TestCase):
    def test_installed_layout_finds_run_job_beside_it(self):
        directory = tempfile.mkdtemp(prefix="pc-install-")
        self.addCleanup(shutil.rmtree, directory)
        subprocess.check_call(["make", "-s", "-C", HERE, "install", "DESTDIR=" + directory],
                              stdout=subprocess.DEVNULL)
        program = os.path.join(directory, "usr", "bin", "cron-generate")
        output = subprocess.check_output([sys.executable, program, "--version"])
        self.assertIn(run_job.VERSION, output.decode())
        self.assertFalse(os.path.exists(os.path.join(directory, "usr", "bin", "__pycache__")))


if __name__ == "__main__":
    unittest.main()
