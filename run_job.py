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

# The subset of YAML that configuration files use, read exactly as PyYAML's
# yaml.safe_load reads it, or rejected with SOURCE:LINE:COLUMN and a hint.
# Whitelist grammar: anything not recognised is an error, never a guess.
# Line-oriented for speed: a document is a list of lines plus their
# indentation; each grammar rule is a function over (doc, line index, column)
# returning (value, next line index). Positions are 0-based inside, 1-based in
# messages and marks.

import datetime as _datetime  # noqa: E402
import re as _re  # noqa: E402


class _Doc(object):
    """The text being parsed, split into lines, and the marks being built."""

    __slots__ = ("source", "lines", "indents", "ends_with_newline", "marks",
                 "has_markers")

    def __init__(self, source, lines, ends_with_newline, has_markers):
        self.source = source
        self.lines = lines
        self.indents = [len(line) - len(line.lstrip(" ")) for line in lines]
        self.ends_with_newline = ends_with_newline
        self.has_markers = has_markers  # any line starting '---' or '...'
        self.marks = {}


_MAX_DEPTH = 64          # nesting deeper than this is a mistake, not a config
_MAX_KEY_SPAN = 1024     # PyYAML's simple-key limit: key start to ':'

# Characters PyYAML's reader refuses, plus the line breaks and BOMs it handles
# in ways that are easy to get wrong (lone CR, NEL, LS, PS, a BOM mid-text).
_BAD_CHARACTER = _re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
    "\U00010000-\U0010ffff]")
_LONE_CR = _re.compile("\r(?!\n)")
_DOCUMENT_MARKER = _re.compile(r"(?:---|\.\.\.)(?=[ \t]|\Z)")
_BLANK_OR_COMMENT_REST = _re.compile(r"(?: +(?:#.*)?)?\Z")

# A plain scalar on one line, block context: a first character that is not an
# indicator (or '-', '?', ':' glued to a non-space), then words separated by
# spaces; ': ' and ' #' end it, ':' glued to a non-space is literal.
# A word is a run of non-spaces in which every ':' is followed by a non-space;
# written as runs between colons, which is faster than one character at a time.
_PLAIN_FIRST = r"(?:[^ \t\-?:,\[\]{}#&*!|>'\"%@`]|[-?:](?=[^ \t]))"
_PLAIN_WORD = r"[^ \t:]*(?::+[^ \t:]+)*(?::+(?=:))?"
_PLAIN_NEXT_WORD = r"(?=[^ \t:#]|:[^ \t])" + _PLAIN_WORD
_PLAIN_TAIL = _PLAIN_WORD + r"(?: +" + _PLAIN_NEXT_WORD + r")*"
_PLAIN = _re.compile(_PLAIN_FIRST + _PLAIN_TAIL)
_PLAIN_CONTINUATION = _re.compile(r"(?=[^ \t:]|:[^ \t])" + _PLAIN_TAIL)
_PLAIN_REST = _re.compile(r" *(#.*)?\Z")
_SINGLE_QUOTED = r"'((?:[^']|'')*)'(?!')"
_DOUBLE_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# key ':' in block context; groups: plain, single, double, spaces.
_BLOCK_KEY = _re.compile(
    "(?:(" + _PLAIN_FIRST + _PLAIN_TAIL + ")|" + _SINGLE_QUOTED + "|"
    + _DOUBLE_QUOTED + ")( *):(?= |\\Z)")
_SINGLE_QUOTED_LINE = _re.compile(_SINGLE_QUOTED)
_DOUBLE_QUOTED_LINE = _re.compile(_DOUBLE_QUOTED)
_SINGLE_QUOTED_END = _re.compile(r"(?:[^']|'')*'(?!')")
_DOUBLE_QUOTED_END = _re.compile(r'(?:[^"\\]|\\.)*"')
# Tokens of multi-line quoted text. A run of spaces not before a line break
# is its own token, which keeps the scan linear in the run's length.
_SINGLE_QUOTED_FOLD = _re.compile(
    r"''|[ \t]*\n[ \t]*((?:\n[ \t]*)*)|[ \t]+")
_DOUBLE_QUOTED_TOKEN = _re.compile(
    r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0abt\tnvfre \"/\\N_LP])"
    r"|\\\n[ \t]*((?:\n[ \t]*)*)|[ \t]*\n[ \t]*((?:\n[ \t]*)*)|([ \t]+)|\\")
_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n",
    "v": "\v", "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"',
    "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028",
    "P": "\u2029"}
# Fast paths for the most common lines: 'word: value' and '- value' where the
# value is one line of plain or simply quoted text. Anything else (or a match
# whose key needs typing) takes the general path.
_SIMPLE_VALUE = (r"((" + _PLAIN_FIRST + _PLAIN_TAIL + r")|'([^']*)'"
                 r"|\"([^\"\\]*)\")")
_SIMPLE_ENTRY = _re.compile(
    r"([^ \t\-?:,\[\]{}#&*!|>'\"%@`0-9+.][^ \t:]{0,1023}):(?: +" + _SIMPLE_VALUE
    + r")?(?: +(#).*| *)\Z")
_SIMPLE_ITEM = _re.compile(r"(-) +" + _SIMPLE_VALUE + r"(?: +(#).*| *)\Z")
_BLOCK_HEADER = _re.compile(r"([|>])([1-9]?)([-+]?)([1-9]?)(?: +(?:#.*)?)?\Z")

# Flow context (one line): ',', '?', brackets and braces also end a plain scalar.
_FLOW_PLAIN_CHAR = r"(?:[^ \t:,?\[\]{}]|:(?=[^ \t,\[\]{}]))"
_FLOW_PLAIN = _re.compile(
    r"(?:[^ \t\-?:,\[\]{}#&*!|>'\"%@`]|-(?=[^ \t,\[\]{}]))" + _FLOW_PLAIN_CHAR
    + r"*(?: +(?!#)" + _FLOW_PLAIN_CHAR + r"+)*")
_SPACES = _re.compile(r" *")

# Implicit typing. YAML 1.1 (PyYAML's resolver) and YAML 1.2 core must agree,
# else the scalar is ambiguous and rejected.
_INT_DECIMAL = _re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_LEADING_ZERO = _re.compile(r"[-+]?0[0-9_]+\Z")
_FLOAT_11 = _re.compile(
    r"(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
_INT_11 = _re.compile(
    r"(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
    r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)\Z")
_TIMESTAMP_11 = _re.compile(
    r"(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)\Z")
_DATE = _re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_INT_12 = _re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_HEX = _re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_12 = _re.compile(
    r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
_NUMBER_FIRST = frozenset("-+.0123456789")
_WORD_FIRST = frozenset("yYnNtTfFoO~<=")
_WORDS = {
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
    "null": None, "Null": None, "NULL": None, "~": None}
_YAML11_BOOLEANS = frozenset(
    "yes Yes YES no No NO on On ON off Off OFF".split())
_SPECIAL_WORDS = frozenset(_WORDS) | _YAML11_BOOLEANS | frozenset(["<<", "="])

_TAB_INDENT = "tab character used for indentation; indent with spaces"
_UNEXPECTED = {
    "\t": "tab character here; use spaces (tabs are allowed only inside "
          "quotes, comments and block scalars)",
    "&": "'&' starts an anchor (&name), which is not supported; write the "
         "value out in full, or quote it if it is text",
    "*": "'*' starts an alias (*name), which is not supported; quote the "
         "value if it is text (e.g. schedule: \"*/5 * * * *\")",
    "!": "tags (!tag) are not supported; remove the tag, and quote the value "
         "if it must be a string",
    "%": "'%' cannot start a value (and directives such as %YAML are not "
         "supported); quote the value",
    "?": "'?' cannot start a value here (complex keys are not supported); "
         "quote the value",
    "@": "'@' cannot start a plain value; quote the value",
    "`": "'`' cannot start a plain value; quote the value",
    "#": "'#' starts a comment only after a space; add a space before it, "
         "or quote the value",
    ",": "',' cannot start a plain value; quote the value",
    "[": "unexpected '['; a flow sequence must be the whole value",
    "]": "unexpected ']'; quote the value if it is text",
    "{": "unexpected '{'; a flow mapping must be the whole value",
    "}": "unexpected '}'; quote the value if it is text",
    "'": "unexpected quote; quote the whole value, or none of it",
    '"': "unexpected quote; quote the whole value, or none of it",
    "|": "unexpected '|'; a block scalar header must be the whole value",
    ">": "unexpected '>'; a block scalar header must be the whole value",
}


def _fail(doc, index, column, message):
    """The one way this section reports an error: at a 0-based position."""
    raise ConfigError(message, doc.source, index + 1, column + 1)


def _unexpected(doc, index, column):
    """Fail at an unexpected character, with a message chosen by what it is."""
    line = doc.lines[index]
    if column >= len(line):
        _fail(doc, index, column, "unexpected end of line; check the syntax "
              "of this line")
    char = line[column]
    after = line[column + 1:column + 2]
    if char == "\t" and not line[:column].strip(" "):
        _fail(doc, index, column, _TAB_INDENT)
    if after == "\t" and char in "-?:":
        _fail(doc, index, column + 1, _UNEXPECTED["\t"])
    if char in "-?:" and after in ("", " "):
        if char == "-":
            _fail(doc, index, column, "a sequence entry ('- ') is not allowed "
                  "here; start the list on the next line, indented")
        if char == "?":
            _fail(doc, index, column, "complex keys ('? ') are not supported; "
                  "write 'key: value'")
        _fail(doc, index, column, "unexpected ':'; quote the value if it "
              "contains ': ', or put the key before the ':'")
    if char == "%" and column == 0:
        _fail(doc, index, column, "directives (%YAML, %TAG) are not "
              "supported; remove the line")
    message = _UNEXPECTED.get(char)
    if message is None:
        message = "unexpected %r; check the syntax of this line" % char
    _fail(doc, index, column, message)


# -- input layer ---------------------------------------------------------------

def _decode(text, source):
    """Text as str with '\\n' line breaks; refuses non-UTF-8 and odd characters."""
    if not isinstance(text, str):
        if not isinstance(text, (bytes, bytearray, memoryview)):
            raise TypeError("YAML text must be str or bytes, not %s"
                            % type(text).__name__)
        data = bytes(text)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            start = data.rfind(b"\n", 0, error.start) + 1
            line = data.count(b"\n", 0, error.start) + 1
            column = len(data[start:error.start].decode("utf-8", "replace")) + 1
            raise ConfigError(
                "invalid UTF-8 byte 0x%02x (byte offset %d); save the file as "
                "UTF-8" % (data[error.start], error.start), source, line, column)
    if text.startswith("\ufeff"):
        text = text[1:]
    bad = _BAD_CHARACTER.search(text)
    if bad is None and "\r" in text:
        bad = _LONE_CR.search(text)
    if bad is not None:
        position = bad.start()
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        char = text[position]
        if char == "\r":
            message = ("a carriage return not followed by a line feed; end "
                       "lines with LF or CR LF")
        elif char in "\x85\u2028\u2029":
            message = ("unusual line break U+%04X; end lines with LF, or write "
                       "it as an escape in double quotes" % ord(char))
        elif char == "\ufeff":
            message = ("byte order mark U+FEFF inside the text; remove it "
                       "(one is allowed only at the very start)")
        elif ord(char) < 0xA0:
            message = ("control character U+%04X; remove it, or write it as an "
                       "escape such as \\x%02x in double quotes"
                       % (ord(char), ord(char)))
        else:
            message = ("character U+%04X is not allowed in YAML; remove it"
                       % ord(char))
        raise ConfigError(message, source, line, column)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


def _split_lines(text, source):
    ends_with_newline = text.endswith("\n")
    lines = text.split("\n")
    if ends_with_newline:
        lines.pop()
    has_markers = text.startswith(("---", "...")) or "\n---" in text \
        or "\n..." in text
    return _Doc(source, lines, ends_with_newline, has_markers)


# -- the stream ----------------------------------------------------------------

def _skip_blank(doc, index):
    """The index of the next line holding content, skipping blank lines and
    comment lines (at any indentation)."""
    lines = doc.lines
    indents = doc.indents
    count = len(lines)
    while index < count:
        indent = indents[index]
        line = lines[index]
        if indent < len(line):
            char = line[indent]
            if char == "\t":
                _fail(doc, index, indent, _TAB_INDENT)
            if char != "#":
                return index
        index += 1
    return index


def _check_document_markers(doc, first):
    """Only one optional '---' before the content; no '...', no second document."""
    lines = doc.lines
    for index, line in enumerate(lines):
        if line[:3] in ("---", "...") and _DOCUMENT_MARKER.match(line):
            if index == first and line[0] == "-":
                continue
            if line[0] == ".":
                _fail(doc, index, 0, "the document end marker '...' is not "
                      "supported; remove it")
            _fail(doc, index, 0, "a second document ('---') is not supported; "
                  "a configuration file holds one document, remove this line "
                  "and what follows or split the file")


def _parse_stream(doc):
    index = _skip_blank(doc, 0)
    lines = doc.lines
    if index < len(lines) and lines[index][0] == "%":
        _unexpected(doc, index, 0)
    if doc.has_markers:
        _check_document_markers(doc, index)
    if index < len(lines) and lines[index][:3] == "---" and \
            _DOCUMENT_MARKER.match(lines[index]):
        line = lines[index]
        if not _BLANK_OR_COMMENT_REST.match(line, 3):
            rest = _SPACES.match(line, 3).end()
            if rest < len(line) and line[rest] == "\t":
                _unexpected(doc, index, rest)
            _fail(doc, index, rest, "content after '---' is not supported; "
                  "start it on the next line")
        index = _skip_blank(doc, index + 1)
    if index >= len(lines):
        doc.marks[()] = (1, 1)
        return None
    column = doc.indents[index]
    doc.marks[()] = (index + 1, column + 1)
    value, index = _parse_block_node(doc, index, column, -1, ())
    index = _skip_blank(doc, index)
    if index < len(lines):
        _fail(doc, index, doc.indents[index], "unexpected content after the "
              "end of the document; check this line's indentation")
    return value


# -- block nodes -----------------------------------------------------------------

def _is_sequence_entry(line, column):
    """Whether line holds '- ' (or a lone '-') at column."""
    return line.startswith("-", column) and (
        column + 1 == len(line) or line[column + 1] == " ")


def _parse_block_node(doc, index, column, parent_indent, path):
    """A node that may be a block collection, starting at (index, column)."""
    if len(path) > _MAX_DEPTH:
        _fail(doc, index, column, "nesting deeper than %d levels; flatten "
              "the structure" % _MAX_DEPTH)
    line = doc.lines[index]
    if _is_sequence_entry(line, column):
        return _parse_block_sequence(doc, index, column, path)
    if _BLOCK_KEY.match(line, column):
        return _parse_block_mapping(doc, index, column, path)
    return _parse_inline_value(doc, index, column, parent_indent, path)


def _parse_block_sequence(doc, index, column, path):
    """Entries '- value' at one column; the column may equal the parent key's."""
    items = []
    lines = doc.lines
    indents = doc.indents
    marks = doc.marks
    while True:
        item_path = path + (len(items),)
        simple = _SIMPLE_ITEM.match(lines[index], column)
        if simple is not None:
            marks[item_path] = (index + 1, simple.start(2) + 1)
            value, index = _simple_value(doc, index, column, simple)
        else:
            value, index = _sequence_item(doc, index, column, item_path)
        items.append(value)
        if index < len(lines) and indents[index] == column and \
                _is_sequence_entry(lines[index], column):
            continue  # the next entry, at once
        index = _skip_blank(doc, index)
        if index >= len(lines) or indents[index] < column:
            return items, index
        if indents[index] > column:
            _fail(doc, index, indents[index], "unexpected indentation; align "
                  "this line with the '-' entries above it, or nest it under "
                  "a key ending with ':'")
        if not _is_sequence_entry(lines[index], column):
            return items, index


def _sequence_item(doc, index, column, item_path):
    """The value after '-': on the same line (maybe a compact collection), on
    the following lines, or null."""
    line = doc.lines[index]
    start = _SPACES.match(line, column + 1).end()
    if start < len(line) and line[start] != "#":
        if line[start] == "\t":
            _unexpected(doc, index, start)
        doc.marks[item_path] = (index + 1, start + 1)
        return _parse_block_node(doc, index, start, column, item_path)
    following = _skip_blank(doc, index + 1)
    if following < len(doc.lines) and doc.indents[following] > column:
        child = doc.indents[following]
        doc.marks[item_path] = (following + 1, child + 1)
        return _parse_block_node(doc, following, child, column, item_path)
    doc.marks[item_path] = (index + 1, column + 1)
    return None, index + 1


def _parse_block_mapping(doc, index, column, path):
    """Entries 'key: value' whose keys all start at one column."""
    mapping = {}
    lines = doc.lines
    indents = doc.indents
    marks = doc.marks
    count = len(lines)
    while True:
        line = lines[index]
        simple = _SIMPLE_ENTRY.match(line, column)
        if simple is not None and simple.group(1) not in _SPECIAL_WORDS:
            key = simple.group(1)
            key_path = path + (key,)
            if key in mapping:
                _duplicate_key(doc, index, column, key, marks[key_path])
            marks[key_path] = (index + 1, column + 1)
            if simple.group(2) is None:
                mapping[key], index = _parse_nested_value(doc, index, column,
                                                          key_path)
            else:
                mapping[key], index = _simple_value(doc, index, column, simple)
        else:
            match = _BLOCK_KEY.match(line, column)
            if match is None:
                _expected_key(doc, index, column)
            key = _block_key(doc, index, column, match)
            key_path = path + (key,)
            if key in mapping:
                _duplicate_key(doc, index, column, key, marks[key_path])
            marks[key_path] = (index + 1, column + 1)
            mapping[key], index = _parse_mapping_value(doc, index, match.end(),
                                                       column, key_path)
        if index < count and indents[index] == column and \
                len(lines[index]) > column and lines[index][column] not in "#-":
            continue  # the next key, at once
        index = _skip_blank(doc, index)
        if index >= count or indents[index] < column:
            return mapping, index
        if indents[index] > column:
            _fail(doc, index, indents[index], "unexpected indentation; align "
                  "this line with the keys above it, or put it under a key "
                  "that ends with ':'")


def _duplicate_key(doc, index, column, key, first):
    _fail(doc, index, column, "duplicate key %r (first defined at line %d); "
          "remove one of them" % (key, first[0]))


def _simple_value(doc, index, column, match):
    """The value of a _SIMPLE_ENTRY or _SIMPLE_ITEM match on line index, whose
    parent collection is at column: (value, next line index)."""
    plain = match.group(3)
    if plain is None:
        if match.group(4) is not None:
            return match.group(4), index + 1
        return match.group(5), index + 1
    following = index + 1
    if match.group(6) is None and following < len(doc.lines):
        indent = doc.indents[following]
        if indent > column or indent == len(doc.lines[following]):
            plain, following = _plain_continuation(doc, following, column,
                                                   plain)
    return _plain_value(doc, index, match.start(3), plain), following


def _expected_key(doc, index, column):
    line = doc.lines[index]
    if _is_sequence_entry(line, column):
        _fail(doc, index, column, "a sequence entry ('- ') where a key was "
              "expected; indent the list under its key, or write 'key: value'")
    plain = _PLAIN.match(line, column)
    if plain is not None:
        end = plain.end()
        if end < len(line) and line[end] == "\t":
            _unexpected(doc, index, end)
        if end < len(line) and line[end] == ":":
            if line[end + 1:end + 2] == "\t":
                _unexpected(doc, index, end + 1)
            _fail(doc, index, end, "a key needs a space after its ':'; "
                  "write 'key: value'")
        _fail(doc, index, column, "expected 'key: value' here; add the ':' "
              "or fix the indentation")
    if line[column] in "'\"":
        _fail(doc, index, column, "expected 'key: value' here; a quoted key "
              "must end on its line and be followed by ': '")
    _unexpected(doc, index, column)


def _block_key(doc, index, column, match):
    """The key of a 'key:' match, a string, within PyYAML's length limit."""
    colon = match.end() - 1
    if colon - column > _MAX_KEY_SPAN:
        _fail(doc, index, column, "key longer than %d characters; shorten "
              "it" % _MAX_KEY_SPAN)
    plain = match.group(1)
    if plain is not None:
        if plain == "<<":
            _fail(doc, index, column, "merge keys ('<<') are not supported; "
                  "write the keys out in full")
        key = _plain_value(doc, index, column, plain)
        if not isinstance(key, str):
            _fail(doc, index, column, "key %r is read as %s, not a string; "
                  "quote it" % (plain, _type_name(key)))
        return key
    single = match.group(2)
    if single is not None:
        return single.replace("''", "'")
    return _unescape(doc, index, column + 1, match.group(3))


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    return "a date"


def _parse_mapping_value(doc, index, position, key_column, path):
    """The value after 'key:': on the same line, on the following lines, or null."""
    line = doc.lines[index]
    start = _SPACES.match(line, position).end()
    if start < len(line) and line[start] != "#":
        return _parse_inline_value(doc, index, start, key_column, path)
    return _parse_nested_value(doc, index, key_column, path)


def _parse_nested_value(doc, index, key_column, path):
    """The value of a key ending its line: a node on the following lines,
    more indented (or a sequence at the key's column), else null."""
    following = _skip_blank(doc, index + 1)
    if following < len(doc.lines):
        child = doc.indents[following]
        if child > key_column:
            return _parse_block_node(doc, following, child, key_column, path)
        if child == key_column and _is_sequence_entry(doc.lines[following],
                                                      child):
            return _parse_block_sequence(doc, following, child, path)
    return None, index + 1


def _parse_inline_value(doc, index, column, parent_indent, path):
    """A scalar or flow collection starting at (index, column)."""
    char = doc.lines[index][column]
    if char in "[{":
        return _parse_flow_node_line(doc, index, column, path)
    if char == "'" or char == '"':
        value, index, end = _parse_quoted(doc, index, column, parent_indent)
        line = doc.lines[index]
        if not _BLANK_OR_COMMENT_REST.match(line, end):
            _after_value(doc, index, end)
        return value, index + 1
    if char == "|" or char == ">":
        return _parse_block_scalar(doc, index, column, parent_indent)
    return _parse_plain(doc, index, column, parent_indent)


def _after_value(doc, index, end):
    """Fail at what follows a complete value on its line."""
    line = doc.lines[index]
    position = _SPACES.match(line, end).end()
    if position < len(line) and line[position] == ":" and \
            line[position + 1:position + 2] in ("", " "):
        _fail(doc, index, position, "':' after a complete value; a key must "
              "fit on one line, and a value containing ': ' must be quoted")
    if position == end and position < len(line) and line[position] == "#":
        _fail(doc, index, position, "a comment must be preceded by a space; "
              "add a space before '#'")
    if position < len(line) and line[position] == "\t":
        _unexpected(doc, index, position)
    _fail(doc, index, position, "unexpected text after the value; quote the "
          "whole value, or start a comment with ' #'")


# -- plain scalars ---------------------------------------------------------------

def _parse_plain(doc, index, column, parent_indent):
    """A plain scalar, possibly continued on more-indented lines."""
    lines = doc.lines
    line = lines[index]
    match = _PLAIN.match(line, column)
    if match is None:
        _unexpected(doc, index, column)
    text = match.group()
    rest = _PLAIN_REST.match(line, match.end())
    if rest is None:
        _after_plain(doc, index, match.end())
    following = index + 1
    if rest.group(1) is None and following < len(lines) and (
            doc.indents[following] > parent_indent
            or doc.indents[following] == len(lines[following])):
        text, following = _plain_continuation(doc, following, parent_indent,
                                              text)
    return _plain_value(doc, index, column, text), following


def _after_plain(doc, index, end):
    line = doc.lines[index]
    position = _SPACES.match(line, end).end()
    if position < len(line) and line[position] == ":":
        if line[position + 1:position + 2] == "\t":
            _unexpected(doc, index, position + 1)
        _fail(doc, index, position, "':' followed by a space inside a value; "
              "quote the value, or put a nested mapping on the next line")
    _unexpected(doc, index, position)


def _plain_continuation(doc, index, parent_indent, text):
    """Fold the continuation lines of a multi-line plain scalar into text."""
    lines = doc.lines
    indents = doc.indents
    chunks = [text]
    blanks = 0
    count = len(lines)
    while index < count:
        indent = indents[index]
        line = lines[index]
        if indent == len(line):
            blanks += 1
            index += 1
            continue
        char = line[indent]
        if char == "\t":
            _fail(doc, index, indent, _TAB_INDENT)
        if char == "#" or indent <= parent_indent:
            break
        if char in "-?" and (indent + 1 == len(line) or line[indent + 1] == " ") \
                or line.startswith(("---", "..."), indent):
            _fail(doc, index, indent, "this line continues the text above "
                  "(a multi-line plain value), which is probably not meant; "
                  "quote the value, or fix the indentation")
        match = _PLAIN_CONTINUATION.match(line, indent)
        if match is None:
            _unexpected(doc, index, indent)
        rest = _PLAIN_REST.match(line, match.end())
        if rest is None:
            _after_plain(doc, index, match.end())
        chunks.append("\n" * blanks if blanks else " ")
        chunks.append(match.group())
        blanks = 0
        index += 1
        if rest.group(1) is not None:
            break
    return "".join(chunks), index


def _plain_value(doc, index, column, text):
    """The typed value of a plain scalar, or an error if YAML 1.1 and 1.2 differ."""
    first = text[0]
    if first in _NUMBER_FIRST:
        return _plain_number(doc, index, column, text)
    if first not in _WORD_FIRST:
        return text
    if text in _WORDS:
        return _WORDS[text]
    if text in _YAML11_BOOLEANS:
        _fail(doc, index, column, "%r means %s in YAML 1.1 but a string in "
              "YAML 1.2; quote it, or write true/false"
              % (text, "true" if text.lower() in ("yes", "on") else "false"))
    if text == "<<" or text == "=":
        _fail(doc, index, column, "%r has a special meaning in YAML 1.1; "
              "quote it" % text)
    return text


def _plain_number(doc, index, column, text):
    if _INT_DECIMAL.match(text):
        if len(text) > 4000:  # int() refuses more than 4300 digits
            _fail(doc, index, column, "integer with more than 4000 digits; "
                  "quote it")
        return int(text)
    if _LEADING_ZERO.match(text):
        _fail(doc, index, column, "%r is an octal or invalid number in YAML "
              "1.1 but a decimal in YAML 1.2; quote it, or write it without "
              "leading zeros" % text)
    float_11 = _FLOAT_11.match(text) is not None
    if float_11 and _FLOAT_12.match(text):
        lowered = text.lower()
        if lowered.endswith("inf"):
            return float("-inf") if lowered[0] == "-" else float("inf")
        if lowered.endswith("nan"):
            return float("nan")
        return float(text)
    if _HEX.match(text):
        return int(text, 16)
    if float_11 or _INT_11.match(text) or _INT_12.match(text) or \
            _FLOAT_12.match(text):
        _fail(doc, index, column, "%r is a different number (or a string) in "
              "YAML 1.1 and YAML 1.2; quote it, or write a plain decimal "
              "number such as 1000 or 1.5e+3" % text)
    if _TIMESTAMP_11.match(text):
        date = _DATE.match(text)
        if date is None:
            _fail(doc, index, column, "timestamps with a time are not "
                  "supported; quote it, or write a date as YYYY-MM-DD")
        year, month, day = [int(part) for part in date.groups()]
        if 1 <= year and 1 <= month <= 12 and \
                1 <= day <= _days_in_month(year, month):
            return _datetime.date(year, month, day)
        _fail(doc, index, column, "%r is not a valid date; write a real date "
              "as YYYY-MM-DD, or quote it" % text)
    return text


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


# -- quoted scalars --------------------------------------------------------------

def _parse_quoted(doc, index, column, parent_indent):
    """A quoted scalar starting at (index, column), possibly over several lines.
    Returns (value, index of its last line, column after the closing quote)."""
    lines = doc.lines
    line = lines[index]
    single = line[column] == "'"
    match = (_SINGLE_QUOTED_LINE if single else _DOUBLE_QUOTED_LINE).match(
        line, column)
    if match is not None:
        raw = match.group(1)
        if single:
            return raw.replace("''", "'"), index, match.end()
        return _unescape(doc, index, column + 1, raw), index, match.end()
    end_pattern = _SINGLE_QUOTED_END if single else _DOUBLE_QUOTED_END
    pieces = [line[column + 1:]]
    last = index + 1
    while True:
        if last >= len(lines):
            _fail(doc, index, column, "quoted value is never closed; add the "
                  "closing quote")
        text = lines[last]
        stripped = text.lstrip(" \t")
        if stripped and len(text) - len(stripped) <= parent_indent:
            _fail(doc, last, doc.indents[last], "the continuation line of a "
                  "quoted value must be indented more than its key; indent it")
        closing = end_pattern.match(text)
        if closing is not None:
            pieces.append(text[:closing.end() - 1])
            break
        pieces.append(text)
        last += 1
    raw = "\n".join(pieces)
    if single:
        return _SINGLE_QUOTED_FOLD.sub(_fold_replacement, raw), last, \
            closing.end()
    return _unescape(doc, index, column + 1, raw), last, closing.end()


def _fold_replacement(match):
    token = match.group()
    if token == "''":
        return "'"
    if match.group(1) is None:
        return token  # spaces inside a line
    breaks = match.group(1).count("\n")
    return "\n" * breaks if breaks else " "


def _unescape(doc, index, column, raw):
    """The value of a double-quoted scalar's raw text starting at (index, column)."""
    if "\\" not in raw and "\n" not in raw:
        return raw

    def replace(match):
        escape = match.group(1)
        if escape is not None:
            if len(escape) == 1:
                return _ESCAPES[escape]
            code = int(escape[1:], 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                _escape_error(doc, index, column, raw, match.start(),
                              "escape \\%s is not a valid character; use a "
                              "code point of a real character" % escape)
            return chr(code)
        escaped_breaks = match.group(2)
        if escaped_breaks is not None:
            return "\n" * escaped_breaks.count("\n")
        breaks = match.group(3)
        if breaks is not None:
            count = breaks.count("\n")
            return "\n" * count if count else " "
        if match.group(4) is not None:
            return match.group(4)  # spaces inside a line
        _escape_error(doc, index, column, raw, match.start(),
                      "invalid escape sequence; write a valid escape (such "
                      "as \\\\ \\\" \\n \\t \\xHH \\uHHHH) or use single quotes")
    return _DOUBLE_QUOTED_TOKEN.sub(replace, raw)


def _escape_error(doc, index, column, raw, offset, message):
    newlines = raw.count("\n", 0, offset)
    if newlines:
        column = offset - raw.rfind("\n", 0, offset) - 1
    else:
        column += offset
    _fail(doc, index + newlines, column, message)


# -- block scalars ---------------------------------------------------------------

def _parse_block_scalar(doc, index, column, parent_indent):
    """A literal '|' or folded '>' scalar, exactly as PyYAML's scanner reads it."""
    lines = doc.lines
    header = _BLOCK_HEADER.match(lines[index], column)
    if header is None or (header.group(2) and header.group(4)):
        _fail(doc, index, column, "invalid block scalar header; write '|' or "
              "'>', optionally followed by '-' or '+' and one digit 1-9, then "
              "a space before any comment")
    folded = header.group(1) == ">"
    chomping = header.group(3)
    digit = header.group(2) or header.group(4)
    minimum = max(parent_indent + 1, 1)
    first = index + 1
    count = len(lines)
    if digit:
        if parent_indent < 0:
            _fail(doc, index, column, "an indentation digit on a top-level "
                  "block scalar is read differently by YAML versions; remove it")
        indent = minimum + int(digit) - 1
    else:
        indent = _block_scalar_indent(doc, first, minimum)
    chunks = []
    breaks = 0                 # blank lines not yet added
    line_break = ""            # the break that ended the last content line
    leading_non_space = False  # whether that line started with text
    spaces = " " * indent
    position = first
    while position < count:
        line = lines[position]
        has_break = position + 1 < count or doc.ends_with_newline
        if len(line) > indent and line.startswith(spaces):
            content = line[indent:]
            if not has_break and not content.strip(" "):
                _fail(doc, position, len(line) - 1, "trailing spaces at the "
                      "end of the file inside a block scalar; remove them")
            if chunks:
                # '>' folds a break between two lines that start with text
                if folded and leading_non_space and content[0] not in " \t":
                    if not breaks:
                        chunks.append(" ")
                else:
                    chunks.append(line_break)
            if breaks:
                chunks.append("\n" * breaks)
                breaks = 0
            chunks.append(content)
            leading_non_space = content[0] not in " \t"
            line_break = "\n" if has_break else ""
        elif line.strip(" "):
            break
        elif has_break:
            breaks += 1
        position += 1
    if chomping != "-":
        chunks.append(line_break)
    if chomping == "+" and breaks:
        chunks.append("\n" * breaks)
    return "".join(chunks), position


def _block_scalar_indent(doc, first, minimum):
    """The auto-detected indentation: PyYAML takes the longest leading blank
    line into account, which the spec forbids; such input is rejected."""
    lines = doc.lines
    longest_blank = 0
    position = first
    while position < len(lines) and not lines[position].strip(" "):
        longest_blank = max(longest_blank, len(lines[position]))
        position += 1
    if position < len(lines):
        text_indent = doc.indents[position]
        if text_indent >= minimum and longest_blank > text_indent:
            _fail(doc, position - 1, 0, "a blank line before the block scalar's "
                  "text has more spaces than the text; remove the spaces")
        return max(minimum, longest_blank, text_indent)
    return max(minimum, longest_blank)


# -- flow collections (one line) ---------------------------------------------------

def _parse_flow_node_line(doc, index, column, path):
    """A flow collection that must close on its line; then only a comment."""
    value, end = _flow_node(doc, index, column, path)
    line = doc.lines[index]
    if not _BLANK_OR_COMMENT_REST.match(line, end):
        _after_value(doc, index, end)
    return value, index + 1


def _flow_node(doc, index, column, path):
    if len(path) > _MAX_DEPTH:
        _fail(doc, index, column, "nesting deeper than %d levels; flatten "
              "the structure" % _MAX_DEPTH)
    line = doc.lines[index]
    if column >= len(line):
        _flow_unclosed(doc, index, column)
    char = line[column]
    if char == "[":
        return _flow_sequence(doc, index, column, path)
    if char == "{":
        return _flow_mapping(doc, index, column, path)
    return _flow_scalar(doc, index, column)


def _flow_unclosed(doc, index, column):
    _fail(doc, index, column, "a flow collection ('[...]' or '{...}') must "
          "close on the same line; write it on one line, or use a block "
          "collection")


def _flow_scalar(doc, index, column):
    """A quoted (one line) or plain scalar inside a flow collection."""
    line = doc.lines[index]
    char = line[column]
    if char == "'":
        match = _SINGLE_QUOTED_LINE.match(line, column)
        if match is None:
            _flow_unclosed(doc, index, column)
        return match.group(1).replace("''", "'"), match.end()
    if char == '"':
        match = _DOUBLE_QUOTED_LINE.match(line, column)
        if match is None:
            _flow_unclosed(doc, index, column)
        return _unescape(doc, index, column + 1, match.group(1)), match.end()
    match = _FLOW_PLAIN.match(line, column)
    if match is None:
        if char in ",]}":
            _fail(doc, index, column, "empty entry in a flow collection; "
                  "remove the extra ',' or write a value (null, '')")
        if char == "#":
            _flow_unclosed(doc, index, column)
        _unexpected(doc, index, column)
    return _plain_value(doc, index, column, match.group()), match.end()


def _flow_separator(doc, index, position, closing):
    """After an entry: skip spaces; return (position after ',', closed?)."""
    line = doc.lines[index]
    position = _SPACES.match(line, position).end()
    if position >= len(line) or line[position] == "#":
        _flow_unclosed(doc, index, position)
    char = line[position]
    if char == ",":
        return _SPACES.match(line, position + 1).end(), False
    if char == closing:
        return position + 1, True
    if char == ":" and closing == "]":
        _fail(doc, index, position, "'key: value' pairs inside '[...]' are "
              "not supported; use '{key: value}', or quote the text")
    if char == "\t":
        _unexpected(doc, index, position)
    _fail(doc, index, position, "expected ',' or '%s' in a flow collection; "
          "quote values that contain special characters" % closing)


def _flow_sequence(doc, index, column, path):
    items = []
    line = doc.lines[index]
    marks = doc.marks
    position = _SPACES.match(line, column + 1).end()
    if line[position:position + 1] == "]":
        return items, position + 1
    while True:
        item_path = path + (len(items),)
        marks[item_path] = (index + 1, position + 1)
        value, position = _flow_node(doc, index, position, item_path)
        items.append(value)
        position, closed = _flow_separator(doc, index, position, "]")
        if closed:
            return items, position
        if line[position:position + 1] == "]":
            return items, position + 1


def _flow_mapping(doc, index, column, path):
    mapping = {}
    line = doc.lines[index]
    marks = doc.marks
    position = _SPACES.match(line, column + 1).end()
    if line[position:position + 1] == "}":
        return mapping, position + 1
    while True:
        start = position
        key, position = _flow_key(doc, index, start)
        key_path = path + (key,)
        if key in mapping:
            _fail(doc, index, start, "duplicate key %r (first defined at "
                  "column %d); remove one of them" % (key, marks[key_path][1]))
        marks[key_path] = (index + 1, start + 1)
        if position >= len(line) or line[position] in ",}":
            _fail(doc, index, position, "missing value after ':' in a flow "
                  "mapping; write a value (null, '')")
        mapping[key], position = _flow_node(doc, index, position, key_path)
        position, closed = _flow_separator(doc, index, position, "}")
        if closed:
            return mapping, position
        if line[position:position + 1] == "}":
            return mapping, position + 1


def _flow_key(doc, index, start):
    """'key:' inside '{...}'; returns (key, where its value starts)."""
    line = doc.lines[index]
    if start >= len(line) or line[start] == "#":
        _flow_unclosed(doc, index, start)
    char = line[start]
    quoted = char == "'" or char == '"'
    if quoted:
        key, end = _flow_scalar(doc, index, start)
    elif char in "[{":
        _fail(doc, index, start, "a flow collection cannot be a key; use a "
              "string key")
    else:
        match = _FLOW_PLAIN.match(line, start)
        if match is None:
            if char in ",}":
                _fail(doc, index, start, "empty entry in a flow mapping; "
                      "remove the extra ','")
            _unexpected(doc, index, start)
        text = match.group()
        end = match.end()
        if text == "<<":
            _fail(doc, index, start, "merge keys ('<<') are not supported; "
                  "write the keys out in full")
        key = _plain_value(doc, index, start, text)
        if not isinstance(key, str):
            _fail(doc, index, start, "key %r is read as %s, not a string; "
                  "quote it" % (text, _type_name(key)))
    colon = _SPACES.match(line, end).end()
    if colon >= len(line) or line[colon] != ":":
        if colon < len(line) and line[colon] == "\t":
            _unexpected(doc, index, colon)
        _fail(doc, index, start, "a flow mapping entry needs 'key: value'; "
              "add ': ' and a value")
    if colon - start > _MAX_KEY_SPAN:
        _fail(doc, index, start, "key longer than %d characters; shorten it"
              % _MAX_KEY_SPAN)
    after = colon + 1
    if not quoted and line[after:after + 1] != " ":
        if line[after:after + 1] == "\t":
            _unexpected(doc, index, after)
        _fail(doc, index, after, "a space is needed after ':' in a flow "
              "mapping; write '{key: value}'")
    return key, _SPACES.match(line, after).end()


# -- the interface ---------------------------------------------------------------

def parse_yaml_document(text, source="<string>"):
    """Return (value, marks): the document as yaml.safe_load returns it, and a
    dict mapping each path tuple of mapping keys and sequence indexes (e.g.
    ("tags", 1)) to the 1-based (line, column) where that key or item starts;
    () maps to the start of the document's content. Raises ConfigError."""
    doc = _split_lines(_decode(text, source), source)
    return _parse_stream(doc), doc.marks


def load_yaml(text, source="<string>"):
    """Return what yaml.safe_load(text) returns, or raise ConfigError.
    text is str, or bytes in UTF-8 (an initial BOM is allowed)."""
    return parse_yaml_document(text, source)[0]


def load_yaml_mapping(text, source="<string>"):
    """(mapping, marks) of a configuration file whose top level must be a
    mapping; anything else is a ConfigError."""
    value, marks = parse_yaml_document(text, source)
    if isinstance(value, dict):
        return value, marks
    line, column = marks[()]
    if value is None:
        raise ConfigError("the file is empty (or only comments); a "
                          "configuration file is a mapping of 'key: value' "
                          "lines", source, line, column)
    kind = "a list" if isinstance(value, list) else "a single value"
    raise ConfigError("the top level is %s, not a mapping; write 'key: value' "
                      "lines at the top level" % kind, source, line, column)


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
