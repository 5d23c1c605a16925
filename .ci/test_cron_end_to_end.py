"""End to end: a new server, as an operator sets it up, run by Debian's cron.

Run by .ci/run as root (about three minutes); not part of `make test`. It
follows the README's deployment steps on this machine itself: `make install`
into /usr, `useradd --system process-control`, job files cloned from a git
repository into /var/lib/process-control, /etc/process-control.yaml,
`run-job --check` and `cron-generate` as root; then it starts cron and waits
for cron's own runs (`* * * * *` jobs, no fake time): the first runs succeed,
as the service user, with their logs and state; a job disabled afterwards is
skipped by its stale crontab line, recorded, and reported until cron-generate
runs again; `--check` as root fails when the service user cannot write a
directory. Last, `make uninstall` leaves none of the installed files. The cron
it started is stopped by its pid; everything it made is removed.
"""

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "process-control"
CONFIG = "/etc/process-control.yaml"
JOBS = "/var/lib/process-control"
LOGS = "/var/log/process-control"
STATE = "/var/lib/process-control-state"
CRONTAB = "/etc/cron.d/process-control"
MADE_HERE = "# made by process-control's end-to-end test\n"
DEPLOYMENT = (CONFIG, JOBS, LOGS, STATE, CRONTAB)
MINUTE_WAIT = 75  # cron runs at each minute's start; a little slack


def sh(*command, **options):
    options.setdefault("timeout", 600)  # apt-get at the most; a hang fails the test
    subprocess.check_call(list(command), stdout=subprocess.DEVNULL, **options)


def run(*command):
    """(exit code, stdout, stderr) of COMMAND, as text."""
    process = subprocess.run(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=60)
    return process.returncode, process.stdout, process.stderr


def write(path, text, mode=0o644):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def ensure_cron_installed():
    if os.path.exists("/usr/sbin/cron"):
        return
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sh("apt-get", "update", "-qq", env=environment)
    sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", "cron", env=environment)


def cron_is_running():
    return subprocess.call(["pgrep", "-x", "cron"], stdout=subprocess.DEVNULL) == 0


def remove_deployment():
    for path in DEPLOYMENT:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def previous_deployment():
    """A deployment this test did not make, which it must not overwrite."""
    try:
        with open(CONFIG) as handle:
            if handle.read().startswith(MADE_HERE):
                return None  # left by an interrupted run of this test
    except FileNotFoundError:
        pass
    found = [path for path in DEPLOYMENT if os.path.lexists(path)]
    try:
        pwd.getpwnam(USER)
        found.append("the user " + USER)
    except KeyError:
        pass
    return ", ".join(found) or None


def installed_paths(destdir):
    """The files and directories `make install DESTDIR=DESTDIR` puts there,
    as paths under /: ([files], [directories])."""
    files, directories = [], []
    for directory, subdirectories, names in os.walk(destdir):
        for name in names:
            files.append(os.path.join("/", os.path.relpath(os.path.join(directory, name), destdir)))
        for name in subdirectories:
            directories.append(os.path.join("/", os.path.relpath(os.path.join(directory, name),
                                                                 destdir)))
    return sorted(files), sorted(directories)


def read_state(name):
    with open(os.path.join(STATE, name + ".state")) as handle:
        return json.loads(handle.read())


def logs_of(name):
    return sorted(glob.glob(os.path.join(LOGS, name, name + "-*.log")))


def wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("after %d s: %s" % (seconds, what))


def state_says(name, *words):
    def check():
        try:
            with open(os.path.join(STATE, name + ".state")) as handle:
                text = handle.read()
        except OSError:
            return False
        return all(word in text for word in words)
    return check


@unittest.skipUnless(os.geteuid() == 0, "the new-server test needs root: it installs into /usr, "
                     "adds a user and runs cron")
class NewServer(unittest.TestCase):
    def setUp(self):
        ensure_cron_installed()
        found = previous_deployment()
        if found:
            self.fail("this machine already has a process-control deployment (%s); the "
                      "test would overwrite it" % found)
        remove_deployment()
        self.scratch = tempfile.mkdtemp(prefix="pc-new-server-")
        self.addCleanup(shutil.rmtree, self.scratch)
        self.addCleanup(remove_deployment)
        self.cron = None

    def tearDown(self):
        if self.cron is not None:
            self.cron.terminate()
            self.cron.wait(10)
        subprocess.call(["make", "-s", "-C", SOURCE, "uninstall"], stdout=subprocess.DEVNULL)
        if subprocess.call(["id", USER], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            subprocess.call(["userdel", USER])

    def install(self):
        """make install into the system; returns the files and the new
        directories it put there."""
        preview = os.path.join(self.scratch, "preview")
        sh("make", "-s", "-C", SOURCE, "install", "DESTDIR=" + preview)
        files, directories = installed_paths(preview)
        self.assertIn("/usr/bin/run-job", files)
        self.assertIn("/usr/bin/cron-generate", files)
        present = [path for path in files if os.path.lexists(path)]
        self.assertEqual(present, [], "installed files already on this machine")
        # What install creates, the directories it makes included, uninstall removes.
        files += [path for path in directories if not os.path.lexists(path)]
        sh("make", "-s", "-C", SOURCE, "install")
        with open("/usr/bin/run-job") as handle:
            self.assertEqual(handle.readline(), "#!/usr/bin/python3 -I\n")
        return files

    def deploy_job_files(self):
        """The job directory is a clone of the developers' repository."""
        repository = os.path.join(self.scratch, "jobs.git")
        work = os.path.join(self.scratch, "jobs-work")
        os.mkdir(work)
        write(os.path.join(work, "hello.yaml"),
              "description: Says hello every minute\nschedule: '* * * * *'\n"
              "command: /bin/sh -c 'echo hello from cron; id -un'\n")
        write(os.path.join(work, "ticker.yaml"),
              "schedule: '* * * * *'\ncommand: date\n")
        write(os.path.join(work, "nightly.yaml"),
              "schedule: '0 3 * * *'\ncommand: /bin/true\ntimeout: 1h\n")
        git = ["git", "-c", "user.name=ops", "-c", "user.email=ops@example.invalid"]
        sh("git", "init", "-q", work)
        sh(*(git + ["-C", work, "add", "."]))
        sh(*(git + ["-C", work, "commit", "-q", "-m", "jobs"]))
        sh("git", "clone", "-q", "--bare", work, repository)
        sh("git", "clone", "-q", repository, JOBS)
        os.chmod(JOBS, 0o755)
        return work, git, repository

    def test_new_server(self):
        files = self.install()
        sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER)
        account = pwd.getpwnam(USER)
        work, git, repository = self.deploy_job_files()
        write(CONFIG, MADE_HERE + "user: %s\n" % USER)

        # Before the first cron-generate: the directories are missing (it makes
        # them), and so is the crontab, which is all that --check says.
        code, out, err = run("run-job", "--check")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("no crontab installed", err)
        code, out, err = run("cron-generate")
        self.assertEqual(code, 0, err)
        with open(CRONTAB) as handle:
            crontab = handle.read()
        self.assertIn("* * * * * %s /usr/bin/run-job --job hello --scheduled '* * * * *'\n"
                      % USER, crontab)
        for directory in (LOGS, STATE):
            self.assertEqual(os.stat(directory).st_uid, account.pw_uid, directory)

        if not cron_is_running():
            self.cron = subprocess.Popen(["/usr/sbin/cron", "-f"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        wait_for(lambda: state_says("hello", '"success"')() and state_says("ticker", '"success"')(),
                 MINUTE_WAIT, "cron's first runs of hello and ticker did not succeed; crontab:\n"
                 + crontab)
        time.sleep(0.5)  # the state is written after the log's footer: both are there
        for name in ("hello", "ticker"):
            self.assertEqual(read_state(name)["status"], "success")
            for path in logs_of(name) + [os.path.join(STATE, name + ".state")]:
                self.assertEqual(os.stat(path).st_uid, account.pw_uid, path)
        with open(logs_of("hello")[0], "rb") as handle:
            log = handle.read()
        self.assertIn(b"hello from cron", log)
        self.assertIn(USER.encode(), log)

        # A developer disables ticker; nobody runs cron-generate.
        write(os.path.join(work, "ticker.yaml"), "disabled: true\nschedule: '* * * * *'\n"
                                                 "command: date\n")
        sh(*(git + ["-C", work, "commit", "-q", "-am", "disable ticker"]))
        sh("git", "-C", work, "push", "-q", repository, "HEAD")
        sh("git", "-C", JOBS, "pull", "-q")
        with open(os.path.join(JOBS, "ticker.yaml")) as handle:
            self.assertIn("disabled: true", handle.read())
        ticker_logs, hello_logs = logs_of("ticker"), logs_of("hello")
        wait_for(state_says("ticker", "disabled"), MINUTE_WAIT,
                 "the stale crontab line's run of the disabled ticker was not recorded as skipped")
        wait_for(lambda: len(logs_of("hello")) > len(hello_logs), 10, "hello did not run again")
        self.assertEqual(logs_of("ticker"), ticker_logs, "the disabled job ran")
        self.assertEqual(read_state("ticker")["status"], "success", "the last real run")
        with open(os.path.join(STATE, "ticker.history")) as handle:
            self.assertIn("disabled", handle.read().splitlines()[-1])

        code, out, err = run("run-job", "--status")
        self.assertEqual(code, 0, err)
        self.assertIn("crontab: out of date (disabled, still scheduled '* * * * *'); run "
                      "cron-generate", out)
        code, out, err = run("run-job", "--check")
        self.assertEqual(code, 0, err)
        self.assertIn("ticker", err)
        self.assertIn("run cron-generate", err)
        code, out, err = run("cron-generate", "--check")
        self.assertEqual(code, 0, err)
        self.assertIn("out of date", err)

        # The service user can no longer write the log directory.
        os.chown(LOGS, 0, 0)
        code, out, err = run("run-job", "--check")
        self.assertEqual(code, 78, err)
        self.assertIn(LOGS, err)
        code, out, err = run("cron-generate", "--check")
        self.assertEqual(code, 0, err)
        self.assertIn("warning", err)
        self.assertIn(LOGS, err)
        os.chown(LOGS, account.pw_uid, account.pw_gid)

        code, out, err = run("cron-generate")
        self.assertEqual(code, 0, err)
        with open(CRONTAB) as handle:
            self.assertIn("# Skipping disabled job ticker\n", handle.read())
        code, out, err = run("run-job", "--status")
        self.assertEqual(code, 0, err)
        self.assertNotIn("crontab: out of date", out)
        self.assertIn("last skipped start", out)  # what happened stays recorded

        if self.cron is not None:
            self.cron.terminate()
            self.cron.wait(10)
            self.cron = None
        sh("make", "-s", "-C", SOURCE, "uninstall")
        self.assertEqual([path for path in files if os.path.lexists(path)], [],
                         "make uninstall left these")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("cron end-to-end: %d passed, %d failed, %d skipped"
          % (result.testsRun - failed - len(result.skipped), failed, len(result.skipped)))
    sys.exit(1 if failed else 0)
