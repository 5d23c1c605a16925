"""Tests for section 3 of run_job.py: durations and cron schedules.

Three independent checks of Schedule:
- tables transcribed from the reference (/work/shared/reference/cron.md),
  which were verified against Debian's own cron parser;
- a brute-force oracle written here (the find_jobs rule checked day by day,
  minute by minute) over random expressions whose expansion the generator
  knows by construction;
- a differential test against the PyPI package cronsim (skipped when it is
  not installed) with the exclusions listed in the reference's section 2.8.
SCHEDULE_ORACLE_CASES and SCHEDULE_CRONSIM_CASES raise the case counts,
SCHEDULE_SEED changes the random cases.
"""

import datetime
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
from run_job import ConfigError, Schedule, parse_duration  # noqa: E402

try:
    import cronsim
except ImportError:  # a test-only tool: the differential test skips without it
    cronsim = None

D = datetime.datetime
MINUTE = datetime.timedelta(minutes=1)
DAY = datetime.timedelta(days=1)
ORACLE_CASES = int(os.environ.get("SCHEDULE_ORACLE_CASES", "800"))
CRONSIM_CASES = int(os.environ.get("SCHEDULE_CRONSIM_CASES", "3000"))
SEED = int(os.environ.get("SCHEDULE_SEED", "0"))  # added to the fixed seeds


# ---- durations ---------------------------------------------------------------

class DurationTests(unittest.TestCase):
    def test_numbers_and_units(self):
        cases = [(0, 0.0), (90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0),
                 ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0), ("1.5h", 5400.0),
                 (" 10m ", 600.0), ("10 m", 600.0), ("0", 0.0), ("0s", 0.0),
                 (".5m", 30.0), ("3650d", 3650 * 86400.0), ("-0", 0.0), (-0.0, 0.0)]
        for value, seconds in cases:
            with self.subTest(value=value):
                result = parse_duration(value)
                self.assertEqual(result, seconds)
                self.assertIsInstance(result, float)
                self.assertEqual(str(result), str(seconds))  # no -0.0

    def test_refused_values_say_how_to_fix(self):
        cases = [(True, "boolean"), (False, "boolean"), (None, "empty value"),
                 ([1], "a list"), ({"a": 1}, "a mapping"), (-1, "negative"),
                 (-0.5, "negative"), ("-5m", "negative"), (float("nan"), "not a number"),
                 (float("inf"), "longer than ten years"), (10 ** 400, "longer than ten"),
                 ("3651d", "longer than ten years"), ("", "empty duration"),
                 ("   ", "empty duration"), ("10x", "unknown unit 'x'"),
                 ("10M", "unknown unit 'M'"), ("1h30m", "unknown unit"),
                 ("nan", "not a duration"), ("inf", "not a duration"),
                 ("1e3", "unknown unit 'e3'"), ("m", "not a duration"),
                 ("+5", "not a duration"), ("\u0665s", "not a duration")]
        for value, fragment in cases:
            with self.subTest(value=value):
                with self.assertRaises(ConfigError) as caught:
                    parse_duration(value)
                message = str(caught.exception)
                self.assertIn(fragment, message)
                self.assertIsNone(caught.exception.line)
                if "ten years" not in message:
                    self.assertIn("expected seconds or a number with a unit s, m, h or d,"
                                  " such as 90s or 10m", message)


# ---- parsing -----------------------------------------------------------------

ALL_MINUTES = set(range(60))


def fields_of(expression):
    schedule = Schedule(expression)
    return (set(schedule.minutes), set(schedule.hours), set(schedule.days_of_month),
            set(schedule.months), set(schedule.days_of_week))


class ParseTests(unittest.TestCase):
    def assertRefused(self, expression, *fragments):
        with self.assertRaises(ConfigError) as caught:
            Schedule(expression)
        error = caught.exception
        self.assertIsNone(error.source)
        self.assertNotIn("\n", str(error))
        self.assertIn(";", str(error), "no 'how to fix' part: %s" % error)
        for fragment in fragments:
            self.assertIn(fragment, str(error))
        return str(error)

    def test_reference_accepted_rows(self):
        # (expression, field index, expected set): reference section 2.2
        cases = [
            ("1-30/7 * * * *", 0, {1, 8, 15, 22, 29}),
            ("0-59/15 * * * *", 0, {0, 15, 30, 45}),
            ("7-7 * * * *", 0, {7}),
            ("0 0 * * sun-sat", 4, set(range(8))),
            ("0 0 * * 5-7", 4, {5, 6, 0, 7}),
            ("0 0 * * 6-7", 4, {6, 0, 7}),
            ("0 0 * * sun", 4, {0, 7}),
            ("0 0 * * SUN", 4, {0, 7}),
            ("0 0 * * 7", 4, {0, 7}),
            ("0 0 * * 0,7", 4, {0, 7}),
            ("0 0 * * 0", 4, {0, 7}),
            ("0 0 * JAN-mar/2 *", 3, {1, 3}),
            ("05 * * * *", 0, {5}),
            ("00 00 * * *", 1, {0}),
            ("* * * * *", 0, ALL_MINUTES),
            ("*/15 * * * *", 0, {0, 15, 30, 45}),
            ("* */5 * * *", 1, {0, 5, 10, 15, 20}),
            ("0 0 */10 * *", 2, {1, 11, 21, 31}),
            ("0 0 * */5 *", 3, {1, 6, 11}),
            ("0 0 * * */2", 4, {0, 2, 4, 6, 7}),
            ("0 0 * * */3", 4, {0, 3, 6, 7}),
            ("*/59 * * * *", 0, {0, 59}),
            ("0 0 * feb,Mar,APR,mAy *", 3, {2, 3, 4, 5}),
            ("0 0 * * mon,Tue,WED-fri", 4, {1, 2, 3, 4, 5}),
            ("1,2,3-5,*/30 * * * *", 0, {0, 1, 2, 3, 4, 5, 30}),
            ("0\t0\t*\t*\t*", 0, {0}),
            ("  0  0 * * *  ", 1, {0}),
        ]
        for expression, index, expected in cases:
            with self.subTest(expression=expression):
                self.assertEqual(fields_of(expression)[index], expected)

    def test_expression_is_kept_stripped(self):
        self.assertEqual(Schedule("  0 3 * * *\t").expression, "0 3 * * *")
        self.assertEqual(repr(Schedule("0 3 * * *")), "Schedule('0 3 * * *')")

    def test_equality_is_what_cron_runs(self):
        self.assertEqual(Schedule("0 0 * * 7"), Schedule("0 0 * * sun"))
        self.assertEqual(Schedule("0,15,30,45 * * * *"), Schedule("*/15 * * * *"))
        self.assertEqual(hash(Schedule("0 0 * * 7")), hash(Schedule("0 0 * * 0")))
        self.assertNotEqual(Schedule("0 0 1 * 1"), Schedule("0 0 1 * *"))
        # same minutes, but cron treats '*' minute jobs differently on DST days
        self.assertNotEqual(Schedule("0-59 0-23 * * *"), Schedule("* * * * *"))
        self.assertEqual(Schedule("0-59 * * * *"), Schedule("* * * * *"))
        self.assertNotEqual(Schedule("0 0 * * *"), "0 0 * * *")

    def test_day_rule_and_fixed_time_flags(self):
        cases = [("0 0 */2 * 5", True, True), ("0 0 1 * 6,*", False, True),
                 ("0 0 *,1 * 1", True, True), ("30 4 1,15 * 5", False, True),
                 ("0 0 1-31 * 0-7", False, True), ("*/5 3 * * *", True, False),
                 ("5 * * * *", True, False), ("5 1-3 1 * *", True, True)]
        for expression, both, fixed in cases:
            with self.subTest(expression=expression):
                schedule = Schedule(expression)
                self.assertEqual(schedule.days_match_both, both)
                self.assertEqual(schedule.fixed_time, fixed)

    def test_debian_rejections_are_refused(self):
        cases = [
            ("*/0 * * * *", "step of 0"),
            ("1-5/0 * * * *", "step of 0"),
            ("5/10 * * * *", "Debian cron rejects a step without a range; write 5-59/10"),
            ("0 0 * jan/2 *", "write jan-12/2"),
            ("60 * * * *", "out of range", "use 0-59"),
            ("0 24 * * *", "hour", "use 0-23"),
            ("0 0 0 * *", "day-of-month", "use 1-31"),
            ("0 0 32 * *", "use 1-31"),
            ("0 0 * 0 *", "month", "use 1-12"),
            ("0 0 * 13 *", "use 1-12"),
            ("0 0 * * 8", "day-of-week", "use 0-7"),
            ("1-60 * * * *", "'1-60'", "60 is out of range"),
            ("-1 * * * *", "Debian cron rejects it"),
            ("1,,2 * * * *", "remove the extra comma"),
            ("1, * * * *", "remove the extra comma"),
            ("*/5x * * * *", "a step must be a number"),
            ("*/ * * * *", "a step must be a number"),
            ("1- * * * *", "Debian cron rejects it"),
            ("* * * *", "4 fields", "five"),
            ("*", "1 field ", "five"),
            ("* * * * * *", "6 fields", "no seconds or year field"),
            ("0 30 8 * * *", "6 fields"),
            ("0 0 * * * 2024", "6 fields"),
            ("0 0 * * Sunday", "three-letter names; write sun"),
            ("0 0 * January *", "three-letter names; write jan"),
            ("0 0 * * 5L", "L and W"),
            ("0 0 L * *", "L and W"),
            ("0 0 LW * *", "L and W"),
            ("0 0 15W * *", "L and W"),
            ("0 0 ? * 1", "'?' is not cron syntax; write '*'"),
            ("H * * * *", "Jenkins"),
            ("jan * * * *", "minute field is not a number"),
            ("0 0 * * jan", "three-letter day name"),
            ("0 0 * sun *", "three-letter month name"),
            ("0 0 * * 1.5", "silently read it as '1'"),
            ("\u0665 * * * *", "Debian cron rejects it"),
            ("0 0 1" + "0" * 1000 + " * *", "1000 or more"),
        ]
        for case in cases:
            with self.subTest(expression=case[0]):
                self.assertRefused(*case)

    def test_silent_misreadings_are_refused(self):
        # Debian accepts these but reads them differently from what is written.
        cases = [
            ("5-1 * * * *", "reversed range", "never run", "5-59,0-1"),
            ("0 22-2 * * *", "22-23,0-2"),
            ("0 0 * feb-jan *", "reversed range", "2-12,1"),
            ("0 0 * * 7-0", "reversed range"),
            ("0 0 * * sat-sun", "reversed range", "6-7"),
            ("0 0 * * 1-sun", "1-7"),
            ("0 0 * * mon-sun", "1-7"),
            ("5;6 * * * *", "silently read it as '5'", "ignore ';6'"),
            ("*x * * * *", "silently read it as '*'"),
            ("*-5 * * * *", "silently read it as '*'"),
            ("*/2/3 * * * *", "silently read it as '*/2'"),
            ("1-2-3 * * * *", "silently read it as '1-2'"),
            ("0 0 * * 5#2", "no '#'", "silently read it as '5'"),
            ("*/60 * * * *", "leaves only 0"),
            ("*/100 * * * *", "leaves only 0"),
            ("0 0 * * */7", "leaves only 0"),
            ("0 3-3/5 * * *", "leaves only 3"),
            ("0 0 * * 5-5/2", "leaves only 5"),
            ("0-10/20 * * * *", "leaves only 0"),
        ]
        for case in cases:
            with self.subTest(expression=case[0]):
                self.assertRefused(*case)

    def test_never_running_schedules_are_refused(self):
        cases = [
            ("0 0 31 2 *", "never runs: February has no 31st; check the day-of-month"
                           " and month fields"),
            ("0 0 30 2 *", "February has no 30th"),
            ("0 0 30,31 2 *", "February has no 30th or 31st"),
            ("0 0 31 4,6,9,11 *", "April, June, September and November have no 31st"),
            ("0 0 31 2 */2", "February has no 31st"),
            ("0 0 */30 2 *", "never runs"),  # */30 = 1,31 ... no: 1 exists
        ]
        for expression, fragment in cases[:-1]:
            with self.subTest(expression=expression):
                self.assertRefused(expression, fragment)
        # 1 and 31: the 1st exists, so it runs
        self.assertEqual(Schedule("0 0 */30 2 *").days_of_month, {1, 31})
        # either field may match, so the Mondays of February still run
        self.assertEqual(Schedule("0 0 31 2 1").next_after(D(2024, 1, 1)),
                         D(2024, 2, 5))

    def test_aliases_are_refused_with_their_five_fields(self):
        cases = [("@daily", "'@daily' is not supported; write '0 0 * * *'"),
                 ("@midnight", "'0 0 * * *'"), ("@hourly", "'0 * * * *'"),
                 ("@weekly", "'0 0 * * 0'"), ("@monthly", "'0 0 1 * *'"),
                 ("@yearly", "'0 0 1 1 *'"), ("@annually", "'0 0 1 1 *'"),
                 ("@DAILY", "'0 0 * * *'"), ("@reboot", "systemd"),
                 ("@every 5m", "not a cron schedule")]
        for expression, fragment in cases:
            with self.subTest(expression=expression):
                self.assertRefused(expression, fragment)

    def test_characters_cron_treats_specially_are_refused(self):
        cases = [("0 0 * * *\n", "one line"), ("0 0 * * *\r", "one line"),
                 ("0 0\n* * *", "one line"), ("FOO=bar", "environment setting"),
                 ("*/5 * * * * =", "'='"), ("0 0 * * 1%", "'%'"),
                 ("0 0 * * 1\x0b", "control character"), ("0\x000 * * *", "control"),
                 ("", "empty schedule"), ("  \t ", "empty schedule"),
                 ("0\u00a03 * * *", "4 fields"),
                 ("0 3 * * *\u2003", "in the day-of-week field")]
        for expression, fragment in cases:
            with self.subTest(expression=expression):
                self.assertRefused(expression, fragment)

    def test_non_strings_are_refused(self):
        for value in (None, 5, ["0", "0", "*", "*", "*"]):
            with self.subTest(value=value):
                self.assertRefused(value, "not a schedule")


class WarningTests(unittest.TestCase):
    def test_surprising_day_rules_warn(self):
        cases = [("0 0 */2 * 5", "only on days matching both"),
                 ("0 0 */2 * */2", "only on days matching both"),
                 ("0 0 1 * 6,*", "runs every day"),
                 ("0 0 1 * 0-6", "runs every day"),
                 ("0 0 1-31 * 5", "runs every day"),
                 ("0 0 31 2 1", "never occurs"),
                 ("0 0 29 2 *", "leap years")]
        for expression, fragment in cases:
            with self.subTest(expression=expression):
                warnings = Schedule(expression).warnings
                self.assertEqual(len(warnings), 1, warnings)
                self.assertIn(fragment, warnings[0])
                self.assertNotIn("\n", warnings[0])

    def test_ordinary_schedules_do_not_warn(self):
        for expression in ("0 3 * * *", "*/5 * * * *", "30 4 1,15 * 5", "0 0 1 * *",
                           "0 0 * * 1-5", "0 0 *,1 * 1", "0 0 1-31 * 0-7",
                           "0 0 * * *", "0 0 29 2,3 *", "0 0 31 * *"):
            with self.subTest(expression=expression):
                self.assertEqual(Schedule(expression).warnings, [])


# ---- next and previous runs -----------------------------------------------------

def runs(schedule, start, count):
    result = []
    for _ in range(count):
        start = schedule.next_after(start)
        result.append(start)
    return result


class NextRunTests(unittest.TestCase):
    def test_reference_day_rule_rows(self):
        self.assertEqual(runs(Schedule("0 0 */2 * 5"), D(2024, 1, 1), 4),
                         [D(2024, 1, 5), D(2024, 1, 19), D(2024, 2, 9), D(2024, 2, 23)])
        for expression in ("0 0 1 * 0-6", "0 0 1 * 6,*"):
            self.assertEqual(runs(Schedule(expression), D(2024, 2, 27), 4),
                             [D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 1), D(2024, 3, 2)])
        self.assertEqual(runs(Schedule("0 0 *,1 * 1"), D(2024, 1, 1), 3),
                         [D(2024, 1, 8), D(2024, 1, 15), D(2024, 1, 22)])
        # crontab(5): "on the 1st and 15th of each month, plus every Friday"
        self.assertEqual(runs(Schedule("30 4 1,15 * 5"), D(2023, 12, 31), 6),
                         [D(2024, 1, 1, 4, 30), D(2024, 1, 5, 4, 30), D(2024, 1, 12, 4, 30),
                          D(2024, 1, 15, 4, 30), D(2024, 1, 19, 4, 30),
                          D(2024, 1, 26, 4, 30)])

    def test_strictly_after_and_strictly_before(self):
        every = Schedule("* * * * *")
        self.assertEqual(every.next_after(D(2024, 5, 1, 10, 4, 30)), D(2024, 5, 1, 10, 5))
        self.assertEqual(every.next_after(D(2024, 5, 1, 10, 5)), D(2024, 5, 1, 10, 6))
        self.assertEqual(every.next_after(D(2024, 5, 1, 10, 5, 0, 1)), D(2024, 5, 1, 10, 6))
        self.assertEqual(every.previous_before(D(2024, 5, 1, 10, 5)), D(2024, 5, 1, 10, 4))
        self.assertEqual(every.previous_before(D(2024, 5, 1, 10, 5, 30)),
                         D(2024, 5, 1, 10, 5))
        self.assertEqual(every.previous_before(D(2024, 5, 1, 10, 5, 0, 1)),
                         D(2024, 5, 1, 10, 5))
        result = every.next_after(D(2024, 5, 1, 10, 4, 59, 999999))
        self.assertEqual((result.second, result.microsecond), (0, 0))

    def test_calendar_edges(self):
        cases = [("0 0 1 1 *", D(2023, 12, 31, 23, 59), D(2024, 1, 1)),
                 ("59 23 31 12 *", D(2024, 1, 1), D(2024, 12, 31, 23, 59)),
                 ("0 12 29 2 *", D(2024, 3, 1), D(2028, 2, 29, 12)),
                 ("0 12 29 2 *", D(2096, 3, 1), D(2104, 2, 29, 12)),  # 2100 is no leap year
                 ("0 0 31 * *", D(2024, 1, 31), D(2024, 3, 31)),
                 ("* * * * *", D(2024, 12, 31, 23, 59), D(2025, 1, 1)),
                 ("0 0 * * 1", D(2024, 12, 30), D(2025, 1, 6))]
        for expression, start, expected in cases:
            with self.subTest(expression=expression, start=start):
                schedule = Schedule(expression)
                self.assertEqual(schedule.next_after(start), expected)
                self.assertLess(schedule.previous_before(expected), expected)
                self.assertEqual(schedule.next_after(schedule.previous_before(expected)),
                                 expected)

    def test_previous_before(self):
        cases = [("0 0 1 1 *", D(2024, 1, 1), D(2023, 1, 1)),
                 ("0 12 29 2 *", D(2028, 2, 29, 12), D(2024, 2, 29, 12)),
                 ("*/15 9-17 * * 1-5", D(2024, 1, 8, 9), D(2024, 1, 5, 17, 45)),
                 ("0 0 */2 * 5", D(2024, 2, 9), D(2024, 1, 19)),
                 ("* * * * *", D(2024, 1, 1), D(2023, 12, 31, 23, 59)),
                 ("0 0 31 * *", D(2024, 3, 1), D(2024, 1, 31))]
        for expression, start, expected in cases:
            with self.subTest(expression=expression, start=start):
                self.assertEqual(Schedule(expression).previous_before(start), expected)

    def test_ends_of_the_datetime_range(self):
        yearly = Schedule("0 0 1 1 *")
        self.assertIsNone(yearly.next_after(D(9999, 1, 1)))
        self.assertIsNone(Schedule("* * * * *").next_after(D.max))
        self.assertEqual(Schedule("59 23 31 12 *").next_after(D(9999, 1, 1)),
                         D(9999, 12, 31, 23, 59))
        self.assertIsNone(Schedule("* * * * *").previous_before(D.min))
        self.assertIsNone(Schedule("1 0 1 1 *").previous_before(D(1, 1, 1, 0, 1)))
        self.assertEqual(Schedule("0 0 1 1 *").previous_before(D(1, 1, 1, 0, 1)), D.min)

    def test_naive_datetimes_only(self):
        schedule = Schedule("0 0 * * *")
        aware = D(2024, 1, 1, tzinfo=datetime.timezone.utc)
        with self.assertRaises(ValueError):
            schedule.next_after(aware)
        with self.assertRaises(ValueError):
            schedule.previous_before(aware)
        with self.assertRaises(TypeError):
            schedule.next_after(datetime.date(2024, 1, 1))

    def test_weekday_arithmetic_matches_the_calendar(self):
        day = datetime.date(1999, 1, 1)
        while day.year < 2102:
            self.assertEqual(run_job._weekday(day.year, day.month, day.day),
                             (day.weekday() + 1) % 7, day)
            day += DAY
        for day in (datetime.date.min, datetime.date.max, datetime.date(1600, 2, 29)):
            self.assertEqual(run_job._weekday(day.year, day.month, day.day),
                             (day.weekday() + 1) % 7, day)


# ---- random expressions whose expansion is known by construction ------------------

FIELD_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def random_value_text(rng, index, value):
    """A number, sometimes with a leading zero, or a name in random case."""
    names = MONTHS if index == 3 else DAYS if index == 4 else None
    if names and value - (index == 3) < len(names) and rng.random() < 0.4:
        name = names[value - (index == 3)]
        return "".join(c.upper() if rng.random() < 0.5 else c for c in name)
    if value < 10 and rng.random() < 0.1:
        return "0%d" % value
    return str(value)


def distinct_days(index, values):
    return {v % 7 for v in values} if index == 4 else set(values)


def hazard_item(rng, index):
    """(text, kind) for an item from the reference's section 2.8 exclusion
    list: forms where cronsim and Debian differ, all refused by Schedule."""
    low, high = FIELD_BOUNDS[index]
    value, other = rng.randint(low, high - 1), rng.randint(low + 1, high)
    kind = rng.choice(("N-N/S", "reversed", "N/S", "letters", "junk", "big step"))
    if kind == "N-N/S":
        return "%d-%d/%d" % (value, value, rng.randint(2, 9)), kind
    if kind == "reversed":
        return "%d-%d" % (max(value, other), min(value, other) - 1), kind
    if kind == "N/S":
        return "%d/%d" % (value, rng.randint(2, 9)), kind
    if kind == "letters":
        return rng.choice(("L", "%dL" % value, "%dW" % value, "LW", "?", "%d#2" % value,
                           "H")), kind
    if kind == "junk":
        return "%d%s%d" % (value, rng.choice(";:.#x"), other), kind
    return "*/%d" % rng.randint(high - low + 1, 100), kind


def random_item(rng, index):
    """(text, set of values) for one list item, never one cron would refuse."""
    low, high = FIELD_BOUNDS[index]
    while True:
        kind = rng.random()
        if kind < 0.12:
            return "*", set(range(low, high + 1))
        if kind < 0.3:
            step = rng.randint(2, high - low)
            text, values = "*/%d" % step, set(range(low, high + 1, step))
        elif kind < 0.6:
            value = rng.randint(low, high)
            return random_value_text(rng, index, value), {value}
        else:
            first = rng.randint(low, high)
            last = rng.randint(first, min(high, first + rng.choice((1, 3, 8, 30))))
            text = "%s-%s" % (random_value_text(rng, index, first),
                              random_value_text(rng, index, last))
            step = 1
            if rng.random() < 0.4 and last > first:
                step = rng.randint(2, max(2, last - first))
                text += "/%d" % step
            values = set(range(first, last + 1, step))
        if step == 1 or len(distinct_days(index, values)) > 1:
            return text, values


def random_field(rng, index, hazard_rate, hazards):
    if rng.random() < [0.2, 0.3, 0.55, 0.7, 0.55][index]:
        low, high = FIELD_BOUNDS[index]
        return "*", set(range(low, high + 1))
    texts, values = [], set()
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if rng.random() < hazard_rate:
            text, kind = hazard_item(rng, index)
            hazards.append(kind)
        else:
            text, item_values = random_item(rng, index)
            values |= item_values
        texts.append(text)
    return ",".join(texts), values


def random_expression(rng, hazard_rate=0.0):
    """(expression, [five expected sets], [hazard kinds]): the sets have
    day-of-week 0 and 7 merged and mean nothing when hazards is not empty."""
    texts, sets, hazards = [], [], []
    for index in range(5):
        text, values = random_field(rng, index, hazard_rate, hazards)
        texts.append(text)
        sets.append(values)
    if sets[4] & {0, 7}:
        sets[4] |= {0, 7}
    return " ".join(texts), sets, hazards


def random_start(rng):
    return D(2020, 1, 1) + datetime.timedelta(seconds=rng.randrange(5 * 365 * 86400))


class Oracle(object):
    """Cron's find_jobs rule, transcribed, evaluated one minute at a time
    (a whole day is skipped only when its date cannot match at any minute)."""

    def __init__(self, expression, sets):
        self.minutes, self.hours, self.doms, self.months, self.dows = sets
        fields = expression.split()
        self.dom_star = fields[2].startswith("*")
        self.dow_star = fields[4].startswith("*")

    def date_matches(self, day):
        dow = (day.weekday() + 1) % 7
        if day.month not in self.months:
            return False
        if self.dom_star or self.dow_star:
            return day.day in self.doms and dow in self.dows
        return day.day in self.doms or dow in self.dows

    def minute_matches(self, moment):
        return (moment.minute in self.minutes and moment.hour in self.hours
                and self.date_matches(moment.date()))

    def never_runs(self):
        # each month/day pair that exists somewhere falls on every weekday
        return (self.dom_star or self.dow_star) and not any(
            day <= (29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)
            for month in self.months for day in self.doms)

    def next_after(self, start, limit_days=366 * 40):
        moment = start.replace(second=0, microsecond=0) + MINUTE
        for _ in range(limit_days):
            if self.date_matches(moment.date()):
                while True:
                    if self.minute_matches(moment):
                        return moment
                    moment += MINUTE
                    if moment.hour == 0 and moment.minute == 0:
                        break
            else:
                moment = D.combine(moment.date() + DAY, datetime.time())
        return None

    def previous_before(self, start, limit_days=366 * 40):
        moment = start.replace(second=0, microsecond=0)
        if moment == start:
            moment -= MINUTE
        for _ in range(limit_days):
            if self.date_matches(moment.date()):
                while True:
                    if self.minute_matches(moment):
                        return moment
                    if moment.hour == 0 and moment.minute == 0:
                        moment -= MINUTE
                        break
                    moment -= MINUTE
            else:
                moment = D.combine(moment.date() - DAY, datetime.time(23, 59))
        return None


class OracleTests(unittest.TestCase):
    def test_random_expressions_against_brute_force(self):
        rng = random.Random(20240229 + SEED)
        compared = never = 0
        for _ in range(ORACLE_CASES):
            expression, sets, _ = random_expression(rng)
            oracle = Oracle(expression, sets)
            if oracle.never_runs():
                never += 1
                with self.assertRaises(ConfigError, msg=expression) as caught:
                    Schedule(expression)
                self.assertIn("never runs", str(caught.exception))
                continue
            schedule = Schedule(expression)
            self.assertEqual([set(s) for s in (schedule.minutes, schedule.hours,
                                               schedule.days_of_month, schedule.months,
                                               schedule.days_of_week)], sets, expression)
            start = random_start(rng)
            forward, backward = start, start
            for _ in range(2):
                expected = oracle.next_after(forward)
                self.assertEqual(schedule.next_after(forward), expected,
                                 "%s after %s" % (expression, forward))
                forward = expected
                expected = oracle.previous_before(backward)
                self.assertEqual(schedule.previous_before(backward), expected,
                                 "%s before %s" % (expression, backward))
                backward = expected
            compared += 1
        self.assertGreater(compared, ORACLE_CASES * 0.8)

    def test_impossible_dates_agree_with_brute_force(self):
        for expression in ("0 0 31 2 *", "0 0 30 2 */2", "0 0 31 4,6,9,11 *",
                           "0 0 */30 2 *", "0 0 31 2 1", "0 0 30-31 feb 1"):
            with self.subTest(expression=expression):
                fields = expression.split()
                sets = []
                for text, field in zip(fields, run_job.CRON_FIELDS):
                    sets.append(run_job._parse_cron_field(text, field))
                oracle = Oracle(expression, sets)
                if oracle.never_runs():
                    self.assertIsNone(oracle.next_after(D(2020, 1, 1), 366 * 9))
                    with self.assertRaises(ConfigError):
                        Schedule(expression)
                else:
                    self.assertEqual(Schedule(expression).next_after(D(2020, 1, 1)),
                                     oracle.next_after(D(2020, 1, 1)))


# ---- differential test against cronsim ------------------------------------------

@unittest.skipIf(cronsim is None, "cronsim is not installed (pip install cronsim)")
class CronsimDifferentialTests(unittest.TestCase):
    def test_random_expressions_agree_with_cronsim(self):
        # Expressions containing a section 2.8 exclusion are not compared, but
        # must be refused here; so must impossible dates (cronsim refuses them).
        rng = random.Random(3001 + SEED)
        compared = agreed = excluded = impossible = 0
        disagreements = []
        for _ in range(CRONSIM_CASES):
            expression, _, hazards = random_expression(rng, hazard_rate=0.04)
            start = random_start(rng)
            if hazards:
                excluded += 1
                with self.assertRaises(ConfigError, msg="%s %s" % (expression, hazards)):
                    Schedule(expression)
                continue
            try:
                schedule = Schedule(expression)
            except ConfigError as error:
                self.assertIn("never runs", str(error))
                with self.assertRaises(cronsim.CronSimError):
                    cronsim.CronSim(expression, start)
                impossible += 1
                continue
            compared += 1
            ours, theirs = [], []
            forward = cronsim.CronSim(expression, start)
            backward = cronsim.CronSim(expression, start, reverse=True)
            moment = start
            for _ in range(5):
                moment = schedule.next_after(moment)
                ours.append(moment)
                theirs.append(next(forward))
            moment = start
            for _ in range(2):
                moment = schedule.previous_before(moment)
                ours.append(moment)
                theirs.append(next(backward))
            if ours == theirs:
                agreed += 1
            else:
                disagreements.append((expression, start, ours, theirs))
        if os.environ.get("VERBOSE", "1") != "0":
            sys.stderr.write("\n%s: %d cases, %d excluded, %d impossible dates"
                             " refused by both, %d compared, %d agreed\n"
                             % ("cronsim", CRONSIM_CASES,
                                excluded, impossible, compared, agreed))
        self.assertEqual(disagreements, [])
        self.assertGreater(compared, CRONSIM_CASES * 0.7)
        self.assertGreater(excluded, 0)

    def test_exclusions_are_refused_here(self):
        # Where cronsim and Debian differ (reference section 2.8), Schedule
        # refuses; cronsim accepts some of these with another meaning.
        for expression in ("0 3-3/5 * * *", "0 0 * * 5-5/2", "5-1 * * * *",
                           "0 0 * * sat-sun", "5/10 * * * *", "0 0 31 2 *",
                           "0 0 L * *", "0 0 * * 5L", "0 0 * * 5#2", "0 0 15W * *",
                           "0 0 ? * 1", "@daily", "0 0 0 * * *", "*x * * * *"):
            with self.subTest(expression=expression):
                with self.assertRaises(ConfigError):
                    Schedule(expression)

    def test_reference_rows_agree_with_cronsim(self):
        for expression in ("0 0 */2 * 5", "0 0 1 * 6,*", "0 0 7 * 0-7/2,1-3/2,*",
                           "0 7-7 * * *", "0 0 * 5-5 *", "0 0 * * 7", "0 0 * * 5-7",
                           "0 0 * * */3", "0 0 * * sun-sat", "0 0 * * 0-7",
                           "0 0 * JAN-mar/2 *", "0 0 *,1 * 1", "30 4 1,15 * 5"):
            with self.subTest(expression=expression):
                schedule = Schedule(expression)
                start = D(2024, 1, 1)
                them = cronsim.CronSim(expression, start)
                self.assertEqual(runs(schedule, start, 10), [next(them) for _ in range(10)])


if __name__ == "__main__":
    unittest.main()
