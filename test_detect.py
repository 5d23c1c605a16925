"""Retries (`retries`, `retry_delay`) and the fine-tuning of failure detection
(`stderr_ignore`, `fail_on_output`): real runs of run_job.py in a sandbox,
and the bulk matching checked against a plain line-by-line reference."""

import os
import random
import re
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import test_config  # noqa: E402
from test_run_job import notes, parse_log  # noqa: E402
from test_startup import PLAIN_RUN  # noqa: E402

# The interpreter of the import test: one whose start-up leaves `re` out.
PYTHON = test_config.SYSTEM_PYTHON if os.path.exists(test_config.SYSTEM_PYTHON) \
    else sys.executable
RE_AT_START_UP = subprocess.call(
    [PYTHON, "-c", "import sys; sys.exit('re' in sys.modules)"]) != 0

# Fails once: the first attempt leaves a marker file, the second finds it.
FAILS_ONCE = ("command: /bin/sh -c 'if [ -e marker ]; then echo second; "
              "else touch marker; echo first >&2; exit 3; fi'\n")
FAILS = "command: /bin/sh -c 'echo failing >&2; exit 3'\n"

# Runs job argv[3] with argv[1] (the script's directory) and config argv[2],
# halt_on_exit_codes set to [3] whether the key exists in this version or not.
HALT_DRIVER = r"""
import sys
sys.path.insert(0, sys.argv[1])
import run_job
config = run_job.load_global_config(sys.argv[2], {})
job = run_job.load_job(config, sys.argv[3])
job.halt_on_exit_codes = frozenset([3])
sys.exit(run_job.execute_job(config, job))
"""


def yaml_quoted(text):
    return "'%s'" % text.replace("'", "''")


class DetectTest(test_config.SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.config = self.sandbox.load()

    def log(self, name):
        """The bytes of job NAME's only log."""
        directory = self.sandbox.path("log", name)
        logs = sorted(os.listdir(directory))
        self.assertEqual(len(logs), 1, logs)
        with open(os.path.join(directory, logs[0]), "rb") as log:
            return log.read()

    def state(self, name):
        return run_job.read_job_state(self.config, name)

    def attempt_notes(self, name):
        return [value for key, value in notes(self.log(name)) if key == "attempt"]

    def runs(self, name):
        return [value for key, value in notes(self.log(name)) if key == "run"]


class RetryTests(DetectTest):
    def test_a_retry_succeeds_on_the_second_attempt(self):
        self.sandbox.write_job("flaky", FAILS_ONCE + "retries: 3\nretry_delay: 0.05\n")
        code, out, err = self.sandbox.run("flaky")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(self.attempt_notes("flaky"), ["1 of 4", "2 of 4 in 0.05s"])
        self.assertEqual(len(self.runs("flaky")), 2)
        self.assertIn(("attempts", "2"), notes(self.log("flaky")))
        state = self.state("flaky")
        self.assertEqual((state["status"], state["attempts"], state["consecutive_failures"]),
                         ("success", 2, 0))
        history = test_config.read_history(self.config, "flaky")
        self.assertEqual([entry.get("attempts") for entry in history], [2])
        # Both attempts' output in the one log, in order.
        payloads = [payload for _, tag, _, payload in parse_log(self.log("flaky"))
                    if tag != b"#"]
        self.assertEqual(payloads, [b"first", b"second"])

    def test_when_every_attempt_fails_the_run_fails_once_with_its_attempts(self):
        self.sandbox.write_job("broken", FAILS + "retries: 2\nretry_delay: 0.05\n")
        code, out, err = self.sandbox.run("broken")
        self.assertEqual(code, 1, err)
        self.assertIn("failed (exit status 3) after", err)
        self.assertIn("and 3 attempts; log", err)
        self.assertEqual(self.attempt_notes("broken"),
                         ["1 of 3", "2 of 3 in 0.05s", "3 of 3 in 0.1s"])
        self.assertEqual(len(self.runs("broken")), 3)
        state = self.state("broken")
        self.assertEqual((state["status"], state["exit_code"], state["attempts"],
                          state["consecutive_failures"]), ("failed", 3, 3, 1))
        # A later run with a single attempt drops the key.
        self.sandbox.write_job("broken", FAILS)
        self.sandbox.run("broken")
        state = self.state("broken")
        self.assertNotIn("attempts", state)
        self.assertEqual(state["consecutive_failures"], 2)

    def test_without_retries_the_log_has_no_attempt_records(self):
        self.sandbox.write_job("once", FAILS)
        code, _, _ = self.sandbox.run("once")
        self.assertEqual(code, 1)
        self.assertEqual(self.attempt_notes("once"), [])
        self.assertNotIn("attempts", self.state("once"))

    def test_the_delay_doubles_before_each_attempt(self):
        self.sandbox.write_job("doubling", FAILS + "retries: 3\nretry_delay: 0.1\n")
        code, _, err = self.sandbox.run("doubling")
        self.assertEqual(code, 1, err)
        records = parse_log(self.log("doubling"))

        def seconds(stamp):
            clock = stamp.decode().split()[1]
            hours, minutes, rest = clock.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(rest)
        waits = []
        for index, (stamp, tag, _, payload) in enumerate(records):
            if tag == b"#" and payload.startswith(b"attempt ") and b" in " in payload:
                following = records[index + 1]
                self.assertTrue(following[3].startswith(b"run 1 "), following)
                waits.append(seconds(following[0]) - seconds(stamp))
        self.assertEqual(len(waits), 3)
        for wait, delay in zip(waits, (0.1, 0.2, 0.4)):
            self.assertGreaterEqual(wait, delay - 0.002)
            self.assertLess(wait, delay + 0.3)

    def test_a_timeout_is_not_retried(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 5\ntimeout: 0.3\nkill_grace: 1\n"
                                       "retries: 3\nretry_delay: 0.01\n")
        code, _, err = self.sandbox.run("slow")
        self.assertEqual(code, 124, err)
        self.assertEqual(self.attempt_notes("slow"), ["1 of 4"])
        self.assertEqual(len(self.runs("slow")), 1)
        self.assertNotIn("attempts", self.state("slow"))

    def test_one_deadline_covers_every_attempt_and_the_delays(self):
        # Attempts at about 0, 0.4 and 1.2 s; the next delay, 1.6 s, would
        # pass the 2 s deadline: the run ends with its failure at once.
        self.sandbox.write_job("bounded", FAILS + "timeout: 2\nretries: 5\nretry_delay: 0.4\n")
        code, _, err = self.sandbox.run("bounded")
        self.assertEqual(code, 1, err)
        self.assertEqual(self.attempt_notes("bounded")[-1],
                         "4 of 6 not made: its delay of 1.6s would pass the deadline "
                         "(timeout 2s)")
        state = self.state("bounded")
        self.assertEqual((state["status"], state["attempts"]), ("failed", 3))
        self.assertLess(state["duration"], 1.9)

    def test_an_attempt_running_into_the_deadline_times_out(self):
        self.sandbox.write_job("late", "command: /bin/sh -c 'sleep 0.6; exit 1'\n"
                                       "timeout: 1\nretries: 3\nretry_delay: 0.05\n")
        code, _, err = self.sandbox.run("late")
        self.assertEqual(code, 124, err)
        state = self.state("late")
        self.assertEqual((state["status"], state["attempts"]), ("timeout", 2))
        self.assertLess(state["duration"], 1.9)

    def test_an_exit_code_of_halt_on_exit_codes_is_not_retried(self):
        self.sandbox.write_job("fatal", FAILS + "retries: 3\nretry_delay: 0.01\n")
        process = subprocess.run(
            [sys.executable, "-c", HALT_DRIVER, HERE, self.sandbox.config, "fatal"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.sandbox.root,
            timeout=30)
        self.assertEqual(process.returncode, 1, process.stderr)
        self.assertEqual(self.attempt_notes("fatal"),
                         ["1 of 4", "2 of 4 not made: exit code 3 is in halt_on_exit_codes"])
        self.assertEqual(len(self.runs("fatal")), 1)

    def wait_for_note(self, name, fragment):
        deadline = time.monotonic() + 10
        while True:
            directory = self.sandbox.path("log", name)
            if os.path.isdir(directory) and os.listdir(directory) and \
                    fragment in self.log(name):
                return
            self.assertLess(time.monotonic(), deadline, "no %r in the log" % fragment)
            time.sleep(0.01)

    def test_kill_job_during_the_delay_ends_the_run_without_retrying(self):
        self.sandbox.write_job("waiting", FAILS + "retries: 3\nretry_delay: 30\n")
        process = self.start_in_background("waiting")
        self.wait_for_note("waiting", b"attempt 2 of 4 in 30s")
        started = time.monotonic()
        code, _, err = self.sandbox.run("--kill-job", "waiting")
        self.assertEqual(code, 0, err)
        self.assertEqual(process.wait(timeout=10), 1)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(len(self.runs("waiting")), 1)
        state = self.state("waiting")
        self.assertEqual(state["status"], "killed")
        self.assertNotIn("attempts", state)

    def test_sigterm_during_a_command_is_not_retried(self):
        self.sandbox.write_job("stopped", "command: /bin/sleep 30\nretries: 3\n"
                                          "retry_delay: 0.01\n")
        process = self.start_in_background("stopped")
        self.wait_until_running("stopped")
        self.wait_for_note("stopped", b"run 1 ")
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=10), 1)
        self.assertEqual(self.attempt_notes("stopped"), ["1 of 4"])
        self.assertEqual(self.state("stopped")["status"], "killed")

    def test_an_output_failure_is_retried_and_cleared_by_a_clean_attempt(self):
        self.sandbox.write_job("noisy", "command: /bin/sh -c 'if [ -e marker ]; then echo "
                                        "fine; else touch marker; echo ERROR once; fi'\n"
                                        "fail_on_output: ERROR\nretries: 1\n"
                                        "retry_delay: 0.01\n")
        code, _, err = self.sandbox.run("noisy")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(self.state("noisy")["attempts"], 2)


class StderrIgnoreTests(DetectTest):
    def write(self, name, script, extra="fail_on_stderr: true\n"):
        self.sandbox.write_job(name, "command: %s\n" % yaml_quoted("/bin/sh -c '%s'" % script)
                               + "stderr_ignore: ['^warning:', 'deprecated']\n" + extra)

    def test_ignored_lines_do_not_fail_the_run(self):
        self.write("warns", "echo warning: old >&2; echo this is deprecated >&2; "
                            "printf \"warning: no newline\" >&2")
        code, _, err = self.sandbox.run("warns")
        self.assertEqual((code, err), (0, ""))
        # The lines are still logged.
        self.assertIn(b"E| warning: old\n", self.log("warns"))

    def test_another_line_fails_the_run(self):
        self.write("mixed", "echo warning: old >&2; echo trouble >&2; echo warning: x >&2")
        code, _, err = self.sandbox.run("mixed")
        self.assertEqual(code, 1)
        self.assertIn("wrote to stderr a line that stderr_ignore does not match "
                      "(fail_on_stderr)", err)

    def test_an_unfinished_last_line_counts(self):
        self.write("tail", "echo warning: old >&2; printf trouble >&2")
        self.assertEqual(self.sandbox.run("tail")[0], 1)

    def test_an_empty_line_counts(self):
        self.write("empty", "echo warning: old >&2; echo >&2")
        self.assertEqual(self.sandbox.run("empty")[0], 1)

    def test_without_fail_on_stderr_it_changes_nothing(self):
        self.write("lax", "echo trouble >&2", extra="")
        self.assertEqual(self.sandbox.run("lax")[0], 0)

    def test_each_command_is_judged_on_its_own_stderr(self):
        self.sandbox.write_job("two", "command:\n  - %s\n  - /bin/sh -c 'echo trouble >&2'\n"
                                      "fail_on_stderr: true\nstderr_ignore: '^warning:'\n"
                               % yaml_quoted("/bin/sh -c 'echo warning: a >&2'"))
        code, _, err = self.sandbox.run("two")
        self.assertEqual(code, 1)
        self.assertEqual(["status 1 exit status 0", "status 2 exit status 0"],
                         ["%s %s" % pair for pair in notes(self.log("two"))
                          if pair[0] == "status"])


# Writes the bytes of file argv[1] to fd argv[2], in pieces split at each
# "|", pausing between them so that run-job reads each on its own.
PIECES = ("import os, sys, time\n"
          "for piece in open(sys.argv[1], 'rb').read().split(b'|'):\n"
          "    os.write(int(sys.argv[2]), piece)\n"
          "    time.sleep(0.1)\n")


class FailOnOutputTests(DetectTest):
    def setUp(self):
        super().setUp()
        test_config.write_file(self.sandbox.path("pieces.py"), PIECES)

    def write_pieces(self, name, data, fd=1, patterns="['ERROR', '(?i)fatal']"):
        with open(self.sandbox.path(name + ".data"), "wb") as output:
            output.write(data)
        self.sandbox.write_job(name, "command: %s %s %s %d\nfail_on_output: %s\n" % (
            sys.executable, self.sandbox.path("pieces.py"), self.sandbox.path(name + ".data"),
            fd, patterns))

    def test_a_matching_stdout_line_fails_a_run_that_exits_0(self):
        self.write_pieces("out", b"fine\nan ERROR here\nfine\n")
        code, _, err = self.sandbox.run("out")
        self.assertEqual(code, 1)
        self.assertIn("(output matched fail_on_output pattern 'ERROR' on stdout: "
                      "\"an ERROR here\")", err)
        self.assertEqual(self.state("out")["reason"],
                         "output matched fail_on_output pattern 'ERROR' on stdout: "
                         "\"an ERROR here\"")

    def test_a_matching_stderr_line_and_the_second_pattern(self):
        self.write_pieces("err", b"fine\nFaTaL: disk full\n", fd=2)
        code, _, err = self.sandbox.run("err")
        self.assertEqual(code, 1)
        self.assertIn("pattern '(?i)fatal' on stderr: \"FaTaL: disk full\"", err)

    def test_no_match_no_failure(self):
        self.write_pieces("clean", b"fine\nerror in lower case\n")
        self.assertEqual(self.sandbox.run("clean")[:3:2], (0, ""))

    def test_a_line_split_across_reads_is_matched_whole(self):
        self.write_pieces("split", b"start\nER|RO|R: late\n", patterns="'^ERROR: late$'")
        code, _, err = self.sandbox.run("split")
        self.assertEqual(code, 1, err)
        self.assertIn("\"ERROR: late\"", err)
        # It was read in pieces: the log shows them as such.
        self.assertIn(b"O+ ER\n", self.log("split"))

    def test_a_line_unfinished_at_the_end_is_matched(self):
        self.write_pieces("unfinished", b"ok\nERROR without newline")
        code, _, err = self.sandbox.run("unfinished")
        self.assertEqual(code, 1, err)
        self.assertIn("\"ERROR without newline\"", err)

    def test_a_very_long_line_is_matched_on_its_first_64_kib(self):
        early = b"x" * 1000 + b"ERROR" + b"y" * 200000 + b"\n"
        self.write_pieces("early", early[:70000] + b"|" + early[70000:])
        code, _, err = self.sandbox.run("early")
        self.assertEqual(code, 1, err)
        self.assertIn("pattern 'ERROR' on stdout: \"xxx", err)
        self.assertLess(len(err.splitlines()[0]), 1000)  # the line is cut in the summary
        late = b"x" * 70000 + b"ERROR" + b"\n"
        self.write_pieces("late", late[:30000] + b"|" + late[30000:])
        self.assertEqual(self.sandbox.run("late")[0], 0)

    def test_binary_output_is_matched_and_the_summary_stays_printable(self):
        self.write_pieces("binary", b"\x00\xff\xfe\n\x80ERROR\x00\x1b[31m\xc3\n")
        code, _, err = self.sandbox.run("binary")
        self.assertEqual(code, 1, err)
        summary = err.splitlines()[0]
        self.assertTrue(summary.isprintable(), summary)
        self.assertIn("\"\ufffdERROR\\x00\\x1b[31m\ufffd\"", summary)

    def test_an_exit_failure_keeps_its_own_reason(self):
        self.sandbox.write_job("both", "command: /bin/sh -c 'echo ERROR; exit 2'\n"
                                       "fail_on_output: ERROR\n")
        code, _, err = self.sandbox.run("both")
        self.assertEqual(code, 1)
        self.assertEqual(self.state("both")["reason"], "exit status 2")

    def test_a_match_stops_the_command_list(self):
        self.sandbox.write_job("list", "command:\n  - /bin/echo ERROR\n  - /bin/echo second\n"
                                       "fail_on_output: ERROR\n")
        self.assertEqual(self.sandbox.run("list")[0], 1)
        self.assertEqual(len(self.runs("list")), 1)


class PatternConfigTests(DetectTest):
    def test_a_bad_pattern_is_reported_at_its_place_by_check(self):
        self.sandbox.write_job("bad", "command: /bin/true\nfail_on_output:\n"
                                      "  - fine\n  - 'ERR(OR'\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assert_one_error_line(
            err, "bad.yaml:4:5: `fail_on_output`: 'ERR(OR' is not a regular expression: "
                 "missing ), unterminated subpattern at character 4")
        code, out, err = self.sandbox.run("bad")
        self.assertEqual(code, 78)

    def test_a_bad_single_pattern_and_a_wrong_type(self):
        self.sandbox.write_job("one", "command: /bin/true\nstderr_ignore: '[a-'\n")
        code, _, err = self.sandbox.run("--check")
        self.assert_one_error_line(err, "one.yaml:2:1: `stderr_ignore`: '[a-' is not a "
                                        "regular expression")
        self.sandbox.write_job("one", "command: /bin/true\nstderr_ignore: [3]\n")
        code, _, err = self.sandbox.run("--check")
        self.assert_one_error_line(err, "one.yaml:2:17: `stderr_ignore` must be a list of "
                                        "regular expressions (strings), not a number")

    def test_check_warns_of_stderr_ignore_without_fail_on_stderr(self):
        self.sandbox.write_job("lax", "command: /bin/true\nstderr_ignore: '^warning'\n")
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 0, err)
        self.assert_one_error_line(err, "lax.yaml:2:1: warning: `stderr_ignore` does nothing "
                                        "without `fail_on_stderr: true`")
        self.sandbox.write_job("lax", "command: /bin/true\nstderr_ignore: '^warning'\n"
                                      "fail_on_stderr: true\n")
        self.assertEqual(self.sandbox.run("--check")[::2], (0, ""))

    def test_retries_must_be_counts_and_durations(self):
        self.sandbox.write_job("neg", "command: /bin/true\nretries: -1\n")
        code, _, err = self.sandbox.run("--check")
        self.assert_one_error_line(err, "neg.yaml:2:1: `retries` must be a whole number")
        self.sandbox.write_job("neg", "command: /bin/true\nretry_delay: soon\n")
        code, _, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        self.assertIn("neg.yaml:2:1: `retry_delay`", err)

    def imported(self, name):
        process = subprocess.run(
            [PYTHON, "-c", PLAIN_RUN, HERE, "--config", self.sandbox.config, name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.sandbox.root, timeout=30)
        self.assertEqual(process.returncode, 0, process.stderr)
        return set(process.stdout.decode().split())

    @unittest.skipIf(RE_AT_START_UP, "%s imports re as it starts" % PYTHON)
    def test_only_a_job_with_patterns_imports_re(self):
        self.sandbox.write_job("plain", "command: /bin/true\nretries: 2\nretry_delay: 1\n"
                                        "fail_on_stderr: true\n")
        self.assertNotIn("re", self.imported("plain"))
        self.sandbox.write_job("patterns", "command: /bin/true\nfail_on_output: ERROR\n")
        self.assertIn("re", self.imported("patterns"))


def reference_lines(stream):
    """The lines of STREAM (bytes) as matching sees them: without their
    newline, the last even when unfinished, each cut to LINE_MATCH_MAX."""
    lines = stream.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:run_job.LINE_MATCH_MAX] for line in lines]


class BulkMatchingTests(unittest.TestCase):
    """OutputCheck, fed chunks as run-job reads them, finds what re.search
    line by line finds: the first matching line, and whether a line matches
    no pattern; for line-safe patterns (searched in bulk) and the others."""

    PATTERNS = [["ERROR"], ["^fatal", "x$"], ["(?i)warn"], ["a.c", "[0-9]{2}"],
                [r"\bno\b", "z+"], [r"\s$"], [r"\Aab"], ["b(?!c)"], ["(?<=a)b"],
                ["[^a-z]"], ["^$"], ["ab|cd", "(?:e)f"], [r"\d\w"], ["é"], ["^a", "(?i)^b"],
                ["^a|b"], ["(?i)warn", "ERROR", "^x"], [r"a\sb", "ERROR"], [r"[^a]b"], [r"\D"],
                [r"\W+x"], [r"[\s,]a"], [r"b\Z", "^$"], [r"(a)\1"], ["(?P<n>a)b(?P=n)", "x"],
                ["a(?=b)", "ERROR"], ["(?<!a)b"], ["(?!a)"], [r"^\s*$"], [r"(?i)[^a-z]{2}"],
                [r"\sERROR"], ["[ab]ERROR", "x"], ["(?i)[xw]arn"], ["(ERROR|fatal)x"], ["ab+?c"],
                ["no\\b"], ["a{2}b"], ["(?i)e(RROR|rr)", "^d"], [r"\d+ERROR"], ["ER?ROR"],
                ["^a", "^b", "^c", "^\n"], ["^ab", "^ERROR", "x"], ["^a", "^ab"], ["^a", "^a"]]
    PIECES = [b"a", b"b", b"c", b"ERROR", b"fatal", b"x", b"\n", b"\n", b" ", b"WaRn",
              b"no", b"z", b"12", b"\xff", b"\xc3\xa9", b"e", b"f", b"d", b"\t"]

    def reference(self, patterns, stream):
        compiled = [re.compile(pattern.encode("utf-8")) for pattern in patterns]
        first, unmatched = None, False
        for line in reference_lines(stream):
            found = [pattern for pattern, each in zip(patterns, compiled) if each.search(line)]
            if found and first is None:
                first = (found[0], line)
            unmatched = unmatched or not found
        return first, unmatched

    def check(self, patterns, stream, chunks):
        origin = run_job.Origin("test", {}, ("key",))
        parsed = run_job.parse_patterns(patterns, "key", origin)
        check = run_job.OutputCheck(parsed, parsed)
        for chunk in chunks:
            check.feed(b"E", chunk)
        check.finish()
        found = check.matched and (check.matched[0], check.matched[2])
        return found, check.counted

    def test_bulk_agrees_with_line_by_line(self):
        rng = random.Random(42)
        for patterns in self.PATTERNS:
            for _ in range(300):
                stream = b"".join(rng.choice(self.PIECES) for _ in range(rng.randint(0, 30)))
                cuts = sorted(rng.sample(range(len(stream) + 1), min(3, len(stream) + 1)))
                chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
                self.assertEqual(self.check(patterns, stream, chunks),
                                 self.reference(patterns, stream), (patterns, stream, chunks))

    def test_line_safe_patterns_are_searched_in_bulk(self):
        exact = ["ERROR", "^fatal: .*$", "(?i)warn", r"a\.b\[c\]", r"\bx\d+\w", "(?:a|b)c",
                 "[a-z]{3}", "é", r"\s", r"a\Z", r"\Aa", "[^a]", r"[\s,]", r"\D\W", "(?P<x>a)",
                 "(?#note)a", "a\tb"]
        wider = ["a(?!b)", "(?<=a)b", r"(a)\1", "(?P<x>a)(?P=x)", "(?<!a)b|c"]
        line_by_line = ["(?s)a.b", "a\nb", r"\n", "a(?i)b", r"[\t-\r]", "(?(1)a|b)", "(?=a)*b",
                        r"[\n]"]
        for source in exact:
            self.assertEqual(run_job.line_safe_piece(source)[1], True, source)
        for source in wider:
            self.assertEqual(run_job.line_safe_piece(source)[1], False, source)
        for source in line_by_line:
            self.assertIsNone(run_job.line_safe_piece(source), source)

    def test_required_texts(self):
        cases = {"ERROR": ("ERROR",), r"\s(ERROR|FATAL)\s": ("ERROR", "FATAL"),
                 "[Ee]rror:": ("rror:",), "ab+?cde": ("cde",), "abc?d": ("ab",),
                 "x{2}yz": ("yz",), r"foo\.bar": ("foo.bar",), "(?:disk|memory) full": (" full",),
                 "a|bc": None, r"\d{4}-\d\d": None, r"^\s*$": None, "(a|)b": None}
        for source, texts in cases.items():
            self.assertEqual(run_job.required_texts(source), texts, source)

    def test_lines_counted_by_their_prefixes(self):
        # Each line starting with a prefix is told by counting: never when
        # one prefix starts another (a line would count twice) or holds a newline.
        self.assertEqual(run_job._plain_prefixes(["^x", "warning", "^y: "]), [b"x", b"y: "])
        for sources in (["^a", "^ab"], ["^a", "^a"], ["(?i)^a"], ["^a.b"]):
            self.assertIsNone(run_job._plain_prefixes(sources), sources)
        for patterns, stream in ((["^a", "^ab"], b"ab\nc\n"), (["^a", "^\n"], b"a\n\n")):
            self.assertEqual(self.check(patterns, stream, [stream]),
                             self.reference(patterns, stream), patterns)

    def test_no_piece_can_match_a_newline(self):
        for source in [r"\s", "[^a]", r"[\s,]+", r"\D\W", r"a\Z", r"(a)\1", "(?P<x>.)(?P=x)",
                       r"\Aa", "[^]a]"]:
            piece = re.compile(run_job.line_safe_piece(source)[0].encode(), re.MULTILINE)
            self.assertIsNone(piece.search(b"\n"), source)
            self.assertIsNone(piece.search(b"\n\n"), source)

    def test_long_lines_in_many_chunks(self):
        line = b"y" * (run_job.LINE_MATCH_MAX - 5) + b"ERROR" + b"tail" * 50000 + b"\n"
        stream = line + b"z" * (run_job.LINE_MATCH_MAX - 4) + b"ERROR\nlast ERROR\n"
        chunks = [stream[start:start + 4096] for start in range(0, len(stream), 4096)]
        for patterns in (["ERROR"], [r"ERROR\s*"]):
            self.assertEqual(self.check(patterns, stream, chunks),
                             self.reference(patterns, stream))
            self.assertEqual(len(self.check(patterns, stream, chunks)[0][1]),
                             run_job.LINE_MATCH_MAX)


if __name__ == "__main__":
    unittest.main()
