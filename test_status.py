"""Tests for run-job --status and --status --json: what each job's state
is (never ran, succeeded, failed N times, running, paused, halted, backing
off, a skipped start), shown alike in text and in JSON, with every key the
README documents. Real processes, files and locks in temporary directories;
the pause and halt marks are written with run_job.update_state, as the
commands that set them do."""

import json
import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import test_config  # noqa: E402

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}"


def refuse_constant(name):
    raise ValueError("not JSON: %s" % name)


def strict_json(text):
    """TEXT as JSON, refusing the NaN and Infinity that Python would write."""
    return json.loads(text, parse_constant=refuse_constant)


def text_by_job(out):
    """{job name: its --status lines, head first} from --status output."""
    jobs, lines = {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            lines = jobs.setdefault(re.split(r" - | \*\*\*", line, 1)[0], [])
        lines.append(line)
    return jobs


def readme_status_keys():
    """{key: its nested keys, or None} from README's table under `## Status as JSON`."""
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as stream:
        readme = stream.read()
    section = readme[readme.index("\n## Status as JSON\n"):]
    section = section[:section.index("\n## ", 1)]
    keys = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            names, value = line.split(" | ")[:2]
            nested = re.search(r"`\{([^}]*)\}`", value)
            for name in re.findall(r"`([^`]+)`", names):
                keys[name] = nested.group(1).split(", ") if nested else None
    return keys


class StatusTest(test_config.SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.config = self.sandbox.load()

    def status_text(self, *names):
        code, out, err = self.sandbox.run("--status", *names)
        self.assertEqual((code, err), (0, ""))
        return text_by_job(out)

    def status_json(self, *arguments):
        code, out, err = self.sandbox.run("--status", "--json", *arguments)
        self.assertEqual((code, err), (0, ""))
        document = strict_json(out)
        self.assertEqual(sorted(document), ["crontab", "jobs"])
        return {job["name"]: job for job in document["jobs"]}

    def both(self, name):
        """(--status lines, --status --json object) of job NAME."""
        return self.status_text(name)[name], self.status_json(name)[name]

    def mark(self, name, **keys):
        """Set KEYS in job NAME's state, as a command does: under its lock."""
        run_job.update_state(self.config, name, lambda state: state.update(keys), time.time())

    def run_job(self, name, code=0):
        result = self.sandbox.run(name)
        self.assertEqual(result[0], code, result)

    def assert_agree(self, lines, job):
        """Each fact of JOB (--status --json) is in its text LINES."""
        text = "\n".join(lines)
        running = job["running"]
        if running is None:
            self.assertNotIn("status: running", lines[0])
        else:
            self.assertIn("{pid: %d, status: running}" % running["pid"], lines[0])
            self.assertIn("    running since %s, for " % running["start"], text)
        for key, words in (("paused", ("by", "at", "reason")), ("halted", ("since", "reason")),
                           ("last_skip", ("at", "reason"))):
            if job[key] is None:
                self.assertNotIn("    " + key.replace("last_skip", "last skipped"), text)
            for word in words if job[key] else ():
                if job[key][word] is not None:
                    self.assertIn(str(job[key][word]), text)
        if job["backing_off_until"] is None:
            self.assertNotIn("backing off", text)
        else:
            self.assertIn("    backing off until %s\n" % job["backing_off_until"], text + "\n")
        if job["state_error"] is not None:
            self.assertIn("    last status: unknown: %s" % job["state_error"], text)
        elif job["last_run"] is None:
            self.assertNotIn("last status", text)
        else:
            self.assertIn("    last status: %s at %s" % (job["last_run"]["status"],
                                                       job["last_run"]["start"]), text)
        if job["consecutive_failures"]:
            self.assertIn("    consecutive failures: %d, last success: %s"
                          % (job["consecutive_failures"], job["last_success"] or "never"), text)
        else:
            self.assertNotIn("consecutive failures", text)
        if job["next_run_time"] is not None:
            self.assertIn(time.strftime(", next run %Y-%m-%d %H:%M",
                                        time.localtime(job["next_run_time"])), text)
        for key in ("invalid", "state_error", "lock_error"):
            if job[key] is not None:
                self.assertIn(job[key], text)


class StatusOfEachStateTests(StatusTest):
    def test_a_job_that_never_ran(self):
        self.sandbox.write_job("new", "name: New job\ncommand: /bin/true\n"
                                      "schedule: '*/5 * * * *'\ntags: [a, b]\n")
        lines, job = self.both("new")
        self.assertEqual(lines[0], "new - New job")
        self.assertEqual(len(lines), 3, lines)  # tags, schedule: nothing recorded
        self.assertEqual((job["verbose_name"], job["tags"], job["schedule"], job["disabled"]),
                         ("New job", ["a", "b"], "*/5 * * * *", False))
        for key in ("running", "paused", "halted", "backing_off_until", "last_run",
                    "last_success", "last_skip", "invalid", "state_error"):
            self.assertIsNone(job[key], key)
        self.assertEqual(job["consecutive_failures"], 0)
        self.assertRegex(job["next_run"], "^" + ISO + "$")
        self.assertEqual(job["next_run_time"] % 300, 0)
        self.assertEqual(job["next_run"], run_job._iso_time(job["next_run_time"]))
        self.assertGreater(job["next_run_time"], time.time() - 1)
        self.assert_agree(lines, job)

    def test_a_success_then_failures_are_counted_from_the_last_success(self):
        flag = self.sandbox.path("flag")
        self.sandbox.write_job("flaky", "command: /bin/sh -c 'test -e %s || exit 3'\n" % flag)
        test_config.write_file(flag, "")
        self.run_job("flaky")
        lines, job = self.both("flaky")
        self.assertEqual(job["last_run"]["status"], "success")
        self.assertEqual(job["last_success"], job["last_run"]["start"])
        self.assertEqual(job["last_success_time"], job["last_run"]["start_time"])
        self.assertEqual(job["consecutive_failures"], 0)
        self.assertRegex(lines[-1], r"^    last status: success at %s \(exit code 0, \d+\.\d s\)$"
                         % ISO)
        self.assert_agree(lines, job)
        success = job["last_success"]
        os.unlink(flag)
        for _ in range(3):
            self.run_job("flaky", 1)
        lines, job = self.both("flaky")
        self.assertEqual((job["consecutive_failures"], job["last_success"]), (3, success))
        self.assertEqual((job["last_run"]["status"], job["last_run"]["exit_code"],
                          job["last_run"]["reason"]), ("failed", 3, "exit status 3"))
        self.assertTrue(os.path.isfile(job["last_run"]["log"]))
        self.assertEqual(lines[-1], "    consecutive failures: 3, last success: %s" % success)
        self.assertRegex(lines[-2], r"^    last status: failed at %s \(exit code 3, " % ISO)
        self.assertIsNone(job["backing_off_until"])  # no backoff configured
        self.assert_agree(lines, job)

    def test_failures_without_a_success_say_never(self):
        self.sandbox.write_job("broken", "command: /bin/false\n")
        self.run_job("broken", 1)
        self.run_job("broken", 1)
        lines, job = self.both("broken")
        self.assertEqual(lines[-1], "    consecutive failures: 2, last success: never")
        self.assertEqual((job["consecutive_failures"], job["last_success"],
                          job["last_success_time"]), (2, None, None))
        self.assert_agree(lines, job)

    def test_a_running_job_shows_its_pid_and_elapsed_time(self):
        self.sandbox.write_job("sleeper", "name: Sleeper\ncommand: /bin/sleep 30\n")
        self.sandbox.write_job("idle", "command: /bin/true\n")
        process = self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        deadline = time.monotonic() + 10
        while run_job.running_info(self.config, "sleeper")["pid"] is None:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        lines, job = self.both("sleeper")
        self.assertEqual(lines[0], "sleeper - Sleeper    {pid: %d, status: running}"
                         % process.pid)
        self.assertRegex(lines[1], r"^    running since %s, for \d+ s$" % ISO)
        running = job["running"]
        self.assertEqual((running["pid"], running["runner_died"]), (process.pid, False))
        self.assertEqual(running["start"], run_job._iso_time(running["start_time"]))
        self.assertGreaterEqual(running["elapsed"], 0)
        self.assertLess(running["elapsed"], 30)
        self.assertLess(abs(running["start_time"] + running["elapsed"] - time.time()), 10)
        self.assert_agree(lines, job)
        # --only-running and names: with --json as in text.
        self.assertEqual(list(self.status_json("--only-running")), ["sleeper"])
        self.assertEqual(list(self.status_json("-r", "idle", "sleeper")), ["sleeper"])
        self.assertEqual(list(self.status_json("sleeper", "idle")), ["sleeper", "idle"])
        self.assertEqual(list(self.status_text("-r")), ["sleeper"])

    def test_a_paused_job_says_by_whom_when_and_why(self):
        self.sandbox.write_job("report", "command: /bin/true\n")
        self.run_job("report")
        at = time.time()
        self.mark("report", paused=run_job._iso_time(at), paused_time=round(at, 3),
                  paused_by="alice", pause_reason="database migration")
        lines, job = self.both("report")
        self.assertEqual(job["paused"], {"by": "alice", "at": run_job._iso_time(at),
                                         "at_time": round(at, 3),
                                         "reason": "database migration"})
        self.assertIn("    paused by alice at %s: database migration" % run_job._iso_time(at),
                      lines)
        self.assertEqual(job["last_run"]["status"], "success")  # the marks keep the run
        self.assert_agree(lines, job)
        self.mark("report", pause_reason=None)
        lines, job = self.both("report")
        self.assertIn("    paused by alice at %s" % run_job._iso_time(at), lines)
        self.assertIsNone(job["paused"]["reason"])
        self.mark("report", paused=None, paused_time=None, paused_by=None)  # resumed
        lines, job = self.both("report")
        self.assertIsNone(job["paused"])
        self.assert_agree(lines, job)

    def test_a_halted_job_says_since_when_why_and_how_to_clear_it(self):
        self.sandbox.write_job("purge", "command: /bin/sh -c 'exit 4'\n")
        self.run_job("purge", 1)
        since = time.time()
        self.mark("purge", halted=run_job._iso_time(since), halted_time=round(since, 3),
                  halt_reason="exit code 4 is in halt_on_exit_codes")
        lines, job = self.both("purge")
        self.assertEqual(job["halted"], {"since": run_job._iso_time(since),
                                         "since_time": round(since, 3),
                                         "reason": "exit code 4 is in halt_on_exit_codes"})
        self.assertIn("    halted since %s: exit code 4 is in halt_on_exit_codes; run-job "
                      "--reset purge clears it" % run_job._iso_time(since), lines)
        self.assert_agree(lines, job)

    def test_a_skipped_start_is_shown_until_the_next_run(self):
        self.sandbox.write_job("tick", "command: /bin/true\nschedule: '*/5 * * * *'\n")
        self.run_job("tick")
        code, out, err = self.sandbox.run("--scheduled", "0 * * * *", "tick")
        self.assertEqual((code, out, err), (0, "", ""))
        lines, job = self.both("tick")
        reason = job["last_skip"]["reason"]
        self.assertTrue(reason.startswith("rescheduled: "), reason)
        self.assertRegex(job["last_skip"]["at"], "^" + ISO + "$")
        self.assertEqual(lines[-1], "    last skipped start: %s (%s)"
                         % (job["last_skip"]["at"], reason))
        self.assert_agree(lines, job)
        self.run_job("tick")
        self.assertIsNone(self.status_json("tick")["tick"]["last_skip"])

    @unittest.skipUnless(any(key.name == "backoff" for key in run_job.JOB_KEYS),
                         "the job key `backoff` is not in JOB_KEYS yet")
    def test_a_job_backing_off_says_until_when(self):
        self.sandbox.write_job("upload", "command: /bin/false\n"
                                         "backoff: {initial: 1h, max: 6h}\n")
        self.run_job("upload", 1)
        lines, job = self.both("upload")
        run = job["last_run"]
        until = run["start_time"] + run["duration"] + 3600
        self.assertAlmostEqual(job["backing_off_until_time"], until, places=2)
        self.assertEqual(job["backing_off_until"],
                         run_job._iso_time(job["backing_off_until_time"]))
        self.assertIn("    backing off until %s" % job["backing_off_until"], lines)
        self.assert_agree(lines, job)


class BackoffWindowTests(unittest.TestCase):
    """backoff_until: min(initial * 2**(failures - 1), max) after the end of
    the last failed run; what execute_job and --status both use."""

    class Job(object):
        def __init__(self, backoff):
            self.backoff = backoff

    STATE = {"start_time": 1000.0, "duration": 5.0}

    def until(self, backoff, failures, **state):
        record = dict(self.STATE, consecutive_failures=failures, **state)
        return run_job.backoff_until(self.Job(backoff), record, 2000.0)

    def test_the_window_doubles_with_each_failure_up_to_max(self):
        for failures, wait in ((1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (40, 600)):
            self.assertEqual(self.until((60, 600), failures), 1005.0 + wait, failures)

    def test_no_backoff_without_the_setting_or_a_failure(self):
        self.assertIsNone(self.until(None, 3))
        self.assertIsNone(self.until((60, 600), 0))

    def test_a_hostile_state_cannot_make_it_slow_or_fail(self):
        started = time.monotonic()
        self.assertEqual(self.until((60, 600), 10 ** 12), 1605.0)
        self.assertEqual(self.until((60, 600), 2, duration="x"), 1000.0 + 120)
        self.assertIsNone(self.until((60, 600), "many"))
        self.assertIsNone(self.until((60, 600), float("inf")))
        self.assertLess(time.monotonic() - started, 0.5)

    def test_status_shows_the_window_only_while_it_lasts(self):
        job = self.Job((60, 600))
        state = dict(self.STATE, job="x", status="failed", consecutive_failures=2)
        status = run_job.recorded_status(job, state, now=1100.0)
        self.assertEqual((status["backing_off_until_time"], status["backing_off_until"]),
                         (1125.0, run_job._iso_time(1125.0)))
        self.assertIsNone(run_job.recorded_status(job, state, now=1125.0)["backing_off_until"])


class StatusProblemTests(StatusTest):
    def test_an_invalid_job_and_a_bad_state_hide_nothing_in_json(self):
        self.sandbox.write_job("broken", "command: /bin/true\ntimout: 3\n")
        self.sandbox.write_job("corrupt", "command: /bin/true\n")
        self.sandbox.write_job("folder", "command: /bin/true\n")
        self.sandbox.write_job("good", "command: /bin/true\n")
        self.run_job("good")
        with open(run_job.state_path(self.config, "corrupt"), "wb") as state:
            state.write(b"\x00not a record\n")
        os.mkdir(run_job.state_path(self.config, "folder"))
        jobs = self.status_json()
        self.assertEqual(list(jobs), ["broken", "corrupt", "folder", "good"])
        self.assertRegex(jobs["broken"]["invalid"],
                         r"broken\.yaml:2:1: unknown key `timout`; did you mean `timeout`\?$")
        self.assertIsNone(jobs["broken"]["verbose_name"])
        self.assertIn("is not a state record of job corrupt; the next run sets it aside",
                      jobs["corrupt"]["state_error"])
        self.assertIn("not a regular file", jobs["folder"]["state_error"])
        for name in ("corrupt", "folder"):
            self.assertIsNone(jobs[name]["last_run"])
            self.assertIsNone(jobs[name]["consecutive_failures"])
        self.assertEqual(jobs["good"]["last_run"]["status"], "success")
        text = self.status_text()
        self.assertEqual(text["broken"][0], "broken ***Invalid configuration***")
        self.assertEqual(text["corrupt"][1], "    last status: unknown: "
                         + jobs["corrupt"]["state_error"])
        for name, job in jobs.items():
            self.assert_agree(text[name], job)

    def test_hostile_values_in_a_state_file_give_valid_json(self):
        self.sandbox.write_job("odd", "command: /bin/true\n")
        # As the service user's processes could write it (1e999 would make it
        # no record: json_line never writes an infinity).
        with open(run_job.state_path(self.config, "odd"), "wb") as state:
            state.write(b'{"job": "odd", "status": 7, "start_time": 1e308, "duration": -1e308, '
                        b'"consecutive_failures": "x", "paused": true, "paused_time": -1e300, '
                        b'"last_skip": "\\u001b[2J\xff", "halted": false, "halted_time": 1e20}\n')
        self.assertIsNotNone(run_job.read_job_state(self.config, "odd"))
        code, out, err = self.sandbox.run("--status", "--json")
        self.assertEqual((code, err), (0, ""))
        job = strict_json(out)["jobs"][0]
        self.assertEqual(job["last_run"]["status"], "7")
        self.assertEqual(job["last_run"]["start_time"], 1e308)  # a number, if no time
        self.assertEqual(job["consecutive_failures"], 0)
        self.assertEqual(job["paused"]["at"], "True")
        self.assertIsNone(job["halted"])  # false, and a time localtime cannot show
        self.assertEqual(job["last_run"]["duration"], -1e308)
        lines = self.status_text()["odd"]
        self.assertTrue(all(line.isprintable() for line in lines), lines)

    def test_json_is_for_status_only(self):
        self.sandbox.write_job("job", "command: /bin/true\n")
        for arguments in (["--list-jobs", "--json"], ["--check", "--json"],
                          ["--json", "job"], ["--kill-job", "job", "--json"]):
            code, out, err = self.sandbox.run(*arguments)
            self.assertEqual((code, out), (64, ""), arguments)
            self.assert_one_error_line(err, "--json applies only to --status")
        code, out, err = self.sandbox.run("--json")
        self.assertEqual((code, out), (64, ""))
        self.assert_one_error_line(err, "name a job to run, or an action such as --status")
        code, out, err = self.sandbox.run("--status", "--json=yes")
        self.assertEqual(code, 64)
        self.assert_one_error_line(err, "--json takes no value")

    def test_an_unknown_name_is_reported_after_the_json(self):
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--status", "--json", "job", "nosuch")
        self.assertEqual(code, 64)
        self.assertEqual([job["name"] for job in strict_json(out)["jobs"]], ["job"])
        self.assert_one_error_line(err, "no job named nosuch")

    def test_the_crontab_s_own_problem_closes_both(self):
        crontab = self.sandbox.path("crontab")
        self.sandbox.write_config(extra="output_crontab: %s\n" % crontab)
        test_config.write_file(crontab, "* * * * * root run-job --job gone --scheduled "
                                        "'* * * * *'\n")
        self.sandbox.write_job("job", "command: /bin/true\n")
        code, out, err = self.sandbox.run("--status", "--json")
        self.assertEqual((code, err), (0, ""))
        problem = strict_json(out)["crontab"]
        self.assertIn("crontab is out of date (it runs gone, which has no job file); run "
                      "cron-generate", problem)
        code, out, err = self.sandbox.run("--status")
        self.assertEqual(out.splitlines()[-1], "crontab: " + problem)
        self.assertIsNone(strict_json(self.sandbox.run("--status", "--json", "job")[1])["crontab"])


class DocumentedKeysTests(StatusTest):
    def test_every_documented_key_is_there_for_every_kind_of_job(self):
        documented = readme_status_keys()
        self.assertEqual(list(documented), list(run_job.STATUS_KEYS))
        self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")
        self.sandbox.write_job("done", "command: /bin/true\n")
        self.sandbox.write_job("broken", "command: [\n")
        self.run_job("done")
        now = time.time()
        self.mark("done", paused=run_job._iso_time(now), paused_time=now, paused_by="bob",
                  halted=run_job._iso_time(now), halted_time=now, halt_reason="why",
                  last_skip=run_job._iso_time(now), last_skip_reason="paused")
        self.start_in_background("sleeper")
        self.wait_until_running("sleeper")
        jobs = self.status_json()
        text = self.status_text()
        for name, job in jobs.items():
            self.assertEqual(list(job), list(documented), name)
            for key, nested in documented.items():
                if nested is not None and job[key] is not None:
                    self.assertEqual(sorted(job[key]), sorted(nested), (name, key))
            self.assert_agree(text[name], job)
        self.assertIsNotNone(jobs["sleeper"]["running"])
        self.assertIsNotNone(jobs["broken"]["invalid"])
        for key in ("paused", "halted", "last_run", "last_skip"):
            self.assertIsNotNone(jobs["done"][key], key)


@test_config.root_only
class StatusJsonAfterTheSwitchTests(test_config.SandboxTest):
    def test_json_is_loaded_before_the_switch(self):
        # The suite's interpreter (pyenv, under /root) is unreadable to nobody:
        # json must be imported while still root.
        self.sandbox.write_config(user=test_config.UNPRIVILEGED)
        self.sandbox.write_job("job", "command: /bin/true\nschedule: '0 * * * *'\n")
        code, out, err = self.sandbox.run("--status", "--json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(strict_json(out)["jobs"][0]["schedule"], "0 * * * *")


if __name__ == "__main__":
    unittest.main()
