"""metrics_directory and run-job --metrics: real run-job processes writing
node_exporter textfile collector files in temporary directories, read back
by a strict parser of the Prometheus text exposition format; metrics
directories that are symlinks, FIFOs, files, missing or not writable."""

import contextlib
import io
import os
import re
import stat
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from test_config import IS_ROOT, SandboxTest  # noqa: E402

# No SUDO_USER: the caller recorded is the real user, whoever runs the suite.
AS_CALLER = {"environ": {"SUDO_USER": ""}}
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
FAMILIES = ["process_control_" + family for family, _, _ in run_job.METRIC_FAMILIES]
OUTCOMES = ("success", "failed", "timeout", "killed", "replaced", "skipped")


class ExpositionError(AssertionError):
    pass


def parse_exposition(text):
    """TEXT (the Prometheus text format, as the textfile collector reads it)
    as {family: {"help": text, "type": type, "samples": {labels: value}}},
    labels a tuple of (name, value) pairs. Strict: every line ends with a
    newline; HELP then TYPE open each family, once; a family's samples follow
    them, contiguous; no timestamps, no duplicate series."""
    if text and not text.endswith("\n"):
        raise ExpositionError("the text does not end with a newline")
    families, current, seen = {}, None, set()
    for number, line in enumerate(text.splitlines(), 1):
        where = "line %d: %r" % (number, line)
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP "):].partition(" ")
            if not METRIC_NAME.match(name) or name in families or not help_text:
                raise ExpositionError("%s: a bad or repeated HELP" % where)
            families[name] = {"help": help_text, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE "):].partition(" ")
            if name != current or families[name]["type"] is not None or families[name]["samples"]:
                raise ExpositionError("%s: TYPE not right after its HELP" % where)
            if kind not in ("gauge", "counter"):
                raise ExpositionError("%s: unknown type" % where)
            families[name]["type"] = kind
        elif line.startswith("#") or not line:
            raise ExpositionError("%s: a comment or blank line of no use" % where)
        else:
            name, labels, value = parse_sample(line, where)
            if name != current or families[name]["type"] is None:
                raise ExpositionError("%s: not in its family's block" % where)
            if (name, labels) in seen:
                raise ExpositionError("%s: a duplicate series" % where)
            seen.add((name, labels))
            families[name]["samples"][labels] = value
    return families


def parse_sample(line, where):
    """(name, labels, value) of a sample line `name{labels} value`."""
    brace = line.find("{")
    if brace == -1:
        raise ExpositionError("%s: no labels (every series has job)" % where)
    name = line[:brace]
    if not METRIC_NAME.match(name):
        raise ExpositionError("%s: a bad metric name" % where)
    labels, position = [], brace + 1
    while line[position:position + 1] != "}":
        match = LABEL.match(line, position)
        if match is None:
            raise ExpositionError("%s: a bad label at column %d" % (where, position))
        value = re.sub(r'\\[\\"n]', lambda escape: ESCAPES[escape.group()], match.group(2))
        labels.append((match.group(1), value))
        position = match.end()
        if line[position:position + 1] == ",":
            position += 1
    rest = line[position + 1:]
    if not rest.startswith(" ") or " " in rest[1:]:
        raise ExpositionError("%s: not one value after the labels (a timestamp?)" % where)
    value = float(rest[1:])  # ValueError for anything else
    if value != value:
        raise ExpositionError("%s: NaN" % where)
    return name, tuple(labels), value


def samples_of(families, job):
    """{family or family/outcome: value} of job JOB's series."""
    found = {}
    for name, family in families.items():
        for labels, value in family["samples"].items():
            labels = dict(labels)
            if labels.pop("job") != job:
                continue
            key = name[len("process_control_"):]
            if "outcome" in labels:
                key += "/" + labels.pop("outcome")
            if labels:
                raise ExpositionError("unexpected labels %r" % labels)
            found[key] = value
    return found


class ParserTests(unittest.TestCase):
    """The parser must refuse what the collector refuses: else the tests
    below could pass on a bad file."""

    GOOD = ('# HELP a_b Some help.\n# TYPE a_b gauge\na_b{job="x"} 1\n'
            '# HELP c Help.\n# TYPE c counter\nc{job="x",outcome="y"} 2.5\n')

    def test_a_good_text_parses(self):
        families = parse_exposition(self.GOOD)
        self.assertEqual(families["c"]["samples"], {(("job", "x"), ("outcome", "y")): 2.5})

    def test_bad_texts_are_refused(self):
        for bad in (self.GOOD[:-1],  # no final newline
                    self.GOOD.replace("} 1\n", "} 1 1796174917000\n"),  # a timestamp
                    self.GOOD + 'a_b{job="z"} 1\n',  # a family split in two
                    self.GOOD + '# HELP a_b Again.\n',
                    self.GOOD.replace('{job="x"} 1', '{job="x"} 1\na_b{job="x"} 2'),
                    self.GOOD.replace('job="x"', 'job="x\\q"', 1),  # no such escape
                    self.GOOD.replace("# TYPE a_b gauge\n", ""),
                    self.GOOD.replace("\n# HELP c", "\n\n# HELP c")):
            with self.assertRaises((ExpositionError, ValueError), msg=bad):
                parse_exposition(bad)

    def test_label_values_are_escaped(self):
        name = 'a "quoted" \\ back\nslash'
        families = parse_exposition(run_job.metrics_text([run_job.job_series(name, {})]))
        self.assertEqual(samples_of(families, name)["paused"], 0)


class MetricsTest(SandboxTest):
    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.metrics = self.sandbox.path("metrics")
        os.mkdir(self.metrics)
        self.sandbox.write_config(extra="metrics_directory: metrics\n")
        self.config = self.sandbox.load()

    def prom_path(self, name):
        return os.path.join(self.metrics, "process_control_%s.prom" % name)

    def read_metrics(self, name):
        with open(self.prom_path(name)) as prom:
            families = parse_exposition(prom.read())
        self.assertEqual(list(families), [family for family in FAMILIES if family in families])
        return samples_of(families, name)

    def run_job(self, name, expected):
        code, out, err = self.sandbox.run(name)
        self.assertEqual((code, out), (expected, ""), err)
        return err

    def state(self, name):
        return run_job.read_job_state(self.config, name)

    def last_log(self, name):
        with open(self.state(name)["log"]) as log:
            return log.read()


class MetricsFileTests(MetricsTest):
    def test_a_success_a_failure_and_a_skip_rewrite_the_file(self):
        self.sandbox.write_job("good", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/sh -c 'exit 3'\n")
        self.run_job("good", 0)
        metrics = self.read_metrics("good")
        state = self.state("good")
        self.assertEqual(metrics["last_start_timestamp_seconds"], state["start_time"])
        self.assertAlmostEqual(metrics["last_finish_timestamp_seconds"],
                               state["start_time"] + state["duration"], places=2)
        self.assertEqual(metrics["last_success_timestamp_seconds"], state["start_time"])
        self.assertEqual(metrics["last_duration_seconds"], state["duration"])
        self.assertEqual((metrics["last_exit_code"], metrics["consecutive_failures"],
                          metrics["halted"], metrics["paused"]), (0, 0, 0, 0))
        self.assertEqual([metrics["runs_total/" + outcome] for outcome in OUTCOMES],
                         [1, 0, 0, 0, 0, 0])
        self.assertNotIn("metrics_error", state)  # none written while all goes well
        self.run_job("bad", 1)
        self.run_job("bad", 1)  # another process: the counters come from the state
        metrics = self.read_metrics("bad")
        self.assertEqual((metrics["last_exit_code"], metrics["consecutive_failures"],
                          metrics["last_success_timestamp_seconds"],
                          metrics["runs_total/failed"], metrics["runs_total/success"]),
                         (3, 2, 0, 2, 0))
        self.assertEqual(run_job.main(["--config", self.sandbox.config, "--pause", "bad"]), 0)
        self.assertEqual(self.read_metrics("bad")["paused"], 1)  # a command rewrites it too
        self.run_job("bad", 0)  # paused: a quiet skip
        metrics = self.read_metrics("bad")
        self.assertEqual((metrics["paused"], metrics["runs_total/skipped"],
                          metrics["runs_total/failed"]), (1, 1, 2))
        self.assertEqual(self.state("bad")["count_skipped"], 1)
        self.assertEqual(sorted(os.listdir(self.metrics)),
                         ["process_control_bad.prom", "process_control_good.prom"])

    def test_a_halted_job_and_a_signal(self):
        self.sandbox.write_job("stop", "command: /bin/sh -c 'kill -9 $$'\n"
                                       "halt_after_failures: 1\n")
        self.run_job("stop", 1)
        metrics = self.read_metrics("stop")
        self.assertEqual((metrics["last_exit_code"], metrics["halted"]), (128 + 9, 1))
        self.run_job("stop", 69)  # refused, and counted as a skip
        self.assertEqual(self.read_metrics("stop")["runs_total/skipped"], 1)
        self.assertEqual(run_job.main(["--config", self.sandbox.config, "--reset", "stop"]), 0)
        self.assertEqual(self.read_metrics("stop")["halted"], 0)

    def test_a_run_stopped_by_kill_job_counts_as_killed(self):
        self.sandbox.write_job("long", "command: /bin/sleep 60\n")
        process = self.start_in_background("long")
        self.wait_until_running("long")
        code, _, err = self.sandbox.run("--kill-job", "long")
        self.assertEqual(code, 0, err)
        self.assertEqual(process.wait(timeout=30), 1)
        metrics = self.read_metrics("long")
        self.assertEqual((metrics["runs_total/killed"], metrics["runs_total/failed"],
                          metrics["consecutive_failures"]), (1, 0, 0))

    def test_the_file_is_mode_0644_whatever_the_umask(self):
        self.sandbox.write_job("good", "command: /bin/true\n")
        code, _, err = self.sandbox.run("good", preexec_fn=lambda: os.umask(0o077))
        self.assertEqual(code, 0, err)
        status = os.lstat(self.prom_path("good"))
        self.assertTrue(stat.S_ISREG(status.st_mode))
        self.assertEqual(stat.S_IMODE(status.st_mode), 0o644)

    def test_a_fifo_or_symlink_in_place_of_the_file_is_replaced_not_written_through(self):
        self.sandbox.write_job("one", "command: /bin/true\n")
        self.sandbox.write_job("two", "command: /bin/true\n")
        os.mkfifo(self.prom_path("one"))
        target = self.sandbox.path("target")
        with open(target, "w") as victim:
            victim.write("keep\n")
        os.symlink(target, self.prom_path("two"))
        for name in ("one", "two"):
            self.run_job(name, 0)
            self.assertTrue(stat.S_ISREG(os.lstat(self.prom_path(name)).st_mode))
            self.assertEqual(self.read_metrics(name)["runs_total/success"], 1)
            self.assertNotIn("metrics_error", self.state(name))
        with open(target) as victim:
            self.assertEqual(victim.read(), "keep\n")
        self.assertEqual(sorted(os.listdir(self.metrics)),
                         ["process_control_one.prom", "process_control_two.prom"])

    def test_without_metrics_directory_nothing_is_written(self):
        self.sandbox.write_config()
        self.sandbox.write_job("good", "command: /bin/true\n")
        self.run_job("good", 0)
        self.assertEqual(os.listdir(self.metrics), [])
        self.assertEqual(self.state("good")["count_success"], 1)


class MetricsDirectoryFailureTests(MetricsTest):
    """A metrics directory that cannot be used: the run is what it would be
    without metrics, nothing hangs, the failure is in the log and the state."""

    def replace_directory(self, kind):
        os.rmdir(self.metrics)
        if kind == "symlink":
            os.mkdir(self.sandbox.path("elsewhere"))
            os.symlink(self.sandbox.path("elsewhere"), self.metrics)
        elif kind == "fifo":
            os.mkfifo(self.metrics)
        elif kind == "file":
            with open(self.metrics, "w"):
                pass
        elif kind == "unwritable":
            os.mkdir(self.metrics, 0o555)
            self.addCleanup(os.chmod, self.metrics, 0o755)

    def check_failure(self, kind, expected):
        self.sandbox.write_job("good", "command: /bin/true\n")
        self.sandbox.write_job("bad", "command: /bin/false\n")
        self.replace_directory(kind)
        for name, code, status in (("good", 0, "success"), ("bad", 1, "failed")):
            err = self.run_job(name, code)
            self.assertNotIn("metrics", err)  # a failure's summary is about the job
            state = self.state(name)
            self.assertEqual((state["status"], state["count_" + status]), (status, 1))
            self.assertIn(expected, state["metrics_error"])
            self.assertIn("#| metrics cannot ", self.last_log(name))
        if kind == "symlink":
            self.assertEqual(os.listdir(self.sandbox.path("elsewhere")), [])
        # Once the directory is right again, the next run writes and clears the note.
        if os.path.lexists(self.metrics) and not os.path.isdir(self.metrics) \
                or os.path.islink(self.metrics):
            os.unlink(self.metrics)
        if not os.path.lexists(self.metrics):
            os.mkdir(self.metrics)
        os.chmod(self.metrics, 0o755)
        self.run_job("good", 0)
        self.assertIsNone(self.state("good")["metrics_error"])
        self.assertEqual(self.read_metrics("good")["runs_total/success"], 2)

    def test_a_symlink_is_not_followed(self):
        self.check_failure("symlink", "a symlink, not followed")

    def test_a_fifo(self):
        self.check_failure("fifo", "a FIFO, not a directory")

    def test_a_file(self):
        self.check_failure("file", "a file, not a directory")

    def test_a_missing_directory(self):
        self.check_failure("missing", "No such file or directory")

    @unittest.skipIf(IS_ROOT, "root writes into a directory of mode 0555")
    def test_an_unwritable_directory(self):
        self.check_failure("unwritable", "Permission denied")

    def test_a_skip_notes_the_failure_in_the_state(self):
        self.sandbox.write_job("good", "command: /bin/true\n")
        self.replace_directory("fifo")
        self.assertEqual(run_job.main(["--config", self.sandbox.config, "--pause", "good"]), 0)
        self.run_job("good", 0)
        state = self.state("good")
        self.assertEqual((state["count_skipped"], state.get("status")), (1, None))
        self.assertIn("a FIFO", state["metrics_error"])


class MetricsCheckTests(MetricsTest):
    def check_warnings(self):
        err = io.StringIO()
        self.assertEqual(run_job.check_configuration(self.sandbox.load(), io.StringIO(), err), 0)
        return err.getvalue()

    def test_check_warns_of_a_metrics_directory_no_run_can_use(self):
        self.sandbox.write_job("good", "command: /bin/true\n")
        self.assertEqual(self.check_warnings(), "")
        os.rmdir(self.metrics)
        for make, expected in ((lambda: None, "does not exist: no run can write its "
                                "metrics file; create it, owned by "),
                               (lambda: os.symlink(self.sandbox.path("log"), self.metrics),
                                "is a symlink, not followed: no run"),
                               (lambda: os.mkfifo(self.metrics), "is a FIFO, not a directory: ")):
            if os.path.lexists(self.metrics):
                os.unlink(self.metrics)
            make()
            warning = self.check_warnings()
            self.assertEqual(len(warning.splitlines()), 1, warning)
            self.assertIn("process-control.yaml:", warning)
            self.assertIn("warning: the metrics directory %s %s" % (self.metrics, expected),
                          warning)


class MetricsCommandTests(MetricsTest):
    def metrics_command(self):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_job.main(["--config", self.sandbox.config, "--metrics"])
        return code, out.getvalue(), err.getvalue()

    def test_every_job_file_is_there_never_run_ones_included(self):
        self.sandbox.write_job("ran", "command: /bin/true\n")
        self.sandbox.write_job("never", "command: /bin/true\n")
        self.sandbox.write_job("broken", "command: [\n")  # no valid job file, still a job
        self.run_job("ran", 0)
        code, out, err = self.metrics_command()
        self.assertEqual((code, err), (0, ""))
        families = parse_exposition(out)
        self.assertEqual(list(families), FAMILIES)  # one HELP and TYPE each, in order
        self.assertEqual(set(dict(labels)["job"] for family in families.values()
                             for labels in family["samples"]), {"ran", "never", "broken"})
        with open(self.prom_path("ran")) as prom:
            self.assertEqual(samples_of(parse_exposition(prom.read()), "ran"),
                             samples_of(families, "ran"))
        never = samples_of(families, "never")
        self.assertEqual(never, dict(
            [("last_start_timestamp_seconds", 0), ("last_finish_timestamp_seconds", 0),
             ("last_success_timestamp_seconds", 0), ("consecutive_failures", 0),
             ("halted", 0), ("paused", 0)]
            + [("runs_total/" + outcome, 0) for outcome in OUTCOMES]))
        self.assertEqual(samples_of(families, "broken"), never)

    def test_no_jobs_no_series(self):
        self.assertEqual(self.metrics_command(), (0, "", ""))

    def test_a_damaged_state_reads_as_none(self):
        self.sandbox.write_job("odd", "command: /bin/true\n")
        with open(os.path.join(self.config.state_directory, "odd.state"), "w") as state:
            state.write('{"job": "odd", "start_time": "yesterday", "count_failed": -4, '
                        '"count_success": "many", "exit_code": 2.5}\n')
        odd = samples_of(parse_exposition(self.metrics_command()[1]), "odd")
        self.assertEqual((odd["last_start_timestamp_seconds"], odd["runs_total/failed"],
                          odd["runs_total/success"]), (0, 0, 0))
        self.assertNotIn("last_exit_code", odd)

    def test_it_takes_no_job_name(self):
        self.assertEqual(self.sandbox.run("--metrics", "x")[0], run_job.EXIT_USAGE)


if __name__ == "__main__":
    unittest.main()
