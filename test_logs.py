"""Tests for run-job --log (--run, --stdout, --stderr, --follow), --history
(--json) and log_retention: real runs, logs, locks and directories in
temporary directories. The read-only commands run in-process (run_job.main)
where being a process of their own does not matter; runs are processes."""

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

# Written by a job's program: each chunk to its stream, flushed, so that the
# streams reach run-job interleaved, in many reads.
WRITER = """import os, sys, time
chunks = [line.split(" ") for line in open(sys.argv[1]).read().splitlines()]
for stream, path in chunks:
    os.write(int(stream), open(path, "rb").read())
    time.sleep(0.002)
"""

OLD_LOG_COUNT = 1000


def chunk_files(directory, chunks):
    """Write each (fd, bytes) of CHUNKS to a file in DIRECTORY and a plan
    naming them in order; return the plan's path."""
    plan = []
    for index, (fd, data) in enumerate(chunks):
        path = os.path.join(directory, "chunk%d" % index)
        with open(path, "wb") as stream:
            stream.write(data)
        plan.append("%d %s" % (fd, path))
    plan_path = os.path.join(directory, "plan")
    with open(plan_path, "w") as stream:
        stream.write("\n".join(plan))
    return plan_path


def log_stamp(epoch):
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(epoch))


class LogTest(test_config.SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.writer = self.sandbox.path("writer.py")
        test_config.write_file(self.writer, WRITER)

    def main(self, *arguments):
        """run_job.main in-process: (exit code, stdout bytes, stderr text)."""
        out = io.TextIOWrapper(io.BytesIO(), "utf-8")
        err = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_job.main(["--config", self.sandbox.config] + list(arguments))
        out.flush()
        return code, out.buffer.getvalue(), err.getvalue()

    def log_directory(self, name):
        return self.sandbox.path("log", name)

    def logs(self, name):
        return sorted(os.listdir(self.log_directory(name)))

    def run_writer(self, name, chunks, extra=""):
        """Run job NAME whose program writes CHUNKS ((fd, bytes), in order)."""
        plan = chunk_files(self.sandbox.root, chunks)
        self.sandbox.write_job(name, "command: %s %s %s\n%s"
                               % (sys.executable, self.writer, plan, extra))
        code, out, err = self.sandbox.run(name)
        self.assertEqual((code, err), (0, ""))

    def fake_logs(self, name, stamps):
        """Create a log named for each YYYYMMDD-HHMMSS[-N] of STAMPS,
        holding its own name; return the names."""
        directory = self.log_directory(name)
        os.makedirs(directory, exist_ok=True)
        names = []
        for stamp in stamps:
            file_name = "%s-%s.log" % (name, stamp)
            with open(os.path.join(directory, file_name), "w") as stream:
                stream.write(file_name)
            names.append(file_name)
        return names


class StreamTests(LogTest):
    CHUNKS = [
        (1, b"plain line\n"),
        (2, b"an error\n"),
        (1, bytes(range(256))),                        # every byte, NUL and \n included
        (1, b"\xff\xfe invalid UTF-8 \xc3\x28 \xed\xa0\x80\n"),
        (2, b"progress 10%\rprogress 20%\r"),          # CR, no newline
        (1, b"x" * 200000 + b"\n"),                    # longer than a record
        (2, b"\n\n"),                                  # empty lines
        (1, b"y" * 70000),                             # a long piece
        (2, b"half a li"),
        (1, b"ne? no: stdout\n"),
        (2, b"ne, on stderr"),                          # no final newline
        (1, b"\r\n last, no newline \x1b[31m"),
    ]

    def expected(self, fd):
        return b"".join(data for each, data in self.CHUNKS if each == fd)

    def test_stdout_and_stderr_are_rebuilt_byte_for_byte(self):
        self.run_writer("mixed", self.CHUNKS)
        for option, fd in (("--stdout", 1), ("--stderr", 2)):
            code, out, err = self.main("--log", "mixed", option)
            self.assertEqual((code, err), (0, ""))
            self.assertEqual(out, self.expected(fd), option)

    def test_the_log_itself_is_printed_as_it_is(self):
        self.run_writer("mixed", self.CHUNKS[:3])
        code, out, err = self.main("--log", "mixed")
        [name] = self.logs("mixed")
        with open(os.path.join(self.log_directory("mixed"), name), "rb") as log:
            self.assertEqual(out, log.read())
        self.assertIn(b" #| outcome success\n", out)

    def test_a_record_cut_short_is_left_out(self):
        self.run_writer("cut", [(1, b"whole\n")])
        [name] = self.logs("cut")
        with open(os.path.join(self.log_directory("cut"), name), "ab") as log:
            log.write(b"2026-12-01 10:00:00.000 O| cut sho")
        self.assertEqual(self.main("--log", "cut", "--stdout")[1], b"whole\n")


class RunNumberTests(LogTest):
    def test_run_n_counts_back_from_the_latest_run(self):
        self.sandbox.write_job("count", "command: /bin/true\n")
        # Runs within one second are -1, -2 ... -10: sorted as numbers.
        stamps = ["20261201-120000"] + ["20261201-120000-%d" % n for n in range(1, 11)] \
            + ["20261130-235959"]
        self.fake_logs("count", stamps)
        self.assertEqual(self.main("--log", "count")[1], b"count-20261201-120000-10.log")
        self.assertEqual(self.main("--log", "count", "--run", "2")[1],
                         b"count-20261201-120000-9.log")
        self.assertEqual(self.main("--log", "count", "--run", "11")[1],
                         b"count-20261201-120000.log")
        self.assertEqual(self.main("--log", "count", "--run", "12")[1],
                         b"count-20261130-235959.log")

    def test_real_runs_in_order(self):
        for word in ("first", "second", "third"):
            self.sandbox.write_job("echo", "command: /bin/echo %s\n" % word)
            self.assertEqual(self.sandbox.run("echo")[0], 0)
        for run, word in ((1, b"third\n"), (2, b"second\n"), (3, b"first\n")):
            self.assertEqual(self.main("--log", "echo", "--run", str(run), "--stdout"),
                             (0, word, ""))

    def test_a_run_that_does_not_exist_is_one_line_exit_1(self):
        self.sandbox.write_job("once", "command: /bin/true\n")
        code, out, err = self.main("--log", "once")
        self.assertEqual((code, out), (1, b""))
        self.assert_one_error_line(err, "job once has no log", "it has not run yet")
        self.fake_logs("once", ["20261201-120000"])
        code, out, err = self.main("--log", "once", "--run", "2")
        self.assertEqual((code, out), (1, b""))
        self.assert_one_error_line(err, "job once has 1 log in", "no run 2",
                                   "run-job --history once")

    def test_usage_errors(self):
        self.sandbox.write_job("job", "command: /bin/true\n")
        for arguments, fragment in (
                (["--log", "nosuch"], "no job named nosuch"),
                (["--history", "nosuch"], "no job named nosuch"),
                (["--log", "job", "--run", "0"], "--run takes a run number"),
                (["--log", "job", "--run", "x"], "--run takes a run number"),
                (["--log", "job", "--run", "9" * 5000], "--run takes a run number"),
                (["--log", "job", "--stdout", "--stderr"], "not both"),
                (["--status", "--follow"], "--follow applies only to --log"),
                (["--history", "job", "--run", "2"], "--run applies only to --log"),
                (["--log", "job", "--json"], "--json applies only to --status, --explain and --history"),
                (["--log", "job", "other"], "one job at a time"),
                (["--log", "job.yaml"], "run-job --log job")):
            code, out, err = self.main(*arguments)
            self.assertEqual(code, 64, arguments)
            self.assert_one_error_line(err, fragment)


class FollowTests(LogTest):
    def test_follow_prints_a_running_job_log_and_ends_with_the_run(self):
        go = self.sandbox.path("go")
        self.sandbox.write_job("slow", "command: /bin/sh -c 'echo one; while [ ! -e %s ]; "
                               "do sleep 0.02; done; printf two'\n" % go)
        self.start_in_background("slow")
        self.wait_until_running("slow")
        follows = [subprocess.Popen(
            [sys.executable, test_config.RUN_JOB, "--config", self.sandbox.config,
             "--log", "slow", "--follow"] + extra, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.sandbox.root)
            for extra in ([], ["--stdout"])]
        for process in follows:
            self.addCleanup(process.kill)
        self.assertEqual(follows[1].stdout.readline(), b"one\n")  # read as it runs
        time.sleep(0.3)
        self.assertEqual([process.poll() for process in follows], [None, None])
        open(go, "w").close()
        full, full_err = follows[0].communicate(timeout=10)
        stdout, stdout_err = follows[1].communicate(timeout=10)
        self.assertEqual((follows[0].returncode, full_err), (0, b""))
        self.assertEqual((follows[1].returncode, stdout_err, stdout), (0, b"", b"two"))
        self.assertIn(b" O| one\n", full)
        self.assertIn(b" O+ two\n", full)
        self.assertTrue(full.endswith(b"\n") and b" #| duration " in full.splitlines()[-1],
                        full[-200:])

    def test_follow_of_an_ended_run_prints_it_and_ends(self):
        self.sandbox.write_job("done", "command: /bin/echo done\n")
        self.assertEqual(self.sandbox.run("done")[0], 0)
        code, out, err = self.main("--log", "done", "--follow", "--stdout")
        self.assertEqual((code, out, err), (0, b"done\n", ""))


class HistoryTests(LogTest):
    def test_runs_skips_and_commands_oldest_first(self):
        self.sandbox.write_job("hist", "command: /bin/sh -c 'exit ${CODE:-0}'\n")
        self.assertEqual(self.sandbox.run("hist")[0], 0)
        self.assertEqual(self.sandbox.run("hist", environ={"CODE": "3"})[0], 1)
        self.assertEqual(self.main("--pause", "hist", "--reason", "disk swap")[0], 0)
        self.assertEqual(self.sandbox.run("hist")[0], 0)  # a quiet skip
        code, out, err = self.main("--history", "hist")
        self.assertEqual((code, err), (0, ""))
        lines = out.decode().splitlines()
        self.assertEqual([line.split()[1] for line in lines],
                         ["success", "failed", "paused", "skipped"])
        directory = os.open(self.log_directory("hist"), os.O_RDONLY)
        self.addCleanup(os.close, directory)
        logs = [os.path.join(self.log_directory("hist"), name)
                for name in run_job.job_log_names("hist", directory)]
        self.assertRegex(lines[0], r"^\S+ success \d+\.\d{3}s exit 0 %s$" % logs[0])
        self.assertRegex(lines[1], r"^\S+ failed \d+\.\d{3}s exit 3 %s  # .*3" % logs[1])
        self.assertRegex(lines[2], r"^\S+ paused - - -  # disk swap; by \S+$")
        self.assertRegex(lines[3], r"^\S+ skipped - - -  # paused")
        code, out, err = self.main("--history", "hist", "--json")
        records = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual(records, test_config.read_history(self.sandbox.load(), "hist"))
        self.assertEqual(records[0]["start"], lines[0].split()[0])

    def test_the_rotated_history_comes_first_and_a_cut_line_is_passed_over(self):
        self.sandbox.write_job("rot", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("rot")[0], 0)
        path = run_job.history_path(self.sandbox.load(), "rot")
        older = {"job": "rot", "status": "skipped", "reason": "lock held", "start": "then",
                 "start_time": 1.0, "pid": 1}
        with open(path + ".1", "w") as history:
            history.write(run_job.json_line(older) + '{"job": "rot", "sta')
        code, out, err = self.main("--history", "rot", "--json")
        records = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual([record["status"] for record in records], ["skipped", "success"])
        self.assertEqual(records[0], older)

    def test_a_job_that_never_ran_has_an_empty_history(self):
        self.sandbox.write_job("never", "command: /bin/true\n")
        self.assertEqual(self.main("--history", "never"), (0, b"", ""))


class RetentionTests(LogTest):
    """1,000 old logs beside the run's; each test runs the job once."""

    def old_logs(self, name, now, spacing):
        """OLD_LOG_COUNT logs of runs SPACING seconds apart, the latest
        SPACING/2 before NOW; return their names, oldest first."""
        epochs = [now - spacing / 2 - spacing * index for index in range(OLD_LOG_COUNT)]
        # Hard links of one file: creating 1,000 inodes takes seconds on some disks.
        os.makedirs(self.log_directory(name))
        source = self.sandbox.path("old.log")
        test_config.write_file(source, "an old run's log\n")
        names = ["%s-%s.log" % (name, log_stamp(epoch)) for epoch in reversed(epochs)]
        for file_name in names:
            os.link(source, os.path.join(self.log_directory(name), file_name))
        return names

    def run_once(self, name, retention):
        self.sandbox.write_job(name, "command: /bin/true\n%s" % retention)
        before = set(self.logs(name))
        self.assertEqual(self.sandbox.run(name), (0, "", ""))
        [new] = set(self.logs(name)) - before
        return new

    def test_runs_keeps_the_latest_runs(self):
        old = self.old_logs("runs", time.time(), 60)
        new = self.run_once("runs", "log_retention: {runs: 10}\n")
        self.assertEqual(self.logs("runs"), sorted(old[-9:] + [new]))

    def test_age_keeps_the_runs_started_since(self):
        now = time.time()
        old = self.old_logs("age", now, 600)  # 1,000 runs over about 7 days
        new = self.run_once("age", "log_retention: {age: 2d}\n")
        kept = [name for name in old if name[4:19] >= log_stamp(now - 2 * 86400)]
        self.assertEqual(len(kept), 288)  # 2 days of 10 minutes
        self.assertEqual(self.logs("age"), sorted(kept + [new]))

    def test_both_limits_apply(self):
        now = time.time()
        old = self.old_logs("both", now, 600)
        new = self.run_once("both", "log_retention: {runs: 100, age: 2d}\n")
        self.assertEqual(self.logs("both"), sorted(old[-99:] + [new]))
        new = self.run_once("both", "log_retention: {runs: 500, age: 10h}\n")
        kept = [name for name in old if name[5:20] >= log_stamp(now - 10 * 3600)]
        self.assertEqual(len(kept), 60)
        self.assertEqual(len(self.logs("both")), 62)
        self.assertTrue(set(kept) < set(self.logs("both")))

    def test_the_default_keeps_1000_runs_of_30_days(self):
        now = time.time()
        old = self.old_logs("default", now, 1800)  # 1,000 runs over about 21 days
        older = self.fake_logs("default", [log_stamp(now - 31 * 86400),
                                           log_stamp(now - 40 * 86400)])
        new = self.run_once("default", "")
        self.assertEqual(self.logs("default"), sorted(old[1:] + [new]))
        self.assertFalse(set(older) & set(self.logs("default")))

    def test_default_job_config_and_empty_mapping(self):
        self.sandbox.write_config(extra="default_job_config:\n  log_retention: {runs: 2}\n")
        old = self.old_logs("dflt", time.time(), 60)
        new = self.run_once("dflt", "")
        self.assertEqual(self.logs("dflt"), sorted(old[-1:] + [new]))
        self.run_once("dflt", "log_retention: {}\n")  # keeps every log
        self.assertEqual(len(self.logs("dflt")), 3)

    def test_foreign_files_symlinks_and_directories_stay(self):
        now = time.time()
        directory = self.log_directory("keep")
        self.old_logs("keep", now, 60)
        target = self.sandbox.path("target.log")
        test_config.write_file(target, "not a log of ours")
        foreign = ["README", "keep-20000101-000000.log.gz", "keep-20000101-000000-01.log",
                   "keep-2000101-000000.log", "other-20000101-000000.log", "keep-20000101.log",
                   ".keep-20000101-000000.log.swp"]
        for name in foreign:
            test_config.write_file(os.path.join(directory, name), "foreign")
        os.symlink(target, os.path.join(directory, "keep-20000101-000001.log"))
        os.mkdir(os.path.join(directory, "keep-20000101-000002.log"))
        new = self.run_once("keep", "log_retention: {runs: 1}\n")
        self.assertEqual(self.logs("keep"), sorted(foreign + [
            "keep-20000101-000001.log", "keep-20000101-000002.log", new]))
        with open(target) as stream:
            self.assertEqual(stream.read(), "not a log of ours")


class RetentionKeyTests(test_config.SandboxTest):
    def load_error(self, text):
        self.sandbox.write_job("job", "command: /bin/true\n" + text)
        with self.assertRaises(run_job.ConfigError) as caught:
            run_job.load_job(self.sandbox.load(), "job")
        return str(caught.exception)

    def test_values(self):
        self.sandbox.write_job("job", "command: /bin/true\nlog_retention: {age: 1h}\n")
        self.assertEqual(run_job.load_job(self.sandbox.load(), "job").log_retention,
                         (None, 3600.0))

    def test_errors_name_the_line_and_the_key(self):
        for text, fragment in (
                ("log_retention: {runs: 0}\n", "`log_retention: runs` must be a whole number"),
                ("log_retention: {age: 0}\n", "`log_retention: age` must be longer than 0"),
                ("log_retention: {age: soon}\n", "`log_retention: age`"),
                ("log_retention: {run: 3}\n", "did you mean `runs`?"),
                ("log_retention: 100\n", "`log_retention` must be a mapping such as"),
                ("log_retention:\n", "`log_retention` must be a mapping")):
            message = self.load_error(text)
            self.assertIn("job.yaml:2:", message, text)
            self.assertIn(fragment, message, text)


if __name__ == "__main__":
    unittest.main()
