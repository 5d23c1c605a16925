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
    ("a: &x 1\nb: *x", 1, 4, "anchors"), ("a: *x", 1, 4, "aliases"),
    ("a: &anchor", 1, 4, "anchors"), ("a: !!str 1", 1, 4, "tags"),
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
    ("a: {k:v}", 1, 5, "key: value"), ("a: {k}", 1, 5, "key: value"), ("a: {k: }", 1, 8, "missing value"),
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
                self.assertTrue(same(run_job.load_yaml(text), expected),
                                repr(run_job.load_yaml(text)))

    def test_bytes_input_with_and_without_bom(self):
        self.assertEqual(run_job.load_yaml(b"a: \xc3\xa9\n"), {"a": "\xe9"})
        self.assertEqual(run_job.load_yaml(b"\xef\xbb\xbfa: 1\n"), {"a": 1})
        self.assertEqual(run_job.load_yaml(b"a: 1\r\nb: 2\r\n"), {"a": 1, "b": 2})

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
                    run_job.load_yaml(text, source="job.yaml")
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
            run_job.load_yaml("a: yes")


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
        value = run_job.load_yaml(dict(JOB_FILES)["warehouse-load.yaml"])
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
                self.assertTrue(same(run_job.load_yaml(text, name), expected))

    def test_examples_are_accepted(self):
        for name, text in example_files():
            with self.subTest(name=name):
                run_job.load_yaml(text, name)


if __name__ == "__main__":
    unittest.main()
