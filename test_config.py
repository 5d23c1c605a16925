"""Tests for run-job's configuration, privileges, reporting and command line.

Real files in temporary directories; the command line runs as real
processes ([python, run_job.py, ...]). They pass as root and as an ordinary
user; the tests that switch users run only as root.
"""

import json
import os
import pwd
import re
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

RUN_JOB = os.path.join(HERE, "run_job.py")
CRON_GENERATE = os.path.join(HERE, "cron_generate.py")
IS_ROOT = os.geteuid() == 0
CURRENT_USER = pwd.getpwuid(os.geteuid()).pw_name
# Debian's interpreter: other users cannot read the pyenv build under /root.
SYSTEM_PYTHON = "/usr/bin/python3"
UNPRIVILEGED = "nobody"


def root_only(test):
    return unittest.skipUnless(IS_ROOT, "needs root")(test)


def write_file(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(path, mode)


def read_history(config, name):
    """Every record in job NAME's history, oldest first (rotated file
    included); a line cut by a full disk is passed over."""
    records = []
    path = run_job.history_path(config, name)
    for each in (path + ".1", path):
        if not os.path.isfile(each):
            continue
        with open(each, "rb") as history:
            for line in history:
                try:
                    records.append(json.loads(line.decode("utf-8", "surrogateescape")))
                except ValueError:
                    pass
    return records


def as_nobody(sandbox):
    """Popen options that run the command line as nobody (as root only)."""
    account = pwd.getpwnam(UNPRIVILEGED)

    def become_nobody():
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    return dict(python=SYSTEM_PYTHON, script=sandbox.copy_script(), preexec_fn=become_nobody)


class Sandbox(object):
    """A temporary job directory and global config with safe modes."""

    def __init__(self, user=CURRENT_USER):
        self.root = tempfile.mkdtemp(prefix="run-job-config-")
        os.chmod(self.root, 0o755)
        self.jobs = os.path.join(self.root, "jobs")
        os.mkdir(self.jobs)
        os.chmod(self.jobs, 0o755)
        self.config = os.path.join(self.root, "process-control.yaml")
        self.write_config(user=user)

    def make_directories(self):
        for name in ("log", "run", "state"):
            os.mkdir(self.path(name))

    def copy_script(self):
        """run_job.py where any user can read it, for processes run as nobody."""
        script = self.path("run_job.py")
        shutil.copy(RUN_JOB, script)
        os.chmod(script, 0o644)
        return script

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_config(self, user=CURRENT_USER, extra="", mode=0o644):
        # The reports compare the installed crontab with the job files: none
        # here (console) unless EXTRA names one, never the machine's own.
        if "output_crontab:" not in extra:
            extra += "output_crontab: console\n"
        write_file(self.config,
                   "user: %s\n"
                   "job_directory: jobs\n"
                   "output_directory: log\n"
                   "run_directory: run\n"
                   "state_directory: state\n%s" % (user, extra), mode)

    def write_config_text(self, text, mode=0o644):
        write_file(self.config, text, mode)

    def write_job(self, name, text, mode=0o644):
        path = os.path.join(self.jobs, name + ".yaml")
        write_file(path, text, mode)
        return path

    def load(self):
        return run_job.load_global_config(self.config, {})

    def run(self, *args, **options):
        """Run run_job.py with --config; return (exit code, stdout, stderr)."""
        python = options.pop("python", sys.executable)
        script = options.pop("script", RUN_JOB)
        environ = dict(os.environ)
        environ.pop("PROCESS_CONTROL_CONFIG", None)
        environ.update(options.pop("environ", {}))
        argv = [python, script]
        if options.pop("with_config", True):
            argv += ["--config", self.config]
        process = subprocess.Popen(argv + list(args), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=environ, cwd=self.root, **options)
        out, err = process.communicate(timeout=30)
        return process.returncode, out.decode(), err.decode()

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


class SandboxTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = Sandbox()
        self.addCleanup(self.sandbox.remove)

    def wait_until_running(self, name):
        """Until the job's command runs: the lock says pgid 0 for the instant
        before (a killpg(0) then kills this test's own process group)."""
        config = self.sandbox.load()
        deadline = time.monotonic() + 10
        while not (run_job.running_info(config, name) or {}).get("pgid"):
            self.assertLess(time.monotonic(), deadline, "job %s never started" % name)
            time.sleep(0.02)

    def start_in_background(self, name):
        """run-job NAME as a child process, stopped at the end of the test."""
        process = subprocess.Popen([sys.executable, RUN_JOB, "--config", self.sandbox.config, name],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=self.sandbox.root)

        def stop():
            if process.poll() is None:
                process.terminate()
                process.wait()
            process.stdout.close()
            process.stderr.close()
        self.addCleanup(stop)
        return process

    def assert_one_error_line(self, err, *fragments):
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("run-job: "), err)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])


# ---- global configuration ----------------------------------------------------------
class GlobalConfigTests(SandboxTest):
    def test_built_in_defaults_only_when_the_default_file_is_missing(self):
        if os.path.exists(run_job.DEFAULT_CONFIG_PATH):
            self.skipTest("this machine has %s" % run_job.DEFAULT_CONFIG_PATH)
        config = run_job.load_global_config(None, {})
        self.assertIsNone(config.source)
        self.assertEqual(config.user, "process-control")
        self.assertEqual(config.job_directory, "/var/lib/process-control")
        self.assertEqual(config.output_directory, "/var/log/process-control")
        self.assertEqual(config.run_directory, "/var/lib/process-control-state/locks")
        self.assertEqual(config.state_directory, "/var/lib/process-control-state")
        self.assertEqual(config.runner_path, "/usr/bin/run-job")  # no run-job beside run_job.py

    def test_runner_path_defaults_to_the_run_job_beside_the_script(self):
        # As installed: run-job and cron-generate side by side, the latter
        # loading the former; cron then runs that run-job, not /usr/bin's.
        bindir = self.sandbox.path("bin")
        os.mkdir(bindir)
        shutil.copy(RUN_JOB, os.path.join(bindir, "run-job"))
        probe = ("import importlib.machinery, importlib.util, sys; "
                 "loader = importlib.machinery.SourceFileLoader('run_job', sys.argv[1]); "
                 "module = importlib.util.module_from_spec(importlib.util.spec_from_loader("
                 "'run_job', loader)); loader.exec_module(module); "
                 "print(module.load_global_config(sys.argv[2], {}).runner_path)")
        out = subprocess.check_output([sys.executable, "-c", probe, os.path.join(bindir, "run-job"),
                                       self.sandbox.config], stdin=subprocess.DEVNULL)
        self.assertEqual(out.decode(), os.path.join(bindir, "run-job") + "\n")
        self.sandbox.write_config(extra="runner_path: /opt/run-job\n")
        out = subprocess.check_output([sys.executable, "-c", probe, os.path.join(bindir, "run-job"),
                                       self.sandbox.config], stdin=subprocess.DEVNULL)
        self.assertEqual(out.decode(), "/opt/run-job\n")

    def test_a_config_of_only_comments_means_the_defaults(self):
        self.sandbox.write_config_text("# user: someone\n\n   # job_directory: /x\n")
        config = run_job.read_global_config(self.sandbox.config, {})
        self.assertEqual((config.source, config.user, config.job_directory),
                         (self.sandbox.config, "process-control", "/var/lib/process-control"))
        self.sandbox.write_config_text("- user\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            self.sandbox.load()
        self.assertTrue(str(caught.exception).startswith(self.sandbox.config + ":1:1: "))

    def test_environment_variable_names_the_config(self):
        config = run_job.load_global_config(None, {"PROCESS_CONTROL_CONFIG": self.sandbox.config})
        self.assertEqual(config.source, self.sandbox.config)
        config = run_job.load_global_config(self.sandbox.config, {"PROCESS_CONTROL_CONFIG": "/nowhere"})
        self.assertEqual(config.source, self.sandbox.config)

    def test_a_named_missing_config_is_an_error(self):
        for config_path, environ in (("/nowhere.yaml", {}), (None, {"PROCESS_CONTROL_CONFIG": "/nowhere.yaml"})):
            with self.assertRaises(run_job.ConfigError) as caught:
                run_job.load_global_config(config_path, environ)
            self.assertIn("/nowhere.yaml", str(caught.exception))
        code, out, err = self.sandbox.run("--status", environ={"PROCESS_CONTROL_CONFIG": "/nowhere.yaml"},
                                          with_config=False)
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "/nowhere.yaml")

    def test_relative_paths_resolve_against_the_config_directory(self):
        self.sandbox.write_config(extra="runner_path: bin/run-job\noutput_crontab: cron.d/pc\n")
        config = self.sandbox.load()
        self.assertEqual(config.job_directory, self.sandbox.path("jobs"))
        self.assertEqual(config.output_directory, self.sandbox.path("log"))
        self.assertEqual(config.run_directory, self.sandbox.path("run"))
        self.assertEqual(config.state_directory, self.sandbox.path("state"))
        self.assertEqual(config.runner_path, self.sandbox.path("bin", "run-job"))
        self.assertEqual(config.output_crontab, self.sandbox.path("cron.d", "pc"))

    def test_all_compatible_keys_load(self):
        self.sandbox.write_config(extra=(
            "cron_template: |\n  {schedule} {user} {command}\n"
            "output_crontab: console\n"
            "mailto: ops@example.org\n"
            "cron_environment:\n  PATH: /usr/bin:/bin\n  SHLVL: 1\n"
            "default_job_config:\n  timeout: 30\n  failmail:\n    to_address: a@example.org\n"
            "logging:\n  version: 1\n  disable_existing_loggers: false\n"))
        config = self.sandbox.load()
        self.assertEqual(config.output_crontab, "console")
        self.assertEqual(config.mailto, "ops@example.org")
        self.assertEqual(config.cron_environment, {"PATH": "/usr/bin:/bin", "SHLVL": "1"})
        self.assertEqual(config.cron_template, "{schedule} {user} {command}\n")
        self.assertEqual(config.logging, {"version": 1, "disable_existing_loggers": False})
        self.assertEqual(config.default_job_config["timeout"], 30)

    def test_unknown_key_suggests_the_closest(self):
        self.sandbox.write_config(extra="job_directry: /x\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            self.sandbox.load()
        self.assertEqual(str(caught.exception), "%s:6:1: unknown key `job_directry`; did you mean "
                         "`job_directory`?" % self.sandbox.config)

    def test_unknown_default_job_key_points_into_the_global_config(self):
        self.sandbox.write_config(extra="default_job_config:\n  timout: 30\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            self.sandbox.load()
        self.assertEqual(str(caught.exception), "%s:7:3: unknown key `timout`; did you mean "
                         "`timeout`?" % self.sandbox.config)

    def test_wrong_global_types_name_file_line_and_key(self):
        for extra, key in (("cron_environment: [1]\n", "cron_environment"),
                           ("logging: yes please\n", "logging"),
                           ("runner_path: 3\n", "runner_path")):
            self.sandbox.write_config(extra=extra)
            with self.assertRaises(run_job.ConfigError) as caught:
                self.sandbox.load()
            self.assertTrue(str(caught.exception).startswith("%s:6:1: `%s` must be" % (self.sandbox.config, key)),
                            str(caught.exception))

    def test_state_directory_never_inside_the_job_directory(self):
        for state in ("jobs", "jobs/state", "./jobs/../jobs/x"):
            with open(self.sandbox.config) as stream:
                text = stream.read().replace("state_directory: state", "state_directory: " + state)
            write_file(self.sandbox.config, text)
            with self.assertRaises(run_job.ConfigError) as caught:
                self.sandbox.load()
            self.assertIn("inside the job directory", str(caught.exception))
            self.assertIn(":5:1:", str(caught.exception))

    def test_config_writable_by_group_is_refused(self):
        os.chmod(self.sandbox.config, 0o664)
        with self.assertRaises(run_job.RefusedError) as caught:
            self.sandbox.load()
        self.assertIn("writable by group or others", str(caught.exception))

    def test_named_config_must_be_readable_by_everyone(self):
        os.chmod(self.sandbox.config, 0o600)
        with self.assertRaises(run_job.RefusedError) as caught:
            self.sandbox.load()
        self.assertIn("readable by everyone", str(caught.exception))
        os.chmod(self.sandbox.config, 0o640)
        with self.assertRaises(run_job.RefusedError):
            run_job.load_global_config(None, {"PROCESS_CONTROL_CONFIG": self.sandbox.config})

    def test_named_config_in_a_private_directory_is_refused(self):
        # 0644 under a 0700 directory is as private as 0600, directly or through a link.
        private = self.sandbox.path("private")
        os.mkdir(private, 0o700)
        hidden = os.path.join(private, "config.yaml")
        os.rename(self.sandbox.config, hidden)
        link = self.sandbox.path("link.yaml")
        os.symlink(hidden, link)
        for named in (hidden, link):
            with self.subTest(named=named):
                with self.assertRaises(run_job.RefusedError) as caught:
                    run_job.load_global_config(named, {})
                self.assertIn("readable by everyone; chmod o+x %s" % private,
                              str(caught.exception))
        os.chmod(private, 0o711)
        self.assertEqual(run_job.load_global_config(link, {}).source, link)

    @root_only
    def test_config_owned_by_another_user_is_refused(self):
        os.chown(self.sandbox.config, pwd.getpwnam("daemon").pw_uid, 0)
        self.sandbox.write_config(user=UNPRIVILEGED)
        with self.assertRaises(run_job.RefusedError) as caught:
            self.sandbox.load()
        self.assertIn("owned by root or the service user nobody", str(caught.exception))
        os.chown(self.sandbox.config, pwd.getpwnam(UNPRIVILEGED).pw_uid, 0)
        self.assertEqual(self.sandbox.load().user, UNPRIVILEGED)


# ---- job files -----------------------------------------------------------------------
class JobTests(SandboxTest):
    def load(self, text, name="job"):
        self.sandbox.write_job(name, text)
        return run_job.load_job(self.sandbox.load(), name)

    def load_error(self, text, name="job", error=run_job.ConfigError):
        with self.assertRaises(error) as caught:
            self.load(text, name)
        return str(caught.exception)

    def test_defaults(self):
        job = self.load("command: /bin/true\n")
        self.assertEqual(job.name, "job")
        self.assertEqual(job.verbose_name, "job")
        self.assertEqual(job.commands, [["/bin/true"]])
        self.assertIsNone(job.slow_start_commands)
        self.assertEqual(job.timeout, 600.0)
        self.assertEqual(job.kill_grace, 10.0)  # the original's default
        self.assertEqual(run_job.Job("other", commands=[["/bin/true"]]).kill_grace, 10.0)
        self.assertEqual(job.success_exit_codes, frozenset([0]))
        self.assertEqual((job.disabled, job.allow_overtime, job.fail_on_stderr), (False, False, False))
        self.assertEqual((tuple(job.tags), job.environment, job.schedule), ((), {}, None))
        self.assertEqual(job.source, os.path.join(self.sandbox.jobs, "job.yaml"))

    def test_every_key(self):
        job = self.load(
            "name: Nightly report\n"
            "description: Builds the report.\n"
            "command:\n  - /bin/echo 'a b' c\n  - /bin/true\n"
            "slow_start_command: /bin/echo slow\n"
            "disabled: true\n"
            "timeout: 0\n"
            "kill_grace: 3\n"
            "environment:\n  A: 1\n  B: true\n  C:\n  D: text\n  E: 1.5\n"
            "tags: [db, queue]\n"
            "allow_overtime: true\n"
            "fail_on_stderr: true\n"
            "success_exit_codes: [0, 3]\n"
            "failmail:\n  to_address: a@example.org\n"
            "failure_threshold_for_mail: 2\n")
        self.assertEqual(job.verbose_name, "Nightly report")
        self.assertEqual(job.description, "Builds the report.")
        self.assertEqual(job.commands, [["/bin/echo", "a b", "c"], ["/bin/true"]])
        self.assertEqual(job.slow_start_commands, [["/bin/echo", "slow"]])
        self.assertEqual((job.disabled, job.timeout, job.kill_grace), (True, 0.0, 3.0))
        self.assertEqual(job.environment, {"A": "1", "B": "true", "C": "", "D": "text", "E": "1.5"})
        self.assertEqual(job.tags, ["db", "queue"])
        self.assertEqual((job.allow_overtime, job.fail_on_stderr), (True, True))
        self.assertEqual(job.success_exit_codes, frozenset([0, 3]))
        self.assertEqual(job.failmail, {"to_address": "a@example.org"})
        self.assertEqual(job.failure_threshold_for_mail, 2)
    def test_timeout_units(self):
        for text, seconds in (("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0),
                              ("45", 45.0), ("0", 0.0), ("2.5", 2.5)):
            self.assertEqual(self.load("command: x\ntimeout: %s\n" % text).timeout, seconds, text)
        message = self.load_error("command: x\ntimeout: 10 minutes\n")
        self.assertTrue(message.startswith(self.sandbox.jobs + "/job.yaml:2:1: `timeout`"), message)
        message = self.load_error("command: x\ntimeout: -5\n")
        self.assertIn(":2:1: `timeout`: -5 is negative", message)

    def test_tag_as_string_and_not_both(self):
        self.assertEqual(self.load("command: x\ntag: nightly\n").tags, ["nightly"])
        self.assertEqual(self.load("command: x\ntags: nightly\n").tags, ["nightly"])
        message = self.load_error("command: x\ntag: a\ntags: [b]\n")
        self.assertIn(":3:1: use `tag` or `tags`, not both", message)
        self.sandbox.write_config(extra="default_job_config:\n  tag: a\n  tags: [b]\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            self.sandbox.load()
        self.assertEqual(str(caught.exception), self.sandbox.config + ":8:3: use `tag` or `tags`, not both")

    def test_default_job_config_applies_first(self):
        self.sandbox.write_config(extra="default_job_config:\n  timeout: 30\n  tags: [everyone]\n"
                                        "  fail_on_stderr: true\n")
        job = self.load("command: x\ntimeout: 60\ntag: mine\n")
        self.assertEqual((job.timeout, job.tags, job.fail_on_stderr), (60.0, ["mine"], True))
        self.assertEqual(self.load("command: x\n").tags, ["everyone"])

    def test_a_bad_default_is_reported_in_the_global_config(self):
        self.sandbox.write_config(extra="default_job_config:\n  kill_grace: [1]\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            self.sandbox.load()
        self.assertTrue(str(caught.exception).startswith(self.sandbox.config + ":7:3: `kill_grace` must be"))

    def test_wrong_types_name_file_line_and_key(self):
        prefix = os.path.join(self.sandbox.jobs, "job.yaml")
        cases = (
            ("command: x\ndisabled: 1\n", ":2:1: `disabled` must be true or false, not a number"),
            ("command: x\nname: [a]\n", ":2:1: `name` must be a string, not a list"),
            ("command: x\nenvironment: [A]\n", ":2:1: `environment` must be a mapping"),
            ("command: x\nenvironment:\n  A: [1]\n", ":3:3: `environment: A` must be a string or a number"),
            ("command:\n  - /bin/true\n  - 3\n", ":3:5: `command` must be a list of command lines"),
            ("command: \"/bin/echo 'unclosed\"\n", ":1:1: `command`: no closing quotation"),
            ("command: ''\n", ":1:1: `command` is an empty command line"),
            ("command: x\nsuccess_exit_codes: [0, 256]\n", ":2:25: `success_exit_codes` must list exit codes"),
            ("command: x\ntags: [a, 2]\n", ":2:11: `tags` must be a string or a list of strings, not a number"),
            ("command: x\nfailure_threshold_for_mail: -1\n", ":2:1: `failure_threshold_for_mail` must be"),
            ("command: x\ntimeout: [1]\n", ":2:1: `timeout` must be seconds or a duration"),
            ("command: \"/bin/echo a\\0b\"\n", ":1:1: `command` holds a NUL character"),
            ("command: x\nslow_start_command: [x, \"y\\0\"]\n",
             ":2:25: `slow_start_command` holds a NUL character"),
            ("command: x\nenvironment:\n  A: \"a\\0\"\n", ":3:3: `environment: A` holds a NUL character"),
        )
        for text, expected in cases:
            with self.subTest(text=text):
                self.assertEqual(self.load_error(text)[:len(prefix + expected)], prefix + expected)

    def test_unknown_job_key_suggests_the_closest(self):
        message = self.load_error("command: x\nslow_start: y\n")
        self.assertEqual(message, "%s/job.yaml:2:1: unknown key `slow_start`; did you mean "
                         "`slow_start_command`?" % self.sandbox.jobs)

    def test_missing_command(self):
        message = self.load_error("name: Nothing to do\n")
        self.assertEqual(message, "%s/job.yaml: missing `command`: the command line the job runs"
                         % self.sandbox.jobs)

    def test_original_example_job_loads(self):
        job = self.load(
            "name: Take This Job and Shove It\n"
            "description: >\n    Create TPS report in the basement.\n"
            "command: /usr/local/bin/timecard --start 9:00 --end 5:30\n"
            "disabled: true\n"
            "timeout: 30\n"
            "environment:\n    PYTHONPATH: /usr/share/invisible/pie\n"
            "failmail:\n    from_address: \"Fail Mail <fr-tech@example.org>\"\n"
            "    to_address: \"fr-tech@example.org\"\n"
            "failure_threshold_for_mail: 3\n")
        self.assertEqual(job.commands, [["/usr/local/bin/timecard", "--start", "9:00", "--end", "5:30"]])
        self.assertEqual(job.timeout, 30.0)  # seconds now: the original counted minutes
    def test_schedule(self):
        job = self.load("command: x\nschedule: '*/5 * * * *'\n")
        self.assertEqual(job.schedule_expression, "*/5 * * * *")
        self.assertIsInstance(job.schedule, run_job.Schedule)
        message = self.load_error("command: x\nschedule: '* * *'\n")
        self.assertTrue(message.startswith(self.sandbox.jobs + "/job.yaml:2:1: `schedule`: "), message)

    def test_job_names(self):
        for name in ("../job", "a/b", "", ".hidden", "x y", "job.yaml", "-"):
            if name == "-":
                run_job.check_job_name(name)  # letters, digits, _ and - only
                continue
            with self.assertRaises(run_job.RefusedError):
                run_job.check_job_name(name)

    def test_scan_job_directory(self):
        for name in ("b", "a_1", "C-2"):
            self.sandbox.write_job(name, "command: x\n")
        write_file(os.path.join(self.sandbox.jobs, "README"), "not a job")
        write_file(os.path.join(self.sandbox.jobs, "bad name.yaml"), "command: x\n")
        config = self.sandbox.load()
        names, problems = run_job.scan_job_directory(config)
        self.assertEqual(names, ["C-2", "a_1", "b"])
        self.assertEqual(len(problems), 1)
        self.assertIn("bad name.yaml", str(problems[0]))

    def test_symlink_inside_the_job_directory_is_followed(self):
        self.sandbox.write_job("real", "command: /bin/true\n")
        os.symlink("real.yaml", os.path.join(self.sandbox.jobs, "alias.yaml"))
        self.assertEqual(run_job.load_job(self.sandbox.load(), "alias").commands, [["/bin/true"]])

    def test_job_directory_writable_by_others_is_refused(self):
        self.sandbox.write_job("job", "command: x\n")
        os.chmod(self.sandbox.jobs, 0o777)
        with self.assertRaises(run_job.RefusedError) as caught:
            run_job.load_job(self.sandbox.load(), "job")
        self.assertIn("the job directory is writable by group or others", str(caught.exception))
class EncodingTests(SandboxTest):
    """A file that is not UTF-8 is refused at the first bad byte, as a line,
    a column and the byte offset."""

    def write_bytes(self, path, data):
        with open(path, "wb") as stream:
            stream.write(data)
        os.chmod(path, 0o644)

    def test_a_job_file_that_is_not_utf8(self):
        job = self.sandbox.write_job("job", "")
        self.write_bytes(job, b"command: /bin/true\ndescription: caf\xc3\xa9 cr\xe8me\n")
        for args in (["job"], ["--check"]):
            code, out, err = self.sandbox.run(*args)
            self.assertEqual(code, 78, err)
            self.assert_one_error_line(err, "%s:2:21: invalid UTF-8 byte 0xe8 (byte offset 40)" % job)

    def test_a_global_config_that_is_not_utf8(self):
        with open(self.sandbox.config, "rb") as stream:
            text = stream.read()
        self.write_bytes(self.sandbox.config, text + b"mailto: \xff@example.org\n")
        line = text.count(b"\n") + 1
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78, err)
        self.assert_one_error_line(err, "%s:%d:9: invalid UTF-8 byte 0xff (byte offset %d)"
                                   % (self.sandbox.config, line, len(text) + 8))


class ExampleTests(SandboxTest):
    """The shipped examples load: they are what users copy."""

    def test_example_global_config(self):
        with open(os.path.join(HERE, "examples", "process-control.yaml")) as stream:
            self.sandbox.write_config_text(stream.read())  # safe modes whatever the checkout's umask
        config = run_job.read_global_config(self.sandbox.config, {})
        self.assertEqual(config.user, "process-control")
        self.assertEqual(config.job_directory, "/var/lib/process-control")
        self.assertEqual(config.default_job_config["timeout"], "10m")

    def test_example_jobs(self):
        examples = os.path.join(HERE, "examples")
        shutil.copy(os.path.join(examples, "job.example.yaml"), os.path.join(self.sandbox.jobs, "example.yaml"))
        for name in os.listdir(os.path.join(examples, "jobs")):
            shutil.copy(os.path.join(examples, "jobs", name), self.sandbox.jobs)
        for name in os.listdir(self.sandbox.jobs):
            os.chmod(os.path.join(self.sandbox.jobs, name), 0o644)
        config = self.sandbox.load()
        names, problems = run_job.scan_job_directory(config)
        self.assertEqual(problems, [])
        self.assertEqual(names, ["broken", "example", "hello", "report", "warmup"])
        jobs = dict((name, run_job.load_job(config, name)) for name in names)
        self.assertEqual(jobs["example"].timeout, 3600.0)
        self.assertEqual(len(jobs["warmup"].slow_start_commands), 3)

    def test_demo_config(self):
        with open(os.path.join(HERE, "examples", "demo-config.yaml")) as stream:
            self.sandbox.write_config_text(stream.read().replace("@USER@", CURRENT_USER))
        config = self.sandbox.load()
        self.assertEqual((config.user, config.job_directory), (CURRENT_USER, self.sandbox.jobs))


# ---- the command line ----------------------------------------------------------------

class UsageTests(SandboxTest):
    def test_usage_errors_exit_64(self):
        for args in ([], ["--bogus"], ["-x"], ["-s", "-l"], ["a", "b"], ["-w", "-s"], ["-r", "job"],
                     ["--job"], ["--status=yes"], ["-j", "a", "-k", "b"], ["-l", "a"],
                     ["--check", "a"], ["-k", "a", "b"], ["-j", "a", "b"], ["-c"]):
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual(code, 64)
                self.assert_one_error_line(err)
                self.assertIn("run-job --help", err)

    def test_help_lists_options_and_exit_codes(self):
        code, out, err = self.sandbox.run("--help")
        self.assertEqual((code, err), (0, ""))
        for fragment in ("--job", "--slow-start", "--kill-job", "--list-jobs", "--status",
                         "--only-running", "--check", "--config", "--version",
                         "0 ", "1 ", "64 ", "75 ", "77 ", "78 ", "124 "):
            self.assertIn(fragment, out)

    def test_the_readme_lists_the_exit_codes_of_the_help(self):
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as stream:
            section = stream.read().split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
        documented = re.findall(r"^\| (\d+) \|", section, re.M)
        code, out, err = self.sandbox.run("--help")
        listed = re.findall(r"^  (\d+) +\S", out.split("\nexit codes:\n", 1)[1], re.M)
        self.assertIn("77", listed)
        self.assertEqual(documented, listed)

    def test_version(self):
        self.assertEqual(self.sandbox.run("--version"), (0, "run-job %s\n" % run_job.VERSION, ""))

    def test_parse_command_line(self):
        parse = run_job.parse_command_line
        self.assertEqual(parse(["job"]).actions, ["run"])
        self.assertEqual(parse(["-wj", "job"]).job, "job")
        self.assertTrue(parse(["--slow-start", "--job=job"]).slow_start)
        self.assertEqual(parse(["-kjob"]).actions, ["kill"])
        invocation = parse(["-sr", "--config", "/c.yaml"])
        self.assertEqual((invocation.actions, invocation.only_running, invocation.config_path),
                         (["status"], True, "/c.yaml"))
        self.assertEqual(parse(["--", "job"]).job, "job")
        self.assertEqual(parse(["--check", "--help"]).actions, ["help"])
def help_options(text):
    """{long option: its short forms} from the option lines of a --help text."""
    options = {}
    for line in text.splitlines():
        if not line.startswith("  -") and not line.startswith("  NAME, -"):
            continue
        words = [word.split()[0] for word in line.strip().split("  ")[0].split(", ")]
        longs = [word for word in words if word.startswith("--")]
        shorts = tuple(word for word in words if word.startswith("-") and word not in longs)
        for option in longs:
            options[option] = shorts
    return options


class OperatorTests(SandboxTest):
    """What a new operator stumbled on (issue 8): the command line says what
    was meant, and both scripts say it alike."""

    def test_kill_job_of_no_such_job_is_a_usage_error(self):
        self.sandbox.write_job("idle", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("--kill-job", "nosuch"), (64, "", (
            "run-job: no job named nosuch: %s does not exist; run-job --list-jobs lists the jobs\n"
            % os.path.join(self.sandbox.jobs, "nosuch.yaml"))))
        self.assertEqual(self.sandbox.run("-k", "idle"), (1, "", "run-job: job idle is not running\n"))

    def test_kill_job_stops_a_run_whose_job_file_was_removed(self):
        path = self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        os.remove(path)
        self.assertEqual(self.sandbox.run("--kill-job", "sleeper"), (0, "", ""))
        self.assertEqual(process.wait(timeout=20), 1)
        state = run_job.read_job_state(self.sandbox.load(), "sleeper")
        self.assertEqual((state["status"], state["pid"]), ("killed", process.pid))
        code, out, err = self.sandbox.run("--kill-job", "sleeper")  # now neither file nor run
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "no job named sleeper")

    def test_kill_job_records_the_dead_run_job_s_pid_not_its_own(self):
        path = self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        lock = run_job.lock_path(self.sandbox.load(), "sleeper")
        deadline = time.monotonic() + 10
        while not [info for info in run_job.lock_holders(lock) if info.pid != process.pid]:
            self.assertLess(time.monotonic(), deadline, "the sleep never started")
            time.sleep(0.01)
        process.kill()  # SIGKILL: the sleep, left behind, holds the lock
        process.wait()
        os.remove(path)  # and its file is gone too: still killable
        killer = subprocess.Popen([sys.executable, RUN_JOB, "--config", self.sandbox.config,
                                   "--kill-job", "sleeper"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = killer.communicate(timeout=30)
        self.assertEqual((killer.returncode, out, err), (0, b"", b""))
        config = self.sandbox.load()
        self.assertIsNone(run_job.running_info(config, "sleeper"))
        state = run_job.read_job_state(config, "sleeper")
        self.assertEqual((state["status"], state["pid"]), ("killed", process.pid))
        self.assertIn("run-job (pid %d) had died" % process.pid, state["reason"])
        self.assertEqual([record["pid"] for record in read_history(config, "sleeper")],
                         [process.pid])

    def test_status_shows_only_the_named_jobs_in_the_order_named(self):
        for name in ("alpha", "beta", "gamma"):
            self.sandbox.write_job(name, "command: x\n")
        self.sandbox.write_job("broken", "command: x\ntimout: 3\n")
        self.assertEqual(self.sandbox.run("--status", "gamma", "alpha"),
                         (0, "gamma - gamma\nalpha - alpha\n", ""))
        self.assertEqual(self.sandbox.run("-s", "broken"), (0, (
            "broken ***Invalid configuration***\n"
            "    %s/broken.yaml:2:1: unknown key `timout`; did you mean `timeout`?\n"
            % self.sandbox.jobs), ""))
        code, out, err = self.sandbox.run("beta", "--status", "nosuch", "alpha")
        self.assertEqual((code, out), (64, "beta - beta\nalpha - alpha\n"))
        self.assert_one_error_line(err, "no job named nosuch: %s does not exist"
                                   % os.path.join(self.sandbox.jobs, "nosuch.yaml"),
                                   "run-job --list-jobs lists the jobs")
        code, out, err = self.sandbox.run("--status", "../beta")
        self.assertEqual((code, out), (77, ""))
        self.assert_one_error_line(err, "refused job name '../beta'")

    def test_status_of_named_jobs_with_only_running(self):
        self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        self.sandbox.write_job("idle", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("-r", "--status", "idle", "sleeper"), (0, "", ""))
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        code, out, err = self.sandbox.run("-sr", "idle", "sleeper")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines()[0], "sleeper - sleeper    {pid: %d, status: running}"
                         % process.pid)
        self.assertRegex(out.splitlines()[1], r"^    running since \S+, for \d+ s$")
        self.assertEqual(len(out.splitlines()), 2, out)
        code, out, err = self.sandbox.run("-sr", "sleeper", "nosuch")
        self.assertEqual((code, out.splitlines()[0]),
                         (64, "sleeper - sleeper    {pid: %d, status: running}" % process.pid))
        self.assert_one_error_line(err, "no job named nosuch")

    def test_a_job_file_name_suggests_the_job_name(self):
        marker = self.sandbox.path("ran")
        self.sandbox.write_job("ticker", "command: /bin/touch %s\n" % marker)
        self.sandbox.write_job("alpha", "command: x\n")
        run = "run the job by its name: run-job ticker"
        cases = (
            (["ticker.yaml"], run),
            (["jobs/ticker.yaml"], run),
            ([os.path.join(self.sandbox.jobs, "ticker.yaml")], run),
            (["/var/lib/process-control/ticker.yaml"], run),
            (["-j", "ticker.yaml"], run),
            (["-w", "--job=ticker.yaml"], run),
            (["--", "ticker.yaml"], run),
            (["--kill-job", "ticker.yaml"], "stop the job by its name: run-job --kill-job ticker"),
            (["-kjobs/ticker.yaml"], "stop the job by its name: run-job --kill-job ticker"),
            (["--status", "ticker.yaml"], "show the job by its name: run-job --status ticker"),
            (["-s", "alpha", "jobs/ticker.yaml"], "show the job by its name: run-job --status ticker"),
        )
        for args, hint in cases:
            with self.subTest(args=args):
                self.assertEqual(self.sandbox.run(*args),
                                 (64, "", "run-job: ticker.yaml is a file name; %s\n" % hint))
        self.assertEqual(self.sandbox.run("jobs/ticker.yml"),
                         (64, "", "run-job: ticker.yml is a file name; %s\n" % run))
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(self.sandbox.run("ticker"), (0, "", ""))
        self.assertTrue(os.path.exists(marker))

    def test_c_is_the_short_form_of_config(self):
        self.sandbox.write_job("alpha", "command: x\n")
        for args in (["-c", self.sandbox.config], ["-c" + self.sandbox.config],
                     ["-lc", self.sandbox.config]):
            with self.subTest(args=args):
                arguments = args if "-lc" in args else args + ["--list-jobs"]
                self.assertEqual(self.sandbox.run(*arguments, with_config=False),
                                 (0, "alpha\n", ""))

    def test_both_scripts_help_lists_the_same_options_alike(self):
        helps = []
        for script in (RUN_JOB, CRON_GENERATE):
            process = subprocess.run([sys.executable, script, "--help"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, universal_newlines=True)
            self.assertEqual((process.returncode, process.stderr), (0, ""))
            self.assertIn("  -c FILE, --config FILE  ", process.stdout)
            helps.append(help_options(process.stdout))
        run_job_options, cron_generate_options = helps
        shared = sorted(set(run_job_options) & set(cron_generate_options))
        self.assertEqual(shared, ["--check", "--config", "--help", "--version"])
        for option in shared:
            self.assertEqual(run_job_options[option], cron_generate_options[option], option)
        self.assertEqual(run_job_options["--config"], ("-c",))

    def test_a_missing_service_user_gets_useradd_advice(self):
        self.sandbox.write_config(user="no-such-user-pc")
        self.sandbox.write_job("job", "command: /bin/true\n")
        advice = "the service user 'no-such-user-pc' does not exist; create it (useradd --system " \
                 "no-such-user-pc) or set user: to the account jobs run as"
        for args in (["job"], ["--kill-job", "job"]):
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual(code, 78)
                self.assert_one_error_line(err, advice)

    @root_only
    def test_check_and_cron_generate_give_the_same_advice_for_a_missing_user(self):
        # As another user, both refuse the config first (its owner is no
        # trusted user when the service user does not exist).
        self.sandbox.write_config(user="no-such-user-pc")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assertIn("run-job: %s:1:1: the service user 'no-such-user-pc' does not exist; create "
                      "it (useradd --system no-such-user-pc) or set user: to the account jobs run "
                      "as\n" % self.sandbox.config, err)
        process = subprocess.run([sys.executable, CRON_GENERATE, "-c", self.sandbox.config, "--check"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 universal_newlines=True)
        self.assertEqual((process.returncode, process.stdout), (78, ""))
        self.assertEqual(process.stderr, "cron-generate: %s:1:1: the service user 'no-such-user-pc' "
                         "does not exist; create it (useradd --system no-such-user-pc) or set user: "
                         "to the account jobs run as\n" % self.sandbox.config)


class RefusalTests(SandboxTest):
    def test_unsafe_paths_are_refused_with_77(self):
        outside = self.sandbox.path("outside.yaml")
        write_file(outside, "command: /bin/true\n")
        os.symlink(outside, os.path.join(self.sandbox.jobs, "escape.yaml"))
        self.sandbox.write_job("shared", "command: /bin/true\n", mode=0o664)
        cases = (
            (["escape"], "symlink that leads out of the job directory"),
            (["../outside"], "refused job name"),
            (["shared"], "writable by group or others"),
        )
        for args, fragment in cases:
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual(code, 77, err)
                self.assert_one_error_line(err, fragment)
        os.chmod(self.sandbox.config, 0o600)
        code, out, err = self.sandbox.run("shared")
        self.assertEqual(code, 77)
        self.assert_one_error_line(err, "readable by everyone")
        self.assertNotIn("job_directory", err)  # nothing of the private file is shown

    @root_only
    def test_a_job_file_or_directory_owned_by_another_user_is_refused(self):
        # Trusted owners: root and the service user (root here), as cron's rule.
        job = self.sandbox.write_job("job", "command: /bin/touch %s\n" % self.sandbox.path("ran"))
        for path, what in ((job, "the job file"), (self.sandbox.jobs, "the job directory")):
            with self.subTest(what=what):
                os.chown(path, 12345, -1)
                code, out, err = self.sandbox.run("job")
                os.chown(path, 0, -1)
                self.assertEqual(code, 77, err)
                self.assert_one_error_line(err, "%s: refused: %s must be owned by root or the "
                                           "service user root, not uid 12345" % (path, what))
        self.assertFalse(os.path.exists(self.sandbox.path("ran")))
        self.assertEqual(self.sandbox.run("job")[0], 0)

    def test_a_job_directory_writable_by_its_group_is_refused_with_77(self):
        marker = self.sandbox.path("ran")
        self.sandbox.write_job("job", "command: /bin/touch %s\n" % marker)
        os.chmod(self.sandbox.jobs, 0o775)
        code, out, err = self.sandbox.run("job")
        self.assertEqual(code, 77, err)
        self.assert_one_error_line(err, "refused: the job directory is writable by group or others",
                                   "chmod go-w")
        self.assertFalse(os.path.exists(marker))

    def test_a_job_name_is_at_most_200_characters(self):
        longest = "j" * 200
        self.sandbox.write_job(longest, "command: /bin/true\n")
        self.assertEqual(self.sandbox.run(longest), (0, "", ""))
        for args in (["k" * 300], ["--kill-job", "k" * 201]):
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual(code, 77, err)
                self.assert_one_error_line(err, "(%d characters): a job name is at most 200 "
                                           "characters" % len(args[-1]))
                self.assertLess(len(err), 160)

    def test_unknown_job_is_a_usage_error(self):
        code, out, err = self.sandbox.run("nosuchjob")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "no job named nosuchjob")

    def test_a_user_other_than_the_service_user_is_refused(self):
        # As root, become nobody with a config naming daemon, then root; otherwise name root.
        expected = {"daemon": ("service user daemon", "as root (run-job switches to daemon "
                               "itself) or as daemon"),
                    "root": ("jobs run as root (user: root)", "` as root")}
        options = as_nobody(self.sandbox) if IS_ROOT else {}
        self.sandbox.write_job("job", "command: /bin/touch %s\n" % self.sandbox.path("ran"))
        for service_user in (["daemon", "root"] if IS_ROOT else ["root"]):
            self.sandbox.write_config(user=service_user)
            for args in (["job"], ["--kill-job", "job"]):
                with self.subTest(user=service_user, args=args):
                    code, out, err = self.sandbox.run(*args, **options)
                    self.assertEqual(code, 77, err)
                    self.assert_one_error_line(err, *expected[service_user])
                    self.assertNotIn("sudo", err)
        self.assertFalse(os.path.exists(self.sandbox.path("ran")))

    def test_config_errors_exit_78_on_one_line(self):
        self.sandbox.write_job("job", "command: x\ntimout: 5\n")
        code, out, err = self.sandbox.run("job")
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "job.yaml:2:1: unknown key `timout`; did you mean `timeout`?")

    def test_odd_files_and_directories_give_one_line(self):
        os.mkdir(os.path.join(self.sandbox.jobs, "folder.yaml"))
        code, out, err = self.sandbox.run("folder")
        self.assertEqual(code, 77)
        self.assert_one_error_line(err, "folder.yaml: refused: the job file is not a regular file")
        code, out, err = self.sandbox.run("--config", self.sandbox.jobs, "--status", with_config=False)
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "the config is not a regular file")
        shutil.rmtree(self.sandbox.jobs)
        for args in (["--status"], ["--list-jobs"], ["job"]):
            code, out, err = self.sandbox.run(*args)
            self.assertEqual(code, 78, args)
            self.assert_one_error_line(err, "process-control.yaml:2:1: the job directory", "does not exist")

    def test_missing_directory_that_cannot_be_created_is_reported_with_the_command(self):
        write_file(self.sandbox.path("file"), "")
        with open(self.sandbox.config, "a") as stream:
            stream.write("output_directory: file/log\n")
        with open(self.sandbox.config) as stream:
            text = stream.read().replace("output_directory: log\n", "")
        write_file(self.sandbox.config, text)
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("job")
        self.assertEqual(code, 78, err)
        self.assert_one_error_line(err, "file/log does not exist", "install -d -o %s -m 750" % CURRENT_USER)
class RunTests(SandboxTest):
    def test_run_creates_the_directories_and_runs_the_job(self):
        marker = self.sandbox.path("ran")
        self.sandbox.write_job("job", "command: /bin/touch %s\n" % marker)
        code, out, err = self.sandbox.run("job")
        self.assertEqual(code, 0, err)
        self.assertTrue(os.path.exists(marker))
        for name, mode in (("log", 0o750), ("run", 0o755), ("state", 0o755)):
            self.assertEqual(os.stat(self.sandbox.path(name)).st_mode & 0o777, mode, name)
        os.remove(marker)
        self.assertEqual(self.sandbox.run("--job", "job")[0], 0)
        self.assertTrue(os.path.exists(marker))

    def test_slow_start(self):
        marker = self.sandbox.path("slow")
        self.sandbox.write_job("plain", "command: /bin/true\n")
        self.sandbox.write_job("slow", "command: /bin/false\nslow_start_command: /bin/touch %s\n" % marker)
        code, out, err = self.sandbox.run("-w", "plain")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "job plain has no slow_start_command")
        code, out, err = self.sandbox.run("--slow-start", "slow")
        self.assertEqual(code, 0, err)
        self.assertTrue(os.path.exists(marker))

    def test_the_job_environment_overrides_what_is_inherited(self):
        out = self.sandbox.path("out")
        self.sandbox.write_job("job", "command: /bin/sh -c 'echo $GREETING $KEPT > %s'\n"
                                      "environment:\n  GREETING: from-job\n" % out)
        code, _, err = self.sandbox.run("job", environ={"GREETING": "inherited", "KEPT": "kept"})
        self.assertEqual((code, err), (0, ""))
        with open(out) as stream:
            self.assertEqual(stream.read(), "from-job kept\n")

    def test_logs_are_0640_whatever_the_umask(self):
        self.sandbox.write_job("job", "command: /bin/echo hello\n")
        code, _, err = self.sandbox.run("job", preexec_fn=lambda: os.umask(0o077))
        self.assertEqual((code, err), (0, ""))
        directory = self.sandbox.path("log", "job")
        self.assertEqual(os.stat(directory).st_mode & 0o7777, 0o750)
        for name in os.listdir(directory):
            self.assertEqual(os.stat(os.path.join(directory, name)).st_mode & 0o777, 0o640)
        for name in os.listdir(self.sandbox.path("state")):
            self.assertEqual(os.stat(self.sandbox.path("state", name)).st_mode & 0o777, 0o644, name)

    def test_kill_job_with_nothing_running(self):
        self.sandbox.write_job("idle", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("--kill-job", "idle"),
                         (1, "", "run-job: job idle is not running\n"))

    def test_failure_exits_1(self):
        self.sandbox.write_job("fails", "command:\n  - /bin/false\n  - /bin/touch %s\n"
                               % self.sandbox.path("second"))
        code, out, err = self.sandbox.run("fails")
        self.assertEqual(code, 1)
        self.assertFalse(os.path.exists(self.sandbox.path("second")))  # stops at the first failure

# Cron's default environment has no LANG: the C locale, ASCII. Python 3.6 then
# encodes with ASCII (3.7+ switches to UTF-8 unless PYTHONUTF8=0 says not to).
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}


class CLocaleTests(SandboxTest):
    """Job files are UTF-8: so are the job's arguments, its environment and
    what run-job prints, whatever the locale."""

    def test_arguments_and_environment_reach_the_job_as_utf8(self):
        out = self.sandbox.path("out")
        self.sandbox.write_job("cafe", "command: /bin/sh -c 'echo \"$0 $GREETING $INHERITED\" > %s' \u00e9\n"
                                        "environment:\n  GREETING: h\u00e9llo\n" % out)
        inherited = os.fsdecode("na\u00efve".encode("utf-8"))  # whatever this test's locale
        code, _, err = self.sandbox.run("cafe", environ=dict(C_LOCALE, INHERITED=inherited))
        self.assertEqual((code, err), (0, ""))
        with open(out, "rb") as stream:
            self.assertEqual(stream.read().decode("utf-8"), "\u00e9 h\u00e9llo na\u00efve\n")

    def test_status_and_errors_print_utf8(self):
        self.sandbox.write_job("cafe", "description: Caf\u00e9 cr\u00e8me\ncommand: /bin/true\n")
        code, out, err = self.sandbox.run("--status", environ=C_LOCALE)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines()[:2], ["cafe - cafe", "    Caf\u00e9 cr\u00e8me"])
        self.sandbox.write_job("cafe", "command: /bin/true\nt\u00e2che: 1\n")
        code, out, err = self.sandbox.run("cafe", environ=C_LOCALE)
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "t\u00e2che")

    def test_cron_generate_prints_utf8(self):
        self.sandbox.write_config(extra="cron_environment:\n  GREETING: h\u00e9llo\n")
        self.sandbox.write_job("cafe", "command: /bin/true\nschedule: '0 * * * *'\n")
        process = subprocess.Popen([sys.executable, os.path.join(HERE, "cron_generate.py"), "--config",
                                    self.sandbox.config, "--stdout"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=dict(os.environ, **C_LOCALE))
        out, err = process.communicate(timeout=30)
        self.assertEqual((process.returncode, err), (0, b""))
        self.assertIn("GREETING=h\u00e9llo\n".encode("utf-8"), out)


class LoggingConfigTests(SandboxTest):
    """The original's `logging` key: a dictConfig whose process-control logger
    hears of each run's start and outcome."""

    def write_logging_config(self, events, user=CURRENT_USER, handler_class="logging.FileHandler",
                             target="filename"):
        self.sandbox.write_config(user=user, extra=(
            "logging:\n"
            "  version: 1\n"
            "  formatters:\n"
            "    plain:\n"
            "      format: '%%(name)s %%(levelname)s %%(message)s'\n"
            "  handlers:\n"
            "    events:\n"
            "      class: %s\n"
            "      %s: %s\n"
            "      formatter: plain\n"
            "  loggers:\n"
            "    process-control:\n"
            "      handlers: [events]\n"
            "      level: INFO\n" % (handler_class, target, events)))

    def read_events(self, path):
        with open(path) as stream:
            return stream.read().splitlines()

    def test_runs_and_outcomes_reach_the_configured_logger(self):
        events = self.sandbox.path("events.log")
        self.write_logging_config(events)
        self.sandbox.write_job("ok", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        self.assertEqual(self.sandbox.run("ok")[0], 0)
        self.assertEqual(self.sandbox.run("bad")[0], 1)
        lines = self.read_events(events)
        self.assertEqual(len(lines), 4, lines)
        self.assertRegex(lines[0], r"^process-control INFO job ok started \(pid \d+\); log .*/ok-")
        self.assertRegex(lines[1], r"^process-control INFO job ok succeeded after ")
        self.assertRegex(lines[2], r"^process-control INFO job bad started ")
        self.assertRegex(lines[3], r"^process-control ERROR job bad failed \(exit status 3\) after ")

    def test_a_run_finding_the_lock_held_is_a_warning(self):
        events = self.sandbox.path("events.log")
        self.write_logging_config(events)
        started = self.sandbox.path("started")
        self.sandbox.write_job("slow", "command: /bin/sh -c 'touch %s; sleep 30'\n" % started)
        first = subprocess.Popen([sys.executable, RUN_JOB, "--config", self.sandbox.config, "slow"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        self.addCleanup(first.wait)
        self.addCleanup(first.terminate)
        deadline = time.time() + 10
        while not os.path.exists(started) and time.time() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.sandbox.run("slow")[0], 75)
        self.assertTrue(any(line.startswith("process-control WARNING job slow is still running")
                            for line in self.read_events(events)), self.read_events(events))

    def test_a_handler_failing_at_emit_time_is_recorded_not_printed(self):
        # No syslog socket there: each record fails; logging would print a
        # traceback for each on stderr.
        self.write_logging_config(self.sandbox.path("no-syslog-here"),
                                  handler_class="logging.handlers.SysLogHandler", target="address")
        self.sandbox.write_job("ok", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        # Quiet on success all the same (cron would mail any output); the run's
        # log, its state record and --status say what failed.
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        failure = "handler events (SysLogHandler) failed: "
        log_directory = self.sandbox.path("log", "ok")
        with open(os.path.join(log_directory, os.listdir(log_directory)[0])) as stream:
            records = [line for line in stream.read().splitlines() if " #| logging " in line]
        self.assertEqual(len(records), 1, records)
        self.assertIn(" #| logging " + failure, records[0])
        state = run_job.read_job_state(self.sandbox.load(), "ok")
        self.assertEqual(state["status"], "success")
        self.assertTrue(state["logging_error"].startswith(failure), state)
        code, out, err = self.sandbox.run("--status")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("\n    logging: " + failure, out)
        code, out, err = self.sandbox.run("bad")
        self.assertEqual(code, 1)
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertTrue(lines[0].startswith("run-job: job bad failed (exit status 3)"), err)
        self.assertTrue(lines[1].startswith("run-job: logging: " + failure), err)
        # A full disk: the records of the start and the outcome both fail.
        self.write_logging_config("/dev/full")
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        state = run_job.read_job_state(self.sandbox.load(), "ok")
        self.assertIn("handler events (FileHandler) failed: ", state["logging_error"])
        self.assertIn("No space left on device", state["logging_error"])
        # A run without failure records none.
        self.write_logging_config(self.sandbox.path("events.log"))
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertIsNone(run_job.read_job_state(self.sandbox.load(), "ok")["logging_error"])
        self.assertNotIn("logging:", self.sandbox.run("--status")[1].split("\nok - ok\n")[1])

    def test_a_logging_config_without_handlers_stays_quiet(self):
        self.sandbox.write_config(extra="logging:\n  version: 1\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        code, out, err = self.sandbox.run("bad")
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1, err)  # the summary, not a log record too

    def test_without_version_1_the_config_is_invalid(self):
        self.sandbox.write_config(extra="logging:\n  handlers: {}\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assertRegex(err, r"process-control\.yaml:6:1: `logging` needs `version: 1`")

    def test_a_logging_config_that_cannot_be_applied_never_stops_the_run(self):
        # A class Python does not know, a file the run cannot create: --check
        # warns, and a run goes on quietly, its log, state and --status saying why.
        marker = self.sandbox.path("ran")
        self.sandbox.write_job("job", "command: /bin/touch %s\n" % marker)
        cases = [("logging.handlers.NoSuchHandler", self.sandbox.path("events.log"),
                  "there is no class logging.handlers.NoSuchHandler"),
                 ("logging.FileHandler", self.sandbox.path("no-such-directory", "events.log"),
                  "the directory %s does not exist" % self.sandbox.path("no-such-directory"))]
        for handler_class, target, warning in cases:
            with self.subTest(handler_class=handler_class):
                self.write_logging_config(target, handler_class=handler_class)
                code, out, err = self.sandbox.run("--check")
                self.assertEqual(code, 0, err)
                self.assertIn("warning: `logging`: handler events: " + warning, err)
                self.assertEqual(self.sandbox.run("job"), (0, "", ""))
                self.assertTrue(os.path.exists(marker))
                os.unlink(marker)
                state = run_job.read_job_state(self.sandbox.load(), "job")
                self.assertEqual(state["status"], "success")
                self.assertIn("cannot apply the global config's `logging`", state["logging_error"])
                self.assertIn("\n    logging: cannot apply", self.sandbox.run("--status")[1])

    def test_a_cron_template_costs_a_plain_run_no_re(self):
        self.sandbox.write_config(extra="cron_template: '{schedule} {user} {command} >/dev/null'\n")
        self.sandbox.write_job("job", "command: /bin/true\n")
        # (Some interpreters import re at start: what counts is that the run adds none.)
        probe = ("import sys; had_re = 're' in sys.modules; import run_job; "
                 "code = run_job.main(['--config', %r, 'job']); "
                 "print(code, 're' in sys.modules and not had_re, 'string' in sys.modules)"
                 % self.sandbox.config)
        out = subprocess.check_output([sys.executable, "-c", probe], cwd=HERE,
                                      stdin=subprocess.DEVNULL).decode()
        self.assertEqual(out.split(), ["0", "False", "False"])

    def test_a_plain_run_without_logging_imports_no_logging(self):
        self.sandbox.write_job("job", "command: /bin/true\n")
        probe = ("import sys, run_job; code = run_job.main(['--config', %r, 'job']); "
                 "print(code, 'logging' in sys.modules)" % self.sandbox.config)
        out = subprocess.check_output([sys.executable, "-c", probe], cwd=HERE,
                                      stdin=subprocess.DEVNULL).decode()
        self.assertEqual(out.split(), ["0", "False"])

    @root_only
    def test_logging_after_the_switch_to_the_service_user(self):
        # The pyenv interpreter is unreadable to nobody: logging's modules must
        # be imported before the switch, and the file opened as nobody.
        shared = self.sandbox.path("shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        events = os.path.join(shared, "events.log")
        self.write_logging_config(events, user=UNPRIVILEGED,
                                  handler_class="logging.handlers.WatchedFileHandler")
        self.sandbox.write_job("ok", "command: /bin/true\n")
        code, out, err = self.sandbox.run("ok")
        self.assertEqual(code, 0, err)
        self.assertEqual(os.stat(events).st_uid, pwd.getpwnam(UNPRIVILEGED).pw_uid)
        self.assertEqual(len(self.read_events(events)), 2)


class ReportTests(SandboxTest):
    def test_list_jobs(self):
        for name in ("beta", "alpha"):
            self.sandbox.write_job(name, "command: x\n")
        self.sandbox.write_job("broken", "command: [\n")
        write_file(os.path.join(self.sandbox.jobs, "bad name.yaml"), "command: x\n")
        code, out, err = self.sandbox.run("--list-jobs")
        self.assertEqual(code, 0)
        self.assertEqual(out, "alpha\nbeta\nbroken\n")
        self.assert_one_error_line(err, "bad name.yaml")
    def test_list_only_running_jobs(self):
        self.sandbox.write_job("idle", "command: x\n")
        self.assertEqual(self.sandbox.run("-l", "-r"), (0, "", ""))
    def test_status_shows_invalid_jobs_without_hiding_others(self):
        self.sandbox.write_job("multi", "name: Multi job\ndescription: Does two things.\n"
                                        "tags: [database, queue]\ncommand: x\n")
        self.sandbox.write_job("broken", "command: x\ntimout: 3\n")
        self.sandbox.write_job("plain", "command: x\n")
        code, out, err = self.sandbox.run("--status")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines(), [
            "broken ***Invalid configuration***",
            "    %s/broken.yaml:2:1: unknown key `timout`; did you mean `timeout`?" % self.sandbox.jobs,
            "multi - Multi job",
            "    Does two things.",
            "    tags: database, queue",
            "plain - plain",
        ])
    def test_status_shows_the_next_run(self):
        self.sandbox.write_job("often", "command: x\nschedule: '* * * * *'\n")
        self.sandbox.write_job("off", "command: x\nschedule: '* * * * *'\ndisabled: true\n")
        code, out, err = self.sandbox.run("--status")
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[1], "    schedule: * * * * * (disabled)")
        self.assertRegex(lines[3], r"^    schedule: \* \* \* \* \*, next run \d{4}-\d\d-\d\d \d\d:\d\d$")

    def test_status_and_a_refused_run_say_when_run_job_died(self):
        self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        process.kill()
        self.addCleanup(self.sandbox.run, "--kill-job", "sleeper")
        died = ("its run-job (pid %d, started " % process.pid, "died, leaving processes that hold "
                "the lock; run-job --kill-job sleeper stops them")
        deadline = time.monotonic() + 10
        while run_job.read_process(process.pid).state != "Z":  # not reaped yet: dead all the same
            self.assertLess(time.monotonic(), deadline, "run-job never died")
            time.sleep(0.01)
        code, out, err = self.sandbox.run("sleeper")
        self.assertEqual(code, 75)
        self.assert_one_error_line(err, "job sleeper is still running: ", *died)
        process.wait()
        code, out, err = self.sandbox.run("sleeper")
        self.assertEqual(code, 75)
        self.assert_one_error_line(err, "job sleeper is still running: ", *died)
        code, out, err = self.sandbox.run("--status")
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0], "sleeper - sleeper    {pid: %d, status: running}" % process.pid)
        for fragment in died:
            self.assertIn(fragment, lines[2])

    def test_ctrl_c_while_kill_job_waits_is_one_line(self):
        # The job ignores SIGTERM, so --kill-job waits out kill_grace: Ctrl-C
        # there must say so in one line, not with a traceback.
        termed = self.sandbox.path("termed")
        self.sandbox.write_job("stubborn", "command: [\"/bin/sh -c 'trap \\\"touch %s\\\" TERM; "
                                           "while :; do sleep 0.05; done'\"]\nkill_grace: 30\n" % termed)
        self.start_in_background("stubborn")
        self.wait_until_running("stubborn")
        group = run_job.running_info(self.sandbox.load(), "stubborn")["pgid"]
        self.addCleanup(os.killpg, group, signal.SIGKILL)
        killer = subprocess.Popen([sys.executable, RUN_JOB, "--config", self.sandbox.config,
                                   "--kill-job", "stubborn"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(termed):
            self.assertLess(time.monotonic(), deadline, "the job never got SIGTERM")
            time.sleep(0.02)
        killer.send_signal(signal.SIGINT)
        out, err = killer.communicate(timeout=10)
        self.assertEqual((killer.returncode, out, err), (130, b"", b"run-job: interrupted\n"))

    def test_a_running_job_in_status_then_killed(self):
        self.sandbox.write_job("sleeper", "name: Sleeper\ncommand: /bin/sleep 30\n")
        self.sandbox.write_job("idle", "command: /bin/true\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        code, out, err = self.sandbox.run("--status")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines()[:2], ["idle - idle",
                                                "sleeper - Sleeper    {pid: %d, status: running}" % process.pid])
        def without_elapsed(text):  # `running since T, for N s`: N may have grown
            return [re.sub(r", for [^,]*$", "", line) for line in text.splitlines()]
        self.assertEqual(without_elapsed(self.sandbox.run("-s", "-r")[1]),
                         without_elapsed(out)[1:])
        self.assertEqual(self.sandbox.run("-l", "-r"), (0, "sleeper\n", ""))
        code, out, err = self.sandbox.run("sleeper")
        self.assertEqual(code, 75)
        self.assert_one_error_line(err, "sleeper")
        code, out, err = self.sandbox.run("--kill-job", "sleeper")
        self.assertEqual(code, 0, err)
        self.assertEqual(process.wait(timeout=20), 1)
        code, out, err = self.sandbox.run("--status")
        # Killed by hand: no failure (consecutive failures 0, no such line).
        self.assertNotIn("consecutive failures", out)
        self.assertRegex(out.splitlines()[-1], r"^    last status: killed at \d{4}-\d\d-\d\dT\d\d:\d\d:\S+ \(signal 15, \d+\.\d s\)$")

    def test_check(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("good", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual((code, err), (0, ""))
        self.sandbox.write_job("typo", "command: x\ntimout: 3\n")
        self.sandbox.write_job("untyped", "command: x\ndisabled: 1\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertIn("typo.yaml:2:1: unknown key", lines[0])
        self.assertIn("untyped.yaml:2:1: `disabled` must be true or false", lines[1])
        self.sandbox.write_config(extra="frobnicate: 1\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "process-control.yaml:6:1: unknown key `frobnicate`")
    def test_check_fails_on_a_directory_nobody_can_create(self):
        write_file(self.sandbox.path("file"), "")
        with open(self.sandbox.config) as stream:
            text = stream.read().replace("run_directory: run\n", "run_directory: file/run\n")
        write_file(self.sandbox.config, text)
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "process-control.yaml:4:1: the run directory",
                                   "cannot be created: %s is not a directory" % self.sandbox.path("file"))

    @root_only
    def test_check_knows_cron_generate_creates_missing_directories(self):
        # cron-generate, run as root, creates them for the service user, who
        # could not create them itself under the root-owned sandbox.
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.write_job("job", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("--check")[:3], (0, "", ""))
        self.assertEqual(self.sandbox.run("--check", **as_nobody(self.sandbox)), (0, "", ""))

    def test_check_warns_about_day_of_month_and_day_of_week(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("monthly", "command: /bin/true\nschedule: '0 0 */2 * 1'\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0)
        self.assert_one_error_line(err, "monthly.yaml:2:1: warning: ")
    def sandbox_listing(self):
        """Every path in the sandbox, itself included: type and mode, size, mtime."""
        listing = {}
        for directory, subdirectories, files in os.walk(self.sandbox.root):
            for path in [directory] + [os.path.join(directory, name) for name in subdirectories + files]:
                status = os.lstat(path)
                listing[path] = (status.st_mode, status.st_size, status.st_mtime_ns)
        return listing

    def test_read_only_commands_never_write(self):
        # One job ran (its log, state, history and lock exist), one never did
        # (no lock file yet: reading its status must not create one).
        self.sandbox.write_job("ran", "command: /bin/echo output\n")
        self.sandbox.write_job("never", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("ran"), (0, "", ""))
        self.assertTrue(os.listdir(self.sandbox.path("log", "ran")))
        self.assertTrue(os.listdir(self.sandbox.path("state")))
        before = self.sandbox_listing()
        for args in (["--list-jobs"], ["--status"], ["--check"], ["-s", "-r"], ["-l", "-r"]):
            with self.subTest(args=args):
                code, out, err = self.sandbox.run(*args)
                self.assertEqual((code, err), (0, ""))
                after = self.sandbox_listing()
                self.assertEqual(sorted(path for path in set(before) | set(after)
                                        if before.get(path) != after.get(path)), [])


# ---- as root: the switch to the service user -----------------------------------------

@root_only
class ServiceUserTests(SandboxTest):
    def test_root_switches_to_the_service_user_before_running(self):
        # The pyenv interpreter is unreadable to nobody: this also proves that
        # everything needed after the switch was imported before it.
        self.sandbox.write_config(user=UNPRIVILEGED)
        report = self.sandbox.path("report")
        os.mkdir(report)
        os.chmod(report, 0o777)
        self.sandbox.write_job("whoami", "command: [\"/bin/sh -c 'id -u > $OUT; id -g >> $OUT; id -G >> $OUT;"
                                         " echo $HOME $USER $LOGNAME >> $OUT; pwd >> $OUT'\"]\n"
                                         "environment:\n  OUT: %s/out\n" % report)
        code, out, err = self.sandbox.run("whoami", environ={"HOME": "/root", "USER": "root", "LOGNAME": "root"})
        self.assertEqual(code, 0, err)
        account = pwd.getpwnam(UNPRIVILEGED)
        with open(os.path.join(report, "out")) as stream:
            lines = stream.read().splitlines()
        self.assertEqual(lines, [str(account.pw_uid), str(account.pw_gid), str(account.pw_gid),
                                 "%s %s %s" % (account.pw_dir, UNPRIVILEGED, UNPRIVILEGED),
                                 account.pw_dir if os.path.isdir(account.pw_dir) else "/"])
        for name in ("log", "run", "state"):
            self.assertEqual(os.stat(self.sandbox.path(name)).st_uid, account.pw_uid, name)

    def test_a_command_found_through_path_starts_after_the_switch(self):
        # os.execvpe's PATH search imports `warnings` (not on 3.11's start-up):
        # as nobody, with this interpreter, that import fails.
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.write_job("hello", "command: echo hello\n")
        code, out, err = self.sandbox.run("hello", environ={"PATH": "/usr/bin:/bin"})
        self.assertEqual((code, err), (0, ""))
        logs = os.listdir(self.sandbox.path("log", "hello"))
        with open(self.sandbox.path("log", "hello", logs[0]), "rb") as stream:
            self.assertIn(b" O| hello\n", stream.read())

    def test_a_path_directory_the_service_user_cannot_search_hides_nothing(self):
        # Root can search it; the service user cannot, so the program is not
        # found there rather than refused (execvp would say "Permission denied").
        self.sandbox.write_config(user=UNPRIVILEGED)
        private = self.sandbox.path("private-bin")
        os.mkdir(private, 0o700)
        self.sandbox.write_job("missing", "command: no-such-tool-here\n")
        code, out, err = self.sandbox.run("missing", environ={"PATH": private + ":/usr/bin:/bin"})
        self.assertEqual(code, 1, err)
        self.assertIn("cannot start no-such-tool-here: No such file or directory", err)

    def test_a_failure_after_the_switch_is_reported_and_recorded(self):
        # A failure takes the runner's longer path (the previous state is read):
        # still nothing imported after the switch.
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.write_job("fails", "command: /bin/sh -c 'echo oops >&2; exit 3'\n")
        for attempt in (1, 2):
            code, out, err = self.sandbox.run("fails")
            self.assertEqual(code, 1, err)
            self.assertNotIn("Traceback", err)
            self.assertIn("oops", err)
        code, out, err = self.sandbox.run("--status")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"last status: failed at \S+ \(exit code 3, ")

    def test_kill_and_status_after_the_switch(self):
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        code, out, err = self.sandbox.run("--status")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("{pid: %d, status: running}" % process.pid, out)
        code, out, err = self.sandbox.run("--kill-job", "sleeper")
        self.assertEqual(code, 0, err)
        err = process.communicate(timeout=20)[1]
        self.assertEqual(process.returncode, 1)
        self.assertNotIn(b"Traceback", err)
        self.assertIn("last status: killed", self.sandbox.run("--status")[1])

    def test_the_job_file_is_read_only_after_the_switch(self):
        # Root could read a root-only job file; the service user cannot.
        self.sandbox.write_config(user=UNPRIVILEGED)
        job = self.sandbox.write_job("private", "command: /bin/true\n", mode=0o600)
        code, out, err = self.sandbox.run("private")
        self.assertEqual(code, 77, err)
        self.assert_one_error_line(err, "%s: refused: the service user %s cannot read the "
                                   "job file; chmod 0644" % (os.path.realpath(job), UNPRIVILEGED))

    def test_status_as_another_user_shows_a_job_running_as_the_service_user(self):
        # nobody can neither list daemon's /proc/PID/fd nor open the lock file to write.
        self.sandbox.write_config(user="daemon")
        self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        code, out, err = self.sandbox.run("--status", **as_nobody(self.sandbox))
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines()[0], "sleeper - sleeper    {pid: %d, status: running}"
                         % process.pid)
        self.assertEqual(len(out.splitlines()), 2, out)  # and the line `running since`

    def test_nothing_runs_as_root_unless_configured(self):
        try:
            pwd.getpwnam("process-control")
            self.skipTest("this machine has a process-control user")
        except KeyError:
            pass
        with open(self.sandbox.config) as stream:
            text = stream.read().replace("user: root\n", "")
        write_file(self.sandbox.config, text)
        self.sandbox.write_job("job", "command: /bin/touch %s\n" % self.sandbox.path("ran"))
        code, out, err = self.sandbox.run("job")
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "service user 'process-control' does not exist")
        self.assertFalse(os.path.exists(self.sandbox.path("ran")))

    def test_status_as_root_reads_as_the_service_user(self):
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.write_job("job", "command: x\nschedule: '0 * * * *'\n")
        code, out, err = self.sandbox.run("--status")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith("job - job\n"), out)

    def test_read_only_commands_work_for_any_user(self):
        self.sandbox.write_config(user="daemon")
        self.sandbox.write_job("job", "command: /bin/true\n")
        self.sandbox.make_directories()
        for name in ("log", "run", "state"):
            os.chown(self.sandbox.path(name), pwd.getpwnam("daemon").pw_uid, -1)
        self.assertEqual(self.sandbox.run("--list-jobs", **as_nobody(self.sandbox)), (0, "job\n", ""))
        code, out, err = self.sandbox.run("--check", **as_nobody(self.sandbox))
        self.assertEqual((code, err), (0, ""))


if __name__ == "__main__":
    unittest.main()
