#!/usr/bin/env python3
"""Time Schedule on 10,000 random valid cron expressions.

Prints one labelled figure per line, in seconds for all 10,000:
parsing, next_after, previous_before, and next_after on the sparse
expressions alone (the slowest kind: a restricted day-of-month and month).
Goal (from the issue): 10,000 next-run computations well under a second.
With cronsim installed, also cronsim's time for the same parse + next run
and parse + previous run.
Usage: python3 bench/bench_schedule.py [COUNT]
"""

import datetime
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from run_job import ConfigError, Schedule  # noqa: E402

BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
STAR_CHANCE = (0.2, 0.3, 0.55, 0.7, 0.55)


def random_item(rng, low, high):
    kind = rng.random()
    if kind < 0.2:
        return "*/%d" % rng.randint(2, max(2, (high - low) // 2))
    if kind < 0.6:
        return str(rng.randint(low, high))
    first = rng.randint(low, high - 1)
    last = rng.randint(first + 1, high)
    if rng.random() < 0.3 and last - first >= 2:
        return "%d-%d/%d" % (first, last, rng.randint(2, last - first))
    return "%d-%d" % (first, last)


def random_expression(rng):
    fields = []
    for (low, high), star in zip(BOUNDS, STAR_CHANCE):
        if rng.random() < star:
            fields.append("*")
        else:
            fields.append(",".join(random_item(rng, low, high)
                                   for _ in range(rng.choice((1, 1, 2, 3)))))
    return " ".join(fields)


def valid_expressions(rng, count):
    result = []
    while len(result) < count:
        expression = random_expression(rng)
        try:
            Schedule(expression)
        except ConfigError:
            continue
        result.append(expression)
    return result


def timed(function, items):
    started = time.perf_counter()
    results = [function(item) for item in items]
    return time.perf_counter() - started, results


def corpus(count, seed=1):
    """COUNT random valid expressions and as many random start times."""
    rng = random.Random(seed)
    expressions = valid_expressions(rng, count)
    starts = [datetime.datetime(2020, 1, 1) + datetime.timedelta(
        seconds=rng.randrange(5 * 365 * 86400)) for _ in range(count)]
    return expressions, starts


def import_cronsim():
    try:
        import cronsim
    except ImportError:
        return None
    return cronsim


def next_runs(expressions, starts):
    """Seconds to parse each expression and find its next run after its start."""
    return timed(lambda pair: Schedule(pair[0]).next_after(pair[1]),
                 list(zip(expressions, starts)))[0]


def previous_runs(expressions, starts):
    return timed(lambda pair: Schedule(pair[0]).previous_before(pair[1]),
                 list(zip(expressions, starts)))[0]


def cronsim_next_runs(cronsim, expressions, starts):
    """The same as next_runs with cronsim (which agrees on these expressions:
    test_schedule.py checks it)."""
    return timed(lambda pair: next(cronsim.CronSim(pair[0], pair[1])),
                 list(zip(expressions, starts)))[0]


def cronsim_previous_runs(cronsim, expressions, starts):
    return timed(lambda pair: next(cronsim.CronSim(pair[0], pair[1], reverse=True)),
                 list(zip(expressions, starts)))[0]


def main(argv):
    count = int(argv[1]) if len(argv) > 1 else 10000
    expressions, starts = corpus(count)
    parse_time, schedules = timed(Schedule, expressions)
    pairs = list(zip(schedules, starts))
    next_time, _ = timed(lambda pair: pair[0].next_after(pair[1]), pairs)
    previous_time, _ = timed(lambda pair: pair[0].previous_before(pair[1]), pairs)
    sparse = [pair for pair in pairs
              if pair[0].expression.split()[2] != "*" and pair[0].expression.split()[3] != "*"]
    sparse_time, _ = timed(lambda pair: pair[0].next_after(pair[1]), sparse)
    print("python: %s" % sys.version.split()[0])
    print("expressions: %d random valid" % count)
    print("parse Schedule(expr) x%d: %.3f s" % (count, parse_time))
    print("next_after x%d: %.3f s" % (count, next_time))
    print("previous_before x%d: %.3f s" % (count, previous_time))
    print("parse + next_after x%d: %.3f s" % (count, parse_time + next_time))
    print("next_after, sparse day-of-month and month only x%d: %.3f s"
          % (len(sparse), sparse_time))
    cronsim = import_cronsim()
    if cronsim is None:
        print("cronsim is not installed (pip install cronsim): its comparison is skipped")
        return 0
    print("cronsim parse + next x%d: %.3f s" % (count, cronsim_next_runs(cronsim, expressions,
                                                                       starts)))
    print("cronsim parse + previous (reverse) x%d: %.3f s"
          % (count, cronsim_previous_runs(cronsim, expressions, starts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
