"""The files run-job opens where others may write (state, history, lock, the
per-job log directory, the installed crontab), replaced by what a hostile job
or a careless operator may put there: a FIFO, a directory, a device, a symlink
to /dev/zero or to a file elsewhere, a 100 MB file. Real run-job and
cron-generate processes, started together, each with a timeout and a memory
limit: a hang or an endless read fails the test instead of blocking it."""

import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import RUN_JOB_CODE, read_history  # noqa: E402
import test_cron_generate  # noqa: E402
from test_cron_generate import IS_ROOT, service_user  # noqa: E402

RUN_JOB = RUN_JOB_CODE  # see test_config.compiled_script
CRON_GENERATE = os.path.join(HERE, "cron_generate.py")
TIMEOUT = 30  # seconds: far beyond any run here, so only a hang reaches it
MEMORY_LIMIT = 1 << 30  # address space: reading /dev/zero without end fails fast
HUGE = 100 << 20
SET_ASIDE_NAME = r"\.bad-\d{8}-\d{6}$"
EVERY_5 = "*/5 * * * *"


def on_alarm(number, frame):
    raise AssertionError("hung")


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def hostile_kinds(*extra):
    """The replacements that can be made here: a device node needs root."""
    kinds = ["fifo", "directory", "zero", "elsewhere", "huge"] + list(extra)
    return kinds + ["device"] if IS_ROOT else kinds


class HostileBox(test_cron_generate.Sandbox):
    """cron-generate's sandbox with the output, run and state directories
    made as cron-generate makes them, a file outside them that nothing may
    change, and a directory that jobs write their marks into."""

    def __init__(self, **settings):
        test_cron_generate.Sandbox.__init__(self, **settings)
        account = run_job.pwd.getpwnam(service_user())
        for key in ("output_directory", "run_directory", "state_directory"):
            os.mkdir(self.settings[key], 0o750 if key == "output_directory" else 0o755)
            if IS_ROOT:
                os.chown(self.settings[key], account.pw_uid, account.pw_gid)
        self.outside = os.path.join(self.root, "outside")
        self.write(self.outside, "not for run-job\n")
        self.outside_directory = os.path.join(self.root, "outside.d")
        os.mkdir(self.outside_directory, 0o777)
        os.chmod(self.outside_directory, 0o777)
        self.marks = os.path.join(self.root, "marks")
        os.mkdir(self.marks)
        os.chmod(self.marks, 0o777)

    def touching_job(self, name):
        self.job(name, "command: /usr/bin/touch %s\nschedule: '%s'\n"
                 % (self.mark(name), EVERY_5))

    def mark(self, name):
        return os.path.join(self.marks, name)

    def state(self, name):
        return os.path.join(self.settings["state_directory"], name + ".state")

    def history(self, name):
        return os.path.join(self.settings["state_directory"], name + ".history")

    def lock(self, name):
        return os.path.join(self.settings["run_directory"], name + ".lock")

    def log_directory(self, name):
        return os.path.join(self.settings["output_directory"], name)

    def plant(self, kind, path):
        """Put KIND in place of the file PATH, as a job (the service user) would."""
        self.make_file(kind, path)
        if IS_ROOT:
            account = run_job.pwd.getpwnam(service_user())
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def make_file(self, kind, path):
        if kind == "fifo":
            os.mkfifo(path, 0o666)
        elif kind == "directory":
            os.mkdir(path)
        elif kind == "zero":
            os.symlink("/dev/zero", path)
        elif kind == "elsewhere":
            os.symlink(self.outside, path)
        elif kind == "elsewhere_directory":
            os.symlink(self.outside_directory, path)
        elif kind == "huge":
            with open(path, "wb") as huge:
                huge.truncate(HUGE)  # sparse: 100 MB to read, none on disk
        elif kind == "device":
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero's
        elif kind == "file":
            self.write(path, "a file\n")
        elif kind == "garbage":
            self.write(path, "{not a record\n")
        else:
            raise ValueError(kind)

    def start(self, program, *arguments, config=None):
        return subprocess.Popen(
            [sys.executable, program, "--config", config or self.config] + list(arguments),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=self.root, preexec_fn=limit_memory)


def finish(test, process):
    """(exit code, stdout, stderr) of PROCESS; a hang or a traceback fails TEST."""
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        test.fail("%s hung" % " ".join(process.args[1:]))
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    test.assertNotIn("Traceback", err, " ".join(process.args[1:]))
    test.assertNotIn("MemoryError", err, " ".join(process.args[1:]))
    for line in err.splitlines():
        test.assertRegex(line, r"^(run-job|cron-generate): ", " ".join(process.args[1:]))
    return process.returncode, out, err


def finish_all(test, processes):
    return [finish(test, process) for process in processes]


def status_blocks(out):
    """{job name: its --status lines} from --status output."""
    blocks, name = {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split(" ", 1)[0]
        blocks.setdefault(name, []).append(line.strip())
    return blocks


def kind_text(kind):
    """How run-job names what KIND put there."""
    return {"fifo": "is a FIFO, not a regular file",
            "directory": "is a directory, not a regular file",
            "zero": "is a symlink, not a regular file",
            "elsewhere": "is a symlink, not a regular file",
            "elsewhere_directory": "is a symlink, not a regular file",
            "huge": "is larger than",
            "device": "is a character device, not a regular file",
            "garbage": "is not a state record of job"}[kind]


def file_kind(path):
    mode = os.lstat(path).st_mode
    for test, kind in ((stat.S_ISFIFO, "fifo"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "device")):
        if test(mode):
            return kind
    return "file"


def expected_kind(kind):
    return {"zero": "symlink", "elsewhere": "symlink", "elsewhere_directory": "symlink",
            "huge": "file", "garbage": "file", "file": "file"}.get(kind, kind)


class HostileFileTest(unittest.TestCase):
    def setUp(self):
        self.box = HostileBox()
        self.addCleanup(self.box.remove)

    def assert_outside_untouched(self):
        with open(self.box.outside) as outside:
            self.assertEqual(outside.read(), "not for run-job\n")
        self.assertEqual(os.listdir(self.box.outside_directory), [])

    def assert_set_aside(self, path, kind):
        """PATH gone, set aside beside it as PATH.bad-YYYYmmdd-HHMMSS, intact."""
        directory, base = os.path.split(path)
        aside = [entry for entry in os.listdir(directory)
                 if re.match(re.escape(base) + SET_ASIDE_NAME, entry)]
        self.assertEqual(len(aside), 1, os.listdir(directory))
        self.assertEqual(file_kind(os.path.join(directory, aside[0])), expected_kind(kind))
        return aside[0]

    def run_all(self, names, *options):
        return finish_all(self, [self.box.start(RUN_JOB, *(list(options) + [name]))
                                 for name in names])


class StateFileTests(HostileFileTest):
    def test_bad_state_and_history_are_reported_read_only_then_set_aside_by_a_run(self):
        kinds = hostile_kinds("garbage")
        names = ["s_" + kind for kind in kinds]
        histories = {}  # each job's bad history file, and what it is
        for kind, name in zip(kinds, names):
            self.box.touching_job(name)
            self.box.plant(kind, self.box.state(name))
            if kind == "garbage":  # a history is lines, any of which may be cut
                histories[name] = (self.box.history(name) + ".1", "fifo")
            else:
                histories[name] = (self.box.history(name), kind)
            self.box.plant(histories[name][1], histories[name][0])
        state_directory = self.box.settings["state_directory"]
        before = sorted(os.listdir(state_directory))
        (status, out, err), check, generate, kill = finish_all(
            self, [self.box.start(RUN_JOB, "--status"), self.box.start(RUN_JOB, "--check"),
                   self.box.start(CRON_GENERATE, "--check"),
                   self.box.start(RUN_JOB, "--kill-job", names[0])])
        self.assertEqual(kill, (1, "", "run-job: job %s is not running\n" % names[0]))
        self.assertEqual((check[0], generate[0]), (0, 0), check[2] + generate[2])
        self.assertEqual(sorted(os.listdir(state_directory)), before, "--status moved a file")
        self.assertEqual((status, err), (0, ""))
        blocks = status_blocks(out)
        for kind, name in zip(kinds, names):
            line = blocks[name][-1]
            self.assertTrue(line.startswith("last status: unknown: state file %s %s" % (
                self.box.state(name), kind_text(kind))), line)
            self.assertTrue(line.endswith("; the next run sets it aside"), line)

        for name, result in zip(names, self.run_all(names)):
            self.assertEqual(result, (0, "", ""), name)  # a success prints nothing
            self.assertTrue(os.path.exists(self.box.mark(name)), name)
        code, out, err = finish(self, self.box.start(RUN_JOB, "--status"))
        blocks = status_blocks(out)
        config = run_job.GlobalConfig(**self.box.settings)
        for kind, name in zip(kinds, names):
            record = run_job.read_job_state(config, name)
            self.assertEqual((record["status"], record["consecutive_failures"]), ("success", 0))
            self.assertEqual([run["status"] for run in read_history(config, name)],
                             ["success"])
            lines = record["set_aside"].splitlines()
            self.assertEqual(len(lines), 2, lines)
            for line, label, (path, planted) in zip(lines, ("state", "history"), (
                    (self.box.state(name), kind), histories[name])):
                aside = self.assert_set_aside(path, planted)
                self.assertTrue(line.startswith("%s file set aside: %s %s" % (
                    label, path, kind_text(planted))), line)
                self.assertTrue(line.endswith("; renamed to %s" % aside), line)
                self.assertIn(line, blocks[name])
                self.assertIn("#| records " + line, self.log_text(record["log"]))
        self.assert_outside_untouched()

    def log_text(self, path):
        with open(path, "rb") as log:
            return log.read().decode("utf-8", "replace")

    def test_a_run_that_replaces_its_state_with_a_fifo_ends_and_records_itself(self):
        state = self.box.state("self")
        self.box.job("self", "command: /usr/bin/mkfifo %s\n" % state)
        self.assertEqual(finish(self, self.box.start(RUN_JOB, "self")), (0, "", ""))
        self.assert_set_aside(state, "fifo")
        self.assertTrue(stat.S_ISREG(os.lstat(state).st_mode))


class OrphanTests(HostileFileTest):
    def test_kill_job_recording_an_orphaned_run_sets_a_bad_state_aside(self):
        box = self.box
        box.touching_job("orphan")
        account = run_job.pwd.getpwnam(service_user())
        log = os.path.join(box.log_directory("orphan"), "orphan-20261201-210000.log")
        os.mkdir(box.log_directory("orphan"))
        box.write(log, "")
        box.plant("fifo", box.state("orphan"))
        dead = subprocess.Popen(["/bin/true"])
        dead.wait()
        fd = os.open(box.lock("orphan"), os.O_RDWR | os.O_CREAT, 0o644)
        for path in (log, box.log_directory("orphan"), box.lock("orphan")):
            if IS_ROOT:
                os.chown(path, account.pw_uid, account.pw_gid)

        def as_service_user():
            if IS_ROOT:
                os.setgid(account.pw_gid)
                os.setuid(account.pw_uid)
        try:
            run_job.fcntl.flock(fd, run_job.fcntl.LOCK_EX)
            holder = subprocess.Popen(["/bin/sleep", "30"], pass_fds=(fd,),
                                      preexec_fn=as_service_user)
            self.addCleanup(holder.wait)
            self.addCleanup(holder.kill)
            os.write(fd, b"pid %d pgid %d start %.3f kill_grace 0.300 log %s\n"
                     % (dead.pid, holder.pid, time.time() - 5, log.encode()))
        finally:
            os.close(fd)  # the holder's copy holds the lock now, as a dead run-job's child
        self.assertEqual(finish(self, box.start(RUN_JOB, "--kill-job", "orphan")), (0, "", ""))
        self.assertIsNotNone(holder.poll())
        aside = self.assert_set_aside(box.state("orphan"), "fifo")
        record = run_job.read_job_state(run_job.GlobalConfig(**box.settings), "orphan")
        self.assertEqual(record["status"], "killed")
        self.assertEqual(record["set_aside"], "state file set aside: %s is a FIFO, not a "
                         "regular file; renamed to %s" % (box.state("orphan"), aside))
        with open(log) as text:
            self.assertIn(record["set_aside"], text.read())


class LockFileTests(HostileFileTest):
    def test_a_bad_lock_file_refuses_the_run_in_one_line_and_blocks_no_command(self):
        kinds = hostile_kinds()
        names = ["l_" + kind for kind in kinds]
        for kind, name in zip(kinds, names):
            self.box.touching_job(name)
            self.box.plant(kind, self.box.lock(name))
        huge_job = os.path.join(self.box.job_directory, "huge_job.yaml")
        self.box.make_file("huge", huge_job)  # root's, as job files are: read, but not too far
        bad = [name for name in names if name != "l_huge"]  # a huge lock is just a lock
        processes = [self.box.start(RUN_JOB, name) for name in names]
        processes += [self.box.start(RUN_JOB, "--kill-job", name) for name in bad]
        processes += [self.box.start(RUN_JOB, "--status"), self.box.start(RUN_JOB, "--check"),
                      self.box.start(CRON_GENERATE, "--check")]
        results = finish_all(self, processes)
        runs, kills, (status, check, generate) = (
            results[:len(names)], results[len(names):-3], results[-3:])
        for kind, name, result in zip(kinds, names, runs):
            if kind == "huge":  # a regular file: a lock as good as any
                self.assertEqual(result, (0, "", ""))
                continue
            self.assertEqual(result[:2], (run_job.EXIT_REFUSED, ""), name)
            self.assertEqual(result[2], "run-job: %s %s; remove it: it is job %s's lock "
                             "file\n" % (self.box.lock(name), kind_text(kind), name))
            self.assertFalse(os.path.exists(self.box.mark(name)), name)
            self.assertEqual(file_kind(self.box.lock(name)), expected_kind(kind))
        for name, result in zip(bad, kills):
            self.assertEqual(result, (1, "", "run-job: job %s is not running\n" % name))
        self.assertEqual(status[0], 0, status[2])
        blocks = status_blocks(status[1])
        for kind, name in zip(kinds, names):
            if name in bad:
                self.assertNotIn("running", blocks[name][0])
                self.assertIn("lock file %s %s: every run is refused; remove it"
                              % (self.box.lock(name), kind_text(kind)), blocks[name])
        too_large = "%s: larger than 1048576 bytes, which no config is; check the file" % huge_job
        self.assertEqual(blocks["huge_job"], ["huge_job ***Invalid configuration***", too_large])
        self.assertEqual(check[0], run_job.EXIT_CONFIG, check[2])
        self.assertEqual(check[2].splitlines()[0], "run-job: %s" % too_large)
        self.assertEqual(generate[0], run_job.EXIT_CONFIG, generate[2])
        self.assertIn(too_large, generate[2])
        self.assert_outside_untouched()


class LogDirectoryTests(HostileFileTest):
    def test_a_bad_log_directory_refuses_the_run_and_nothing_is_written_elsewhere(self):
        kinds = ["fifo", "file", "zero", "elsewhere", "elsewhere_directory"]
        names = ["d_" + kind for kind in kinds]
        for kind, name in zip(kinds, names):
            self.box.touching_job(name)
            self.box.plant(kind, self.box.log_directory(name))
        processes = [self.box.start(RUN_JOB, name) for name in names]
        processes += [self.box.start(RUN_JOB, "--status"), self.box.start(CRON_GENERATE)]
        results = finish_all(self, processes)
        for name, result in zip(names, results):
            self.assertEqual(result, (run_job.EXIT_REFUSED, "", "run-job: %s: not a directory; "
                                      "remove it\n" % self.box.log_directory(name)))
            self.assertFalse(os.path.exists(self.box.mark(name)), name)
        self.assertEqual(results[-2][0], 0, results[-2][2])
        self.assertEqual(results[-1][0], 0, results[-1][2])
        self.assert_outside_untouched()

    def test_a_log_directory_replaced_by_a_symlink_after_its_check_is_not_followed(self):
        box = self.box
        os.symlink(box.outside_directory, box.log_directory("late"))
        with self.assertRaisesRegex(run_job.RefusedError, "cannot open the log directory"):
            run_job._open_log_directory(box.log_directory("late"))
        box.write(os.path.join(box.outside_directory, "late.log"), "")
        with self.assertRaisesRegex(run_job.RefusedError, "cannot open the log directory"):
            run_job._open_job_log(os.path.join(box.log_directory("late"), "late.log"))
        config = run_job.GlobalConfig(**box.settings)
        self.assertTrue(run_job._is_job_log(config, "late", box.log_directory("late") + "/x.log"))
        self.assertFalse(run_job._is_job_log(config, "late", box.outside))


class CrontabTests(HostileFileTest):
    def test_a_bad_crontab_is_reported_by_every_reader_and_replaced_by_cron_generate(self):
        kinds = ["fifo", "directory", "zero", "huge"]
        self.box.touching_job("tick")
        configs, processes = {}, []
        for kind in kinds:
            crontab = os.path.join(self.box.cron_directory, "pc_" + kind)
            self.box.plant(kind, crontab)
            self.box.settings["output_crontab"] = crontab
            configs[kind] = os.path.join(self.box.root, "config-%s.yaml" % kind)
            self.box.write_config()
            shutil.copy(self.box.config, configs[kind])
            for program, options in ((RUN_JOB, ["--status"]), (RUN_JOB, ["--check"]),
                                     (CRON_GENERATE, ["--check"])):
                processes.append(self.box.start(program, *options, config=configs[kind]))
        results = iter(finish_all(self, processes))
        generated = finish_all(self, [self.box.start(CRON_GENERATE, config=configs[kind])
                                      for kind in kinds])
        for kind, generate in zip(kinds, generated):
            crontab = os.path.join(self.box.cron_directory, "pc_" + kind)
            problem = ("is larger than any crontab cron-generate writes" if kind == "huge"
                       else kind_text(kind) + ", not the file cron-generate writes")
            status, check, generate_check = next(results), next(results), next(results)
            self.assertEqual(status[0], 0, status[2])
            self.assertIn("crontab: cannot compare it with the job files: %s %s"
                          % (crontab, problem), status[1])
            self.assertEqual(check[0], 0, check[2])
            self.assertIn("%s %s" % (crontab, problem), check[2])
            self.assertEqual(generate_check[0], 0, generate_check[2])
            self.assertIn("%s %s" % (crontab, problem), generate_check[2])
            if kind == "directory":
                self.assertEqual(generate, (run_job.EXIT_REFUSED, "", "cron-generate: %s is a "
                                            "directory, not a crontab; remove it\n" % crontab))
                self.assertEqual(os.listdir(crontab), [])
            else:
                self.assertEqual(generate[0], 0, generate[2])
                self.assertEqual(file_kind(crontab), "file")
                with open(crontab) as written:
                    self.assertIn("--job tick", written.read())
        self.assertEqual(sorted(entry for entry in os.listdir(self.box.cron_directory)
                                if entry.startswith(".")), [], "a temporary file was left")
        self.assert_outside_untouched()


class HelperTests(unittest.TestCase):
    """_open_regular_file, read_regular_file and set_aside_file in this process."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="run-job-files-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_every_open_of_a_hostile_file_is_refused_at_once(self):
        os.mkfifo(self.path("fifo"))
        os.mkdir(self.path("directory"))
        os.symlink("/dev/zero", self.path("zero"))
        for name in ("fifo", "directory", "zero"):
            for flags in (os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                          os.O_RDWR | os.O_CREAT):
                with self.assertRaises(run_job.BadFileError) as caught:
                    run_job._open_regular_file(self.path(name), flags, None)
                self.assertEqual(caught.exception.path, self.path(name))
                self.assertRegex(caught.exception.problem, r"^is a \w+, not a regular file$")
                self.assertEqual(caught.exception.exit_code, run_job.EXIT_REFUSED)

    def test_a_write_descriptor_blocks_again_and_a_read_is_bounded(self):
        fd = run_job._open_regular_file(self.path("file"), os.O_WRONLY | os.O_CREAT)
        try:
            self.assertFalse(run_job.fcntl.fcntl(fd, run_job.fcntl.F_GETFL) & os.O_NONBLOCK)
            os.write(fd, b"x" * 11)
        finally:
            os.close(fd)
        self.assertEqual(run_job.read_regular_file(self.path("file"), 11), b"x" * 11)
        with self.assertRaisesRegex(run_job.BadFileError, r"file is larger than 10 bytes$"):
            run_job.read_regular_file(self.path("file"), 10)
        self.assertIsNone(run_job.read_regular_file(self.path("none"), 10))

    def test_set_aside_names_the_file_by_local_time_and_never_overwrites(self):
        now = time.mktime((2026, 12, 1, 21, 5, 9, 0, 0, -1))
        names = []
        for _ in range(3):
            os.mkfifo(self.path("a.state"))
            names.append(run_job.set_aside_file(self.path("a.state"), now))
        self.assertEqual(names, ["a.state.bad-20261201-210509", "a.state.bad-20261201-210509-1",
                                 "a.state.bad-20261201-210509-2"])
        self.assertFalse(os.path.lexists(self.path("a.state")))

    def test_a_skipped_start_sets_a_bad_state_aside_and_records_the_skip(self):
        config = run_job.GlobalConfig(run_directory=self.tmp, state_directory=self.tmp)
        os.mkfifo(self.path("a.state"))
        os.symlink("/dev/zero", self.path("a.history"))
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(10)  # a FIFO opened for reading would block forever
        try:
            run_job.record_skip(config, "a", "disabled", time.time())
        finally:
            signal.alarm(0)
        state = run_job.read_job_state(config, "a")
        self.assertEqual(state["last_skip_reason"], "disabled")
        lines = state["set_aside"].splitlines()
        self.assertEqual([line.split(" is ")[0] for line in lines],
                         ["state file set aside: " + self.path("a.state"),
                          "history file set aside: " + self.path("a.history")])
        self.assertEqual([run["status"] for run in read_history(config, "a")],
                         ["skipped"])

    def test_write_file_atomic_passes_over_a_directory_in_its_temporary_name(self):
        os.mkdir(self.path(".a.state.%d.tmp" % os.getpid()))
        os.symlink(self.path("outside"), self.path(".a.state.%d-1.tmp" % os.getpid()))
        run_job.write_file_atomic(self.path("a.state"), b"new\n")
        with open(self.path("a.state"), "rb") as state:
            self.assertEqual(state.read(), b"new\n")
        self.assertFalse(os.path.lexists(self.path("outside")))
        self.assertEqual(sorted(os.listdir(self.tmp)), [".a.state.%d.tmp" % os.getpid(),
                                                        "a.state"])

    def test_write_file_atomic_leaves_no_temporary_when_the_rename_fails(self):
        os.mkdir(self.path("a.state"))
        with self.assertRaises(IsADirectoryError):
            run_job.write_file_atomic(self.path("a.state"), b"new\n")
        self.assertEqual(os.listdir(self.tmp), ["a.state"])


if __name__ == "__main__":
    unittest.main()
