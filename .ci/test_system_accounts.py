"""Behaviours that need accounts of their own: run by .ci/run as root, not by
`make test` (they add users and groups to the machine, and remove them).

- cron-generate and run-job refuse a service user that is root under another
  name;
- run-job, started as root, gives the job the service user's supplementary
  groups.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user, as on a server


def sh(*command):
    subprocess.check_call(list(command), stdout=subprocess.DEVNULL)


def write(path, text, mode=0o644):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


@unittest.skipUnless(os.geteuid() == 0, "adds users and groups: needs root")
class SystemAccountTests(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="pc-accounts-")
        os.chmod(self.root, 0o755)
        self.addCleanup(shutil.rmtree, self.root)
        self.jobs = os.path.join(self.root, "jobs")
        os.mkdir(self.jobs, 0o755)
        self.config = os.path.join(self.root, "process-control.yaml")
        for name in ("run_job.py", "cron_generate.py"):
            shutil.copy(os.path.join(SOURCE, name), self.root)
            os.chmod(os.path.join(self.root, name), 0o644)

    def account(self, name, *options):
        sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
           *(list(options) + [name]))
        # --force: a uid-0 alias always "is used by a process" (root's). Without
        # --remove, nothing but the passwd and shadow entries goes.
        self.addCleanup(lambda: self.assertEqual(
            subprocess.call(["userdel", "--force", name]), 0, "could not remove " + name))

    def group(self, name):
        sh("groupadd", "--system", name)
        self.addCleanup(subprocess.call, ["groupdel", name])

    def write_config(self, user):
        write(self.config, "user: %s\njob_directory: jobs\noutput_directory: log\n"
                           "run_directory: run\nstate_directory: state\n"
                           "output_crontab: %s/process-control\n" % (user, self.root))

    def run_script(self, script, *arguments):
        """(exit code, stderr) of SCRIPT beside the config, run with --config."""
        process = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(self.root, script), "--config", self.config]
            + list(arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=60)
        return process.returncode, err

    def test_cron_generate_refuses_root_under_another_name(self):
        # A locked account with no shell: it exists only for this test.
        self.account("pc-root-alias", "--non-unique", "--uid", "0", "--gid", "0")
        self.write_config("pc-root-alias")
        write(os.path.join(self.jobs, "a.yaml"), "command: /bin/true\nschedule: '0 1 * * *'\n")
        code, err = self.run_script("cron_generate.py")
        self.assertEqual(code, 77, err)
        self.assertIn(b"root under another name", err)
        self.assertFalse(os.path.exists(os.path.join(self.root, "process-control")))

    def test_run_job_refuses_root_under_another_name(self):
        self.account("pc-root-alias", "--non-unique", "--uid", "0", "--gid", "0")
        self.write_config("pc-root-alias")
        marker = os.path.join(self.root, "ran")
        write(os.path.join(self.jobs, "a.yaml"), "command: /bin/touch %s\n" % marker)
        refusal = (b"user 'pc-root-alias' is root under another name; jobs run as root "
                   b"only with an explicit 'user: root'\n")
        for arguments, code in ((["a"], 77), (["--kill-job", "a"], 77), (["--status"], 77),
                                (["--check"], 78)):
            with self.subTest(arguments=arguments):
                got, err = self.run_script("run_job.py", *arguments)
                self.assertEqual(got, code, err)
                self.assertEqual(err.count(b"\n"), 1, err)
                self.assertTrue(err.startswith(b"run-job: %s:1:1: " % self.config.encode()), err)
                self.assertTrue(err.endswith(refusal), err)
        self.assertFalse(os.path.exists(marker))
        for name in ("log", "run", "state"):  # refused before creating anything
            self.assertFalse(os.path.exists(os.path.join(self.root, name)), name)

    def test_the_job_gets_the_service_users_supplementary_groups(self):
        self.group("pc-extra")
        self.account("pc-groups", "--groups", "pc-extra")
        self.write_config("pc-groups")
        report = os.path.join(self.root, "report")
        os.mkdir(report)
        os.chmod(report, 0o777)
        write(os.path.join(self.jobs, "ids.yaml"),
              "command: /bin/sh -c 'id -Gn > %s/groups'\n" % report)
        code, err = self.run_script("run_job.py", "ids")
        self.assertEqual(code, 0, err)
        with open(os.path.join(report, "groups")) as handle:
            groups = handle.read().split()
        self.assertIn("pc-extra", groups)
        self.assertNotIn("root", groups)
        self.assertEqual(os.stat(os.path.join(report, "groups")).st_uid,
                         pwd.getpwnam("pc-groups").pw_uid)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("system accounts: %d passed, %d failed, %d skipped"
          % (result.testsRun - failed - len(result.skipped), failed, len(result.skipped)))
    sys.exit(1 if failed else 0)
