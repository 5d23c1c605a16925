"""Tests for the first deployment: the directories cron-generate creates for
the service user, log_group and the modes of logs, and what --check and
cron-generate report about what the service user will meet under cron.

Real files, users and processes. The tests that create files for another
user, or run the scripts as one, need root and skip otherwise; the rest pass
as root and as an ordinary user (the current user is then the service user).
"""

import grp
import multiprocessing
import os
import pwd
import socket
import stat
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import (CURRENT_USER, IS_ROOT, SYSTEM_PYTHON, UNPRIVILEGED, Sandbox,  # noqa: E402
                         as_nobody, root_only, write_file)

CRON_GENERATE = os.path.join(HERE, "cron_generate.py")
# An existing group other than nobody's, for log_group.
LOG_GROUP = "daemon"


class DeploySandbox(Sandbox):
    """A Sandbox whose config also names a crontab to write, and the runner."""

    def write_config(self, user=CURRENT_USER, extra="", mode=0o644, directories=None):
        directories = directories or {}
        lines = ["user: %s" % user, "job_directory: jobs",
                 "output_directory: %s" % directories.get("output", "log"),
                 "run_directory: %s" % directories.get("run", "run"),
                 "state_directory: %s" % directories.get("state", "state"),
                 "output_crontab: %s" % self.path("crontab"),
                 "runner_path: /usr/bin/run-job"]
        write_file(self.config, "\n".join(lines) + "\n" + extra, mode)

    def cron_generate(self, *args, **options):
        """cron_generate.py with --config; return (exit code, stdout, stderr)."""
        python = options.pop("python", sys.executable)
        script = options.pop("script", CRON_GENERATE)
        process = subprocess.Popen([python, script, "--config", self.config] + list(args),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=self.root, **options)
        out, err = process.communicate(timeout=30)
        return process.returncode, out.decode(), err.decode()

    def copy_scripts(self):
        """Both scripts where any user can read them, side by side."""
        script = self.copy_script()
        generator = self.path("cron_generate.py")
        with open(CRON_GENERATE) as source:
            write_file(generator, source.read())
        return script, generator

    def mode(self, *parts):
        return stat.S_IMODE(os.stat(self.path(*parts)).st_mode)

    def owner(self, *parts):
        status = os.stat(self.path(*parts))
        return pwd.getpwuid(status.st_uid).pw_name, grp.getgrgid(status.st_gid).gr_name


class DeployTest(unittest.TestCase):
    def setUp(self):
        self.sandbox = DeploySandbox()
        self.addCleanup(self.sandbox.remove)

    def as_service_user(self):
        """Popen options for run_job.py run as nobody, as cron runs it."""
        return as_nobody(self.sandbox)

    def without_crontab_warning(self, text):
        """TEXT less its one line saying that no crontab is installed yet (the
        sandbox's is written by cron-generate), which must be there."""
        lines = text.splitlines(True)
        warnings = [line for line in lines if "crontab" in line
                    and line.endswith("does not exist; run cron-generate\n")]
        self.assertEqual(len(warnings), 1, text)
        return "".join(line for line in lines if line not in warnings)

    def assert_lines(self, text, count, *fragments):
        lines = text.splitlines()
        self.assertEqual(len(lines), count, text)
        for fragment in fragments:
            self.assertTrue(any(fragment in line for line in lines), (fragment, text))
        return lines


# ---- 1. the directories cron-generate creates --------------------------------------

@root_only
class FirstDeploymentTests(DeployTest):
    """As on a fresh server: root-owned parents the service user cannot
    write, cron-generate run as root, then a run as the service user, as cron
    starts it."""

    def setUp(self):
        super().setUp()
        self.sandbox.write_config(user=UNPRIVILEGED, directories={"run": "state/locks"})
        self.marker = self.sandbox.path("ran")
        os.mkdir(self.marker)
        os.chmod(self.marker, 0o777)
        self.sandbox.write_job("hello", "command: /bin/touch %s/hello\nschedule: '* * * * *'\n"
                               % self.marker)

    def test_without_cron_generate_the_first_cron_run_fails(self):
        code, out, err = self.sandbox.run("hello", **self.as_service_user())
        self.assertEqual(code, 78, err)
        self.assertIn("cannot be created", err)

    def test_cron_generate_creates_the_directories_for_the_first_cron_run(self):
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual((code, err), (0, ""))
        self.assert_lines(out, 4, "created %s (owner nobody, mode 0750)" % self.sandbox.path("log"),
                          "created %s (owner nobody, mode 0755)" % self.sandbox.path("state"),
                          "created %s (owner nobody, mode 0755)" % self.sandbox.path("state", "locks"),
                          "wrote %s" % self.sandbox.path("crontab"))
        nogroup = grp.getgrgid(pwd.getpwnam(UNPRIVILEGED).pw_gid).gr_name
        for parts, mode in ((("log",), 0o750), (("state",), 0o755), (("state", "locks"), 0o755)):
            self.assertEqual(self.sandbox.owner(*parts), (UNPRIVILEGED, nogroup), parts)
            self.assertEqual(self.sandbox.mode(*parts), mode, parts)
        code, out, err = self.sandbox.run("hello", **self.as_service_user())
        self.assertEqual((code, out, err), (0, "", ""))
        self.assertTrue(os.path.exists(os.path.join(self.marker, "hello")))
        logs = self.sandbox.path("log", "hello")
        self.assertEqual(self.sandbox.mode("log", "hello"), 0o750)
        for name in os.listdir(logs):
            self.assertEqual(self.sandbox.mode("log", "hello", name), 0o640)
            self.assertEqual(self.sandbox.owner("log", "hello", name)[0], UNPRIVILEGED)
        self.assertTrue(os.path.exists(self.sandbox.path("state", "locks", "hello.lock")))
        self.assertTrue(os.path.exists(self.sandbox.path("state", "hello.state")))
        # The next deployment has nothing to create.
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual((code, out, err), (0, "cron-generate: %s is up to date\n"
                                            % self.sandbox.path("crontab"), ""))

    def test_check_and_stdout_create_nothing(self):
        for args in (["--check"], ["--stdout"]):
            code, out, err = self.sandbox.cron_generate(*args)
            if args == ["--check"]:
                err = self.without_crontab_warning(err)
            self.assertEqual((code, err), (0, ""), args)
            self.assertNotIn("created", out)
            for name in ("log", "state"):
                self.assertFalse(os.path.exists(self.sandbox.path(name)), args)

    def test_check_as_root_passes_because_cron_generate_will_create_them(self):
        for check in (self.sandbox.run, self.sandbox.cron_generate):
            code, out, err = check("--check")
            self.assertEqual((code, out, self.without_crontab_warning(err)), (0, "", ""))


def create_in_step(barrier, root, failures):
    """In a child process: make_directory on 200 fresh paths, one at a time
    in step with the others; put the errors on FAILURES."""
    config = run_job.GlobalConfig(source=os.path.join(root, "process-control.yaml"))
    errors = []
    for number in range(200):
        barrier.wait(30)
        try:
            run_job.make_directory(config, "state_directory",
                                   os.path.join(root, "race%d" % number, "state"), 0o755)
        except run_job.ConfigError as error:
            errors.append(str(error))
    failures.put(errors[:3])


class DirectoryCreationTests(DeployTest):
    def test_directories_created_by_another_run_first_are_no_error(self):
        # Four processes create the same directories in step (a barrier before
        # each): the ones that come second must find them made, never fail.
        barrier = multiprocessing.Barrier(4)
        failures = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=create_in_step,
                                           args=(barrier, self.sandbox.root, failures))
                   for _ in range(4)]
        for worker in workers:
            worker.start()
        counts = [failures.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(10)
        self.assertEqual(counts, [[]] * 4)

    def test_make_directory_reports_what_is_in_the_way(self):
        config = run_job.GlobalConfig(source=self.sandbox.config)
        path = self.sandbox.path("made")
        self.assertTrue(run_job.make_directory(config, "state_directory", path, 0o755))
        self.assertFalse(run_job.make_directory(config, "state_directory", path, 0o755))
        write_file(self.sandbox.path("file"), "")
        with self.assertRaises(run_job.ConfigError) as caught:
            run_job.make_directory(config, "state_directory", self.sandbox.path("file"), 0o755)
        self.assertIn("is not a directory; remove it", str(caught.exception))
        with self.assertRaises(run_job.ConfigError) as caught:
            run_job.make_directory(config, "state_directory", self.sandbox.path("file", "x"), 0o755)
        self.assertIn("does not exist and cannot be created", str(caught.exception))

    def test_the_default_run_directory_is_persistent(self):
        self.assertEqual(run_job.GlobalConfig().run_directory,
                         "/var/lib/process-control-state/locks")

    def test_check_warns_about_a_run_directory_under_run(self):
        self.sandbox.write_config(directories={"run": "/run/process-control-test-%d" % os.getpid()})
        self.sandbox.make_directories()
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0, err)
        line = self.assert_lines(err, 1)[0]
        self.assertIn("process-control.yaml:4:1: warning: the run directory /run/process-control-test-",
                      line)
        self.assertIn("emptied at boot", line)
        group = grp.getgrgid(pwd.getpwnam(CURRENT_USER).pw_gid).gr_name
        self.assertIn("`d /run/process-control-test-%d 0755 %s %s -`"
                      % (os.getpid(), CURRENT_USER, group), line)

    def test_the_tmpfiles_example_matches_the_warning(self):
        with open(os.path.join(HERE, "examples", "tmpfiles.d", "process-control.conf")) as stream:
            lines = [line for line in stream.read().splitlines() if line and not line.startswith("#")]
        self.assertEqual(lines, [run_job.TMPFILES_LINE % ("/run/process-control", "process-control",
                                                          "process-control")])


# ---- 2. log_group --------------------------------------------------------------------

class LogGroupConfigTests(DeployTest):
    def test_an_unknown_group_is_a_located_error(self):
        self.sandbox.write_config(extra="log_group: no-such-group-here\n")
        self.sandbox.write_job("job", "command: /bin/true\n")
        for args in (["--check"], ["job"]):
            code, out, err = self.sandbox.run(*args)
            self.assertEqual(code, 78, args)
            line = self.assert_lines(err, 1)[0]
            self.assertIn("process-control.yaml:8:1: `log_group`: there is no group "
                          "'no-such-group-here'; create it (groupadd no-such-group-here)", line)
        code, out, err = self.sandbox.cron_generate("--check")
        self.assertEqual(code, 78)
        self.assertIn("process-control.yaml:8:1: `log_group`: there is no group", err)

    def test_log_group_loads(self):
        group = grp.getgrgid(os.getegid()).gr_name
        self.sandbox.write_config(extra="log_group: %s\n" % group)
        self.assertEqual(self.sandbox.load().log_group, group)
        self.assertIsNone(run_job.GlobalConfig().log_group)


@root_only
class LogGroupTests(DeployTest):
    def setUp(self):
        super().setUp()
        self.sandbox.write_config(user=UNPRIVILEGED, extra="log_group: %s\n" % LOG_GROUP)
        self.sandbox.write_job("hello", "command: /bin/echo hello\nschedule: '* * * * *'\n")

    def assert_log_directory(self, parts, mode):
        self.assertEqual(self.sandbox.owner(*parts), (UNPRIVILEGED, LOG_GROUP), parts)
        self.assertEqual(self.sandbox.mode(*parts), mode, parts)

    def test_logs_get_the_log_group(self):
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual((code, err), (0, ""))
        self.assertIn("created %s (owner nobody, mode 2750)" % self.sandbox.path("log"), out)
        self.assert_log_directory(("log",), 0o2750)
        # As cron runs it (the umask taking group bits away, as it may), and as root.
        code, out, err = self.sandbox.run("hello", python=SYSTEM_PYTHON, script=self.sandbox.copy_script(),
                                          preexec_fn=self.become_nobody_with_umask)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(self.sandbox.run("hello")[0], 0)
        self.assert_log_directory(("log", "hello"), 0o2750)
        logs = os.listdir(self.sandbox.path("log", "hello"))
        self.assertEqual(len(logs), 2)
        for name in logs:
            self.assert_log_directory(("log", "hello", name), 0o640)

    def become_nobody_with_umask(self):
        as_nobody(self.sandbox)["preexec_fn"]()
        os.umask(0o027)

    def test_an_existing_output_directory_is_brought_in_line(self):
        account = pwd.getpwnam(UNPRIVILEGED)
        for parts in (("log",), ("log", "hello")):
            os.mkdir(self.sandbox.path(*parts), 0o755)
            os.chown(self.sandbox.path(*parts), account.pw_uid, account.pw_gid)
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual((code, err), (0, ""))
        self.assert_log_directory(("log",), 0o2750)
        self.assert_log_directory(("log", "hello"), 0o2750)
        # Without log_group: the service user's group, 0750; a root run does it too.
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.assertEqual(self.sandbox.run("hello")[0], 0)
        nogroup = grp.getgrgid(account.pw_gid).gr_name
        self.assertEqual(self.sandbox.owner("log"), (UNPRIVILEGED, nogroup))
        self.assertEqual(self.sandbox.mode("log"), 0o750)
        self.assertEqual(self.sandbox.mode("log", "hello"), 0o750)

    def test_an_output_directory_that_is_not_the_service_users_is_left_alone(self):
        os.mkdir(self.sandbox.path("log"), 0o755)
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual(code, 0)
        self.assertEqual(self.sandbox.owner("log"), ("root", "root"))
        self.assertEqual(self.sandbox.mode("log"), 0o755)
        self.assertIn("cron-generate: warning: %s:3:1: the output directory %s is not writable by "
                      "the service user nobody" % (self.sandbox.config, self.sandbox.path("log")), err)


# ---- 3. what the service user will meet ------------------------------------------------

@root_only
class ServiceUserAccessTests(DeployTest):
    def test_the_access_read_from_modes_agrees_with_the_kernel(self):
        # Files of every owner, group and mode: what service_user_can reads
        # from the bits (as root here) against os.access as nobody itself.
        account = pwd.getpwnam(UNPRIVILEGED)
        owners = [(0, 0), (account.pw_uid, 0), (0, account.pw_gid), (account.pw_uid, account.pw_gid)]
        paths = []
        for index, mode in enumerate(range(0, 0o1000, 0o111 // 7 * 5)):
            for number, (uid, gid) in enumerate(owners):
                path = self.sandbox.path("f%d-%d" % (index, number))
                write_file(path, "")
                os.chown(path, uid, gid)
                os.chmod(path, mode)
                paths.append(path)
        masks = [os.R_OK, os.W_OK, os.X_OK, os.W_OK | os.X_OK, os.R_OK | os.W_OK | os.X_OK]
        expected = ["".join("1" if run_job.service_user_can(path, account, mask) else "0"
                            for mask in masks) for path in paths]
        probe = ("import os, sys\nfor path in sys.argv[1:]:\n"
                 "    print(''.join('1' if os.access(path, m) else '0' for m in %r))" % masks)
        out = subprocess.check_output([SYSTEM_PYTHON, "-c", probe] + paths,
                                      preexec_fn=as_nobody(self.sandbox)["preexec_fn"])
        self.assertEqual(out.decode().splitlines(), expected)

    def test_a_directory_the_service_user_cannot_write_fails_check_and_warns_in_cron_generate(self):
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.make_directories()  # root's, 0755: nobody cannot write them
        self.sandbox.write_job("job", "command: /bin/true\nschedule: '0 * * * *'\n")
        message = "the state directory %s is not writable by the service user nobody" % (
            self.sandbox.path("state"))
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_lines(self.without_crontab_warning(err), 3,
                          "process-control.yaml:5:1: " + message, "chown nobody ")
        # Someone else again (daemon's files, checked by nobody): from the modes.
        self.sandbox.write_config(user="daemon")
        code, out, err = self.sandbox.run("--check", **as_nobody(self.sandbox))
        self.assertEqual(code, 78)
        self.assert_lines(self.without_crontab_warning(err), 3,
                          "not writable by the service user daemon")
        self.sandbox.write_config(user=UNPRIVILEGED)
        for args in (["--check"], []):
            code, out, err = self.sandbox.cron_generate(*args)
            self.assertEqual(code, 0, args)
            if args == ["--check"]:
                err = self.without_crontab_warning(err)
            lines = self.assert_lines(err, 3, "cron-generate: warning: %s:5:1: %s"
                                      % (self.sandbox.config, message))
            self.assertTrue(all(line.startswith("cron-generate: warning: ") for line in lines))
        with open(self.sandbox.path("crontab")) as stream:
            self.assertIn("--job job", stream.read())  # scheduled all the same

    def test_a_directory_out_of_the_service_users_reach(self):
        private = self.sandbox.path("private")
        os.mkdir(private, 0o700)
        self.sandbox.write_config(user=UNPRIVILEGED, directories={"output": "private/log"})
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_lines(err, 1, "process-control.yaml:3:1: the output directory %s/log would be out "
                          "of the service user's reach: %s is not searchable" % (private, private))

    def test_a_program_in_a_directory_out_of_reach_is_not_called_missing(self):
        private = self.sandbox.path("private")
        os.mkdir(private, 0o700)
        write_file(os.path.join(private, "tool"), "#!/bin/sh\n", 0o755)
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.make_directories()
        for name in ("log", "run", "state"):
            os.chown(self.sandbox.path(name), pwd.getpwnam(UNPRIVILEGED).pw_uid, -1)
        self.sandbox.write_job("job", "command: %s\n" % os.path.join(private, "tool"))
        code, out, err = self.sandbox.run("--check")  # as root, checking as nobody
        self.assertEqual(code, 78, err)
        self.assert_lines(err, 1, "the service user nobody cannot reach %s: %s is not searchable"
                          % (os.path.join(private, "tool"), private))

    def test_a_program_only_root_can_execute(self):
        tool = self.sandbox.path("root-tool")
        write_file(tool, "#!/bin/sh\n", 0o700)
        self.sandbox.write_config(user=UNPRIVILEGED)
        self.sandbox.write_job("job", "command: %s\nschedule: '0 * * * *'\n" % tool)
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_lines(self.without_crontab_warning(err), 1,
                          "job.yaml:1:1: `command`: the service user nobody cannot execute %s"
                          % tool)
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual(code, 0, err)
        self.assert_lines(err, 1, "cron-generate: warning: ", "cannot execute %s" % tool)


class CommandCheckTests(DeployTest):
    """As the current user, who is the service user here (os.access decides)."""

    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.bin = self.sandbox.path("bin")
        os.mkdir(self.bin)
        write_file(os.path.join(self.bin, "tool"), "#!/bin/sh\n", 0o755)
        write_file(os.path.join(self.bin, "plain"), "", 0o644)

    def check(self, job_text, config_extra=""):
        self.sandbox.write_config(extra=config_extra)
        self.sandbox.write_job("job", job_text)
        return self.sandbox.run("--check")

    def test_programs_that_exist_pass(self):
        for text in ("command: /bin/true\n", "command: echo hi\n", "command: [echo, /bin/echo x]\n",
                     "command: tool\nenvironment:\n  PATH: %s:/usr/bin\n" % self.bin):
            self.assertEqual(self.check(text), (0, "", ""), text)
        self.assertEqual(self.check("command: tool\n", "cron_environment:\n  PATH: %s\n" % self.bin),
                         (0, "", ""))

    def test_a_missing_program_fails_at_its_key(self):
        code, out, err = self.check("description: d\ncommand: /no/such/program\n")
        self.assertEqual(code, 78)
        self.assert_lines(err, 1, "job.yaml:2:1: `command`: /no/such/program does not exist")

    def test_a_bare_name_is_searched_in_the_path_the_job_will_have(self):
        # tool is in PATH here, but cron's default is /usr/bin:/bin.
        self.sandbox.write_job("job", "command: tool\n")
        code, out, err = self.sandbox.run("--check", environ={"PATH": self.bin + ":/usr/bin:/bin"})
        self.assertEqual(code, 78)
        self.assert_lines(err, 1, "job.yaml:1:1: `command`: program tool is not found in PATH "
                          "/usr/bin:/bin, the PATH the job has under cron")
        code, out, err = self.check("command: tool\nenvironment:\n  PATH: /usr/bin\n",
                                    "cron_environment:\n  PATH: %s\n" % self.bin)
        self.assertEqual(code, 78)  # the job's own PATH wins
        self.assertIn("not found in PATH /usr/bin,", err)

    def test_a_program_that_cannot_be_executed(self):
        plain = os.path.join(self.bin, "plain")
        code, out, err = self.check("command: /bin/true\nslow_start_command:\n  - /bin/true\n  - %s\n" % plain)
        self.assertEqual(code, 78)
        if IS_ROOT:  # root may execute nothing without an x bit either
            self.assert_lines(err, 1, "job.yaml:2:1: `slow_start_command`: the service user %s cannot "
                              "execute %s; chmod a+x" % (CURRENT_USER, plain))
        code, out, err = self.check("command: plain\nenvironment:\n  PATH: %s\n" % self.bin)
        self.assertEqual(code, 78)
        self.assertIn("cannot execute %s" % plain, err)
        code, out, err = self.check("command: %s\n" % self.bin)
        self.assertEqual(code, 78)
        self.assertIn("is a directory, not a program", err)

    def test_a_script_whose_interpreter_cannot_run(self):
        script = os.path.join(self.bin, "script")
        for first_line, problem in (("#!/no/such/interpreter -x", "/no/such/interpreter does "
                                     "not exist"),
                                    ("#!%s" % os.path.join(self.bin, "plain"), "cannot execute"),
                                    ("#!", "names no interpreter")):
            with self.subTest(first_line=first_line):
                write_file(script, first_line + "\necho hi\n", 0o755)
                code, out, err = self.check("command: %s\n" % script)
                self.assertEqual(code, 78)
                self.assert_lines(err, 1, "`command`: %s" % script, problem)
        write_file(script, "#!/bin/sh\necho hi\n", 0o755)  # a working one passes
        self.assertEqual(self.check("command: %s\n" % script), (0, "", ""))

    def test_a_directory_not_even_root_can_create(self):
        self.sandbox.write_config(directories={"output": "/proc/process-control-test"})
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_lines(err, 1, "the output directory /proc/process-control-test cannot be "
                          "created, not even by root: /proc is in /proc, a kernel filesystem")

    def test_cron_generate_warns_for_scheduled_jobs_and_still_schedules_them(self):
        self.sandbox.write_job("missing", "command: /no/such/program\nschedule: '0 * * * *'\n")
        self.sandbox.write_job("off", "command: /no/such/program\nschedule: '0 * * * *'\n"
                               "disabled: true\n")
        code, out, err = self.sandbox.cron_generate()
        self.assertEqual(code, 0, err)
        self.assert_lines(err, 1, "cron-generate: warning: %s:1:1: `command`: /no/such/program does "
                          "not exist" % os.path.join(os.path.realpath(self.sandbox.jobs), "missing.yaml"))
        with open(self.sandbox.path("crontab")) as stream:
            self.assertIn("--job missing", stream.read())


# ---- 4. --check's warnings -----------------------------------------------------------

class ShellSyntaxTests(DeployTest):
    def test_shell_syntax_outside_quotes(self):
        found = {
            "/bin/echo hi > /tmp/x": ">", "/bin/cat < in": "<", "/usr/bin/foo | grep x": "|",
            "/bin/a && /bin/b": "&&", "/bin/a; /bin/b": ";", "/bin/a &": "&",
            "/bin/echo $HOME": "$HOME", "/bin/echo \"$HOME\"": "$HOME", "/bin/echo ${X}": "${",
            "/bin/echo `date`": "`", "/bin/echo \"`date`\"": "`", "/bin/ls *.log": "*",
            "/bin/ls file?": "?", "/bin/ls [ab]": "[", "/bin/a 2>>log": ">>", "/bin/a || b": "||",
        }
        for line, syntax in found.items():
            self.assertEqual(run_job.shell_syntax(line), syntax, line)
        for line in ("/bin/echo '>'", "/bin/echo \"a|b;c&d*\"", "/bin/echo '$HOME'",
                     "/bin/echo \\$HOME", "/bin/echo a\\>b", "/bin/echo 5$", "/bin/echo a=b",
                     "/bin/echo \"it's\"", "/bin/echo 'say \"$x\"'", "/usr/bin/env A=1 /bin/true"):
            self.assertIsNone(run_job.shell_syntax(line), line)

    def test_check_warns_and_passes(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("job", "timeout: 5m\ncommand:\n  - /bin/true\n  - /bin/echo hi > /tmp/out\n")
        self.sandbox.write_job("shell", "command: /bin/sh -c 'echo $HOME > /tmp/out'\n"
                               "slow_start_command: bash -c \"a | b\"\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0)
        self.assert_lines(err, 1, "job.yaml:2:1: warning: `command`: `>` is passed to /bin/echo "
                          "literally, without a shell; to use the shell write /bin/sh -c '...'")

    def test_a_bare_number_timeout_below_a_minute(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("job", "command: /bin/true\ntimeout: 30\n")
        for quiet in ("30s", "90", "0", "10m", "1.5h"):
            self.sandbox.write_job("quiet", "command: /bin/true\ntimeout: %s\n" % quiet)
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0)
        self.assert_lines(err, 1, "job.yaml:2:1: warning: `timeout: 30`: the original process-control "
                          "counted minutes: 30 now means 30 seconds; write 30s, or 30m for 30 minutes")
        self.sandbox.write_job("job", "command: /bin/true\ntimeout: '20'\n")
        code, out, err = self.sandbox.run("--check")
        self.assert_lines(err, 1, "job.yaml:2:1: warning: `timeout: 20`")
        self.sandbox.write_job("job", "command: /bin/true\n")
        self.sandbox.write_job("other", "command: /bin/true\n")  # the same warning: once
        self.sandbox.write_config(extra="default_job_config:\n  timeout: 45\n")
        code, out, err = self.sandbox.run("--check")
        self.assert_lines(err, 1, "process-control.yaml:9:3: warning: `timeout: 45`")


class LoggingHandlerCheckTests(DeployTest):
    def write_handler(self, handler_class, key, value):
        self.sandbox.write_config(extra=(
            "logging:\n"
            "  version: 1\n"
            "  handlers:\n"
            "    events:\n"
            "      class: %s\n"
            "      %s: %s\n"
            "  loggers:\n"
            "    process-control:\n"
            "      handlers: [events]\n" % (handler_class, key, value)))

    def check(self):
        if not os.path.isdir(self.sandbox.path("log")):
            self.sandbox.make_directories()
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0, err)
        return err

    def test_a_syslog_socket_that_does_not_exist(self):
        missing = self.sandbox.path("no-syslog")
        self.write_handler("logging.handlers.SysLogHandler", "address", missing)
        self.assert_lines(self.check(), 1, "process-control.yaml:13:7: warning: `logging`: handler "
                          "events: the syslog socket %s does not exist" % missing)
        write_file(missing, "")
        self.assert_lines(self.check(), 1, "%s is not a socket" % missing)

    def test_a_syslog_socket_that_exists_and_other_addresses(self):
        path = self.sandbox.path("syslog")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(listener.close)
        listener.bind(path)
        os.chmod(path, 0o666)
        self.write_handler("logging.handlers.SysLogHandler", "address", path)
        self.assertEqual(self.check(), "")
        self.write_handler("logging.handlers.SysLogHandler", "address", "[localhost, 514]")
        self.assertEqual(self.check(), "")

    def test_a_file_handler_whose_directory_is_missing(self):
        self.write_handler("logging.FileHandler", "filename", self.sandbox.path("nowhere", "events.log"))
        self.assert_lines(self.check(), 1, "handler events: the directory %s does not exist"
                          % self.sandbox.path("nowhere"))
        self.write_handler("logging.handlers.WatchedFileHandler", "filename", self.sandbox.path("events.log"))
        self.assertEqual(self.check(), "")

    @root_only
    def test_a_file_handler_the_service_user_cannot_write(self):
        self.write_handler("logging.FileHandler", "filename", self.sandbox.path("events.log"))
        with open(self.sandbox.config) as stream:
            text = stream.read().replace("user: root\n", "user: %s\n" % UNPRIVILEGED)
        write_file(self.sandbox.config, text)
        self.sandbox.make_directories()
        for name in ("log", "run", "state"):
            os.chown(self.sandbox.path(name), pwd.getpwnam(UNPRIVILEGED).pw_uid, -1)
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0, err)
        self.assert_lines(err, 1, "handler events: the service user nobody cannot create %s"
                          % self.sandbox.path("events.log"))


if __name__ == "__main__":
    unittest.main()
