"""Tests for the YAML subset in run_job.py (section 2).

Table-driven: accepted documents with their exact values, rejected documents
with their line, column and message. When PyYAML is importable, every case is
also compared with yaml.safe_load, and a differential test runs generated
documents through both (YAML_FUZZ_CASES sets the count; fixed seeds).
"""

import datetime
import glob
import math
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402

try:
    import yaml
except ImportError:  # the differential tests skip
    yaml = None

D = datetime.date


def load_yaml(text, source="<string>"):
    """What run_job reads from TEXT: yaml.safe_load's value, or a ConfigError."""
    return run_job.parse_yaml_document(text, source)[0]


def same(a, b):
    """Type-strict deep equality: True is not 1, 1 is not 1.0, order matters."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def pyyaml_outcome(text):
    """('ok', value) or ('error', exception) from yaml.safe_load."""
    try:
        return "ok", yaml.safe_load(text)
    except Exception as error:  # PyYAML also leaks ValueError etc.
        return "error", error


# Documents the subset must accept, with the value PyYAML returns.
ACCEPTED = [
    # block mappings and sequences
    ("a: 1\nb: two\n", {"a": 1, "b": "two"}),
    ("a:\n  b:\n    c: 1\n  d: 2\ne: 3", {"a": {"b": {"c": 1}, "d": 2}, "e": 3}),
    ("key:\n- a\n- b\nc: d", {"key": ["a", "b"], "c": "d"}),
    ("key:\n    - a\n    - b\nother: 1", {"key": ["a", "b"], "other": 1}),
    ("- a: 1\n  b: 2\n- c: 3", [{"a": 1, "b": 2}, {"c": 3}]),
    ("-   a: 1\n    b: 2", [{"a": 1, "b": 2}]),
    ("- a:\n  - 1\n  b: 2", [{"a": [1], "b": 2}]),
    ("- a:\n    b: 1\n  c: 2", [{"a": {"b": 1}, "c": 2}]),
    ("- a:\n- b", [{"a": None}, "b"]),
    ("- \n- a", [None, "a"]),
    ("-\n-", [None, None]),
    ("-\n  a: 1\n  b: 2", [{"a": 1, "b": 2}]),
    ("- - a\n  - b\n- c", [["a", "b"], "c"]),
    ("- - - a", [[["a"]]]),
    ("-\n - a", [["a"]]),
    ("-a: b", {"-a": "b"}),
    ("a  : b", {"a": "b"}),
    ("a b: c", {"a b": "c"}),
    ("a:b: c", {"a:b": "c"}),
    ("a:b", "a:b"),
    ("a: # c\n  b: 1", {"a": {"b": 1}}),
    ("key:\n\n\n  value", {"key": "value"}),
    ("a:", {"a": None}),
    ("a: # c", {"a": None}),
    ("a: \n  \nb: 1", {"a": None, "b": 1}),
    ("a:\n  b:\n  c: 1", {"a": {"b": None, "c": 1}}),
    ("a:\n  b: 1\n# c\n  c: 2", {"a": {"b": 1, "c": 2}}),
    ("a:\n  b: 1\n      # c\n  c: 2", {"a": {"b": 1, "c": 2}}),
    ("x: 1\ny: 2\nn: 3", {"x": 1, "y": 2, "n": 3}),
    ("a: y\nb: n\nc: Y\nd: N", {"a": "y", "b": "n", "c": "Y", "d": "N"}),
    ("?a: b", {"?a": "b"}),
    # plain scalars
    ("a: -x", {"a": "-x"}), ("a: :x", {"a": ":x"}), ("a: ?x", {"a": "?x"}),
    ("a: -1", {"a": -1}), ("a: --1", {"a": "--1"}), ("a: ---", {"a": "---"}),
    ("a: ...x", {"a": "...x"}), ("a: .", {"a": "."}),
    ("a: b#c", {"a": "b#c"}), ("a:   b   ", {"a": "b"}),
    ("a: http://x:80/y", {"a": "http://x:80/y"}), ("key: x'y", {"key": "x'y"}),
    ("a: b &x", {"a": "b &x"}), ("a: b*c", {"a": "b*c"}), ("a: b!c", {"a": "b!c"}),
    ("a: b\n  c", {"a": "b c"}), ("a: b\n c", {"a": "b c"}),
    ("a:\n  b\n  c", {"a": "b c"}), ("a:\n    b\n  c", {"a": "b c"}),
    ("a:\n  b\n    c\n  d", {"a": "b c d"}),
    ("a: b\n  c\n\n  d", {"a": "b c\nd"}), ("a: b\n  c\n\n\n  d", {"a": "b c\n\nd"}),
    ("a: b\n\n  c", {"a": "b\nc"}), ("a: b\n  \n  c", {"a": "b\nc"}),
    ("a: b\n    \n\n  c", {"a": "b\n\nc"}), ("a: b  \n  c  ", {"a": "b c"}),
    ("- a\n  b", ["a b"]), ("- a\n b", ["a b"]),
    ("a: plain\n  text # c\nb: 1", {"a": "plain text", "b": 1}),
    ("a", "a"), ("a\nb", "a b"),
    # quoted scalars
    ("a: 'it''s'", {"a": "it's"}), ("a: '\\n'", {"a": "\\n"}),
    ('a: "\\0\\a\\b\\t\\\t\\n\\v\\f\\r\\e\\ \\"\\\\\\/\\N\\_\\L\\P"',
     {"a": "\0\a\b\t\t\n\v\f\r\x1b \"\\/\x85\xa0\u2028\u2029"}),
    ('a: "\\x41\\u00e9\\U0001F600"', {"a": "A\xe9\U0001F600"}),
    ('a: "b\\\n  c"', {"a": "bc"}), ('a: "b \\\n  c"', {"a": "b c"}),
    ('a: "x\\\n\n  y"', {"a": "x\ny"}),
    ('a: "b\n\n\n  c"', {"a": "b\n\nc"}), ("a: 'x \n \n  y'", {"a": "x\ny"}),
    ('a: "x\\n\n  y"', {"a": "x\n y"}), ('a: "b\\ \n c"', {"a": "b  c"}),
    ("a: 'b\tc'", {"a": "b\tc"}), ('a: "x\n\ty"', {"a": "x y"}),
    ("a: ''\nb: \"\"", {"a": "", "b": ""}), ("a: 'yes'", {"a": "yes"}),
    ("'a': 1\n\"b c\": 2", {"a": 1, "b c": 2}), ("\"a\" : b", {"a": "b"}),
    ("'': x", {"": "x"}),
    # block scalars (reference 1.5, rows 1-29)
    ("a: |\n  x\n  y\n", {"a": "x\ny\n"}), ("a: |-\n  x\n  y\n", {"a": "x\ny"}),
    ("a: |+\n  x\n  y\n\n\n", {"a": "x\ny\n\n\n"}), ("a: |\n  x\n\n\n", {"a": "x\n"}),
    ("a: |\n  x", {"a": "x"}), ("a: |+\n  x", {"a": "x"}), ("a: |-\n  x", {"a": "x"}),
    ("a: |+\n  x\n\n  ", {"a": "x\n\n"}), ("a: |\n\n  x\n", {"a": "\nx\n"}),
    ("a: |\n  x\n    \n  y\n", {"a": "x\n  \ny\n"}),
    ("a: |+\n  x\n    \n", {"a": "x\n  \n"}), ("a: |+\n  x\n  \n", {"a": "x\n\n"}),
    ("a: |\n  x\n\nb: 1", {"a": "x\n", "b": 1}),
    ("a: |+\n  x\n\nb: 1", {"a": "x\n\n", "b": 1}),
    ("a: |\nb: 1", {"a": "", "b": 1}), ("a: |+\n\n\nb: 1", {"a": "\n\n", "b": 1}),
    ("a: >-\n", {"a": ""}), ("a: |", {"a": ""}),
    ("a: >\n  x\n  y\n", {"a": "x y\n"}), ("a: >\n  x\n\n  y\n", {"a": "x\ny\n"}),
    ("a: >\n  x\n  \n  y\n", {"a": "x\ny\n"}), ("a: >\n  x\n\n\n  y", {"a": "x\n\ny"}),
    ("a: >\n  x\n    y\n  z\n", {"a": "x\n  y\nz\n"}),
    ("a: >\n  x\n\n    y\n\n  z\n", {"a": "x\n\n  y\n\nz\n"}),
    ("a: >\n  a\n  b\n\n  c\n   d\n  e\n", {"a": "a b\nc\n d\ne\n"}),
    ("a: >\n  x\n  \ty\n  z\n", {"a": "x\n\ty\nz\n"}),
    ("a: >\n  x  \n  y\n", {"a": "x   y\n"}), ("a: >\n  x\n   \n  y\n", {"a": "x\n \ny\n"}),
    ("a: >-\n  one\n  two\n\n  three\n", {"a": "one two\nthree"}),
    ("a: >+\n  one\n\n", {"a": "one\n\n"}), ("a: >+\n  x\n  y", {"a": "x y"}),
    ("a: >\n  x\n  y", {"a": "x y"}), ("a: >\n\n  x\n\n", {"a": "\nx\n"}),
    ("a: |2\n   x\n  y\n", {"a": " x\ny\n"}), ("a: |1\n  x", {"a": " x"}),
    ("a: >2\n    x\n  y\n", {"a": "  x\ny\n"}), ("a: |2+\n   x\n\n", {"a": " x\n\n"}),
    ("a: |-2\n   x\n", {"a": " x"}),
    ("a: |\n  # not a comment\n  x\n", {"a": "# not a comment\nx\n"}),
    ("a: |\n  x\n# comment\nb: 1", {"a": "x\n", "b": 1}),
    ("a: |\r\n  x\r\n  y\r\n", {"a": "x\ny\n"}),
    ("- |\n  x\n- y", ["x\n", "y"]), ("- >\n x\n y\n", ["x y\n"]),
    ("a: |  # c\n  x\n", {"a": "x\n"}), ("a:\n- |1\n  x\n", {"a": [" x\n"]}),
    ("a:\n  b: |2\n      x\n", {"a": {"b": "  x\n"}}),
    ("a: |\n  x\n  \ty\n", {"a": "x\n\ty\n"}), ("a: |\n  x\n  y\t\n", {"a": "x\ny\t\n"}),
    ("a: |\n  x\n  \t\n  y\n", {"a": "x\n\t\ny\n"}),
    # flow collections
    ("a: [a, b]", {"a": ["a", "b"]}), ("a: [a,b]", {"a": ["a", "b"]}),
    ("a: [ a ]", {"a": ["a"]}), ("a: []\nb: [ ]\nc: {}", {"a": [], "b": [], "c": {}}),
    ("a: [a, b,]", {"a": ["a", "b"]}), ("a: {k: v}", {"a": {"k": "v"}}),
    ("a: { k : v }", {"a": {"k": "v"}}), ("a: {k: v, }", {"a": {"k": "v"}}),
    ('a: {"k": 1}', {"a": {"k": 1}}),
    ("a: [1, 'two', \"three\", 4.5, true, null, ~]",
     {"a": [1, "two", "three", 4.5, True, None, None]}),
    ("a: [a b, c  d]", {"a": ["a b", "c  d"]}), ("a: [http://x]", {"a": ["http://x"]}),
    ("a: [a:b]", {"a": ["a:b"]}), ("a: [a#b]", {"a": ["a#b"]}),
    ("a: [a] # c", {"a": ["a"]}), ("[a, b]", ["a", "b"]), ("{a: b}", {"a": "b"}),
    ("a: [[1, 2], {b: [c]}]", {"a": [[1, 2], {"b": ["c"]}]}),
    ("tags: [database, queue]", {"tags": ["database", "queue"]}),
    # typing
    ("x: [true, False, ~, null, NULL, 0x1F, +1, -0, .5, 5., 001.23, 1.0e+3, "
     "3.10, .inf, -.inf, +.inf]",
     {"x": [True, False, None, None, None, 31, 1, 0, 0.5, 5.0, 1.23, 1000.0,
            3.1, float("inf"), float("-inf"), float("inf")]}),
    ("x: [inf, nan, -.nan, '1,000']", {"x": ["inf", "nan", "-.nan", "1,000"]}),
    ("x: 2001-12-14T21:59", {"x": "2001-12-14T21:59"}),
    ("x: 1,000", {"x": "1,000"}), ("x: 1.0.0", {"x": "1.0.0"}), ("x: 1 000", {"x": "1 000"}),
    ("x: 2001-12-14\ny: 2000-02-29\nz: 0001-01-01",
     {"x": D(2001, 12, 14), "y": D(2000, 2, 29), "z": D(1, 1, 1)}),
    ("x: 2001-1-4", {"x": "2001-1-4"}), ("x: 0X1F", {"x": "0X1F"}),
    ("x: 0x", {"x": "0x"}), ("x: 0:30", {"x": "0:30"}), ("x: 1.0E-3", {"x": 0.001}),
    ("x: yEs\ny: tRUE\nz: nULL", {"x": "yEs", "y": "tRUE", "z": "nULL"}),
    ("x: ~x", {"x": "~x"}), ("x: <x", {"x": "<x"}), ("x: -0.0", {"x": -0.0}),
    ("x: 12345678901234567890", {"x": 12345678901234567890}),
    # stream
    ("", None), ("---\n", None), ("---", None), ("# only\n", None),
    ("--- \na: 1", {"a": 1}), ("--- # c\na: 1", {"a": 1}),
    ("# comment\n---\na: 1", {"a": 1}), ("\ufeffa: 1", {"a": 1}),
    ("a: b\rc: d".replace("\r", "\r\n"), {"a": "b", "c": "d"}),
    ("a: b #\tc\n# c\t\nd: e", {"a": "b", "d": "e"}),
    ("  a: 1\n  b: 2", {"a": 1, "b": 2}),
    ("x" * 1024 + ": v", {"x" * 1024: "v"}),
]

# Documents the subset must reject: (text, line, column, part of the message).
REJECTED = [
    # tabs
    ("\ta: b", 1, 1, "tab character used for indentation; indent with spaces"),
    ("a:\n\tb: c", 2, 1, "indent with spaces"), ("a:\n  \tb: c", 2, 3, "tab"),
    ("a:\tb", 1, 3, "tab"), ("a: \tb", 1, 4, "tab"), ("a:\t[1]", 1, 3, "tab"),
    ("a\t: b", 1, 2, "tab"), ("'a'\t: b", 1, 4, "tab"), ("a: b\tc", 1, 5, "tab"),
    ("a: b\t", 1, 5, "tab"), ("a: b\t# c", 1, 5, "tab"), ('key: "x"\t', 1, 9, "tab"),
    ("-\ta", 1, 2, "tab"), ("- \ta", 1, 3, "tab"), ("[1,\t2]", 1, 4, "tab"),
    ("{b:\t1}", 1, 4, "tab"), ("a: b\n\t\nc: d", 2, 1, "tab"),
    ("a: b\n  \t\nc: d", 2, 3, "tab"), ("a: |\n  x\n\ty\n", 3, 1, "tab"),
    ("a: |\n  x\n \ty\n", 3, 2, "tab"), ("a:\t", 1, 3, "tab"),
    # duplicate and non-string keys
    ("a: 1\nb: 2\na: 3", 3, 1, "duplicate key 'a' (first defined at line 1); remove one of them"),
    ("'a': 1\na: 2", 2, 1, "duplicate key 'a'"), ("x: {a: 1, a: 2}", 1, 11, "duplicate key 'a'"),
    ("1: a", 1, 1, "not a string; quote it"), ("true: x", 1, 1, "not a string"),
    ("yes: x", 1, 1, "quote it"), ("null: x", 1, 1, "not a string"),
    ("~: x", 1, 1, "not a string"), ("1.5: x", 1, 1, "not a string"),
    ("2002-12-14: x", 1, 1, "not a string"), ("0x10: a\n16: b", 1, 1, "not a string"),
    ("x: {1: a}", 1, 5, "not a string"),
    # anchors, aliases, tags, complex keys, merge keys, directives, documents
    ("a: &x 1\nb: *x", 1, 4, "anchor"), ("a: *x", 1, 4, "alias"),
    ("schedule: */5 * * * *", 1, 11, "quote the value"), ("a: &anchor", 1, 4, "anchor"), ("a: !!str 1", 1, 4, "tags"),
    ("a: ! x", 1, 4, "tags"), ("!foo x", 1, 1, "tags"),
    ("? a\n: b", 1, 1, "complex keys"), ("? a", 1, 1, "complex keys"),
    ("<<: {x: 1}", 1, 1, "merge keys"), ("a:\n  <<: 1", 2, 3, "merge keys"),
    ("a: <<", 1, 4, "quote it"), ("a: =", 1, 4, "quote it"), ("=: x", 1, 1, "quote it"),
    ("%YAML 1.1\n---\na: 1", 1, 1, "directives"), ("%TAG ! x\n---\na: 1", 1, 1, "directives"),
    ("a: 1\n---", 2, 1, "second document"), ("---\na: 1\n---\nb: 2", 3, 1, "second document"),
    ("a: b\n...\n", 2, 1, "'...'"), ("--- a: 1", 1, 5, "after '---'"),
    ("--- a", 1, 5, "after '---'"),
    # YAML 1.1 versus 1.2
    ("a: yes", 1, 4, "'yes' means true in YAML 1.1 but a string in YAML 1.2; "
     "quote it, or write true/false"),
    ("a: No", 1, 4, "write true/false"), ("a: on", 1, 4, "write true/false"),
    ("a: OFF", 1, 4, "write true/false"),
    ("a: 010", 1, 4, "quote it"), ("a: 0644", 1, 4, "quote it"), ("a: 08", 1, 4, "quote it"),
    ("a: 007", 1, 4, "quote it"), ("a: 00", 1, 4, "quote it"), ("a: 0_7", 1, 4, "quote it"),
    ("a: 0o17", 1, 4, "quote it"), ("a: -0x1F", 1, 4, "quote it"),
    ("a: 0b101", 1, 4, "quote it"), ("a: 1_000", 1, 4, "quote it"),
    ("a: 1:30", 1, 4, "quote it"), ("a: 22:22", 1, 4, "quote it"),
    ("a: 1:30.5", 1, 4, "quote it"), ("a: -.5", 1, 4, "quote it"),
    ("a: +.5", 1, 4, "quote it"), ("a: 1e3", 1, 4, "quote it"), ("a: 1E3", 1, 4, "quote it"),
    ("a: 1.0e3", 1, 4, "quote it"), ("a: 1.5e3", 1, 4, "quote it"),
    ("a: 0x_", 1, 4, "quote it"), ("a: 1._", 1, 4, "quote it"),
    ("a: 2001-12-14 21:59:43", 1, 4, "timestamps"), ("a: [1,000]", 1, 7, "quote it"),
    ("a: 2001-13-01", 1, 4, "not a valid date"), ("a: 2001-02-29", 1, 4, "not a valid date"),
    ("a: 1900-02-29", 1, 4, "not a valid date"), ("a: 0000-01-01", 1, 4, "not a valid date"),
    ("a: [1_000, 0x1F]", 1, 5, "quote it"), ("a: [yes]", 1, 5, "true/false"),
    # plain scalar structure
    ("a: @x", 1, 4, "'@'"), ("a: `x", 1, 4, "'`'"), ("a: %x", 1, 4, "'%'"),
    ("a: ,x", 1, 4, "','"), ("a: ]", 1, 4, "']'"), ("a: }", 1, 4, "'}'"),
    ("a: - b", 1, 4, "sequence entry"), ("a: b: c", 1, 5, "quote the value"),
    ("a: b:", 1, 5, None), ("a\n b: c", 2, 3, None), ("a: b\nc", 2, 1, None),
    ("a: b # c\n  d", 2, 3, "indentation"), ("a: b\n  # c\n  d", 3, 3, "indentation"),
    ("a: b\n  c: d", 2, 4, None), ("a: 1\n b: 2", 2, 3, None),
    ("a:\n  b: 1\n c: 2", 3, 2, None),
    ("a: b\n  - c", 2, 3, "continues the text above"),
    ("- a\n  - b", 2, 3, "continues the text above"),
    ("a: b\n  c\n  ---", 3, 3, "continues the text above"),
    (": b", 1, 1, None), ("- a: 1\n b: 2", 2, 2, "indentation"),
    ("- a: 1\n   b: 2", 2, 5, "quote the value"), ("a: 1\n- b", 2, 1, "sequence entry"),
    ("x" * 1025 + ": v", 1, 1, "longer than 1024"),
    # quoted scalars
    ('a: "\\q"', 1, 5, "invalid escape"), ("a: \"\\'\"", 1, 5, "invalid escape"),
    ('a: "\\x4"', 1, 5, "invalid escape"), ('a: "\\ud800"', 1, 5, "not a valid character"),
    ('a: "\\U00110000"', 1, 5, "not a valid character"),
    ('a: "x\n  \\q"', 2, 3, "invalid escape"),
    ('a: "x" y', 1, 8, "after the value"), ('key: "value"# c', 1, 13, "add a space before '#'"),
    ("a: 'b\nc'", 2, 1, "indented more"), ('a: "b', 1, 4, "never closed"),
    ('"a\nb": c', 2, 3, "one line"), ('"a":b', 1, 4, None),
    # block scalars
    ("a: |x", 1, 4, "block scalar header"), ("a: |#c", 1, 4, "block scalar header"),
    ("a: |10", 1, 4, "block scalar header"), ("a: |0", 1, 4, "block scalar header"),
    ("a: |\t", 1, 4, "block scalar header"), ("a: | \t# c", 1, 4, "block scalar header"),
    ("a: |22\n  x", 1, 4, "block scalar header"),
    ("a: |\n    x\n  y", 3, 3, None), ("a: >\n   x\n  y\n", 3, 3, None),
    ("- a: |\n  x\n", 2, 3, None), ("a: |\n      \n  x\n", 2, 1, "blank line"),
    ("empty: >\n \n  \n   \n # comment\n", 4, 1, "blank line"),
    ("foo: |\n  x\n   ", 3, 3, "trailing spaces"), ("--- |2\n  x\n", 1, 5, None),
    ("|2\n  x\n", 1, 1, "indentation digit"),
    # flow collections
    ("a: [a,, b]", 1, 7, "empty entry"), ("a: [,]", 1, 5, "empty entry"),
    ("a: {k:v}", 1, 5, "key: value"), ("a: {k}", 1, 5, "key: value"),
    ("a: {k: }", 1, 8, "missing value"),
    ("a: [k: v]", 1, 6, "pairs"), ("a: [?x]", 1, 5, "complex keys"),
    ("a: [a,\nb]", 1, 7, "same line"), ("[a #b]", 1, 4, "same line"),
    ("a: [a] b", 1, 8, "after the value"), ("a: [a]b", 1, 7, "after the value"),
    ("a: {k: v}x", 1, 10, "after the value"), ("a: [-1, -a, - a]", 1, 13, "sequence entry"),
    ("[a, b]: c", 1, 7, None), ("{a: 1}: c", 1, 7, None), ("a: {[a]: 1}", 1, 5, "cannot be a key"),
    ("a: [a] # c\n  b", 2, 3, None),
    # characters and encodings
    ("a: \x00", 1, 4, "U+0000"), ("a: \x07b", 1, 4, "U+0007"), ("a: \x7f", 1, 4, "U+007F"),
    ("a: b\x85c", 1, 5, "line break"), ("a: b\rc: d", 1, 5, "carriage return"),
    ("a: x\ufeffy", 1, 5, "byte order mark"), ("a: b\u2028", 1, 5, "line break"),
    (b"a: \xff\n", 1, 4, "invalid UTF-8 byte 0xff (byte offset 3)"),
    (b"a: 1\nb: \xc3\xa9\xc3\n", 2, 5, "byte offset 10"),
    ("a: \u00e9".encode("utf-16"), 1, 1, "invalid UTF-8"),
]


# Every quoted example in /work/shared/reference/yaml-subset.md (PyYAML's
# verified behaviour), extracted verbatim; the contract must hold for each.
REFERENCE_EXAMPLES = [
    'a: b\n  c', 'a', 'b c', 'reject', 'best effort', '---', ':', '-', 'single',
    'double', '#', 'a: é', 'utf-16', '\ufeffa: 1', 'a: x\ufeffy', 'x\ufeffy',
    '[^\t\n\r -~\x85\xa0-\ud7ff\ue000-�𐀀-\U0010ffff]', 'a: \x85', 'a: b\x85c',
    'a: b\rc: d', 'b', 'c', 'd', '', 'yYnNtTfFoO', '-+0123456789.', '-+0123456789', '<',
    '~', 'n', 'N', '0123456789', '=', '0', 'Norway problem', '~x', '08', '_1', 'x',
    "ambiguous plain scalar 'X' at L:C; quote it", 'non-string key; quote it', '-x',
    ':x', '?x', '--1', '...x', '.', 'b#c',
    '` and `"` are literal when not first (`key: x', 'a: b\n c', 'a:\n  b\n  c',
    'a:\n    b\n  c', 'a:\n  b\n    c\n  d', 'b c d', 'a: b\n  c\n\n  d', 'b c\nd',
    'a: b\n  c\n\n\n  d', 'b c\n\nd', 'a: b\n\n  c', 'b\nc', 'a: b\n  \n  c',
    'a: b\n    \n\n  c', 'b\n\nc', 'a: b  \n  c  ', '- a\n  b', 'a b', '- a\n b',
    'a\n b: c', 'a: b\nc', 'a: plain\n  text # c\nb: 1', 'plain text', 'a: b # c\n  d',
    'a: b\n  # c\n  d', 'a: b\n  c: d', 'a: b\n  - c', 'b - c', '- a\n  - b', 'a - b',
    '- a\n -b', 'a -b', 'a: b\n  c\n  ---', 'b c ---', 'a\nb', '` (`a: ', '` → `"it',
    '\n', '\\n', '\\q', "'", 'expected escape sequence of 2 hexadecimal numbers',
    '\ud800', 'a: "b\\\n  c"', 'bc', 'a: "b \\\n  c"', 'a: "x\\\n\n  y"', 'x\ny',
    'a: "b\n\n\n  c"', "a: 'x \n \n  y'", 'a: "x\\n\n  y"', 'x\n y', "a: 'b\nc'",
    'wrong indented multiline quoted scalar', 'value', 'yes', ' ', 'a: |  # c\n  x\n',
    'x\n', '--- |2\n  x\n', ' x\n', 'a:\n- |1\n  x\n', 'a:\n  b: |2\n      x\n',
    '  x\n', 'less indented', 'a: |\n      \n  x\n',
    'empty: >\n \n  \n   \n # comment\n', 'empty', 'more indented',
    'a: \\|\n  x\n  y\n', 'x\ny\n', 'a: \\|-\n  x\n  y\n', 'a: \\|+\n  x\n  y\n\n\n',
    'x\ny\n\n\n', 'a: \\|\n  x\n\n\n', 'a: \\|\n  x', 'a: \\|+\n  x', 'a: \\|-\n  x',
    'a: \\|+\n  x\n\n  ', 'x\n\n', 'a: \\|\n\n  x\n', '\nx\n',
    'a: \\|\n  x\n    \n  y\n', 'x\n  \ny\n', 'a: \\|+\n  x\n    \n',
    'a: \\|+\n  x\n  \n', 'x\n  \n', 'a: \\|\n  x\n\nb: 1', 'a: \\|+\n  x\n\nb: 1',
    'a: \\|\nb: 1', 'a: \\|+\n\n\nb: 1', 'a: >-\n', 'a: \\|', '\n\n',
    'a: >\n  x\n  y\n', 'x y\n', 'a: >\n  x\n\n  y\n', 'a: >\n  x\n  \n  y\n',
    'a: >\n  x\n\n\n  y', 'x\n\ny', 'a: >\n  x\n    y\n  z\n', 'x\n  y\nz\n',
    'a: >\n  x\n\n    y\n\n  z\n', 'x\n\n  y\n\nz\n',
    'a: >\n  a\n  b\n\n  c\n   d\n  e\n', 'a b\nc\n d\ne\n', 'a: >\n  x\n  \ty\n  z\n',
    'x\n\ty\nz\n', 'a: >\n  x  \n  y\n', 'x   y\n', 'a: >\n  x\n   \n  y\n',
    'x\n \ny\n', 'a: >-\n  one\n  two\n\n  three\n', 'a: >+\n  one\n\n',
    'one two\nthree', 'one\n\n', 'a: >+\n  x\n  y', 'a: >\n  x\n  y', 'x y',
    'a: >\n\n  x\n\n', 'a: \\|2\n   x\n  y\n', 'a: \\|1\n  x', 'a: >2\n    x\n  y\n',
    ' x\ny\n', ' x', '  x\ny\n', 'a: \\|2+\n   x\n\n', ' x\n\n',
    'a: \\|\n  # not a comment\n  x\n', 'a: \\|\n  x\n# comment\nb: 1',
    '# not a comment\nx\n', 'a: \\|\r\n  x\r\n  y\r\n', '- \\|\n  x\n- y',
    '- >\n x\n y\n', 'y', 'a: \\|\n    x\n  y', 'a: >\n   x\n  y\n', '- a: \\|\n  x\n',
    'foo: |\n  x\n   ', 'x\n ', 'x\n \n', '- |+\n   ', ': v', 'a  : b', 'a b: c',
    'a:b: c', 'a:b', '"a":b', 'a: 1\n b: 2', 'mapping values are not allowed here',
    't match an outer level ⇒ ERR (`', 'a: # c\n  b: 1', 'key:\n\n\n  value', 'key',
    's column ("indentless"): `', 'key:\n    - a\n    - b\nother: 1', '- \n- a', '-\n-',
    '-\n  a: 1\n  b: 2', '- - a\n  - b\n- c', '- - - a', '-\n - a', '-a: b', '-a',
    's column is the key', '- a: 1\n  b: 2\n- c: 3', '-   a: 1\n    b: 2',
    '- a: 1\n b: 2', '- a: 1\n   b: 2', '- a:\n  - 1\n  b: 2', '- a:\n    b: 1\n  c: 2',
    '- a:\n- b', 'a:', 'a: # c', 'a: \n  \nb: 1', 'a:\n  b:\n  c: 1',
    'sequence entries are not allowed here', 'a:\n  b: 1\n# c\n  c: 2',
    'a:\n  b: 1\n      # c\n  c: 2', 'a: [a, b]', 'a: [a,b]', 'a: [ a ]', 'a: []',
    'a: [ ]', 'a: {}', 'a: [a, b,]', 'a: [a,, b]', 'a: [,]', 'a: {k: v}',
    'a: { k : v }', 'a: {k: v, }', 'k', 'v', 'a: {"k": 1}', 'a: [1, ',
    ', "three", 4.5, true, null, ~]', 'two', 'three', 'a: [1_000, 0x1F, 010, yes]',
    'a: [1:30]', 'a: [a b, c  d]', 'c  d', 'a: [http://x]', 'a: [a:b]', 'a: [a#b]',
    'a: {k:v}', 'k:v', 'a: {k}', 'a: {k: }', 'a: [k: v]', 'a: [?x]', 'a: [a,\nb]',
    'a: [a] b', 'a: [a]b', 'a: {k: v}x', 'a: [-1, -a, - a]', 'found unhashable key',
    'a: [a] # c', '[a, b]', '{a: b}', '---\n', '# only\n', '--- \na: 1',
    '--- # c\na: 1', '--- a', '--- [a]', '--- |\n  x\n', '--- a: 1', '---a: 1', '---a',
    'a: b\n...\n', 'a: 1\n---', '---\na: 1\n---\nb: 2', 'expected a single document',
    '&a', 'b &x', '1', 'hello', '?a', '0x10: a\n16: b', '1: a\n1.0: b',
    'yes: 1\ntrue: 2', "found character '\t' that cannot start any token", '\ta: b',
    'a:\n\tb: c', 'a:\n  \tb: c', 'a:\tb', 'a: \tb', 'a:\t[1]', 'a:\t', 'a\t: b',
    "'a'\t: b", 'a: b\tc', 'a: b\t', 'a: b\t# c', 'key: "x"\t', '-\ta', '- \ta',
    '[1,\t2]', '{b:\t1}', 'a: b\n\t\nc: d', 'a: b\n  \t\nc: d', '|\t', '| \t# c',
    'a: |\n  x\n\ty\n', 'a: |\n  x\n \ty\n', "a: 'b\tc'", 'b\tc', 'a: "x\n\ty"',
    'a: b #\tc', '# c\t\na: b', 'a: |\n  x\n  \ty\n', 'x\n\ty\n', 'a: |\n  x\n  y\t\n',
    'x\ny\t\n', 'a: |\n  x\n  \t\n  y\n', 'x\n\t\ny\n', 'foo:\n  - bar\t\n',
    's position**, silently: `', "'a': 1\na: 2",
    "duplicate key 'a' at L:C, first defined at L:C", 'passes', ' \t\n:-#\'"|>[]{},',
]


# Realistic job files, in the style of examples/*.yaml (which another branch
# writes): the parser must accept every one and agree with PyYAML.
JOB_FILES = [
    ("backup-db.yaml", """\
# Nightly database backup.
# Owner: ops@example.com
---
name: Database backup
description: >
    Dumps every database to /srv/backup, compresses the dump
    and removes dumps older than two weeks.

command:
    - /usr/local/bin/db-dump --all --output /srv/backup/db.sql
    - /usr/bin/gzip --force /srv/backup/db.sql
    - /usr/bin/find /srv/backup -name '*.gz' -mtime +14 -delete
schedule: "15 3 * * *"   # after the log rotation
timeout: 2h
kill_grace: 1m
environment:
    PGHOST: db.internal
    PGPORT: 5432
    PGUSER: backup
    PGPASSFILE: /etc/backup/pgpass
tags: [database, backup, nightly]
fail_on_stderr: true
success_exit_codes: [0, 3]
"""),
    ("report.yaml", """\
name: Nightly report
description: Two steps in sequence, with its own environment.
command:
    - /bin/sh -c 'echo "building the report for $REPORT_DAY"'
    - /bin/sh -c 'echo "uploaded to $REPORT_BUCKET"'
schedule: "30 2 * * *"
timeout: 5m
environment:
    REPORT_DAY: yesterday
    REPORT_BUCKET: sales-reports
tags: [demo, reports]
"""),
    ("broken.yaml", """\
name: Always fails
description: Exits 3 after writing to stderr, to show a failure.
command: /bin/sh -c 'echo "about to fail" ; echo "something went wrong" >&2 ; exit 3'
tag: demo
"""),
    ("cleanup.yaml", """\
# Clean the upload spool every ten minutes.
name: 'Spool cleanup'
command: /usr/local/sbin/spool-clean --older-than 1h --quiet
schedule: '*/10 * * * *'
timeout: 9m
allow_overtime: false
disabled: false
tags:
- spool
- housekeeping
failmail: ops@example.com
failure_threshold_for_mail: 3
"""),
    ("warehouse-load.yaml", """\
name: Warehouse load
description: |
    Loads yesterday's events into the warehouse.

    Runs after the ETL export; if the export is late the load
    waits up to an hour (see --wait).
command:
  - /opt/etl/bin/load
    --source s3://events/daily
    --wait 3600
  - /opt/etl/bin/vacuum --analyze
slow_start_command: /opt/etl/bin/load --source s3://events/daily --rebuild
schedule: "0 5 * * 1-5"
timeout: 4h
kill_grace: 5m
environment:
  ETL_CONFIG: /etc/etl/warehouse.ini
  ETL_LOG_LEVEL: info
  AWS_DEFAULT_REGION: eu-west-1
  BATCH_SIZE: 50000
  RATIO: 0.75
tags: [etl, warehouse]
success_exit_codes:
  - 0
  - 75
started: 2024-03-01
owner: "data-team"
"""),
    ("certificates.yaml", """\
# Renew TLS certificates; the hook reloads nginx.
name: Certificate renewal
command: >-
    /usr/bin/certbot renew --quiet
    --deploy-hook "/usr/sbin/nginx -s reload"
schedule: "17 4,16 * * *"
timeout: 15m
environment: {CERTBOT_OPTS: --no-random-sleep-on-renew, LANG: C.UTF-8}
fail_on_stderr: false
notes: ~
"""),
    ("metrics-rollup.yaml", """\
name: Metrics rollup
description: "Aggregates raw metrics into hourly buckets.\\nSafe to re-run."
command:
    - /usr/local/bin/rollup --interval hourly
    - /usr/local/bin/rollup --interval daily --only-if-midnight
schedule: "5 * * * *"
timeout: 50m     # must finish before the next run
kill_grace: 30s
environment:
    ROLLUP_DB: "postgresql://metrics@db.internal/metrics"
    ROLLUP_THREADS: 4
    ROLLUP_DRY_RUN: false
tags: [metrics]
checks:
    - name: disk
      min_free: 10.5
    - name: lag
      max_seconds: 300
"""),
    ("mail-digest.yaml", """\
name: Mail digest
description: >
  Sends the daily digest to every subscriber
  who asked for one.

  Skips users whose address bounced in the last week.
command: ["/usr/local/bin/digest", "--send", "--batch", "500"]
schedule: "0 7 * * *"
timeout: 30m
environment:
  DIGEST_FROM: "Digest <noreply@example.com>"
  DIGEST_SUBJECT: 'Your daily digest: news & updates'
tags: [mail]
failmail: [ops@example.com, mail-team@example.com]
failure_threshold_for_mail: 2
"""),
    ("log-shipper.yaml", """\
# Ship rotated logs to the archive host.
name: Log shipper
command: |
  /usr/bin/rsync -a --remove-source-files \\
      /var/log/archive/ archive.internal:/srv/logs/
schedule: "@hourly"
timeout: 45m
allow_overtime: true
environment:
  RSYNC_RSH: ssh -i /etc/shipper/id_ed25519 -o BatchMode=yes
tags: [logs]
"""),
    ("process-control.yaml", """\
# Global configuration for run-job and cron-generate.
user: process-control
job_directory: /var/lib/process-control
output_directory: /var/log/process-control
run_directory: /run/process-control
state_directory: /var/lib/process-control-state
runner_path: /usr/bin/run-job
output_crontab: /etc/cron.d/process-control
mailto: root
cron_environment:
    PATH: /usr/local/bin:/usr/bin:/bin
default_job_config:
    timeout: 10m
    kill_grace: 10s
logging:
    version: 1
    disable_existing_loggers: false
    formatters:
        runjob:
            format: 'run-job[%(process)d]: %(message)s'
    handlers:
        syslog:
            class: logging.handlers.SysLogHandler
            address: /dev/log
            facility: daemon
            formatter: runjob
    root:
        level: INFO
        handlers: [syslog]
"""),
]


def example_files():
    """The seed-style job files under examples/ (written on another branch)."""
    paths = sorted(glob.glob(os.path.join(HERE, "examples", "*.yaml"))
                   + glob.glob(os.path.join(HERE, "examples", "*", "*.yaml")))
    files = []
    for path in paths:
        with open(path, "rb") as handle:
            files.append((path, handle.read()))
    return files


class AcceptedTests(unittest.TestCase):
    def test_accepted_documents_have_exact_values(self):
        for text, expected in ACCEPTED:
            with self.subTest(text=text):
                self.assertTrue(same(load_yaml(text), expected),
                                repr(load_yaml(text)))

    def test_bytes_input_with_and_without_bom(self):
        self.assertEqual(load_yaml(b"a: \xc3\xa9\n"), {"a": "\xe9"})
        self.assertEqual(load_yaml(b"\xef\xbb\xbfa: 1\n"), {"a": 1})
        self.assertEqual(load_yaml(b"a: 1\r\nb: 2\r\n"), {"a": 1, "b": 2})

    @unittest.skipIf(yaml is None, "PyYAML is not installed")
    def test_accepted_documents_match_pyyaml(self):
        for text, expected in ACCEPTED:
            with self.subTest(text=text):
                outcome, value = pyyaml_outcome(text)
                self.assertEqual(outcome, "ok", value)
                self.assertTrue(same(value, expected), repr(value))


class RejectedTests(unittest.TestCase):
    def test_rejected_documents_name_line_column_and_fix(self):
        for text, line, column, fragment in REJECTED:
            with self.subTest(text=text):
                with self.assertRaises(run_job.ConfigError) as caught:
                    load_yaml(text, source="job.yaml")
                error = caught.exception
                self.assertEqual((error.source, error.line, error.column),
                                 ("job.yaml", line, column), str(error))
                self.assertTrue(str(error).startswith(
                    "job.yaml:%d:%d: " % (line, column)), str(error))
                self.assertIn(";", error.message, "message lacks a hint")
                if fragment is not None:
                    self.assertIn(fragment, error.message)

    def test_config_error_is_a_value_error(self):
        with self.assertRaises(ValueError):
            load_yaml("a: yes")


class MarksTests(unittest.TestCase):
    def test_marks_locate_keys_and_items(self):
        text = ("# job\n---\nname: backup\ncommand:\n  - /usr/bin/tar\n  - -c\n"
                "tags: [database, queue]\nenv:\n  A: 1\nlist:\n- x: 1\n  y: 2\n-\n"
                "  - 3\n")
        value, marks = run_job.parse_yaml_document(text, "j.yaml")
        self.assertEqual(value["tags"], ["database", "queue"])
        self.assertEqual(marks[()], (3, 1))
        self.assertEqual(marks[("name",)], (3, 1))
        self.assertEqual(marks[("command",)], (4, 1))
        self.assertEqual(marks[("command", 0)], (5, 5))
        self.assertEqual(marks[("command", 1)], (6, 5))
        self.assertEqual(marks[("tags", 1)], (7, 18))
        self.assertEqual(marks[("env", "A")], (9, 3))
        self.assertEqual(marks[("list", 0)], (11, 3))
        self.assertEqual(marks[("list", 0, "y")], (12, 3))
        self.assertEqual(marks[("list", 1)], (14, 3))
        self.assertEqual(marks[("list", 1, 0)], (14, 5))

    def test_empty_document_marks(self):
        self.assertEqual(run_job.parse_yaml_document("# c\n"), (None, {(): (1, 1)}))


class MappingTests(unittest.TestCase):
    def test_mapping_document(self):
        value, marks = run_job.load_yaml_mapping("a: 1\n", "f.yaml")
        self.assertEqual(value, {"a": 1})
        self.assertEqual(marks[("a",)], (1, 1))

    def test_non_mapping_documents_are_errors(self):
        for text, line, column, fragment in [
                ("", 1, 1, "empty"), ("# just a comment\n", 1, 1, "empty"),
                ("- a\n", 1, 1, "a list"), ("\n\n  hello\n", 3, 3, "a single value")]:
            with self.subTest(text=text):
                with self.assertRaises(run_job.ConfigError) as caught:
                    run_job.load_yaml_mapping(text, "f.yaml")
                error = caught.exception
                self.assertEqual((error.line, error.column), (line, column))
                self.assertIn(fragment, str(error))
                self.assertTrue(str(error).startswith("f.yaml:%d:%d: " % (line, column)))


class CorpusTests(unittest.TestCase):
    def test_job_files_are_accepted_as_mappings(self):
        for name, text in JOB_FILES:
            with self.subTest(name=name):
                value, marks = run_job.load_yaml_mapping(text, name)
                self.assertIn("name", value) if name != "process-control.yaml" \
                    else self.assertIn("user", value)
                for key in value:
                    self.assertIn((key,), marks)

    def test_job_file_values(self):
        value = load_yaml(dict(JOB_FILES)["warehouse-load.yaml"])
        self.assertEqual(value["command"], [
            "/opt/etl/bin/load --source s3://events/daily --wait 3600",
            "/opt/etl/bin/vacuum --analyze"])
        self.assertEqual(value["description"], (
            "Loads yesterday's events into the warehouse.\n\n"
            "Runs after the ETL export; if the export is late the load\n"
            "waits up to an hour (see --wait).\n"))
        self.assertTrue(same(value["environment"]["RATIO"], 0.75))
        self.assertTrue(same(value["started"], D(2024, 3, 1)))

    @unittest.skipIf(yaml is None, "PyYAML is not installed")
    def test_job_files_and_examples_match_pyyaml(self):
        for name, text in JOB_FILES + example_files():
            with self.subTest(name=name):
                outcome, expected = pyyaml_outcome(text)
                self.assertEqual(outcome, "ok", expected)
                self.assertTrue(same(load_yaml(text, name), expected))

    def test_examples_are_accepted(self):
        for name, text in example_files():
            with self.subTest(name=name):
                load_yaml(text, name)


# ---- differential testing against PyYAML ----------------------------------------

FUZZ_CASES = int(os.environ.get("YAML_FUZZ_CASES", "1000"))  # per generator
FUZZ_SEED = int(os.environ.get("YAML_FUZZ_SEED", "20240301"))


def subset_outcome(text):
    """('ok', value) or ('rejected', ConfigError); any other exception escapes."""
    try:
        return "ok", load_yaml(text, source="fuzz.yaml")
    except run_job.ConfigError as error:
        return "rejected", error


def contract_violation(text):
    """None if load_yaml honours its contract on text, else a description."""
    try:
        ours = subset_outcome(text)
    except Exception as error:  # the contract allows only ConfigError
        return "raised %s: %s" % (type(error).__name__, error)
    if ours[0] == "rejected":
        error = ours[1]
        lines = text.count("\n") + 1 if isinstance(text, str) else \
            text.count(b"\n") + 1
        if not (error.source == "fuzz.yaml" and isinstance(error.line, int)
                and 1 <= error.line <= lines + 1 and isinstance(error.column, int)
                and error.column >= 1 and str(error).startswith(
                    "fuzz.yaml:%d:%d: " % (error.line, error.column))):
            return "badly located error: %s" % error
        if "; " not in error.message:
            return "error without a hint ('what; how to fix'): %s" % error
        return None
    theirs = pyyaml_outcome(text)
    if theirs[0] != "ok":
        return "accepted what PyYAML rejects (%s): %r" % (theirs[1], ours[1])
    if not same(ours[1], theirs[1]):
        return "silent difference: ours %r, PyYAML's %r" % (ours[1], theirs[1])
    return None


def report(name, outcomes):
    """With YAML_FUZZ_REPORT set, print a generator's outcome counts."""
    if os.environ.get("YAML_FUZZ_REPORT"):
        sys.stderr.write("\n%s: %s\n" % (name, ", ".join(
            "%s %d" % item for item in sorted(outcomes.items()))))


def shrink(text, still_fails):
    """A smaller text that still fails: delete lines, then characters."""
    changed = True
    while changed:
        changed = False
        lines = text.split("\n")
        for i in range(len(lines)):
            candidate = "\n".join(lines[:i] + lines[i + 1:])
            if candidate != text and still_fails(candidate):
                text, changed = candidate, True
                break
        if changed:
            continue
        for i in range(len(text)):
            candidate = text[:i] + text[i + 1:]
            if still_fails(candidate):
                text, changed = candidate, True
                break
    return text


WORDS = ["backup", "name", "timeout", "db", "x", "y", "n", "value", "report",
         "a", "b", "key", "tags", "path", "/usr/bin/tar", "eu-west-1", "C.UTF-8",
         "http://x:80/y", "a#b", "it's", "dollar$sign", "caf\xe9", "\u4e2d\u6587",
         "v1.2.3", "under_score", "mixed-Case", "ends.", "a,b", "q?", "e=mc2",
         "percent%", "at@host", "x'y", "semi;colon", "tilde~", "back\\slash"]
STRINGS_NEEDING_QUOTES = [
    "", " leading", "trailing ", "yes", "No", "on", "OFF", "010", "0644", "1e3",
    "1_000", "1:30", "-.5", "0o17", "true", "null", "~", "123", "1.5", ".inf",
    "2001-12-14", "a: b", "a #b", "- x", "-", "? x", "#x", "&x", "*x", "!x",
    "|", ">", "%x", "@x", "`x", "[x]", "{x}", ",x", "'q'", '"dq"', "tab\there",
    "line\nbreak", "two\n\nbreaks", "bell\x07", "nul\x00", "esc\x1b", "del\x7f",
    "nbsp\xa0x", "\u2028ls", "emoji\U0001F600", "x:", "<<", "=", "0x1F",
    "  two spaces", "a  b", "back\\slash \"q\"", "\\n literal"]
PLAIN_SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789_./@%+=-$;~'\"\\\xe9\u4e2d\u6587?,:#")
SPECIAL_PLAIN_WORDS = {"yes", "no", "on", "off", "true", "false", "null", "y",
                       "n", "~"}


class Emitter(object):
    """Generator 1: a random value tree and a YAML text PyYAML reads as that
    tree, written with random but valid choices (indentation, sequence styles,
    scalar styles, comments, blank lines, '---', CRLF, final newline)."""

    def __init__(self, rng):
        self.rng = rng
        self.block_state = None  # (content indent, keep?) of a block scalar just written

    # -- values
    def value(self, depth):
        r = self.rng.random()
        if depth < 4 and r < 0.22:
            return self.mapping(depth + 1)
        if depth < 4 and r < 0.38:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 4))]
        return self.scalar()

    def mapping(self, depth):
        result = {}
        for _ in range(self.rng.randint(0 if depth > 1 else 1, 5)):
            result[self.key()] = self.value(depth)
        return result

    def key(self):
        rng = self.rng
        r = rng.random()
        if r < 0.6:
            return rng.choice(WORDS[:16]) + rng.choice(["", "", "_%d" % rng.randint(0, 99)])
        if r < 0.8:
            return rng.choice(WORDS)
        if r < 0.9:
            return rng.choice(WORDS) + " " + rng.choice(WORDS)
        return rng.choice(STRINGS_NEEDING_QUOTES).replace("\n", " ")

    def scalar(self):
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return self.string()
        if r < 0.5:
            return rng.choice([0, 1, -1, 7, 42, 1000, 65535, -273, 10 ** 20,
                               rng.randint(-10 ** 6, 10 ** 6)])
        if r < 0.62:
            return rng.choice([0.5, 1.5, -2.25, 3.1, 100.0, 1e3, 0.001, -0.0,
                               float("inf"), float("-inf"), float("nan"),
                               round(rng.uniform(-1e5, 1e5), rng.randint(0, 4))])
        if r < 0.72:
            return rng.random() < 0.5
        if r < 0.8:
            return None
        if r < 0.86:
            return D(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28))
        return rng.choice(STRINGS_NEEDING_QUOTES)

    def string(self):
        rng = self.rng
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
        text = " ".join(words)
        r = rng.random()
        if r < 0.1:
            text = "\n".join(words) + "\n" * rng.randint(0, 2)
        elif r < 0.18:
            text = " ".join(words[:2]) + "\n\n" + " ".join(words[2:])
        return text

    # -- rendering scalars
    def plain_ok(self, text, flow):
        if not text or text[0] in "-?:,[]{}#&*!|>'\"%@`~ <=" or text[-1] in " :":
            return False
        if not set(text) <= PLAIN_SAFE_CHARS | {" "} or "  " in text:
            return False
        if ": " in text or " #" in text or text.lower() in SPECIAL_PLAIN_WORDS:
            return False
        if text[0] in "0123456789+.":
            return False
        if flow and (set(text) & set(",[]{}#:?")):
            return False
        return True

    def render_scalar(self, value, column, parent, flow=False):
        """Lines for a scalar written after 'key: ' or '- ' at `column`, whose
        parent collection sits at `parent`; the first line is inline."""
        rng = self.rng
        if value is None:
            return [rng.choice(["~", "null", "Null", "NULL", ""])]
        if value is True or value is False:
            word = "true" if value else "false"
            return [rng.choice([word, word.capitalize(), word.upper()])]
        if isinstance(value, int):
            if value >= 0 and rng.random() < 0.2:
                return ["0x%x" % value if rng.random() < 0.5 else "0x%X" % value]
            if value > 0 and rng.random() < 0.2:
                return ["+%d" % value]
            return [str(value)]
        if isinstance(value, float):
            if math.isnan(value):
                return [rng.choice([".nan", ".NaN", ".NAN"])]
            if math.isinf(value):
                spelled = rng.choice([".inf", ".Inf", ".INF"])
                return [("-" if value < 0 else rng.choice(["", "+"])) + spelled]
            text = repr(value)
            if "e" in text or "inf" in text:
                text = "%.6f" % value
                if float(text) != value:
                    return ["'%s'" % text]  # not representable: a string is fine
            if text.endswith(".0") and rng.random() < 0.3:
                text = text[:-1]
            if text == "1000.0" and rng.random() < 0.5:
                text = "1.0e+3"
            return [text]
        if isinstance(value, D):
            return ["%04d-%02d-%02d" % (value.year, value.month, value.day)]
        return self.render_string(value, column, parent, flow)

    def render_string(self, text, column, parent, flow):
        rng = self.rng
        styles = ["single", "double"]
        if self.plain_ok(text, flow):
            styles += ["plain", "plain", "plain"]
        elif not flow and "\n" in text and self.plain_ok(text.replace("\n", " "), flow) \
                and not text.startswith("\n") and not text.endswith("\n"):
            styles.append("plain")
        if not flow and text and parent >= 0:
            styles += ["literal", "folded"]
        style = rng.choice(styles)
        indent = " " * (parent + 1 + rng.randint(0, 3))
        if style == "plain":
            return [text] if flow else self.multi_line(text, indent)
        if style == "single" and "\t" not in text and self.printable(text):
            if "\n" in text and not flow and not self.edge_space(text):
                return self.multi_line(text.replace("'", "''"), indent, quote="'")
            if "\n" not in text:
                return ["'%s'" % text.replace("'", "''")]
        if style == "literal" and self.block_ok(text):
            return self.literal(text, parent)
        if style == "folded" and self.folded_ok(text):
            return self.folded(text, parent)
        return self.double(text, indent, flow)

    def printable(self, text):
        return all(ch == "\n" or ch == "\t" or (" " <= ch <= "~") or ch in "\xe9\xa0"
                   or "\u4e00" <= ch <= "\u9fff" or ch == "\U0001F600" for ch in text)

    def edge_space(self, text):
        return any(part != part.strip(" \t") for part in text.split("\n"))

    def multi_line(self, text, indent, quote=""):
        """Text over several lines: each run of k line breaks becomes k blank
        lines, and some single spaces become line breaks (folded back)."""
        rng = self.rng
        parts = re.split("(\n+)", text)
        lines = [quote]
        for i, part in enumerate(parts):
            if i % 2:
                lines.extend([""] * len(part))
                lines.append(indent)
                continue
            for w, word in enumerate(part.split(" ")):
                if w and word and lines[-1].strip() and not lines[-1].endswith(" ") \
                        and rng.random() < 0.3:
                    lines.append(indent + rng.choice(["", " "]))
                elif w:
                    lines[-1] += " "
                lines[-1] += word
        lines[-1] += quote
        return [line if line.strip() else "" for line in lines]

    def double(self, text, indent, flow):
        rng = self.rng
        out = ['"']
        for i, ch in enumerate(text):
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif ch == "\n":
                glued = flow or text[i + 1:i + 2] in (" ", "\t")
                out.append("\\n" if glued or rng.random() < 0.5 else "\\n\\\n" + indent)
            elif ch == "\t":
                out.append(rng.choice(["\\t", "\t", "\\\t"]))
            elif ch < " " or ch == "\x7f":
                out.append(rng.choice(["\\x%02x" % ord(ch), "\\u%04X" % ord(ch)]))
                if ch == "\x00":
                    out[-1] = rng.choice(["\\0", "\\x00"])
                elif ch == "\x1b":
                    out[-1] = "\\e"
                elif ch == "\x07":
                    out[-1] = "\\a"
            elif ch == "\u2028":
                out.append("\\L")
            elif ch == "\xa0":
                out.append(rng.choice(["\\_", "\xa0"]))
            elif ch == " " and rng.random() < 0.1:
                out.append("\\ ")
            elif ord(ch) > 0xffff:
                out.append(rng.choice([ch, "\\U%08x" % ord(ch)]))
            elif ord(ch) > 0x7f and rng.random() < 0.5:
                out.append("\\u%04x" % ord(ch))
            elif rng.random() < 0.03:
                out.append("\\x%02x" % ord(ch) if ord(ch) < 256 else ch)
            elif not flow and ch != " " and i and text[i - 1] != " " and rng.random() < 0.03:
                out.append("\\\n" + indent + ch)  # an escaped line break
            else:
                out.append(ch)
        out.append('"')
        return "".join(out).split("\n")

    def block_ok(self, text):
        lines = text.rstrip("\n").split("\n")
        return self.printable(text) and lines[0].strip(" ") != "" and \
            all(line == line.rstrip(" ") for line in lines)

    def chomp(self, text):
        trailing = len(text) - len(text.rstrip("\n"))
        return ["-", "", "+"][min(trailing, 2)], text.rstrip("\n"), trailing

    def literal(self, text, parent):
        rng = self.rng
        chomp, body, trailing = self.chomp(text)
        width = rng.randint(1, 4)
        indent = " " * (parent + width)
        header = "|" + chomp
        self.block_state = (len(indent), chomp == "+")
        if body[0] in " \t" or rng.random() < 0.1:
            header = "|" + ("%d%s" % (width, chomp) if rng.random() < 0.5 else
                            "%s%d" % (chomp, width))
        if rng.random() < 0.2:
            header += "  # block"
        lines = [header] + [indent + line if line else "" for line in body.split("\n")]
        lines += [""] * (trailing - 1 if trailing > 1 else 0)
        return lines

    def folded_ok(self, text):
        body = text.strip("\n")
        parts = body.split("\n")
        return self.printable(text) and text[:1] != "\n" and all(
            part == "" or (part[0] not in " \t" and part == part.rstrip(" \t")
                           and "\t" not in part and "  " not in part)
            for part in parts) and parts[0] != ""

    def folded(self, text, parent):
        rng = self.rng
        chomp, body, trailing = self.chomp(text)
        indent = " " * (parent + rng.randint(1, 4))
        lines = [">" + chomp]
        self.block_state = (len(indent), chomp == "+")
        segments = body.split("\n")
        i = 0
        while i < len(segments):
            segment = segments[i]
            breaks = 0
            while i + 1 < len(segments) and segments[i + 1] == "" and \
                    i + 2 < len(segments):
                breaks += 1
                i += 1
            words = segment.split(" ")
            line = indent + words[0]
            for word in words[1:]:
                if rng.random() < 0.3:
                    lines.append(line)
                    line = indent + word
                else:
                    line += " " + word
            lines.append(line)
            if i + 1 < len(segments):
                lines.extend([""] * (breaks + 1))
            i += 1
        lines += [""] * (trailing - 1 if trailing > 1 else 0)
        return lines

    # -- rendering collections
    def render(self, value, column, lines, parent, compact=False):
        """Append lines for a block collection value starting at column."""
        if isinstance(value, dict):
            self.render_mapping(value, column, lines, compact)
        else:
            self.render_sequence(value, column, lines, compact)

    def flow(self, value):
        if isinstance(value, dict):
            parts = ["%s: %s" % (self.flow_key(k), self.flow(v)) for k, v in value.items()]
            return "{" + ", ".join(parts) + ("," if parts and self.rng.random() < 0.1 else "") + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.flow(v) for v in value) + "]"
        if value is None:
            return self.rng.choice(["~", "null"])
        rendered = self.render_scalar(value, 0, 0, flow=True)
        return rendered[0]

    def flow_key(self, key):
        if self.plain_ok(key, True):
            return key
        return '"%s"' % "".join("\\x%02x" % ord(c) if c < " " or c in '"\\' else c for c in key) \
            if ord(max(key or " ")) < 0x10000 else "'%s'" % key.replace("'", "''")

    def flowable(self, value):
        if isinstance(value, dict):
            return all(self.flowable(v) and self.printable(k) and "\t" not in k
                       for k, v in value.items())
        if isinstance(value, list):
            return all(self.flowable(v) for v in value)
        return not isinstance(value, str) or "\n" not in value

    def block_key(self, key):
        if self.plain_ok(key, False) and ":" not in key:
            return key
        if "\n" not in key and "\t" not in key and self.printable(key) and self.rng.random() < 0.5:
            return "'%s'" % key.replace("'", "''")
        return "".join(self.double(key, "", True))

    def comment_lines(self, lines, column):
        """Maybe a comment line and a blank line; after a block scalar only
        where they cannot be its content."""
        rng = self.rng
        limit = column + 3
        blank = 6
        if self.block_state is not None:
            limit = min(limit, self.block_state[0] - 1)
            blank = -1 if self.block_state[1] else self.block_state[0]
        if rng.random() < 0.08:
            lines.append(" " * rng.randint(0, limit) + "# comment\tand ' \" : -")
        if blank >= 0 and rng.random() < 0.06:
            lines.append(" " * rng.randint(0, blank))

    def entry(self, prefix, value, column, parent, lines):
        """'key:' or '-' (prefix, at column) followed by value."""
        rng = self.rng
        self.block_state = None
        if isinstance(value, (dict, list)) and value:
            if self.flowable(value) and rng.random() < 0.15:
                lines.append(prefix + " " + self.flow(value) + self.trailing_comment())
                return
            item = prefix.endswith("-")
            if item and rng.random() < 0.5:  # compact '- key: v' / '- - v'
                inner = column + 1 + rng.randint(1, 3)
                sub = []
                self.render(value, inner, sub, column, compact=True)
                sub[0] = prefix + " " * (inner - column - 1) + sub[0][inner:]
                lines.extend(sub)
                return
            lines.append(prefix + self.trailing_comment())
            if isinstance(value, list) and not item and rng.random() < 0.4:
                inner = column  # an indentless sequence under its key
            else:
                inner = column + rng.randint(1, 4)
            self.render(value, inner, lines, column)
            return
        if isinstance(value, (dict, list)):
            lines.append(prefix + " " + ("{}" if isinstance(value, dict) else "[]"))
            return
        rendered = self.render_scalar(value, column, parent)
        if rendered[0] == "":
            lines.append(prefix + rng.choice(["", " ", " # empty"]))
            return
        if len(rendered) == 1 and rendered[0][0] not in "|>" and rng.random() < 0.1 \
                and not prefix.endswith("-"):
            lines.append(prefix)  # the value alone on the next line
            lines.append(" " * (column + rng.randint(1, 3)) + rendered[0])
            return
        first = prefix + " " + rendered[0]
        if len(rendered) == 1:
            first += self.trailing_comment()
        lines.append(first)
        lines.extend(rendered[1:])

    def trailing_comment(self):
        return "  # note" if self.rng.random() < 0.1 else ""

    def render_mapping(self, mapping, column, lines, compact=False):
        for i, (key, value) in enumerate(mapping.items()):
            if i or not compact:
                self.comment_lines(lines, column)
            self.entry(" " * column + self.block_key(key) + ":", value, column,
                       column, lines)

    def render_sequence(self, items, column, lines, compact=False):
        for i, item in enumerate(items):
            if i or not compact:
                self.comment_lines(lines, column)
            self.entry(" " * column + "-", item, column, column, lines)

    def document(self):
        rng = self.rng
        tree = self.mapping(1)
        lines = []
        if rng.random() < 0.2:
            lines.append("# a job file")
        if rng.random() < 0.3:
            lines.append(rng.choice(["---", "--- ", "--- # start"]))
        self.render_mapping(tree, rng.choice([0, 0, 0, 1, 2]), lines)
        text = "\n".join(lines)
        if self.block_state is not None or rng.random() < 0.85:
            text += "\n"
        if rng.random() < 0.1:
            text = text.replace("\n", "\r\n")
        return tree, text


# Generator 2: lines from a small grammar, with weighted near-miss tokens.
REFERENCE_SCALARS = (
    "yes Yes YES on On ON no No NO off Off OFF yEs tRUE nULL y Y n N ~ null Null "
    "NULL 010 0777 0644 08 09 019 00 -0 +0 0_ 0_7 0o17 0X1F 0b 0x 0x1F -0x1F +0x10 "
    "0x_1f 0b101 -0b101 0b1_0 0x_ 0b_ 1_000 1__0 1_ +1_0 _1 1:30 1:30:00 -1:30 22:22 "
    "12:00 190:20:30 0:30 1:60 12:60 1:3_0 1:30.5 0:30.5 190:20:30.15 .5 5. 3. -3. "
    "001.23 1._ 0_1.5 -.5 +.5 1e3 1E3 1.0e3 1.5e3 3.e5 12e03 1e+3 1.0e+3 1.e+3 "
    "1.0E-3 .5e+3 6.8523015e+5 .inf .Inf .INF +.inf -.inf .nan .NaN .NAN -.nan inf "
    "nan .infinity +1 -1 3.10 1.10 1.0.0 1,000 2001-12-14 2000-02-29 0001-01-01 "
    "2001-1-4 2001-12-14T21:59 2001-13-01 2001-02-29 0000-01-01 "
    "2001-12-14T21:59:43.10-05:00 2001-12-14t21:59:43Z = << - -- --1 -x :x ?x . "
    "... ...x --- true false True FALSE").split() + [
    "2001-12-14 21:59:43", "2001-12-14 1:2:3", "2001-12-14T21:59:43.1234567",
    "2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 Z", "1 000"]
GRAMMAR_KEYS = ["a", "b", "key", "x", "y", "n", "a b", "'q'", '"dq"', "'a'", '"a"',
                "-a", "?a", ":a", "a:b", "1", "true", "yes", "null", "~", "1.5",
                "2002-12-14", "<<", "=", "? a", "&x k", "*x", "!t k", "'multi",
                "x" * 1023, "x" * 1024, "x" * 1025, "[a]", "{a: 1}", '"\x41"', "a	b"]
GRAMMAR_VALUES = REFERENCE_SCALARS + [
    "'it''s'", "'\\n'", '"\\t\\x41\\u00e9"', '"\\q"', '"\\x4"', '"\\ud800"',
    '"\\U00110000"', '"\\U0001F600"', '"a', "'a", '"x" y', '"x"# c', "'b\tc'",
    "[a, b]", "[a,b,]", "[a,, b]", "[,]", "[]", "{}", "{k: v}", "{k:v}", "{k}",
    "{k: }", "[k: v]", "[?x]", "[a", "[a] b", "[a]b", "{k: v}x", "[-1, -a, - a]",
    "[1_000, 0x1F]", "[a #b]", "[a#b]", "{a: [1, {b: c}]}", '{"a":1}', "{a: 1, a: 2}",
    "&x 1", "*x", "!!str 1", "! x", "!", "&a", "- b", "b: c", "b:", "? x", "@x", "`x",
    "%x", ",x", "]", "}", "b #c", "b#c", "b # c", "http://x:80/y", "x'y", "|", "|-",
    "|+", ">", ">-", ">+", "|2", "|-2", "|2-", "|10", "|0", "|x", "|#c", "| # c",
    ">\t", "|22", "", " ", "a\tb", "\ta", "b\t", "caf\xe9", "x\ufeffy", "\x85"]
FUZZ_CHARACTERS = " \t\n:-#'\"|>[]{},?&*!%@`~.0123456789"


def grammar_document(rng):
    """Generator 2: a few lines, each a key, entry, continuation, comment,
    blank line, marker or block scalar, built from near-miss tokens."""
    lines = []
    for _ in range(rng.randint(1, 7)):
        indent = " " * rng.choice([0, 0, 0, 1, 2, 2, 3, 4])
        if rng.random() < 0.04:
            indent = rng.choice(["\t", " \t", "\t "]) + indent
        key = rng.choice(GRAMMAR_KEYS if rng.random() < 0.3 else WORDS[:12])
        value = rng.choice(GRAMMAR_VALUES if rng.random() < 0.5 else WORDS)
        kind = rng.random()
        if kind < 0.35:
            line = indent + key + ":" + rng.choice([" ", " ", "  ", "\t", ""]) + value
        elif kind < 0.45:
            line = indent + key + ":"
        elif kind < 0.6:
            line = indent + "-" + rng.choice([" ", " ", "\t", ""]) + value
        elif kind < 0.65:
            line = indent + "- " + key + ": " + value
        elif kind < 0.7:
            line = indent + "-"
        elif kind < 0.78:
            line = indent + value
        elif kind < 0.84:
            line = indent + "# comment" + rng.choice(["", "\t", " : x"])
        elif kind < 0.9:
            line = " " * rng.randint(0, 6)
        elif kind < 0.94:
            line = rng.choice(["---", "--- ", "--- # c", "...", "--- a", "%YAML 1.2",
                               "%TAG ! x", "---\t"])
        else:
            header = rng.choice("|>") + rng.choice(["", "-", "+"]) + \
                rng.choice(["", "", "1", "2", "9"]) + rng.choice(["", "", " # c", "x"])
            line = indent + key + ": " + header
            for _ in range(rng.randint(0, 3)):
                line += "\n" + " " * rng.randint(0, 6) + rng.choice(
                    ["x", "y z", "", "# not", "\tt", "- a", "k: v"])
        if rng.random() < 0.1:
            line += rng.choice([" # c", "#c", " ", "\t", "  # c\t"])
        lines.append(line)
    text = "\n".join(lines)
    if rng.random() < 0.7:
        text += "\n"
    return text


# Generator 3: mutations of realistic documents.
def mutate(text, rng):
    """One to three small edits: a character inserted, deleted or replaced,
    a line's indentation shifted, adjacent lines swapped or duplicated, a
    line joined to the next or split."""
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\n")
        what = rng.random()
        i = rng.randrange(len(lines))
        if what < 0.45 and text:
            position = rng.randrange(len(text) + 1)
            char = rng.choice(FUZZ_CHARACTERS)
            edit = rng.random()
            if edit < 0.4:
                text = text[:position] + char + text[position:]
            elif edit < 0.7:
                text = text[:position] + text[position + 1:]
            else:
                text = text[:position] + char + text[position + 1:]
            continue
        if what < 0.65:
            shift = rng.choice([-2, -1, 1, 2])
            if shift > 0:
                lines[i] = " " * shift + lines[i]
            else:
                lines[i] = lines[i][min(-shift, len(lines[i]) - len(lines[i].lstrip(" "))):]
        elif what < 0.75 and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif what < 0.85:
            lines.insert(i, lines[i])
        elif what < 0.93 and i + 1 < len(lines):
            lines[i:i + 2] = [lines[i] + rng.choice(["", " "]) + lines[i + 1].lstrip(" ")]
        elif lines[i]:
            cut = rng.randrange(len(lines[i]))
            lines[i:i + 1] = [lines[i][:cut], " " * rng.randint(0, 4) + lines[i][cut:]]
        text = "\n".join(lines)
    return text


@unittest.skipIf(yaml is None, "PyYAML is not installed")
class DifferentialTests(unittest.TestCase):
    """load_yaml against yaml.safe_load: a rejection (with a position) or the
    same value; never an acceptance of what PyYAML rejects, a different value,
    or another exception. YAML_FUZZ_CASES sets the cases per generator."""

    def run_cases(self, name, texts):
        outcomes = {"accepted": 0, "rejected": 0, "pyyaml_errors": 0}
        for seed, text in texts:
            problem = contract_violation(text)
            if problem is not None:
                small = shrink(text, lambda t: contract_violation(t) is not None)
                self.fail("%s, seed %d: %s\ninput: %r\nshrunk: %r -> %s" % (
                    name, seed, problem, text, small, contract_violation(small)))
            if pyyaml_outcome(text)[0] != "ok":
                outcomes["pyyaml_errors"] += 1
            try:
                load_yaml(text)
                outcomes["accepted"] += 1
            except run_job.ConfigError:
                outcomes["rejected"] += 1
        report(name, outcomes)
        return outcomes

    def test_value_first_emitter(self):
        import random
        accepted = 0
        for case in range(FUZZ_CASES):
            seed = FUZZ_SEED + case
            tree, text = Emitter(random.Random(seed)).document()
            outcome, value = pyyaml_outcome(text)
            self.assertTrue(outcome == "ok" and same(value, tree),
                            "emitter bug, seed %d: %r reads as %r, not %r"
                            % (seed, text, value, tree))
            problem = contract_violation(text)
            self.assertIsNone(problem, "seed %d: %r" % (seed, text))
            try:
                self.assertTrue(same(load_yaml(text), tree))
                accepted += 1
            except run_job.ConfigError as error:
                self.fail("seed %d: valid document refused: %s\n%r" % (seed, error, text))
        report("value-first emitter", {"cases": FUZZ_CASES, "accepted": accepted})
        self.assertEqual(accepted, FUZZ_CASES)

    def test_grammar_fuzzer(self):
        import random
        texts = [(FUZZ_SEED + case, grammar_document(random.Random(FUZZ_SEED + case)))
                 for case in range(FUZZ_CASES)]
        outcomes = self.run_cases("grammar fuzzer", texts)
        # both outcomes must be exercised, or the generator is useless
        self.assertGreater(outcomes["accepted"], FUZZ_CASES // 10, outcomes)
        self.assertGreater(outcomes["rejected"], FUZZ_CASES // 10, outcomes)

    def test_mutations(self):
        import random
        corpus = [text for _, text in JOB_FILES] + [text for text, _ in ACCEPTED
                                                    if isinstance(text, str)]
        texts = []
        for case in range(FUZZ_CASES):
            rng = random.Random(FUZZ_SEED + case)
            if case % 3 == 0:
                base = Emitter(rng).document()[1]
            else:
                base = rng.choice(corpus)
            texts.append((FUZZ_SEED + case, mutate(base, rng)))
        outcomes = self.run_cases("mutations", texts)
        self.assertGreater(outcomes["accepted"], FUZZ_CASES // 10, outcomes)
        self.assertGreater(outcomes["pyyaml_errors"], FUZZ_CASES // 10, outcomes)


class ReferenceExampleTests(unittest.TestCase):
    """Every example of the reference, and every scalar of its typing table in
    five positions: never an exception other than ConfigError; with PyYAML,
    never a value that differs from yaml.safe_load."""

    def cases(self):
        yield from REFERENCE_EXAMPLES
        for scalar in REFERENCE_SCALARS:
            for form in ("x: %s", "%s: x", "- %s", "[%s]", "{k: %s}"):
                yield form % scalar

    def test_only_config_errors(self):
        for text in self.cases():
            with self.subTest(text=text):
                try:
                    load_yaml(text)
                except run_job.ConfigError as error:
                    self.assertGreaterEqual(error.line, 1)
                    self.assertGreaterEqual(error.column, 1)

    @unittest.skipIf(yaml is None, "PyYAML is not installed")
    def test_contract_against_pyyaml(self):
        count = 0
        for text in self.cases():
            with self.subTest(text=text):
                self.assertIsNone(contract_violation(text))
                count += 1
        self.assertGreater(count, 700)


class PathologicalInputTests(unittest.TestCase):
    """Huge or deeply nested input: a located ConfigError or the right value,
    never RecursionError, ValueError or quadratic regex backtracking."""

    def assert_rejected(self, text):
        with self.assertRaises(run_job.ConfigError) as caught:
            load_yaml(text)
        self.assertGreaterEqual(caught.exception.line, 1)

    def test_deep_nesting(self):
        self.assert_rejected("[" * 5000)
        self.assert_rejected("{a: " * 5000)
        self.assert_rejected("- " * 5000 + "x")
        self.assert_rejected("".join(" " * i + "k:\n" for i in range(500)))
        self.assertEqual(load_yaml("- " * 30 + "x"),
                         load_yaml("- " * 29 + "[x]"))

    def test_long_numbers_and_lines(self):
        self.assert_rejected("a: " + "1" * 5000)  # int() refuses > 4300 digits
        # Every integer must convert to decimal text (str() refuses > 4300
        # digits), so a longer hexadecimal one is refused too.
        self.assert_rejected("a: 0x" + "f" * 5000)
        self.assertEqual(load_yaml("a: 0x" + "f" * 3300)["a"], 16 ** 3300 - 1)
        self.assertEqual(len(str(16 ** 3300 - 1)), 3974)
        # Digits that make infinity are a mistake: PyYAML's inf, refused here.
        self.assert_rejected("a: " + "1" * 400 + ".5")
        self.assert_rejected("a: 1.0e+400")
        self.assert_rejected("a: -1.0e+400")
        self.assertEqual(load_yaml("a: " + "1" * 300 + ".5")["a"], float("1" * 300))
        self.assertEqual(load_yaml("a: .inf")["a"], float("inf"))
        self.assert_rejected("x" * 100000 + ": v")
        self.assertEqual(load_yaml("k: " + "w " * 50000 + "end")["k"],
                         "w " * 50000 + "end")

    def test_long_space_runs_in_quoted_text(self):
        for quote in "'\"":
            text = "a: %sx%sy\n  z%s" % (quote, " " * 200000, quote)
            self.assertEqual(load_yaml(text)["a"], "x" + " " * 200000 + "y z")


class PlainScalarPatternTests(unittest.TestCase):
    def test_fast_plain_pattern_matches_its_definition(self):
        """The plain-scalar regex, written as runs between colons for speed,
        ends exactly where the definition (one character at a time: ':' only
        before a non-space, ' #' ends it) ends, on every short string."""
        import itertools
        char = r"(?:[^ \t:]|:(?=[^ \t]))"
        first = r"(?:[^ \t\-?:,\[\]{}#&*!|>'\"%@`]|[-?:](?=[^ \t]))"
        definition = re.compile(first + char + r"*(?: +(?!#)" + char + r"+)*")
        continuation = re.compile(char + r"+(?: +(?!#)" + char + r"+)*")
        for length in range(7):
            for letters in itertools.product("a: #\t-", repeat=length):
                text = "".join(letters)
                for fast, slow in ((run_job._RX.PLAIN, definition),
                                   (run_job._RX.PLAIN_CONTINUATION, continuation)):
                    expected = slow.match(text)
                    actual = fast.match(text)
                    self.assertEqual(actual and actual.end(),
                                     expected and expected.end(), repr(text))


if __name__ == "__main__":
    unittest.main()
