#!/usr/bin/env python3
"""run-job: run a declared job as the service user, never twice at once,
within its deadline, with every byte of its output logged.

Self-contained: standard library only, Python 3.6 or newer. Installed as
/usr/bin/run-job; cron_generate.py imports its configuration and schedule
code from here.
"""

import os
import sys

VERSION = "0.1.0"


# ---- 1. errors and exit codes -------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 64
EXIT_HALTED = 69
EXIT_RUNNING = 75
EXIT_REFUSED = 77
EXIT_CONFIG = 78
EXIT_TIMEOUT = 124


class ProcessControlError(Exception):
    """An error meant for the user: one line, no traceback."""

    exit_code = EXIT_FAILED


class UsageError(ProcessControlError):
    exit_code = EXIT_USAGE


class LockHeldError(ProcessControlError):
    exit_code = EXIT_RUNNING


class RefusedError(ProcessControlError):
    exit_code = EXIT_REFUSED


class ConfigError(ProcessControlError, ValueError):
    """A configuration mistake, located as SOURCE:LINE:COLUMN when known."""

    exit_code = EXIT_CONFIG

    def __init__(self, message, source=None, line=None, column=None):
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self.__str__())

    def __str__(self):
        place = [str(part) for part in (self.source, self.line, self.column)
                 if part is not None]
        if not place:
            return self.message
        return "%s: %s" % (":".join(place), self.message)

    def at(self, source, line=None, column=None):
        """The same error, located; keeps a position it already has."""
        if self.source is not None and self.line is not None:
            return self
        return ConfigError(self.message, source, line, column)


# ---- 2. the YAML subset ----------------------------------------------------------

def load_yaml(text, source="<string>"):
    """Return what yaml.safe_load(text) returns, or raise ConfigError."""
    return parse_yaml_document(text, source)[0]


def parse_yaml_document(text, source="<string>"):
    """Return (value, marks): marks maps a path tuple of keys and indexes to
    the 1-based (line, column) where that key or item starts."""
    raise ConfigError("the YAML parser is not written yet", source, 1, 1)


# ---- 3. durations and schedules -------------------------------------------------

# Durations: timeouts, grace periods and the like, always returned in seconds.

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_HINT = ("expected seconds or a number with a unit s, m, h or d,"
                 " such as 90s or 10m")
DURATION_MAX = 3650 * 86400  # ten years: anything longer is a typo


def parse_duration(value):
    """Return a duration in seconds (a float >= 0) from an int, a float or a
    string such as "90", "90s", "10m", "2h" or "1d". 0 means none; what that
    implies is the caller's business. Raises ConfigError without a position."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError("%s is not a duration; %s"
                          % (_describe_value(value), DURATION_HINT))
    if isinstance(value, str):
        seconds = _parse_duration_text(value)
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = float("inf")
    if seconds != seconds:
        raise ConfigError("%r is not a number; %s" % (value, DURATION_HINT))
    if seconds < 0:
        raise ConfigError("%s is negative; %s" % (_quote_duration(value), DURATION_HINT))
    if seconds > DURATION_MAX:
        raise ConfigError("%s is longer than ten years; use a shorter duration,"
                          " or 0 for none" % _quote_duration(value))
    return seconds + 0.0  # -0.0 becomes 0.0


def _quote_duration(value):
    return repr(value) if isinstance(value, str) else str(value)


def _describe_value(value):
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "%s (a boolean)" % ("true" if value else "false")
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _parse_duration_text(text):
    """"90", "90s", "1.5h", "10 m" -> seconds; anything else -> ConfigError."""
    body = text.strip()
    if not body:
        raise ConfigError("empty duration; %s" % DURATION_HINT)
    sign = body[0] == "-"
    digits_end = _scan_decimal(body, 1 if sign else 0)
    number, unit = body[:digits_end], body[digits_end:].strip()
    if number in ("", "-", ".", "-."):
        raise ConfigError("%r is not a duration; %s" % (text, DURATION_HINT))
    if unit and unit not in DURATION_UNITS:
        raise ConfigError("%r has an unknown unit %r; %s" % (text, unit, DURATION_HINT))
    return float(number) * DURATION_UNITS.get(unit, 1)


def _scan_decimal(text, pos):
    """End of the ASCII decimal number (digits, optional fraction) at pos."""
    seen_point = False
    while pos < len(text):
        char = text[pos]
        if char == "." and not seen_point:
            seen_point = True
        elif not ("0" <= char <= "9"):
            break
        pos += 1
    return pos


# Schedules: Vixie cron expressions exactly as Debian's cron reads them
# (entry.c for the grammar, cron.c find_jobs for matching), with every form
# that cron rejects, or silently reads differently from what is written,
# refused. Times are naive local wall-clock times, as cron uses.

CRON_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun",
                    "jul", "aug", "sep", "oct", "nov", "dec")
CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
                "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
CRON_FIELD_ORDER = "minute hour day-of-month month day-of-week"
MONTH_FULL_NAMES = ("January", "February", "March", "April", "May", "June", "July",
                    "August", "September", "October", "November", "December")
DAY_FULL_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday",
                  "Friday", "Saturday")
_ASCII_DIGITS = frozenset("0123456789")
_ASCII_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CRON_NUMBERS = dict(("%d" % n, n) for n in range(60))
_CRON_NUMBERS.update(("0%d" % n, n) for n in range(10))
_WEEKDAY_OFFSETS = (0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4)
_SEARCH_YEARS = 400  # one Gregorian cycle: every possible date recurs within it


class _CronField(object):
    """One of the five fields: its name, bounds and (for month and
    day-of-week) the three-letter names, whose index plus `name_base` is the
    value."""

    def __init__(self, name, low, high, names=None, name_base=0):
        self.name = name
        self.low = low
        self.high = high
        self.names = names
        self.name_base = name_base


CRON_FIELDS = (
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day-of-month", 1, 31),
    _CronField("month", 1, 12, CRON_MONTH_NAMES, 1),
    _CronField("day-of-week", 0, 7, CRON_DAY_NAMES, 0),
)


class Schedule(object):
    """A five-field crontab expression as Debian's cron reads it.

    `expression` is the text as given (stripped); `warnings` lists one-line
    notes where cron's day-of-month/day-of-week rule is likely to surprise.
    The expanded fields are frozensets: `minutes`, `hours`, `days_of_month`,
    `months`, `days_of_week` (0 and 7 both present when Sunday is).
    `days_match_both` is cron's rule: True when day-of-month or day-of-week
    starts with `*` (a day must match both fields), else either field will do.
    `fixed_time` is True when neither minute nor hour starts with `*`: what
    cron's daylight-saving handling calls a fixed-time job."""

    def __init__(self, expression):
        fields = _split_cron_expression(expression)
        self.expression = expression.strip(" \t")
        sets = [_parse_cron_field(text, field)
                for text, field in zip(fields, CRON_FIELDS)]
        self.minutes, self.hours, self.days_of_month, self.months = (
            frozenset(values) for values in sets[:4])
        self.days_of_week = frozenset(_sunday_is_0_and_7(sets[4]))
        self.days_match_both = fields[2][0] == "*" or fields[4][0] == "*"
        self.fixed_time = fields[0][0] != "*" and fields[1][0] != "*"
        _check_cron_runs(self)
        self.warnings = _cron_warnings(self, fields[2], fields[4])
        self._build_masks()

    def __repr__(self):
        return "Schedule(%r)" % self.expression

    def _key(self):
        return (self.minutes, self.hours, self.days_of_month, self.months,
                self.days_of_week, self.days_match_both, self.fixed_time)

    def __eq__(self, other):
        """Equal when cron would run both at the same times, DST included."""
        if not isinstance(other, Schedule):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash(self._key())

    def _build_masks(self):
        # Each field as an int with bit v set for value v: "the next allowed
        # value from x" is then a shift and a bit_length, which is what makes
        # the field-wise search fast.
        self._minute_mask = _bit_mask(self.minutes)
        self._hour_mask = _bit_mask(self.hours)
        self._month_mask = _bit_mask(self.months)
        self._dom_mask = _bit_mask(self.days_of_month)
        self._dow_mask = _bit_mask(self.days_of_week) & 0x7f  # 7 is also 0

    def _day_matches(self, day, weekday):
        dom = self._dom_mask >> day & 1
        dow = self._dow_mask >> weekday & 1
        return (dom & dow) if self.days_match_both else (dom | dow)

    def next_after(self, dt):
        """The first minute strictly after the naive local datetime `dt` at
        which cron starts the job (a naive datetime, second 0), or None if
        there is none before year 9999 ends. Wall-clock: see the README on
        daylight-saving days."""
        _check_naive(dt)
        year, month, day, hour, minute = _minute_after(dt)
        found = self._search_forward(year, month, day, hour, minute)
        return None if found is None else type(dt)(*found)

    def previous_before(self, dt):
        """The last minute strictly before the naive local datetime `dt` at
        which cron starts the job (a naive datetime, second 0), or None if
        there is none since year 1."""
        _check_naive(dt)
        year, month, day, hour, minute = _minute_before(dt)
        found = self._search_backward(year, month, day, hour, minute)
        return None if found is None else type(dt)(*found)

    def _search_forward(self, year, month, day, hour, minute):
        """First matching (year, month, day, hour, minute) at or after the
        given one: month, then day, then hour, then minute."""
        minutes, hours, months = self._minute_mask, self._hour_mask, self._month_mask
        last_year = min(year + _SEARCH_YEARS, 9999)
        while year <= last_year:
            wanted = _next_bit(months, month)
            if wanted < 0:
                year, month, day, hour, minute = year + 1, 1, 1, 0, 0
                continue
            if wanted != month:
                month, day, hour, minute = wanted, 1, 0, 0
            length = _days_in_month(year, month)
            weekday = _weekday(year, month, day)
            while day <= length:
                if self._day_matches(day, weekday):
                    found_hour = _next_bit(hours, hour)
                    if found_hour == hour:
                        found_minute = _next_bit(minutes, minute)
                        if found_minute >= 0:
                            return year, month, day, hour, found_minute
                        found_hour = _next_bit(hours, hour + 1)
                    if found_hour >= 0:
                        return year, month, day, found_hour, _next_bit(minutes, 0)
                day, weekday, hour, minute = day + 1, (weekday + 1) % 7, 0, 0
            year, month, day = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
        return None

    def _search_backward(self, year, month, day, hour, minute):
        """Last matching (year, month, day, hour, minute) at or before the
        given one: the mirror image of _search_forward."""
        minutes, hours, months = self._minute_mask, self._hour_mask, self._month_mask
        first_year = max(year - _SEARCH_YEARS, 1)
        while year >= first_year:
            wanted = _prev_bit(months, month)
            if wanted < 0:
                year, month, day, hour, minute = year - 1, 12, 31, 23, 59
                continue
            if wanted != month:
                month, day, hour, minute = wanted, 31, 23, 59
            day = min(day, _days_in_month(year, month))
            weekday = _weekday(year, month, day)
            while day >= 1:
                if self._day_matches(day, weekday):
                    found_hour = _prev_bit(hours, hour)
                    if found_hour == hour:
                        found_minute = _prev_bit(minutes, minute)
                        if found_minute >= 0:
                            return year, month, day, hour, found_minute
                        found_hour = _prev_bit(hours, hour - 1)
                    if found_hour >= 0:
                        return year, month, day, found_hour, _prev_bit(minutes, 59)
                day, weekday, hour, minute = day - 1, (weekday - 1) % 7, 23, 59
            year, month, day = (year - 1, 12, 31) if month == 1 else (year, month - 1, 31)
        return None


def _bit_mask(values):
    mask = 0
    for value in values:
        mask |= 1 << value
    return mask


def _next_bit(mask, start):
    """The smallest value >= start whose bit is set in mask, or -1."""
    rest = mask >> start
    return start + (rest & -rest).bit_length() - 1 if rest else -1


def _prev_bit(mask, start):
    """The largest value <= start whose bit is set in mask, or -1."""
    return (mask & ((2 << start) - 1)).bit_length() - 1 if start >= 0 else -1


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _weekday(year, month, day):
    """Day of the week in cron's numbering, 0 = Sunday (Sakamoto's method)."""
    if month < 3:
        year -= 1
    return (year + year // 4 - year // 100 + year // 400
            + _WEEKDAY_OFFSETS[month - 1] + day) % 7


def _check_naive(dt):
    if not hasattr(dt, "hour") or not hasattr(dt, "tzinfo"):
        raise TypeError("a naive datetime.datetime is needed, not %r" % (dt,))
    if dt.tzinfo is not None:
        raise ValueError("schedules work on naive local times; convert %r to"
                         " local time and drop its tzinfo" % (dt,))


def _minute_after(dt):
    """(year, month, day, hour, minute) of the whole minute after dt; may be
    year 10000, which the search treats as beyond reach."""
    year, month, day, hour, minute = dt.year, dt.month, dt.day, dt.hour, dt.minute + 1
    if minute == 60:
        hour, minute = hour + 1, 0
        if hour == 24:
            day, hour = day + 1, 0
            if day > _days_in_month(year, month):
                month, day = month + 1, 1
                if month == 13:
                    year, month = year + 1, 1
    return year, month, day, hour, minute


def _minute_before(dt):
    """(year, month, day, hour, minute) of the last whole minute before dt;
    may be year 0, which the search treats as beyond reach."""
    year, month, day, hour, minute = dt.year, dt.month, dt.day, dt.hour, dt.minute
    if dt.second or dt.microsecond:
        return year, month, day, hour, minute
    minute -= 1
    if minute < 0:
        hour, minute = hour - 1, 59
        if hour < 0:
            day, hour = day - 1, 23
            if day < 1:
                month = month - 1
                if month < 1:
                    year, month = year - 1, 12
                day = _days_in_month(year, month)
    return year, month, day, hour, minute


def _split_cron_expression(expression):
    """The five field texts of an expression, or ConfigError."""
    if not isinstance(expression, str):
        raise ConfigError("%s is not a schedule; write five cron fields (%s) in"
                          " quotes, such as '0 3 * * *'"
                          % (_describe_value(expression), CRON_FIELD_ORDER))
    _refuse_cron_characters(expression)
    text = expression.strip(" \t")
    # Only spaces and tabs separate fields for cron; other white space is
    # part of a field, and refused there.
    if not text:
        raise ConfigError("empty schedule; write five cron fields (%s), such as"
                          " '0 3 * * *'" % CRON_FIELD_ORDER)
    if text.startswith("@"):
        _refuse_cron_alias(text)
    fields = [field for field in text.replace("\t", " ").split(" ") if field]
    if len(fields) != 5:
        _refuse_field_count(fields)
    return fields


def _refuse_cron_characters(expression):
    if "\n" in expression or "\r" in expression:
        raise ConfigError("a schedule must be one line; remove the line break")
    if "=" in expression:
        raise ConfigError("'=' in a schedule: cron would read the line as an"
                          " environment setting; write only the five fields")
    if "%" in expression:
        raise ConfigError("'%' in a schedule: cron turns '%' into a line break;"
                          " write only the five fields")
    for char in expression:
        if char < " " and char != "\t" or char == "\x7f":
            raise ConfigError("control character %r in a schedule; separate the"
                              " five fields with spaces" % char)


def _refuse_cron_alias(text):
    word = text.split()[0]
    five = CRON_ALIASES.get(word.lower())
    if five is not None:
        raise ConfigError("%r is not supported; write '%s'" % (word, five))
    if word.lower() == "@reboot":
        raise ConfigError("'@reboot' is not supported: jobs here run on a"
                          " timetable; start boot-time work from a systemd unit")
    raise ConfigError("%r is not a cron schedule; write five fields (%s), such"
                      " as '0 3 * * *'" % (word, CRON_FIELD_ORDER))


def _refuse_field_count(fields):
    if len(fields) < 5:
        raise ConfigError("%d field%s where cron needs five (%s); add the missing"
                          " fields, '*' for any" % (len(fields),
                                                   "" if len(fields) == 1 else "s",
                                                   CRON_FIELD_ORDER))
    raise ConfigError("%d fields where cron needs five (%s): cron has no seconds"
                      " or year field and would read the sixth as the start of"
                      " the command; remove the extra fields"
                      % (len(fields), CRON_FIELD_ORDER))


def _parse_cron_field(text, field):
    """The set of values a field's text selects, exactly as Debian's
    get_list does, or ConfigError for anything cron rejects or would read
    differently from what is written."""
    if len(text) >= 1000:
        raise ConfigError("the %s field is %d characters long: Debian cron rejects"
                          " fields of 1000 or more; shorten it" % (field.name, len(text)))
    values = set()
    for item in text.split(","):
        if not item:
            raise ConfigError("empty item in the %s field %r: Debian cron rejects"
                              " it; remove the extra comma" % (field.name, text))
        values.update(_parse_cron_item(item, field))
    return values


def _parse_cron_item(item, field):
    """One list item: '*', '*/step', 'N', 'N-M' or 'N-M/step'."""
    value = _CRON_NUMBERS.get(item)
    if value is not None and field.low <= value <= field.high:
        return (value,)
    if item[0] == "*":
        first, last, position, is_range = field.low, field.high, 1, True
    else:
        first, position = _read_cron_value(item, 0, field)
        last, is_range = first, False
        if position < len(item) and item[position] == "-":
            last, position = _read_cron_value(item, position + 1, field)
            is_range = True
    step = 1
    if position < len(item) and item[position] == "/":
        if not is_range:
            raise ConfigError("%r in the %s field: Debian cron rejects a step without"
                              " a range; write %s-%d%s" % (
                                  item, field.name, item[:position], field.high,
                                  item[position:]))
        step, position = _read_cron_step(item, position + 1, field)
    if position < len(item):
        _refuse_cron_junk(item, position, field)
    if first > last:
        _refuse_reversed_range(item, first, last, field)
    values = range(first, last + 1, step)
    if step > 1 and len(values) < 3 and len(set(
            value % 7 if field.names is CRON_DAY_NAMES else value
            for value in values)) == 1:
        raise ConfigError("%r in the %s field: a step of %d leaves only %d, which is"
                          " all Debian cron would read; write %d, or a smaller step"
                          % (item, field.name, step, first, first))
    return values


def _read_cron_value(item, position, field):
    """A number or (month and day-of-week only) a three-letter name."""
    end = position
    while end < len(item) and item[end] in _ASCII_ALNUM:
        end += 1
    word = item[position:end]
    if not word:
        _refuse_cron_junk(item, position, field)
    if all(char in _ASCII_DIGITS for char in word):
        value = int(word)
        if not field.low <= value <= field.high:
            raise ConfigError("%r in the %s field: %s is out of range and Debian cron"
                              " rejects it; use %d-%d" % (item, field.name, word,
                                                          field.low, field.high))
        return value, end
    if field.names and word.lower() in field.names:
        return field.names.index(word.lower()) + field.name_base, end
    _refuse_cron_word(item, word, field)


def _read_cron_step(item, position, field):
    end = position
    while end < len(item) and item[end] in _ASCII_ALNUM:
        end += 1
    word = item[position:end]
    if not word or not all(char in _ASCII_DIGITS for char in word):
        raise ConfigError("%r in the %s field: a step must be a number; Debian cron"
                          " rejects anything else" % (item, field.name))
    if int(word) == 0:
        raise ConfigError("%r in the %s field: Debian cron rejects a step of 0; use"
                          " a step of 1 or more" % (item, field.name))
    return int(word), end


def _refuse_cron_word(item, word, field):
    """An alphanumeric token that is neither a number nor a known name."""
    upper = word.upper()
    if upper in ("L", "LW") or (upper[-1:] in ("L", "W") and upper[:-1].isdigit()):
        raise ConfigError("%r in the %s field: L and W (last day, nearest weekday)"
                          " are not Debian cron syntax and it rejects them; test the"
                          " date inside the job instead" % (item, field.name))
    if upper == "H":
        raise ConfigError("%r in the %s field: H (a hashed value) is Jenkins syntax,"
                          " not cron; write a number" % (item, field.name))
    full_names = {MONTH_FULL_NAMES: CRON_MONTH_NAMES,
                  DAY_FULL_NAMES: CRON_DAY_NAMES}
    for long_names, short_names in full_names.items():
        for long_name, short_name in zip(long_names, short_names):
            if word.lower() == long_name.lower() and field.names is short_names:
                raise ConfigError("%r in the %s field: Debian cron knows only"
                                  " three-letter names; write %s"
                                  % (item, field.name, short_name))
    if field.names:
        kind = "month" if field.names is CRON_MONTH_NAMES else "day"
        raise ConfigError("%r in the %s field is neither a number nor a three-letter"
                          " %s name: Debian cron rejects it; write %d-%d or a name"
                          " such as %s" % (item, field.name, kind, field.low,
                                           field.high, field.names[1]))
    raise ConfigError("%r in the %s field is not a number: Debian cron rejects it;"
                      " use numbers %d-%d" % (item, field.name, field.low, field.high))


def _refuse_cron_junk(item, position, field):
    """Characters where cron expects a list item to go on or end. Debian
    cron rejects a few and silently skips the rest of the field for the
    others; both are refused, saying which."""
    junk = item[position:]
    read_as = item[:position]
    if junk[:1] == "?":
        raise ConfigError("%r in the %s field: '?' is not cron syntax; write '*'"
                          % (item, field.name))
    if not junk or not read_as or read_as.endswith(("-", "/")):
        raise ConfigError("%r in the %s field: Debian cron rejects it; write a"
                          " number %d-%d, a range such as %d-%d, or '*'"
                          % (item, field.name, field.low, field.high, field.low,
                             field.high))
    if junk[0] == "#":
        raise ConfigError("%r in the %s field: Debian cron has no '#' (nth weekday"
                          " of the month) and would silently read it as %r; test the"
                          " date inside the job instead" % (item, field.name, read_as))
    raise ConfigError("%r in the %s field: Debian cron would silently read it as %r"
                      " and ignore %r; remove %r (list items are separated by"
                      " commas)" % (item, field.name, read_as, junk, junk))


def _refuse_reversed_range(item, first, last, field):
    if field.names is CRON_DAY_NAMES and last == 0:
        fix = "%d-7" % first
    else:
        fix = "%s,%s" % (_cron_range_text(first, field.high),
                         _cron_range_text(field.low, last))
    raise ConfigError("%r in the %s field is a reversed range: Debian cron silently"
                      " reads it as empty, so the job would never run; write the"
                      " low end first, such as %s" % (item, field.name, fix))


def _cron_range_text(first, last):
    return str(first) if first == last else "%d-%d" % (first, last)


def _sunday_is_0_and_7(days):
    if 0 in days or 7 in days:
        days = set(days) | {0, 7}
    return days


def _check_cron_runs(schedule):
    """Refuse a schedule cron accepts but never runs: when a day must match
    both day fields, some chosen day of the month must exist in some chosen
    month (29 February counts: every valid date falls on every weekday within
    one Gregorian cycle)."""
    if schedule.days_match_both and not _possible_months(schedule):
        months = sorted(schedule.months)
        raise ConfigError("never runs: %s %s no %s; check the day-of-month and month"
                          " fields" % (_english_list([MONTH_FULL_NAMES[m - 1]
                                                      for m in months], "and"),
                                       "has" if len(months) == 1 else "have",
                                       _english_list([_ordinal(day) for day in
                                                      sorted(schedule.days_of_month)],
                                                     "or")))


def _possible_months(schedule):
    """The chosen months that have one of the chosen days in some year (the
    leap year 2000 stands for all)."""
    first_day = min(schedule.days_of_month)
    return [month for month in sorted(schedule.months)
            if first_day <= _days_in_month(2000, month)]


def _english_list(words, conjunction):
    if len(words) == 1:
        return words[0]
    return "%s %s %s" % (", ".join(words[:-1]), conjunction, words[-1])


def _ordinal(number):
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        number % 10, "th")
    return "%d%s" % (number, suffix)


def _cron_warnings(schedule, dom_text, dow_text):
    """One-line notes where cron's day rule is likely to surprise."""
    warnings = []
    dom_full = len(schedule.days_of_month) == 31
    dow_full = len(schedule.days_of_week) == 8  # 0 to 7, Sunday twice
    months = _possible_months(schedule)
    if schedule.days_match_both and not dom_full and not dow_full:
        starred = dom_text if dom_text[0] == "*" else dow_text
        warnings.append(
            "day-of-month %r and day-of-week %r: because %r starts with '*', Debian"
            " cron runs the job only on days matching both, not on days matching"
            " either" % (dom_text, dow_text, starred))
    elif not schedule.days_match_both and dom_full != dow_full:
        full, other = (dom_text, dow_text) if dom_full else (dow_text, dom_text)
        warnings.append(
            "runs every day: %r covers every day and does not start with '*', so"
            " Debian cron runs the job on days matching either day field, ignoring"
            " %r; write '*' for every day" % (full, other))
    elif not schedule.days_match_both and not months:
        warnings.append(
            "day-of-month %r never occurs in the months chosen: the job runs only on"
            " the days of the week %r" % (dom_text, dow_text))
    if (schedule.days_match_both and months == [2]
            and min(schedule.days_of_month) == 29):
        warnings.append("runs only on 29 February, so only in leap years")
    return warnings


# ---- 4. configuration ------------------------------------------------------------

class GlobalConfig(object):
    """The global configuration, every path absolute. `source` is the file it
    was read from, or None for the built-in defaults."""

    def __init__(self, source=None, user="process-control",
                 job_directory="/var/lib/process-control",
                 output_directory="/var/log/process-control",
                 run_directory="/run/process-control",
                 state_directory="/var/lib/process-control-state",
                 runner_path="/usr/bin/run-job", cron_template=None,
                 output_crontab="/etc/cron.d/process-control",
                 default_job_config=None, logging=None, mailto=None,
                 cron_environment=None):
        self.source = source
        self.user = user
        self.job_directory = job_directory
        self.output_directory = output_directory
        self.run_directory = run_directory
        self.state_directory = state_directory
        self.runner_path = runner_path
        self.cron_template = cron_template
        self.output_crontab = output_crontab
        self.default_job_config = default_job_config or {}
        self.logging = logging
        self.mailto = mailto
        self.cron_environment = cron_environment or {}


class Job(object):
    """One validated job file. `commands` and `slow_start_commands` are lists
    of argv lists, run in sequence; timeout and kill_grace are seconds
    (timeout 0 means none)."""

    def __init__(self, name, source=None, description=None, commands=(),
                 slow_start_commands=None, schedule=None, disabled=False,
                 timeout=600.0, kill_grace=10.0, environment=None, tags=(),
                 allow_overtime=False, fail_on_stderr=False,
                 success_exit_codes=(0,), failmail=None,
                 failure_threshold_for_mail=None):
        self.name = name
        self.source = source
        self.description = description
        self.commands = [list(argv) for argv in commands]
        self.slow_start_commands = slow_start_commands
        self.schedule = schedule
        self.disabled = disabled
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.environment = dict(environment or {})
        self.tags = list(tags)
        self.allow_overtime = allow_overtime
        self.fail_on_stderr = fail_on_stderr
        self.success_exit_codes = frozenset(success_exit_codes)
        self.failmail = failmail
        self.failure_threshold_for_mail = failure_threshold_for_mail


# ---- 5. privileges ---------------------------------------------------------------


# ---- 6. the lock -----------------------------------------------------------------


# ---- 7. running ------------------------------------------------------------------


# ---- 8. state and history --------------------------------------------------------


# ---- 9. reporting ----------------------------------------------------------------


# ---- 10. the command line --------------------------------------------------------

def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
