"""overlap: N simultaneous launches of one job (each process has imported
run_job and waits for a go-file, then runs `run-job --config CONFIG NAME`):
exactly one runs its command, every other exits 75 (0 with allow_overtime),
with the directories in place and on a fresh server where none exists yet."""

import os
import py_compile
import shutil
import subprocess
import tempfile
import time

import common

DRIVER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import run_job
open(sys.argv[2] + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
sys.exit(run_job.main(sys.argv[4:]))
"""


def compiled_library():
    library = tempfile.mkdtemp(prefix="pc-torture-library-")
    shutil.copy(common.RUN_JOB, library)
    py_compile.compile(os.path.join(library, "run_job.py"), doraise=True)
    return library


def one_round(library, launches, fresh, allow_overtime, tally, codes_seen):
    sandbox = common.Sandbox(directories=not fresh)
    try:
        ran = sandbox.path("ran")
        release = sandbox.path("release")
        command = "/bin/sh -c 'echo $$ >> %s; i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done'" % (ran, release)
        keys = {"timeout": "2m"}
        if allow_overtime:
            keys["allow_overtime"] = "true"
        sandbox.write_job("busy", common.job_text(command, **keys))
        driver = sandbox.path("driver.py")
        common.write_file(driver, DRIVER)
        ready, go = sandbox.path("ready-"), sandbox.path("go")
        processes = []
        for _ in range(launches):
            processes.append(subprocess.Popen(
                [common.PYTHON, driver, library, ready, go, "--config", sandbox.config, "busy"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                cwd=sandbox.root, start_new_session=True))
        deadline = time.monotonic() + 120
        while len([e for e in os.listdir(sandbox.root) if e.startswith("ready-")]) < launches:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        common.write_file(go, "")
        # Every launch but the one running ends on its own; then release it.
        deadline = time.monotonic() + 120
        while sum(1 for p in processes if p.poll() is None) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        common.write_file(release, "")
        label = "%s, %s" % ("fresh" if fresh else "directories present",
                            "allow_overtime" if allow_overtime else "plain")
        results = []
        for process in processes:
            code, _, err, _ = common.finish(process, 60)
            results.append((code, err))
        runs = 0
        if os.path.exists(ran):
            with open(ran) as stream:
                runs = len(stream.read().split())
        winners = 0
        for code, err in results:
            codes_seen[code] = codes_seen.get(code, 0) + 1
            problems = []
            expected = (0,) if allow_overtime else (0, 75)
            if code not in expected:
                problems.append("exit %s, expected %s: %s" % (
                    code, " or ".join(map(str, expected)), common.last_line(err)))
            if code == 0 and not allow_overtime:
                winners += 1
            if b"Traceback" in err:
                problems.append("traceback: %s" % common.last_line(err))
            tally.check(problems, label)
        problems = []
        if runs != 1:
            problems.append("the command ran %d times, not once" % runs)
        if not allow_overtime and winners != 1:
            problems.append("%d launches exited 0, not one" % winners)
        tally.check(problems, label)
        return runs
    finally:
        sandbox.remove()


def run(args):
    launches = 30 if args.quick else 200
    tally = common.Tally(args.failures)
    library = compiled_library()
    codes_seen = {}
    runs = []
    try:
        for fresh, allow_overtime in ((False, False), (True, False), (True, True)):
            runs.append(one_round(library, launches, fresh, allow_overtime, tally, codes_seen))
    finally:
        shutil.rmtree(library, True)
    exits = ", ".join("%s x%d" % (code, count) for code, count in sorted(
        codes_seen.items(), key=lambda item: -1 if item[0] is None else item[0]))
    figure = "%d rounds of %d launches (present, fresh, fresh+allow_overtime): the command ran %s times; exits %s" % (
        len(runs), launches, "/".join(map(str, runs)), exits)
    return tally.trials, tally.ok, figure
