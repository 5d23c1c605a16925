#!/usr/bin/env python3
"""run-job: run a declared job as the service user, never twice at once,
within its deadline, with every byte of its output logged.

Self-contained: standard library only, Python 3.6 or newer. Installed as
/usr/bin/run-job; cron_generate.py imports its configuration and schedule
code from here.
"""

# Only modules that are built in or already loaded by the interpreter's own
# start-up: each costs a plain run well under 0.1 ms. Anything heavier is
# imported where it is needed, with the reason.
import codecs
import errno
import fcntl
import gc
import io
import os
import pwd
import select
import stat
import sys
import time

VERSION = "0.1.0"


# ---- 1. errors and exit codes ----------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 64
EXIT_HALTED = 69
EXIT_RUNNING = 75
EXIT_REFUSED = 77
EXIT_CONFIG = 78
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class ProcessControlError(Exception):
    """An error meant for the user: one line, no traceback."""

    exit_code = EXIT_FAILED


class UsageError(ProcessControlError):
    exit_code = EXIT_USAGE


class LockHeldError(ProcessControlError):
    exit_code = EXIT_RUNNING


class HaltedError(ProcessControlError):
    """A halted job refuses to run until run-job --reset clears the halt."""

    exit_code = EXIT_HALTED


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


def printable(text, limit=None):
    """TEXT on one line: line breaks (LF, CR, NEL, U+2028...) and every other
    unprintable character shown as an escape, so that no value from a config
    or a file name can start a line of its own, in a message or in a crontab
    (a cron entry); with LIMIT, cut to about that many characters. Both
    scripts print every message through it."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


# The longest value quoted in a message; a longer one is cut, as the file
# holds the rest.
QUOTED_VALUE_LIMIT = 60
QUOTED_PATH_LIMIT = 300  # a path, which may well be longer than a value


def quoted_value(value):
    """VALUE as a message quotes it: repr, on one line, at most about
    QUOTED_VALUE_LIMIT characters; a huge integer by its size, as it cannot
    even be converted to decimal (Python 3.11 refuses beyond 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) \
            and value.bit_length() > 4 * QUOTED_VALUE_LIMIT:
        return "a %d-bit number" % value.bit_length()
    return printable(repr(value), QUOTED_VALUE_LIMIT)


# ---- 2. the YAML subset ----------------------------------------------------------

# The subset of YAML that configuration files use, read exactly as PyYAML's
# yaml.safe_load reads it, or rejected with SOURCE:LINE:COLUMN and a hint.
# Whitelist grammar: anything not recognised is an error, never a guess.
# Line-oriented for speed: a document is a list of lines plus their
# indentation; each grammar rule is a function over (doc, line index, column)
# returning (value, next line index). Positions are 0-based inside, 1-based in
# messages and marks.


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
# Integers a config may hold: any of them must convert to decimal text for a
# message or an environment value, and Python 3.11 refuses more than 4300
# digits. 3300 hexadecimal digits make at most 3974 decimal ones.
_MAX_DECIMAL_DIGITS = 4000
_MAX_HEX_DIGITS = 3300

# A plain scalar on one line, block context: a first character that is not an
# indicator (or '-', '?', ':' glued to a non-space), then words separated by
# spaces; ': ' and ' #' end it, ':' glued to a non-space is literal.
# A word is a run of non-spaces in which every ':' is followed by a non-space;
# written as runs between colons, which is faster than one character at a time.
_PLAIN_FIRST = r"(?:[^ \t\-?:,\[\]{}#&*!|>'\"%@`]|[-?:](?=[^ \t]))"
_PLAIN_WORD = r"[^ \t:]*(?::+[^ \t:]+)*(?::+(?=:))?"
_PLAIN_NEXT_WORD = r"(?=[^ \t:#]|:[^ \t])" + _PLAIN_WORD
_PLAIN_TAIL = _PLAIN_WORD + r"(?: +" + _PLAIN_NEXT_WORD + r")*"
_SINGLE_QUOTED = r"'((?:[^']|'')*)'(?!')"
_DOUBLE_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_SIMPLE_VALUE = (r"((" + _PLAIN_FIRST + _PLAIN_TAIL + r")|'([^']*)'"
                 r"|\"([^\"\\]*)\")")
# Flow context (one line): ',', '?', brackets and braces also end a plain scalar.
_FLOW_PLAIN_CHAR = r"(?:[^ \t:,?\[\]{}]|:(?=[^ \t,\[\]{}]))"


class _LazyPattern(object):
    """A regular expression compiled when first read through an instance,
    which then keeps the compiled pattern in its own __dict__, where later
    reads find it first (this is a non-data descriptor). A plain run reads two
    short files through the str fast paths and needs none of them: importing
    `re` and compiling them all would cost it about 10 ms."""

    __slots__ = ("source", "name")

    def __init__(self, source):
        self.source = source
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner):
        if instance is None:
            return self
        import re  # lazily: see the class docstring
        pattern = re.compile(self.source)
        setattr(instance, self.name, pattern)
        return pattern


class _Patterns(object):
    """The section's regular expressions, compiled on first use (_RX below)."""

    # Characters PyYAML's reader refuses, plus the line breaks and BOMs it
    # handles in ways that are easy to get wrong (lone CR, NEL, LS, PS, a BOM
    # mid-text).
    BAD_CHARACTER = _LazyPattern(
        "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
        "\U00010000-\U0010ffff]")
    LONE_CR = _LazyPattern("\r(?!\n)")
    DOCUMENT_MARKER = _LazyPattern(r"(?:---|\.\.\.)(?=[ \t]|\Z)")
    BLANK_OR_COMMENT_REST = _LazyPattern(r"(?: +(?:#.*)?)?\Z")

    PLAIN = _LazyPattern(_PLAIN_FIRST + _PLAIN_TAIL)
    PLAIN_CONTINUATION = _LazyPattern(r"(?=[^ \t:]|:[^ \t])" + _PLAIN_TAIL)
    PLAIN_REST = _LazyPattern(r" *(#.*)?\Z")
    # key ':' in block context; groups: plain, single, double, spaces.
    BLOCK_KEY = _LazyPattern(
        "(?:(" + _PLAIN_FIRST + _PLAIN_TAIL + ")|" + _SINGLE_QUOTED + "|"
        + _DOUBLE_QUOTED + ")( *):(?= |\\Z)")
    SINGLE_QUOTED_LINE = _LazyPattern(_SINGLE_QUOTED)
    DOUBLE_QUOTED_LINE = _LazyPattern(_DOUBLE_QUOTED)
    SINGLE_QUOTED_END = _LazyPattern(r"(?:[^']|'')*'(?!')")
    DOUBLE_QUOTED_END = _LazyPattern(r'(?:[^"\\]|\\.)*"')
    # Tokens of multi-line quoted text. A run of spaces not before a line
    # break is its own token, which keeps the scan linear in the run's length.
    SINGLE_QUOTED_FOLD = _LazyPattern(
        r"''|[ \t]*\n[ \t]*((?:\n[ \t]*)*)|[ \t]+")
    DOUBLE_QUOTED_TOKEN = _LazyPattern(
        r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0abt\tnvfre \"/\\N_LP])"
        r"|\\\n[ \t]*((?:\n[ \t]*)*)|[ \t]*\n[ \t]*((?:\n[ \t]*)*)|([ \t]+)|\\")
    # Fast paths for the most common lines: 'word: value' and '- value' where
    # the value is one line of plain or simply quoted text. Anything else (or
    # a match whose key needs typing) takes the general path.
    SIMPLE_ENTRY = _LazyPattern(
        r"([^ \t\-?:,\[\]{}#&*!|>'\"%@`0-9+.][^ \t:]{0,1023}):(?: +" + _SIMPLE_VALUE
        + r")?(?: +(#).*| *)\Z")
    SIMPLE_ITEM = _LazyPattern(r"(-) +" + _SIMPLE_VALUE + r"(?: +(#).*| *)\Z")
    BLOCK_HEADER = _LazyPattern(r"([|>])([1-9]?)([-+]?)([1-9]?)(?: +(?:#.*)?)?\Z")

    FLOW_PLAIN = _LazyPattern(
        r"(?:[^ \t\-?:,\[\]{}#&*!|>'\"%@`]|-(?=[^ \t,\[\]{}]))" + _FLOW_PLAIN_CHAR
        + r"*(?: +(?!#)" + _FLOW_PLAIN_CHAR + r"+)*")
    SPACES = _LazyPattern(r" *")

    # Implicit typing. YAML 1.1 (PyYAML's resolver) and YAML 1.2 core must
    # agree, else the scalar is ambiguous and rejected.
    INT_DECIMAL = _LazyPattern(r"[-+]?(?:0|[1-9][0-9]*)\Z")
    LEADING_ZERO = _LazyPattern(r"[-+]?0[0-9_]+\Z")
    FLOAT_11 = _LazyPattern(
        r"(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
        r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
    INT_11 = _LazyPattern(
        r"(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
        r"|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)\Z")
    TIMESTAMP_11 = _LazyPattern(
        r"(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
        r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
        r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)\Z")
    DATE = _LazyPattern(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
    INT_12 = _LazyPattern(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
    HEX = _LazyPattern(r"0x[0-9a-fA-F]+\Z")
    FLOAT_12 = _LazyPattern(
        r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")


_RX = _Patterns()

_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n",
    "v": "\v", "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"',
    "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028",
    "P": "\u2029"}
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

_ASCII_ALLOWED = bytes(range(0x20, 0x7F)) + b"\t\n\r"


def _is_clean_ascii(text):
    """Whether text is ASCII free of BAD_CHARACTER's characters: found
    without regular expressions, to keep `re` off a plain run's start-up."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        return False
    return not data.translate(None, _ASCII_ALLOWED)


def decode_utf8(data, source):
    """DATA as text, or a ConfigError naming the first bad byte's line,
    column and byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[start:error.start].decode("utf-8", "replace")) + 1
        raise ConfigError(
            "invalid UTF-8 byte 0x%02x (byte offset %d); save the file as "
            "UTF-8" % (data[error.start], error.start), source, line, column)


def _decode(text, source):
    """Text as str with '\\n' line breaks; refuses non-UTF-8 and odd characters."""
    if not isinstance(text, str):
        if not isinstance(text, (bytes, bytearray, memoryview)):
            raise TypeError("YAML text must be str or bytes, not %s"
                            % type(text).__name__)
        text = decode_utf8(bytes(text), source)
    if text.startswith("\ufeff"):
        text = text[1:]
    bad = None
    if not _is_clean_ascii(text):
        bad = _RX.BAD_CHARACTER.search(text)
    if bad is None and text.count("\r") != text.count("\r\n"):
        bad = _RX.LONE_CR.search(text)
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
        if line[:3] in ("---", "...") and _RX.DOCUMENT_MARKER.match(line):
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
            _RX.DOCUMENT_MARKER.match(lines[index]):
        line = lines[index]
        if not _RX.BLANK_OR_COMMENT_REST.match(line, 3):
            rest = _RX.SPACES.match(line, 3).end()
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


# The common lines of SIMPLE_ENTRY and SIMPLE_ITEM, recognised with str
# methods: a plain run then needs no regular expression (and no `re`). Each
# returns what the pattern's match would give, or None to leave the line to
# the pattern (it may still match): they accept only what they can be sure of.

_SIMPLE_KEY_FIRST = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SIMPLE_KEY_CHARACTERS = _SIMPLE_KEY_FIRST + "0123456789-"
_NOT_PLAIN_FIRST = frozenset("-?:,[]{}#&*!|>'\"%@`\t")


class _SimpleMatch(tuple):
    """Stands for a SIMPLE_ENTRY or SIMPLE_ITEM match: (None, groups 1 to 6,
    start of the value), read through group(n) and start(n)."""

    __slots__ = ()
    group = tuple.__getitem__  # the match's groups are at their numbers

    def start(self, number):
        if self[number] is None:
            return -1
        return self[7] + (number == 4 or number == 5)


def _simple_entry(line, column):
    """SIMPLE_ENTRY's match of 'key: value' at column, or None."""
    colon = line.find(":", column)
    if colon <= column or colon - column > _MAX_KEY_SPAN:
        return None
    key = line[column:colon]
    if key[0] not in _SIMPLE_KEY_FIRST or key.strip(_SIMPLE_KEY_CHARACTERS):
        return None
    after = colon + 1
    if after == len(line):
        return _SimpleMatch((None, key, None, None, None, None, None, -1))
    if line[after] != " ":
        return None
    return _simple_value_match(line, after, key, True)


def _simple_item(line, column):
    """SIMPLE_ITEM's match of '- value' at column, or None."""
    if not line.startswith("- ", column):
        return None
    return _simple_value_match(line, column + 1, "-", False)


def _simple_value_match(line, after, first_group, optional):
    """The rest of a simple line from after (a space): ' +VALUE' (optional
    for an entry), then ' +#...' or spaces to the end."""
    value = line[after:].lstrip(" ")
    if not value or value[0] == "#":
        if not optional:
            return None
        return _SimpleMatch((None, first_group, None, None, None, None,
                             "#" if value else None, -1))
    start = len(line) - len(value)
    char = value[0]
    if char not in _NOT_PLAIN_FIRST:
        cut = value.find(" #")
        if cut < 0:
            if ":" in value or "\t" in value:
                return None
            text = value.rstrip(" ")
            return _SimpleMatch((None, first_group, text, text, None, None, None, start))
        text = value[:cut]
        if ":" in text or "\t" in text:
            return None
        text = text.rstrip(" ")
        return _SimpleMatch((None, first_group, text, text, None, None, "#", start))
    if char != "'" and char != '"':
        return None
    end = value.find(char, 1)
    if end < 0:
        return None
    inner = value[1:end]
    if char == '"' and "\\" in inner:
        return None
    comment = _simple_comment(value[end + 1:])
    if comment is None:
        return None
    if char == "'":
        return _SimpleMatch((None, first_group, value[:end + 1], None, inner, None,
                             comment or None, start))
    return _SimpleMatch((None, first_group, value[:end + 1], None, None, inner,
                         comment or None, start))


def _simple_comment(rest):
    """After a quoted value: "" for spaces to the end, "#" for a comment
    after a space, None for anything else."""
    if not rest.strip(" "):
        return ""
    if rest[0] == " " and rest.lstrip(" ")[0] == "#":
        return "#"
    return None


def _parse_block_node(doc, index, column, parent_indent, path):
    """A node that may be a block collection, starting at (index, column)."""
    if len(path) > _MAX_DEPTH:
        _fail(doc, index, column, "nesting deeper than %d levels; flatten "
              "the structure" % _MAX_DEPTH)
    line = doc.lines[index]
    if _is_sequence_entry(line, column):
        return _parse_block_sequence(doc, index, column, path)
    if _simple_entry(line, column) is not None or \
            _RX.BLOCK_KEY.match(line, column):
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
        line = lines[index]
        simple = _simple_item(line, column) or _RX.SIMPLE_ITEM.match(line, column)
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
    start = _RX.SPACES.match(line, column + 1).end()
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
        simple = _simple_entry(line, column) or _RX.SIMPLE_ENTRY.match(line, column)
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
            match = _RX.BLOCK_KEY.match(line, column)
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
    _fail(doc, index, column, "duplicate key %s (first defined at line %d); "
          "remove one of them" % (quoted_value(key), first[0]))


def _simple_value(doc, index, column, match):
    """The value of a SIMPLE_ENTRY or SIMPLE_ITEM match on line index, whose
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
    plain = _RX.PLAIN.match(line, column)
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
            _fail(doc, index, column, "key %s is read as %s, not a string; "
                  "quote it" % (quoted_value(plain), _type_name(key)))
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
    start = _RX.SPACES.match(line, position).end()
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
        if not _RX.BLANK_OR_COMMENT_REST.match(line, end):
            _after_value(doc, index, end)
        return value, index + 1
    if char == "|" or char == ">":
        return _parse_block_scalar(doc, index, column, parent_indent)
    return _parse_plain(doc, index, column, parent_indent)


def _after_value(doc, index, end):
    """Fail at what follows a complete value on its line."""
    line = doc.lines[index]
    position = _RX.SPACES.match(line, end).end()
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
    match = _RX.PLAIN.match(line, column)
    if match is None:
        _unexpected(doc, index, column)
    text = match.group()
    rest = _RX.PLAIN_REST.match(line, match.end())
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
    position = _RX.SPACES.match(line, end).end()
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
        match = _RX.PLAIN_CONTINUATION.match(line, indent)
        if match is None:
            _unexpected(doc, index, indent)
        rest = _RX.PLAIN_REST.match(line, match.end())
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


# Every character that any of the number and timestamp patterns can match:
# a scalar with another one (10m, 1.5x, 3rd) is a string, decided without them.
_NUMBER_CHARACTERS = "0123456789+-._: \tabcdefABCDEFinINoxTtZ"


def _plain_number(doc, index, column, text):
    if text.strip(_NUMBER_CHARACTERS):
        return text
    if (not text.strip("0123456789") and (text[0] != "0" or len(text) == 1)) \
            or _RX.INT_DECIMAL.match(text):
        if len(text) > _MAX_DECIMAL_DIGITS:
            _fail(doc, index, column, "integer with more than %d digits; "
                  "quote it" % _MAX_DECIMAL_DIGITS)
        return int(text)
    if _RX.LEADING_ZERO.match(text):
        _fail(doc, index, column, "%s is an octal or invalid number in YAML "
              "1.1 but a decimal in YAML 1.2; quote it, or write it without "
              "leading zeros" % quoted_value(text))
    float_11 = _RX.FLOAT_11.match(text) is not None
    if float_11 and _RX.FLOAT_12.match(text):
        lowered = text.lower()
        if lowered.endswith("inf"):
            return float("-inf") if lowered[0] == "-" else float("inf")
        if lowered.endswith("nan"):
            return float("nan")
        return _finite_float(doc, index, column, text)
    if _RX.HEX.match(text):
        if len(text) > _MAX_HEX_DIGITS + 2:
            _fail(doc, index, column, "hexadecimal integer with more than %d "
                  "digits; quote it" % _MAX_HEX_DIGITS)
        return int(text, 16)
    if float_11 or _RX.INT_11.match(text) or _RX.INT_12.match(text) or \
            _RX.FLOAT_12.match(text):
        _fail(doc, index, column, "%s is a different number (or a string) in "
              "YAML 1.1 and YAML 1.2; quote it, or write a plain decimal "
              "number such as 1000 or 1.5e+3" % quoted_value(text))
    if _RX.TIMESTAMP_11.match(text):
        date = _RX.DATE.match(text)
        if date is None:
            _fail(doc, index, column, "timestamps with a time are not "
                  "supported; quote it, or write a date as YYYY-MM-DD")
        year, month, day = [int(part) for part in date.groups()]
        if 1 <= year and 1 <= month <= 12 and \
                1 <= day <= _days_in_month(year, month):
            import datetime  # lazily: only a date value needs it (1.2 ms)
            return datetime.date(year, month, day)
        _fail(doc, index, column, "%s is not a valid date; write a real date "
              "as YYYY-MM-DD, or quote it" % quoted_value(text))
    return text


def _finite_float(doc, index, column, text):
    """A float written with digits: one beyond the float range would become
    infinity unnoticed (a timeout, an environment value `inf`)."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        _fail(doc, index, column, "%s is too large for a number (more than "
              "1.8e+308); quote it, or write a smaller number"
              % quoted_value(text))
    return value


def _days_in_month(year, month):
    """Days in a month of the Gregorian calendar; section 3 (schedules) uses it too."""
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
    match = (_RX.SINGLE_QUOTED_LINE if single else _RX.DOUBLE_QUOTED_LINE).match(
        line, column)
    if match is not None:
        raw = match.group(1)
        if single:
            return raw.replace("''", "'"), index, match.end()
        return _unescape(doc, index, column + 1, raw), index, match.end()
    end_pattern = _RX.SINGLE_QUOTED_END if single else _RX.DOUBLE_QUOTED_END
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
        return _RX.SINGLE_QUOTED_FOLD.sub(_fold_replacement, raw), last, \
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
    return _RX.DOUBLE_QUOTED_TOKEN.sub(replace, raw)


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
    header = _RX.BLOCK_HEADER.match(lines[index], column)
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
    if not _RX.BLANK_OR_COMMENT_REST.match(line, end):
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
        match = _RX.SINGLE_QUOTED_LINE.match(line, column)
        if match is None:
            _flow_unclosed(doc, index, column)
        return match.group(1).replace("''", "'"), match.end()
    if char == '"':
        match = _RX.DOUBLE_QUOTED_LINE.match(line, column)
        if match is None:
            _flow_unclosed(doc, index, column)
        return _unescape(doc, index, column + 1, match.group(1)), match.end()
    match = _RX.FLOW_PLAIN.match(line, column)
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
    position = _RX.SPACES.match(line, position).end()
    if position >= len(line) or line[position] == "#":
        _flow_unclosed(doc, index, position)
    char = line[position]
    if char == ",":
        return _RX.SPACES.match(line, position + 1).end(), False
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
    position = _RX.SPACES.match(line, column + 1).end()
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
    position = _RX.SPACES.match(line, column + 1).end()
    if line[position:position + 1] == "}":
        return mapping, position + 1
    while True:
        start = position
        key, position = _flow_key(doc, index, start)
        key_path = path + (key,)
        if key in mapping:
            _fail(doc, index, start, "duplicate key %s (first defined at "
                  "column %d); remove one of them" % (quoted_value(key),
                                                      marks[key_path][1]))
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
        match = _RX.FLOW_PLAIN.match(line, start)
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
            _fail(doc, index, start, "key %s is read as %s, not a string; "
                  "quote it" % (quoted_value(text), _type_name(key)))
    colon = _RX.SPACES.match(line, end).end()
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
    return key, _RX.SPACES.match(line, after).end()


# -- the interface ---------------------------------------------------------------

def parse_yaml_document(text, source="<string>"):
    """Return (value, marks): the document as yaml.safe_load returns it, and a
    dict mapping each path tuple of mapping keys and sequence indexes (e.g.
    ("tags", 1)) to the 1-based (line, column) where that key or item starts;
    () maps to the start of the document's content. TEXT is str, or bytes
    in UTF-8 (an initial BOM is allowed). Raises ConfigError."""
    doc = _split_lines(_decode(text, source), source)
    return _parse_stream(doc), doc.marks


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


# ---- 3. durations and schedules --------------------------------------------------

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
        raise ConfigError("%s is not a number; %s" % (quoted_value(value), DURATION_HINT))
    if seconds < 0:
        raise ConfigError("%s is negative; %s" % (quoted_value(value), DURATION_HINT))
    if seconds > DURATION_MAX:
        raise ConfigError("%s is longer than ten years; use a shorter duration,"
                          " or 0 for none" % quoted_value(value))
    return seconds + 0.0  # -0.0 becomes 0.0


def _describe_value(value):
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "%s (a boolean)" % ("true" if value else "false")
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return quoted_value(value)


def _parse_duration_text(text):
    """"90", "90s", "1.5h", "10 m" -> seconds; anything else -> ConfigError."""
    body = text.strip()
    if not body:
        raise ConfigError("empty duration; %s" % DURATION_HINT)
    sign = body[0] == "-"
    digits_end = _scan_decimal(body, 1 if sign else 0)
    number, unit = body[:digits_end], body[digits_end:].strip()
    if number in ("", "-", ".", "-."):
        raise ConfigError("%s is not a duration; %s" % (quoted_value(text), DURATION_HINT))
    if unit and unit not in DURATION_UNITS:
        raise ConfigError("%s has an unknown unit %s; %s" % (quoted_value(text),
                                                             quoted_value(unit),
                                                             DURATION_HINT))
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
    raise ConfigError("%s is not a cron schedule; write five fields (%s), such"
                      " as '0 3 * * *'" % (quoted_value(word), CRON_FIELD_ORDER))


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
    if first_day <= 29:  # every month has a 29th in 2000
        return sorted(schedule.months)
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

DEFAULT_CONFIG_PATH = "/etc/process-control.yaml"
CONFIG_PATH_VARIABLE = "PROCESS_CONTROL_CONFIG"
FALLBACK_RUNNER_PATH = "/usr/bin/run-job"
JOB_NAME_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# A file name is at most 255 bytes: room for NAME-YYYYMMDD-HHMMSS-N.log.
JOB_NAME_MAX_LENGTH = 200
# The directories run-job writes into, with the mode they are created with:
# job output may be private (with `log_group`, 02750: the setgid bit gives
# every job's log directory and log file that group), run and state are read
# by --status for anyone.
WRITTEN_DIRECTORIES = (("output_directory", 0o750), ("run_directory", 0o755),
                       ("state_directory", 0o755))
LOG_GROUP_DIRECTORY_MODE = 0o2750
LOG_DIRECTORY_MODE = 0o750
LOG_FILE_MODE = 0o640


def located_error(message, source, marks, path):
    """A ConfigError at the nearest marked prefix of the key path `path`."""
    for length in range(len(path), 0, -1):
        mark = marks.get(tuple(path[:length]))
        if mark is not None:
            return ConfigError(message, source, mark[0], mark[1])
    return ConfigError(message, source)


class Origin(object):
    """Where a value was written: its file, the file's marks, its key path."""

    def __init__(self, source, marks, path):
        self.source = source
        self.marks = marks
        self.path = tuple(path)

    def error(self, message, *subpath):
        return located_error(message, self.source, self.marks, self.path + subpath)

    def position(self):
        mark = self.marks.get(self.path) or (None, None)
        return (self.source, mark[0], mark[1])


def yaml_type_name(value):
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a %s" % type(value).__name__


def type_error(key, expected, value, origin, *subpath):
    return origin.error("`%s` must be %s, not %s"
                        % (key, expected, yaml_type_name(value)), *subpath)


def unknown_key_error(key, known_keys, origin):
    import difflib  # only on this error path: keeps it off a plain run's start-up
    close = difflib.get_close_matches(key, known_keys, n=1)
    if close:
        hint = "did you mean `%s`?" % close[0]
    else:
        hint = "the keys are " + ", ".join(sorted(known_keys))
    return origin.error("unknown key `%s`; %s" % (key[:80], hint))


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Each parse_* function takes (value, key, origin), returns the value in the
# form the program uses, and raises ConfigError at the value's position.

def parse_text(value, key, origin):
    if not isinstance(value, str):
        raise type_error(key, "a string", value, origin)
    return value


def parse_optional_text(value, key, origin):
    return None if value is None else parse_text(value, key, origin)


def parse_flag(value, key, origin):
    if not isinstance(value, bool):
        raise type_error(key, "true or false", value, origin)
    return value


def parse_seconds(value, key, origin):
    """Seconds as a number, or a string with a unit: 90s, 10m, 2h, 1d."""
    if not is_number(value) and not isinstance(value, str):
        raise type_error(key, "seconds or a duration such as 90s, 10m, 2h or 1d",
                         value, origin)
    try:
        return parse_duration(value)
    except ConfigError as error:
        raise origin.error("`%s`: %s" % (key, error.message))


COUNT_MAX = 2 ** 31 - 1  # a count beyond what C programs (and mail tools) hold is a typo


def parse_count(value, key, origin, least=0):
    if not isinstance(value, int) or isinstance(value, bool) \
            or not least <= value <= COUNT_MAX:
        raise origin.error("`%s` must be a whole number from %d to %d"
                           % (key, least, COUNT_MAX))
    return value


def parse_positive_count(value, key, origin):
    return parse_count(value, key, origin, 1)


def parse_mapping(value, key, origin):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error(key, "a mapping", value, origin)
    return value


NUL_MESSAGE = ("`%s` holds a NUL character (\\0), which no program can receive; "
               "remove it")


def parse_logging(value, key, origin):
    """The original's logging.config.dictConfig mapping. Only its shape is
    checked here: applying it may open files or sockets, which --check must
    not do; a run applies it (run_events)."""
    value = parse_mapping(value, key, origin)
    if value is not None and (type(value.get("version")) is not int
                              or value["version"] != 1):
        raise origin.error("`%s` needs `version: 1`, as Python's logging.config."
                           "dictConfig requires" % key)
    nul_at = nul_path(value)
    if nul_at is not None:  # a file name or socket no system call would take
        raise origin.error(NUL_MESSAGE % ": ".join(str(part) for part in (key,) + nul_at),
                           *nul_at)
    return value


def nul_path(value, path=()):
    """The key path of the first text holding a NUL in VALUE, or None."""
    if isinstance(value, str):
        return path if "\0" in value else None
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        if isinstance(name, str) and "\0" in name:
            return path + (name,)
        found = nul_path(item, path + (name,))
        if found is not None:
            return found
    return None


_SHELL_BLANKS = " \t\r\n"  # shlex's whitespace; other characters are word characters


def split_command_line(line):
    """shlex.split(line), without shlex (whose `re` costs a plain run 5 ms)
    unless the line has a backslash or an unclosed quote: words split at
    shlex's blanks, a quoted part joined to its word as is, '' an empty word."""
    if "\\" in line:
        import shlex
        return shlex.split(line)
    words = []
    word = []
    in_word = False
    position = 0
    length = len(line)
    while position < length:
        char = line[position]
        if char in _SHELL_BLANKS:
            if in_word:
                words.append("".join(word))
                word = []
                in_word = False
        elif char == "'" or char == '"':
            end = line.find(char, position + 1)
            if end < 0:
                import shlex
                return shlex.split(line)  # raises its "No closing quotation"
            word.append(line[position + 1:end])
            in_word = True
            position = end
        else:
            word.append(char)
            in_word = True
        position += 1
    if in_word:
        words.append("".join(word))
    return words


# Linux's MAX_ARG_STRLEN: execve refuses a longer argument or environment
# string (E2BIG), so every run of the job would fail to start.
EXEC_STRING_MAX = 131072 - 1
EXEC_LIMIT_MESSAGE = ("%s is longer than %d bytes, which no program can receive (Linux "
                      "refuses it); pass it in a file instead" % ("%s", EXEC_STRING_MAX))


def exceeds_exec_limit(text):
    """Whether TEXT, encoded, is too long for one execve string; encoded only
    when it may be (a character is at most 4 bytes)."""
    return len(text) * 4 > EXEC_STRING_MAX \
        and len(text.encode("utf-8", "surrogateescape")) > EXEC_STRING_MAX


def string_items(value, key, origin, whole, each):
    """[(string, subpath)] of VALUE, a string or a list of strings; the
    subpath is the string's index in the list, () for a string alone.
    WHOLE names what VALUE must be, EACH what an item of its list must be."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise type_error(key, whole, value, origin)
    pairs = []
    for index, item in enumerate(items):
        subpath = () if items is not value else (index,)
        if not isinstance(item, str):
            raise type_error(key, each, item, origin, *subpath)
        pairs.append((item, subpath))
    return pairs


def parse_commands(value, key, origin):
    """A command line, or a list of them run in sequence: a list of argvs."""
    if value == []:
        raise type_error(key, "a command line or a list of them", value, origin)
    commands = []
    for line, subpath in string_items(value, key, origin, "a command line or a list of them",
                                      "a list of command lines (strings)"):
        try:
            argv = split_command_line(line)
        except ValueError as error:
            raise origin.error("`%s`: %s" % (key, str(error).lower()), *subpath)
        if not argv:
            raise origin.error("`%s` is an empty command line" % key, *subpath)
        if "\0" in line:
            raise origin.error(NUL_MESSAGE % key, *subpath)
        if any(exceeds_exec_limit(word) for word in argv):
            raise origin.error(EXEC_LIMIT_MESSAGE % ("`%s`: a word" % key), *subpath)
        commands.append(argv)
    return commands


# cron-generate writes a schedule twice on the job's line (its time fields and
# --scheduled 'EXPR'), beside a job name of up to 200 characters, and cron
# reads at most 998: a longer expression would take the whole crontab down.
SCHEDULE_TEXT_MAX = 300


def parse_schedule(value, key, origin):
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_error(key, "a cron expression in quotes", value, origin)
    try:
        schedule = Schedule(value)
    except ConfigError as error:
        raise origin.error("`%s`: %s" % (key, error.message))
    if len(schedule.expression) > SCHEDULE_TEXT_MAX:
        raise origin.error("`%s` is %d characters long, too long for its crontab line "
                           "(cron reads at most 998 characters); shorten it to %d, with "
                           "ranges (0-30) and steps (*/5)"
                           % (key, len(schedule.expression), SCHEDULE_TEXT_MAX))
    return schedule


def environment_text(value):
    """An environment value as the string a job sees: YAML's spelling."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_environment(value, key, origin):
    """A mapping of variable names to scalars; values become strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise type_error(key, "a mapping of variable names to values", value, origin)
    environment = {}
    for name, item in value.items():
        if not name or "=" in name or "\0" in name:
            raise origin.error("`%s`: %s is not a variable name" % (key, quoted_value(name)),
                               name)
        if isinstance(item, (list, dict)):
            raise type_error("%s: %s" % (key, name), "a string or a number",
                             item, origin, name)
        text = environment_text(item)
        if "\0" in text:
            raise origin.error(NUL_MESSAGE % ("%s: %s" % (key, name)), name)
        if exceeds_exec_limit("%s=%s" % (name, text)):
            raise origin.error(EXEC_LIMIT_MESSAGE % ("`%s: %s`" % (key, name)), name)
        environment[name] = text
    return environment


def parse_tags(value, key, origin):
    expected = "a string or a list of strings"
    tags = string_items(value, key, origin, expected, expected)
    for tag, subpath in tags:
        if not tag:
            raise type_error(key, expected, tag, origin, *subpath)
    return [tag for tag, _ in tags]


def parse_exit_codes(value, key, origin):
    codes = [value] if is_number(value) else value
    if not isinstance(codes, list) or not codes:
        raise type_error(key, "an exit code or a list of them", value, origin)
    for index, code in enumerate(codes):
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
            subpath = () if codes is not value else (index,)
            raise origin.error("`%s` must list exit codes from 0 to 255" % key, *subpath)
    return frozenset(codes)


# log_retention: what a job's log directory keeps after each run (prune_logs).
LOG_RETENTION_HINT = "a mapping such as {runs: 100, age: 30d}"


def parse_log_retention(value, key, origin):
    """A mapping of `runs` (the logs of that many latest runs are kept) and
    `age` (logs of runs started longer ago are deleted), either or both:
    (runs, age in seconds), None for a limit left out."""
    if not isinstance(value, dict):
        raise type_error(key, LOG_RETENTION_HINT, value, origin)
    limits = {"runs": None, "age": None}
    for name, item in value.items():
        item_origin = Origin(origin.source, origin.marks, origin.path + (name,))
        label = "%s: %s" % (key, name)
        if name == "runs":
            limits[name] = parse_positive_count(item, label, item_origin)
        elif name == "age":
            limits[name] = parse_seconds(item, label, item_origin)
            if not limits[name]:
                raise item_origin.error("`%s` must be longer than 0; leave it out for no "
                                        "age limit" % label)
        else:
            raise unknown_key_error(name, sorted(limits), item_origin)
    return limits["runs"], limits["age"]


# backoff: true waits 5 minutes after a failure, doubling up to 6 hours.
BACKOFF_DEFAULTS = (("initial", 300.0), ("max", 21600.0))


def parse_backoff(value, key, origin):
    """false, true (BACKOFF_DEFAULTS) or a mapping of some of them:
    (initial, max) in seconds, or None for no backoff."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise type_error(key, "true, false or a mapping such as {initial: 5m, max: 6h}",
                         value, origin)
    settings = dict(BACKOFF_DEFAULTS)
    for name, item in value.items():
        item_origin = Origin(origin.source, origin.marks, origin.path + (name,))
        if name not in settings:
            raise unknown_key_error(name, [known for known, _ in BACKOFF_DEFAULTS],
                                    item_origin)
        settings[name] = parse_seconds(item, "%s: %s" % (key, name), item_origin)
    if settings["initial"] <= 0:
        raise origin.error("`%s: initial` must be longer than 0; write `%s: false` for no "
                           "backoff" % (key, key), "initial")
    if settings["initial"] > settings["max"]:
        raise origin.error("`%s`: initial %gs is longer than max %gs; make max at least "
                           "initial" % (key, settings["initial"], settings["max"]), "max")
    return settings["initial"], settings["max"]
def utf8_bytes(text):
    """TEXT for exec (or a pattern): UTF-8 as in the job file, whatever the locale's
    encoding; an escaped lone surrogate passes rather than failing the run."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


# Output lines are matched as bytes (the output is kept as it was, invalid
# UTF-8 included), on their first LINE_MATCH_MAX bytes: a line seen in pieces
# is kept until its end up to that size. A chunk read (READ_SIZE, below) holds
# no longer line, so only such a kept line ever needs cutting.
LINE_MATCH_MAX = 65536


def line_safe_piece(source):
    """(PIECE, EXACT): SOURCE rewritten as a piece of an alternation searched
    over many lines at once (MULTILINE) that never matches, or looks at, a
    newline, or None when it cannot be (a newline in it, a flag other than a
    leading `(?i)`, a conditional group): then it is searched line by line.
    `\\s`, `\\D`, `\\W` and `[^...]` leave out the newline, `\\A` and `\\Z`
    become `^` and `$`. With EXACT, the piece finds in a line exactly what
    SOURCE does; else (a lookaround left out, a backreference that became
    "anything") it finds more, each line it finds to be checked by SOURCE."""
    ignore_case, source = _case_flag(source)
    pieces, exact, position = [], True, 0
    while position < len(source):
        piece, end, same = _line_safe_token(source, position)
        if piece is None or not same and source[end:end + 1] in _QUANTIFIERS:
            return None
        pieces.append(piece)
        exact, position = exact and same, end
    return "(?%s:%s)" % ("i" if ignore_case else "", "".join(pieces)), exact


_QUANTIFIERS = frozenset("*+?{")
_LINE_SAFE_ESCAPES = {"s": r"[ \t\r\f\v]", "D": r"[^\d\n]", "W": r"[^\w\n]", "A": "^", "Z": "$"}
_ANYTHING_ON_THE_LINE = r"[^\n]*"


def _line_safe_token(source, position):
    """(piece or None, end, exact) of the token of SOURCE at POSITION, as
    line_safe_piece rewrites it."""
    char, after = source[position], source[position + 1:position + 2]
    if char == "\\":
        if after in _LINE_SAFE_ESCAPES:
            return _LINE_SAFE_ESCAPES[after], position + 2, True
        if after in ("b", "B", "d", "w", "S", "t") or after >= " " and not after.isalnum():
            return source[position:position + 2], position + 2, True
        if after.isdigit() and after != "0":  # a backreference
            end = position + (3 if source[position + 2:position + 3].isdigit() else 2)
            return _ANYTHING_ON_THE_LINE, end, False
        return None, position, False
    if char == "[":
        return _line_safe_class(source, position)
    if char == "(" and after == "?":
        return _line_safe_group(source, position)
    if char == "\n":
        return None, position, False
    return char, position + 1, True


def _line_safe_class(source, position):
    """A class `[...]` at POSITION, as _line_safe_token: one that is negated
    leaves out the newline; of the others, escapes other than \\d \\w \\S \\s
    and punctuation are refused (a range like \t-\r holds a newline)."""
    negated = source[position + 1:position + 2] == "^"
    index = position + (2 if negated else 1)
    pieces = []
    while index < len(source) and (source[index] != "]" or index == position + 1 + negated):
        char, after = source[index], source[index + 1:index + 2]
        if char == "\\" and not negated:
            if after == "s":
                pieces.append(" \\t\\r\\f\\v")
            elif after in ("d", "w", "S") or after >= " " and not after.isalnum():
                pieces.append(char + after)
            else:
                return None, position, False
        elif char == "\n":
            return None, position, False
        else:
            pieces.append(source[index:index + (2 if char == "\\" else 1)])
        index += 2 if char == "\\" else 1
    if index >= len(source):
        return None, position, False
    body = "".join(pieces)
    return ("[^%s\\n]" if negated else "[%s]") % body, index + 1, True


def _line_safe_group(source, position):
    """A `(?` group at POSITION, as _line_safe_token: `(?:` and named groups
    as groups, comments and lookarounds left out (a lookaround only ever
    narrows a match), a named backreference as anything on the line."""
    kind = source[position + 2:position + 4]
    if kind[:1] == ":":
        return "(?:", position + 3, True
    if kind == "P<":
        name_end = source.find(">", position)
        if name_end < 0:
            return None, position, False
        return "(?:", name_end + 1, True  # two patterns may use one name
    end = _group_end(source, position)
    if end is None:
        return None, position, False
    if kind[:1] == "#":
        return "", end, True
    if kind == "P=":
        return _ANYTHING_ON_THE_LINE, end, False
    if kind[:1] in ("=", "!") or kind in ("<=", "<!"):
        return "", end, False
    return None, position, False


def _group_end(source, position):
    """The index after the `)` closing the group that opens at POSITION, or None."""
    depth, index = 0, position
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 1
        elif char == "[":
            end = _line_safe_class(source, index)[1]
            if end == index:
                return None
            index = end - 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def required_texts(source):
    """Texts of which a line must hold one for SOURCE (a pattern without a
    leading `(?i)`) to be found in it, or None: the longest run of plain
    characters outside groups that nothing makes optional, else the
    alternatives of such a group when each is plain text. A pattern that is
    searched from these (with bytes.find) rather than by itself (which tries
    every position when it starts with a class) is much faster."""
    if "|" in _outside_groups(source):
        return None
    runs, run, position = [], "", 0
    while position < len(source):
        literal, alternatives, end = _plain_token(source, position)
        if end is None:
            return None
        quantified, end = _quantifier(source, end)
        if literal is not None and quantified != "optional":
            run += literal
        elif run:
            runs.append((run,))
            run = ""
        if alternatives and quantified != "optional":
            runs.append(alternatives)
        if quantified == "repeated" and run:  # what follows is not next to it
            runs.append((run,))
            run = ""
        position = end
    runs.append((run,))
    best = max(runs, key=lambda texts: min(len(text) for text in texts))
    return best if min(len(text) for text in best) >= 2 else None


def _outside_groups(source):
    """SOURCE without its groups, classes and escapes."""
    kept, position = [], 0
    while position < len(source):
        char = source[position]
        if char == "(":
            position = _group_end(source, position) or len(source)
            continue
        if char == "[":
            end = _line_safe_class(source, position)[1]
            position = end if end > position else len(source)
            continue
        if char != "\\":
            kept.append(char)
        position += 2 if char == "\\" else 1
    return "".join(kept)


def _plain_token(source, position):
    """(the plain character or None, the plain alternatives of a group or
    None, the end, None if not understood) of the token at POSITION."""
    char, after = source[position], source[position + 1:position + 2]
    if char == "\\":
        plain = after >= " " and not after.isalnum()
        return (after if plain else None), None, position + 2
    if char == "[":
        end = _line_safe_class(source, position)[1]
        return None, None, end if end > position else None
    if char == "(":
        end = _group_end(source, position)
        if end is None:
            return None, None, None
        inside = source[position + (3 if after == "?" else 1):end - 1]
        if after == "?" and source[position + 2:position + 3] != ":" \
                or _REGEX_SPECIAL.difference("|").intersection(inside):
            return None, None, end
        return None, tuple(inside.split("|")), end
    if char in _REGEX_SPECIAL:
        return None, None, position + 1
    return char, None, position + 1


def _quantifier(source, position):
    """(what a quantifier at POSITION does to the token before it: None,
    "optional" or "repeated", the end of the quantifier)."""
    char = source[position:position + 1]
    if char == "{":
        end = source.find("}", position)
        if end < 0:
            return None, position
        minimum = source[position + 1:end].split(",")[0]
        kind = "optional" if minimum.lstrip("0") == "" else "repeated"
        position = end + 1
    elif char in ("?", "*", "+"):
        kind = "repeated" if char == "+" else "optional"
        position += 1
    else:
        return None, position
    if source[position:position + 1] in ("?", "+"):  # lazy or possessive
        position += 1
    return kind, position


class LinePatterns(object):
    """The regular expressions of `stderr_ignore` or `fail_on_output`, as
    written (SOURCES) and compiled for bytes (COMPILED). When every one is
    line-safe, PIECES are what line_safe_piece made of them, and chunks are
    searched many lines at once: by bytes.find for a pattern that is plain
    text or holds required_texts (in a lowered copy for `(?i)`), by its
    piece (which finds its literal prefix fast) for another; an alternation
    would try every position, several times slower. A line found by a text
    or by a piece that is not exact is checked by the patterns themselves.
    Else PIECES is None and lines are searched one by one."""

    def __init__(self, sources, compiled, pieces=None):
        self.sources = sources
        self.compiled = compiled
        self.finders = None  # (texts or None, in lowered text, pattern) each
        self.matching_lines = None  # matches the lines that each hold a match
        self.exact = pieces is not None and all(exact for _, exact in pieces)
        self.prefixes = _plain_prefixes(sources)
        if pieces is not None:
            self.finders = [_finder(source, piece) for source, piece in zip(sources, pieces)]
            self.matching_lines = _compile_bytes(_matching_lines(sources, pieces))

    def line_match(self, line):
        """The source of the first pattern found in LINE (no newline), or None."""
        for source, pattern in zip(self.sources, self.compiled):
            if pattern.search(line):
                return source
        return None

    def first_match(self, data, start, stop):
        """(source, line) of the first line of DATA[START:STOP] (whole lines,
        each ending in a newline) in which a pattern is found, or None."""
        if self.finders is None:
            return self._first_line(data, start, stop, True)
        while start < stop:
            at = self._first_found(data, start, stop)
            if at is None:
                return None
            line_start = data.rfind(b"\n", start, at) + 1 or start
            line_end = data.find(b"\n", at)
            source = self.line_match(data[line_start:line_end])
            if source is not None:
                return source, data[line_start:line_end]
            start = line_end + 1  # found by a piece that is not exact
        return None

    def _first_found(self, data, start, stop):
        """Where the first piece found in DATA[START:STOP] starts, or None."""
        # Each search ends where the best so far starts: a match it misses
        # would only be on the same line.
        best = stop
        lowered = None
        for texts, in_lowered, pattern in self.finders:
            if texts is None:
                found = pattern.search(data, start, best)
                if found is not None and found.start() < best:  # `$` at STOP: no line
                    best = found.start()
                continue
            haystack = data
            if in_lowered:
                lowered = haystack = data.lower() if lowered is None else lowered
            for text in texts:
                at = haystack.find(text, start, best)
                if at >= 0:
                    best = at
        return None if best == stop else best

    def has_unmatched_line(self, data, start, stop):
        """Whether a line of DATA[START:STOP] (as for first_match) holds no match."""
        if self.prefixes is not None and self._each_starts_with_a_prefix(data, start, stop):
            return False
        if self.matching_lines is None:
            return self._first_line(data, start, stop, False) is not None
        if self.matching_lines.match(data, start, stop).end() < stop:
            return True  # a line no piece finds anything in
        return not self.exact and self._first_line(data, start, stop, False) is not None

    def _each_starts_with_a_prefix(self, data, start, stop):
        """Whether each line of DATA[START:STOP] starts with one of PREFIXES
        (the usual stderr, every line a warning `stderr_ignore` ignores),
        counted by bytes.count, several times faster than any pattern. A
        line starts with at most one: none is another's start."""
        found = sum(data.startswith(prefix, start) for prefix in self.prefixes)
        found += sum(data.count(b"\n" + prefix, start, stop - 1) for prefix in self.prefixes)
        return found == data.count(b"\n", start, stop)

    def _first_line(self, data, start, stop, matching):
        """Line by line: (source, line) of the first line in which a pattern
        is found (MATCHING) or none is, or None."""
        for line in data[start:stop - 1].split(b"\n"):
            source = self.line_match(line)
            if (source is not None) == matching:
                return source, line
        return None


def _plain_prefixes(sources):
    """The texts of SOURCES that are all `^` and plain text, as bytes, or
    None when one is not or starts another (see _each_starts_with_a_prefix)."""
    prefixes = []
    for source in sources:
        text = source[1:]
        if not source.startswith("^") or not text or "\n" in text \
                or not _REGEX_SPECIAL.isdisjoint(text):
            continue
        prefixes.append(utf8_bytes(text))
    for prefix in prefixes:
        if any(other != prefix and other.startswith(prefix) for other in prefixes) \
                or prefixes.count(prefix) > 1:
            return None
    return prefixes or None


def _finder(source, piece):
    """How LinePatterns searches a chunk for line-safe SOURCE, PIECE being
    what line_safe_piece made of it: (texts, in lowered text, None) when a
    line it is found in must hold one of the texts (the whole pattern, when
    it is plain text), else (None, False, the piece compiled)."""
    lowered, text = _case_flag(source)
    texts = (text,) if _REGEX_SPECIAL.isdisjoint(text) else required_texts(text)
    if texts is None:
        return None, False, _compile_bytes(utf8_bytes(piece[0]))
    texts = tuple(utf8_bytes(each) for each in texts)
    return (tuple(each.lower() for each in texts) if lowered else texts), lowered, None


def _matching_lines(sources, pieces):
    """A pattern matching the lines that each hold a match of one of the
    line-safe SOURCES (as PIECES): those starting with ^ (and no `|`) are
    tried at the line's start only, before the others at every position."""
    anchored, anywhere = [], []
    for source, (piece, _) in zip(sources, pieces):
        body = _case_flag(source)[1]
        (anchored if body.startswith("^") and "|" not in body else anywhere).append(piece)
    choices = []
    if anchored:
        choices.append("|".join(anchored))
    if anywhere:
        choices.append("[^\n]*?(?:%s)" % "|".join(anywhere))
    return utf8_bytes("(?:(?:%s)[^\n]*\n)*" % "|".join(choices))


def _case_flag(source):
    """(whether SOURCE starts with `(?i)`, SOURCE without it)."""
    if source.startswith("(?i)"):
        return True, source[4:]
    return False, source


def _compile_bytes(pattern):
    import re  # lazily: only jobs with patterns need it
    return re.compile(pattern, re.MULTILINE)


def parse_patterns(value, key, origin):
    """A regular expression or a list of them (Python's syntax) as
    LinePatterns; None for none."""
    if value is None or value == []:
        return None
    sources, compiled = [], []
    for source, subpath in string_items(value, key, origin,
                                        "a regular expression or a list of them",
                                        "a list of regular expressions (strings)"):
        sources.append(source)
        compiled.append(_compile_pattern(source, key, origin, subpath))
    pieces = [line_safe_piece(source) for source in sources]
    return LinePatterns(sources, compiled, None if None in pieces else pieces)


def _compile_pattern(source, key, origin, subpath):
    import re  # lazily: only jobs with patterns need it
    try:
        return _compile_bytes(utf8_bytes(source))
    except (re.error, OverflowError, RecursionError) as error:
        where = ""
        if getattr(error, "pos", None) is not None:
            where = " at character %d" % (error.pos + 1)
        raise origin.error("`%s`: %s is not a regular expression: %s%s; see Python's re "
                           "module for the syntax" % (key, quoted_value(source),
                                                      getattr(error, "msg", error), where),
                           *subpath)
OVERLAP_POLICIES = ("skip", "wait", "replace")


def parse_overlap(value, key, origin):
    if not isinstance(value, str) or value not in OVERLAP_POLICIES:
        raise origin.error("`%s` must be skip, wait or replace, not %s"
                           % (key, quoted_value(value)))
    return value


_LETTERS_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


# A mail address as SMTP's MAIL FROM and RCPT TO take it: local@domain in
# ASCII (RFC 5321's dot-atom and domain forms, no quoted local parts), with
# an optional display name before it, `Ops team <ops@example.com>`, which
# the original's smtplib accepted too. No commas: several go in a list.
ADDRESS_LOCAL_CHARACTERS = frozenset(_LETTERS_DIGITS + "!#$%&'*+-/=?^_`{|}~.")
ADDRESS_DOMAIN_CHARACTERS = frozenset(_LETTERS_DIGITS + "-.")
DISPLAY_NAME_FORBIDDEN = frozenset('<>"(),;:@[]\\')
ADDRESS_MAX_LENGTH = 254  # RFC 5321's path limit less its angle brackets


def address_problem(address):
    """Why ADDRESS (local@domain) is not one SMTP takes, or None."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(address) > ADDRESS_MAX_LENGTH:
        return "is not a mail address such as ops@example.com"
    if not set(local) <= ADDRESS_LOCAL_CHARACTERS or not set(domain) <= \
            ADDRESS_DOMAIN_CHARACTERS or "" in local.split(".") or "" in domain.split("."):
        return ("is not a plain ASCII mail address such as ops@example.com (no blanks, "
                "quotes or commas; several addresses go in a list)")
    return None


def parse_address(value, key, origin, *subpath):
    """`ADDRESS` or `NAME <ADDRESS>` as (display name or "", address)."""
    if not isinstance(value, str):
        raise type_error(key, "a mail address such as ops@example.com", value, origin,
                         *subpath)
    name, address = "", value.strip()
    if address.endswith(">") and "<" in address:
        name, _, address = address[:-1].rpartition("<")
        name = name.strip()
        if not name.isprintable() or set(name) & DISPLAY_NAME_FORBIDDEN:
            raise origin.error("`%s`: the name in %s holds a quote, a bracket, one of , ; : @ "
                               "or a control character; write letters, digits, blanks and "
                               ". - ' only" % (key, quoted_value(value)), *subpath)
    problem = address_problem(address)
    if problem is not None:
        raise origin.error("`%s`: %s %s" % (key, quoted_value(value), problem), *subpath)
    return name, address


class Failmail(object):
    """Where a job's failure and recovery mails go: FROM and each of TO a
    (display name, address) pair."""

    def __init__(self, sender, recipients):
        self.sender = sender
        self.recipients = recipients


FAILMAIL_KEYS = ("to_address", "from_address")


def parse_failmail(value, key, origin):
    """{to_address, from_address} as a Failmail; None (left out, or empty to
    cancel a default_job_config's) for no mail. to_address may be a list."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error(key, "a mapping {to_address: ..., from_address: ...}", value, origin)
    for name in value:
        if name not in FAILMAIL_KEYS:
            raise unknown_key_error(name, FAILMAIL_KEYS,
                                    Origin(origin.source, origin.marks, origin.path + (name,)))
    for name in FAILMAIL_KEYS:
        if name not in value:
            raise origin.error("`%s` needs both `to_address` and `from_address`; add `%s`, "
                               "or leave `%s` out for no mail" % (key, name, key))
    sender = parse_address(value["from_address"], key + ": from_address", origin,
                           "from_address")
    recipients = value["to_address"]
    if recipients == []:
        raise origin.error("`%s: to_address` is an empty list; name at least one address"
                           % key, "to_address")
    if not isinstance(recipients, list):
        return Failmail(sender, [parse_address(recipients, key + ": to_address", origin,
                                               "to_address")])
    return Failmail(sender, [parse_address(item, key + ": to_address", origin,
                                           "to_address", index)
                             for index, item in enumerate(recipients)])


class Key(object):
    """One key of a job file or of the global config: its name as written,
    its parse function (value, key, origin), the attribute of Job or
    GlobalConfig it sets, the program's default (a function: computed as each
    config is made), the default as README.md's table writes it, and a short
    meaning. A default is shared by every Job or GlobalConfig: never changed
    in place. A new key is one Key in JOB_KEYS or GLOBAL_KEYS (and its parse
    function); test_packaging checks that README.md and
    process-control.yaml(5) document exactly these keys and defaults."""

    def __init__(self, name, parse, attribute, default, documented, meaning):
        self.name = name
        self.parse = parse
        self.attribute = attribute
        self.default = default
        self.documented = documented
        self.meaning = meaning

    def default_value(self):
        return self.default() if callable(self.default) else self.default


def find_key(keys, name, origin):
    """The Key of KEYS written NAME, or the error naming the nearest one."""
    for key in keys:
        if key.name == name:
            return key
    raise unknown_key_error(name, [key.name for key in keys], origin)


JOB_KEYS = (
    Key("name", parse_text, "verbose_name", None, "the file's NAME", "the verbose name"),
    Key("description", parse_optional_text, "description", None, "none",
        "shown by --status"),
    Key("command", parse_commands, "commands", (), "required",
        "the command lines run in sequence"),
    Key("slow_start_command", parse_commands, "slow_start_commands", None, "none",
        "run instead of `command` by --slow-start"),
    Key("schedule", parse_schedule, "schedule", None, "none",
        "a cron expression, for cron-generate"),
    Key("catch_up", parse_flag, "catch_up", False, "`false`",
        "run once at boot when a scheduled time passed while down"),
    Key("disabled", parse_flag, "disabled", False, "`false`",
        "left out of the crontab"),
    Key("timeout", parse_seconds, "timeout", 600.0, "`10m`",
        "the deadline of the whole job; 0: none"),
    Key("kill_grace", parse_seconds, "kill_grace", 10.0, "`10s`",
        "from SIGTERM to SIGKILL"),
    Key("halt_after_failures", parse_positive_count, "halt_after_failures", None, "none",
        "halt after this many consecutive failures"),
    Key("halt_on_exit_codes", parse_exit_codes, "halt_on_exit_codes", frozenset(), "none",
        "exit codes that halt the job at once"),
    Key("backoff", parse_backoff, "backoff", None, "`false`",
        "skip runs for a doubling time after each failure"),
    Key("environment", parse_environment, "environment", {}, "none",
        "variables added to the environment"),
    Key("tag", parse_tags, "tags", (), "none", "one tag or a list (or `tags`)"),
    Key("tags", parse_tags, "tags", (), "none", "a list of tags (or `tag`)"),
    Key("allow_overtime", parse_flag, "allow_overtime", False, "`false`",
        "a run finding the previous one still going exits 0"),
    Key("overlap", parse_overlap, "overlap", "skip", "`skip`",
        "a run finding the previous one still going: skip, wait or replace"),
    Key("overlap_wait", parse_seconds, "overlap_wait", None, "the job's `timeout`",
        "how long `overlap: wait` waits; 0: no limit"),
    Key("fail_on_stderr", parse_flag, "fail_on_stderr", False, "`false`",
        "output on stderr fails the run"),
    Key("success_exit_codes", parse_exit_codes, "success_exit_codes", frozenset((0,)),
        "`[0]`", "the exit codes that count as success"),
    Key("retries", parse_count, "retries", 0, "`0`",
        "a failed run tries its commands again this many times"),
    Key("retry_delay", parse_seconds, "retry_delay", 10.0, "`10s`",
        "the wait before the first retry, doubled before each next one"),
    Key("log_retention", parse_log_retention, "log_retention", (1000, 30 * 86400.0),
        "`{runs: 1000, age: 30d}`",
        "the logs kept after each run: of the latest `runs` runs, none older than `age`"),
    Key("stderr_ignore", parse_patterns, "stderr_ignore", None, "none",
        "stderr lines matching one of these patterns do not count for fail_on_stderr"),
    Key("fail_on_output", parse_patterns, "fail_on_output", None, "none",
        "an output line matching one of these patterns fails the run"),
    Key("on_failure", parse_commands, "on_failure", None, "none",
        "run after a failed or timed-out run"),
    Key("on_recovery", parse_commands, "on_recovery", None, "none",
        "run after the first success following failures"),
    Key("on_success", parse_commands, "on_success", None, "none",
        "run after every successful run"),
    Key("hook_timeout", parse_seconds, "hook_timeout", 60.0, "`60s`",
        "the deadline of each hook; 0: none"),
    Key("failmail", parse_failmail, "failmail", None, "none",
        "{to_address, from_address}: mail failed runs and the recovery"),
    Key("failure_threshold_for_mail", parse_count, "failure_threshold_for_mail", 1,
        "`1`", "mail from this many consecutive failures on (0 as 1)"),
    # What run-job --health (a monitoring check) tolerates.
    Key("alert_after_failures", parse_positive_count, "alert_after_failures", 1, "`1`",
        "--health is critical from this many consecutive failures"),
    Key("overdue_grace", parse_seconds, "overdue_grace", 300.0, "`5m`",
        "--health: how late a scheduled start may be before it counts as missed"),
    Key("max_success_age", parse_seconds, "max_success_age", None, "none",
        "--health is critical when the last success is older; 0: none"),
)


# What cron reads as a user name in /etc/cron.d (and useradd's rule, less the
# trailing $ of Samba machine accounts): a name with anything else would make
# every crontab line of the service user a line cron rejects.
USER_NAME_FIRST = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
USER_NAME_CHARACTERS = USER_NAME_FIRST | frozenset(".-")
USER_NAME_MAX_LENGTH = 32


def is_user_name(name):
    return 0 < len(name) <= USER_NAME_MAX_LENGTH and name[0] in USER_NAME_FIRST \
        and set(name) <= USER_NAME_CHARACTERS


def check_one_line(value, key, origin, what):
    """A path or name from a config holds no NUL (no system call takes one)
    and no line break or other control character: each would split the
    crontab line it reaches (a cron entry of its own) or a message."""
    if value.isprintable():
        return
    if "\0" in value:
        raise origin.error("`%s` holds a NUL character (\\0), which no system call "
                           "takes; remove it" % key)
    for char in value:
        if ord(char) < 0x20 or 0x7f <= ord(char) <= 0x9f or char in "\u2028\u2029":
            raise origin.error("`%s`: %s %s holds a line break or control character "
                               "(%s); cron reads one line per entry, so use %s without "
                               "it" % (key, what, quoted_value(value), ascii(char)[1:-1],
                                       what))


def parse_user(value, key, origin):
    if not isinstance(value, str) or not value:
        raise type_error(key, "a user name", value, origin)
    check_one_line(value, key, origin, "the user name")
    if not is_user_name(value):
        raise origin.error("`%s`: %s is not a user name cron can read; set `%s` to a "
                           "plain user name (letters, digits, _ . -, at most %d)"
                           % (key, quoted_value(value), key, USER_NAME_MAX_LENGTH))
    return value


def parse_path(value, key, origin):
    """A path; a relative one resolves against the config file's directory."""
    if not isinstance(value, str) or not value:
        raise type_error(key, "a path", value, origin)
    base = os.path.dirname(os.path.abspath(origin.source))
    path = os.path.normpath(os.path.join(base, value))
    check_one_line(path, key, origin, "the path")  # the config's own directory too
    check_path_length(path, key, origin)
    return path


# Beside a configured directory go a job's name (200) and its file names;
# Linux takes 4096 bytes in all, a filesystem 255 in one component.
CONFIG_PATH_MAX = 1024
NAME_MAX = 255


def check_path_length(path, key, origin):
    """A path the system refuses (ENAMETOOLONG) only when a run uses it: as
    long as a few characters, refused as the config loads."""
    if len(path) > CONFIG_PATH_MAX // 4 and len(path.encode("utf-8", "surrogateescape")) \
            > CONFIG_PATH_MAX:
        raise origin.error("`%s`: the path %s is longer than %d bytes; use a shorter one"
                           % (key, printable(path, QUOTED_VALUE_LIMIT), CONFIG_PATH_MAX))
    for part in path.split(os.sep):
        if len(part) > NAME_MAX // 4 and len(part.encode("utf-8", "surrogateescape")) \
                > NAME_MAX:
            raise origin.error("`%s`: the path %s has a name longer than %d bytes, which no "
                               "filesystem takes; use a shorter one"
                               % (key, printable(path, QUOTED_VALUE_LIMIT), NAME_MAX))


SOCKET_PATH_MAX = 107  # bytes of a Unix socket's address (sun_path), less its NUL


def parse_syslog_socket(value, key, origin):
    """The Unix datagram socket of syslog, or null: no syslog."""
    if value is None:
        return None
    path = parse_path(value, key, origin)
    if len(path.encode("utf-8", "surrogateescape")) > SOCKET_PATH_MAX:
        raise origin.error("`%s`: the path %s is longer than the %d bytes a Unix socket's "
                           "address takes; use a shorter one (a symlink to it)"
                           % (key, printable(path, QUOTED_PATH_LIMIT), SOCKET_PATH_MAX))
    return path


# What cron-generate writes from the global config must be what cron reads:
# checked here, as the config loads, so that run-job --check, a run and
# cron-generate agree on what is valid (cron_generate.py renders it).
CRON_LINE_MAX = 998  # Debian cron rejects or truncates a longer line
RUNNER_PATH_CHARACTERS = frozenset(_LETTERS_DIGITS + "_./+-")
CRON_FILE_NAME_CHARACTERS = frozenset(_LETTERS_DIGITS + "_-")
MAILTO_CHARACTERS = frozenset(_LETTERS_DIGITS + "_.+@,-")
CRON_VARIABLE_FIRST = frozenset(_LETTERS_DIGITS[:52] + "_")
CRON_VARIABLE_CHARACTERS = frozenset(_LETTERS_DIGITS + "_")


def runner_path_problem(path):
    """Why cron's sh would not run PATH as written, or None."""
    if len(path) > 1 and path.startswith("/") and set(path) <= RUNNER_PATH_CHARACTERS:
        return None
    return ("runner_path %s must be an absolute path of letters, digits and _ . / + - "
            "only, as cron and sh would read anything else differently" % quoted_value(path))


def parse_runner_path(value, key, origin):
    path = parse_path(value, key, origin)
    problem = runner_path_problem(path)
    if problem is not None:
        raise origin.error(problem)
    return path


def parse_crontab_path(value, key, origin):
    if value == "console":  # the original's magic value: print the crontab
        return value
    path = parse_path(value, key, origin)
    if not set(os.path.basename(path)) <= CRON_FILE_NAME_CHARACTERS:
        raise origin.error("output_crontab %s: cron ignores files whose names hold "
                           "anything but letters, digits, _ and -; rename it" % path)
    return path


def parse_mailto(value, key, origin):
    value = parse_optional_text(value, key, origin)
    if value is not None and not set(value) <= MAILTO_CHARACTERS:
        raise origin.error("mailto %s: write addresses separated by commas, without "
                           "blanks, or '' to send no mail" % quoted_value(value))
    if value is not None and len("MAILTO=" + value) > CRON_LINE_MAX:
        raise origin.error("mailto is %d characters long; cron reads lines of at most %d, "
                           "so use a mail alias" % (len(value), CRON_LINE_MAX))
    return value


HOST_NAME_CHARACTERS = frozenset(_LETTERS_DIGITS + "-._")
IPV6_CHARACTERS = frozenset("0123456789abcdefABCDEF:.")
DIGITS = frozenset("0123456789")


def split_host_port(value):
    """(host, port as written) of HOST, HOST:PORT, [IPV6] or [IPV6]:PORT,
    the port "25" when left out; None for anything else."""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not set(host) <= IPV6_CHARACTERS or rest[:1] not in ("", ":"):
            return None
        return host, rest[1:] if rest else "25"
    host, colon, port = value.partition(":")
    if not set(host) <= HOST_NAME_CHARACTERS:
        return None
    return host, port if colon else "25"


def parse_smtp_host(value, key, origin):
    """HOST or HOST:PORT as (host, port)."""
    if not isinstance(value, str) or not value:
        raise type_error(key, "HOST or HOST:PORT", value, origin)
    parts = split_host_port(value)
    if parts is None or not parts[0] or not parts[1] or not set(parts[1]) <= _ASCII_DIGITS \
            or not 0 < int(parts[1]) < 65536:
        raise origin.error("`%s`: %s is not HOST or HOST:PORT, such as localhost:25, "
                           "mail.example.com or [::1]:587" % (key, quoted_value(value)))
    return parts[0], int(parts[1])


def cron_setting_problem(name, value):
    """Why cron cannot carry the setting NAME=VALUE (VALUE a string) as
    written, or None; cron_generate.environment_value quotes what it can."""
    if not name or name[0] not in CRON_VARIABLE_FIRST \
            or not set(name) <= CRON_VARIABLE_CHARACTERS:
        return ("cron_environment: %s is not a variable name cron reads; use letters, "
                "digits and _" % quoted_value(name))
    if "\0" in value or len(("x%sx" % value).splitlines()) > 1:
        return ("cron_environment: %s holds a line break; cron reads one line per "
                "setting" % name)
    needs_quotes = value == "" or value != value.strip() or value[:1] in "'\"" \
        or value[-1:] in "'\""
    if needs_quotes and '"' in value:
        return ("cron_environment: %s needs quoting for cron but holds a double quote; "
                "simplify the value" % name)
    if len(name) + len(value) + 3 > CRON_LINE_MAX:  # NAME="VALUE"
        return ("cron_environment: %s is too long for its crontab line (cron reads at most "
                "%d characters); shorten it" % (quoted_value(name), CRON_LINE_MAX))
    return None


CRON_TEMPLATE_FIELDS = ("source", "schedule", "user", "command")


def parse_cron_template(value, key, origin):
    """cron-generate's line template: str.format placeholders of
    CRON_TEMPLATE_FIELDS only, without format specs or conversions."""
    value = parse_optional_text(value, key, origin)
    if value is None:
        return None
    if _plain_template_fields(value) is not None:
        check_one_entry_line(value, origin)
        return value
    # Something odd: string.Formatter (which imports re, too dear for every run
    # of a site with a template) says what, as str.format would.
    import string
    try:
        fields = [field for _, field, spec, conversion in string.Formatter().parse(value)
                  if field is not None and (field not in CRON_TEMPLATE_FIELDS
                                            or spec or conversion)]
    except ValueError as error:  # a lone { or }
        raise origin.error("cron_template: %s; write {{ and }} for a literal brace"
                           % str(error).lower())
    if fields:
        raise origin.error("cron_template: unknown placeholder {%s}; use {source}, "
                           "{schedule}, {user} and {command} only"
                           % printable(fields[0], QUOTED_VALUE_LIMIT))
    check_one_entry_line(value, origin)
    return value


def _plain_template_fields(template):
    """The placeholders of TEMPLATE when each is one of CRON_TEMPLATE_FIELDS
    and every other brace is doubled ({{ or }}), else None."""
    fields, position = [], 0
    while position < len(template):
        char = template[position]
        if char in "{}" and template[position + 1:position + 2] == char:
            position += 2
            continue
        if char == "}":
            return None
        if char == "{":
            end = template.find("}", position)
            if end < 0 or template[position + 1:end] not in CRON_TEMPLATE_FIELDS:
                return None
            fields.append(template[position + 1:end])
            position = end
        position += 1
    return fields


def check_one_entry_line(template, origin):
    """A job's lines are its one cron entry, the line holding {command}, and
    comments: any other line would be an entry (or a setting) of its own."""
    lines = [line for line in template.splitlines() if line.strip(" \t")]
    entries = [line for line in lines if not line.lstrip(" \t").startswith("#")]
    if len(entries) != 1 or "{command}" not in entries[0]:
        raise origin.error("cron_template: %d lines besides comments, and %d with {command}; "
                           "a job's lines must be one entry holding {command} and comments "
                           "(lines starting with #)" % (len(entries),
                                                        template.count("{command}")))


def parse_cron_environment(value, key, origin):
    environment = parse_environment(value, key, origin)
    for name, text in environment.items():
        problem = cron_setting_problem(name, text)
        if problem is not None:
            raise origin.error(problem, name)
    return environment


def parse_default_job_config(value, key, origin):
    """Job keys applied before each job file; validated here so that a
    mistake shows at its place in the global config."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise type_error(key, "a mapping of job keys", value, origin)
    for job_key, item in value.items():
        item_origin = Origin(origin.source, origin.marks, origin.path + (job_key,))
        find_key(JOB_KEYS, job_key, item_origin).parse(item, job_key, item_origin)
    if "tag" in value and "tags" in value:
        raise origin.error("use `tag` or `tags`, not both", "tags")
    return value


def parse_log_group(value, key, origin):
    """The group that may read the logs: it must exist on this machine."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise type_error(key, "a group name", value, origin)
    check_one_line(value, key, origin, "the group name")
    import grp  # only with log_group: a plain run without it needs none
    try:
        grp.getgrnam(value)
    except KeyError:
        raise origin.error("`%s`: there is no group %s; create it (groupadd %s) or "
                           "set `%s` to an existing group"
                           % (key, quoted_value(value), printable(value, QUOTED_VALUE_LIMIT),
                              key))
    return value


def default_runner_path():
    """The run-job beside this script, else the installed one."""
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run-job")
    return beside if os.path.isfile(beside) else FALLBACK_RUNNER_PATH


GLOBAL_KEYS = (
    Key("user", parse_user, "user", "process-control", "`process-control`",
        "the service user every job runs as"),
    Key("job_directory", parse_path, "job_directory", "/var/lib/process-control",
        "`/var/lib/process-control`", "the job files"),
    Key("output_directory", parse_path, "output_directory", "/var/log/process-control",
        "`/var/log/process-control`", "one log file per run"),
    Key("log_group", parse_log_group, "log_group", None, "none",
        "the group that may read the logs"),
    Key("run_directory", parse_path, "run_directory",
        "/var/lib/process-control-state/locks", "`/var/lib/process-control-state/locks`",
        "the lock files"),
    Key("state_directory", parse_path, "state_directory", "/var/lib/process-control-state",
        "`/var/lib/process-control-state`", "each job's last outcome and history"),
    Key("runner_path", parse_runner_path, "runner_path", default_runner_path,
        "the `run-job` beside run_job.py, else `/usr/bin/run-job`",
        "what the crontab lines call"),
    Key("cron_template", parse_cron_template, "cron_template", None,
        '`"# Generated from {source}\\n{schedule} {user} {command}\\n"`',
        "cron-generate's lines of a job"),
    Key("output_crontab", parse_crontab_path, "output_crontab",
        "/etc/cron.d/process-control", "`/etc/cron.d/process-control`",
        "where cron-generate writes"),
    Key("default_job_config", parse_default_job_config, "default_job_config", {}, "none",
        "job keys applied before every job file"),
    Key("logging", parse_logging, "logging", None, "none",
        "a logging.config.dictConfig mapping"),
    Key("syslog_socket", parse_syslog_socket, "syslog_socket", "/dev/log", "`/dev/log`",
        "where events go without `logging`"),
    Key("mailto", parse_mailto, "mailto", None, "none", "the crontab's MAILTO"),
    Key("smtp_host", parse_smtp_host, "smtp_host", ("localhost", 25), "`localhost:25`",
        "where failure mail goes"),
    Key("cron_environment", parse_cron_environment, "cron_environment", {}, "none",
        "variables set in the crontab"),
    Key("metrics_directory", parse_path, "metrics_directory", None, "none",
        "node_exporter textfile collector files, one per job"),
)


class GlobalConfig(object):
    """The global configuration, every path absolute: an attribute per key of
    GLOBAL_KEYS, its default unless given. `source` is the file it was read
    from, or None for the built-in defaults; `marks` maps key paths such as
    ("user",) to their (line, column) in that file."""

    def __init__(self, source=None, marks=None, source_status=None, **values):
        self.source = source
        self.marks = marks or {}
        self.source_status = source_status
        self.account_lookup = ()  # (service_account's answer,) once looked up
        set_key_attributes(self, GLOBAL_KEYS, values)

    def error(self, message, *path):
        """A ConfigError located at the key `path` of this config file."""
        return located_error(message, self.source, self.marks, path)


class Job(object):
    """One validated job file: an attribute per key of JOB_KEYS, its default
    unless given. `name` is the file's NAME, `verbose_name` the `name` key;
    `commands`, `slow_start_commands` and the hooks (`on_failure`...) are
    lists of argv lists, run in sequence; timeout, kill_grace and
    hook_timeout are seconds (0 means none, but for kill_grace);
    `schedule` is a Schedule or None, written as `schedule_expression`;
    `positions` maps each key to the (source, line, column) it was set at,
    the global config's for default_job_config; `written` maps each key to
    its value as written, for --check's advice."""

    def __init__(self, name, source=None, positions=None, written=None, **values):
        self.name = name
        self.source = source
        self.positions = positions or {}
        self.written = written or {}
        set_key_attributes(self, JOB_KEYS, values)
        self.verbose_name = self.verbose_name or name
        self.schedule_expression = self.schedule.expression if self.schedule else None


def set_key_attributes(target, keys, values):
    """Each key's attribute from VALUES (by attribute name), else its default
    (computed only then: reading 10,000 job files asked 300,000 defaults)."""
    attributes = set(key.attribute for key in keys)
    unknown = set(values) - attributes
    if unknown:
        raise TypeError("unknown attributes %s" % ", ".join(sorted(unknown)))
    target.__dict__.update((key.attribute, key.default_value()) for key in keys
                           if key.attribute not in values)
    target.__dict__.update(values)


def choose_config_path(config_path, environ):
    """Return (path, named): named is true when the caller chose the file."""
    if config_path is not None:
        return config_path, True
    if environ.get(CONFIG_PATH_VARIABLE):
        return environ[CONFIG_PATH_VARIABLE], True
    return DEFAULT_CONFIG_PATH, False


def load_global_config(config_path=None, environ=None):
    """Read and check the global config: --config FILE, else
    $PROCESS_CONTROL_CONFIG, else /etc/process-control.yaml, else (only when
    that one is missing) the built-in defaults."""
    config = read_global_config(config_path, environ)
    check_global_config_owner(config)
    return config


def read_global_config(config_path=None, environ=None):
    """load_global_config without the owner check, so that the command line
    can first tell a user who is not the service user whom to run as."""
    path, named = choose_config_path(config_path, os.environ if environ is None else environ)
    try:
        text, status = read_config_text(path, named)
    except FileNotFoundError:
        if named:
            raise ConfigError("%s: no such config file; name an existing file with "
                              "--config or $%s" % (path, CONFIG_PATH_VARIABLE))
        return GlobalConfig()
    if is_blank_yaml(text):  # everything commented out: the defaults
        document, marks = {}, {}
    else:
        document, marks = load_yaml_mapping(text, path)
    return global_config_from(document, marks, path, status)


def is_blank_yaml(text):
    return all(not line.strip() or line.lstrip().startswith("#")
               for line in text.splitlines())


def read_config_text(path, named):
    """The text of a global config after its mode checks. A named config must
    be readable by everyone: through a sudo rule, naming a private file
    (a key, /etc/shadow) must reveal nothing of it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except PermissionError:
        raise RefusedError("%s: cannot read the config file: permission denied" % path)
    except OSError as error:
        raise ConfigError("%s: cannot read the config file: %s" % (path, error.strerror))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError("%s: the config is not a regular file" % path)
        if named:
            check_readable_by_everyone(path, status)
        check_not_writable_by_others(path, status, "the config file")
        return decode_utf8(read_descriptor(descriptor, path), path), status
    finally:
        os.close(descriptor)


def check_readable_by_everyone(path, status):
    """Readable by everyone means the file's read bit for others and the
    search bit of every directory on the way to it: a 0644 file under a 0700
    home is as private as a 0600 one."""
    if not status.st_mode & stat.S_IROTH:
        raise named_config_refused(path, "chmod o+r %s" % path)
    for directory in directories_leading_to(path):
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            raise named_config_refused(path, "chmod o+x %s" % directory)


def named_config_refused(path, fix):
    return RefusedError("%s: refused: a config named with --config or $%s must be "
                        "readable by everyone; %s" % (path, CONFIG_PATH_VARIABLE, fix))


def directories_leading_to(path):
    """Every directory passed through to reach path, through symbolic links too."""
    directories = []
    for route in (os.path.abspath(path), os.path.realpath(path)):
        directory = os.path.dirname(route)
        while directory not in directories:
            directories.append(directory)
            directory = os.path.dirname(directory)
    return directories


# A config or a job file is a few kilobytes: a larger one is no config (a log
# or a device named by mistake), refused before it is read into memory.
CONFIG_FILE_MAX_BYTES = 1 << 20


def read_descriptor(descriptor, path):
    """The config or job file PATH, open as DESCRIPTOR, if it is no larger
    than CONFIG_FILE_MAX_BYTES."""
    data = _read_at_most(descriptor, CONFIG_FILE_MAX_BYTES + 1)
    if len(data) > CONFIG_FILE_MAX_BYTES:
        raise ConfigError("%s: larger than %d bytes, which no config is; check the file"
                          % (path, CONFIG_FILE_MAX_BYTES))
    return data


def _read_at_most(fd, limit):
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def global_config_from(document, marks, path, status):
    values = {}
    for key, value in document.items():
        origin = Origin(path, marks, (key,))
        config_key = find_key(GLOBAL_KEYS, key, origin)
        values[config_key.attribute] = config_key.parse(value, key, origin)
    config = GlobalConfig(source=path, marks=marks, source_status=status, **values)
    check_state_directory(config)
    return config


def check_state_directory(config):
    """State is written by the service user; the job directory holds the
    audited job files, so the two must never overlap."""
    state = os.path.realpath(config.state_directory)
    jobs = os.path.realpath(config.job_directory)
    if state == jobs or state.startswith(jobs.rstrip(os.sep) + os.sep):
        raise config.error("`state_directory` %s is inside the job directory %s; "
                           "move it elsewhere" % (state, jobs), "state_directory")


def check_global_config_owner(config):
    if config.source is not None:
        check_trusted_owner(config.source, config.source_status, config, "the config file")


def check_not_writable_by_others(path, status, what):
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RefusedError("%s: refused: %s is writable by group or others; "
                           "chmod go-w %s" % (path, what, path))


def check_trusted_owner(path, status, config, what):
    """cron's and sshd's rule: owned by root or the service user."""
    if status.st_uid not in trusted_owner_uids(config):
        raise RefusedError("%s: refused: %s must be owned by root or the service user %s, "
                           "not uid %d; chown root %s" % (path, what, config.user,
                                                          status.st_uid, path))


def check_trusted(path, status, config, what):
    check_not_writable_by_others(path, status, what)
    check_trusted_owner(path, status, config, what)


def service_account(config):
    """The service user's passwd entry, or None when there is no such user:
    looked up once per config (reading 10,000 job files asked 40,000 times)."""
    if not config.account_lookup:
        try:
            config.account_lookup = (pwd.getpwnam(config.user),)
        except KeyError:
            config.account_lookup = (None,)
    return config.account_lookup[0]


def trusted_owner_uids(config):
    account = service_account(config)
    return (0,) if account is None else (0, account.pw_uid)


# The service user's view: whoever runs --check or cron-generate (root, a
# developer), a job file or directory is valid only if the service user, who
# runs the job, can read it.

def service_user_can(path, account, mode):
    """Whether the service user ACCOUNT may access PATH for MODE (os.R_OK,
    os.W_OK, os.X_OK or'ed): exact (os.access) when this process is that
    user, else read from the owner, group and mode bits and the account's
    groups (ACLs aside)."""
    if os.geteuid() == account.pw_uid:
        return os.access(path, mode)
    try:
        status = os.stat(path)
    except OSError:
        return False
    if account.pw_uid == 0:  # root needs an x bit to execute, nothing else
        return not mode & os.X_OK or stat.S_ISDIR(status.st_mode) \
            or bool(status.st_mode & 0o111)
    if status.st_uid == account.pw_uid:
        bits = status.st_mode >> 6
    elif (status.st_mode >> 3) & status.st_mode & mode == mode:
        return True  # group and others may: no need for the groups (costly)
    elif status.st_gid in os.getgrouplist(account.pw_name, account.pw_gid):
        bits = status.st_mode >> 3
    else:
        bits = status.st_mode
    return bits & mode == mode


def unsearchable_directory(directory, account):
    """The first directory from / down to DIRECTORY that the service user
    cannot search, or None; also None from where the path does not exist."""
    parts = os.path.abspath(directory).split(os.sep)
    for length in range(1, len(parts) + 1):
        step = os.sep.join(parts[:length]) or os.sep
        if not os.path.lexists(step):
            return None
        if not service_user_can(step, account, os.X_OK):
            return step
    return None


def is_job_name(name):
    return 0 < len(name) <= JOB_NAME_MAX_LENGTH and set(name) <= JOB_NAME_CHARACTERS


def check_job_name(name):
    if len(name) > JOB_NAME_MAX_LENGTH:
        raise RefusedError("refused job name %r... (%d characters): a job name is at most "
                           "%d characters" % (name[:40], len(name), JOB_NAME_MAX_LENGTH))
    if not is_job_name(name):
        raise RefusedError("refused job name %r: a job name is letters, digits, "
                           "'_' and '-'" % name[:80])


def job_directory_path(config):
    """The resolved job directory, after cron's checks on it."""
    directory = os.path.realpath(config.job_directory)
    try:
        status = os.stat(directory)
    except FileNotFoundError:
        raise config.error("the job directory %s does not exist; create it or set "
                           "`job_directory`" % directory, "job_directory")
    except OSError as error:
        if error.errno == errno.EACCES:
            check_service_user_reach(config, directory)  # names the directory in the way
        raise RefusedError("cannot use the job directory %s: %s" % (directory, error.strerror))
    if not stat.S_ISDIR(status.st_mode):
        raise config.error("the job directory %s is not a directory" % directory,
                           "job_directory")
    if not directory.isprintable():  # reached through a symlink
        raise RefusedError("refused: the job directory %s holds a line break or control "
                           "character; rename it" % printable(directory))
    check_trusted(directory, status, config, "the job directory")
    check_service_user_reach(config, directory)
    return directory


def check_service_user_reach(config, directory):
    """The service user, who runs the jobs, must be able to list the job
    directory: judged the same way whoever checks (root's cron-generate, a
    developer's --check, a run)."""
    account = service_account(config)
    if account is None:
        return  # reported as such
    blocked = unsearchable_directory(directory, account)
    if blocked is not None:
        raise RefusedError("refused: the service user %s cannot reach the job directory "
                           "%s: %s is not searchable; chmod o+x %s"
                           % (account.pw_name, directory, blocked, blocked))
    if not service_user_can(directory, account, os.R_OK | os.X_OK):
        raise RefusedError("refused: the service user %s cannot list the job directory %s; "
                           "chmod 0755 %s" % (account.pw_name, directory, directory))


def job_file_path(config, name, directory=None):
    """The job file to read for NAME: directly inside the job directory, or a
    symlink to another file there. DIRECTORY: job_directory_path's answer,
    when the caller reads many job files (checked once, not for each)."""
    check_job_name(name)
    if directory is None:
        directory = job_directory_path(config)
    path = os.path.join(directory, name + ".yaml")
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        raise UsageError("no job named %s: %s does not exist; run-job --list-jobs "
                         "lists the jobs" % (name, path))
    except OSError as error:
        raise RefusedError("%s: cannot read the job file: %s" % (path, error.strerror))
    if stat.S_ISLNK(link.st_mode):
        target = os.path.realpath(path)
        if os.path.dirname(target) != directory:
            raise RefusedError("%s: refused: a symlink that leads out of the job "
                               "directory" % path)
        if not target.isprintable():  # it names the job file in every message
            raise RefusedError("%s: refused: a symlink to %s, a name with a line break or "
                               "control character" % (path, printable(target)))
        path = target
    return path


def read_job_text(path, config):
    """The text of a job file, checked on the open file itself."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    account = service_account(config)
    try:
        descriptor = os.open(path, flags)
    except PermissionError:
        if account is not None and os.geteuid() == account.pw_uid:
            raise job_file_unreadable(account, path)
        raise RefusedError("%s: cannot read the job file: permission denied" % path)
    except OSError as error:
        raise RefusedError("%s: refused: %s" % (path, error.strerror.lower()))
    try:
        if account is not None and not service_user_can(path, account, os.R_OK):
            raise job_file_unreadable(account, path)
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise RefusedError("%s: refused: the job file is not a regular file" % path)
        check_trusted(path, status, config, "the job file")
        return decode_utf8(read_descriptor(descriptor, path), path)
    finally:
        os.close(descriptor)


def job_file_unreadable(account, path):
    """A job file the service user cannot read fails every run of it (77):
    invalid for whoever checks, root's cron-generate included, in the same
    words as the service user's own check."""
    return RefusedError("%s: refused: the service user %s cannot read the job file; "
                        "chmod 0644 %s" % (path, account.pw_name, path))


def load_job(config, name, directory=None):
    """Load, check and validate job NAME; raises ConfigError at FILE:LINE:COL,
    RefusedError for a path or permission refusal, UsageError if missing.
    DIRECTORY: see job_file_path."""
    path = job_file_path(config, name, directory)
    document, marks = load_yaml_mapping(read_job_text(path, config), path)
    return job_from_document(config, name, path, document, marks)


def job_settings(config, path, document, marks):
    """Map each key written to (Key, value, origin): default_job_config
    first, then the job file's keys over it."""
    tagged = "tag" in document or "tags" in document  # replacing the default's tags
    written = [(key, value, Origin(config.source, config.marks, ("default_job_config", key)))
               for key, value in config.default_job_config.items()
               if not (tagged and key in ("tag", "tags"))]
    written.extend((key, value, Origin(path, marks, (key,))) for key, value in document.items())
    settings = {}
    for key, value, origin in written:
        settings[key] = (find_key(JOB_KEYS, key, origin), value, origin)
    if "tag" in document and "tags" in document:
        raise Origin(path, marks, ("tags",)).error("use `tag` or `tags`, not both")
    if "command" not in settings:
        raise ConfigError("missing `command`: the command line the job runs", path)
    return settings


def job_from_document(config, name, path, document, marks):
    settings = job_settings(config, path, document, marks)
    values = dict((job_key.attribute, job_key.parse(value, key, origin))
                  for key, (job_key, value, origin) in settings.items())
    return Job(name, source=path,
               positions=dict((key, origin.position()) for key, (job_key, value, origin)
                              in settings.items()),
               written=dict((key, value) for key, (job_key, value, origin) in settings.items()),
               **values)


def scan_job_directory(config):
    """Return (names, problems): the sorted job names in the job directory and
    a RefusedError for each .yaml file whose name is not a job name."""
    directory = os.path.realpath(config.job_directory)
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        raise config.error("the job directory %s does not exist; create it or set "
                           "`job_directory`" % directory, "job_directory")
    except OSError as error:
        raise RefusedError("cannot list the job directory %s: %s" % (directory, error.strerror))
    names, problems = [], []
    for entry in entries:
        if not entry.endswith(".yaml") or entry.startswith("."):
            continue
        name = entry[:-len(".yaml")]
        if is_job_name(name):
            names.append(name)
        else:
            problem = RefusedError(
                "%s: not a job name (letters, digits, '_' and '-', at most %d); rename "
                "the file" % (os.path.join(directory, entry), JOB_NAME_MAX_LENGTH))
            problem.file_name = entry  # for cron-generate's "Skipping" line
            problems.append(problem)
    return sorted(names), problems


def job_directory_or_none(config):
    """job_directory_path's answer for a command that reads every job file,
    or None when it refuses the directory: each job file's load says why."""
    try:
        return job_directory_path(config)
    except (ConfigError, RefusedError):
        return None


def tagged_job_names(config, tags):
    """The sorted names of the jobs that have any of TAGS (--tag). A tag that
    no job has is a usage error that lists the tags there are; a job file
    that does not load has no tags."""
    names, _ = scan_job_directory(config)
    directory = job_directory_or_none(config)
    selected, known = [], set()
    for name in names:
        try:
            job = load_job(config, name, directory)
        except (ConfigError, RefusedError, UsageError):
            continue
        known.update(job.tags)
        if any(tag in job.tags for tag in tags):
            selected.append(name)
    for tag in tags:
        if tag not in known:
            listing = ("the tags are " + ", ".join(sorted(known))) if known else \
                "no job has tags"
            raise UsageError("no job has the tag %s; %s" % (quoted_value(tag), listing))
    return selected
def load_jobs(config):
    """(every job that loads, in name order; the error of each job file
    that does not, and scan_job_directory's problems)."""
    names, problems = scan_job_directory(config)
    directory = job_directory_or_none(config)
    jobs = []
    for name in names:
        try:
            jobs.append(load_job(config, name, directory))
        except (ConfigError, RefusedError, UsageError) as error:
            problems.append(error)
    return jobs, problems


# ---- 5. privileges ---------------------------------------------------------------

def written_directories(config, account):
    """(key, path, mode, gid) of each directory runs write into, parents
    first (the run directory lies inside the state directory by default).
    GID, the group they are made with: the service user's, `log_group` for
    the output directory; None without a service user."""
    layout = []
    for key, mode in WRITTEN_DIRECTORIES:
        gid = None if account is None else account.pw_gid
        if key == "output_directory" and config.log_group is not None:
            import grp  # already loaded by parse_log_group
            gid = grp.getgrnam(config.log_group).gr_gid
            mode = LOG_GROUP_DIRECTORY_MODE
        layout.append((key, getattr(config, key), mode, gid))
    return sorted(layout, key=lambda item: item[1])


def ensure_directories(config):
    """Create the missing output, run and state directories; as root, owned
    by the service user (the output directory's group: `log_group`), and an
    output directory that is already the service user's gets the group and
    mode the config asks for. Otherwise say how to create them."""
    account = service_account(config)
    for key, path, mode, gid in written_directories(config, account):
        ensure_directory(config, account, key, path, mode, gid)


def ensure_directory(config, account, key, path, mode, gid):
    """One of written_directories(); return whether this call created it."""
    as_root = os.geteuid() == 0 and account is not None
    created = make_directory(config, key, path, mode)
    if created and as_root:
        os.chown(path, account.pw_uid, gid, follow_symlinks=False)
        os.chmod(path, mode)  # after chown, which may clear the setgid bit
    elif as_root and key == "output_directory":
        align_output_directory(path, account, mode, gid)
    return created


def make_directory(config, key, path, mode):
    """Create PATH, and its missing parents, with MODE; return whether this
    call created it. Another run creating it first is success, not an error."""
    if os.path.isdir(path):
        return False
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, mode & 0o777)
    except FileExistsError:
        if os.path.isdir(path):
            return False
        if os.path.lexists(path):
            raise config.error("the %s %s is not a directory; remove it or set `%s`"
                               % (key.replace("_", " "), path, key), key)
        raise cannot_create_error(config, key, path, mode)  # a parent is a file
    except OSError:
        raise cannot_create_error(config, key, path, mode)
    os.chmod(path, mode)  # mkdir obeys the umask
    return True


def cannot_create_error(config, key, path, mode):
    group = "" if key != "output_directory" or config.log_group is None \
        else "-g %s " % config.log_group
    return config.error(
        "the %s %s does not exist and cannot be created; as root, run cron-generate "
        "(it creates the directories) or install -d -o %s %s-m %o %s"
        % (key.replace("_", " "), path, config.user, group, mode, path), key)


def align_output_directory(path, account, mode, gid):
    """As root: an output directory of the service user's made before
    `log_group` was set or changed gets the group and mode now asked for, and
    so do its per-job directories, so that new logs get the group. What is
    not the service user's, or a symlink, is left as it is."""
    descriptor = open_own_directory(path, account)
    if descriptor is None:
        return
    try:
        status = os.fstat(descriptor)
        if status.st_gid == gid and stat.S_IMODE(status.st_mode) == mode:
            return  # aligned already, and its job directories with it: no scan per run
        align_directory(descriptor, gid, mode)
        names = os.listdir(descriptor)
    finally:
        os.close(descriptor)
    for name in names:
        job_directory = open_own_directory(os.path.join(path, name), account)
        if job_directory is not None:
            try:
                align_directory(job_directory, gid, LOG_DIRECTORY_MODE | (mode & stat.S_ISGID))
            finally:
                os.close(job_directory)


def open_own_directory(path, account):
    """A descriptor of directory PATH (not through a symlink) if the service
    user owns it, else None."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return None
    if os.fstat(descriptor).st_uid != account.pw_uid:
        os.close(descriptor)
        return None
    return descriptor


def align_directory(descriptor, gid, mode):
    status = os.fstat(descriptor)
    if status.st_gid != gid:
        os.fchown(descriptor, -1, gid)
    if stat.S_IMODE(os.fstat(descriptor).st_mode) != mode:
        os.fchmod(descriptor, mode)


def require_service_account(config):
    account = service_account(config)
    if account is None:
        raise config.error("the service user %r does not exist; create it (useradd "
                           "--system %s) or set user: to the account jobs run as"
                           % (config.user, config.user), "user")
    check_not_root_alias(config, account)
    return account


def check_not_root_alias(config, account):
    """Nothing runs as root unless the config says `user: root` in so many words."""
    if account.pw_uid == 0 and config.user != "root":
        raise RefusedError(str(config.error(
            "user %r is root under another name; jobs run as root only with an "
            "explicit 'user: root'" % config.user, "user")))


def require_service_user(config, command):
    """Only the service user (or root, who becomes it) may run or kill jobs."""
    account = require_service_account(config)
    if os.geteuid() not in (0, account.pw_uid):
        # No tool named: sudo may not be installed, and runuser is root's only.
        if account.pw_uid == 0:
            raise RefusedError("jobs run as root (user: %s); run `%s` as root"
                               % (config.user, command))
        raise RefusedError("jobs run as the service user %s; run `%s` as root (run-job "
                           "switches to %s itself) or as %s"
                           % (config.user, command, config.user, config.user))


def caller_name(environ):
    """Who gives a command (--pause...), for its record: the user sudo ran
    it for (run-job's callers are root or the service user), else the real
    user."""
    sudo_user = environ.get("SUDO_USER")
    if sudo_user and is_user_name(sudo_user):
        return sudo_user
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def preload_modules(names):
    """Import what is needed after the switch: the interpreter's own library
    may not be readable by the service user."""
    for name in names:
        __import__(name)


def _c_function(name):
    """(function NAME of the C library returning an int, c_int, c_ulong,
    byref) through _ctypes, the C half of ctypes: the Python half costs a
    plain run 1.2 ms (struct, endianness, many classes) for a call or two.
    The few names used here are what ctypes itself is built on since 2.5.
    Raises AttributeError when the C library has no NAME."""
    try:
        import _ctypes

        class CInt(_ctypes._SimpleCData):
            _type_ = "i"

        class CULong(_ctypes._SimpleCData):
            _type_ = "L"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = CInt

        class Library(object):
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)

        library = Library()
    except (ImportError, AttributeError, TypeError, OSError):
        import ctypes  # the whole of it, only where the C half alone would not do
        libc = ctypes.CDLL(None, use_errno=True)
        return getattr(libc, name), ctypes.c_int, ctypes.c_ulong, ctypes.byref
    return Function((name, library)), CInt, CULong, _ctypes.byref


PR_SET_DUMPABLE = 4


def linux_prctl():
    """(prctl(2), its unsigned long type) through _ctypes, looked up while
    still root (see preload_modules), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl, _, c_ulong, _ = _c_function("prctl")
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    return prctl, c_ulong


def make_dumpable(prctl):
    """After setuid from root the kernel marks the process undumpable, which
    leaves its /proc files root's: the service user's own run-job could then
    not find this run to kill it. Undo that, as an exec would have."""
    if prctl is not None:
        function, c_ulong = prctl
        zero = c_ulong(0)
        function(PR_SET_DUMPABLE, c_ulong(1), zero, zero, zero)


def become_service_user(config, modules=()):
    """As root, become the service user (supplementary groups, gid, uid, HOME,
    USER, LOGNAME), unless the config says `user: root`. Otherwise nothing."""
    if os.geteuid() != 0 or config.user == "root":
        return
    account = require_service_account(config)
    preload_modules(modules)
    prctl = linux_prctl()
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    if os.geteuid() == 0 or os.getuid() == 0:  # never go on as root by mistake
        raise RefusedError("could not give up root for the service user %s" % config.user)
    make_dumpable(prctl)
    os.environ["HOME"] = account.pw_dir
    os.environ["USER"] = account.pw_name
    os.environ["LOGNAME"] = account.pw_name
    try:  # as cron does; root's working directory may be closed to the user
        os.chdir(account.pw_dir)
    except OSError:
        os.chdir("/")


# ---- 6. the lock -----------------------------------------------------------------

# One flock(2) per job on RUN_DIRECTORY/NAME.lock. The kernel drops it when the
# last descriptor goes, and the job's processes inherit the descriptor, so the
# lock lives exactly as long as anything of the run lives: never stale, no pid
# files to clean up. The file is never removed (a removed lock file would let
# two runs lock two different inodes); its text only describes the holder.

LOCK_RECORD_SIZE = 4096


def lock_path(config, name):
    return os.path.join(config.run_directory, name + ".lock")


# The run, state and output directories are the service user's, so any job
# can put anything in place of a file run-job opens there: a FIFO (an open or
# a read that blocks forever), a symlink (to /dev/zero: a read without end; to
# another file: written through), a directory, a device, a huge file. Every
# such file is opened by _open_regular_file and read by read_regular_file:
# never through a symlink, never blocking, only a regular file (checked on
# the open descriptor), never more than a limit read.

class BadFileError(RefusedError):
    """Something else than the regular file expected is at PATH; PROBLEM
    says what, as `is a FIFO, not a regular file`."""

    def __init__(self, path, problem):
        self.path = path
        self.problem = problem
        super().__init__("%s %s" % (path, problem))


FILE_KINDS = ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"),
              (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
              (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_regular(path, mode):
    for test, kind in FILE_KINDS:
        if test(mode):
            return BadFileError(path, "is %s, not a regular file" % kind)
    return BadFileError(path, "is not a regular file")


def _unexpected_file(path, dir_fd):
    """The BadFileError saying what is at PATH, whose open failed (ELOOP for a
    symlink, EISDIR for a directory opened for writing, ENXIO for a FIFO
    without reader, EACCES for a device on a nodev mount...); None for a
    regular file (the error was about the file itself) or nothing at all."""
    try:
        mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _not_regular(path, mode)


def _open_regular_file(path, flags, mode=0o644, dir_fd=None):
    """Open PATH (relative to DIR_FD if given) refusing with BadFileError a
    symlink and anything but a regular file, without ever blocking; O_NONBLOCK
    is cleared again on a descriptor for writing. Set MODE, unless None,
    when we own the file. A missing file is FileNotFoundError."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     mode or 0o600, dir_fd=dir_fd)
    except OSError as error:
        unexpected = None
        if error.errno not in (errno.ENOENT, errno.EEXIST):
            unexpected = _unexpected_file(path, dir_fd)
        if unexpected is not None:
            raise unexpected
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _not_regular(path, status.st_mode)
        if flags & (os.O_WRONLY | os.O_RDWR):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if mode is not None and status.st_uid == os.geteuid() \
                and status.st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_bounded_file(path, limit):
    """A descriptor for reading the regular file PATH, or None when there is
    none; BadFileError when anything else is there or it holds more than
    LIMIT bytes."""
    try:
        fd = _open_regular_file(path, os.O_RDONLY, None)
    except FileNotFoundError:
        return None
    if os.fstat(fd).st_size > limit:
        os.close(fd)
        raise BadFileError(path, "is larger than %d bytes" % limit)
    return fd


def read_regular_file(path, limit):
    """The bytes of the regular file PATH, or None when there is none; see
    open_bounded_file. The limit holds for a file still growing, too."""
    fd = open_bounded_file(path, limit)
    if fd is None:
        return None
    try:
        data = _read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise BadFileError(path, "is larger than %d bytes" % limit)
    return data


def set_aside_file(path, now):
    """Rename the bad file PATH to PATH.bad-YYYYmmdd-HHMMSS beside it (local
    time NOW; -N added to a name already taken), so that a good one can take
    its place and the bad one stays to be looked at. Return the new base
    name; OSError when it cannot be renamed."""
    stem = "%s.bad-%s" % (path, time.strftime("%Y%m%d-%H%M%S", time.localtime(now)))
    for number in range(100):
        target = "%s-%d" % (stem, number) if number else stem
        if not os.path.lexists(target):
            os.rename(path, target)
            return os.path.basename(target)
    raise OSError(errno.EEXIST, "too many files set aside within one second")


def state_lock_path(config, name):
    return os.path.join(config.run_directory, name + ".state.lock")


def wait_lock_path(config, name):
    """The lock of the one launch next in line (`overlap: wait` or `replace`).
    A job name has no ".": no job's lock or state lock is named so."""
    return os.path.join(config.run_directory, name + ".wait.lock")


class JobLock(object):
    """The held lock of one run: `fd` is inherited by the job's processes. A
    launch of `overlap: wait` or `replace` also holds `turn` (the wait lock)
    with SIGTERM, SIGINT and SIGHUP blocked, `mask` the signal mask before,
    until settle(); `waited`: whether it waited for the previous run to end."""

    def __init__(self, path, fd, turn=None, mask=None):
        self.path = path
        self.fd = fd
        self.turn = turn
        self.mask = mask
        self.waited = False
        self.replaced = None  # the pid of the run-job whose run it stopped

    def describe(self, pid, pgid, start, kill_grace, log_path):
        # One fixed-size pwrite, so a concurrent reader sees the old or the new
        # record, never an empty file.
        text = b"pid %d pgid %d start %.3f kill_grace %.3f log %s\n" % (
            pid, pgid, start, kill_grace, os.fsencode(log_path))
        if len(text) > LOCK_RECORD_SIZE:
            text = text[:text.index(b" log ")] + b"\n"
        os.pwrite(self.fd, text.ljust(LOCK_RECORD_SIZE), 0)

    def note_replacement(self, record):
        """Tell the run RECORD describes, before it gets SIGTERM, that this
        run-job replaces it: the record's second block, which it reads back."""
        text = b"replace pid %d start %.3f by %d\n" % (record["pid"], record["start"],
                                                       os.getpid())
        os.pwrite(self.fd, text.ljust(LOCK_RECORD_SIZE), LOCK_RECORD_SIZE)

    def replaced_by(self, pid, start):
        """The pid of the run-job that noted it replaces the run of run-job
        PID started at START, or None."""
        try:
            words = os.pread(self.fd, LOCK_RECORD_SIZE, LOCK_RECORD_SIZE).split()
            if len(words) == 7 and words[0] == b"replace" and int(words[2]) == pid \
                    and abs(float(words[4]) - start) < 0.002:
                return int(words[6])
        except (OSError, ValueError):
            pass
        return None

    def settle(self):
        """End the turn: the run is described here and handles SIGTERM (or
        is about to end), so the next launch may stop it. A stop signal that
        came meanwhile is delivered now."""
        if self.turn is not None:
            os.close(self.turn)
            self.turn = None
            _signals().pthread_sigmask(_signals().SIG_SETMASK, self.mask)

    def close(self):
        self.settle()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class StuckRunError(LockHeldError):
    """`overlap: replace` could not stop the previous run: never quiet."""


def replaced_reason(pid):
    return "replaced by run-job pid %d (overlap: replace)" % pid


def _open_lock_file(path, name, what="lock file"):
    """Open (or create) job NAME's lock file PATH: its lock, wait lock or
    state lock (WHAT)."""
    try:
        return _open_regular_file(path, os.O_RDWR | os.O_CREAT)
    except BadFileError as error:
        raise RefusedError("%s; remove it: it is job %s's %s" % (error, name, what))
    except OSError as error:
        raise RefusedError("%s: cannot open the lock file: %s; check run_directory"
                           % (path, error.strerror))


def _try_lock(fd):
    """Whether FD took its file's lock, without waiting."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True




def _still_running_message(name, record):
    if not record:
        return "job %s is still running; not starting another run" % name
    if runner_died(record):
        return ("job %s is still running: %s; not starting another run"
                % (name, orphaned_run_text(name, record)))
    return ("job %s is still running (pid %d, started %s); not starting another run"
            % (name, record["pid"], _local_time_text(record["start"])))


def runner_died(record):
    """Whether the run-job that RECORD (of a held lock) names is gone (or a
    zombie): what holds the lock then is what it left behind."""
    if not os.path.isdir("/proc/self"):
        return False  # no way to tell
    runner = read_process(record["pid"])
    return runner is None or runner.state in ("Z", "X")


def orphaned_run_text(name, record):
    return ("its run-job (pid %d, started %s) died, leaving processes that hold the lock; "
            "run-job --kill-job %s stops them" % (record["pid"], _local_time_text(record["start"]),
                                                   name))


def read_lock_record(path):
    """The holder description in a lock file: {"pid", "pgid", "start",
    "kill_grace", "log"}, or None when there is none yet."""
    try:
        fd = _open_regular_file(path, os.O_RDONLY, None)
    except (OSError, RefusedError):
        return None
    try:
        line = os.read(fd, LOCK_RECORD_SIZE).split(b"\n", 1)[0]
    finally:
        os.close(fd)
    words = line.split(b" ", 9)  # the log path, last, may hold spaces
    record = dict(zip(words[0::2], words[1::2]))
    try:
        described = {"pid": int(record[b"pid"]), "pgid": int(record[b"pgid"]),
                     "start": float(record[b"start"]),
                     "kill_grace": float(record[b"kill_grace"]),
                     "log": os.fsdecode(record[b"log"]) if b"log" in record else None}
    except (KeyError, ValueError):
        return None
    # The job's processes can write this file: a kill_grace of inf or nan
    # would make --kill-job send SIGTERM forever and never SIGKILL.
    if not (0 <= described["kill_grace"] <= DURATION_MAX and 0 < described["start"] < 1e11):
        return None
    return described


def _lock_file_status(path):
    """The stat of the lock file PATH, or None when no regular file is there:
    a symlink, say, to another job's lock or to /dev/null, is nobody's lock."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return status if stat.S_ISREG(status.st_mode) else None


def lock_file_problem(config, name):
    """The BadFileError of job NAME's lock file when something else than a
    regular file is there (acquire_lock refuses every run), else that of
    its state lock (no change can be recorded) or wait lock (no run of
    `overlap: wait` or `replace` starts), else None."""
    for path in (lock_path(config, name), state_lock_path(config, name),
                 wait_lock_path(config, name)):
        problem = _unexpected_file(path, None)
        if problem is not None:
            return problem
    return None


def _lock_is_held(path, ask_holders=True):
    """Whether anyone holds the flock on PATH, found without taking it (even a
    shared lock for an instant could make a starting run exit 75)."""
    status = _lock_file_status(path)
    if status is None:
        return False
    try:
        with open("/proc/locks") as locks:
            table = locks.read()
    except OSError:
        return bool(lock_holders(path))
    wanted = "%02x:%02x:%d" % (os.major(status.st_dev), os.minor(status.st_dev),
                               status.st_ino)
    same_inode = False
    for line in table.splitlines():
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields:
            if wanted in fields:
                return True
            same_inode = same_inode or any(field.endswith(":%d" % status.st_ino)
                                           for field in fields)
    # A file system whose locks show another device than stat() does (an
    # overlay, say): ask the holders' descriptors instead.
    return same_inode and ask_holders and bool(lock_holders(path))


def running_info(config, name):
    """{"pid", "pgid", "start", "kill_grace"} of the run holding NAME's lock,
    or None when it is not running. Read-only: never touches the lock."""
    path = lock_path(config, name)
    if not _lock_is_held(path):
        return None
    return read_lock_record(path) or {"pid": None, "pgid": None, "start": None,
                                      "kill_grace": None, "log": None}


class ProcessInfo(object):
    """One process as /proc/PID/stat shows it; `start` (clock ticks since
    boot) tells a process from a later one that reused its pid."""

    def __init__(self, pid, ppid, pgrp, state, start):
        self.pid = pid
        self.ppid = ppid
        self.pgrp = pgrp
        self.state = state
        self.start = start


def read_process(pid):
    """ProcessInfo for PID, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as stat_file:
            text = stat_file.read()
        # The command name may hold spaces and parentheses: fields start after
        # the last ")". A process that is exiting may show an empty file.
        fields = text[text.rindex(b")") + 2:].split()
        return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0].decode("ascii"),
                           int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def same_process(info):
    """Whether INFO's process still lives (a zombie does not) and is the same one."""
    now = read_process(info.pid)
    return now is not None and now.start == info.start and now.state not in ("Z", "X")


def signal_verified(info, signum, group=False):
    """Send SIGNUM to INFO's process (with GROUP, to its process group, which
    cannot be reused while it has this member) if it is still that very
    process: same pid and start time, not a zombie. Never to run-job itself
    or to its own group. Return whether the signal was sent."""
    if info.pid == os.getpid() or (group and info.pgrp == os.getpgrp()):
        return False
    # A pidfd (Python 3.9+, Linux 5.3+) opened before the check names that
    # very process: not even a pid reused meanwhile can get the signal.
    # Without one (older kernels; a group has none) the pids would have to
    # wrap around between the check and kill(): the limit left.
    pidfd = None
    if not group and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(info.pid)  # novermin (3.9+: only when hasattr found it)
        except OSError:
            pass  # gone (the check says so) or an older kernel: check, then kill
    try:
        if not same_process(info):
            return False
        if pidfd is not None:
            _signals().pidfd_send_signal(pidfd, signum)
        elif group:
            os.killpg(info.pgrp, signum)
        else:
            os.kill(info.pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return True


def _all_processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_process(int(entry))
            if info is not None:
                yield info


def lock_holders(path, with_descendants=False):
    """The live processes, other than this one, holding the lock on PATH: a
    descriptor of that file (by device and inode, whatever the name) whose
    /proc/PID/fdinfo shows the flock, which a run-job merely trying the lock
    has not. Kernels before 4.5 show no locks there: then any descriptor of
    the file counts. WITH_DESCENDANTS adds the holders' descendants."""
    status = _lock_file_status(path)
    if status is None:
        return []
    wanted = (status.st_dev, status.st_ino)
    processes = [info for info in _all_processes()
                 if info.pid != os.getpid() and info.state not in ("Z", "X")]
    openers = []
    holders = []
    for info in processes:
        locked = _lock_descriptor_state(info.pid, wanted)
        if locked is not None:
            openers.append(info)
            if locked:
                holders.append(info)
    if not holders and openers and _lock_is_held(path, ask_holders=False):
        holders = openers  # a kernel that does not show locks in fdinfo
    if with_descendants:
        holders = descendants(processes, [info.pid for info in holders], holders)
    return holders


def descendants(processes, roots, found=()):
    """FOUND plus the PROCESSES descending from the pids ROOTS."""
    children = {}
    for info in processes:
        children.setdefault(info.ppid, []).append(info)
    found = list(found)
    seen = set(info.pid for info in found)
    pending = list(roots)
    while pending:
        for info in children.get(pending.pop(), ()):
            if info.pid not in seen:
                seen.add(info.pid)
                found.append(info)
                pending.append(info.pid)
    return found


def _lock_descriptor_state(pid, wanted):
    """None when PID has no descriptor of the file WANTED (device, inode);
    else whether one of them shows an flock in /proc/PID/fdinfo."""
    directory = "/proc/%d/fd" % pid
    try:
        descriptors = os.listdir(directory)
    except OSError:
        return None
    state = None
    for descriptor in descriptors:
        try:
            status = os.stat(os.path.join(directory, descriptor))
            if (status.st_dev, status.st_ino) != wanted:
                continue
            state = False
            with open("/proc/%d/fdinfo/%s" % (pid, descriptor), "rb") as fdinfo:
                if b"FLOCK" in fdinfo.read():
                    return True
        except OSError:
            continue
    return state


# -- stopping a process tree

# A run's deadline (or a SIGTERM to run-job) stops run-job's descendants: as
# child subreaper, nothing of the job can leave them. --kill-job stops what a
# dead run-job left: the lock's holders and their descendants.

KILL_WAIT = 2.0    # seconds of SIGKILL before giving up on the tree
TERM_ROUND = 0.5   # seconds between looks for processes forked since SIGTERM
KILL_ROUND = 0.05  # seconds between two rounds of SIGKILL


def stop_process_tree(find_processes, kill_grace, wait=time.sleep):
    """Stop a tree as coreutils' timeout stops its command: SIGTERM, then
    SIGKILL after KILL_GRACE seconds (at once if 0). FIND_PROCESSES() lists
    the tree's processes (ProcessInfo), [] once it is gone; WAIT(SECONDS)
    passes the time between looks, and may end early when the tree goes.
    Return whether the tree is gone: False after KILL_WAIT of SIGKILL."""
    signals = _signals()
    deadline = time.monotonic() + kill_grace
    signalled = set()
    while True:
        # 1. Look afresh each round: the tree changes as it stops (forks,
        # exits, adoptions) and an old pid may name another process by now.
        processes = find_processes()
        if not processes:
            return True  # a zombie still counts: not reaped, not gone
        now = time.monotonic()
        late = now >= deadline
        # 2. Within kill_grace SIGTERM once each process, newcomers included;
        # past it SIGKILL to all every round, for what forked meanwhile.
        signum = signals.SIGKILL if late else signals.SIGTERM
        fresh = [info for info in processes if info.state not in ("Z", "X")
                 and (late or (info.pid, info.start) not in signalled)]
        signalled.update((info.pid, info.start) for info in fresh)
        # 3. Each group once, first: it reaches members the look missed
        # (forked since; adopted by init when run-job died). Only a group
        # led by a process of the tree: a run-job holding the lock is in its
        # launcher's group (cron's child that mails the output, a shell, a
        # CI script), which is not the job's. Then each process, in case it
        # left its group; SIGCONT after SIGTERM, which a stopped process
        # would keep pending. signal_verified checks pid and start time
        # (through a pidfd where there is one) just before.
        members = set(info.pid for info in processes)
        groups = {}
        for info in fresh:
            if info.pgrp in members:
                groups.setdefault(info.pgrp, info)
        for info in groups.values():
            signal_verified(info, signum, group=True)
        for info in fresh:
            signal_verified(info, signum)
            if not late:
                signal_verified(info, signals.SIGCONT)
        # 4. Limits: a process in uninterruptible sleep survives SIGKILL, one
        # of another user (EPERM) any signal; one that left both tree and
        # group (all, without /proc) is not found. The caller reports them.
        if late and now >= deadline + KILL_WAIT:
            return False
        wait(KILL_ROUND if late else min(TERM_ROUND, deadline - now))


def stop_running_job(config, name, record):
    """Stop job NAME's run as its deadline would; RECORD: its lock's record
    ({} if none). A live run-job is asked with SIGTERM: it stops its tree and
    records the run as killed. What holds the lock then (all, when run-job
    had died) is stopped here. Return whether nothing holds the lock now."""
    path = lock_path(config, name)
    kill_grace = record.get("kill_grace", 10.0)
    runner = [info for info in lock_holders(path) if info.pid == record.get("pid")]
    if runner and signal_verified(runner[0], _signals().SIGTERM):
        # run-job waits kill_grace before SIGKILL, then records the outcome.
        _wait_for_release(path, kill_grace + 5.0)
    if _lock_is_held(path):
        stop_process_tree(lambda: lock_holders(path, with_descendants=True), kill_grace,
                          lambda seconds: _wait_for_release(path, seconds))
    return not _lock_is_held(path)


def _wait_for_release(path, seconds):
    """Wait until nothing holds the lock on PATH, SECONDS at most."""
    end = time.monotonic() + seconds
    while _lock_is_held(path) and time.monotonic() < end:
        time.sleep(0.02)




def _signals():
    """The signal module without the enum machinery `signal` imports (3 ms)."""
    try:
        import _signal as signals
    except ImportError:
        import signal as signals
    return signals


def _signal_name(signum):
    """SIGTERM for 15, without the enum that the `signal` module imports. In
    alphabetical order the usual name (SIGABRT, SIGCHLD, SIGIO) comes first."""
    signals = _signals()
    for name in dir(signals):
        if name.startswith("SIG") and not name.startswith("SIG_") \
                and getattr(signals, name) == signum:
            return name
    return "signal %d" % signum


def _local_time_text(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


# ---- 7. running ------------------------------------------------------------------

# A plain run must stay cheap (bench/bench_run_job.py): no subprocess, logging,
# datetime or json here; one fork/exec per command; output is read in large
# chunks and stamped with bulk bytes operations, one timestamp per chunk.

READ_SIZE = 65536
RECORDS_MAX = 262144     # bytes of records stamped at once, whatever the line length
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
HOOK_STREAM = b"H"  # a hook's stdout and stderr in the run's log
HOOK_OUTPUT_MAX = 1 << 20  # bytes of a hook's output logged: a ping writes a line
STDERR_TAIL_BYTES = 4096
STDERR_TAIL_LINES = 20
DRAIN_WAIT = 0.5         # seconds to wait for end of output once the tree is gone
POLL_MAX_MILLISECONDS = 2 ** 31 - 1  # poll()'s longest wait, 24.8 days
RETRY_DOUBLINGS_MAX = 30  # retry_delay doubles at most this often: 10s becomes 340 years
_SHELL_SAFE = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789@%+=:,./-_")


class Outcome(object):
    """How a run ended: status is success, failed, timeout, killed or
    replaced (stopped by a run of `overlap: replace`: neither a success nor
    a failure, and as quiet as a success); the last command's exit_code or
    signal when it ended."""

    EXIT_CODES = {"success": EXIT_OK, "failed": EXIT_FAILED, "killed": EXIT_FAILED,
                  "timeout": EXIT_TIMEOUT, "replaced": EXIT_OK}
    QUIET = ("success", "replaced")

    @property
    def quiet(self):
        return self.status in self.QUIET

    def __init__(self, status, reason, wait_status=None):
        self.status = status
        self.reason = reason
        self.exit_code = None
        self.signal = None
        self.attempts = 1  # how many times the commands were run (`retries`)
        if wait_status is not None:
            self.set_wait_status(wait_status)

    def set_wait_status(self, wait_status):
        if os.WIFSIGNALED(wait_status):
            self.signal = os.WTERMSIG(wait_status)
        elif os.WIFEXITED(wait_status):
            self.exit_code = os.WEXITSTATUS(wait_status)

    @property
    def run_job_exit_code(self):
        return self.EXIT_CODES[self.status]


class RunLog(object):
    """The log file of one run; the record format is in README "Log format"."""

    def __init__(self, fd, path):
        self.fd = fd
        self.path = path
        self.error = None  # why writing failed (a full disk): output is dropped
        self._second = None
        self._second_text = b""

    def _stamp(self):
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime(
                "%Y-%m-%d %H:%M:%S.", time.localtime(second)).encode("ascii")
        return self._second_text + b"%03d " % int((now - second) * 1000)

    def write(self, tag, data):
        """Log DATA read from stream TAG (b"O" stdout, b"E" stderr, b"#" run-job):
        one record per line, the piece after the last newline marked "+"."""
        stamp = self._stamp() + tag
        whole = stamp + b"| "
        limit = RECORDS_MAX // len(whole)
        # One capped replace() stamps every line (it finds newlines with
        # memchr; bytes.count would scan ten times slower): the cap bounds the
        # memory that records take however short the lines.
        marked = b"\n" + whole
        records = data.replace(b"\n", marked, limit)
        if len(records) - len(data) < limit * len(whole):
            self._write_records(stamp, whole, data, records)
            return
        # Short lines: stamp the chunk in slices cut after a newline (and let
        # the capped attempt go first: it is as large as a slice's records).
        records = None
        step = max(1, len(data) * limit // data.count(b"\n"))
        start = 0
        while start < len(data):
            end = data.rfind(b"\n", start, start + step) + 1
            if end <= start:
                end = data.find(b"\n", start + step) + 1 or len(data)
            piece = data[start:end]
            self._write_records(stamp, whole, piece, piece.replace(b"\n", marked))
            start = end

    def _write_records(self, stamp, whole, data, records):
        """Write DATA as RECORDS, its newlines already followed by WHOLE: the
        prefix of the first line is added, the one after the last newline left
        out (through memoryviews: no copy) or replaced by the "+" mark."""
        tail = len(data) - data.rfind(b"\n") - 1
        body = len(records) - tail
        buffers = []
        if tail < len(data):
            buffers += [whole, memoryview(records)[:body - len(whole)]]
        if tail:
            buffers += [stamp + b"+ ", memoryview(records)[body:], b"\n"]
        if self.error is None:
            try:
                _write_buffers(self.fd, buffers)
            except OSError as error:
                # Go on reading, or the job would block on a full pipe.
                self.error = error.strerror

    def note(self, key, value):
        """A run-job record: "KEY VALUE" on stream "#"."""
        text = "%s %s\n" % (key, value)
        self.write(b"#", text.encode("utf-8", "surrogateescape"))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _write_buffers(fd, buffers):
    written = os.writev(fd, buffers)
    total = sum(len(buffer) for buffer in buffers)
    if written < total:
        _write_all(fd, b"".join(buffers)[written:])


def _write_all(fd, data):
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)
        while written < len(data):
            written += os.write(fd, view[written:])


def _ensure_directory(path, mode):
    """Create directory PATH with MODE unless it exists; refuse a symlink. In
    a setgid output directory (`log_group`) the new one inherits the group
    and the setgid bit, which a chmod without it would clear."""
    try:
        os.mkdir(path, mode)
        created = os.lstat(path).st_mode
        if stat.S_IMODE(created) & 0o777 != mode:  # the umask took bits away
            os.chmod(path, mode | (created & stat.S_ISGID))
    except FileExistsError:
        pass
    except OSError as error:
        raise RefusedError("%s: cannot create the directory: %s; check its parent's "
                           "owner and mode" % (path, error.strerror))
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise RefusedError("%s: not a directory; remove it" % path)


def open_run_log(config, name, start):
    """Create OUTPUT_DIRECTORY/NAME/NAME-YYYYMMDD-HHMMSS[-N].log (local time of
    START, N counting runs that started within the same second)."""
    directory = os.path.join(config.output_directory, name)
    _ensure_directory(directory, LOG_DIRECTORY_MODE)
    directory_fd = _open_log_directory(directory)
    try:
        return _create_run_log(directory, directory_fd, "%s-%s" % (
            name, time.strftime("%Y%m%d-%H%M%S", time.localtime(start))))
    finally:
        os.close(directory_fd)


def _open_log_directory(path):
    """The per-job log directory PATH, opened as the one just checked: a job
    that replaced it since by a symlink is refused, not followed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except OSError as error:
        raise RefusedError("%s: cannot open the log directory: %s; remove what is there"
                           % (path, error.strerror))


def _create_run_log(directory, directory_fd, base):
    """A new log BASE.log, else BASE-N.log, in DIRECTORY (open as DIRECTORY_FD)."""
    for number in range(10000):
        name = "%s-%d.log" % (base, number) if number else base + ".log"
        path = os.path.join(directory, name)
        try:
            # O_EXCL: a new file, never what a job put there; the mode is set
            # again on it, as the umask may have taken bits away.
            fd = _open_regular_file(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                    LOG_FILE_MODE, directory_fd)
        except FileExistsError:
            continue
        except OSError as error:
            raise RefusedError("%s: cannot create the log: %s; check output_directory"
                               % (path, error.strerror))
        return RunLog(fd, path)
    raise RefusedError("%s: too many logs in one second" % os.path.join(directory, base))


# A job's log directory holds its logs, named by open_run_log; a log name
# sorts the runs by start (its number after the second counts too): one
# listdir finds them in order, without a stat or a read.
LOG_STAMP_SHAPE = "00000000-000000"  # YYYYMMDD-HHMMSS, every digit made 0
ZERO_DIGITS = str.maketrans("123456789", "000000000")


def is_log_stamp(stamp):
    """Whether STAMP is YYYYMMDD-HHMMSS or YYYYMMDD-HHMMSS-N (N: no leading 0)."""
    shape = stamp.translate(ZERO_DIGITS)
    if shape == LOG_STAMP_SHAPE:
        return True
    return shape[:16] == LOG_STAMP_SHAPE + "-" and shape[16:] == "0" * (len(shape) - 16) \
        and stamp[16:17] not in ("", "0")


def job_log_names(name, directory_fd):
    """The names of job NAME's logs (NAME-STAMP.log) in its log directory,
    open as DIRECTORY_FD, oldest first: by start second, then by the number
    after it (its length, then its digits)."""
    prefix = name + "-"
    keyed = []
    for file_name in os.listdir(directory_fd):
        if file_name.startswith(prefix) and file_name.endswith(".log"):
            stamp = file_name[len(prefix):-4]
            if is_log_stamp(stamp):
                keyed.append((stamp[:15], len(stamp), file_name))
    keyed.sort()
    return [file_name for _, _, file_name in keyed]


def prune_logs(config, job, current, now):
    """Apply JOB's log_retention to its log directory: delete the logs beyond
    the latest `runs` and those of runs started before NOW less `age` (by the
    local time in their names), never CURRENT (this run's log path: the only
    running one, as the run holds the job's lock). Only regular files with
    log names go, never what a symlink points to."""
    runs, age = job.log_retention
    if runs is None and age is None:
        return
    directory_fd = _open_log_directory(os.path.join(config.output_directory, job.name))
    try:
        names = job_log_names(job.name, directory_fd)
        count = 0 if runs is None else max(0, len(names) - runs)
        if age is not None:
            oldest = time.strftime("%Y%m%d-%H%M%S", time.localtime(now - age))
            stamp = slice(len(job.name) + 1, len(job.name) + 16)
            while count < len(names) and names[count][stamp] < oldest:
                count += 1
        for file_name in names[:count]:
            if file_name != os.path.basename(current):
                _delete_regular_file(file_name, directory_fd)
    finally:
        os.close(directory_fd)


def _delete_regular_file(name, directory_fd):
    """Unlink NAME in DIRECTORY_FD if it is a regular file: a symlink (which
    unlink would not follow anyway) or a directory put there is left."""
    try:
        if stat.S_ISREG(os.stat(name, dir_fd=directory_fd, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=directory_fd)
    except FileNotFoundError:
        pass  # gone meanwhile


def _set_child_subreaper(on):
    """Make orphaned descendants our children instead of init's, so that nothing
    escapes the kill by double-forking or setsid (Linux 3.4+). Return the
    previous setting, or None where unsupported."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl, c_int, c_ulong, byref = _c_function("prctl")
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    previous = c_int(0)
    zero = c_ulong(0)
    if prctl(PR_GET_CHILD_SUBREAPER, byref(previous), zero, zero, zero):
        return None
    if bool(previous.value) != on and prctl(
            PR_SET_CHILD_SUBREAPER, c_ulong(int(on)), zero, zero, zero):
        return None
    return bool(previous.value)




def release_free_memory():
    """Give the C heap's free pages back to the system (glibc's malloc_trim;
    nothing elsewhere). run-job stays resident as long as its job runs, and
    loading leaves freed memory behind: the compiler's, when run as a script
    (see run_as_script), which free() alone keeps for reuse."""
    if not sys.platform.startswith("linux"):
        return
    try:
        trim, _, c_ulong, _ = _c_function("malloc_trim")  # size_t is unsigned long on Linux
    except (ImportError, OSError, AttributeError, TypeError):
        return  # not glibc
    trim(c_ulong(0))


def _ensure_standard_fds():
    """Open /dev/null on closed descriptors 0-2, so pipes never land there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _quote_word(word):
    if word and not word.strip(_SHELL_SAFE):
        return word
    if word.isprintable():
        return "'" + word.replace("'", "'\\''") + "'"
    return "$'" + word.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"


def quote_argv(argv):
    """ARGV as one line a shell would read back."""
    return " ".join(_quote_word(word) for word in argv)


def describe_wait_status(wait_status):
    if os.WIFSIGNALED(wait_status):
        return "killed by %s" % _signal_name(os.WTERMSIG(wait_status))
    return "exit status %d" % os.WEXITSTATUS(wait_status)


def _iso_time(epoch):
    """EPOCH as local ISO 8601 to the millisecond, rounded as the records'
    round(EPOCH, 3) is, so that a time's text and number agree."""
    whole, milliseconds = divmod(int(round(epoch * 1000)), 1000)
    local = time.localtime(whole)
    return "%s.%03d%s" % (time.strftime("%Y-%m-%dT%H:%M:%S", local), milliseconds,
                          time.strftime("%z", local))


def _user_name():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _exec_child(argv, environment, stdio, keep, dispositions, mask, error_w):
    """In the forked child: lead a new process group, stdin /dev/null, stdout
    and stderr the pipes, no other descriptor but KEEP (the lock), then exec.
    Never returns; a failure is written to ERROR_W for the parent."""
    try:
        signals = _signals()
        os.setpgid(0, 0)
        for signum, disposition in dispositions:
            signals.signal(signum, disposition)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        keep = set(keep) | {0, 1, 2, error_w}
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            names = os.listdir("/dev/fd")
        for name in names:
            if int(name) not in keep:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        for fd in keep - {error_w}:
            os.set_inheritable(fd, True)
        signals.pthread_sigmask(signals.SIG_SETMASK, mask)
        _exec_searching_path(argv, environment)
    except BaseException as error:
        try:
            message = getattr(error, "strerror", None) or str(error) or "error"
            if isinstance(error, PermissionError) and error.filename is not None \
                    and os.path.isdir(error.filename):
                message = "it is a directory, not a program"  # exec says permission denied
            os.write(error_w, message.encode("utf-8", "replace"))
        finally:
            os._exit(127)


def _exec_searching_path(argv, environment):
    """os.execvpe's search of the environment's PATH (all bytes), without
    what it needs: os.get_exec_path imports `warnings`, which the service user
    may not be able to read (a pyenv interpreter under /root) after the switch."""
    command = argv[0]
    if b"/" in command:
        os.execve(command, argv, environment)
    search = environment.get(b"PATH")
    if search is None:
        search = os.defpath.encode()
    first_refusal = None
    for directory in search.split(b":"):
        try:
            os.execve(os.path.join(directory, command), argv, environment)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except PermissionError as error:
            # A program found but not executable is reported unless found
            # later; a directory this user cannot search hides nothing found.
            if os.access(directory or b".", os.X_OK):
                first_refusal = first_refusal or error
        except OSError as error:
            first_refusal = first_refusal or error
    raise first_refusal or FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)


class OutputCheck(object):
    """A run's output matched line by line against the job's `fail_on_output`
    and `stderr_ignore` patterns (LinePatterns; the latter only with
    fail_on_stderr), in bulk: the complete lines of each chunk read at once,
    the unfinished one kept until its end (at most LINE_MATCH_MAX bytes of
    it). MATCHED: (pattern, stream tag, line) of the first line that fails
    the run, or None; COUNTED: whether stderr had a line stderr_ignore does
    not cover. The run resets them as its commands and attempts start."""

    def __init__(self, fail_on_output, stderr_ignore):
        self.fail_on_output = fail_on_output
        self.stderr_ignore = stderr_ignore
        self.pending = {b"O": b"", b"E": b""}
        self.passing = {b"O": False, b"E": False}  # in a line past LINE_MATCH_MAX
        self.matched = None
        self.counted = False

    def feed(self, tag, data):
        start = 0
        if self.pending[tag] or self.passing[tag]:
            newline = data.find(b"\n")
            if newline < 0:
                if not self.passing[tag]:
                    self._keep(tag, data)
                return
            if not self.passing[tag]:
                self._line(tag, (self.pending[tag] + data[:newline])[:LINE_MATCH_MAX])
            self.pending[tag], self.passing[tag] = b"", False
            start = newline + 1
        stop = data.rfind(b"\n") + 1
        if stop > start:
            self._lines(tag, data, start, stop)
        if max(start, stop) < len(data):
            self._keep(tag, data[max(start, stop):])

    def finish(self):
        """The end of a command: its unfinished lines are lines."""
        for tag in (b"O", b"E"):
            if self.pending[tag]:
                self._line(tag, self.pending[tag])
            self.pending[tag], self.passing[tag] = b"", False

    def reason(self):
        pattern, tag, line = self.matched
        text = line[:4 * QUOTED_VALUE_LIMIT].decode("utf-8", "replace")
        return 'output matched fail_on_output pattern %s on %s: "%s"' % (
            quoted_value(pattern), "stdout" if tag == b"O" else "stderr",
            printable(text, QUOTED_VALUE_LIMIT))

    def _keep(self, tag, piece):
        pending = self.pending[tag] + piece
        if len(pending) >= LINE_MATCH_MAX:
            self._line(tag, pending[:LINE_MATCH_MAX])
            pending, self.passing[tag] = b"", True
        self.pending[tag] = pending

    def _line(self, tag, line):
        if self.matched is None and self.fail_on_output is not None:
            pattern = self.fail_on_output.line_match(line)
            if pattern is not None:
                self.matched = (pattern, tag, line)
        if tag == b"E" and not self.counted and self.stderr_ignore is not None:
            self.counted = self.stderr_ignore.line_match(line) is None

    def _lines(self, tag, data, start, stop):
        """The whole lines DATA[START:STOP]."""
        if self.matched is None and self.fail_on_output is not None:
            found = self.fail_on_output.first_match(data, start, stop)
            if found is not None:
                self.matched = (found[0], tag, found[1])
        if tag == b"E" and not self.counted and self.stderr_ignore is not None:
            self.counted = self.stderr_ignore.has_unmatched_line(data, start, stop)


class JobRun(object):
    """One run in flight: its lock, log, pipes and processes. As a child
    subreaper run-job is the parent of every orphan of the job, so "the job's
    processes are gone" is simply "run-job has no children left"."""

    def __init__(self, job, lock, log, live, start):
        self.job = job
        self.lock = lock
        self.log = log
        self.live = live
        self.start = start
        self.started = time.monotonic()
        self.deadline = self.started + job.timeout if job.timeout > 0 else None
        self.signals = _signals()
        self.stop_signal = None
        self.command_pids = set()
        self.statuses = {}        # command pid -> wait status, once reaped
        self.readers = {}         # pipe read end -> stream tag
        self.write_ends = []
        self.stderr_bytes = 0
        self.stderr_tail = b""
        self.hook_bytes = 0       # of the hook running (run_hook)
        self.check = None  # an OutputCheck when the job's patterns need one
        stderr_ignore = job.stderr_ignore if job.fail_on_stderr else None
        if job.fail_on_output is not None or stderr_ignore is not None:
            self.check = OutputCheck(job.fail_on_output, stderr_ignore)
        self.poller = select.poll()
        self.saved_handlers = []
        self.saved_wakeup = None
        self.wakeup = None
        self.devnull = None
        self.subreaper_before = None
        # As bytes: os.environb keeps what was inherited as it was, and job
        # files are UTF-8 whatever the locale (3.6's C locale: ASCII).
        self.environment = dict(os.environb)
        self.environment.update((utf8_bytes(str(key)), utf8_bytes(str(value)))
                                for key, value in job.environment.items())

    # -- setting up and tearing down

    def open(self):
        self._install_signals()
        self.subreaper_before = _set_child_subreaper(True)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        for tag in (b"O", b"E"):
            self._open_pipe(tag)

    def _open_pipe(self, tag):
        """A pipe whose output is logged as stream TAG; return its write end
        (in write_ends, which _drain closes)."""
        read_end, write_end = os.pipe()
        try:
            fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only costs more wake-ups
        self.readers[read_end] = tag
        self.write_ends.append(write_end)
        self.poller.register(read_end, select.POLLIN)
        return write_end

    def _install_signals(self):
        signals = self.signals
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        self.wakeup = (read_end, write_end)
        self.poller.register(read_end, select.POLLIN)
        self.saved_wakeup = signals.set_wakeup_fd(write_end)
        for signum in (signals.SIGTERM, signals.SIGINT, signals.SIGHUP):
            self.saved_handlers.append((signum, signals.signal(signum, self._on_stop)))
        # A handler, even one doing nothing, makes SIGCHLD wake up poll().
        self.saved_handlers.append(
            (signals.SIGCHLD, signals.signal(signals.SIGCHLD, self._on_child)))

    def _on_stop(self, signum, frame):
        if self.stop_signal is None:
            self.stop_signal = signum

    def _on_child(self, signum, frame):
        pass

    def child_dispositions(self):
        """What the job starts with: our handlers reset, what was ignored when
        run-job started stays ignored, SIGPIPE and SIGXFSZ back to default
        (Python ignores them)."""
        signals = self.signals
        dispositions = [(signals.SIGPIPE, signals.SIG_DFL)]
        if hasattr(signals, "SIGXFSZ"):
            dispositions.append((signals.SIGXFSZ, signals.SIG_DFL))
        for signum, before in self.saved_handlers:
            ignored = before == signals.SIG_IGN
            dispositions.append((signum, signals.SIG_IGN if ignored else signals.SIG_DFL))
        return dispositions

    def close(self):
        signals = self.signals
        stop_process_tree(self._tree, 0)  # something left only after a bug in run-job
        for fd in list(self.readers) + self.write_ends:
            os.close(fd)
        self.readers = {}
        self.write_ends = []
        if self.devnull is not None:
            os.close(self.devnull)
            self.devnull = None
        if self.subreaper_before is False:
            _set_child_subreaper(False)
        if self.wakeup is not None:
            for signum, handler in reversed(self.saved_handlers):
                signals.signal(signum, signals.SIG_DFL if handler is None else handler)
            signals.set_wakeup_fd(self.saved_wakeup)
            for fd in self.wakeup:
                os.close(fd)
            self.wakeup = None

    # -- running

    def run(self, commands):
        """Run COMMANDS in sequence until one fails, and all of them again
        while `retries` allow; stop whatever they leave behind; log all
        output. Return the Outcome."""
        attempts = self.job.retries + 1
        if attempts > 1:
            self.log.note("attempt", "1 of %d" % attempts)
        outcome = self._attempt(commands)
        attempt = 1
        while self._retry(outcome, attempt, attempts):
            if self._interruption() is not None:  # stopped during the delay
                outcome = self._interruption()
                break
            outcome = self._attempt(commands)
            attempt += 1
        outcome.attempts = attempt
        self._drain()
        return outcome

    def _attempt(self, commands):
        outcome = None
        last_status = 0
        if self.check is not None:
            self.check.matched = None
        for number, argv in enumerate(commands, 1):
            outcome = self._interruption()
            if outcome is None:
                outcome, last_status = self._run_command(number, argv)
            if outcome is not None:
                break
        if outcome is None:
            outcome = Outcome("success", "success", last_status)
        if self._reap():
            self.log.note("leftovers", "%d processes left behind; stopping them"
                          % len(self._tree()))
            self._stop_tree()
        return outcome

    def _retry(self, outcome, attempt, attempts):
        """Whether to run the commands again after OUTCOME of attempt ATTEMPT
        (of ATTEMPTS at most), once retry_delay, doubled for each attempt
        made, has passed. Never after a timeout, a kill or an exit code of
        halt_on_exit_codes; not when the delay would pass the deadline: the
        run then ends with this failure."""
        if outcome.status != "failed" or attempt >= attempts:
            return False
        if outcome.exit_code in (getattr(self.job, "halt_on_exit_codes", None) or ()):
            self.log.note("attempt", "%d of %d not made: exit code %d is in "
                          "halt_on_exit_codes" % (attempt + 1, attempts, outcome.exit_code))
            return False
        delay = self.job.retry_delay * 2.0 ** min(attempt - 1, RETRY_DOUBLINGS_MAX)
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            self.log.note("attempt", "%d of %d not made: its delay of %gs would pass the "
                          "deadline (timeout %gs)" % (attempt + 1, attempts, delay,
                                                      self.job.timeout))
            return False
        self.log.note("attempt", "%d of %d in %gs" % (attempt + 1, attempts, delay))
        self._pause(delay)
        return True

    def _pause(self, seconds):
        """Wait SECONDS, or less when run-job is asked to stop."""
        end = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < end:
            self._pump(end - time.monotonic())

    def _interruption(self):
        if self.stop_signal is not None:
            replacer = None
            if self.stop_signal == self.signals.SIGTERM:
                replacer = self.lock.replaced_by(os.getpid(), self.start)
            if replacer is not None:
                return Outcome("replaced", replaced_reason(replacer))
            return Outcome("killed", "stopped by %s sent to run-job"
                           % _signal_name(self.stop_signal))
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return Outcome("timeout", "timeout %gs reached" % self.job.timeout)
        return None

    def _run_command(self, number, argv):
        """Run one command; return (Outcome or None to go on, wait status)."""
        self.log.note("run", "%d %s" % (number, quote_argv(argv)))
        pid, error = self._spawn(argv, self.environment, self.write_ends)
        if error is not None:
            self.log.note("status", "%d cannot start: %s" % (number, error))
            program = printable(argv[0], QUOTED_PATH_LIMIT)
            return Outcome("failed", "cannot start %s: %s" % (program, error)), None
        self.lock.describe(os.getpid(), pid, self.start, self.job.kill_grace, self.log.path)
        if number == 1:  # done loading: from now on only the waiting, while the job execs
            release_free_memory()
        stderr_before = self.stderr_bytes
        if self.check is not None:
            self.check.counted = False
        status = self._wait(pid)
        if status is None:
            outcome = self._interruption()
            self._stop_tree()
            status = self.statuses.get(pid)
            if status is not None:
                outcome.set_wait_status(status)
                self.log.note("status", "%d %s" % (number, describe_wait_status(status)))
            return outcome, status
        self._pump_ready()
        if self.check is not None:
            self.check.finish()
        self.log.note("status", "%d %s" % (number, describe_wait_status(status)))
        if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) not in self.job.success_exit_codes:
            return Outcome("failed", describe_wait_status(status), status), status
        failure = self._output_failure(stderr_before)
        if failure is not None:
            return Outcome("failed", failure, status), status
        return None, status

    def _output_failure(self, stderr_before):
        """Why the output of the command that just ended fails the run, or
        None. STDERR_BEFORE: stderr's byte count when it started."""
        check = self.check
        if check is not None and check.matched is not None:
            return check.reason()
        if not self.job.fail_on_stderr:
            return None
        if check is not None and check.stderr_ignore is not None:
            if check.counted:
                return "wrote to stderr a line that stderr_ignore does not match (fail_on_stderr)"
            return None
        if self.stderr_bytes > stderr_before:
            return "wrote to stderr (fail_on_stderr)"
        return None

    def _spawn(self, argv, environment, outputs):
        """Fork and exec ARGV with ENVIRONMENT, its stdout and stderr the pipe
        write ends OUTPUTS; return (pid, None), or (None, why it cannot start)."""
        signals = self.signals
        command = [utf8_bytes(word) for word in argv]  # not in the child: it must exec
        error_r, error_w = os.pipe()
        handled = [signum for signum, _ in self.saved_handlers]
        # Blocked across fork so that a signal between fork and exec is not
        # swallowed by Python's handler in the child but acted on after exec.
        mask = signals.pthread_sigmask(signals.SIG_BLOCK, handled)
        try:
            try:
                pid = os.fork()
            except OSError as error:
                os.close(error_r)
                os.close(error_w)
                return None, error.strerror
            if pid == 0:
                _exec_child(command, environment, [self.devnull] + outputs,
                            [self.lock.fd], self.child_dispositions(), mask, error_w)
        finally:
            signals.pthread_sigmask(signals.SIG_SETMASK, mask)
        os.close(error_w)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child has done it already and exec'd
        try:
            report = b""
            chunk = os.read(error_r, 4096)
            while chunk:
                report += chunk
                chunk = os.read(error_r, 4096)
        finally:
            os.close(error_r)
        if report:
            os.waitpid(pid, 0)
            return None, report.decode("utf-8", "replace")
        self.command_pids.add(pid)
        return pid, None

    def _wait(self, pid):
        """Log output until command PID ends; return its wait status, or None
        when the deadline passed or run-job was asked to stop first."""
        while True:
            self._reap()
            if pid in self.statuses:
                return self.statuses[pid]
            if self.stop_signal is not None:
                return None
            timeout = None
            if self.deadline is not None:
                timeout = self.deadline - time.monotonic()
                if timeout <= 0:
                    return None
            self._pump(timeout)

    def _pump(self, timeout):
        """Wait up to TIMEOUT seconds (None: no limit) for output or a signal,
        and log the output. Return whether output was read."""
        if timeout is None:
            milliseconds = -1
        elif timeout <= 0:
            milliseconds = 0  # only what is there already: rounding up would wait 1 ms
        else:
            # +1 not to wake just before a deadline; poll() takes at most
            # 2**31-1 ms (24.8 days): a longer deadline is waited in turns.
            milliseconds = min(int(timeout * 1000) + 1, POLL_MAX_MILLISECONDS)
        got_output = False
        for fd, _ in self.poller.poll(milliseconds):
            if fd == self.wakeup[0]:
                try:
                    os.read(fd, 4096)
                except BlockingIOError:
                    pass
                continue
            data = os.read(fd, READ_SIZE)
            if data:
                self._output(self.readers[fd], data)
                got_output = True
            else:
                self.poller.unregister(fd)
                os.close(fd)
                del self.readers[fd]
        return got_output

    def _pump_ready(self):
        """Log what is already in the pipes (bounded: others may still write)."""
        for _ in range(2 * PIPE_SIZE // READ_SIZE + 2):
            if not self._pump(0):
                return

    def _output(self, tag, data):
        if tag == HOOK_STREAM:
            self._hook_output(data)
            return
        self.log.write(tag, data)
        if self.check is not None:
            self.check.feed(tag, data)
        if tag == b"E":
            self.stderr_bytes += len(data)
            self.stderr_tail = (self.stderr_tail + data)[-STDERR_TAIL_BYTES:]
        self._show(1 if tag == b"O" else 2, data)

    def _show(self, fd, data):
        """Output shown as it comes on a terminal (live)."""
        if self.live:
            try:
                _write_all(fd, data)
            except OSError:
                self.live = False

    def _drain(self):
        """Close our write ends and log output until every pipe is at its end;
        only a process that escaped the kill could hold one open, so wait
        DRAIN_WAIT at most."""
        for fd in self.write_ends:
            os.close(fd)
        self.write_ends = []
        end = time.monotonic() + DRAIN_WAIT
        while self.readers and time.monotonic() < end:
            self._pump(end - time.monotonic())

    # -- hooks

    def run_hook(self, key, commands, environment, timeout):
        """Run hook KEY's COMMANDS (argvs) in sequence until one fails, with
        ENVIRONMENT, stdin /dev/null, stdout and stderr into the log as stream
        HOOK_STREAM, within TIMEOUT seconds (0: no limit), then stop what they
        left behind; as the job's commands, with the same kill_grace. Return
        None when every command succeeded, else why not (one line)."""
        output = self._open_pipe(HOOK_STREAM)
        self.deadline = time.monotonic() + timeout if timeout > 0 else None
        self.hook_bytes = 0
        failure = None
        for number, argv in enumerate(commands, 1):
            failure = self._hook_command(key, number, argv, environment, output, timeout)
            if failure is not None:
                break
        if self._reap():
            self.log.note("hook_leftovers", "%s: %d processes left behind; stopping them"
                          % (key, len(self._tree())))
            self._stop_tree()
        self._drain()
        if self.hook_bytes > HOOK_OUTPUT_MAX:
            self.log.note("hook_output", "%s: %d bytes, the first %d logged"
                          % (key, self.hook_bytes, HOOK_OUTPUT_MAX))
        return failure

    def _hook_output(self, data):
        """Log (and show, when live) a hook's output up to HOOK_OUTPUT_MAX
        bytes; read and drop the rest, so that the hook never blocks."""
        room = HOOK_OUTPUT_MAX - self.hook_bytes
        self.hook_bytes += len(data)
        if room <= 0:
            return
        self.log.write(HOOK_STREAM, data[:room])
        self._show(2, data[:room])

    def _hook_command(self, key, number, argv, environment, output, timeout):
        program = printable(argv[0], QUOTED_PATH_LIMIT)
        self.log.note("hook", "%s %d %s" % (key, number, quote_argv(argv)))
        pid, error = self._spawn(argv, environment, [output, output])
        if error is not None:
            self.log.note("hook_status", "%s %d cannot start: %s" % (key, number, error))
            return "cannot start %s: %s" % (program, error)
        self.lock.describe(os.getpid(), pid, self.start, self.job.kill_grace, self.log.path)
        status = self._wait(pid)
        failure = None
        if status is None:
            if self.stop_signal is not None:
                failure = "stopped by %s sent to run-job" % _signal_name(self.stop_signal)
            else:
                failure = "hook_timeout %gs reached" % timeout
            self._stop_tree()
            status = self.statuses.get(pid)
        else:
            self._pump_ready()
        if status is not None:
            self.log.note("hook_status", "%s %d %s" % (key, number, describe_wait_status(status)))
            if failure is None and status != 0:
                failure = describe_wait_status(status)
        return None if failure is None else "%s: %s" % (program, failure)

    # -- stopping the tree

    def _reap(self):
        """Reap exited children (commands and adopted orphans); return
        whether any child remains, that is whether the job still lives."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid in self.command_pids:
                self.statuses[pid] = status

    def _tree(self):
        """The job's processes, zombies too until reaped: run-job's
        descendants; [] once run-job has no child left."""
        if not self._reap():
            return []
        try:
            return descendants(list(_all_processes()), [os.getpid()])
        except OSError:
            return []

    def _stop_tree(self):
        """SIGTERM, SIGKILL after kill_grace, logging output meanwhile."""
        stop_process_tree(self._tree, self.job.kill_grace, self._log_for)

    def _log_for(self, seconds):
        """Log output for SECONDS, less once run-job has no child left."""
        end = time.monotonic() + seconds
        while self._reap() and time.monotonic() < end:
            self._pump(end - time.monotonic())




def _log_header(log, job, commands, start):
    log.note("job", job.name)
    for argv in commands:
        log.note("command", quote_argv(argv))
    log.note("user", _user_name())
    log.note("pid", os.getpid())
    log.note("start", _iso_time(start))


def _log_set_aside(log, set_aside):
    for line in set_aside:
        log.note("records", line)


def _log_footer(log, outcome, duration):
    log.note("outcome", outcome.status)
    log.note("reason", outcome.reason)
    if outcome.exit_code is not None:
        log.note("exit", outcome.exit_code)
    if outcome.signal is not None:
        log.note("signal", "%d %s" % (outcome.signal, _signal_name(outcome.signal)))
    if outcome.attempts > 1:
        log.note("attempts", outcome.attempts)
    log.note("duration", "%.3f" % duration)


def outcome_sentence(job, outcome, duration, log_path):
    after = "%.1fs" % duration
    if outcome.attempts > 1:
        after += " and %d attempts" % outcome.attempts
    if outcome.status == "success":
        return "job %s succeeded after %s; log %s" % (job.name, after, log_path)
    verb = {"failed": "failed", "timeout": "timed out", "killed": "was killed",
            "replaced": "was replaced"}
    return "job %s %s (%s) after %s; log %s" % (
        job.name, verb[outcome.status], outcome.reason, after, log_path)


def report_outcome(job, outcome, duration, log_path, stderr_tail, live,
                   logging_error=None, hook_error=None, mail_error=None):
    """Quiet on success unless on a terminal (cron mails any output), even
    when a `logging` handler or a hook failed or a mail could not be sent
    (the log and the state say so); on failure one summary line, the
    handler's, the hook's and the mail's failure in one more each, and the
    tail of the job's stderr, on stderr."""
    text = "run-job: %s\n" % printable(outcome_sentence(job, outcome, duration, log_path))
    for label, error in (("logging", logging_error), ("hook", hook_error),
                         ("mail", mail_error)):
        if error is not None and (live or not outcome.quiet):
            text += "run-job: %s: %s\n" % (label, printable(str(error)))
    if outcome.quiet:
        if live:
            _write_stderr(text)
        return
    if stderr_tail and not live:
        lines = stderr_tail.splitlines(True)[-STDERR_TAIL_LINES:]
        tail = b"".join(lines)
        if not tail.endswith(b"\n"):
            tail += b"\n"
        text = text.encode("utf-8", "surrogateescape") + (
            b"run-job: the end of its stderr:\n") + tail
    _write_stderr(text)


def _write_stderr(text):
    if not isinstance(text, bytes):
        text = text.encode("utf-8", "surrogateescape")
    try:
        sys.stderr.flush()
        _write_all(2, text)
    except (OSError, ValueError):
        pass


# ---- 8. state and history --------------------------------------------------------

# STATE_DIRECTORY/NAME.state is the job's state, one JSON object on one line:
# the last run's record (RUN_KEYS) and what outlives a run: the consecutive
# failures, the last success, the last skip and the marks of the policies
# below (paused, halted). STATE_DIRECTORY/NAME.history gets one line per run,
# skip or command; past HISTORY_MAX_BYTES it becomes NAME.history.1 (replacing
# the older one), so a job keeps at most about twice that.
# Every change to either file is made under the job's state lock,
# RUN_DIRECTORY/NAME.state.lock, held for the milliseconds a change takes and
# never while the job runs: runs, skips and commands (a --pause while a run
# ends) never lose each other's changes. The state file is replaced
# atomically, so a reader (--status) needs no lock. Records are JSON objects
# of strings, numbers, booleans and nulls, read and written here without the
# json module, which a plain run does without.

HISTORY_MAX_BYTES = 1 << 20
# Larger files are none of ours (see read_regular_file): a state is a line of
# a few hundred bytes, a history line as long.
STATE_MAX_BYTES = 1 << 20
HISTORY_FILE_MAX_BYTES = 2 * HISTORY_MAX_BYTES
RUN_KEYS = ("job", "status", "reason", "exit_code", "signal", "start",
            "start_time", "duration", "log", "pid", "logging_error", "set_aside")
# A change waits this long for the state lock: its holders hold it for
# milliseconds, so a longer wait means a process of the job's user holds it.
STATE_LOCK_WAIT = 10.0


def state_path(config, name):
    return os.path.join(config.state_directory, name + ".state")


def history_path(config, name):
    return os.path.join(config.state_directory, name + ".history")


def _json_string(text):
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"%s"' % text
    escaped = []
    for character in text:
        code = ord(character)
        if character in '"\\' or code < 0x20 or 0xd800 <= code < 0xe000 \
                or not character.isprintable():
            escaped.append("\\u%04x" % code if code < 0x10000 else character)
        else:
            escaped.append(character)
    return '"%s"' % "".join(escaped)


def _json_value(value):
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 3))
    return _json_string(str(value))


def json_line(record):
    """RECORD (a flat dict of str, int, float, bool, None) as one JSON line."""
    return "{%s}\n" % ", ".join("%s: %s" % (_json_string(key), _json_value(value))
                                for key, value in record.items())


_RECORD_WORDS = {"true": True, "false": False, "null": None}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# What str() of an int and repr() of a finite float are made of: no inf, no nan.
_RECORD_NUMBER_CHARACTERS = frozenset("0123456789-+.e")
_INFINITY = float("inf")


def parse_record(data):
    """The record DATA (bytes: one line as json_line writes it) as a dict,
    or None when it is anything else. Only json_line's own forms are read:
    `, ` and `: ` as separators, strings escaping with \\uXXXX alone."""
    try:
        text = data.decode("utf-8", "surrogateescape")
    except UnicodeDecodeError:
        return None
    if not text.startswith("{") or not text.endswith("}\n") or text.count("\n") != 1:
        return None
    record, position, end = {}, 1, len(text) - 2
    try:
        while position < end:
            key, position = _record_string(text, position)
            if text[position:position + 2] != ": ":
                return None
            record[key], position = _record_value(text, position + 2)
            if text[position:position + 2] == ", " and position + 2 < end:
                position += 2
            elif position != end:
                return None
    except ValueError:
        return None
    return record


def _record_string(text, position):
    """The string that starts at POSITION, and the position after it."""
    if text[position:position + 1] != '"':
        raise ValueError("not a string")
    close = text.index('"', position + 1)
    body = text[position + 1:close]
    if "\\" not in body:  # no escape: most strings
        return body, close + 1
    parts = body.split("\\")
    for index, part in enumerate(parts[1:], 1):
        if part[:1] != "u" or len(part) < 5 or not _HEX_DIGITS.issuperset(part[1:5]):
            raise ValueError("not an escape json_line writes")
        parts[index] = chr(int(part[1:5], 16)) + part[5:]
    return "".join(parts), close + 1


def _record_value(text, position):
    if text[position:position + 1] == '"':
        return _record_string(text, position)
    # Up to the next comma, or the closing brace: a "}" before that is in
    # the word, which no value holds, so the record is refused either way.
    close = text.find(",", position)
    if close == -1:
        close = len(text) - 2
    word = text[position:close]
    if word in _RECORD_WORDS:
        return _RECORD_WORDS[word], close
    if not word or not _RECORD_NUMBER_CHARACTERS.issuperset(word):
        raise ValueError("not a value json_line writes")
    if word.lstrip("-").isdigit():
        return int(word), close
    number = float(word)  # ValueError for a misplaced sign, dot or e
    if number in (_INFINITY, -_INFINITY):  # 1e999: json_line never writes one
        raise ValueError("not a finite number")
    return number, close


def write_file_atomic(path, data, mode=0o644, dir_fd=None):
    """Replace PATH (relative to DIR_FD if given) with DATA (bytes): a
    temporary file in the same directory, fsync, explicit MODE, rename.
    Readers see the old or the new file."""
    fd, temporary = _create_temporary(path, mode, dir_fd)
    try:
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(temporary, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        if fd is not None:
            os.close(fd)
        os.unlink(temporary, dir_fd=dir_fd)
        raise


def _create_temporary(path, mode, dir_fd=None):
    """(descriptor, path) of a new file .BASE.PID.tmp beside PATH, with MODE.
    A file of that name was left by a crashed process that had our pid; a
    name that something else holds (a directory put there) is passed over."""
    directory, base = os.path.split(path)
    for number in range(100):
        suffix = "-%d" % number if number else ""
        temporary = os.path.join(directory, ".%s.%d%s.tmp" % (base, os.getpid(), suffix))
        try:
            os.unlink(temporary, dir_fd=dir_fd)
        except OSError:
            pass  # none there, or a directory: O_EXCL below refuses it
        try:
            return _open_regular_file(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                      mode, dir_fd), temporary
        except FileExistsError:
            continue
    raise BadFileError(path, "cannot be replaced: every name for its temporary file is taken")


def append_history(path, line):
    """Append LINE (bytes) to the history file PATH, first moving a file that
    would grow past HISTORY_MAX_BYTES to PATH.1. Under the state lock. A last
    line cut short (a full disk) is ended first, so LINE stays a line of its own."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
    fd = _open_regular_file(path, flags)
    try:
        size = os.fstat(fd).st_size
        if size and size + len(line) > HISTORY_MAX_BYTES:
            os.rename(path, path + ".1")
            os.close(fd)
            fd = _open_regular_file(path, flags)
            size = 0
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        _write_all(fd, line)
    finally:
        os.close(fd)


class StateLock(object):
    """Job NAME's state lock, held inside a `with` block."""

    def __init__(self, config, name):
        self.path = state_lock_path(config, name)
        self.name = name
        self.fd = None

    def __enter__(self):
        self.fd = _open_lock_file(self.path, self.name, "state lock")
        try:
            _flock_within(self.fd, STATE_LOCK_WAIT, self.path)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exception):
        os.close(self.fd)


def _flock_within(fd, seconds, path):
    """Take the exclusive flock of FD, waiting at most SECONDS: a blocking
    flock would wait forever for a process that holds it forever."""
    deadline = time.monotonic() + seconds
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise ProcessControlError("%s: held by another process for over %d s; "
                                          "find it with fuser %s" % (path, seconds, path))
            time.sleep(pause)
            pause = min(pause * 2, 0.02)


def read_job_state(config, name):
    """Job NAME's state as a dict, or None when it never ran. Raises
    BadFileError when the file is not a state of the job, OSError when it
    cannot be read."""
    path = state_path(config, name)
    text = read_regular_file(path, STATE_MAX_BYTES)
    if text is None:
        return None
    state = parse_record(text)
    if state is None or state.get("job") != name:
        raise BadFileError(path, "is not a state record of job %s" % name)
    return state


def recorded_number(state, key, default=0):
    """STATE[KEY] if it is a finite number (a state file is anyone's to
    damage: 1e999 reads as infinity), else DEFAULT."""
    value = (state or {}).get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and value - value == 0:  # neither infinite nor NaN
        return value
    return default


def mark_set(state, key):
    """Whether STATE holds the mark KEY (paused, halted): set to its time;
    one cleared by hand with false, 0, "" or null is no mark. Runs, --status
    and --catch-up all ask this."""
    return bool((state or {}).get(key))


def recorded_count(state, key):
    """STATE[KEY] as a whole number from 0 to COUNT_MAX: a huge count (a
    damaged state) is COUNT_MAX; a negative one, or no finite number, 0."""
    value = recorded_number(state, key)
    return int(min(max(value, 0), COUNT_MAX))


def read_state_for_run(config, name, now):
    """(state, set_aside) for a run or a skip of job NAME about to decide:
    the state ({} when none), read without the lock; a bad state or history
    file is first set aside, SET_ASIDE saying so (see update_state)."""
    try:
        state = read_job_state(config, name)
        if history_file_problem(history_path(config, name)) is None:
            return state or {}, []
    except (BadFileError, OSError):
        pass
    found = {}
    set_aside = update_state(config, name, found.update, now)
    return found, set_aside


def update_state(config, name, change, now):
    """Change job NAME's state under its state lock. CHANGE(state) updates
    the state dict in place and returns the record to append to the history,
    or None. A state or history file that is not ours (another process of
    the service user may have put anything there) is set aside first, and
    the state and the history line say so in `set_aside`. Return the lines
    saying what was set aside."""
    with StateLock(config, name):
        state, set_aside = set_aside_bad_records(config, name, now)
        entry = change(state)
        if set_aside:
            state["set_aside"] = "\n".join(set_aside)
            if entry is not None:
                entry["set_aside"] = state["set_aside"]
        write_file_atomic(state_path(config, name), _record_bytes(state))
        if entry is not None:
            append_history(history_path(config, name), _record_bytes(entry))
    return set_aside


def _record_bytes(record):
    return json_line(record).encode("utf-8", "surrogateescape")


def set_aside_bad_records(config, name, now):
    """(state, lines): job NAME's state, read once ({"job": NAME} when there
    is none), and each bad state or history file (see read_state_or_problem)
    renamed to PATH.bad-YYYYmmdd-HHMMSS, so that the job's state starts
    afresh; one line for each, saying what was done. Under the state lock."""
    lines = []
    state, problem = read_state_or_problem(config, name)
    history = history_path(config, name)
    for label, path, problem in (("state", state_path(config, name), problem),
                                 ("history", history, history_file_problem(history)),
                                 ("history", history + ".1",
                                  history_file_problem(history + ".1"))):
        if problem is None:
            continue
        try:
            lines.append("%s file set aside: %s %s; renamed to %s"
                         % (label, path, problem, set_aside_file(path, now)))
        except OSError as error:
            lines.append("%s file %s %s; cannot set it aside: %s"
                         % (label, path, problem, error.strerror))
    return state or {"job": name}, lines


def read_state_or_problem(config, name):
    """(state or None when there is none, None), or (None, what is wrong
    with job NAME's state file: see BadFileError, or not a record as
    json_line writes it, or unreadable). One read: a file replaced between
    two would be judged by one and read by the other."""
    try:
        return read_job_state(config, name), None
    except BadFileError as error:
        return None, error.problem
    except OSError as error:
        return None, "cannot be read (%s)" % error.strerror


def history_file_problem(path):
    """What is wrong with the history file PATH, as read_state_or_problem: its
    lines are not read (any may be cut by a full disk), only opened."""
    try:
        fd = open_bounded_file(path, HISTORY_FILE_MAX_BYTES)
    except BadFileError as error:
        return error.problem
    except OSError as error:
        return "cannot be opened (%s)" % error.strerror
    if fd is not None:
        os.close(fd)
    return None


# -- metrics
# With `metrics_directory` (node_exporter's textfile collector directory),
# each run, skip and command rewrites METRICS_DIRECTORY/process_control_NAME.prom
# from the job's state, under its state lock (so an older state never
# replaces a newer one's file), in the Prometheus text exposition format:
# each family's HELP and TYPE once, its series together, no timestamps (the
# collector skips a file that has any). run-job --metrics prints the same for
# every job file. The directory is opened without following a symlink, and
# the only file ever opened in it is a new temporary file of our own, renamed
# over the old one: a symlink, FIFO or directory put in its place is
# replaced, or refuses the rename, and is never written through.

METRIC_PREFIX = "process_control_"
METRICS_FILE_MODE = 0o644
COUNTED_OUTCOMES = ("success", "failed", "timeout", "killed", "replaced", "skipped")
# (name without METRIC_PREFIX, type, help); README "Metrics" says more.
METRIC_FAMILIES = (
    ("last_start_timestamp_seconds", "gauge",
     "When the job's last run started, in seconds since the epoch; 0 if it never ran."),
    ("last_finish_timestamp_seconds", "gauge",
     "When the job's last run ended, in seconds since the epoch; 0 if it never ran."),
    ("last_success_timestamp_seconds", "gauge",
     "When the job's last successful run started, in seconds since the epoch; 0 if none."),
    ("last_duration_seconds", "gauge", "How long the job's last run took."),
    ("last_exit_code", "gauge",
     "The exit code of the job's last run; 128+N if a signal N ended it."),
    ("consecutive_failures", "gauge", "Failed or timed-out runs since the last success."),
    ("halted", "gauge", "1 if the job is halted (run-job --reset clears it), else 0."),
    ("paused", "gauge", "1 if the job is paused (run-job --resume ends it), else 0."),
    ("runs_total", "counter",
     "Starts of the job recorded, by outcome; skipped: a start that did not run."),
)


def metrics_file_name(name):
    return "%s%s.prom" % (METRIC_PREFIX, name)


def metric_label(value):
    """VALUE as a label value between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def job_series(name, state):
    """The series of job NAME by its STATE ({} when it never ran): a list of
    (family, labels, value). A job that never ran has zero timestamps and
    counters, and no duration or exit code."""
    labels = 'job="%s"' % metric_label(name)
    start = recorded_number(state, "start_time", None)
    series = [("last_start_timestamp_seconds", labels, start or 0)]
    if start is not None:
        duration = recorded_number(state, "duration")
        series += [("last_finish_timestamp_seconds", labels, start + duration),
                   ("last_success_timestamp_seconds", labels,
                    recorded_number(state, "last_success_time")),
                   ("last_duration_seconds", labels, duration)]
    else:
        series += [("last_finish_timestamp_seconds", labels, 0),
                   ("last_success_timestamp_seconds", labels, 0)]
    code = last_exit_code(state)
    if code is not None:
        series.append(("last_exit_code", labels, code))
    series += [("consecutive_failures", labels, recorded_count(state, "consecutive_failures")),
               ("halted", labels, int(mark_set(state, "halted"))),
               ("paused", labels, int(mark_set(state, "paused")))]
    series += [("runs_total", '%s,outcome="%s"' % (labels, outcome),
                recorded_count(state, "count_" + outcome)) for outcome in COUNTED_OUTCOMES]
    return series


def last_exit_code(state):
    """The last run's exit code, 128+N for signal N as shells say, or None."""
    for key, offset in (("exit_code", 0), ("signal", 128)):
        value = recorded_number(state, key, None)
        if isinstance(value, int):
            return value + offset
    return None


def metrics_text(all_series):
    """The exposition text of ALL_SERIES (job_series of each job): each
    family's HELP and TYPE once, then its series, families in order."""
    grouped = dict((family, []) for family, _, _ in METRIC_FAMILIES)
    for series in all_series:
        for family, labels, value in series:
            grouped[family].append("%s%s{%s} %s\n" % (METRIC_PREFIX, family, labels,
                                                      value if isinstance(value, int)
                                                      else repr(round(value, 3))))
    parts = []
    for family, kind, text in METRIC_FAMILIES:
        if grouped[family]:
            parts.append("# HELP %s%s %s\n# TYPE %s%s %s\n" % (
                METRIC_PREFIX, family, text, METRIC_PREFIX, family, kind))
            parts.extend(grouped[family])
    return "".join(parts)


def _not_a_directory(path):
    """What is at PATH when it is not a directory (`a symlink, not
    followed`), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None
    kinds = [kind for test, kind in FILE_KINDS if test(mode)] or ["a file"]
    return kinds[0] + (", not followed" if stat.S_ISLNK(mode) else ", not a directory")


def update_metrics(config, name):
    """Rewrite job NAME's metrics file from its state when metrics_directory
    is set. Return None, or what went wrong in one line, also kept in the
    state's `metrics_error` (None again once a file is written)."""
    if config.metrics_directory is None:
        return None
    try:
        with StateLock(config, name):
            state, problem = read_state_or_problem(config, name)
            if problem is not None:
                return "metrics not written: the state file %s" % problem
            error = write_metrics_file(config.metrics_directory, name,
                                       metrics_text([job_series(name, state or {})]))
            if state is not None and state.get("metrics_error") != error:
                state["metrics_error"] = error
                write_file_atomic(state_path(config, name), _record_bytes(state))
            return error
    except (OSError, ProcessControlError) as error:
        return "metrics not written: %s" % (getattr(error, "strerror", None) or error)


def write_metrics_file(directory, name, text):
    """Replace process_control_NAME.prom in DIRECTORY with TEXT; None, or
    what went wrong."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    base = metrics_file_name(name)
    try:
        directory_fd = os.open(directory, flags)
    except OSError as error:
        return "cannot open the metrics directory %s: %s; make it a directory the " \
               "service user can write" % (directory, _not_a_directory(directory) or
                                           error.strerror)
    try:
        write_file_atomic(base, text.encode("utf-8"), METRICS_FILE_MODE, directory_fd)
    except (OSError, ProcessControlError) as error:
        return "cannot write %s: %s" % (os.path.join(directory, base),
                                         getattr(error, "strerror", None) or error)
    finally:
        os.close(directory_fd)
    return None


def run_record(name, outcome, start, duration, log_path, pid, logging_error=None,
               set_aside=()):
    values = (name, outcome.status, outcome.reason, outcome.exit_code,
              outcome.signal, _iso_time(start), round(start, 3), duration, log_path,
              pid, logging_error, "\n".join(set_aside) or None)
    record = dict(zip(RUN_KEYS, values))
    if outcome.attempts > 1:
        record["attempts"] = outcome.attempts
    return record


class Recorded(object):
    """What record_run wrote: STATE the job's state after the run (None when
    it could not be recorded), FAILURES_BEFORE the consecutive failures
    before it, SET_ASIDE the lines saying what was set aside."""

    def __init__(self, state, failures_before, set_aside):
        self.state, self.failures_before, self.set_aside = state, failures_before, set_aside


def record_run(config, name, outcome, start, duration, log_path, pid=None,
               logging_error=None, set_aside=(), job=None, trigger=None):
    """Record a run of job NAME in state and history; a failure to do so is
    reported on stderr but does not change the run's exit code. PID: the
    run's run-job, when not this process (--kill-job recording a dead one's
    run); LOGGING_ERROR: how a `logging` handler failed during the run, or
    None; SET_ASIDE: what read_state_for_run set aside; JOB: the Job whose
    halt_after_failures and halt_on_exit_codes apply (see halt_reason);
    TRIGGER: what started the run when not its crontab line or a hand (a
    catch-up), or None. Return a Recorded: the state as written (None when
    it could not be), the consecutive failures before this run, and the
    lines saying what was set aside now."""
    record = run_record(name, outcome, start, duration, log_path,
                        os.getpid() if pid is None else pid, logging_error, set_aside)
    if trigger is not None:
        record["trigger"] = trigger

    before = {}

    def change(state):
        # Only failed and timed-out runs count (halt_after_failures, backoff);
        # a run killed by hand or replaced is neither a success nor a failure.
        failures = recorded_count(state, "consecutive_failures")
        before["failures"] = failures
        if outcome.status == "success":
            failures = 0
        elif outcome.status in ("failed", "timeout"):
            failures += 1
        for key in ("last_skip", "last_skip_reason", "trigger", "attempts", "hook_error",
                    "mail_error"):
            state.pop(key, None)
        state.update(record, consecutive_failures=failures)
        count_outcome(state, outcome.status)
        if outcome.status == "success":
            state["last_success"], state["last_success_time"] = record["start"], record["start_time"]
        entry = dict(record, consecutive_failures=failures)
        halt = halt_reason(job, outcome, failures)
        if halt is not None and not mark_set(state, "halted"):
            state["halted"], state["halted_time"] = _iso_time(start + duration), \
                round(start + duration, 3)
            state["halt_reason"] = entry["halt_reason"] = halt
        before["state"] = state
        return entry
    set_aside = _record_change(config, name, change, "the run")
    return Recorded(before.get("state") if set_aside is not None else None,
                    before.get("failures", 0), set_aside or [])


def count_outcome(state, status):
    """One more start with STATUS (one of COUNTED_OUTCOMES) in STATE's counters."""
    key = "count_" + status
    state[key] = min(recorded_count(state, key) + 1, COUNT_MAX)


def halt_reason(job, outcome, failures):
    """Why the run with OUTCOME, the FAILURES-th failure in a row, halts
    JOB, or None. A failed run halts it when its exit code is one of
    halt_on_exit_codes or at halt_after_failures; a timeout at
    halt_after_failures; a run killed by hand never."""
    if job is None or outcome.status not in ("failed", "timeout"):
        return None
    if outcome.status == "failed" and outcome.exit_code in job.halt_on_exit_codes:
        return "exit code %d is in halt_on_exit_codes" % outcome.exit_code
    if job.halt_after_failures is not None and failures >= job.halt_after_failures:
        return consecutive_failures_text(failures)
    return None


def consecutive_failures_text(failures):
    return "%d consecutive failure%s" % (failures, "" if failures == 1 else "s")


def _record_change(config, name, change, what):
    """update_state, a failure reported on stderr and not raised: a run's
    outcome stands whether it was recorded or not."""
    try:
        return update_state(config, name, change, time.time())
    except (OSError, ProcessControlError) as error:
        _write_stderr("run-job: job %s: cannot record %s in %s: %s\n" % (
            name, what, config.state_directory, getattr(error, "strerror", None) or error))
        return None


def history_entry(name, status, reason, now):
    """The history line of a skip or a command: what happened to job NAME, why, when."""
    return {"job": name, "status": status, "reason": reason, "start": _iso_time(now),
            "start_time": round(now, 3), "pid": os.getpid()}


def record_skip(config, name, reason, now, set_aside=()):
    """Record a start of job NAME that did not run, and why: the history gets
    a line with status skipped, the state keeps the last run's record and
    gains `last_skip` (local time) and `last_skip_reason`, so it shows the
    skips since that run, and `last_skip_time` (Unix time), which a run
    keeps: --health counts a skip as a start. SET_ASIDE: what
    read_state_for_run set aside."""
    entry = history_entry(name, "skipped", reason, now)
    if set_aside:
        entry["set_aside"] = "\n".join(set_aside)

    def change(state):
        state["last_skip"], state["last_skip_reason"] = entry["start"], reason
        state["last_skip_time"] = entry["start_time"]
        count_outcome(state, "skipped")
        if set_aside:
            state["set_aside"] = entry["set_aside"]
        return entry
    recorded = _record_change(config, name, change, "the skipped start") or []
    update_metrics(config, name)  # a failure is noted in the state: a skip has no log
    return recorded


# ---- 9. logging and notifications ------------------------------------------------

LOG_INFO, LOG_WARNING, LOG_ERROR = 20, 30, 40  # logging's levels, without importing it


class RunEvents(object):
    """The logger named process-control and how its handlers failed: a
    failure never reaches stderr on its own (cron would mail a successful
    run's output); the run notes it in its log and state record instead."""

    def __init__(self, logger):
        self.logger = logger
        self.failure = None  # the first failure of the run, one line

    def fail(self, text):
        if self.failure is None:
            self.failure = " ".join(text.split())

    def emit(self, level, text):
        if self.logger is not None:
            self.logger.log(level, text)


# Without a `logging` mapping the events go to the syslog socket
# (`syslog_socket`, /dev/log), written here as syslog(3) writes them: the
# logging package would cost every run some 10 ms to import, the C half of
# the socket module 0.2 ms. `<PRI>IDENT[PID]: MESSAGE`, the syslog daemon
# adding time and host; facility daemon, as the example `logging` mapping
# (examples/process-control.yaml) configures; severity by level.
SYSLOG_FACILITY_DAEMON = 3
SYSLOG_SEVERITIES = {LOG_INFO: 6, LOG_WARNING: 4, LOG_ERROR: 3}  # info, warning, err
SYSLOG_MESSAGE_MAX = 2000  # characters, cut beyond (rsyslog takes 8 KiB by default)
# No socket there (or nothing reading it): no syslog, as said, not a failure.
SYSLOG_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ECONNREFUSED)


def _socket_module():
    """The C half of socket, without the enum and selectors machinery that
    `socket` imports (4 to 7 ms)."""
    try:
        import _socket as sockets
    except ImportError:
        import socket as sockets
    return sockets


def syslog_datagram(ident, level, text):
    """One event as syslog(3) sends it, less the time (the daemon adds it)."""
    priority = SYSLOG_FACILITY_DAEMON * 8 + SYSLOG_SEVERITIES[level]
    line = "<%d>%s[%d]: %s" % (priority, ident, os.getpid(), printable(text, SYSLOG_MESSAGE_MAX))
    return line.encode("utf-8", "surrogateescape")


class SyslogEvents(RunEvents):
    """Events as datagrams to the syslog socket PATH. Each goes through a
    socket of its own (some microseconds: no descriptor held while the job
    runs) to the path as it is then (a syslog daemon restarted meanwhile
    still gets the outcome), and never waits: a full socket drops it, as
    does a socket that is gone."""

    def __init__(self, path, ident):
        RunEvents.__init__(self, None)
        self.path = path
        self.ident = ident

    def emit(self, level, text):
        sockets = _socket_module()
        sender = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
        try:
            sender.setblocking(False)
            sender.sendto(syslog_datagram(self.ident, level, text), self.path)
        except OSError as error:
            if error.errno not in SYSLOG_ABSENT:
                self.fail("syslog socket %s: %s; records dropped" % (
                    self.path, error.strerror or error))
        finally:
            sender.close()


def run_events(config, ident="run-job"):
    """The RunEvents of the logger named process-control, configured by the
    global `logging` mapping (syslog in the original's example); without
    one, SyslogEvents to `syslog_socket` with IDENT; else None. Called as the
    service user, so that file handlers open files as that user. A mapping
    that cannot be applied here (a handler's file the service user cannot
    open, a syslog server that refuses) never stops the run: its RunEvents
    has no logger and says why (--check warns beforehand)."""
    if config.logging is None:
        if config.syslog_socket is None:
            return None
        return SyslogEvents(config.syslog_socket, ident)
    import logging.config
    try:
        logging.config.dictConfig(config.logging)
    except (ValueError, TypeError, AttributeError, ImportError, OSError) as error:
        reason = str(error)
        if error.__cause__ is not None:  # dictConfig wraps what went wrong
            reason += ": %s" % error.__cause__
        events = RunEvents(None)
        events.fail("cannot apply the global config's `logging` (%s); see Python's "
                    "logging.config dictConfig schema" % reason)
        return events
    logger = logging.getLogger("process-control")
    if not logger.hasHandlers():
        return None  # else Python's last-resort handler prints to stderr
    events = RunEvents(logger)
    record_handler_errors(logger, events)
    return events


def record_handler_errors(logger, events):
    """A handler failing as it emits (no syslog socket, a full disk) makes
    logging print a traceback per record: instead the failure goes to
    EVENTS, and the run goes on. Covers every handler LOGGER's records reach."""
    def handle_error(handler):
        def record(log_record):
            error = sys.exc_info()[1]
            events.fail("handler %s (%s) failed: %s; check it in the global config's "
                        "`logging`" % (handler.get_name() or "?", type(handler).__name__,
                                       str(error) or type(error).__name__))
        return record
    while logger is not None:
        for handler in logger.handlers:
            handler.handleError = handle_error(handler)
        logger = logger.parent if logger.propagate else None


def log_event(events, level, text):
    """One line to the configured logger; a broken handler never fails a run."""
    if events is None:
        return
    try:
        events.emit(level, text)
    except Exception as error:  # logging's own handlers report through handleError
        events.fail("%s: %s" % (type(error).__name__, error))


# -- hooks
# `on_failure` runs after a failed or timed-out run, `on_recovery` after the
# first success following failures, `on_success` after every success (after
# on_recovery); none after a run killed or replaced, which is neither a
# success nor a failure. They run once the run is recorded, in the run's
# JobRun (its signal handlers, subreaper and open log). A hook's failure is
# the state's `hook_error` (record_run clears it), a log record and an
# event; it never changes the run's outcome or exit code.

HOOK_KEYS = ("on_failure", "on_recovery", "on_success")


def chosen_hooks(job, outcome, failures_before):
    """[(key, commands)] of JOB's hooks that OUTCOME calls for, in order;
    FAILURES_BEFORE: the consecutive failures before the run."""
    if outcome.status == "success":
        keys = ("on_recovery", "on_success") if failures_before > 0 else ("on_success",)
    elif outcome.status in ("failed", "timeout"):
        keys = ("on_failure",)
    else:
        return []
    return [(key, getattr(job, key)) for key in keys if getattr(job, key) is not None]


def hook_environment(run, outcome, duration, failures):
    """The job's environment and what a hook learns of the run (README "Hooks")."""
    variables = (("JOB", run.job.name), ("STATUS", outcome.status),
                 ("REASON", outcome.reason),
                 ("EXIT_CODE", "" if outcome.exit_code is None else outcome.exit_code),
                 ("LOG", run.log.path), ("DURATION", "%.3f" % duration),
                 ("CONSECUTIVE_FAILURES", failures))
    environment = dict(run.environment)
    environment.update((utf8_bytes("PROCESS_CONTROL_" + key), utf8_bytes(str(value)))
                       for key, value in variables)
    return environment


def run_hooks(config, run, outcome, duration, recorded, events):
    """Run the hooks of RUN's job that OUTCOME calls for (RECORDED: what
    record_run wrote). Return what failed, one line, or None."""
    hooks = chosen_hooks(run.job, outcome, recorded.failures_before)
    if not hooks:
        return None
    # After a failure, the count with this run; after a success, those it ended.
    failures = recorded.failures_before + (0 if outcome.status == "success" else 1)
    environment = hook_environment(run, outcome, duration, failures)
    errors = []
    for key, commands in hooks:
        if run.stop_signal is not None:
            failure = "not run: stopped by %s sent to run-job" % _signal_name(run.stop_signal)
        else:
            failure = run.run_hook(key, commands, environment, run.job.hook_timeout)
        if failure is not None:
            errors.append("%s: %s" % (key, failure))
    if not errors:
        return None
    text = "; ".join(errors)
    run.log.note("hook_error", text)
    log_event(events, LOG_ERROR, "job %s: hook failed: %s" % (run.job.name, text))
    if recorded.state is not None:  # else record_run said why it could not record
        _record_change(config, run.job.name, lambda state: state.update(hook_error=text),
                       "the hook's failure")
    return text


# -- failure and recovery mail (`failmail`)

# One mail's whole SMTP exchange, connecting included, ends within this
# long: a server that accepts and never answers must not hold the job's lock.
MAIL_TIMEOUT = 30.0
MAIL_LINE_MAX = 998
# What sending a mail imports: loaded before the switch to the service user
# for a job that may send one (see mail_modules).
MAIL_MODULES = ("smtplib", "email.message", "email.policy", "email.utils", "threading",
                "encodings.idna")  # idna: getaddrinfo's encoding of a host name


def mail_to_send(job, outcome, state):
    """What mail the run with OUTCOME sends: "failure", "recovery" or None.
    STATE is the job's state as record_run wrote it (None, not recorded: no
    mail). A failed or timed-out run mails once its consecutive failures
    reach failure_threshold_for_mail; a success mails when a failure mail
    went out since the last success (failmail_sent)."""
    if job.failmail is None or state is None:
        return None
    if outcome.status in ("failed", "timeout"):
        threshold = max(job.failure_threshold_for_mail, 1)
        if recorded_count(state, "consecutive_failures") >= threshold:
            return "failure"
    elif outcome.status == "success" and state.get("failmail_sent"):
        return "recovery"
    return None


def failure_summary(job, outcome):
    """The run's reason in the original's words where it had them (mail
    filters match its subjects): NAME failed with code N, NAME timed out
    after T minutes, NAME was terminated by SIGNAL."""
    if outcome.status == "timeout":
        return "%s timed out after %g minutes" % (job.name, job.timeout / 60.0)
    if outcome.exit_code is not None and outcome.reason == "exit status %d" % outcome.exit_code:
        return "%s failed with code %d" % (job.name, outcome.exit_code)
    if outcome.signal is not None \
            and outcome.reason == "killed by %s" % _signal_name(outcome.signal):
        return "%s was terminated by %s" % (job.name, _signal_name(outcome.signal))
    return "%s failed: %s" % (job.name, outcome.reason)


def failure_mail(job, outcome, state, duration, log_path, stderr_tail, host):
    """(subject, body) of the failure mail of the run with OUTCOME."""
    summary = printable(failure_summary(job, outcome), 300)
    attempts = "" if outcome.attempts == 1 else " and %d attempts" % outcome.attempts
    lines = ["Job %s%s on %s: %s." % (job.name, _verbose_name_text(job), host, summary),
             "Started at %s, ended after %.1fs%s; consecutive failures: %d."
             % (state.get("start"), duration, attempts,
                recorded_count(state, "consecutive_failures"))]
    if mark_set(state, "halted"):
        lines.append("The job is halted: %s; run-job --reset %s clears it."
                     % (state.get("halt_reason"), job.name))
    lines += ["", "See the logs for more information: %s" % log_path, ""]
    tail = stderr_tail.splitlines()[-STDERR_TAIL_LINES:]
    if tail:
        lines.append("The end of its stderr:")
        lines.extend("    " + printable(line.decode("utf-8", "replace")) for line in tail)
    else:
        lines.append("Nothing on its stderr.")
    lines += ["", "Every failed run mails once %d in a row have failed "
              "(failure_threshold_for_mail), until a run succeeds. To stop the mails:"
              % max(job.failure_threshold_for_mail, 1),
              "  run-job --pause %s   skips its runs until run-job --resume %s"
              % (job.name, job.name),
              "  run-job --reset %s   clears its consecutive failures (and a halt)" % job.name]
    return "Fail Mail (%s) run-job: %s" % (host, summary), "\n".join(lines) + "\n"


def recovery_mail(job, state, failures_before, duration, log_path, host):
    """(subject, body) of the mail of the first success after a failure mail."""
    after = "" if not failures_before else " after %s" % (
        "1 failed run" if failures_before == 1 else "%d failed runs" % failures_before)
    lines = ["Job %s%s on %s succeeded%s." % (job.name, _verbose_name_text(job), host, after),
             "Started at %s, ended after %.1fs; the last failure mail went out at %s."
             % (state.get("start"), duration, state.get("failmail_sent")),
             "", "Its log: %s" % log_path]
    return ("Recovered (%s) run-job: %s succeeded%s" % (host, job.name, after),
            "\n".join(lines) + "\n")


def _verbose_name_text(job):
    return "" if job.verbose_name == job.name else " (%s)" % printable(job.verbose_name, 100)


def mail_message(failmail, subject, body, host):
    """The mail as bytes, with the headers a mail server expects (Date,
    Message-ID) and Auto-Submitted, so that vacation replies stay away
    (RFC 3834). 7-bit, for any server: a body with other than ASCII is
    quoted-printable; lines up to RFC 5322's 998 characters, so that a
    long log path is not cut by soft line breaks."""
    import email.message
    import email.policy
    import email.utils
    policy = email.policy.SMTP.clone(cte_type="7bit", max_line_length=MAIL_LINE_MAX)
    message = email.message.EmailMessage(policy=policy)
    message["From"] = email.utils.formataddr(failmail.sender)
    message["To"] = ", ".join(email.utils.formataddr(each) for each in failmail.recipients)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=host)  # not getfqdn: no DNS
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message.as_bytes()


MAIL_POLL = 0.05  # seconds between looks at a stop signal while a mail is sent


def send_mail(smtp_host, failmail, data, host, seconds, stopped=lambda: None):
    """Send DATA to FAILMAIL's recipients through SMTP_HOST (host, port)
    within SECONDS in all, connecting included: in a thread, given up when it
    takes longer (a slow DNS lookup, a server dribbling its replies) or when
    STOPPED() names a signal (--kill-job). Return (delivered, error):
    whether a recipient took it, and why it was not sent to every
    recipient, one line, or None."""
    import threading
    dialogue = SmtpDialogue(smtp_host, failmail, data, host, seconds)
    thread = threading.Thread(target=dialogue.run)
    thread.daemon = True  # an abandoned one must not keep run-job from exiting
    thread.start()
    end = time.monotonic() + seconds
    signal_name = None
    while thread.is_alive() and signal_name is None and time.monotonic() < end:
        thread.join(min(MAIL_POLL, max(end - time.monotonic(), 0)))
        signal_name = stopped()
    result = dialogue.result  # before abandon(), which makes the thread fail
    if thread.is_alive():
        dialogue.abandon()
    if result is None and signal_name is not None:
        return False, "given up: run-job got %s" % signal_name
    return result or (False, dialogue.silence())


class SmtpDialogue(object):
    """One mail sent through smtplib (no TLS, no login: a local mail server
    relays); `result` is send_mail's once the server took it or refused it."""

    def __init__(self, smtp_host, failmail, data, host, seconds):
        self.smtp_host = smtp_host
        self.where = ("[%s]:%d" if ":" in smtp_host[0] else "%s:%d") % smtp_host
        self.failmail = failmail
        self.data = data
        self.host = host
        self.seconds = seconds
        self.smtp = None
        self.result = None

    def silence(self):
        return "%s did not answer within %gs" % (self.where, self.seconds)

    def run(self):
        import smtplib
        import socket
        try:
            refused = self._send(smtplib)
            self.result = (True, None if not refused else "%s refused %s"
                           % (self.where, refused_text(refused)))
            self.smtp.quit()
        except Exception as error:  # whatever smtplib meets: never the run's failure
            if self.result is None:  # else QUIT failed: the server took the mail
                self.result = (False, self._failure(error, smtplib, socket))
        finally:
            # Python 3.6's SMTP has no `sock` before it connects, and its
            # close() then fails on it.
            if getattr(self.smtp, "sock", None) is not None:
                self.smtp.close()

    def _send(self, smtplib):
        """The recipients refused, as smtplib's sendmail returns them."""
        # local_hostname: else smtplib's EHLO looks our name up (getfqdn).
        self.smtp = smtplib.SMTP(local_hostname=self.host, timeout=self.seconds)
        code, greeting = self.smtp.connect(*self.smtp_host)
        if code != 220:  # smtplib checks it only when connecting as it is made
            raise smtplib.SMTPConnectError(code, greeting)
        return self.smtp.sendmail(self.failmail.sender[1],
                                  [each[1] for each in self.failmail.recipients], self.data)

    def _failure(self, error, smtplib, socket):
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return "%s refused every recipient: %s" % (self.where,
                                                       refused_text(error.recipients))
        if isinstance(error, smtplib.SMTPResponseException):
            return "%s answered %s" % (self.where,
                                       smtp_reply(error.smtp_code, error.smtp_error))
        if isinstance(error, socket.timeout):
            return self.silence()
        if isinstance(error, (smtplib.SMTPException, OSError)):
            return "cannot send through %s: %s" % (
                self.where, getattr(error, "strerror", None) or str(error)
                or type(error).__name__)
        return "cannot send through %s: %s: %s" % (self.where, type(error).__name__, error)

    def abandon(self):
        """Wake the thread blocked on the server's socket, from another thread."""
        sock = getattr(self.smtp, "sock", None)
        if sock is not None:
            import socket
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def refused_text(refused):
    """smtplib's {recipient: (code, reply)} on one line."""
    return ", ".join("%s (%s)" % (address, smtp_reply(*reply))
                     for address, reply in sorted(refused.items()))


def smtp_reply(code, text):
    """A server's reply on one line: 550 5.1.1 no such user; smtplib's -1
    for a line that is no SMTP reply at all."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = printable(" ".join(str(text).split()), 200)
    return "no SMTP reply (%s)" % text if code == -1 else "%d %s" % (code, text)


def notify_by_mail(config, job, outcome, recorded, duration, run, events):
    """After RUN (a JobRun, DURATION seconds) is recorded (RECORDED, see
    record_run): the failure or recovery mail it calls for (mail_to_send),
    its result in the job's state (failmail_sent, mail_error), the run's log
    and the configured logger. Return why the mail could not be sent, or
    None. Never raises: a mail changes nothing of the run's outcome. A stop
    signal to run-job (--kill-job) gives the mail up."""
    kind = mail_to_send(job, outcome, recorded.state)
    if kind is None:
        return None
    try:
        import socket
        host = socket.gethostname()
        subject, body = mail_text(job, kind, outcome, recorded, duration, run, host)
        data = mail_message(job.failmail, subject, body, host)
        delivered, error = send_mail(config.smtp_host, job.failmail, data, host,
                                     MAIL_TIMEOUT, lambda: _stop_signal_name(run))
    except Exception as error:  # composing: a bug, still not the run's failure
        delivered, error = False, "cannot compose the mail: %s: %s" % (type(error).__name__,
                                                                       error)
    recipients = ", ".join(each[1] for each in job.failmail.recipients)
    if error is not None:
        error = "cannot send the %s mail to %s: %s" % (kind, recipients, error)
    record_mail(config, job.name, kind, delivered, error, time.time())
    if error is None:
        run.log.note("mail", "%s mail sent to %s" % (kind, recipients))
        log_event(events, LOG_INFO, "job %s: %s mail sent to %s" % (job.name, kind, recipients))
    else:
        run.log.note("mail", error)
        log_event(events, LOG_WARNING, "job %s: %s" % (job.name, error))
    return error


def mail_text(job, kind, outcome, recorded, duration, run, host):
    """(subject, body) of the mail of KIND for RUN."""
    if kind == "failure":
        return failure_mail(job, outcome, recorded.state, duration, run.log.path,
                            run.stderr_tail, host)
    return recovery_mail(job, recorded.state, recorded.failures_before, duration,
                         run.log.path, host)


def _stop_signal_name(run):
    return None if run.stop_signal is None else _signal_name(run.stop_signal)


def record_mail(config, name, kind, delivered, error, now):
    """failmail_sent and mail_error in job NAME's state after a mail of KIND."""
    def change(state):
        if kind == "recovery":
            state.pop("failmail_sent", None)
        elif delivered:
            state["failmail_sent"] = _iso_time(now)
        state["mail_error"] = error
        return None
    _record_change(config, name, change, "the mail's result")


# ---- 10. starting, skipping and stopping a job -----------------------------------

# What happens to a start, in order: the policies that skip or refuse it
# (10.1), a start by an out-of-date crontab line (10.2), the job's lock and
# its overlap policy (10.3), the run itself, and --kill-job (10.4).

# -- 10.1 pause, halt and backoff
# A paused job (run-job --pause) skips its runs quietly until --resume; a
# halted one (halt_after_failures, halt_on_exit_codes) refuses them (exit 69)
# until --reset; one with `backoff` skips them quietly for a while after each
# failure. The marks are state keys (PAUSE_KEYS, HALT_KEYS), so they survive
# reboots; backoff is computed from the failures recorded. A run decides on
# the state it read before its lock: a few dict lookups.

PAUSE_KEYS = ("paused", "paused_time", "paused_by", "pause_reason")
HALT_KEYS = ("halted", "halted_time", "halt_reason")
BACKOFF_DOUBLINGS_MAX = 64  # beyond, any max is reached: no float overflow


def pause_text(state):
    text = "paused by %s at %s" % (state.get("paused_by"), state.get("paused"))
    if state.get("pause_reason") is not None:
        text += ": %s" % state["pause_reason"]
    return text


def halt_text(state):
    return "halted since %s: %s" % (state.get("halted"), state.get("halt_reason"))


def backoff_until(job, state, now):
    """When JOB's backoff ends (epoch seconds), or None when it does not back
    off: after N consecutive failures, min(initial * 2**(N-1), max) from the
    end of the last one; never later than max from NOW (a clock set back)."""
    if job.backoff is None:
        return None
    failures = recorded_count(state, "consecutive_failures")
    if failures < 1:
        return None
    initial, maximum = job.backoff
    delay = min(initial * 2.0 ** min(failures - 1, BACKOFF_DOUBLINGS_MAX), maximum)
    # Within 0..NOW however damaged, so that the end is a time.
    start, duration = [min(max(recorded_number(state, key), 0), now)
                       for key in ("start_time", "duration")]
    return min(start + duration, now) + delay


def policy_skip_reason(job, state, now):
    """Why JOB must not run now, by its STATE: paused, halted or backing
    off (the reason starts with that word), or None."""
    if mark_set(state, "paused"):
        return pause_text(state)
    if mark_set(state, "halted"):
        return halt_text(state)
    until = backoff_until(job, state, now)
    if until is not None and now < until:
        return "backing off until %s after %s" % (
            _iso_time(until),
            consecutive_failures_text(recorded_count(state, "consecutive_failures")))
    return None


def skip_start(config, name, reason, now, events, level=LOG_INFO, set_aside=()):
    """Record a skipped start of job NAME for REASON (with SET_ASIDE, see
    record_skip) and tell EVENTS at LEVEL."""
    log_event(events, level, "job %s skipped: %s" % (name, reason))
    record_skip(config, name, reason, now, set_aside)


def skip_by_policy(config, job, reason, now, events, set_aside=()):
    """Skip a start of JOB for REASON (policy_skip_reason): recorded, told
    to EVENTS, no job log; quiet (exit 0), except that a halted job raises
    HaltedError, whose one line cron mails."""
    halted = reason.startswith("halted")
    skip_start(config, job.name, reason, now, events, LOG_WARNING if halted else LOG_INFO,
               set_aside)
    if halted:
        raise HaltedError("job %s is %s; run-job --reset %s clears it"
                          % (job.name, reason, job.name))
    return EXIT_OK


COMMAND_NAMES = {"paused": "pause", "resumed": "resume", "reset": "reset"}


def record_command(config, name, status, by, now, apply):
    """Record a --pause, --resume or --reset (STATUS paused, resumed, reset)
    of job NAME by user BY: APPLY(state, entry) changes the state's marks
    and returns (the history line's reason, whether anything changed).
    Return that pair; raise OSError or ProcessControlError
    when it cannot be recorded."""
    entry = dict(history_entry(name, status, None, now), by=by)
    changed = []

    def change(state):
        entry["reason"], effect = apply(state, entry)
        changed.append(effect)
        return entry
    try:
        update_state(config, name, change, now)
    except OSError as error:
        raise RefusedError("job %s: cannot record the %s in %s: %s; the service user must "
                           "be able to write there" % (name, COMMAND_NAMES[status],
                                                       config.state_directory, error.strerror))
    update_metrics(config, name)  # halted and paused: a failure is noted in the state
    return entry["reason"], changed[0]


def pause_job(config, name, by, reason, now):
    """Pause job NAME; pausing a paused job replaces who and why (REASON,
    or None), and keeps since when; changed: whether it was not paused yet."""
    def apply(state, entry):
        was_paused = mark_set(state, "paused")
        if not was_paused:
            state["paused"], state["paused_time"] = entry["start"], entry["start_time"]
        state["paused_by"], state["pause_reason"] = by, reason
        return reason, not was_paused
    return record_command(config, name, "paused", by, now, apply)


def resume_job(config, name, by, reason, now):
    """Resume job NAME (REASON unused: --reason is --pause's); the history
    says which pause it ended; changed: whether it was paused."""
    def apply(state, entry):
        was_paused = mark_set(state, "paused")
        ended = "was " + pause_text(state) if was_paused else "not paused"
        for key in PAUSE_KEYS:
            state.pop(key, None)
        return ended, was_paused
    return record_command(config, name, "resumed", by, now, apply)


def reset_job(config, name, by, reason, now):
    """Clear job NAME's halt and its consecutive failures, and so its
    backoff and the recovery mail a success would send (REASON unused);
    changed: whether there was anything to clear."""
    def apply(state, entry):
        cleared = []
        if mark_set(state, "halted"):
            cleared.append("was " + halt_text(state))
        failures = recorded_count(state, "consecutive_failures")
        if failures:
            cleared.append("had " + consecutive_failures_text(failures))
        for key in HALT_KEYS + ("failmail_sent",):  # no recovery follows a reset
            state.pop(key, None)
        state["consecutive_failures"] = 0
        return "; ".join(cleared) or "not halted, no consecutive failures", bool(cleared)
    return record_command(config, name, "reset", by, now, apply)
def readable_state(config, name):
    """Job NAME's state, or {} when it has none or cannot be read."""
    try:
        return read_job_state(config, name) or {}
    except (BadFileError, OSError):
        return {}


def _recorded_start_time(config, name):
    """start_time of the last recorded run, 0 if none."""
    return recorded_number(readable_state(config, name), "start_time")


# -- 10.2 a start by an out-of-date crontab line
# A generated crontab line names the schedule it was written for: `run-job
# --job NAME --scheduled 'EXPR'`. A start by a line that the job file no longer
# asks for (the job is disabled, unscheduled or rescheduled) is skipped as a
# quiet policy skip and recorded: the history gets a line with status
# "skipped", the state keeps the last run's record and gains `last_skip` (local
# time) and `last_skip_reason`, so it shows the skips since that run.

CRONTAB_OUT_OF_DATE = "the crontab is out of date: run cron-generate"


def normalised_schedule(expression):
    """EXPRESSION as compared: its fields separated by one space."""
    return " ".join(expression.split())


def scheduled_skip_reason(job, scheduled):
    """Why a start by the crontab line for schedule SCHEDULED must not run
    JOB, or None when the job file still asks for that line."""
    if job.disabled:
        why = "disabled"
    elif job.schedule is None:
        why = "unscheduled"
    elif normalised_schedule(job.schedule_expression) != normalised_schedule(scheduled):
        why = "rescheduled: the crontab says '%s', the job file says '%s'" % (
            printable(scheduled, SCHEDULE_TEXT_MAX), job.schedule_expression)
    else:
        return None
    return "%s; %s" % (why, CRONTAB_OUT_OF_DATE)


def skip_scheduled_start(config, job, reason, events=None):
    """Skip a start of JOB by an out-of-date crontab line: nothing runs,
    nothing is printed, no job log; recorded, and told to EVENTS."""
    skip_start(config, job.name, reason, time.time(), events, LOG_WARNING)
    return EXIT_OK


# Catch-up after downtime (`catch_up: true`): the crontab's @reboot line runs
# `run-job --catch-up`, which starts `run-job --catch-up --job NAME` in a
# process of its own for each job that missed a scheduled time, so that a slow
# one delays no other. Each run decides again, as one started by hand does: it
# runs once, however many times were missed, when the job's latest scheduled
# time is later than its last recorded run's start; its run record gets
# `trigger` ("catch-up: missed TIME").


def catch_up_decision(job, state, now):
    """(the missed scheduled time, None) when JOB, whose state is STATE, is
    to be caught up at NOW (a naive local datetime), else (None, why not)."""
    if not job.catch_up:
        return None, "catch_up is not true"
    if job.disabled or job.schedule is None:
        return None, "disabled" if job.disabled else "unscheduled"
    for mark in ("paused", "halted"):
        if mark_set(state, mark):
            return None, mark
    start_time = recorded_number(state, "start_time", None)
    if start_time is None:
        return None, "it never ran"
    try:
        last_start = type(now).fromtimestamp(start_time)
    except (OverflowError, ValueError, OSError):  # a state file may hold anything
        return None, "its last start time is not valid"
    missed = job.schedule.previous_before(now)
    if missed is None or missed <= last_start:
        return None, "no scheduled time passed since its last run started"
    return missed, None


def catch_up_due(config, job, now):
    """catch_up_decision for JOB with its recorded state; a job that is
    running is not caught up either (its lock would refuse the run)."""
    missed, why_not = catch_up_decision(job, readable_state(config, job.name), now)
    if missed is not None and running_info(config, job.name) is not None:
        return None, "it is running"
    return missed, why_not


def catch_up_trigger(config, job):
    """run-job --catch-up NAME: the trigger of JOB's run when it missed a
    scheduled time, else None (and why not, on a terminal)."""
    import datetime  # lazily: a plain run does without it
    missed, why_not = catch_up_due(config, job, datetime.datetime.now())
    if missed is None:
        if os.isatty(1):
            _write_stderr("run-job: job %s is not caught up: %s\n" % (job.name, why_not))
        return None
    return "catch-up: missed %s" % missed.strftime("%Y-%m-%d %H:%M")


def start_catch_up_runs(config, runner, err):
    """run-job --catch-up: start `RUNNER --catch-up --job NAME` (RUNNER: this
    run-job's command line) for each job to catch up, each detached in a
    session of its own, without waiting for it: its outcome is its own run's,
    logged, recorded and reported on the inherited stderr. An invalid job
    file is reported on ERR. Return EXIT_OK, EXIT_FAILED when a run could
    not be started, else EXIT_CONFIG when a job file is invalid."""
    import datetime
    import subprocess
    now = datetime.datetime.now()
    jobs, problems = load_jobs(config)
    started, failures = [], []
    for job in jobs:
        if catch_up_due(config, job, now)[0] is None:
            continue
        try:
            subprocess.Popen(runner + ["--catch-up", "--job", job.name],
                             stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as error:
            failures.append("job %s: cannot start its catch-up run: %s"
                            % (job.name, error.strerror or error))
            continue
        started.append(job.name)
    for problem in problems + failures:
        err.write("run-job: %s\n" % printable(str(problem)))
    if started and err.isatty():
        err.write("run-job: catch-up runs started: %s\n" % ", ".join(started))
    return EXIT_FAILED if failures else EXIT_CONFIG if problems else EXIT_OK


# -- 10.3 the job's lock, its overlap policy, the run

def acquire_lock(config, job):
    """Take JOB's lock and return a JobLock, or raise LockHeldError.
    `overlap: skip` takes it without waiting; wait and replace in turn."""
    if job.overlap != "skip":
        return _acquire_in_turn(config, job)
    path = lock_path(config, job.name)
    fd = _open_lock_file(path, job.name)
    try:
        locked = _try_lock(fd)
    except BaseException:
        os.close(fd)
        raise
    if not locked:
        os.close(fd)
        raise LockHeldError(_still_running_message(job.name, read_lock_record(path)))
    return JobLock(path, fd)


# `overlap: wait` and `replace`: a launch first takes the wait lock (LOCK_NB:
# held, another launch is next in line and this one is skipped), then the
# job's lock: at once, by waiting for it, or by stopping its run. It keeps
# its turn until its own run is described in the lock and handles SIGTERM
# (JobLock.settle), so the next replacing launch never stops a run that
# could not record it. Meanwhile SIGTERM, SIGINT and SIGHUP stay blocked:
# a waiter takes them with sigtimedwait (between two tries of the lock: no
# signal handler, no interrupted system call), any other launch gets them
# once its run's handlers are in place, which record the run as killed.

WAIT_POLL_FIRST = 0.01  # seconds between two tries of the lock, doubling...
WAIT_POLL_MAX = 0.25    # ...up to this: how late a waiter may start


def _stop_signals(signals):
    return [signals.SIGTERM, signals.SIGINT, signals.SIGHUP]


def _acquire_in_turn(config, job):
    """acquire_lock for `overlap: wait` and `replace`, as said above."""
    signals = _signals()
    stops = _stop_signals(signals)
    mask = signals.pthread_sigmask(signals.SIG_BLOCK, stops)
    opened = []
    try:
        turn_path = wait_lock_path(config, job.name)
        opened.append(_open_lock_file(turn_path, job.name, "wait lock"))
        if not _try_lock(opened[0]):
            raise LockHeldError(_next_in_line_message(job, read_lock_record(turn_path)))
        JobLock(turn_path, opened[0]).describe(os.getpid(), 0, time.time(), job.kill_grace, "")
        path = lock_path(config, job.name)
        opened.append(_open_lock_file(path, job.name))
        lock = JobLock(path, opened[1], opened[0], mask)
        if not _try_lock(lock.fd):
            if job.overlap == "wait":
                _wait_for_lock(job, lock, signals, stops)
                lock.waited = True
            else:
                _replace_run(config, job, lock)
    except BaseException:
        for fd in opened:
            os.close(fd)
        while signals.sigtimedwait(stops, 0) is not None:
            pass  # asked to stop: this launch ends anyway, and not killed by it
        signals.pthread_sigmask(signals.SIG_SETMASK, mask)
        raise
    return lock


def _next_in_line_message(job, record):
    holder = "" if not record else " (run-job pid %d)" % record["pid"]
    return ("job %s: another launch%s is next in line (overlap: %s); not starting "
            "another run" % (job.name, holder, job.overlap))


def overlap_wait_limit(job):
    """Seconds `overlap: wait` waits at most, 0 for no limit."""
    return job.timeout if job.overlap_wait is None else job.overlap_wait


def _wait_for_lock(job, lock, signals, stops):
    """Try LOCK's file lock with a short growing pause until it is taken;
    LockHeldError when overlap_wait runs out or a stop signal comes first."""
    limit = overlap_wait_limit(job)
    end = time.monotonic() + limit if limit > 0 else None
    pause = WAIT_POLL_FIRST
    while True:
        left = pause
        if end is not None:
            left = end - time.monotonic()
            if left <= 0:
                raise LockHeldError("waited overlap_wait %gs: %s" % (
                    limit, _still_running_message(job.name, read_lock_record(lock.path))))
        received = signals.sigtimedwait(stops, min(pause, left))
        if received is not None:
            raise LockHeldError("stopped by %s while waiting: %s" % (
                _signal_name(received.si_signo),
                _still_running_message(job.name, read_lock_record(lock.path))))
        if _try_lock(lock.fd):
            return
        pause = min(2 * pause, WAIT_POLL_MAX)


def _replace_run(config, job, lock):
    """Stop the run holding LOCK's file as --kill-job does, noting first who
    replaces it; take the lock; record the stopped run if its run-job did not."""
    record = read_lock_record(lock.path) or {}
    if record:
        lock.note_replacement(record)
    if not stop_running_job(config, job.name, record):
        raise StuckRunError(_unstoppable_message(job.name, lock.path))
    if not _try_lock(lock.fd):  # a launch of another policy came first
        raise LockHeldError(_still_running_message(job.name, read_lock_record(lock.path)))
    if record:
        lock.replaced = record["pid"]
        record_unrecorded_run(config, job.name, record, replaced_reason(os.getpid()),
                              "replaced")


def execute_job(config, job, slow_start=False, live=None, events=None, force=False,
                trigger=None):
    """Run JOB under its lock; log, record and report the outcome. Return
    the exit code: 0 success (or still running with allow_overtime, or
    skipped as paused or backing off), 1 failed or killed, 124 timed out;
    raise LockHeldError when still running (see acquire_lock for
    `overlap`), HaltedError when halted. FORCE (--force) runs a paused,
    halted or backing-off job. LIVE (default: whether stdout is a terminal)
    also shows the output; EVENTS, a logger (see run_events), hears of the
    start and the outcome; TRIGGER, what started the run when not cron's
    line or a hand (see record_run). Must be the only thing in this process
    that has child processes."""
    _ensure_standard_fds()  # before the lock, which must not become fd 0, 1 or 2
    now = time.time()
    state, set_aside = read_state_for_run(config, job.name, now)
    reason = None if force else policy_skip_reason(job, state, now)
    if reason is not None:
        return skip_by_policy(config, job, reason, now, events, set_aside)
    try:
        lock = acquire_lock(config, job)
    except LockHeldError as error:
        if job.allow_overtime and not isinstance(error, StuckRunError):
            skip_start(config, job.name, "lock held: %s (allow_overtime)" % error, now,
                       events, LOG_INFO, set_aside)
            return EXIT_OK
        skip_start(config, job.name, "lock held: %s" % error, now, events, LOG_WARNING,
                   set_aside)
        raise
    try:
        if lock.replaced is not None:
            log_event(events, LOG_WARNING, "job %s: run-job pid %d replaced the run of "
                      "run-job pid %d (overlap: replace)"
                      % (job.name, os.getpid(), lock.replaced))
        if lock.waited and not force:  # paused, say, while it waited
            now = time.time()
            state, more = read_state_for_run(config, job.name, now)
            set_aside = set_aside + more
            reason = policy_skip_reason(job, state, now)
            if reason is not None:
                return skip_by_policy(config, job, reason, now, events, set_aside)
        return _execute_locked(config, job, lock, slow_start, live, events, set_aside,
                               trigger)
    finally:
        lock.close()


def _execute_locked(config, job, lock, slow_start, live, events, set_aside, trigger):
    start = time.time()
    if live is None:
        live = os.isatty(1)
    commands = job.commands
    if slow_start and job.slow_start_commands:
        commands = job.slow_start_commands
    log = open_run_log(config, job.name, start)
    lock.describe(os.getpid(), 0, start, job.kill_grace, log.path)
    run = JobRun(job, lock, log, live, start)
    try:
        _log_header(log, job, commands, start)
        _log_set_aside(log, set_aside)
        if trigger is not None:
            log.note("trigger", trigger)
        log_event(events, LOG_INFO, "job %s started (pid %d); log %s"
                  % (job.name, os.getpid(), log.path))
        run.open()
        lock.settle()
        outcome = run.run(commands)
        duration = time.monotonic() - run.started
        if log.error is not None and outcome.status == "success":
            outcome = Outcome("failed", "cannot write the log: %s" % log.error)
        # Before the footer and the record, which note a handler's failure.
        log_event(events, LOG_INFO if outcome.quiet else LOG_ERROR,
                  outcome_sentence(job, outcome, duration, log.path))
        logging_error = None if events is None else events.failure
        # Still under our signal handlers: a SIGTERM now cannot lose the record.
        # Nothing of the job is left to replace the state files once more.
        recorded = record_run(config, job.name, outcome, start, duration, log.path,
                              logging_error=logging_error, set_aside=set_aside,
                              job=job, trigger=trigger)
        _log_set_aside(log, recorded.set_aside)
        hook_error = run_hooks(config, run, outcome, duration, recorded, events)
        if logging_error is not None:
            log.note("logging", logging_error)
        mail_error = notify_by_mail(config, job, outcome, recorded, duration, run, events)
        _apply_log_retention(config, job, log)
        metrics_error = update_metrics(config, job.name)
        if metrics_error is not None:
            log.note("metrics", metrics_error)
        _log_footer(log, outcome, duration)
        log.close()
        report_outcome(job, outcome, duration, log.path, run.stderr_tail, live,
                       logging_error, hook_error, mail_error)
    finally:
        run.close()
        log.close()
    return outcome.run_job_exit_code


def _apply_log_retention(config, job, log):
    """prune_logs after a run: a failure is the log's `retention` record,
    never the run's outcome."""
    try:
        prune_logs(config, job, log.path, time.time())
    except (OSError, ProcessControlError) as error:
        log.note("retention", getattr(error, "strerror", None) or error)


# -- 10.4 --kill-job

def kill_job(config, name, by, events):
    """Stop NAME's running job (stop_running_job) for user BY, telling
    EVENTS; record as killed a run whose run-job had died. Return 0 when
    something was stopped, 1 when nothing was running; raise UsageError when
    there is no such job either. A run whose job file was removed meanwhile
    is still stopped: the lock, not the file, says it runs."""
    path = lock_path(config, name)
    if not _lock_is_held(path):
        job_file_path(config, name)  # no job file: no such job (64)
        sys.stderr.write("run-job: job %s is not running\n" % name)
        return EXIT_FAILED
    record = read_lock_record(path) or {}
    holder = "" if not record else " (run-job pid %d)" % record["pid"]
    _stop_next_in_line(config, name, record)
    if not stop_running_job(config, name, record):
        log_event(events, LOG_ERROR, "job %s: --kill-job by %s could not stop it%s"
                  % (name, by, holder))
        raise ProcessControlError(_unstoppable_message(name, path))
    log_event(events, LOG_WARNING, "job %s killed by %s%s" % (name, by, holder))
    if record:
        _record_orphaned_run(config, name, record)
    return EXIT_OK


def _stop_next_in_line(config, name, record):
    """SIGTERM the launch holding NAME's wait lock, first, so that it does not
    start once the run is stopped: a waiter ends, a replacing launch's run is
    killed as it starts. Wait for it as for the run (RECORD, its lock's)."""
    path = wait_lock_path(config, name)
    holders = lock_holders(path)
    for info in holders:
        signal_verified(info, _signals().SIGTERM)
    if holders:
        _wait_for_release(path, record.get("kill_grace", 10.0) + 5.0)


def _unstoppable_message(name, path):
    pids = " ".join(str(info.pid) for info in lock_holders(path)) or "unknown"
    return ("job %s is still running (pids %s): they could not be stopped; run --kill-job "
            "as their user or root" % (name, pids))


def _record_orphaned_run(config, name, record):
    """Record as killed the run that RECORD (of the lock) describes, unless its
    run-job did: it had died, leaving the log without footer and no state.
    Under the lock, briefly: a run starting meanwhile wins and is left alone."""
    try:
        fd = _open_regular_file(lock_path(config, name), os.O_RDWR, None)
    except (OSError, RefusedError):
        return
    try:
        if _try_lock(fd):
            record_unrecorded_run(config, name, record, "run-job (pid %d) had died; "
                                  "--kill-job stopped what it left" % record["pid"])
    finally:
        os.close(fd)


def record_unrecorded_run(config, name, record, reason, status="killed"):
    """Under job NAME's lock: record with STATUS (killed or replaced), for
    REASON, the run that RECORD (of the lock) describes, unless its run-job
    did before it went."""
    if abs(_recorded_start_time(config, name) - record["start"]) < 0.001:
        return
    outcome = Outcome(status, reason)
    duration = time.time() - record["start"]
    set_aside = record_run(config, name, outcome, record["start"], duration, record["log"],
                           pid=record["pid"]).set_aside  # that run's run-job, not this one
    metrics_error = update_metrics(config, name)
    if _is_job_log(config, name, record["log"]):
        try:
            log = RunLog(_open_job_log(record["log"]), record["log"])
            _log_set_aside(log, set_aside)
            if metrics_error is not None:
                log.note("metrics", metrics_error)
            _log_footer(log, outcome, duration)
            log.close()
        except (OSError, RefusedError):
            pass  # the state still says what happened


def _is_job_log(config, name, path):
    """Whether PATH, as a lock record names it, is a log of job NAME: the
    job's processes can write that record, so it may name any file."""
    return bool(path) and os.path.dirname(path) == os.path.join(config.output_directory, name)


def _open_job_log(path):
    """The existing run log PATH opened for appending, through its directory
    opened without following a symlink either."""
    directory, name = os.path.split(path)
    directory_fd = _open_log_directory(directory)
    try:
        return _open_regular_file(name, os.O_WRONLY | os.O_APPEND, None, directory_fd)
    finally:
        os.close(directory_fd)




# ---- 11. reporting ---------------------------------------------------------------

# The installed crontab against the job files; --list-jobs and --status;
# --check, which also says what the service user will meet under cron;
# --explain; --log and --history; --health.

STATUS_INDENT = "    "

# -- 11.1 the installed crontab

# The installed crontab, compared with what cron-generate would write from the
# job files: a scheduled, enabled job has exactly one line with its schedule,
# any other job none. cron-generate writes at most 10,000 lines of 998
# characters; a file larger than that is none of its own.
CRONTAB_MAX_BYTES = 10000 * 999
CRONTAB_JOB_PATTERN = r"(?:^|\s)--job (\S+)(?: --scheduled '([^']*)')?"
CRONTAB_CATCH_UP_PATTERN = r"(?:^|\s)--catch-up(?:\s|$)"


class InstalledCrontab(object):
    """What the installed crontab runs. `path` is None when output_crontab is
    console (nothing to compare). `jobs` maps each job name to the schedules
    of its lines (None for a line from a cron-generate that wrote no
    --scheduled), or is None when no crontab is installed; `catch_up_lines`
    counts its lines that run run-job --catch-up; `error` says why the file
    cannot be compared, or is None."""

    def __init__(self, path, jobs=None, error=None, catch_up_lines=0):
        self.path = path
        self.jobs = jobs
        self.error = error
        self.catch_up_lines = catch_up_lines


def read_crontab_file(path):
    """(bytes, stat) of the crontab PATH, or None when there is none. Read
    as cron-generate writes it: a regular file, not through a symlink (it
    replaces one), never blocking on a FIFO, at most CRONTAB_MAX_BYTES; else
    ProcessControlError saying what is there."""
    try:
        fd = _open_regular_file(path, os.O_RDONLY, None)
    except FileNotFoundError:
        return None
    except BadFileError as error:
        raise ProcessControlError("%s, not the file cron-generate writes" % error)
    except OSError as error:
        raise ProcessControlError("cannot read %s: %s" % (path, error.strerror))
    try:
        status = os.fstat(fd)
        data = _read_at_most(fd, CRONTAB_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > CRONTAB_MAX_BYTES:
        raise ProcessControlError("%s is larger than any crontab cron-generate writes (%d "
                                  "bytes)" % (path, CRONTAB_MAX_BYTES))
    return data, status


def parse_installed_crontab(path, data):
    """The InstalledCrontab of DATA, the bytes of the crontab PATH: in `jobs`,
    the schedule of each line that runs `--job NAME` (None for a line
    without the `--scheduled 'EXPR'` that cron-generate now writes)."""
    import re  # lazily: only the reports read a crontab
    job_pattern = re.compile(CRONTAB_JOB_PATTERN)
    catch_up_pattern = re.compile(CRONTAB_CATCH_UP_PATTERN)
    crontab = InstalledCrontab(path, {})
    for line in data.decode("utf-8", "replace").splitlines():
        words = line.split(None, 1)
        if not words or words[0].startswith("#") or "=" in words[0]:
            continue  # a blank line, a comment or an environment setting
        match = job_pattern.search(line)
        if match:
            crontab.jobs.setdefault(match.group(1), []).append(match.group(2))
        elif catch_up_pattern.search(line):
            crontab.catch_up_lines += 1
    return crontab


def read_installed_crontab(config):
    """The InstalledCrontab at config.output_crontab."""
    path = config.output_crontab
    if path == "console":
        return InstalledCrontab(None)
    try:
        found = read_crontab_file(path)
    except ProcessControlError as error:
        return InstalledCrontab(path, error=str(error))
    if found is None:
        return InstalledCrontab(path)
    return parse_installed_crontab(path, found[0])


def is_scheduled(job):
    """Whether cron-generate writes a line for JOB."""
    return job.schedule is not None and not job.disabled


def job_crontab_problem(job, crontab):
    """How JOB's lines in CRONTAB (an InstalledCrontab that was read) differ
    from what cron-generate would write for it, or None."""
    if crontab.jobs is None:
        if is_scheduled(job):
            return "no crontab installed: %s does not exist" % crontab.path
        return None
    schedules = crontab.jobs.get(job.name, [])
    if None in schedules:
        return "written by an older cron-generate"
    listed = ", ".join("'%s'" % schedule for schedule in schedules)
    if not is_scheduled(job):
        if not schedules:
            return None
        return "%s, still scheduled %s" % (
            "disabled" if job.disabled else "no schedule in the job file", listed)
    if not schedules:
        return "scheduled '%s', but not in the crontab" % job.schedule_expression
    if len(schedules) > 1:
        return "%d lines: %s" % (len(schedules), listed)
    if normalised_schedule(schedules[0]) != normalised_schedule(job.schedule_expression):
        return "rescheduled to '%s', still scheduled %s" % (job.schedule_expression, listed)
    if job.catch_up and not crontab.catch_up_lines:
        return "catch_up: true, but the crontab has no @reboot line for run-job --catch-up"
    return None


def catch_up_lines_problem(crontab, jobs):
    """How CRONTAB's run-job --catch-up lines differ from the one that
    cron-generate writes when one of JOBS is a scheduled catch-up job, or
    None. (A missing one is each such job's problem: job_crontab_problem.)"""
    if crontab.catch_up_lines > 1:
        return "%d lines run run-job --catch-up" % crontab.catch_up_lines
    if crontab.catch_up_lines and not any(is_scheduled(job) and job.catch_up for job in jobs):
        return "it runs run-job --catch-up, but no scheduled job has catch_up: true"
    return None


def crontab_orphans(crontab, names):
    """The jobs CRONTAB runs that have no job file (are not among NAMES)."""
    return sorted(set(crontab.jobs or ()) - set(names))


def orphans_problem(orphans):
    return "it runs %s, which %s no job file" % (
        ", ".join(orphans), "has" if len(orphans) == 1 else "have")


def crontab_status_problem(crontab, names, all_jobs=True):
    """What --status closes with about the crontab itself, not one job, or
    None; the jobs without a file only when NAMES are ALL_JOBS."""
    if crontab.path is None:
        return None
    if crontab.error is not None:
        return "cannot compare it with the job files: %s; run cron-generate" % crontab.error
    orphans = crontab_orphans(crontab, names) if all_jobs else []
    if orphans:
        return "%s is out of date (%s); run cron-generate" % (crontab.path,
                                                              orphans_problem(orphans))
    return None


# -- 11.2 --list-jobs and --status

def write_problems(problems, err):
    for problem in problems:
        err.write("run-job: %s\n" % printable(str(problem)))


def list_jobs(config, only_running, out, err, names=None):
    """--list-jobs: every job name (or NAMES, those --tag selected), one per
    line, for shell completion."""
    if names is None:
        names, problems = scan_job_directory(config)
        write_problems(problems, err)
    for name in names:
        if not only_running or running_info(config, name) is not None:
            out.write(name + "\n")
    return EXIT_OK


def show_status(config, names, only_running, out, err, as_json=False, now=None):
    """--status [NAME...]: each job (or each named one, in the order named) in
    the original's format and ours, or AS_JSON one object {"jobs": [...],
    "crontab": ...}; an invalid job file or an unreadable state shows as
    such without hiding the others. A name without a job file is a usage
    error, reported (as ls does) after the others are shown. NOW: Unix time."""
    unknown, named = [], bool(names)
    if named:
        names, unknown = existing_job_names(config, names)
    else:
        names, problems = scan_job_directory(config)
        write_problems(problems, err)
    now = time.time() if now is None else now
    crontab = read_installed_crontab(config)
    directory = job_directory_or_none(config)
    statuses = []
    for name in names:
        running = running_info(config, name)
        if not only_running or running is not None:
            statuses.append(job_status(config, name, running, now, crontab, directory))
    closing = None if only_running else crontab_status_problem(crontab, names, not named)
    if as_json:
        import json  # lazily: only --json needs it (preloaded, see report_command)
        out.write(json.dumps({"jobs": statuses, "crontab": closing}, indent=2) + "\n")
    else:
        for status in statuses:
            for line in status_text_lines(status):
                out.write(printable(line) + "\n")  # a name or description never adds a line
        if closing is not None:
            out.write(printable("crontab: " + closing) + "\n")
    write_problems(unknown, err)
    return EXIT_USAGE if unknown else EXIT_OK


def existing_job_names(config, names):
    """(the NAMES that have a job file, a UsageError for each other one)."""
    found, unknown = [], []
    for name in names:
        try:
            job_file_path(config, name)
        except UsageError as error:
            unknown.append(error)
            continue
        except RefusedError:
            pass  # shown as invalid, as a scan shows it
        found.append(name)
    return found, unknown


# One job's status, as --status --json prints it and --status words it: the
# keys in this order, each always there (README's table says what each holds).
STATUS_KEYS = ("name", "verbose_name", "description", "tags", "schedule", "next_run",
               "next_run_time", "disabled", "invalid", "crontab", "lock_error", "running",
               "paused", "halted", "backing_off_until", "backing_off_until_time",
               "last_run", "last_success", "last_success_time", "consecutive_failures",
               "last_skip", "logging_error", "mail_error", "hook_error", "set_aside",
               "state_error")


def job_status(config, name, running, now, crontab, directory=None):
    """What --status says of job NAME at NOW: a dict of STATUS_KEYS, from its
    job file, its lock (RUNNING: its running_info) and its state file.
    DIRECTORY: see job_file_path."""
    status = dict.fromkeys(STATUS_KEYS)
    status.update(name=name, tags=[], running=running_status(running, now))
    job = None
    try:
        job = load_job(config, name, directory)
    except (ConfigError, RefusedError, UsageError) as error:
        status["invalid"] = str(error)
    else:
        status.update(job_file_status(job, now, crontab))
    bad_lock = lock_file_problem(config, name)
    if bad_lock is not None:
        status["lock_error"] = str(bad_lock)
    try:
        state = read_job_state(config, name) or {}
    except BadFileError as error:  # read-only: the next run sets it aside
        status["state_error"] = "state file %s; the next run sets it aside" % error
    except OSError as error:  # one unreadable record hides nothing else
        status["state_error"] = "%s: cannot read: %s" % (state_path(config, name),
                                                         error.strerror)
    else:
        status.update(recorded_status(job, state, now))
    return status


def next_run_times(job, now, count):
    """The Unix times of JOB's next COUNT starts by cron after NOW (fewer if
    its schedule ends), none if cron does not run it."""
    if not is_scheduled(job):
        return []
    import datetime  # lazily: only the reports need it (1.2 ms)
    times = []
    moment = datetime.datetime.fromtimestamp(now)
    while len(times) < count:
        moment = job.schedule.next_after(moment)
        if moment is None:
            break
        times.append(int(time.mktime(moment.timetuple())))
    return times


def job_file_status(job, now, crontab):
    """job_status's keys that JOB's file gives."""
    next_run = (next_run_times(job, now, 1) or [None])[0]
    problem = None
    if crontab.path is not None and crontab.error is None:
        problem = job_crontab_problem(job, crontab)
    return {"verbose_name": job.verbose_name, "description": job.description,
            "tags": list(job.tags), "schedule": job.schedule_expression,
            "next_run": optional_iso_time(next_run), "next_run_time": next_run,
            "disabled": job.disabled, "crontab": problem}


def running_status(running, now):
    """job_status's `running`, from RUNNING (see running_info), or None."""
    if running is None:
        return None
    pid, start = running.get("pid"), running.get("start")
    return {"pid": pid, "start": optional_iso_time(start),
            "start_time": None if start is None else round(start, 3),
            "elapsed": None if start is None else round(max(now - start, 0.0), 3),
            "runner_died": pid is not None and runner_died(running)}


def recorded_status(job, state, now):
    """job_status's keys that a job's STATE gives; JOB: None when invalid."""
    until = None if job is None else backoff_until(job, state, now)
    if until is not None and until <= now:
        until = None
    last_success, last_success_time = recorded_time(state, "last_success", "last_success_time")
    last_skip = None
    if "last_skip" in state:
        last_skip = {"at": recorded_text(state, "last_skip"),
                     "reason": recorded_text(state, "last_skip_reason")}
    return {"paused": paused_status(state), "halted": halted_status(state),
            "backing_off_until": optional_iso_time(until),
            "backing_off_until_time": None if until is None else round(until, 3),
            "last_run": last_run_status(state), "last_success": last_success,
            "last_success_time": last_success_time,
            "consecutive_failures": int(recorded_number(state, "consecutive_failures")),
            "last_skip": last_skip, "logging_error": recorded_text(state, "logging_error"),
            "hook_error": recorded_text(state, "hook_error"),
            "mail_error": recorded_text(state, "mail_error"),
            "set_aside": recorded_text(state, "set_aside")}


def paused_status(state):
    if not mark_set(state, "paused"):
        return None
    at, at_time = recorded_time(state, "paused", "paused_time")
    return {"by": recorded_text(state, "paused_by"), "at": at, "at_time": at_time,
            "reason": recorded_text(state, "pause_reason")}


def halted_status(state):
    if not mark_set(state, "halted"):
        return None
    since, since_time = recorded_time(state, "halted", "halted_time")
    return {"since": since, "since_time": since_time,
            "reason": recorded_text(state, "halt_reason")}


def last_run_status(state):
    if "status" not in state:
        return None
    start, start_time = recorded_time(state, "start", "start_time")
    run = {key: recorded_text(state, key) for key in ("status", "reason")}
    run.update({key: recorded_number(state, key, None) for key in ("exit_code", "signal")})
    run.update(start=start, start_time=start_time,
               duration=recorded_number(state, "duration", None),
               attempts=recorded_number(state, "attempts", None),
               log=recorded_text(state, "log"))
    return run


def recorded_text(state, key):
    value = state.get(key)
    return None if value is None else str(value)


def recorded_time(state, text_key, time_key):
    """(local ISO 8601 text, Unix time) of a time that STATE records under
    both keys; the text from the time when only that is there. A mark
    cleared by setting it false (or empty) is no time."""
    text = recorded_text(state, text_key) if state.get(text_key) else None
    epoch = recorded_number(state, time_key, None)
    if text is None:
        text = optional_iso_time(epoch)
    return text, epoch


def optional_iso_time(epoch):
    """_iso_time(EPOCH), or None for None or a time beyond what localtime
    takes (a state file may say any number)."""
    if epoch is None:
        return None
    try:
        return _iso_time(epoch)
    except (OverflowError, OSError, ValueError):
        return None


def status_text_lines(status):
    """STATUS (see job_status) as --status prints it: the head line and the
    lines of the original's format, then the facts it did not have."""
    name, running = status["name"], status["running"]
    if status["invalid"] is not None:
        head, lines = "%s ***Invalid configuration***" % name, [status["invalid"]]
    else:
        head, lines = "%s - %s" % (name, status["verbose_name"]), []
    if running is not None:
        head += STATUS_INDENT + ("{status: running}" if running["pid"] is None  # not yet written
                                 else "{pid: %d, status: running}" % running["pid"])
        lines.extend(running_lines(name, running))
    if status["lock_error"] is not None:
        lines.append("lock file %s: every run is refused; remove it" % status["lock_error"])
    if status["description"]:
        lines.extend(line.strip() for line in status["description"].strip().splitlines())
    if status["tags"]:
        lines.append("tags: " + ", ".join(status["tags"]))
    if status["schedule"] is not None:
        lines.append(schedule_summary(status))
    if status["crontab"] is not None:
        lines.append("crontab: out of date (%s); run cron-generate" % status["crontab"])
    lines.extend(state_summaries(status))
    return [head] + [STATUS_INDENT + line for line in lines]


def running_lines(name, running):
    lines = []
    if running["start"] is not None:
        lines.append("running since %s, for %s" % (running["start"],
                                                  elapsed_text(running["elapsed"])))
    if running["runner_died"]:
        lines.append(orphaned_run_text(name, {"pid": running["pid"],
                                              "start": running["start_time"]}))
    return lines


def elapsed_text(seconds):
    """SECONDS as `42 s`, `5m 03s`, `2h 05m` or `3d 04h`."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return "%dd %02dh" % (days, hours)
    if hours:
        return "%dh %02dm" % (hours, minutes)
    if minutes:
        return "%dm %02ds" % (minutes, seconds)
    return "%d s" % seconds


def schedule_summary(status):
    summary = "schedule: %s" % status["schedule"]
    if status["disabled"]:
        return summary + " (disabled)"
    if status["next_run_time"] is None:
        return summary + ", no next run"
    return summary + ", next run %s" % time.strftime("%Y-%m-%d %H:%M",
                                                     time.localtime(status["next_run_time"]))


def state_summaries(status):
    """What the state records, as STATUS has it: the pause and halt marks, a
    backoff, the last run's outcome, the failures since the last success, a
    failing `logging` handler, a mail not sent, what a run set aside, and the
    last skipped start since the last run."""
    if status["state_error"] is not None:
        return ["last status: unknown: " + status["state_error"]]
    lines = []
    paused, halted = status["paused"], status["halted"]
    if paused is not None:
        lines.append("paused by %s at %s%s" % (paused["by"] or "?", paused["at"],
                                               reason_text(paused["reason"])))
    if halted is not None:
        lines.append("halted since %s%s; run-job --reset %s clears it"
                     % (halted["since"], reason_text(halted["reason"]), status["name"]))
    if status["backing_off_until"] is not None:
        lines.append("backing off until %s" % status["backing_off_until"])
    if status["last_run"] is not None:
        lines.append("last status: " + outcome_summary(status["last_run"]))
    if status["consecutive_failures"]:
        lines.append("consecutive failures: %d, last success: %s"
                     % (status["consecutive_failures"], status["last_success"] or "never"))
    if status["logging_error"]:
        lines.append("logging: %s" % status["logging_error"])
    if status["hook_error"]:
        lines.append("hook: %s" % status["hook_error"])
    if status["mail_error"]:
        lines.append("mail: %s" % status["mail_error"])
    if status["set_aside"]:
        lines.extend(status["set_aside"].splitlines())
    if status["last_skip"] is not None:
        lines.append("last skipped start: %s (%s)" % (status["last_skip"]["at"],
                                                      status["last_skip"]["reason"]))
    return lines


def reason_text(reason):
    return ": %s" % reason if reason else ""


def outcome_summary(run):
    """One line from RUN (job_status's `last_run`), such as
    `failed at 2026-11-27T02:30:00.000+0000 (exit code 3, 1.2 s)`."""
    summary = run["status"] or "unknown"
    if run["start"] is not None:
        summary += " at %s" % run["start"]
    details = []
    if run["exit_code"] is not None:
        details.append("exit code %s" % run["exit_code"])
    if run["signal"] is not None:
        details.append("signal %s" % run["signal"])
    if run["duration"] is not None:
        details.append("%.1f s" % run["duration"])
    if run["attempts"] is not None and run["attempts"] > 1:
        details.append("%d attempts" % run["attempts"])
    return summary + (" (%s)" % ", ".join(details) if details else "")


# -- 11.3 --check

def check_configuration(config, out, err):
    """--check: every problem in the global config and the job files, one
    line each; warnings do not fail. Returns EXIT_OK or EXIT_CONFIG."""
    problems, warnings, names = configuration_problems(config)
    # What default_job_config causes is found in every job, at the same place: once.
    problems, warnings = unique_by_text(problems), unique_by_text(warnings)
    write_problems(problems + warnings, err)
    if out.isatty():
        out.write("checked %d jobs: %d problems, %d warnings\n"
                  % (len(names), len(problems), len(warnings)))
    return EXIT_CONFIG if problems else EXIT_OK


def unique_by_text(errors):
    """ERRORS without repeats of the same line, in their order."""
    unique, seen = [], set()
    for error in errors:
        if str(error) not in seen:
            seen.add(str(error))
            unique.append(error)
    return unique


def configuration_problems(config):
    """Return (problems, warnings, names) for --check. The problems include
    what would certainly make the service user's runs fail under cron."""
    problems, warnings, account = [], [], None
    try:
        account = require_service_account(config)
    except (ConfigError, RefusedError) as error:
        problems.append(error)
    if account is not None:
        problems.extend(directory_problems(config, account))
        warnings.extend(logging_warnings(config, account))
        warnings.extend(metrics_directory_warnings(config, account))
    warnings.extend(run_directory_warnings(config))
    try:
        directory = job_directory_path(config)
        names, name_problems = scan_job_directory(config)
    except (ConfigError, RefusedError) as error:
        return problems + [error], warnings, []
    problems.extend(name_problems)
    jobs = []
    for name in names:
        try:
            job = load_job(config, name, directory)
        except (ConfigError, RefusedError, UsageError) as error:
            problems.append(error)
            continue
        if account is not None:
            problems.extend(command_problems(config, job, account))
        warnings.extend(schedule_warnings(job))
        warnings.extend(shell_syntax_warnings(job))
        warnings.extend(timeout_warnings(job))
        warnings.extend(stderr_ignore_warnings(job))
        warnings.extend(overlap_warnings(job))
        jobs.append(job)
    warnings.extend(crontab_warnings(config, read_installed_crontab(config), jobs, names))
    return problems, warnings, names


def crontab_warnings(config, crontab, jobs, names):
    """--check's warnings where CRONTAB is not what the job files generate:
    one per job that differs, one for lines of jobs with no job file."""
    if crontab.path is None:
        return []
    if crontab.error is not None:
        return [config.error("warning: cannot compare the crontab with the job files: %s; "
                             "run cron-generate" % crontab.error, "output_crontab")]
    if crontab.jobs is None:
        if not any(is_scheduled(job) for job in jobs):
            return []
        return [config.error("warning: no crontab installed: %s does not exist; run "
                             "cron-generate" % crontab.path, "output_crontab")]
    warnings = []
    for job in jobs:
        problem = job_crontab_problem(job, crontab)
        if problem is not None:
            warnings.append(job_key_error(
                job, "disabled" if job.disabled else "schedule",
                "warning: the crontab %s is out of date (%s); run cron-generate"
                % (crontab.path, problem)))
    orphans = crontab_orphans(crontab, names)
    problems = [orphans_problem(orphans)] if orphans else []
    problems.append(catch_up_lines_problem(crontab, jobs))
    for problem in filter(None, problems):
        warnings.append(config.error("warning: the crontab %s is out of date (%s); run "
                                     "cron-generate" % (crontab.path, problem),
                                     "output_crontab"))
    return warnings


# What the service user will meet under cron, checked by run-job --check (as
# errors) and by cron-generate (as warnings), whoever runs them.

CRON_DEFAULT_PATH = "/usr/bin:/bin"  # Debian cron's PATH for a job


def nearest_existing(path):
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    return parent


def directory_problems(config, account):
    """What keeps the service user from writing into the output, run and
    state directories, at their keys. A missing one is no problem when root
    can create it: cron-generate, run as root at every deployment, does."""
    problems = []
    for key, path, _, _ in written_directories(config, account):
        problem = directory_problem(path, account)
        if problem is not None:
            what, fix = problem
            problems.append(config.error("the %s %s %s, so every cron run would fail; %s"
                                         % (key.replace("_", " "), path, what, fix), key))
    return problems


def directory_problem(path, account):
    """(what is wrong, how to fix it) for the directory PATH, or None."""
    name = account.pw_name
    if os.path.isdir(path):
        blocked = unsearchable_directory(os.path.dirname(path), account)
        if blocked is not None:
            return ("is out of the service user's reach: %s is not searchable by %s"
                    % (blocked, name), "chmod o+x %s" % blocked)
        if not service_user_can(path, account, os.W_OK | os.X_OK):
            return ("is not writable by the service user %s" % name,
                    "chown %s %s" % (name, path))
        return None
    parent = nearest_existing(path)
    if not os.path.isdir(parent):
        return ("cannot be created: %s is not a directory" % parent,
                "remove it or choose another path")
    blocked = unsearchable_directory(parent, account)
    if blocked is not None:
        return ("would be out of the service user's reach: %s is not searchable by %s"
                % (blocked, name), "chmod o+x %s" % blocked)
    refusal = filesystem_refusal(parent)
    if refusal is not None:
        return ("cannot be created, not even by root: %s" % refusal,
                "choose a path on a writable filesystem")
    return None


def metrics_directory_warnings(config, account):
    """A metrics_directory where no run can write its metrics file: the runs
    still run, so a warning."""
    path = config.metrics_directory
    if path is None:
        return []
    what, fix = "is %s" % _not_a_directory(path), "make it a directory"
    if not os.path.lexists(path):
        what, fix = "does not exist", "create it, owned by %s" % account.pw_name
    elif os.path.isdir(path) and not os.path.islink(path):
        problem = directory_problem(path, account)
        if problem is None:
            return []
        what, fix = problem
    return [config.error("warning: the metrics directory %s %s: no run can write its "
                         "metrics file; %s" % (path, what, fix), "metrics_directory")]


# Kernel filesystems where nobody, root included, creates a directory.
PSEUDO_FILESYSTEMS = ("/proc", "/sys")


def filesystem_refusal(directory):
    """Why no directory can be made in DIRECTORY, whoever asks, or None."""
    real = os.path.realpath(directory)
    for top in PSEUDO_FILESYSTEMS:
        if real == top or real.startswith(top + "/"):
            return "%s is in %s, a kernel filesystem" % (directory, top)
    try:
        read_only = os.statvfs(real).f_flag & os.ST_RDONLY
    except OSError:
        return None
    return "%s is on a read-only filesystem" % directory if read_only else None


TMPFILES_LINE = "d %s 0755 %s %s -"


def run_directory_warnings(config):
    """/run is emptied at boot, and the service user cannot recreate a
    directory there: the first cron run after a reboot would fail."""
    path = os.path.realpath(config.run_directory)
    if path != "/run" and not path.startswith("/run/"):
        return []
    import grp  # loaded before the switch (MODULES_AFTER_SWITCH)
    account = service_account(config)
    try:
        group = grp.getgrgid(account.pw_gid).gr_name
    except (AttributeError, KeyError):  # no such user (reported), or a bare gid
        group = config.user
    return [config.error(
        "warning: the run directory %s is under /run, which is emptied at boot, and the "
        "service user cannot recreate it; install the tmpfiles.d line `%s` as "
        "/etc/tmpfiles.d/process-control.conf, or leave `run_directory` to its default "
        "(persistent: flock locks never go stale)"
        % (path, TMPFILES_LINE % (path, config.user, group)), "run_directory")]


def job_key_error(job, key, message):
    """A ConfigError at KEY of JOB, where it was written."""
    source, line, column = job.positions.get(key, (job.source, None, None))
    return ConfigError(message, source, line, column)


def job_search_path(config, job):
    """The PATH a job has under cron: its own `environment`'s, else the
    crontab's (cron_environment), else cron's default."""
    for environment in (job.environment, config.cron_environment):
        if "PATH" in environment:
            return str(environment["PATH"])
    return CRON_DEFAULT_PATH


# The keys holding command lines, with the Job attribute of their argvs.
COMMAND_KEYS = (("command", "commands"), ("slow_start_command", "slow_start_commands")) \
    + tuple((key, key) for key in HOOK_KEYS)


def command_problems(config, job, account):
    """Every command of `command`, `slow_start_command` and the hooks whose
    program does not exist or that the service user cannot execute."""
    problems = []
    search = job_search_path(config, job)
    for key, attribute in COMMAND_KEYS:
        for argv in getattr(job, attribute) or ():
            problem = program_problem(argv[0], search, account)
            if problem is not None:
                problems.append(job_key_error(job, key, "`%s`: %s" % (key, problem)))
    return problems


def program_problem(program, search, account):
    """Why the service user cannot start PROGRAM, searched as exec does, or None."""
    if "/" in program:  # cron starts a job in the service user's home
        return executable_problem(os.path.join(account.pw_dir, program), account)
    refused = None
    for directory in search.split(":"):
        candidate = os.path.join(account.pw_dir, directory or ".", program)
        if not os.path.isfile(candidate):
            continue
        problem = executable_problem(candidate, account)
        if problem is None:
            return None
        refused = refused or problem
    if refused is not None:
        return refused
    return ("program %s is not found in PATH %s, the PATH the job has under cron; give "
            "its full path, or set PATH in `environment` or `cron_environment`"
            % (printable(program, QUOTED_PATH_LIMIT), printable(search, QUOTED_PATH_LIMIT)))


def executable_problem(path, account, script=True):
    """Why the service user cannot exec PATH, or None; SCRIPT: look at its
    `#!` line too (one level, which is all that a job's scripts use)."""
    shown = printable(path, QUOTED_PATH_LIMIT)
    # Reach first: in a directory this process cannot search, a program looks missing.
    blocked = unsearchable_directory(os.path.dirname(path), account)
    if blocked is not None:
        blocked = printable(blocked, QUOTED_PATH_LIMIT)
        return ("the service user %s cannot reach %s: %s is not searchable (chmod o+x %s)"
                % (account.pw_name, shown, blocked, blocked))
    if not os.path.exists(path):
        return "%s does not exist; install it or correct the path" % shown
    if os.path.isdir(path):
        return "%s is a directory, not a program; give the program's path" % shown
    if not service_user_can(path, account, os.X_OK):
        return "the service user %s cannot execute %s; chmod a+x %s" % (
            account.pw_name, shown, shown)
    return interpreter_problem(path, account) if script else None


def interpreter_problem(path, account):
    """A script's `#!` interpreter that the service user cannot start, or None
    (also when the script cannot be read here: exec alone needs no read)."""
    try:
        with open(path, "rb") as script:
            first = script.read(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    shown = printable(path, QUOTED_PATH_LIMIT)
    words = first[2:].split(b"\n", 1)[0].split()
    if not words:
        return "%s starts with `#!` but names no interpreter; correct its first line" % shown
    interpreter = os.fsdecode(words[0])
    if not os.path.isabs(interpreter):
        return None  # the kernel would take it relative to the working directory: rare
    problem = executable_problem(interpreter, account, script=False)
    if problem is None:
        return None
    return "%s: its `#!` interpreter cannot run: %s" % (shown, problem)


SHELLS = frozenset(("sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"))


def shell_syntax(line):
    """The first piece of shell syntax in command line LINE that a shell
    would act on but split_command_line passes on literally, or None: `$VAR`
    and backquotes outside single quotes, redirections, pipes, `;`, `&` and
    globs outside any quotes."""
    quote = None
    position = 0
    while position < len(line):
        char = line[position]
        following = line[position + 1:position + 2]
        if quote == "'":
            if char == "'":
                quote = None
        elif char == "\\":
            position += 1  # the next character is taken literally
        elif char == '"':
            quote = None if quote else '"'
        elif char == "`":
            return char
        elif char == "$" and (following.isalnum() or following in ("_", "{", "(")):
            end = position + 1
            while end < len(line) and (line[end].isalnum() or line[end] == "_"):
                end += 1
            return line[position:max(end, position + 2)]
        elif quote is None and char == "'":
            quote = "'"
        elif quote is None and char in "<>|;&*?[":
            return char + following if following == char and char in "&|>" else char
        position += 1
    return None


def shell_syntax_warnings(job):
    warnings = []
    for key, _ in COMMAND_KEYS:
        written = job.written.get(key)
        lines = [written] if isinstance(written, str) else written or []
        for line in lines:
            argv = split_command_line(line)
            syntax = shell_syntax(line)
            if syntax is None or os.path.basename(argv[0]) in SHELLS:
                continue
            warnings.append(job_key_error(
                job, key, "warning: `%s`: `%s` is passed to %s literally, without a shell; "
                "to use the shell write /bin/sh -c '...'"
                % (key, printable(syntax, QUOTED_VALUE_LIMIT),
                   printable(argv[0], QUOTED_PATH_LIMIT))))
    return warnings


def timeout_warnings(job):
    """The original process-control counted `timeout` in minutes."""
    written = job.written.get("timeout")
    if isinstance(written, str) and written.replace(".", "", 1).isdigit():
        written = float(written) if "." in written else int(written)  # "30": no unit either
    if not is_number(written) or not 0 < written < 60:
        return []
    return [job_key_error(job, "timeout", (
        "warning: `timeout: %s`: the original process-control counted minutes: %s now "
        "means %s seconds; write %ss, or %sm for %s minutes")
        % ((written,) * 6))]


def stderr_ignore_warnings(job):
    if job.stderr_ignore is None or job.fail_on_stderr:
        return []
    return [job_key_error(job, "stderr_ignore", "warning: `stderr_ignore` does nothing "
                          "without `fail_on_stderr: true`; set that, or remove it")]
def overlap_warnings(job):
    """`overlap_wait` in a job file of another policy than wait (from
    default_job_config it may well serve other jobs)."""
    if job.overlap == "wait" or job.positions.get("overlap_wait", (None,))[0] != job.source:
        return []
    return [job_key_error(job, "overlap_wait", "warning: `overlap_wait` has no effect with "
                          "`overlap: %s`; set `overlap: wait` or remove it" % job.overlap)]


def logging_warnings(config, account):
    """The `logging` handlers that cannot work on this machine, as far as can
    be told without applying the config (which opens files and sockets)."""
    handlers = (config.logging or {}).get("handlers")
    if not isinstance(handlers, dict):
        return []
    warnings = []
    for name, handler in handlers.items():
        if not isinstance(handler, dict):
            continue
        key, problem = handler_problem(handler, account)
        if problem is not None:
            warnings.append(config.error("warning: `logging`: handler %s: %s" % (name, problem),
                                         "logging", "handlers", name, key))
    return warnings


def handler_problem(handler, account):
    """(the handler's key at fault, the problem), or (None, None). A
    SysLogHandler without `address` sends UDP to localhost: nothing to check."""
    kind = str(handler.get("class", "")).rpartition(".")[2]
    missing = missing_handler_class(str(handler.get("class", "")))
    if missing is not None:
        return "class", missing
    if kind == "SysLogHandler" and isinstance(handler.get("address"), str):
        return "address", syslog_socket_problem(handler["address"], account)
    if kind.endswith("FileHandler") and isinstance(handler.get("filename"), str):
        return "filename", log_file_problem(handler["filename"], account)
    return None, None


def missing_handler_class(name):
    """Why dictConfig would not find the logging package's handler class NAME,
    or None. Other classes are not looked up: that would import their module."""
    if not name.startswith("logging."):
        return None
    import logging.handlers  # loaded before the switch (LOGGING_MODULES)
    modules = {"logging": logging, "logging.handlers": logging.handlers}
    module_name, _, attribute = name.rpartition(".")
    if hasattr(modules.get(module_name), attribute):
        return None
    return ("there is no class %s, so the run would log nothing; correct `class`, e.g. "
            "logging.handlers.SysLogHandler" % name)


def syslog_socket_problem(address, account):
    try:
        status = os.stat(address)
    except OSError:
        return ("the syslog socket %s does not exist, so every record would be lost; "
                "install a syslog daemon (rsyslog) or correct `address`" % address)
    if not stat.S_ISSOCK(status.st_mode):
        return "%s is not a socket; correct `address`" % address
    if not service_user_can(address, account, os.W_OK):
        return "the service user %s cannot write to %s" % (account.pw_name, address)
    return None


def log_file_problem(filename, account):
    directory = os.path.dirname(os.path.abspath(filename))
    if not os.path.isdir(directory):
        return "the directory %s does not exist; create it or correct `filename`" % directory
    if os.path.exists(filename):
        if service_user_can(filename, account, os.W_OK):
            return None
        return "the service user %s cannot write %s" % (account.pw_name, filename)
    if unsearchable_directory(directory, account) is None \
            and service_user_can(directory, account, os.W_OK | os.X_OK):
        return None
    return "the service user %s cannot create %s" % (account.pw_name, filename)


def schedule_warnings(job):
    if job.schedule is None:
        return []
    return [job_key_error(job, "schedule", "warning: %s" % warning)
            for warning in getattr(job.schedule, "warnings", ())]


# -- 11.4 --explain

# run-job --explain NAME: the job as its next run will see it, from the same
# functions a run uses (load_job, lock_path, state_path...), and nothing run
# or written. Commands and variable values are shell-quoted (quote_argv), as
# the run log's `command` lines are: a shell reads each back as exec gets it.

EXPLAIN_NEXT_RUNS = 5
EXPLAIN_VALUE_WIDTH = 40  # characters of a setting's value: the file has the rest
EXPLAIN_KEY_WIDTH = max(len(key.name) for key in JOB_KEYS)
# What cron gives a job before the crontab's own settings (crontab(5)),
# besides the user's HOME and LOGNAME.
CRON_DEFAULT_ENVIRONMENT = (("SHELL", "/bin/sh"), ("PATH", CRON_DEFAULT_PATH))


def explain_job(config, name, out, now=None, as_json=False):
    """--explain NAME: every setting of job NAME and where it was set, its
    commands, environment, user, paths, next scheduled times and crontab
    line, as text or AS_JSON. NOW: Unix time."""
    job = load_job(config, name)
    explanation = job_explanation(config, job, time.time() if now is None else now)
    if as_json:
        import json  # lazily: only --json needs it (preloaded, see report_command)
        out.write(json.dumps(explanation, indent=2) + "\n")
    else:
        for line in explanation_lines(explanation):
            out.write(printable(line) + "\n")
    return EXIT_OK


def job_explanation(config, job, now):
    """What --explain says of JOB at NOW, as a dict (--json prints it)."""
    running = running_info(config, job.name)
    times = next_run_times(job, now, EXPLAIN_NEXT_RUNS)
    return {
        "job": job.name, "file": job.source,
        "settings": [job_setting(job, key) for key in JOB_KEYS],
        "commands": job.commands, "slow_start_commands": job.slow_start_commands,
        "environment": environment_changes(config, job),
        "user": config.user, "uid": getattr(service_account(config), "pw_uid", None),
        "lock": lock_path(config, job.name),
        "running": running is not None,
        "running_pid": None if running is None else running.get("pid"),
        "log_directory": os.path.join(config.output_directory, job.name),
        "state": state_path(config, job.name), "history": history_path(config, job.name),
        "start_now": start_now(config, job, now),
        "next_runs": [_iso_time(epoch) for epoch in times], "next_run_times": times,
        "crontab": crontab_agreement(job, read_installed_crontab(config)),
    }


def job_setting(job, key):
    """{key, value, origin, file, line} of KEY in JOB: the value as written
    (one line, YAML flow style) and where, or the documented default."""
    position = job.positions.get(key.name)
    if position is None:
        return {"key": key.name, "value": key.documented.replace("`", ""),
                "origin": "built-in default", "file": None, "line": None}
    source, line, _ = position
    origin = "%s:%s" % (source, line)
    if source != job.source:
        origin = "default_job_config at " + origin
    return {"key": key.name, "value": short_flow_text(job.written[key.name]),
            "origin": origin, "file": source, "line": line}


def short_flow_text(value):
    """flow_text(VALUE) in at most EXPLAIN_VALUE_WIDTH characters: a longer
    list or mapping by its size, a longer string or number cut."""
    text = printable(flow_text(value))
    if len(text) <= EXPLAIN_VALUE_WIDTH:
        return text
    if isinstance(value, list):
        return "[a list of %d]" % len(value)
    if isinstance(value, dict):
        return "{a mapping of %d}" % len(value)
    return text[:EXPLAIN_VALUE_WIDTH - 3] + "..."


def flow_text(value):
    """VALUE, as the YAML subset read it, written on one line: strings in
    Python's quotes, so that '5' and 5 look different, as they are."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[%s]" % ", ".join(flow_text(item) for item in value)
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (flow_text(name), flow_text(item))
                                  for name, item in value.items())
    return repr(value) if isinstance(value, str) else str(value)


def environment_changes(config, job):
    """[{name, value, change}] of the job's `environment`: what each variable
    does to the environment cron gives the job (cron's defaults, the
    service user's HOME and LOGNAME, then cron_environment)."""
    defaults = list(CRON_DEFAULT_ENVIRONMENT)
    account = service_account(config)
    if account is not None:
        defaults += [("HOME", account.pw_dir), ("LOGNAME", account.pw_name)]
    given = dict((name, ("cron's default", value)) for name, value in defaults)
    given.update((name, ("cron_environment's", value))
                 for name, value in config.cron_environment.items())
    changes = []
    for name, value in sorted(job.environment.items()):
        change = "added"
        if name in given:
            origin, replaced = given[name]
            change = "replaces %s %s=%s" % (origin, name, _quote_word(replaced))
        changes.append({"name": name, "value": value, "change": change})
    return changes


def start_now(config, job, now):
    """What a start of JOB at NOW would do by its recorded state: run, or
    be skipped or refused by its pause, halt or backoff."""
    try:
        state = read_job_state(config, job.name) or {}
    except BadFileError as error:
        return "runs, after setting aside the state file %s" % error
    except OSError as error:
        return "unknown: cannot read %s: %s" % (state_path(config, job.name), error.strerror)
    reason = policy_skip_reason(job, state, now)
    if reason is None:
        return "runs"
    if reason.startswith("halted"):
        return "refused (exit 69): %s; run-job --reset %s clears it" % (reason, job.name)
    return "skipped: %s; run-job --force %s runs it anyway" % (reason, job.name)


def crontab_agreement(job, crontab):
    """Whether CRONTAB (an InstalledCrontab) runs JOB as its file says:
    `matches`, `no line: ...`, `line differs: ...`, `cannot read the
    crontab: ...`, or `not compared: ...` when cron-generate writes to the
    console."""
    if crontab.path is None:
        return "not compared: output_crontab is console"
    if crontab.error is not None:
        return "cannot read the crontab: %s" % crontab.error
    problem = job_crontab_problem(job, crontab)
    if problem is None:
        if is_scheduled(job):
            return "matches %s" % crontab.path
        return "matches %s: no line, as the job is %s" % (
            crontab.path, "disabled" if job.disabled else "not scheduled")
    if is_scheduled(job) and not (crontab.jobs or {}).get(job.name):
        return "no line: %s" % problem
    return "line differs: %s" % problem


def explanation_lines(explanation):
    """EXPLANATION (see job_explanation) as --explain prints it: aligned,
    one setting per line."""
    lines = ["job %s, as it will run (%s)" % (explanation["job"], explanation["file"]), "",
             "settings:"]
    width = max(len(setting["value"]) for setting in explanation["settings"])
    for setting in explanation["settings"]:
        lines.append("  %-*s  %-*s  %s" % (EXPLAIN_KEY_WIDTH, setting["key"], width,
                                          setting["value"], setting["origin"]))
    lines.extend(["", "commands, shell-quoted:"])
    lines.extend(command_lines(explanation["commands"]))
    if explanation["slow_start_commands"] is not None:
        lines.extend(["", "slow_start_command, shell-quoted (run by --slow-start):"])
        lines.extend(command_lines(explanation["slow_start_commands"]))
    lines.append("")
    lines.append("environment, over what cron gives (run by hand: over yours):"
                 if explanation["environment"] else "environment: as cron gives it")
    lines.extend(environment_lines(explanation["environment"]))
    lines.append("")
    lines.extend(explained_places(explanation))
    return lines


def command_lines(commands):
    return ["  %d. %s" % (number, quote_argv(argv)) for number, argv in enumerate(commands, 1)]


def environment_lines(changes):
    settings = ["%s=%s" % (change["name"], _quote_word(change["value"])) for change in changes]
    width = max([len(setting) for setting in settings] or [0])
    return ["  %-*s  %s" % (width, setting, change["change"])
            for setting, change in zip(settings, changes)]


def explained_places(explanation):
    """The lines of EXPLANATION after the environment: who runs the job,
    where its files are, when cron starts it and whether the crontab says so."""
    uid = explanation["uid"]
    places = [
        ("user", "%s (%s)" % (explanation["user"],
                              "no such user" if uid is None else "uid %d" % uid)),
        ("lock", "%s (%s)" % (explanation["lock"], lock_text(explanation))),
        ("log directory", explanation["log_directory"]),
        ("state", explanation["state"]),
        ("history", explanation["history"]),
        ("a start now", explanation["start_now"]),
    ]
    times = [time.strftime("%Y-%m-%d %H:%M %a %z", time.localtime(epoch))
             for epoch in explanation["next_run_times"]]
    places.append(("next runs", times[0] if times else "none: cron does not start it"))
    places.extend(("", text) for text in times[1:])
    places.append(("crontab", explanation["crontab"]))
    return ["%-13s  %s" % place for place in places]


def lock_text(explanation):
    if not explanation["running"]:
        return "free"
    if explanation["running_pid"] is None:
        return "held: the job is starting"
    return "held: the job is running, pid %s" % explanation["running_pid"]


# -- 11.5 --log and --history

# A log is copied in pieces whatever its size. With --stdout or --stderr a
# piece is cut after its last whole record; a record holds at most READ_SIZE
# bytes of output, so a longer stretch without a newline is none of
# run-job's writing, and is passed on in pieces all the same.
LOG_COPY_SIZE = 1 << 20
FOLLOW_INTERVAL = 0.2  # seconds between two looks at a log that --follow copies


def open_job_log(config, name, run):
    """(path, descriptor) of the log of job NAME's RUN-th latest run (1: the
    latest), found by name in its log directory."""
    check_job_name(name)
    directory = os.path.join(config.output_directory, name)
    if not os.path.lexists(directory):
        job_file_path(config, name)  # no job by that name either: a usage error
        raise ProcessControlError("job %s has no log: %s does not exist; it has not run "
                                  "yet" % (name, directory))
    directory_fd = _open_log_directory(directory)
    try:
        names = job_log_names(name, directory_fd)
        if len(names) < run:
            raise ProcessControlError("job %s has %d log%s in %s, no run %d; run-job "
                                      "--history %s lists its runs" % (
                                          name, len(names), "" if len(names) == 1 else "s",
                                          directory, run, name))
        path = os.path.join(directory, names[-run])
        return path, _open_regular_file(names[-run], os.O_RDONLY, None, directory_fd)
    finally:
        os.close(directory_fd)


def stream_bytes(records, tag):
    """The original bytes of stream TAG (b"O" or b"E") in RECORDS, whole log
    records (README "Log format"): each one's bytes, and its newline when
    marked "|" (a line), not when marked "+" (a piece)."""
    pieces = []
    for record in records.split(b"\n"):
        if record[24:25] == tag:
            pieces.append(record[27:])
            if record[25:26] == b"|":
                pieces.append(b"\n")
    return b"".join(pieces)


class LogCopy(object):
    """Copies the log open as FD to OUT (a binary stream) as it is read:
    its bytes, or with TAG only that stream's, rebuilt from its records."""

    def __init__(self, fd, out, tag):
        self.fd, self.out, self.tag = fd, out, tag
        self.pending = b""  # the start of a record still being written

    def copy(self):
        """Copy what the log holds past what was copied; whether it had more."""
        more = False
        while True:
            chunk = os.read(self.fd, LOG_COPY_SIZE)
            if not chunk:
                self.out.flush()
                return more
            more = True
            if self.tag is None:
                self.out.write(chunk)
                continue
            data = self.pending + chunk
            end = data.rfind(b"\n") + 1 or (len(data) if len(data) > LOG_COPY_SIZE else 0)
            self.pending = data[end:]
            self.out.write(stream_bytes(data[:end], self.tag))


def follow_log(config, name, path, log_copy):
    """Copy the log at PATH as it grows, until its run ends: the job's lock
    released, or held by a run with another log (the next run)."""
    while True:
        if log_copy.copy():
            continue
        running = running_info(config, name)
        if running is None or running["log"] != path:
            log_copy.copy()  # what was written before the end
            return
        time.sleep(FOLLOW_INTERVAL)


def show_log(config, invocation, out):
    """--log NAME [--run N] [--stdout | --stderr] [--follow]."""
    path, fd = open_job_log(config, invocation.job, invocation.log_run)
    try:
        tag = b"O" if invocation.log_stdout else b"E" if invocation.log_stderr else None
        log_copy = LogCopy(fd, out, tag)
        if invocation.follow:
            follow_log(config, invocation.job, path, log_copy)
        else:
            log_copy.copy()
    finally:
        os.close(fd)
    return EXIT_OK


def history_records(config, name):
    """Job NAME's history records, oldest first: NAME.history.1, then
    NAME.history; a line that is no record (cut by a full disk) is passed over."""
    path = history_path(config, name)
    records, found = [], False
    for each in (path + ".1", path):
        data = read_regular_file(each, HISTORY_FILE_MAX_BYTES)
        found = found or data is not None
        for line in (data or b"").split(b"\n")[:-1]:
            record = parse_record(line + b"\n")
            if record is not None:
                records.append(record)
    if not found:
        job_file_path(config, name)  # no job by that name: a usage error
    return records


def history_line(record):
    """One record as a line: start, status, duration, exit code or signal,
    log, then why (a skip's or failure's reason, who paused...)."""
    words = [recorded_text(record, "start") or "-", recorded_text(record, "status") or "-"]
    duration = recorded_number(record, "duration", None)
    words.append("-" if duration is None else "%.3fs" % duration)
    if record.get("signal") is not None:
        words.append("signal %s" % record["signal"])
    elif record.get("exit_code") is not None:
        words.append("exit %s" % record["exit_code"])
    else:
        words.append("-")
    words.append(recorded_text(record, "log") or "-")
    why = []
    if record.get("status") != "success" and record.get("reason") is not None:
        why.append(recorded_text(record, "reason"))
    if record.get("by") is not None:
        why.append("by %s" % record["by"])
    line = " ".join(words) + ("  # %s" % "; ".join(why) if why else "")
    return printable(line) + "\n"


def show_history(config, name, out, as_json=False):
    """--history NAME [--json]: every run, skip and command the history
    keeps, oldest first, as lines or as JSON lines."""
    for record in history_records(config, name):
        out.write(json_line(record) if as_json else history_line(record))
    return EXIT_OK


# -- 11.6 --health: a monitoring check

# run-job --health is a plugin as the Monitoring Plugins guidelines describe
# them: a first line `PROCESS-CONTROL STATE - summary | perfdata`, then one
# line per job at fault, and the state as exit code, always one of these four
# (an error of the check itself, usage or configuration, is UNKNOWN).
HEALTH_STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
HEALTH_OK, HEALTH_WARNING, HEALTH_CRITICAL, HEALTH_UNKNOWN = range(4)
HEALTH_SERVICE = "PROCESS-CONTROL"
# The causes the perfdata counts (the jobs at fault for each), in its order.
HEALTH_CAUSES = ("halted", "failing", "overdue", "no_success", "never_ran", "invalid",
                 "bad_state", "crontab", "unreadable")
# Which state of a job's faults, or of all jobs, wins: CRITICAL over a job
# the check could not read (UNKNOWN), over WARNING.
HEALTH_RANK = {HEALTH_OK: 0, HEALTH_WARNING: 1, HEALTH_UNKNOWN: 2, HEALTH_CRITICAL: 3}
HEALTH_NAMES_SHOWN = 5  # the first line names so many jobs of each state at most


class Fault(object):
    """One thing wrong with a job, or with the crontab: its STATE
    (HEALTH_WARNING, HEALTH_CRITICAL, or HEALTH_UNKNOWN when the check
    could not read its state), its CAUSE (of HEALTH_CAUSES) and
    what it is, in one line (TEXT)."""

    def __init__(self, state, cause, text):
        self.state = state
        self.cause = cause
        self.text = text


def show_health(config, names, all_jobs, out, now):
    """--health [NAME...]: the jobs NAMES (ALL_JOBS: every job, NAMES
    ignored) judged at NOW (Unix time); returns the state, the exit code.
    Reads only: no lock taken, nothing set aside."""
    directory = job_directory_path(config)
    check_state_directory_readable(config)
    problems = []
    if all_jobs:
        names, problems = scan_job_directory(config)
    else:
        names, unknown = existing_job_names(config, names)
        if unknown:
            raise unknown[0]
    crontab = read_installed_crontab(config)
    jobs, subjects = [], []
    for name in names:
        job, faults = job_health(config, name, now, crontab, directory)
        jobs.extend([job] if job is not None else [])
        subjects.append((name, faults))
    ok = sum(1 for _, faults in subjects if not faults)
    # Besides the jobs: the files whose names are no job's, and the crontab.
    subjects.extend((problem.file_name, [Fault(HEALTH_CRITICAL, "invalid", str(problem))])
                    for problem in problems)
    subjects.append(("crontab", crontab_faults(crontab, jobs, names, all_jobs)))
    return write_health(subjects, len(names), ok, out)


def check_state_directory_readable(config):
    """Every job's state is read from the state directory: one that cannot
    be searched is the check's own failure (UNKNOWN), not each job's."""
    path = config.state_directory
    if not os.path.isdir(path):
        raise config.error("the state directory %s does not exist, so no run was ever "
                           "recorded; as root, run cron-generate (it creates it)" % path,
                           "state_directory")
    if not os.access(path, os.X_OK):
        raise RefusedError("cannot read the state directory %s: permission denied; "
                           "chmod 0755 %s" % (path, path))


def job_health(config, name, now, crontab, directory):
    """(the Job or None when invalid, its Faults) for job NAME at NOW: what
    its job file, its state and the installed CRONTAB say."""
    try:
        job = load_job(config, name, directory)
    except (ConfigError, RefusedError, UsageError) as error:
        return None, [Fault(HEALTH_CRITICAL, "invalid", "invalid job file: %s" % error)]
    faults = []
    if crontab.path is not None and crontab.error is None:
        problem = job_crontab_problem(job, crontab)
        if problem is not None:
            faults.append(Fault(HEALTH_WARNING, "crontab", "crontab out of date (%s); run "
                                                           "cron-generate" % problem))
    try:
        state = read_job_state(config, name) or {}
    except BadFileError as error:  # read-only: the next run sets it aside
        return job, faults + [Fault(HEALTH_WARNING, "bad_state", "state file %s; the next "
                                                                 "run sets it aside" % error)]
    except PermissionError as error:  # the check's own failure, not the job's
        return job, faults + [Fault(HEALTH_UNKNOWN, "unreadable", "cannot read %s: %s; run "
                                    "the check as root or the service user" % (
                                        state_path(config, name), error.strerror))]
    except OSError as error:
        return job, faults + [Fault(HEALTH_WARNING, "bad_state", "cannot read %s: %s" % (
            state_path(config, name), error.strerror))]
    faults.extend(recorded_faults(job, state))
    if is_scheduled(job) and not mark_set(state, "paused"):
        faults.extend(schedule_faults(config, job, state, now))
    return job, faults


def recorded_faults(job, state):
    """JOB's Faults that its STATE shows whatever its schedule: halted,
    failing beyond alert_after_failures, a bad file set aside."""
    faults = []
    halted = halted_status(state)
    if halted is not None:
        faults.append(Fault(HEALTH_CRITICAL, "halted", "halted since %s%s; run-job --reset "
                            "%s clears it" % (halted["since"], reason_text(halted["reason"]),
                                              job.name)))
    failures = recorded_count(state, "consecutive_failures")
    if failures >= job.alert_after_failures:
        last_run = last_run_status(state)
        faults.append(Fault(HEALTH_CRITICAL, "failing", "%s (alert_after_failures: %d), last "
                            "status: %s" % (consecutive_failures_text(failures),
                                            job.alert_after_failures,
                                            outcome_summary(last_run) if last_run
                                            else "unknown")))
    set_aside = recorded_text(state, "set_aside")
    if set_aside:
        faults.append(Fault(HEALTH_WARNING, "bad_state", "; ".join(set_aside.splitlines())))
    return faults


def schedule_faults(config, job, state, now):
    """The Faults of a scheduled, enabled, unpaused JOB at NOW: overdue (no
    start since the second latest of its scheduled times before NOW less
    overdue_grace: one missed start is tolerated, two are not), no success
    for longer than max_success_age, or never started although scheduled
    since its job file changed. A run going on started too (its lock says
    when): asked only of a job that looks at fault, as it reads /proc/locks."""
    started = latest_start(state)
    due = scheduled_times_back(job.schedule, now - job.overdue_grace)
    latest = next(due, None)
    faults = []
    if started is None:
        changed = job_file_changed(job, now)
        if latest is not None and latest > changed \
                and running_start(config, job.name, now) is None:
            faults.append(Fault(HEALTH_WARNING, "never_ran", "never ran, though scheduled at "
                                "%s since its job file changed (%s)" % (
                                    minute_text(latest), optional_iso_time(changed))))
    elif latest is not None and started < latest:
        earlier = next(due, None)  # asked only now: most jobs started since the latest
        if earlier is not None \
                and max(running_start(config, job.name, now) or 0, started) < earlier:
            faults.append(Fault(HEALTH_CRITICAL, "overdue", "overdue: nothing started since "
                                "%s, though scheduled at %s and %s (%s)" % (
                                    optional_iso_time(started), minute_text(earlier),
                                    minute_text(latest), job.schedule_expression)))
    if job.max_success_age:
        faults.extend(success_age_faults(job, state, now))
    return faults


def success_age_faults(job, state, now):
    """JOB's Fault when its last success (or, never successful, the last
    change of its job file) is older than max_success_age."""
    success = recorded_number(state, "last_success_time", None)
    since = job_file_changed(job, now) if success is None else success
    if now - since <= job.max_success_age:
        return []
    return [Fault(HEALTH_CRITICAL, "no_success", "no success since %s, longer than "
                  "max_success_age (%s)" % (
                      optional_iso_time(success) if success is not None
                      else "its job file changed (%s)" % optional_iso_time(since),
                      elapsed_text(job.max_success_age)))]


def job_file_changed(job, now):
    """When JOB's file last changed (Unix time); NOW if it is gone since."""
    try:
        return os.stat(job.source).st_mtime
    except OSError:
        return now


def latest_start(state):
    """When the job last started, as its STATE records it: its last run's
    start or its last skipped start, whichever is later (Unix time), or None.
    A state written before `last_skip_time` has only `last_skip`'s text."""
    skipped = recorded_number(state, "last_skip_time", None)
    if skipped is None and state.get("last_skip"):
        skipped = epoch_of_iso_time(recorded_text(state, "last_skip"))
    known = [moment for moment in (recorded_number(state, "start_time", None), skipped)
             if moment is not None]
    return max(known) if known else None


def epoch_of_iso_time(text):
    """The Unix time of TEXT as _iso_time writes it, or None."""
    import datetime  # lazily: only the reports need it
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None


def running_start(config, name, now):
    """When the run of job NAME going on now started (NOW for the instant
    before its lock says), or None when none is going on."""
    running = running_info(config, name)
    if running is None:
        return None
    return running["start"] if running["start"] is not None else now


def scheduled_times_back(schedule, moment):
    """The times at which cron starts SCHEDULE's job strictly before MOMENT
    (Unix time), latest first, as Unix times: one previous_before step per
    time asked for, not a walk over every minute."""
    import datetime  # lazily: only the reports need it
    cursor = datetime.datetime.fromtimestamp(moment)
    while True:
        cursor = schedule.previous_before(cursor)
        if cursor is None:
            return
        yield time.mktime(cursor.timetuple())


def minute_text(epoch):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def crontab_faults(crontab, jobs, names, all_jobs):
    """The Faults of the installed CRONTAB itself, not of one job: it cannot
    be read, runs jobs that have no file (ALL_JOBS only), or has a wrong
    number of catch-up lines."""
    if crontab.path is None:
        return []
    problems = [crontab_status_problem(crontab, names, all_jobs)]
    if crontab.error is None and crontab.jobs is not None and all_jobs:
        problem = catch_up_lines_problem(crontab, jobs)
        if problem is not None:
            problems.append("%s is out of date (%s); run cron-generate" % (crontab.path,
                                                                          problem))
    return [Fault(HEALTH_WARNING, "crontab", problem) for problem in problems if problem]


def write_health(subjects, job_count, ok, out):
    """Write the check's lines for SUBJECTS, [(job name, file or "crontab",
    its Faults)], of JOB_COUNT jobs of which OK are at no fault; return the
    worst state."""
    at_fault = [(max((fault.state for fault in faults), key=HEALTH_RANK.get), name, faults)
                for name, faults in subjects if faults]
    at_fault.sort(key=lambda entry: (-HEALTH_RANK[entry[0]], entry[1]))
    state = max([HEALTH_OK] + [entry[0] for entry in at_fault], key=HEALTH_RANK.get)
    out.write(printable("%s %s - %s | %s" % (
        HEALTH_SERVICE, HEALTH_STATES[state], health_summary(at_fault, job_count),
        health_perfdata(subjects, at_fault, job_count, ok))) + "\n")
    for entry_state, name, faults in at_fault:
        out.write(printable("[%s] %s: %s" % (HEALTH_STATES[entry_state], name, "; ".join(
            fault.text for fault in faults))) + "\n")
    return state


def health_summary(at_fault, job_count):
    """The first line's words: how many jobs, and which are at fault."""
    jobs = "%d job%s" % (job_count, "" if job_count == 1 else "s")
    if not at_fault:
        return "%s, none at fault" % jobs
    parts = []
    for state in (HEALTH_CRITICAL, HEALTH_UNKNOWN, HEALTH_WARNING):
        names = [name for entry_state, name, _ in at_fault if entry_state == state]
        if names:
            shown = ", ".join(names[:HEALTH_NAMES_SHOWN])
            if len(names) > HEALTH_NAMES_SHOWN:
                shown += " and %d more" % (len(names) - HEALTH_NAMES_SHOWN)
            parts.append("%d %s (%s)" % (len(names), HEALTH_STATES[state].lower(), shown))
    return "%s: %s" % (jobs, ", ".join(parts))


def health_perfdata(subjects, at_fault, job_count, ok):
    """The performance data, label=value;warn;crit;min each: the jobs, those
    OK, the lines at each state (warning from 1, critical from 1), and the
    lines for each of HEALTH_CAUSES."""
    counts = dict.fromkeys(HEALTH_CAUSES, 0)
    for _, faults in subjects:
        for cause in set(fault.cause for fault in faults):
            counts[cause] += 1
    by_state = [entry[0] for entry in at_fault]
    figures = [("jobs", job_count, "", ""), ("ok", ok, "", ""),
               ("warning", by_state.count(HEALTH_WARNING), "0", ""),
               ("critical", by_state.count(HEALTH_CRITICAL), "", "0")]
    figures.extend((cause, counts[cause], "", "") for cause in HEALTH_CAUSES)
    return " ".join("%s=%d;%s;%s;0" % figure for figure in figures)


# -- 11.7 --metrics

def print_metrics(config, out, err):
    """--metrics: the metrics of every job file (see update_metrics), those
    of jobs that never ran included, from the state files alone: a job file
    that does not load still has its series. An unreadable state counts as
    none. A file whose name is not a job name is reported on ERR."""
    names, problems = scan_job_directory(config)
    write_problems(problems, err)
    out.write(metrics_text([job_series(name, readable_state(config, name))
                            for name in names]))
    return EXIT_OK


# ---- 12. the command line --------------------------------------------------------

HELP = """\
run-job: run a declared job as the service user, never twice at once, within
its deadline, with every byte of its output logged.

usage: run-job [-c FILE] [options] [NAME]

  NAME, -j NAME, --job NAME     run job NAME (JOB_DIRECTORY/NAME.yaml)
  -w, --slow-start              run the job's slow_start_command instead
  --scheduled EXPR              run as the crontab line for schedule EXPR does:
                                skip quietly (and record why) when the job file
                                no longer asks for that line
  --force                       run the job even if paused, halted or backing
                                off (by hand only)
  --catch-up [NAME]             run, each in a process of its own, every job
                                with catch_up: true that missed a scheduled time
                                since its last run started (NAME: only that job)
  -k NAME, --kill-job NAME      stop a running job and its whole process tree
  -l, --list-jobs               print every job name, one per line
  -s, --status [NAME...]        print each job's (or each NAME's) status,
                                schedule and last outcome
  -r, --only-running            with -l or -s: only the running jobs
  --pause NAME...               skip the jobs' runs quietly until --resume
  --reason TEXT                 with --pause: why (recorded)
  --resume NAME...              let paused jobs run again
  --reset NAME...               clear the jobs' halt and consecutive failures
  --tag TAG                     instead of names, the jobs tagged TAG (repeat
                                for more tags: any of them), for -l, -s, -k,
                                --pause, --resume and --reset
  --json                        with -s: print the status as one JSON object
  --check                       validate the global config and every job file
  -c FILE, --config FILE        the global config (default: $PROCESS_CONTROL_CONFIG,
                                else /etc/process-control.yaml, else built-in defaults)
  --version                     print the version
  -h, --help                    print this help
  --explain NAME                print job NAME as it will run, running nothing:
                                each setting and where it was set, commands,
                                environment, paths, next scheduled times, and
                                whether the crontab agrees (--json: as JSON)
  --log NAME                    print the log of the job's latest run
  --run N                       with --log: of the Nth latest run (1: the latest)
  --stdout, --stderr            with --log: only that stream, its bytes as the
                                job wrote them
  --follow                      with --log: go on printing as the log grows,
                                until the run ends
  --history NAME                print the job's recorded runs, skips and
                                commands, oldest first (with --json: as JSON lines)
  --health [NAME...]            a monitoring check (Nagios, Icinga) of every job
                                (or each NAME, or --tag): exit 0 OK, 1 WARNING,
                                2 CRITICAL, 3 UNKNOWN
  --metrics                     print every job's metrics in the Prometheus text
                                format (as in metrics_directory's files)

exit codes:
  0    success, a quiet policy skip, or a run replaced (overlap: replace)
  1    the job failed or was killed; --log: no such run
  64   usage error, or no job by that name
  69   the job is halted (run-job --reset NAME clears it)
  75   the job is still running from a previous run (lock held)
  77   refused: wrong user, unsafe permissions or path
  78   configuration error
  124  the job timed out
  130  interrupted (Ctrl-C) while not running a job, e.g. during --kill-job
"""

# option -> (attribute it sets, value it sets); None as value: takes an argument.
OPTIONS = {
    "-h": ("action", "help"), "--help": ("action", "help"),
    "--version": ("action", "version"),
    "-l": ("action", "list"), "--list-jobs": ("action", "list"),
    "-s": ("action", "status"), "--status": ("action", "status"),
    "--check": ("action", "check"),
    "-r": ("only_running", True), "--only-running": ("only_running", True),
    "--json": ("json", True),
    "-w": ("slow_start", True), "--slow-start": ("slow_start", True),
    "--scheduled": ("scheduled", None),
    "--catch-up": ("catch_up", True),
    "-j": ("run", None), "--job": ("run", None),
    "-k": ("kill", None), "--kill-job": ("kill", None),
    "--force": ("force", True),
    "--pause": ("action", "pause"), "--resume": ("action", "resume"),
    "--reset": ("action", "reset"),
    "--reason": ("reason", None),
    "--tag": ("tags", None),
    "-c": ("config_path", None), "--config": ("config_path", None),
    "--explain": ("explain", None),
    "--log": ("log", None), "--run": ("log_run", None),
    "--stdout": ("log_stdout", True), "--stderr": ("log_stderr", True),
    "--follow": ("follow", True),
    "--history": ("history", None),
    "--health": ("action", "health"),
    "--metrics": ("action", "metrics"),
}

# The actions --tag selects jobs for, and those that change a job's marks.
TAG_ACTIONS = ("list", "status", "kill", "pause", "resume", "reset", "health")
MARK_ACTIONS = ("pause", "resume", "reset")

# Modules imported before giving up root, by command: see preload_modules.
# Job files are read after the switch: `re` (the YAML section's patterns,
# compiled on first use), datetime (date values), shlex (command lines with a
# backslash or an unclosed quote), difflib (unknown keys); _ctypes: prctl for
# the runner's child subreaper, and malloc_trim; grp: --check names the
# service user's group; json (added by report_command): --status --json only.
# Signals come from _signal, which is built in.
JOB_FILE_MODULES = ("re", "datetime", "shlex", "difflib")  # --tag loads every job file
MODULES_AFTER_SWITCH = {
    "run": ("re", "datetime", "shlex", "difflib", "_ctypes"),
    "kill": (),
    "list": (),
    "status": ("re", "datetime", "shlex", "difflib"),
    "catch-up": ("re", "datetime", "shlex", "difflib", "subprocess"),
    "check": ("re", "datetime", "shlex", "difflib", "grp"),
    "pause": JOB_FILE_MODULES,
    "resume": JOB_FILE_MODULES,
    "reset": JOB_FILE_MODULES,
    "explain": JOB_FILE_MODULES,
    "log": (),
    "history": (),
    "health": ("re", "datetime", "shlex", "difflib"),
    "metrics": (),
}


# With a `logging` config: what dictConfig and the original's SysLogHandler need.
LOGGING_MODULES = ("logging", "logging.config", "logging.handlers")
# Without: the syslog socket's (SyslogEvents), in Debian's python3 built in.
SYSLOG_MODULES = ("_socket",)


class Invocation(object):
    """What the command line asks for."""

    def __init__(self):
        self.actions = []
        self.job = None
        self.names = []  # the words that are not options: job names
        self.slow_start = False
        self.scheduled = None
        self.catch_up = False
        self.only_running = False
        self.json = False
        self.config_path = None
        self.force = False
        self.reason = None
        self.tags = []
        self.log_run = 1
        self.log_stdout = False
        self.log_stderr = False
        self.follow = False


def split_option(argv, index):
    """Return (option, attached value or None, next index) for argv[index]."""
    word = argv[index]
    if word.startswith("--"):
        option, equals, value = word.partition("=")
        return option, (value if equals else None), index + 1
    return word[:2], (word[2:] or None), index + 1


def apply_option(invocation, option, value, argv, index):
    """Record one option; return the index of the next word."""
    if option not in OPTIONS:
        raise UsageError("unknown option %s; see run-job --help" % option[:40])
    attribute, setting = OPTIONS[option]
    if setting is not None:
        if value is not None and option.startswith("--"):
            raise UsageError("%s takes no value; see run-job --help" % option)
        if attribute == "action":
            invocation.actions.append(setting)
        else:
            setattr(invocation, attribute, setting)
        if value is not None:  # clustered short options such as -sr or -wj NAME
            return apply_option(invocation, "-" + value[0], value[1:] or None, argv, index)
        return index
    if value is None and attribute == "kill" and argv[index:index + 1] \
            and argv[index].startswith("--tag"):
        invocation.actions.append(attribute)  # --kill-job --tag TAG: no name
        return index
    if value is None:
        if index >= len(argv):
            raise UsageError("%s needs a value; see run-job --help" % option)
        value, index = argv[index], index + 1
    if attribute in ("config_path", "scheduled", "reason"):
        setattr(invocation, attribute, value)
    elif attribute == "log_run":
        invocation.log_run = parse_run_number(value)
    elif attribute == "tags":
        invocation.tags.append(value)
    else:
        invocation.actions.append(attribute)
        invocation.job = value
    return index


def parse_run_number(value):
    if not 0 < len(value) <= 9 or value.strip("0123456789") or int(value) < 1:
        raise UsageError("--run takes a run number, 1 for the latest, not %s; see run-job "
                         "--help" % printable(value, 40))
    return int(value)


def parse_command_line(argv):
    invocation = Invocation()
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":  # the rest are job names, even if they start with -
            invocation.names.extend(argv[index + 1:])
            break
        if word.startswith("-") and word != "-":
            option, value, index = split_option(argv, index)
            index = apply_option(invocation, option, value, argv, index)
        else:
            invocation.names.append(word)
            index += 1
    return check_invocation(invocation)


def check_invocation(invocation):
    actions = invocation.actions
    for wins in ("help", "version"):
        if wins in actions:
            invocation.actions = [wins]
            return invocation
    if invocation.catch_up and not actions and not invocation.names:
        actions.append("catch-up")  # else it is a run's: run-job --catch-up NAME
    if not actions and invocation.names:  # run-job NAME
        actions.append("run")
        invocation.job = invocation.names.pop(0)
    if not actions:
        raise UsageError("name a job to run, or an action such as --status; "
                         "see run-job --help")
    if len(actions) > 1:
        raise UsageError("one job or action at a time; see run-job --help")
    if invocation.slow_start and actions[0] != "run":
        raise UsageError("--slow-start applies only to running a job; see run-job --help")
    if invocation.scheduled is not None and actions[0] != "run":
        raise UsageError("--scheduled applies only to running a job; see run-job --help")
    if invocation.catch_up and actions[0] not in ("run", "catch-up"):
        raise UsageError("--catch-up applies only to running jobs; see run-job --help")
    if invocation.catch_up and invocation.scheduled is not None:
        raise UsageError("--catch-up and --scheduled exclude each other; see run-job --help")
    if invocation.only_running and actions[0] not in ("list", "status"):
        raise UsageError("--only-running applies only to --list-jobs and --status; "
                         "see run-job --help")
    if invocation.force and (actions[0] != "run" or invocation.scheduled is not None):
        raise UsageError("--force applies only to running a job by hand (not with "
                         "--scheduled); see run-job --help")
    if invocation.reason is not None and actions[0] != "pause":
        raise UsageError("--reason applies only to --pause; see run-job --help")
    check_tags(invocation)
    if invocation.json and actions[0] not in ("status", "explain", "history"):
        raise UsageError("--json applies only to --status, --explain and --history; "
                         "see run-job --help")
    check_log_options(invocation)
    check_names(invocation)
    return invocation


def check_tags(invocation):
    """--tag selects jobs for TAG_ACTIONS, instead of names; the MARK_ACTIONS
    need one or the other."""
    action = invocation.actions[0]
    if invocation.tags and action not in TAG_ACTIONS:
        raise UsageError("--tag applies only to --list-jobs, --status, --kill-job, --pause, "
                         "--resume, --reset and --health; see run-job --help")
    if invocation.tags and (invocation.names or invocation.job is not None):
        raise UsageError("name jobs or select them with --tag, not both; see run-job --help")
    if action in MARK_ACTIONS and not invocation.names and not invocation.tags:
        raise UsageError("--%s needs job names or --tag TAG; see run-job --help" % action)


def check_log_options(invocation):
    """--run, --stdout, --stderr and --follow go with --log; one stream at most."""
    given = [option for option, attribute, unset in (
        ("--run", "log_run", 1), ("--stdout", "log_stdout", False),
        ("--stderr", "log_stderr", False), ("--follow", "follow", False))
        if getattr(invocation, attribute) != unset]
    if given and invocation.actions[0] != "log":
        raise UsageError("%s applies only to --log; see run-job --help" % given[0])
    if invocation.log_stdout and invocation.log_stderr:
        raise UsageError("--stdout or --stderr, not both: each prints one stream; see "
                         "run-job --help")


# The actions that take no job name, by option, for their usage error.
ACTION_OPTIONS = {"list": "--list-jobs", "check": "--check", "metrics": "--metrics"}


def check_names(invocation):
    """Only --status, --health and the MARK_ACTIONS take any number of job names; each
    named job must be a job's name, not its file's."""
    action, names = invocation.actions[0], invocation.names
    quoted = ", ".join(repr(name) for name in names)[:80]  # one line, whatever they hold
    if names and action in ("run", "kill", "explain", "log", "history"):
        raise UsageError("one job at a time, not %r and %s; see run-job --help"
                         % (invocation.job[:80], quoted))
    if names and action in ACTION_OPTIONS:
        raise UsageError("%s takes no job name, not %s; see run-job --help"
                         % (ACTION_OPTIONS[action], quoted))
    if action in ("run", "kill", "explain", "log", "history") and invocation.job is not None:
        check_not_a_file_name(invocation.job, action)
    for name in names:
        check_not_a_file_name(name, action)
        check_job_name(name)


# How check_not_a_file_name says to name the job instead.
NAME_HINTS = {"run": ("run the job", "run-job %s"),
              "kill": ("stop the job", "run-job --kill-job %s"),
              "status": ("show the job", "run-job --status %s"),
              "pause": ("pause the job", "run-job --pause %s"),
              "resume": ("resume the job", "run-job --resume %s"),
              "reset": ("reset the job", "run-job --reset %s"),
              "explain": ("explain the job", "run-job --explain %s"),
              "log": ("show its log", "run-job --log %s"),
              "history": ("show its history", "run-job --history %s"),
              "health": ("check the job", "run-job --health %s")}


def check_not_a_file_name(word, action):
    """`run-job ticker.yaml` (or .yml), or a path to it: the job is called ticker."""
    file_name = os.path.basename(word)
    name, dot, extension = file_name.rpartition(".")
    if dot and extension in ("yaml", "yml") and is_job_name(name):
        what, command = NAME_HINTS[action]
        raise UsageError("%s is a file name; %s by its name: %s"
                         % (file_name, what, command % name))


def command_hint(invocation):
    """The command line that INVOCATION asks for, as a refusal repeats it."""
    action = invocation.actions[0]
    words = ["run-job"]
    if action != "run":
        words.append("--kill-job" if action == "kill" else "--" + action)
    if invocation.force:
        words.append("--force")
    words.extend([invocation.job] if invocation.job is not None else invocation.names)
    for tag in invocation.tags:
        words.extend(("--tag", tag))
    return " ".join(words)


def switch_to_change(config, action, more_modules=()):
    """Before a run or a command that changes state: create the missing
    directories, then switch_with_events (with MORE_MODULES too)."""
    ensure_directories(config)
    return switch_with_events(config, MODULES_AFTER_SWITCH[action] + more_modules)


def switch_with_events(config, modules):
    """Become the service user with MODULES and those the events need after
    the switch (`logging`'s, or the socket's); return the RunEvents (see
    run_events), or None."""
    if config.logging is not None:
        modules += LOGGING_MODULES
    elif config.syslog_socket is not None:
        modules += SYSLOG_MODULES
    become_service_user(config, modules)
    return run_events(config)


JOB_FILE_PEEK_BYTES = 65536


def mail_modules(config, name):
    """MAIL_MODULES when job NAME may send mail, for a run about to switch to
    the service user (as root), who reads its job file only after the switch:
    `failmail` in default_job_config or anywhere in the job file's text (a
    mention in a comment only costs the imports). Else ()."""
    if os.geteuid() != 0 or config.user == "root":  # no switch (become_service_user)
        return ()
    if "failmail" in config.default_job_config:
        return MAIL_MODULES
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        descriptor = os.open(os.path.join(config.job_directory, name + ".yaml"), flags)
        try:
            data = os.read(descriptor, JOB_FILE_PEEK_BYTES)
        finally:
            os.close(descriptor)
    except OSError:
        return ()  # the run, as the service user, says what is wrong
    return MAIL_MODULES if b"failmail" in data else ()


def run_command(config, invocation, environ):
    """Run or kill a job: as the service user, or as root becoming it."""
    action, name = invocation.actions[0], invocation.job
    require_service_user(config, command_hint(invocation))
    check_global_config_owner(config)
    if action == "kill":
        return kill_command(config, invocation, caller_name(environ))
    check_job_name(name)
    events = switch_to_change(config, action, mail_modules(config, name))
    job = load_scheduled_job(config, name, invocation.scheduled)
    if invocation.scheduled is not None:
        reason = scheduled_skip_reason(job, invocation.scheduled)
        if reason is not None:
            return skip_scheduled_start(config, job, reason, events)
    if invocation.slow_start and job.slow_start_commands is None:
        raise UsageError("job %s has no slow_start_command; run it without "
                         "--slow-start" % name)
    trigger = None
    if invocation.catch_up:
        trigger = catch_up_trigger(config, job)
        if trigger is None:
            return EXIT_OK
    return execute_job(config, job, slow_start=invocation.slow_start, events=events,
                       force=invocation.force, trigger=trigger)


def kill_command(config, invocation, by):
    """--kill-job NAME, or --kill-job --tag TAG: every running job tagged so
    (1 when none is); BY, the user who asks."""
    if not invocation.tags:
        events = switch_with_events(config, MODULES_AFTER_SWITCH["kill"])
        check_job_name(invocation.job)
        return kill_job(config, invocation.job, by, events)
    events = switch_with_events(config, MODULES_AFTER_SWITCH["kill"] + JOB_FILE_MODULES)
    running = [name for name in tagged_job_names(config, invocation.tags)
               if _lock_is_held(lock_path(config, name))]
    if not running:
        _write_stderr("run-job: no job tagged %s is running\n"
                      % printable(" or ".join(invocation.tags)))
        return EXIT_FAILED
    return max(kill_job(config, name, by, events) for name in running)


# --pause, --resume, --reset: what changes the marks, and what a terminal is told.
MARK_COMMANDS = {"pause": (pause_job, "paused", "paused already: who and why replaced"),
                 "resume": (resume_job, "resumed", "not paused: nothing to resume"),
                 "reset": (reset_job, "reset", "not halted, no failures: nothing to reset")}


def mark_command(config, invocation, environ):
    """--pause, --resume or --reset of the named (or tagged) jobs, as the
    service user or as root becoming it: each change recorded in state and
    history and told to the configured logger; quiet unless on a terminal.
    Every name must be a job's before any job is changed."""
    action = invocation.actions[0]
    require_service_user(config, command_hint(invocation))
    check_global_config_owner(config)
    by = caller_name(environ)  # before the switch: who asks, not the service user
    events = switch_to_change(config, action)
    names = invocation.names or tagged_job_names(config, invocation.tags)
    for name in names:
        job_file_path(config, name)
    change, done, unchanged = MARK_COMMANDS[action]
    for name in names:
        reason, changed = change(config, name, by, invocation.reason, time.time())
        log_event(events, LOG_INFO, "job %s %s by %s%s" % (
            name, done, by, "" if reason is None else " (%s)" % reason))
        if sys.stdout.isatty():
            sys.stdout.write("job %s %s\n" % (name, done if changed else unchanged))
    return EXIT_OK


def catch_up_command(config, invocation):
    """run-job --catch-up: as the service user (root becomes it), start the
    catch-up runs (see start_catch_up_runs)."""
    require_service_user(config, "run-job --catch-up")
    check_global_config_owner(config)
    ensure_directories(config)  # as a run does: as root, for the service user
    runner = catch_up_runner(invocation.config_path)  # before the switch's chdir
    become_service_user(config, MODULES_AFTER_SWITCH["catch-up"])
    return start_catch_up_runs(config, runner, sys.stderr)


def catch_up_runner(config_path):
    """The command line of this run-job: its interpreter (isolated, if this
    one is), its script and the --config CONFIG_PATH given, as absolute paths."""
    argv = [sys.executable] + (["-I"] if sys.flags.isolated else [])
    argv.append(os.path.abspath(__file__))
    if config_path is not None:
        argv += ["--config", os.path.abspath(config_path)]
    return argv


def load_scheduled_job(config, name, scheduled):
    """load_job; a crontab line (SCHEDULED is not None) for a job that has
    no file any more says that the crontab is out of date."""
    try:
        return load_job(config, name)
    except UsageError as error:
        if scheduled is None:
            raise
        raise UsageError("%s; %s" % (error, CRONTAB_OUT_OF_DATE))


def report_command(config, invocation):
    """The read-only commands: they never write, and work for anyone who can
    read the files. As root they still read as the service user."""
    action = invocation.actions[0]
    modules = MODULES_AFTER_SWITCH[action]
    if action == "check" and config.logging is not None:
        modules += LOGGING_MODULES  # its handlers' classes are looked up
    if invocation.tags:
        modules += JOB_FILE_MODULES
    if invocation.json:
        modules += ("json",)  # only --status --json and --explain --json write with it
    if service_account(config) is not None:
        become_service_user(config, modules)
    names = invocation.names
    if invocation.tags:
        names = tagged_job_names(config, invocation.tags)
    if action == "list":
        return list_jobs(config, invocation.only_running, sys.stdout, sys.stderr,
                         names if invocation.tags else None)
    if action == "status":
        return show_status(config, names, invocation.only_running, sys.stdout, sys.stderr,
                           as_json=invocation.json)
    if action == "explain":
        return explain_job(config, invocation.job, sys.stdout, as_json=invocation.json)
    if action == "log":
        sys.stdout.flush()
        return show_log(config, invocation, sys.stdout.buffer)
    if action == "history":
        return show_history(config, invocation.job, sys.stdout, invocation.json)
    if action == "health":
        return show_health(config, names, not invocation.names and not invocation.tags,
                           sys.stdout, time.time())
    if action == "metrics":
        return print_metrics(config, sys.stdout, sys.stderr)
    return check_configuration(config, sys.stdout, sys.stderr)


def dispatch(invocation, environ):
    action = invocation.actions[0]
    if action == "help":
        sys.stdout.write(HELP)
        return EXIT_OK
    if action == "version":
        sys.stdout.write("run-job %s\n" % VERSION)
        return EXIT_OK
    if action in ("run", "kill"):
        return run_command(read_global_config(invocation.config_path, environ),
                           invocation, environ)
    if action in MARK_ACTIONS:
        return mark_command(read_global_config(invocation.config_path, environ),
                            invocation, environ)
    if action == "catch-up":
        return catch_up_command(read_global_config(invocation.config_path, environ),
                                invocation)
    return report_command(load_global_config(invocation.config_path, environ), invocation)


def main(argv=None):
    """The command line: the only place that prints usage or maps errors to
    exit codes."""
    if argv is None:
        argv = sys.argv[1:]
    utf8_standard_streams()
    if "--health" in argv[:argv.index("--") if "--" in argv else len(argv)]:
        return health_main(argv, os.environ)
    invocation = None
    try:
        invocation = parse_command_line(argv)
        return dispatch(invocation, os.environ)
    except ProcessControlError as error:
        sys.stderr.write("run-job: %s\n" % printable(str(error)))
        if invocation is not None and invocation.actions == ["check"]:
            return EXIT_CONFIG  # --check exits 0 or 78 whatever it found
        return error.exit_code
    except KeyboardInterrupt:  # a run handles SIGINT itself: this is any other wait
        sys.stderr.write("run-job: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. run-job --list-jobs | head -1
        # Point stdout at /dev/null so that the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as error:  # the system refused something unforeseen: still one line
        sys.stderr.write("run-job: %s\n" % printable(str(error)))
        return EXIT_FAILED


def health_main(argv, environ):
    """run-job --health: a monitoring plugin's exit code is 0 to 3 whatever
    happens, so an error of the check itself (usage, configuration,
    permissions, or unforeseen) is UNKNOWN, in one line on stdout, which is
    what the monitoring system reads."""
    try:
        return dispatch(parse_command_line(argv), environ)
    except ProcessControlError as error:
        problem = str(error)
    except KeyboardInterrupt:
        problem = "interrupted"
    except Exception as error:  # OSError, or a bug: still a plugin's answer
        problem = "%s: %s" % (type(error).__name__, error)
    try:
        sys.stdout.write(printable("%s %s - %s" % (HEALTH_SERVICE,
                                                   HEALTH_STATES[HEALTH_UNKNOWN],
                                                   problem)) + "\n")
    except OSError:
        pass  # nobody reads it (a closed pipe): the exit code still says it
    return HEALTH_UNKNOWN


def utf8_standard_streams():
    """Python 3.6 in the C locale (cron's environment has no LANG) prints in
    ASCII: a job's non-ASCII description ended --status with a traceback. Job
    files are UTF-8, so is what is printed. Only the interpreter's own streams
    are replaced (the originals stay in sys.__stdout__, so their buffer stays
    open); not a test's capture."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or stream is not getattr(sys, "__%s__" % name):
            continue
        encoding = getattr(stream, "encoding", None)
        if not encoding or codecs.lookup(encoding).name != "ascii":
            continue
        stream.flush()
        setattr(sys, name, io.TextIOWrapper(stream.buffer, "utf-8", stream.errors,
                                            line_buffering=stream.line_buffering))


class ScriptCompiled(Exception):
    """Ends the script's own execution: see run_as_script."""


def run_as_script(kind, value, traceback):
    """sys.excepthook of run-job run as a script, where main runs.

    CPython keeps the syntax tree of a script given on its command line
    (about 9 MiB for these 4,600 lines) until the script's last line has run,
    and that would be for as long as the job runs. An exception ends the
    script's execution, the interpreter frees the tree and hands the exception
    to sys.excepthook: from there on, that memory is free for malloc_trim
    (release_free_memory) to give back. Unlike an atexit function, this runs
    before the interpreter starts shutting down, when fork is still allowed."""
    sys.excepthook = sys.__excepthook__
    if kind is not ScriptCompiled:
        sys.__excepthook__(kind, value, traceback)
        return
    try:
        exit_code = main()
    except Exception:  # a bug: its traceback, as if uncaught
        sys.__excepthook__(*sys.exc_info())
        exit_code = EXIT_FAILED
    # Exiting, the interpreter collects every object the gc tracks, only to
    # end the process: 1.5 ms of a plain run. Frozen (3.7+), they are left out;
    # nothing here needs a finalizer at exit (standard streams are flushed).
    freeze = getattr(gc, "freeze", None)  # Python 3.7+
    if freeze is not None:
        freeze()
    sys.exit(exit_code)


if __name__ == "__main__":
    sys.excepthook = run_as_script
    raise ScriptCompiled()
