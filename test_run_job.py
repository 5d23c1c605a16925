"""Tests for run_job.py: real processes, files and locks in temporary directories.

Run as `python3 test_run_job.py` (what `make test` does): it runs every
test_*.py beside it and ends with one summary line.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402


class ErrorTests(unittest.TestCase):
    def test_config_error_reads_source_line_column(self):
        error = run_job.ConfigError("tab used as indentation; use spaces", "a.yaml", 3, 1)
        self.assertEqual(str(error), "a.yaml:3:1: tab used as indentation; use spaces")
        self.assertEqual((error.source, error.line, error.column), ("a.yaml", 3, 1))
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.exit_code, 78)

    def test_config_error_without_position(self):
        self.assertEqual(str(run_job.ConfigError("bad")), "bad")
        self.assertEqual(str(run_job.ConfigError("bad").at("f", 2, 5)), "f:2:5: bad")


def run_all():
    """Discover every test_*.py beside this file and print one summary line."""
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=int(os.environ.get("VERBOSE", "1"))).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("tests: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(run_all())
