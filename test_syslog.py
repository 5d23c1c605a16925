"""Events to syslog without a `logging` mapping: a Unix datagram socket bound
by the test at `syslog_socket` receives each run's start and outcome, skips,
kills, pause/resume/reset and cron-generate's crontab changes; a socket that
is missing or full changes no outcome and prints nothing on success."""

import contextlib
import errno
import io
import os
import re
import socket
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cron_generate  # noqa: E402
import run_job  # noqa: E402
from test_config import (CRON_GENERATE, CURRENT_USER, IS_ROOT, UNPRIVILEGED,  # noqa: E402
                         SandboxTest, as_nobody)
import test_startup  # noqa: E402

# No SUDO_USER: the caller recorded is the real user, whoever runs the suite.
AS_CALLER = {"environ": {"SUDO_USER": ""}}
DATAGRAM = re.compile(r"^<(\d+)>([a-z-]+)\[(\d+)\]: (.*)$")
INFO, WARNING, ERR = 30, 28, 27  # facility daemon (3) * 8 + severity


class SyslogTest(SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.address = self.sandbox.path("log.socket")
        self.write_config()
        self.receiver = self.bind(self.address)

    def write_config(self, extra=""):
        self.sandbox.write_config(extra="syslog_socket: %s\n%s" % (self.address, extra))

    def bind(self, path):
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        receiver.bind(path)
        os.chmod(path, 0o666)  # as /dev/log: any user may send
        receiver.setblocking(False)
        return receiver

    def received(self):
        """(priority, ident, pid, message) of every datagram sent so far."""
        events = []
        while True:
            try:
                data = self.receiver.recv(65536)
            except BlockingIOError:
                return events
            match = DATAGRAM.match(data.decode("utf-8"))
            self.assertIsNotNone(match, data)
            events.append((int(match.group(1)), match.group(2), int(match.group(3)),
                           match.group(4)))

    def messages(self):
        """(priority, message) of each run-job datagram, checking its ident."""
        events = self.received()
        for priority, ident, pid, message in events:
            self.assertEqual(ident, "run-job", message)
        return [(priority, message) for priority, ident, pid, message in events]

    def state(self, name):
        return run_job.read_job_state(self.sandbox.load(), name)


class RunEventTests(SyslogTest):
    def test_start_and_outcome_of_a_success_and_a_failure(self):
        self.sandbox.write_job("ok", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertEqual(self.sandbox.run("bad")[0], 1)
        events = self.received()
        self.assertEqual([(priority, ident) for priority, ident, pid, message in events],
                         [(INFO, "run-job")] * 3 + [(ERR, "run-job")])
        log = self.state("ok")["log"]
        pid = events[0][2]
        self.assertEqual(events[0][3], "job ok started (pid %d); log %s" % (pid, log))
        self.assertEqual(events[1][2], pid)
        self.assertRegex(events[1][3], r"^job ok succeeded after \d+\.\ds; log %s$"
                         % re.escape(log))
        self.assertRegex(events[3][3], r"^job bad failed \(exit status 3\) after \d+\.\ds; log ")
        self.assertIsNone(self.state("ok")["logging_error"])

    def command(self, *args):
        """A --pause, --resume or --reset, in this process (cheaper): quiet."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_job.main(["--config", self.sandbox.config] + list(args))
        self.assertEqual((code, out.getvalue(), err.getvalue()), (0, "", ""))

    def test_pause_skip_resume_halt_and_reset(self):
        self.sandbox.write_job("fatal", "command: /bin/false\nhalt_on_exit_codes: 1\n")
        self.command("--pause", "fatal", "--reason", "disk swap")
        self.assertEqual(self.sandbox.run("fatal"), (0, "", ""))
        self.command("--resume", "fatal")
        self.assertEqual(self.sandbox.run("fatal")[0], 1)
        self.assertEqual(self.sandbox.run("fatal")[0], 69)
        self.command("--reset", "fatal")
        events = [event for event in self.messages() if " started (pid " not in event[1]]
        by = run_job.caller_name(os.environ)
        paused = "paused by %s at " % by
        self.assertEqual([priority for priority, message in events],
                         [INFO, INFO, INFO, ERR, WARNING, INFO])
        self.assertEqual(events[0][1], "job fatal paused by %s (disk swap)" % by)
        self.assertTrue(events[1][1].startswith("job fatal skipped: " + paused), events[1])
        self.assertTrue(events[2][1].startswith("job fatal resumed by %s (was %s"
                                                % (by, paused)), events[2])
        self.assertTrue(events[3][1].startswith("job fatal failed (exit status 1)"), events[3])
        self.assertTrue(events[4][1].startswith("job fatal skipped: halted since "), events[4])
        self.assertTrue(events[5][1].startswith("job fatal reset by %s (was halted since "
                                                % by), events[5])

    def test_a_start_finding_the_lock_held_and_a_scheduled_start_skipped(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 30\n")
        self.start_in_background("slow")
        self.wait_until_running("slow")
        self.assertEqual(self.sandbox.run("slow")[0], 75)
        self.sandbox.write_job("off", "command: /bin/true\ndisabled: true\n")
        self.assertEqual(self.sandbox.run("--job", "off", "--scheduled", "* * * * *"),
                         (0, "", ""))
        events = [event for event in self.messages() if " started (pid " not in event[1]]
        self.assertEqual([priority for priority, message in events], [WARNING] * 2)
        self.assertTrue(events[0][1].startswith("job slow skipped: lock held: job slow is "
                                                "still running"), events)
        self.assertTrue(events[1][1].startswith("job off skipped: disabled; "), events)

    def test_kill_job_and_overlap_replace(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 30\nkill_grace: 1\n")
        background = self.start_in_background("slow")
        self.wait_until_running("slow")
        self.assertEqual(self.sandbox.run("--kill-job", "slow", **AS_CALLER), (0, "", ""))
        background.wait(10)
        events = self.messages()
        self.assertIn((WARNING, "job slow killed by %s (run-job pid %d)"
                       % (CURRENT_USER, background.pid)), events)
        self.assertTrue(any(priority == ERR and message.startswith("job slow was killed")
                            for priority, message in events), events)
        self.sandbox.write_job("slow", "command: /bin/sleep 30\nkill_grace: 1\n"
                                       "overlap: replace\n")
        first = self.start_in_background("slow")
        self.wait_until_running("slow")
        self.received()
        self.sandbox.write_job("slow", "command: /bin/true\noverlap: replace\n")
        self.assertEqual(self.sandbox.run("slow"), (0, "", ""))
        first.wait(10)
        replaced = [message for priority, message in self.messages()
                    if priority == WARNING]
        self.assertEqual(len(replaced), 1, replaced)
        self.assertRegex(replaced[0], r"^job slow: run-job pid \d+ replaced the run of run-job "
                                      r"pid %d \(overlap: replace\)$" % first.pid)


class CronGenerateEventTests(SyslogTest):
    def generate(self):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cron_generate.main(["--config", self.sandbox.config])
        self.assertEqual((code, err.getvalue()), (0, ""))
        return out.getvalue()

    def test_added_removed_and_rescheduled_jobs_one_event_each(self):
        crontab = self.sandbox.path("crontab")
        self.write_config("output_crontab: %s\n" % crontab)
        self.sandbox.write_job("alpha", "command: /bin/true\nschedule: '0 * * * *'\n")
        self.sandbox.write_job("beta", "command: /bin/true\nschedule: '*/5  * * * *'\n")
        self.generate()
        self.assertEqual(self.received(), [
            (INFO, "cron-generate", os.getpid(),
             "job alpha added to %s: '0 * * * *'" % crontab),
            (INFO, "cron-generate", os.getpid(),
             "job beta added to %s: '*/5 * * * *'" % crontab)])
        os.unlink(self.sandbox.path("jobs", "alpha.yaml"))
        self.sandbox.write_job("beta", "command: /bin/true\nschedule: '*/10 * * * *'\n")
        self.sandbox.write_job("gamma", "command: /bin/true\nschedule: '30 2 * * 1-5'\n")
        self.sandbox.write_job("idle", "command: /bin/true\n")  # unscheduled: no line
        self.generate()
        self.assertEqual([(priority, message) for priority, ident, pid, message
                          in self.received()], [
            (INFO, "job alpha removed from %s, was '0 * * * *'" % crontab),
            (INFO, "job beta rescheduled in %s: '*/10 * * * *', was '*/5 * * * *'"
             % crontab),
            (INFO, "job gamma added to %s: '30 2 * * 1-5'" % crontab)])
        self.assertIn("is up to date", self.generate())
        self.assertEqual(self.received(), [])


class BrokenSocketTests(SyslogTest):
    def test_a_missing_socket_changes_nothing(self):
        self.receiver.close()
        os.unlink(self.address)
        self.sandbox.write_job("ok", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertEqual(self.state("ok")["status"], "success")
        self.assertIsNone(self.state("ok")["logging_error"])
        code, out, err = self.sandbox.run("bad")
        self.assertEqual((code, len(err.splitlines())), (1, 1), err)
        # Nothing reads a socket file left behind: the same.
        self.receiver = self.bind(self.address)
        self.receiver.close()
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertIsNone(self.state("ok")["logging_error"])

    def fill(self):
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        sender.setblocking(False)
        with self.assertRaises(BlockingIOError):
            for _ in range(100000):
                sender.sendto(b"<14>test: filler", self.address)

    def test_a_full_socket_drops_the_records_without_waiting(self):
        self.fill()
        self.sandbox.write_job("ok", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        began = time.monotonic()
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertLess(time.monotonic() - began, 10)
        state = self.state("ok")
        self.assertEqual(state["status"], "success")
        self.assertEqual(state["logging_error"], "syslog socket %s: %s; records dropped"
                         % (self.address, os.strerror(errno.EAGAIN)))
        code, out, err = self.sandbox.run("bad")
        self.assertEqual(code, 1)
        lines = err.splitlines()
        self.assertTrue(lines[0].startswith("run-job: job bad failed (exit status 3)"), err)
        self.assertEqual(lines[1], "run-job: logging: " + state["logging_error"])
        self.assertEqual(self.state("bad")["status"], "failed")
        # Pause and a skip: quiet, recorded.
        self.assertEqual(run_job.main(["--config", self.sandbox.config, "--pause", "ok"]), 0)
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertEqual(self.state("ok")["status"], "success")
        self.assertIsNotNone(self.state("ok")["last_skip"])


class ConfigTests(SyslogTest):
    def test_a_logging_mapping_takes_the_events_instead(self):
        events = self.sandbox.path("events.log")
        crontab = self.sandbox.path("crontab")
        self.write_config(
            "output_crontab: %s\n"
            "logging:\n  version: 1\n  formatters: {plain: {format: '%%(levelname)s "
            "%%(message)s'}}\n  handlers: {events: {class: logging.FileHandler, filename: %s, "
            "formatter: plain}}\n  loggers: {process-control: {handlers: [events], "
            "level: INFO}}\n" % (crontab, events))
        self.sandbox.write_job("ok", "command: /bin/true\nschedule: '0 3 * * *'\n")
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        process = subprocess.run([sys.executable, CRON_GENERATE, "--config", self.sandbox.config],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=30)
        self.assertEqual((process.returncode, process.stderr), (0, b""))
        self.assertEqual(self.received(), [])
        with open(events) as stream:
            lines = stream.read().splitlines()
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(lines[1].startswith("INFO job ok succeeded after "), lines)
        self.assertEqual(lines[2], "INFO job ok added to %s: '0 3 * * *'" % crontab)

    def test_null_is_no_syslog_and_a_path_too_long_for_a_socket_is_refused(self):
        self.sandbox.write_config(extra="syslog_socket: null\n")
        self.assertIsNone(self.sandbox.load().syslog_socket)
        self.assertIsNone(run_job.run_events(self.sandbox.load()))
        self.assertEqual(run_job.GlobalConfig().syslog_socket, "/dev/log")
        self.sandbox.write_config(extra="syslog_socket: /%s\n" % ("s" * 107))
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assertRegex(err, r"^run-job: .*process-control\.yaml:\d+:\d+: `syslog_socket`: "
                              r"the path /s+ is longer than the 107 bytes a Unix socket's "
                              r"address takes; use a shorter one")


class CostTests(SyslogTest):
    def test_a_plain_run_sending_to_syslog_imports_neither_socket_nor_logging(self):
        self.sandbox.write_job("plain", "command: /bin/true\n")
        process = subprocess.Popen(
            [sys.executable, "-c", test_startup.PLAIN_RUN, HERE, "--config",
             self.sandbox.config, "plain"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.sandbox.root)
        out, err = process.communicate(timeout=30)
        self.assertEqual((process.returncode, err), (0, b""))
        imported = set(out.decode().split())
        self.assertEqual(imported & {"socket", "logging", "enum", "selectors"}, set())
        self.assertEqual(len(self.received()), 2)

    @unittest.skipUnless(IS_ROOT, "needs root")
    def test_root_switching_to_the_service_user_still_sends(self):
        # The pyenv interpreter's _socket is unreadable to nobody: preloaded.
        for name in ("log", "run", "state"):  # run-job makes them, nobody's
            os.rmdir(self.sandbox.path(name))
        self.sandbox.write_config(user=UNPRIVILEGED,
                                  extra="syslog_socket: %s\n" % self.address)
        self.sandbox.write_job("ok", "command: /bin/true\n")
        self.assertEqual(self.sandbox.run("ok"), (0, "", ""))
        self.assertIsNone(self.state("ok")["logging_error"])
        self.assertEqual(len(self.received()), 2)
        # As nobody itself, with Debian's interpreter.
        self.sandbox.write_config(user=UNPRIVILEGED, extra="syslog_socket: %s\n" % self.address)
        self.assertEqual(self.sandbox.run("ok", **as_nobody(self.sandbox))[0], 0)
        self.assertEqual(len(self.received()), 2)


if __name__ == "__main__":
    unittest.main()
