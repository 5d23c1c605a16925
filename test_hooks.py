"""Hooks (on_failure, on_recovery, on_success, hook_timeout): real run-job
processes on job files in temporary directories; each hook is a script that
records its arguments, environment and stdin in a file beside it."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import SandboxTest, read_history, write_file  # noqa: E402

VARIABLES = ("JOB", "STATUS", "REASON", "EXIT_CODE", "LOG", "DURATION",
             "CONSECUTIVE_FAILURES")

# Appends one tab-separated line per call to hooks.out beside it: the hook's
# key (its argument), each PROCESS_CONTROL_ variable (`unset` when it is not
# set), the job's own variable and what stdin held; then writes to the log.
HOOK_SCRIPT = """#!/bin/sh
stdin=$(cat)
printf '%%s\\t' "$1" %s "${JOB_VARIABLE-unset}" "$stdin" >> "$(dirname "$0")/hooks.out"
echo >> "$(dirname "$0")/hooks.out"
echo "hook $1 on stdout"
echo "hook $1 on stderr" >&2
exit ${HOOK_EXIT:-0}
""" % " ".join('"${PROCESS_CONTROL_%s-unset}"' % name for name in VARIABLES)

ALL_HOOKS = ("on_failure: {hook} on_failure\n"
             "on_recovery: {hook} on_recovery\n"
             "on_success: {hook} on_success\n")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def records(log, stream):
    """The bytes of the records of STREAM (b"O", b"E", b"H", b"#") in LOG."""
    return [line[27:] for line in log.split(b"\n")[:-1] if line[24:25] == stream]


def rebuilt(log, stream):
    """STREAM's bytes as README's "Log format" rebuilds them."""
    return b"".join(line[27:] + (b"\n" if line[25:26] == b"|" else b"")
                    for line in log.split(b"\n")[:-1] if line[24:25] == stream)


def notes(log):
    """The run-job records of LOG as (key, value) text pairs."""
    return [tuple(record.decode().split(" ", 1)) for record in records(log, b"#")]


class HookTest(SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.config = self.sandbox.load()
        self.hook = self.sandbox.path("hook.sh")
        write_file(self.hook, HOOK_SCRIPT, 0o755)
        self.flag = self.sandbox.path("failing")

    def write_job(self, name, text):
        """Job NAME, its command failing (exit 1) while the flag file exists."""
        self.sandbox.write_job(name, "command: /bin/sh -c 'test ! -e %s'\n%s" % (
            self.flag, text.format(hook=self.hook, path=self.sandbox.path)))

    def fail_from_now(self, failing=True):
        if failing:
            write_file(self.flag, "")
        elif os.path.exists(self.flag):
            os.unlink(self.flag)

    def calls(self):
        """Each hook call: a dict of its key, the variables, JOB_VARIABLE, stdin."""
        try:
            with open(self.sandbox.path("hooks.out")) as out:
                lines = out.read().splitlines()
        except FileNotFoundError:
            return []
        names = ("key",) + VARIABLES + ("JOB_VARIABLE", "stdin")
        return [dict(zip(names, line.split("\t"))) for line in lines]

    def state(self, name):
        return run_job.read_job_state(self.config, name)

    def last_log(self, name):
        with open(self.state(name)["log"], "rb") as log:
            return log.read()

    def run_timed(self, name):
        start = time.monotonic()
        result = self.sandbox.run(name)
        return result, time.monotonic() - start


class WhenHooksRunTests(HookTest):
    def test_on_failure_gets_the_run_in_its_environment_and_its_output_in_the_log(self):
        self.write_job("report", ALL_HOOKS + "environment: {{JOB_VARIABLE: from the job}}\n")
        self.fail_from_now()
        code, out, err = self.sandbox.run("report")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err.splitlines()[0][:30], "run-job: job report failed (ex")
        self.assertNotIn("hook", err)
        state = self.state("report")
        self.assertEqual(self.calls(), [{
            "key": "on_failure", "JOB": "report", "STATUS": "failed",
            "REASON": "exit status 1", "EXIT_CODE": "1", "LOG": state["log"],
            "DURATION": "%.3f" % state["duration"], "CONSECUTIVE_FAILURES": "1",
            "JOB_VARIABLE": "from the job", "stdin": ""}])
        self.assertNotIn("hook_error", state)
        log = self.last_log("report")
        self.assertEqual(rebuilt(log, b"H"),
                         b"hook on_failure on stdout\nhook on_failure on stderr\n")
        self.assertEqual(rebuilt(log, b"O") + rebuilt(log, b"E"), b"")
        keys = [key for key, _ in notes(log)]
        # After the command, before the footer.
        self.assertEqual(keys[keys.index("status"):],
                         ["status", "hook", "hook_status", "outcome", "reason", "exit",
                          "duration"])
        self.assertIn(("hook_status", "on_failure 1 exit status 0"), notes(log))

    def test_a_timeout_runs_on_failure_with_an_empty_exit_code(self):
        self.sandbox.write_job("slow", "command: /bin/sleep 30\ntimeout: 0.2\nkill_grace: 0\n"
                               + ALL_HOOKS.format(hook=self.hook))
        code, _, _ = self.sandbox.run("slow")
        self.assertEqual(code, 124)
        [call] = self.calls()
        self.assertEqual((call["key"], call["STATUS"], call["REASON"], call["EXIT_CODE"],
                          call["CONSECUTIVE_FAILURES"]),
                         ("on_failure", "timeout", "timeout 0.2s reached", "", "1"))

    def test_recovery_then_success_after_failures_and_success_alone_after_that(self):
        self.write_job("report", ALL_HOOKS)
        self.fail_from_now()
        self.assertEqual(self.sandbox.run("report")[0], 1)
        self.assertEqual(self.sandbox.run("report")[0], 1)
        self.fail_from_now(False)
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        calls = self.calls()
        self.assertEqual([(call["key"], call["STATUS"], call["EXIT_CODE"],
                           call["CONSECUTIVE_FAILURES"]) for call in calls],
                         [("on_failure", "failed", "1", "1"), ("on_failure", "failed", "1", "2"),
                          ("on_recovery", "success", "0", "2"), ("on_success", "success", "0", "2"),
                          ("on_success", "success", "0", "0")])
        self.assertEqual(calls[2]["LOG"], calls[3]["LOG"])  # the same run
        self.assertEqual(calls[2]["REASON"], "success")
        recovered = [key for key, _ in notes(self.last_log("report")) if key == "hook"]
        self.assertEqual(recovered, ["hook"])  # the last run: on_success alone

    def test_after_a_reset_the_next_success_is_no_recovery(self):
        self.write_job("report", ALL_HOOKS)
        self.fail_from_now()
        self.sandbox.run("report")
        self.assertEqual(self.sandbox.run("--reset", "report")[0], 0)
        self.fail_from_now(False)
        self.sandbox.run("report")
        self.assertEqual([call["key"] for call in self.calls()], ["on_failure", "on_success"])

    def test_on_failure_runs_once_after_the_last_attempt(self):
        self.write_job("report", ALL_HOOKS + "retries: 2\nretry_delay: 0\n")
        self.fail_from_now()
        self.assertEqual(self.sandbox.run("report")[0], 1)
        self.assertEqual([call["key"] for call in self.calls()], ["on_failure"])

    def test_no_hook_runs_after_a_run_killed_by_hand(self):
        self.sandbox.write_job("long", "command: /bin/sleep 30\n" + ALL_HOOKS.format(hook=self.hook))
        process = self.start_in_background("long")
        self.wait_until_running("long")
        self.assertEqual(self.sandbox.run("--kill-job", "long")[0], 0)
        self.assertEqual(process.wait(timeout=10), 1)
        self.assertEqual(self.state("long")["status"], "killed")
        self.assertEqual(self.calls(), [])
        self.assertNotIn("hook", [key for key, _ in notes(self.last_log("long"))])

    def test_a_hook_list_runs_in_sequence_and_stops_at_the_first_failure(self):
        self.write_job("report", "on_success:\n  - {hook} first\n  - /bin/sh -c 'exit 4'\n"
                                 "  - {hook} never\n")
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        self.assertEqual([call["key"] for call in self.calls()], ["first"])
        self.assertEqual(self.state("report")["hook_error"], "on_success: /bin/sh: exit status 4")


class HookFailureTests(HookTest):
    def test_a_failing_hook_is_recorded_and_changes_nothing_else(self):
        self.write_job("report", "on_success: /bin/sh -c 'echo bye; exit 5'\n")
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        state = self.state("report")
        self.assertEqual((state["status"], state["exit_code"], state["consecutive_failures"]),
                         ("success", 0, 0))
        self.assertEqual(state["hook_error"], "on_success: /bin/sh: exit status 5")
        log = self.last_log("report")
        self.assertIn(("hook_error", "on_success: /bin/sh: exit status 5"), notes(log))
        self.assertEqual(rebuilt(log, b"H"), b"bye\n")
        code, out, _ = self.sandbox.run("--status", "report")
        self.assertIn("    hook: on_success: /bin/sh: exit status 5\n", out)
        self.assertEqual(read_history(self.config, "report")[-1]["status"], "success")

        # The next run's hooks succeed: the error is gone.
        self.write_job("report", "on_success: /bin/true\n")
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        self.assertNotIn("hook_error", self.state("report"))

    def test_a_failed_runs_summary_names_the_hooks_failure(self):
        self.write_job("report", "on_failure: /nonexistent/notify\n")
        self.fail_from_now()
        code, out, err = self.sandbox.run("report")
        self.assertEqual((code, out), (1, ""))
        error = "on_failure: cannot start /nonexistent/notify: No such file or directory"
        self.assertEqual(err.splitlines()[1], "run-job: hook: " + error)
        self.assertEqual(self.state("report")["hook_error"], error)

    def test_a_hook_killed_by_a_signal_is_a_failure(self):
        self.write_job("report", "on_success: /bin/sh -c 'kill -SEGV $$'\n")
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        self.assertEqual(self.state("report")["hook_error"],
                         "on_success: /bin/sh: killed by SIGSEGV")

    def test_a_hanging_hook_is_stopped_as_a_tree_at_hook_timeout(self):
        pids = self.sandbox.path("pids")
        self.write_job("report", (
            "on_success: \"/bin/sh -c 'trap \\\"\\\" TERM; /bin/sleep 30 & echo $! >> {pids}; "
            "echo $$ >> {pids}; while :; do /bin/sleep 0.05; done'\"\n"
            "hook_timeout: 0.5s\nkill_grace: 0.2s\n").replace("{pids}", pids))
        (code, out, err), seconds = self.run_timed("report")
        self.assertEqual((code, out, err), (0, "", ""))
        self.assertLess(seconds, 0.5 + 0.2 + 2.0)
        state = self.state("report")
        self.assertEqual((state["status"], state["hook_error"]),
                         ("success", "on_success: /bin/sh: hook_timeout 0.5s reached"))
        with open(pids) as written:
            for pid in written.read().split():
                self.assertFalse(alive(int(pid)), pid)
        self.assertIn(("hook_status", "on_success 1 killed by SIGKILL"),
                      notes(self.last_log("report")))

    def test_a_flooding_hook_is_logged_up_to_1_mib(self):
        self.write_job("report", "on_success: /bin/sh -c 'yes x | head -c 1200000'\n")
        self.assertEqual(self.sandbox.run("report"), (0, "", ""))
        log = self.last_log("report")
        self.assertEqual(rebuilt(log, b"H"), b"x\n" * (run_job.HOOK_OUTPUT_MAX // 2))
        self.assertIn(("hook_output", "on_success: 1200000 bytes, the first 1048576 logged"),
                      notes(log))
        self.assertNotIn("hook_error", self.state("report"))

        # Without end: stopped at hook_timeout, the log still bounded.
        self.write_job("report", "on_success: /usr/bin/yes\nhook_timeout: 0.3\n")
        (code, out, err), seconds = self.run_timed("report")
        self.assertEqual((code, out, err), (0, "", ""))
        self.assertEqual(self.state("report")["hook_error"],
                         "on_success: /usr/bin/yes: hook_timeout 0.3s reached")
        self.assertEqual(len(rebuilt(self.last_log("report"), b"H")), run_job.HOOK_OUTPUT_MAX)

    def test_what_a_hook_leaves_running_is_stopped(self):
        pid_file = self.sandbox.path("pid")
        self.write_job("report", "on_failure: /bin/sh -c '/bin/sleep 30 > /dev/null & "
                                 "echo $! > %s'\n" % pid_file)
        self.fail_from_now()
        (code, _, err), seconds = self.run_timed("report")
        self.assertEqual(code, 1)
        self.assertNotIn("hook:", err)
        with open(pid_file) as pid:
            self.assertFalse(alive(int(pid.read())))
        self.assertIn(("hook_leftovers", "on_failure: 1 processes left behind; stopping them"),
                      notes(self.last_log("report")))
        self.assertNotIn("hook_error", self.state("report"))
        self.assertLess(seconds, 5)
        self.assertIsNone(run_job.running_info(self.config, "report"))

    def test_kill_job_during_a_hook_stops_the_hook_and_keeps_the_outcome(self):
        pid_file = self.sandbox.path("pid")
        self.write_job("report", "on_success: /bin/sh -c 'echo $$ > %s; exec /bin/sleep 30'\n"
                       % pid_file)
        process = self.start_in_background("report")
        deadline = time.monotonic() + 10
        while not os.path.exists(pid_file) or not os.path.getsize(pid_file):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertEqual(self.sandbox.run("--kill-job", "report")[0], 0)
        self.assertEqual(process.wait(timeout=10), 0)
        state = self.state("report")
        self.assertEqual((state["status"], state["hook_error"]),
                         ("success", "on_success: /bin/sh: stopped by SIGTERM sent to run-job"))
        with open(pid_file) as pid:
            self.assertFalse(alive(int(pid.read())))


class HookCheckTests(HookTest):
    def test_check_rejects_bad_hook_values_at_their_line(self):
        cases = {
            "empty": ("on_success: []\n", ":2:1: `on_success`"),
            "number": ("on_failure: 3\n", ":2:1: `on_failure`"),
            "unclosed": ("on_recovery: \"/bin/echo 'open\"\n", ":2:1: `on_recovery`"),
            "item": ("on_success:\n  - /bin/true\n  - 4\n", ":4:5: `on_success`"),
            "timeout": ("hook_timeout: soon\n", ":2:1: `hook_timeout`"),
            "missing": ("on_failure: /nonexistent/notify\n", ":2:1: `on_failure`: "),
        }
        for name, (text, _) in cases.items():
            self.sandbox.write_job(name, "command: /bin/true\n" + text)
        code, out, err = self.sandbox.run("--check")
        self.assertEqual(code, 78)
        lines = err.splitlines()
        for name, (_, where) in cases.items():
            path = os.path.join(self.sandbox.jobs, name + ".yaml")
            found = [line for line in lines if line.startswith("run-job: " + path + where)]
            self.assertEqual(len(found), 1, (name, err))
        self.assertEqual(len(lines), len(cases), err)

    def test_hooks_load_from_default_job_config_and_the_job_file_overrides(self):
        self.sandbox.write_config(extra="default_job_config:\n  on_failure: /bin/echo default\n"
                                        "  hook_timeout: 5s\n")
        self.sandbox.write_job("plain", "command: /bin/true\n")
        self.sandbox.write_job("own", "command: /bin/true\non_failure: [/bin/echo own, /bin/true]\n")
        config = self.sandbox.load()
        plain, own = run_job.load_job(config, "plain"), run_job.load_job(config, "own")
        self.assertEqual((plain.on_failure, plain.hook_timeout), ([["/bin/echo", "default"]], 5.0))
        self.assertEqual(own.on_failure, [["/bin/echo", "own"], ["/bin/true"]])
        self.assertEqual((own.on_success, own.on_recovery), (None, None))
        self.assertEqual(run_job.Job("x").hook_timeout, 60.0)

    def test_check_warns_about_shell_syntax_in_a_hook(self):
        self.sandbox.write_job("ping", "command: /bin/true\non_success: /bin/echo $HOME\n")
        code, _, err = self.sandbox.run("--check")
        self.assertEqual(code, 0)
        self.assertIn("warning: `on_success`: `$HOME` is passed to /bin/echo literally", err)


if __name__ == "__main__":
    unittest.main()
