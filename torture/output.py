"""output: random binary output in random chunk sizes on both streams, 1 GB
without a newline, output written by a grandchild after the main process
exited: every byte rebuilt from the log, and printed alike by run-job --log
--stdout / --stderr; run-job's peak RSS (VmHWM) bounded."""

import hashlib
import os
import time

import common

RSS_BOUND_KIB = 48 * 1024

# Writes random bytes in random chunks to both streams, with pauses that cut
# lines, and a copy of each stream to EXPECTED.O / EXPECTED.E; then says it
# is done and waits for the suite to read run-job's VmHWM.
CHUNKS = r"""
import os, random, sys, time
rng = random.Random(int(sys.argv[1]))
expected, total = sys.argv[2], int(sys.argv[3])
copies = {1: open(expected + ".O", "wb"), 2: open(expected + ".E", "wb")}
written = 0
while written < total:
    fd = rng.choice((1, 2))
    size = rng.choice((1, 2, 17, 100, 4095, 4096, 65535, 65536, 65537, 200000, rng.randint(1, 300000)))
    data = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * (size // 64 + 1)
    data = data[:size]
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    copies[fd].write(data)
    written += size
    if rng.random() < 0.05:
        time.sleep(0.002)
for copy in copies.values():
    copy.close()
"""

# SIZE bytes without a newline on stdout, in blocks of an odd size; the
# SHA-256 of what was written goes to EXPECTED.
LONG_LINE = r"""
import hashlib, os, random, sys, time
size, expected, done, ack = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rng = random.Random(size)
block = bytes(rng.choice(b"abcdefghij\r\t\0\xff") for _ in range(1 << 20 | 7))
digest = hashlib.sha256()
written = 0
while written < size:
    data = block[:size - written]
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
    digest.update(data)
    written += len(data)
with open(expected, "w") as stream:
    stream.write("%d %s" % (written, digest.hexdigest()))
open(done, "w").close()
deadline = time.time() + 60
while not os.path.exists(ack) and time.time() < deadline:
    time.sleep(0.01)
"""


def rebuild_streaming(path, stream):
    """(length, SHA-256) of STREAM rebuilt from the log at PATH, read a
    record at a time (a log of 1 GB does not fit the suite's memory twice)."""
    digest = hashlib.sha256()
    length = 0
    with open(path, "rb") as log:
        for record in log:
            if not record.endswith(b"\n"):
                break
            if record[24:25] == stream:
                data = record[27:-1] + (b"\n" if record[25:26] == b"|" else b"")
                digest.update(data)
                length += len(data)
    return length, digest.hexdigest()


def read_log(sandbox, name):
    logs = sandbox.logs(name)
    if not logs:
        return None
    with open(logs[-1], "rb") as stream:
        return stream.read()


def run_with_peak(sandbox, name, done, ack, timeout):
    """Run job NAME; when DONE appears, read run-job's VmHWM, then create ACK."""
    process = sandbox.popen([name])
    peak = None
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if done and os.path.exists(done) and peak is None:
            peak = common.vm_hwm_kib(process.pid)
            common.write_file(ack, "")
        else:
            last = common.vm_hwm_kib(process.pid)
            peak = last if (done is None and last) else peak
        time.sleep(0.01)
    code, _, err, _ = common.finish(process, max(1, deadline - time.monotonic()))
    return code, err, peak


def chunks_trial(sandbox, seed, total):
    name = "chunks%d" % seed
    generator = sandbox.path("chunks.py")
    common.write_file(generator, CHUNKS)
    expected = sandbox.path("expected%d" % seed)
    sandbox.write_job(name, common.job_text("%s %s %d %s %d" % (
        common.PYTHON, generator, seed, expected, total), timeout="5m"))
    code, err, peak = run_with_peak(sandbox, name, None, None, 120)
    problems = []
    if code != 0:
        problems.append("exit %s: %s" % (code, common.last_line(err)))
    log = read_log(sandbox, name) or b""
    for stream in (b"O", b"E"):
        with open(expected + "." + stream.decode(), "rb") as copy:
            want = copy.read()
        problems += compare_rebuilt(common.rebuild(log, stream), want, stream)
        problems += compare_rebuilt(printed_stream(sandbox, name, stream), want, stream,
                                    "run-job --log --%s" % STREAM_OPTIONS[stream])
    return problems, peak


STREAM_OPTIONS = {b"O": "stdout", b"E": "stderr"}


def printed_stream(sandbox, name, stream):
    """What run-job --log NAME --stdout (or --stderr) prints."""
    code, out, err, _ = sandbox.run(["--log", name, "--" + STREAM_OPTIONS[stream]], timeout=120)
    return out if code == 0 and not err else b"exit %s: %s" % (str(code).encode(), err[:200])


def compare_rebuilt(got, want, stream, how="rebuilt"):
    if got == want:
        return []
    return ["stream %s %s %d bytes, %s" % (
        stream.decode(), how, len(got), "the job wrote %d" % len(want) if len(got) != len(want)
        else "differing from what the job wrote")]


def long_line_trial(sandbox, size):
    generator = sandbox.path("long.py")
    common.write_file(generator, LONG_LINE)
    expected, done, ack = sandbox.path("long.sha"), sandbox.path("long.done"), sandbox.path("long.ack")
    sandbox.write_job("long", common.job_text("%s %s %d %s %s %s" % (
        common.PYTHON, generator, size, expected, done, ack), timeout="5m"))
    code, err, peak = run_with_peak(sandbox, "long", done, ack, 300)
    problems = []
    if code != 0:
        problems.append("exit %s: %s" % (code, common.last_line(err)))
    logs = sandbox.logs("long")
    with open(expected) as stream:
        want = stream.read().split()
    got = rebuild_streaming(logs[-1], b"O") if logs else (0, "")
    if [str(got[0]), got[1]] != want:
        problems.append("%d bytes without a newline rebuilt as %d bytes%s" % (
            int(want[0]), got[0], "" if got[0] != int(want[0]) else " of other content"))
    for path in logs:
        os.unlink(path)  # a gigabyte
    return problems, peak


def late_grandchild_trial(sandbox):
    # run-job stops what the command leaves behind (SIGTERM, then SIGKILL
    # after kill_grace): this grandchild ignores SIGTERM and writes its
    # output within the grace, after the main process has exited.
    # The main process waits until the grandchild ignores SIGTERM.
    ready = sandbox.path("late.ready")
    if os.path.exists(ready):
        os.unlink(ready)
    command = ("/bin/sh -c '(trap \"\" TERM; : > %s; /bin/sleep 0.3; echo late-out; echo late-err >&2; "
               "printf no-newline) & while [ ! -e %s ]; do /bin/sleep 0.01; done; echo main'" % (ready, ready))
    sandbox.write_job("late", common.job_text(command, timeout="30s", kill_grace="5s"))
    code, _, err, _ = sandbox.run(["late"])
    log = read_log(sandbox, "late") or b""
    problems = []
    if code != 0:
        problems.append("exit %s: %s" % (code, common.last_line(err)))
    for stream, want in ((b"O", b"main\nlate-out\nno-newline"), (b"E", b"late-err\n")):
        for got, how in ((common.rebuild(log, stream), "rebuilt"),
                         (printed_stream(sandbox, "late", stream), "printed by --log")):
            if got != want:
                problems.append("a grandchild's late output: stream %s %s as %r, not %r" % (
                    stream.decode(), how, got[:80], want))
    return problems


def run(args):
    sandbox = common.Sandbox()
    tally = common.Tally(args.failures)
    size = (100 if args.quick else 1024) << 20
    peaks = []
    try:
        for seed in range(args.seed, args.seed + (1 if args.quick else 3)):
            problems, peak = chunks_trial(sandbox, seed, 4 << 20 if args.quick else 16 << 20)
            peaks.append(peak or 0)
            tally.check(problems, "random chunks, seed %d" % seed)
        problems, long_peak = long_line_trial(sandbox, size)
        if long_peak is None:
            problems.append("run-job's VmHWM could not be read")
        elif long_peak > RSS_BOUND_KIB:
            problems.append("run-job's peak RSS %.1f MiB is over %d MiB" % (
                long_peak / 1024, RSS_BOUND_KIB // 1024))
        tally.check(problems, "%d MB without a newline" % (size >> 20))
        tally.check(late_grandchild_trial(sandbox), "a grandchild writing after the main process")
    finally:
        sandbox.remove()
    figure = "byte-exact: %d MB random chunks x%d, %d MB without a newline, late grandchild; run-job peak RSS (VmHWM) %.1f MiB with the long line, bound %d MiB" % (
        (4 if args.quick else 16), len(peaks), size >> 20, (long_peak or 0) / 1024, RSS_BOUND_KIB // 1024)
    return tally.trials, tally.ok, figure
