"""Tests for the failure and recovery mail (`failmail`, `smtp_host`).

Real runs of run_job.py as processes, against an SMTP server that the test
starts on 127.0.0.1 (SmtpServer, below: smtpd left Python in 3.12).
"""

import email
import email.policy
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import unittest

import test_config
from test_config import run_job

HOST = socket.gethostname()
HANG = "hang"    # a reply that never comes: the connection stays open, silent
CLOSE = "close"  # the server closes the connection instead of replying
DRIBBLE = "dribble"  # a reply of one byte a second that never ends


class SmtpServer(object):
    """A minimal SMTP server on 127.0.0.1, a thread per connection, that
    keeps the mails it takes in `mails`: (sender, recipients, message bytes).
    REPLIES overrides what it says at a stage (greeting, EHLO, MAIL, RCPT,
    DATA, end of data): a reply line such as "550 5.7.1 no relaying", HANG,
    CLOSE, DRIBBLE, or bytes sent as they are (garbage). REFUSE: recipients
    that RCPT refuses with 550."""

    def __init__(self, replies=None, refuse=()):
        self.replies = dict(replies or {})
        self.refuse = set(refuse)
        self.mails = []
        self.connections = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with server.lock:
                    server.connections.append(self.request)
                try:
                    server.converse(self.rfile, self.wfile)
                except OSError:
                    pass  # the client went away: run-job gave up, as it may

        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.port = self.tcp.server_address[1]
        self.address = "127.0.0.1:%d" % self.port
        # A short poll: shutdown() waits for serve_forever to look again.
        self.thread = threading.Thread(target=self.tcp.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def say(self, output, stage, default):
        """Reply DEFAULT at STAGE unless REPLIES says otherwise; False when
        the dialogue ends here."""
        reply = self.replies.get(stage, default)
        if reply == HANG:
            self.stopped.wait()
            return False
        if reply == DRIBBLE:
            output.write(b"250-")
            while not self.stopped.wait(1.0):
                output.write(b"x")
                output.flush()
            return False
        if reply == CLOSE:
            return False
        output.write(reply if isinstance(reply, bytes) else reply.encode() + b"\r\n")
        output.flush()
        return True

    def converse(self, reader, output):
        if not self.say(output, "greeting", "220 test ESMTP"):
            return
        sender, recipients = None, []
        for line in reader:
            verb = line[:4].upper().decode("ascii", "replace")
            argument = line[5:].strip().decode("ascii", "replace")
            if verb in ("EHLO", "HELO"):
                going = self.say(output, "EHLO", "250 test")
            elif verb == "MAIL":
                sender = argument.partition(":")[2].strip("<> ").split(">")[0]
                going = self.say(output, "MAIL", "250 ok")
            elif verb == "RCPT":
                recipient = argument.partition(":")[2].strip("<> ")
                if recipient in self.refuse:
                    going = self.say(output, "refused", "550 5.1.1 no such user")
                else:
                    recipients.append(recipient)
                    going = self.say(output, "RCPT", "250 ok")
            elif verb == "DATA":
                going = self.say(output, "DATA", "354 go on")
                if going:
                    message = self.read_data(reader)
                    going = self.say(output, "end of data", "250 queued")
                    if going and self.replies.get("end of data", "250")[:1] == "2":
                        with self.lock:
                            self.mails.append((sender, recipients, message))
                    recipients = []
            elif verb == "QUIT":
                self.say(output, "QUIT", "221 bye")
                return
            else:
                going = self.say(output, verb, "250 ok")
            if not going:
                return

    @staticmethod
    def read_data(reader):
        lines = []
        for line in reader:
            if line == b".\r\n":
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        return b"".join(lines)

    def messages(self):
        """The mails taken, parsed."""
        with self.lock:
            return [email.message_from_bytes(data, policy=email.policy.default)
                    for _, _, data in self.mails]

    def stop(self):
        self.stopped.set()
        self.tcp.shutdown()
        self.tcp.server_close()
        with self.lock:
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def body_of(mail):
    return mail.get_content().replace("\r\n", "\n")


def closed_port():
    """A port of 127.0.0.1 that nothing listens on (connection refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


FAILMAIL = ("failmail:\n  to_address: ops@example.com\n"
            "  from_address: Jobs <jobs@example.com>\n")


class MailTest(test_config.SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.server = self.start_server()
        self.code_file = self.sandbox.path("code")
        self.set_exit_code(0)

    def start_server(self, replies=None, refuse=()):
        server = SmtpServer(replies, refuse)
        self.addCleanup(server.stop)
        self.use_smtp_host(server.address)
        return server

    def use_smtp_host(self, address):
        self.sandbox.write_config(extra="smtp_host: '%s'\n" % address)

    def set_exit_code(self, code):
        test_config.write_file(self.code_file, "%d\n" % code)

    def write_flaky_job(self, name="flaky", extra=FAILMAIL):
        """A job that writes to stderr and exits with the code in self.code_file."""
        self.sandbox.write_job(name, "command: /bin/sh -c 'echo \"it broke, caf\xe9\" >&2; "
                                     "exit $(cat %s)'\n%s" % (self.code_file, extra))

    def run_with_code(self, code, name="flaky"):
        self.set_exit_code(code)
        return self.sandbox.run(name)

    def state(self, name="flaky"):
        return run_job.read_job_state(self.sandbox.load(), name)

    def log_text(self, name="flaky"):
        with open(self.state(name)["log"], encoding="utf-8", errors="replace") as log:
            return log.read()


class ThresholdTests(MailTest):
    def test_each_failed_run_mails_and_the_first_success_sends_one_recovery_mail(self):
        self.write_flaky_job()
        code, out, err = self.run_with_code(3)
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 3, err)  # summary, stderr heading, tail
        [mail] = self.server.messages()
        log = self.state()["log"]
        self.assertEqual(mail["Subject"], "Fail Mail (%s) run-job: flaky failed with code 3"
                         % HOST)
        self.assertEqual(mail["From"], "Jobs <jobs@example.com>")
        self.assertEqual(mail["To"], "ops@example.com")
        self.assertEqual(mail["Auto-Submitted"], "auto-generated")
        self.assertIsNotNone(mail["Date"])
        self.assertRegex(mail["Message-ID"], r"^<.+@%s>$" % HOST)
        body = mail.get_content().replace("\r\n", "\n")
        self.assertIn("See the logs for more information: %s\n" % log, body)
        self.assertIn("The end of its stderr:\n    it broke, caf\xe9\n", body)
        self.assertIn("consecutive failures: 1.", body)
        self.assertIn("run-job --pause flaky", body)
        self.assertIn("run-job --reset flaky", body)
        self.assertEqual(self.server.mails[0][:2], ("jobs@example.com", ["ops@example.com"]))
        state = self.state()
        self.assertIsNone(state["mail_error"])
        self.assertTrue(state["failmail_sent"].startswith(state["start"][:10]), state)
        self.assertIn("failure mail sent to ops@example.com", self.log_text())

        self.assertEqual(self.run_with_code(4)[0], 1)
        self.assertEqual(len(self.server.messages()), 2)
        self.assertIn("consecutive failures: 2.", body_of(self.server.messages()[1]))

        self.assertEqual(self.run_with_code(0), (0, "", ""))
        log = self.state()["log"]
        self.assertEqual(self.run_with_code(0), (0, "", ""))
        mails = self.server.messages()
        self.assertEqual(len(mails), 3)
        self.assertEqual(mails[2]["Subject"],
                         "Recovered (%s) run-job: flaky succeeded after 2 failed runs" % HOST)
        self.assertIn("Its log: %s\n" % log, body_of(mails[2]))
        self.assertNotIn("failmail_sent", self.state())
        self.assertIsNone(self.state().get("mail_error"))

    def test_a_threshold_of_three_mails_from_the_third_failure_on(self):
        self.write_flaky_job(extra=FAILMAIL + "failure_threshold_for_mail: 3\n")
        counts = []
        for code in (1, 1, 1, 1, 0, 1, 1, 0):
            self.run_with_code(code)
            counts.append(len(self.server.mails))
        # No recovery mail for the last success: its two failures sent none.
        self.assertEqual(counts, [0, 0, 1, 2, 3, 3, 3, 3])
        subjects = [mail["Subject"] for mail in self.server.messages()]
        self.assertEqual(subjects[-1], "Recovered (%s) run-job: flaky succeeded after 4 "
                                       "failed runs" % HOST)

    def test_a_threshold_of_twelve_works(self):
        # The original kept 20 history entries, so it never counted 12.
        self.write_flaky_job(extra=FAILMAIL + "failure_threshold_for_mail: 12\n")
        for run in range(13):
            self.run_with_code(2)
            self.assertEqual(len(self.server.mails), max(run - 10, 0), run)
        self.assertIn("consecutive failures: 13.", body_of(self.server.messages()[1]))

    def test_reset_ends_the_failures_a_recovery_mail_would_follow(self):
        # --reset clears the consecutive failures: the next success is no
        # recovery, for the mail as for the on_recovery hook.
        self.write_flaky_job()
        self.run_with_code(4)
        self.assertIn("failmail_sent", self.state())
        self.assertEqual(self.sandbox.run("--reset", "flaky")[0], 0)
        self.assertNotIn("failmail_sent", self.state())
        self.assertEqual(self.run_with_code(0), (0, "", ""))
        self.assertEqual(len(self.server.mails), 1)

    def test_a_job_without_failmail_sends_nothing_and_records_nothing_of_mail(self):
        self.write_flaky_job(extra="")
        self.assertEqual(self.run_with_code(1)[0], 1)
        self.assertEqual(self.server.mails, [])
        self.assertNotIn("mail_error", self.state())
        self.assertNotIn("failmail_sent", self.state())

    def test_several_recipients_and_a_halt_told(self):
        self.write_flaky_job(extra="failmail:\n  to_address: [a@example.com, b@example.org]\n"
                                   "  from_address: jobs@example.com\nhalt_after_failures: 1\n")
        self.run_with_code(5)
        [mail] = self.server.messages()
        self.assertEqual(mail["To"], "a@example.com, b@example.org")
        self.assertEqual(self.server.mails[0][1], ["a@example.com", "b@example.org"])
        self.assertIn("The job is halted: 1 consecutive failure; run-job --reset flaky "
                      "clears it.", body_of(mail))


class RefusalTests(MailTest):
    def test_connection_refused_changes_nothing_of_the_outcome(self):
        self.use_smtp_host("127.0.0.1:%d" % closed_port())
        self.write_flaky_job()
        code, out, err = self.run_with_code(3)
        self.assertEqual(code, 1)
        lines = err.splitlines()
        self.assertIn("failed (exit status 3)", lines[0])
        self.assertRegex(lines[1], r"^run-job: mail: cannot send the failure mail to "
                                   r"ops@example\.com: cannot send through 127\.0\.0\.1:\d+: "
                                   r"Connection refused$")
        self.assertEqual(lines[2:], ["run-job: the end of its stderr:", "it broke, caf\xe9"])
        state = self.state()
        self.assertEqual(state["status"], "failed")
        self.assertIn("Connection refused", state["mail_error"])
        self.assertNotIn("failmail_sent", state)
        self.assertIn("cannot send the failure mail", self.log_text())
        # No failure mail went out: a success sends no recovery mail, and the
        # state says nothing of the earlier run's mail any more.
        self.assertEqual(self.run_with_code(0), (0, "", ""))
        self.assertIsNone(self.state().get("mail_error"))

    def test_a_recovery_mail_that_fails_prints_nothing(self):
        self.write_flaky_job()
        self.run_with_code(1)
        self.use_smtp_host("127.0.0.1:%d" % closed_port())
        self.assertEqual(self.run_with_code(0), (0, "", ""))
        state = self.state()
        self.assertEqual(state["status"], "success")
        self.assertIn("cannot send the recovery mail", state["mail_error"])
        self.assertNotIn("failmail_sent", state)  # tried once: not again
        self.assertEqual(self.run_with_code(0), (0, "", ""))
        self.assertEqual(len(self.server.mails), 1)

    def test_a_5xx_reply_is_recorded(self):
        self.start_server({"MAIL": "550 5.7.1 relaying denied"})
        self.write_flaky_job()
        code, out, err = self.run_with_code(3)
        self.assertEqual(code, 1)
        self.assertIn("answered 550 5.7.1 relaying denied", err.splitlines()[1])
        self.assertIn("relaying denied", self.state()["mail_error"])
        self.assertNotIn("failmail_sent", self.state())

    def test_a_refusing_greeting_is_recorded(self):
        self.start_server({"greeting": "554 5.3.2 go away"})
        self.write_flaky_job()
        self.assertEqual(self.run_with_code(3)[0], 1)
        self.assertIn("answered 554 5.3.2 go away", self.state()["mail_error"])

    def test_a_recipient_refused_among_others(self):
        server = self.start_server(refuse=["gone@example.com"])
        self.write_flaky_job(extra="failmail:\n  to_address: [gone@example.com, ops@example.com]"
                                   "\n  from_address: jobs@example.com\n")
        self.assertEqual(self.run_with_code(3)[0], 1)
        self.assertEqual(server.mails[0][1], ["ops@example.com"])
        state = self.state()
        self.assertIn("refused gone@example.com (550 5.1.1 no such user)", state["mail_error"])
        self.assertIn("failmail_sent", state)  # ops was told: a success mails the recovery

    def test_every_recipient_refused(self):
        self.start_server(refuse=["ops@example.com"])
        self.write_flaky_job()
        self.assertEqual(self.run_with_code(3)[0], 1)
        self.assertIn("refused every recipient: ops@example.com (550 5.1.1 no such user)",
                      self.state()["mail_error"])

    def test_a_server_closing_mid_dialogue(self):
        self.start_server({"DATA": CLOSE})
        self.write_flaky_job()
        self.assertEqual(self.run_with_code(3)[0], 1)
        self.assertIn("Connection unexpectedly closed", self.state()["mail_error"])

    def test_a_garbage_reply(self):
        self.start_server({"EHLO": b"\x00garbage\r\n", "HELO": b"\x00garbage\r\n"})
        self.write_flaky_job()
        self.assertEqual(self.run_with_code(3)[0], 1)
        self.assertIn("answered no SMTP reply (bage)", self.state()["mail_error"])


class StopTests(MailTest):
    def test_kill_job_gives_up_a_mail_to_a_silent_server(self):
        # A server that accepts and never answers holds a run for the 30 s
        # bound (torture/mail.py shows it); SIGTERM ends the wait at once.
        self.server = self.start_server({"greeting": HANG})
        self.write_flaky_job()
        self.set_exit_code(3)
        process = self.start_in_background("flaky")
        deadline = time.monotonic() + 20
        while not self.server.connections:
            self.assertLess(time.monotonic(), deadline, "run-job never connected")
            time.sleep(0.02)
        # The outcome is recorded before the mail is tried: the state says
        # so while run-job still waits for the server.
        self.assertIsNone(process.poll())
        self.assertEqual((self.state()["status"], self.state()["consecutive_failures"]),
                         ("failed", 1))
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=10), 1)  # the run's outcome: failed
        self.assertLess(time.monotonic() - started, 5)
        state = self.state()
        self.assertEqual(state["status"], "failed")
        self.assertTrue(state["mail_error"].endswith(": given up: run-job got SIGTERM"),
                        state["mail_error"])
        self.assertIn(" #| outcome failed\n", self.log_text())  # the footer is written


class ReasonTests(unittest.TestCase):
    """The subjects' reasons, in the original's words where it had them."""

    def setUp(self):
        self.job = run_job.Job("nightly", commands=[["/bin/true"]], timeout=90.0)

    def summary(self, outcome):
        return run_job.failure_summary(self.job, outcome)

    def test_reasons(self):
        failed = run_job.Outcome("failed", "exit status 3", 3 << 8)
        self.assertEqual(self.summary(failed), "nightly failed with code 3")
        timeout = run_job.Outcome("timeout", "timeout 90s reached", 9)
        self.assertEqual(self.summary(timeout), "nightly timed out after 1.5 minutes")
        signaled = run_job.Outcome("failed", "killed by SIGSEGV", 11)
        self.assertEqual(self.summary(signaled), "nightly was terminated by SIGSEGV")
        output = run_job.Outcome("failed", "output matched fail_on_output pattern 'E'", 0)
        self.assertEqual(self.summary(output),
                         "nightly failed: output matched fail_on_output pattern 'E'")

    def test_what_mails(self):
        mailing = run_job.Job("nightly", commands=[["/bin/true"]],
                              failmail=run_job.Failmail(("", "a@b.c"), [("", "d@e.f")]),
                              failure_threshold_for_mail=0)
        failed = run_job.Outcome("failed", "exit status 1", 1 << 8)
        self.assertEqual(run_job.mail_to_send(mailing, failed, {"consecutive_failures": 1}),
                         "failure")
        self.assertIsNone(run_job.mail_to_send(mailing, failed, None))  # not recorded
        self.assertIsNone(run_job.mail_to_send(self.job, failed, {"consecutive_failures": 1}))
        for status in ("killed", "replaced"):
            self.assertIsNone(run_job.mail_to_send(mailing, run_job.Outcome(status, "x"),
                                                   {"consecutive_failures": 1,
                                                    "failmail_sent": "then"}))
        success = run_job.Outcome("success", "success", 0)
        self.assertEqual(run_job.mail_to_send(mailing, success, {"failmail_sent": "then"}),
                         "recovery")
        self.assertIsNone(run_job.mail_to_send(mailing, success, {}))


class ConfigTests(test_config.SandboxTest):
    def check(self):
        return self.sandbox.run("--check")

    def test_addresses_are_checked_at_their_line(self):
        path = self.sandbox.write_job("job", "command: /bin/true\nfailmail:\n"
                                             "  from_address: jobs@example.com\n"
                                             "  to_address: [ops@example.com, ops]\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            run_job.load_job(self.sandbox.load(), "job")
        self.assertEqual(str(caught.exception),
                         "%s:4:33: `failmail: to_address`: 'ops' is not a mail address such "
                         "as ops@example.com" % path)

    def test_both_addresses_are_required(self):
        path = self.sandbox.write_job("job", "command: /bin/true\n"
                                             "failmail: {to_address: ops@example.com}\n")
        with self.assertRaises(run_job.ConfigError) as caught:
            run_job.load_job(self.sandbox.load(), "job")
        self.assertTrue(str(caught.exception).startswith(
            "%s:2:1: `failmail` needs both `to_address` and `from_address`" % path))

    def test_an_empty_failmail_cancels_the_default(self):
        self.sandbox.write_config(extra="default_job_config:\n  " + FAILMAIL.replace(
            "\n  ", "\n    "))
        self.sandbox.write_job("quiet", "command: /bin/true\nfailmail:\n")
        self.sandbox.write_job("loud", "command: /bin/true\n")
        config = self.sandbox.load()
        self.assertIsNone(run_job.load_job(config, "quiet").failmail)
        self.assertEqual(run_job.load_job(config, "loud").failmail.recipients,
                         [("", "ops@example.com")])

    def test_smtp_host_is_checked(self):
        self.sandbox.write_config(extra="smtp_host: 'mail.example.com:smtp'\n")
        code, out, err = self.check()
        self.assertEqual(code, 78)
        self.assert_one_error_line(err, "%s:6:1: `smtp_host`: 'mail.example.com:smtp' is not "
                                        "HOST or HOST:PORT" % self.sandbox.config)
        self.sandbox.write_config(extra="smtp_host: '[::1]:2525'\n")
        self.assertEqual(self.sandbox.load().smtp_host, ("::1", 2525))
        self.sandbox.write_config()
        self.assertEqual(self.sandbox.load().smtp_host, ("localhost", 25))


# Sends a mail with only MAIL_MODULES loaded: it needs nothing more after
# the switch to the service user.
SEND_PRELOADED = r"""
import sys
sys.path.insert(0, sys.argv[1])
import run_job
for name in run_job.MAIL_MODULES:
    __import__(name)
before = set(sys.modules)
failmail = run_job.Failmail(("Jobs", "jobs@example.com"), [("", "ops@example.com")])
data = run_job.mail_message(failmail, "subject \xe9", "body \xe9\n", "host")
print(run_job.send_mail(("127.0.0.1", int(sys.argv[2])), failmail, data, "host", 10))
print(" ".join(sorted(set(sys.modules) - before)))
"""


class ImportTests(MailTest):
    def test_the_mail_modules_are_all_a_mail_needs(self):
        out = subprocess.check_output([sys.executable, "-c", SEND_PRELOADED,
                                       test_config.HERE, str(self.server.port)], timeout=30)
        self.assertEqual(out.decode().splitlines(), ["(True, None)", ""])
        self.assertIn("=?utf-8?", self.server.mails[0][2].decode())

    @test_config.root_only
    def test_a_run_as_root_mails_as_the_service_user(self):
        # The pyenv interpreter's library is unreadable to nobody: the mail's
        # modules must have been loaded before the switch.
        self.sandbox.write_config(user=test_config.UNPRIVILEGED,
                                  extra="smtp_host: '%s'\n" % self.server.address)
        for directory in ("log", "run", "state"):
            os.chown(self.sandbox.path(directory), *self.nobody_ids())
        os.chmod(self.code_file, 0o644)
        self.write_flaky_job()
        code, out, err = self.run_with_code(3)
        self.assertEqual(code, 1, err)
        self.assertEqual(len(self.server.mails), 1, err)
        self.assertIsNone(self.state().get("mail_error"))

    @staticmethod
    def nobody_ids():
        import pwd
        account = pwd.getpwnam(test_config.UNPRIVILEGED)
        return account.pw_uid, account.pw_gid


if __name__ == "__main__":
    unittest.main()
