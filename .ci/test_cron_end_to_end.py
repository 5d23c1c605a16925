"""End to end: Debian's cron runs a job that cron-generate scheduled.

Run by .ci/run as root (about a minute); not part of `make test`. It installs
the cron package when missing, creates a service user, installs both scripts
into a temporary prefix, generates /etc/cron.d/process-control for a job
scheduled `* * * * *`, starts cron when it is not running, and waits for the
run's log and recorded state. Everything it made is removed afterwards.
"""

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
CRONTAB = "/etc/cron.d/process-control"
SERVICE_USER = "pc-e2e"
WAIT_SECONDS = 70


def sh(*command):
    subprocess.check_call(list(command), stdout=subprocess.DEVNULL)


def ensure_cron_installed():
    if os.path.exists("/usr/sbin/cron"):
        return
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.check_call(["apt-get", "update", "-qq"], env=environment, stdout=subprocess.DEVNULL)
    subprocess.check_call(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "cron"],
                          env=environment, stdout=subprocess.DEVNULL)


def cron_is_running():
    return subprocess.call(["pgrep", "-x", "cron"], stdout=subprocess.DEVNULL) == 0


@unittest.skipUnless(os.geteuid() == 0, "the cron end-to-end test needs root "
                     "(it installs cron and writes /etc/cron.d)")
class CronEndToEnd(unittest.TestCase):
    def setUp(self):
        ensure_cron_installed()
        self.created_user = False
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER)
            self.created_user = True
        self.root = tempfile.mkdtemp(prefix="pc-e2e-")
        os.chmod(self.root, 0o755)
        self.saved_crontab = None
        if os.path.exists(CRONTAB):
            self.saved_crontab = os.path.join(self.root, "saved-crontab")
            shutil.copy2(CRONTAB, self.saved_crontab)
        self.started_cron = False

    def tearDown(self):
        if self.started_cron:
            subprocess.call(["pkill", "-x", "cron"])
        if self.saved_crontab:
            shutil.copy2(self.saved_crontab, CRONTAB)
        elif os.path.exists(CRONTAB):
            os.unlink(CRONTAB)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.created_user:
            subprocess.call(["userdel", SERVICE_USER])

    def test_cron_runs_the_generated_entry(self):
        user = pwd.getpwnam(SERVICE_USER)
        sh("make", "-s", "-C", SOURCE, "install", "DESTDIR=" + self.root)
        bindir = os.path.join(self.root, "usr", "bin")
        jobs = os.path.join(self.root, "jobs")
        os.mkdir(jobs, 0o755)
        for name in ("log", "run", "state"):
            path = os.path.join(self.root, name)
            os.mkdir(path, 0o755)
            os.chown(path, user.pw_uid, user.pw_gid)
        config = os.path.join(self.root, "process-control.yaml")
        with open(config, "w") as handle:
            handle.write(
                "user: %(user)s\njob_directory: %(root)s/jobs\noutput_directory: %(root)s/log\n"
                "run_directory: %(root)s/run\nstate_directory: %(root)s/state\n"
                "runner_path: %(bin)s/run-job\noutput_crontab: %(crontab)s\n"
                "cron_environment:\n  PROCESS_CONTROL_CONFIG: %(config)s\n"
                % {"user": SERVICE_USER, "root": self.root, "bin": bindir,
                   "crontab": CRONTAB, "config": config})
        os.chmod(config, 0o644)
        with open(os.path.join(jobs, "heartbeat.yaml"), "w") as handle:
            handle.write("description: Proves cron runs us\nschedule: '* * * * *'\n"
                         "command: /bin/sh -c 'echo ran-by-cron; id -un'\n")
        os.chmod(os.path.join(jobs, "heartbeat.yaml"), 0o644)

        subprocess.check_call(["/usr/bin/python3", os.path.join(bindir, "cron-generate"),
                               "--config", config])
        with open(CRONTAB) as handle:
            crontab = handle.read()
        self.assertIn("* * * * * %s %s/run-job --job heartbeat --scheduled '* * * * *'\n"
                      % (SERVICE_USER, bindir), crontab)

        if not cron_is_running():
            sh("/usr/sbin/cron")
            self.started_cron = True
        deadline = time.time() + WAIT_SECONDS
        logs = []
        while time.time() < deadline:
            logs = glob.glob(os.path.join(self.root, "log", "heartbeat", "heartbeat-*.log"))
            states = os.listdir(os.path.join(self.root, "state"))
            if logs and states:
                break
            time.sleep(1)
        self.assertTrue(logs, "cron did not run the job within %d s; crontab:\n%s"
                        % (WAIT_SECONDS, crontab))
        time.sleep(1)  # the run may still be writing its footer and state
        with open(logs[0], "rb") as handle:
            log = handle.read()
        self.assertIn(b"ran-by-cron", log)
        self.assertIn(SERVICE_USER.encode(), log)
        self.assertTrue(os.listdir(os.path.join(self.root, "state")), "no state recorded")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("cron end-to-end: %d passed, %d failed, %d skipped"
          % (result.testsRun - failed - len(result.skipped), failed, len(result.skipped)))
    sys.exit(1 if failed else 0)
