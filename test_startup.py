"""A plain run's start-up: the str fast paths that keep `re` (and shlex,
datetime, enum) off it give exactly what the slow paths give, and a plain run
really imports none of them. Fixed seeds, a few thousand cases each."""

import itertools
import os
import random
import re
import shlex
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import test_config  # noqa: E402


def shlex_result(line):
    try:
        return shlex.split(line)
    except ValueError as error:
        return ("ValueError", str(error))


def our_result(line):
    try:
        return run_job.split_command_line(line)
    except ValueError as error:
        return ("ValueError", str(error))


class SplitCommandLineTests(unittest.TestCase):
    def test_every_short_line_splits_as_shlex_splits_it(self):
        alphabet = "a '\"\t\n\r\x0b\\#"
        for length in range(5):
            for letters in itertools.product(alphabet, repeat=length):
                line = "".join(letters)
                self.assertEqual(our_result(line), shlex_result(line), repr(line))

    def test_random_longer_lines_split_as_shlex_splits_them(self):
        pieces = ["a", "bc", " ", "  ", "\t", "'", '"', "'x y'", '"x y"', "''", '""',
                  "\n", "é", "=", "$", "#", "\x0c", "\\"]
        rng = random.Random(1234)
        without_backslash = 0
        for _ in range(3000):
            line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
            without_backslash += "\\" not in line
            self.assertEqual(our_result(line), shlex_result(line), repr(line))
        self.assertGreater(without_backslash, 1000)  # the str path was exercised

    def test_the_benchmark_and_example_lines(self):
        for line in ('"/bin/true"', "/usr/local/bin/report build --day yesterday",
                     "/bin/sh -c 'echo oops >&2; exit 3'", "a\"b c\"d ''"):
            self.assertEqual(run_job.split_command_line(line), shlex.split(line))


def regex_groups(match):
    if match is None:
        return None
    return (match.group(1), match.group(2), match.group(3), match.group(4),
            match.group(5), match.group(6), match.start(2), match.start(3))


def fast_groups(match):
    return regex_groups(match)


class SimpleLineTests(unittest.TestCase):
    """_simple_entry and _simple_item either decline (None) or give what
    SIMPLE_ENTRY and SIMPLE_ITEM would."""

    PIECES = ["a", "key", "_x", "b-c", "9", ":", ": ", " ", "  ", "#", " #", "'", '"',
              "'v w'", '"v w"', "\\", "\t", "-", "- ", "x:y", "é", "[", "&", "10m", "''"]

    def lines(self, rng, count):
        for _ in range(count):
            indent = " " * rng.choice((0, 0, 2))
            head = rng.choice(("", "", "a", "key", "_x", "b-c", "9k", "x'y", "k k", "-k",
                               "\t")) + rng.choice((":", ": ", ":  ", "::", ":x", ": #", ""))
            yield indent, indent + head + "".join(rng.choice(self.PIECES)
                                                  for _ in range(rng.randint(0, 6)))

    def test_entries_match_as_the_pattern_matches(self):
        rng = random.Random(99)
        accepted = 0
        for indent, line in self.lines(rng, 4000):
            column = len(indent)
            fast = run_job._simple_entry(line, column)
            slow = run_job._RX.SIMPLE_ENTRY.match(line, column)
            if fast is not None:
                accepted += 1
                self.assertEqual(fast_groups(fast), regex_groups(slow), repr(line))
                self.assertIsNotNone(run_job._RX.BLOCK_KEY.match(line, column), repr(line))
        self.assertGreater(accepted, 200)

    def test_items_match_as_the_pattern_matches(self):
        rng = random.Random(7)
        accepted = 0
        for indent, line in self.lines(rng, 4000):
            line = indent + "- " + line[len(indent):]
            column = len(indent)
            fast = run_job._simple_item(line, column)
            slow = run_job._RX.SIMPLE_ITEM.match(line, column)
            if fast is not None:
                accepted += 1
                self.assertEqual(fast_groups(fast), regex_groups(slow), repr(line))
        self.assertGreater(accepted, 200)

    def test_ordinary_lines_take_the_fast_path(self):
        for line in ("user: root", "timeout: 10m  # ten minutes", "command: '\"/bin/true\"'",
                     'name: "Nightly report"', "kill_grace:", "job_directory: /var/lib/x"):
            self.assertIsNotNone(run_job._simple_entry(line, 0), line)
        self.assertIsNotNone(run_job._simple_item("- /usr/bin/report upload", 0))


class ScalarShortcutTests(unittest.TestCase):
    NUMBER_PATTERNS = ("INT_DECIMAL", "LEADING_ZERO", "FLOAT_11", "INT_11",
                       "TIMESTAMP_11", "DATE", "INT_12", "HEX", "FLOAT_12")

    def test_a_foreign_character_means_no_number_pattern_matches(self):
        characters = run_job._NUMBER_CHARACTERS + "msdhgXyzé/"
        rng = random.Random(5)
        foreign = 0
        for _ in range(4000):
            text = rng.choice("0123456789+-.") + "".join(
                rng.choice(characters) for _ in range(rng.randint(0, 6)))
            if text.strip(run_job._NUMBER_CHARACTERS):
                foreign += 1
                for name in self.NUMBER_PATTERNS:
                    self.assertIsNone(getattr(run_job._RX, name).match(text), (name, text))
        self.assertGreater(foreign, 1000)
        for name in self.NUMBER_PATTERNS:  # and every character a pattern names is listed
            source = getattr(run_job._Patterns, name).source
            for letter in re.findall(r"[A-Za-z]", re.sub(r"\\[A-Za-z]", "", source)):
                self.assertIn(letter, run_job._NUMBER_CHARACTERS, name)

    def test_decimal_shortcut_agrees_with_the_pattern(self):
        for text in ["0", "00", "01", "10", "123", "0123"] + [str(n) for n in range(0, 3000, 7)]:
            fast = not text.strip("0123456789") and (text[0] != "0" or len(text) == 1)
            self.assertEqual(fast, run_job._RX.INT_DECIMAL.match(text) is not None, text)

    def test_clean_ascii_agrees_with_the_bad_character_pattern(self):
        rng = random.Random(11)
        alphabet = [chr(code) for code in range(0, 0x100)] + ["\u2028", "\ufeff", "é"]
        for _ in range(3000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
            if run_job._is_clean_ascii(text):
                self.assertIsNone(run_job._RX.BAD_CHARACTER.search(text), repr(text))
            else:
                self.assertTrue(run_job._RX.BAD_CHARACTER.search(text) is not None
                                or max(map(ord, text)) > 0x7F, repr(text))


PLAIN_RUN = r"""
import sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
import run_job
code = run_job.main(sys.argv[2:])
print(" ".join(sorted(set(sys.modules) - before)))
sys.exit(code)
"""


class PlainRunImportTests(test_config.SandboxTest):
    HEAVY = {"re", "enum", "shlex", "datetime", "json", "ctypes", "signal", "functools",
             "collections", "difflib", "subprocess"}

    def test_a_plain_run_imports_nothing_heavy(self):
        self.sandbox.make_directories()
        self.sandbox.write_job("bench", "command: '\"/bin/true\"'\ntimeout: 10m\n")
        self.sandbox.write_job("plain", "# a job\ncommand:\n  - /bin/true --x=1\n"
                                        "  - /bin/sh -c 'exit 0'  # quoted\n"
                                        "kill_grace: 5\nenvironment:\n  A: b\n")
        for name in ("bench", "plain"):
            process = subprocess.Popen(
                [sys.executable, "-c", PLAIN_RUN, HERE, "--config", self.sandbox.config, name],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.sandbox.root)
            out, err = process.communicate(timeout=30)
            self.assertEqual(process.returncode, 0, err)
            imported = set(out.decode().split())
            self.assertIn("run_job", imported)
            self.assertEqual(imported & self.HEAVY, set(), name)


@test_config.root_only
class AfterTheSwitchTests(test_config.SandboxTest):
    def test_job_files_needing_the_lazy_modules_load_after_the_switch(self):
        # The pyenv interpreter is unreadable to nobody: regex patterns, dates
        # and shlex are needed only after the switch, so they must be preloaded.
        self.sandbox.write_config(user=test_config.UNPRIVILEGED)
        self.sandbox.write_job("lazy", "command: /bin/sh -c 'test \"$D\" = 2020-01-02' \\\\\n"
                                       "environment: {D: 2020-01-02}\ntags: [a, b]\n"
                                       "timeout: 1.5e+3\n")
        code, out, err = self.sandbox.run("lazy")
        self.assertEqual((code, err), (0, ""))
        self.sandbox.write_job("unknown", "command: /bin/true\ntimeot: 5\n")
        code, out, err = self.sandbox.run("unknown")
        self.assertEqual(code, 78, err)
        self.assert_one_error_line(err, "did you mean `timeout`?")



def is_glibc():
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


def memory_figures(pid):
    """(VmRSS, VmHWM) of process PID in KiB: resident now, and at its peak."""
    figures = {}
    with open("/proc/%d/status" % pid, "rb") as status:
        for line in status:
            key, _, value = line.partition(b":")
            if key in (b"VmRSS", b"VmHWM"):
                figures[key] = int(value.split()[0])
    return figures[b"VmRSS"], figures[b"VmHWM"]


# Makes 40 MB of C heap free but resident, as compiling a script does: blocks
# of 1,000 bytes (malloc's, not pymalloc's), then one kept above them, so that
# freeing them cannot simply shrink the heap from its top.
FRAGMENTED_RUN = r"""
import sys
sys.path.insert(0, sys.argv[1])
import run_job
blocks = [bytes(1000) for _ in range(40000)]
kept = bytes(1000)
del blocks
sys.exit(run_job.main(sys.argv[2:]))
"""


@unittest.skipUnless(is_glibc(), "malloc_trim is glibc's")
class FreedMemoryTests(test_config.SandboxTest):
    """While its job runs, run-job gives back what loading freed."""

    def setUp(self):
        super().setUp()
        self.sandbox.make_directories()
        self.sandbox.write_job("sleeper", "command: /bin/sleep 30\n")

    def test_malloc_trim_is_found_and_returns(self):
        trim, _, c_ulong, _ = run_job._c_function("malloc_trim")
        self.assertIn(trim(c_ulong(0)), (0, 1))

    def resident_and_peak_while_the_job_runs(self, process, margin):
        """Once the job has started, (VmRSS, VmHWM) of PROCESS as soon as they
        are MARGIN KiB apart, or after a few seconds however far apart."""
        config = self.sandbox.load()
        deadline = time.monotonic() + 10
        while not (run_job.running_info(config, "sleeper") or {}).get("pgid"):
            if process.poll() is not None:
                self.fail("run-job ended: %s" % process.stderr.read().decode())
            self.assertLess(time.monotonic(), deadline, "the job never started")
            time.sleep(0.02)
        deadline = time.monotonic() + 3
        resident, peak = memory_figures(process.pid)
        while peak - resident < margin and time.monotonic() < deadline:
            time.sleep(0.02)
            resident, peak = memory_figures(process.pid)
        return resident, peak

    def test_the_script_gives_back_what_its_compiler_freed(self):
        # `python3 run_job.py` as installed: CPython compiles the script at
        # every start; its syntax tree alone is several MB.
        process = self.start_in_background("sleeper", script=test_config.RUN_JOB)
        resident, peak = self.resident_and_peak_while_the_job_runs(process, 4096)
        self.assertGreater(peak - resident, 4096, (resident, peak))

    def test_a_heap_freed_before_the_run_is_given_back(self):
        process = subprocess.Popen(
            [sys.executable, "-c", FRAGMENTED_RUN, HERE, "--config", self.sandbox.config,
             "sleeper"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=self.sandbox.root)
        self.addCleanup(process.stderr.close)
        self.addCleanup(process.wait)
        self.addCleanup(process.terminate)
        resident, peak = self.resident_and_peak_while_the_job_runs(process, 20480)
        self.assertGreater(peak - resident, 20480, (resident, peak))


if __name__ == "__main__":
    unittest.main()
