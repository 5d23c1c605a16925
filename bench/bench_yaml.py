#!/usr/bin/env python3
"""Speed of run_job.parse_yaml_document against PyYAML, side by side in one run.

Goals: parsing a corpus of job files at least 10x faster than PyYAML's
pure-Python SafeLoader (what yaml.safe_load uses) and no slower than its
libyaml CSafeLoader. Prints the times and the ratios; exits 1 if a goal is
missed, 0 otherwise, and skips (exit 0) when PyYAML is absent.

    python3 bench/bench_yaml.py [--rounds N]
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import run_job  # noqa: E402
from test_yaml_subset import JOB_FILES, example_files, load_yaml, same  # noqa: E402


def time_once(function, texts, rounds):
    """Seconds to parse every text `rounds` times."""
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            function(text)
    return time.perf_counter() - start


def timings(loaders, texts, rounds, repeats=7):
    """{loader name: [seconds of each of `repeats` timings]}, the loaders
    interleaved so that a busy machine slows them alike."""
    times = dict((name, []) for name, _ in loaders)
    for _ in range(repeats):
        for name, function in loaders:
            times[name].append(time_once(function, texts, rounds))
    return times


def corpus(yaml):
    """The job files to parse, checked to give PyYAML's results."""
    texts = [text if isinstance(text, str) else text.decode("utf-8")
             for _, text in JOB_FILES + example_files()]
    for text in texts:  # the comparison is meaningless unless results agree
        assert same(load_yaml(text), yaml.safe_load(text)), text
    return texts


def loaders(yaml):
    """[(name, parse function)]: ours, SafeLoader and, with libyaml, CSafeLoader."""
    found = [("run_job.parse_yaml_document", run_job.parse_yaml_document),
             ("yaml SafeLoader", lambda t: yaml.load(t, Loader=yaml.SafeLoader))]
    if getattr(yaml, "CSafeLoader", None) is not None:
        found.append(("yaml CSafeLoader", lambda t: yaml.load(t, Loader=yaml.CSafeLoader)))
    return found


def main(argv):
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 40
    try:
        import yaml
    except ImportError:
        print("bench_yaml: PyYAML is not installed; skipped")
        return 0
    texts = corpus(yaml)
    parsers = loaders(yaml)
    if len(parsers) < 3:
        print("bench_yaml: PyYAML has no libyaml (CSafeLoader); that goal is skipped")
    lines = sum(text.count("\n") + 1 for text in texts)
    print("corpus: %d files, %d lines, %d characters; %d rounds, best of 7 interleaved; %s"
          % (len(texts), lines, sum(map(len, texts)), rounds,
             sys.version.split()[0]))
    times = dict((name, min(seconds))
                 for name, seconds in timings(parsers, texts, rounds).items())
    for name, _ in parsers:
        per_file = times[name] / (rounds * len(texts)) * 1e6
        print("  %-18s %8.1f ms   %7.1f us per file" % (name, times[name] * 1e3, per_file))
    ours = times["run_job.parse_yaml_document"]
    ok = True
    ratio = times["yaml SafeLoader"] / ours
    print("speed-up over SafeLoader:  %5.1fx (goal >= 10x)" % ratio)
    ok = ok and ratio >= 10
    if "yaml CSafeLoader" in times:
        ratio = times["yaml CSafeLoader"] / ours
        print("speed-up over CSafeLoader: %5.2fx (goal >= 1x)" % ratio)
        ok = ok and ratio >= 1
    print("goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
