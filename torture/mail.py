"""mail: failure and recovery mail against SMTP servers that misbehave: one
that accepts and never answers (at the greeting, or after the message),
one that dribbles a reply a byte a second (so only the bound on the whole
exchange stops it), one that refuses the connection, one that answers 5xx
(greeting, MAIL, RCPT, end of data), one that closes mid-dialogue, one that
replies garbage. Each trial is a failing run (a failure mail, exit 1) or a
success after a mailed failure (a recovery mail, exit 0 and no output): the
outcome, the exit code and the state must be right whatever the server
does, the state must say why the mail was not sent, and no run may take
longer than the 30 s bound (the hanging kinds run side by side)."""

import json
import random
import sys
import threading
import time

import common

sys.path.insert(0, common.REPO)
import test_mail  # noqa: E402  (its SmtpServer)

BOUND = 30.0      # run_job.MAIL_TIMEOUT
SLACK = 6.0       # the run's own start and end on a loaded machine

# kind -> SmtpServer replies (None: nothing listens on the port).
FAST_KINDS = {
    "ok": {},
    "refused": None,
    "554 greeting": {"greeting": "554 5.3.2 not now"},
    "550 MAIL": {"MAIL": "550 5.7.1 relaying denied"},
    "421 RCPT": {"RCPT": "421 4.3.2 shutting down"},
    "552 end of data": {"end of data": "552 5.3.4 too big"},
    "close at greeting": {"greeting": test_mail.CLOSE},
    "close at EHLO": {"EHLO": test_mail.CLOSE, "HELO": test_mail.CLOSE},
    "close at DATA": {"DATA": test_mail.CLOSE},
    "close after data": {"end of data": test_mail.CLOSE},
}
SLOW_KINDS = {
    "silent greeting": {"greeting": test_mail.HANG},
    "silent after data": {"end of data": test_mail.HANG},
    "dribbling EHLO": {"EHLO": test_mail.DRIBBLE},
}
GARBAGE_STAGES = ("greeting", "EHLO", "MAIL", "RCPT", "DATA", "end of data")


def garbage_replies(rng):
    """A random stage answered with random bytes, ending in a line end or not."""
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    if rng.random() < 0.7:
        junk += b"\r\n"
    stage = rng.choice(GARBAGE_STAGES)
    replies = {stage: junk}
    if stage == "EHLO":
        replies["HELO"] = junk
    return "garbage at %s" % stage, replies


JOB = ("command: /bin/sh -c 'echo oops >&2; exit $(cat {code})'\n"
       "failmail:\n  to_address: ops@example.com\n  from_address: jobs@example.com\n")


class Trial(object):
    """One run of a job whose mail goes to a server of KIND (REPLIES);
    RECOVERY: a success after a failure mailed through a good server."""

    def __init__(self, kind, replies, recovery, good_server):
        self.kind = kind
        self.recovery = recovery
        self.sandbox = common.Sandbox(prefix="pc-torture-mail-")
        self.code_file = self.sandbox.path("code")
        self.sandbox.write_job("mailer", JOB.format(code=self.code_file))
        self.server = None
        if replies is not None:
            self.server = test_mail.SmtpServer(replies)
            address = self.server.address
        else:
            address = "127.0.0.1:%d" % test_mail.closed_port()
        if recovery:
            self.use(good_server.address)
            self.set_code(3)
            self.sandbox.run(["mailer"])
        self.use(address)
        self.set_code(0 if recovery else 3)
        self.start = time.monotonic()
        self.process = self.sandbox.popen(["mailer"])
        self.ended = None  # (code, out, err, seconds), when it ends: timed as it ends
        self.waiter = threading.Thread(target=self.wait)
        self.waiter.start()

    def wait(self):
        self.ended = common.finish(self.process, BOUND + 30, self.start)

    def use(self, address):
        self.sandbox.write_config(extra="smtp_host: '%s'\n" % address)

    def set_code(self, code):
        common.write_file(self.code_file, "%d\n" % code)

    def judge(self):
        self.waiter.join()
        code, _, err, seconds = self.ended
        self.seconds = seconds
        try:
            return self.problems(code, err, seconds)
        finally:
            if self.server is not None:
                self.server.stop()
            self.sandbox.remove()

    def problems(self, code, err, seconds):
        if code is common.HUNG:
            return ["hung past %.0f s" % (BOUND + 30)]
        if b"Traceback" in err:
            return ["traceback: %s" % common.last_line(err)]
        if seconds > BOUND + SLACK:
            return ["took %.1f s, beyond the %.0f s bound" % (seconds, BOUND)]
        with open(self.sandbox.state("mailer"), "rb") as stream:
            state = json.loads(stream.read().decode())
        sent = self.kind == "ok"
        which = "recovery" if self.recovery else "failure"
        if self.recovery:
            problems = self.recovery_problems(code, err, state)
        else:
            problems = self.failure_problems(code, err, state, sent)
        if sent and state.get("mail_error") is not None:
            problems.append("mail_error %r with a server that takes mail" % state["mail_error"])
        if not sent and not str(state.get("mail_error")).startswith(
                "cannot send the %s mail to ops@example.com: " % which):
            problems.append("mail_error %r" % state.get("mail_error"))
        if sent and len(self.server.mails) != 1:
            problems.append("%d mails taken, not 1" % len(self.server.mails))
        return problems

    def failure_problems(self, code, err, state, sent):
        problems = []
        lines = err.decode("utf-8", "replace").splitlines()
        if code != 1 or state.get("status") != "failed":
            problems.append("exit %r, status %r: not a failure" % (code, state.get("status")))
        if state.get("consecutive_failures") != 1:
            problems.append("consecutive_failures %r" % state.get("consecutive_failures"))
        expected = ["run-job: the end of its stderr:", "oops"]
        if not sent:
            expected.insert(0, "run-job: mail: %s" % state.get("mail_error"))
        if not lines or "job mailer failed (exit status 3)" not in lines[0] \
                or lines[1:] != expected:
            problems.append("stderr %r" % err[:300])
        if ("failmail_sent" in state) != sent:
            problems.append("failmail_sent %r" % state.get("failmail_sent"))
        return problems

    def recovery_problems(self, code, err, state):
        problems = []
        if (code, err) != (0, b""):
            problems.append("exit %r, stderr %r: a success must print nothing" % (code, err[:200]))
        if state.get("status") != "success" or state.get("consecutive_failures") != 0:
            problems.append("status %r, consecutive_failures %r"
                            % (state.get("status"), state.get("consecutive_failures")))
        if "failmail_sent" in state:
            problems.append("failmail_sent left after the recovery mail was tried")
        return problems


def run(args):
    rng = random.Random(args.seed)
    tally = common.Tally(args.failures)
    good = test_mail.SmtpServer()
    slow, slow_seconds = [], []
    try:
        if not args.quick:  # each takes the whole bound: side by side, first
            slow = [Trial(kind, replies, recovery, good) for kind, replies
                    in sorted(SLOW_KINDS.items()) for recovery in (False, True)]
        rounds = 1 if args.quick else 3
        for _ in range(rounds):
            kinds = sorted(FAST_KINDS.items()) + [garbage_replies(rng) for _ in range(3)]
            for kind, replies in kinds:
                for recovery in (False, True):
                    trial = Trial(kind, replies, recovery, good)
                    tally.check(trial.judge(), "%s (%s)" % (kind, "recovery" if recovery
                                                            else "failure"))
        for trial in slow:
            tally.check(trial.judge(), "%s (%s)" % (trial.kind, "recovery" if trial.recovery
                                                    else "failure"))
            slow_seconds.append(trial.seconds)
    finally:
        good.stop()
    if slow_seconds:
        figure = ("%d server behaviours; silent and dribbling servers given up after "
                  "%.1f-%.1f s (bound %.0f s, %d side by side)"
                  % (len(FAST_KINDS) + len(SLOW_KINDS) + len(GARBAGE_STAGES),
                     min(slow_seconds), max(slow_seconds), BOUND, len(slow)))
    else:
        figure = ("%d server behaviours; silent and dribbling servers not tried in --quick "
                  "(each takes the %.0f s bound)" % (len(FAST_KINDS) + len(GARBAGE_STAGES),
                                                      BOUND))
    return tally.trials, tally.ok, figure
