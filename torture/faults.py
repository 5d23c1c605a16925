"""faults: the output directory on a full filesystem, an unwritable state
directory, a missing run directory, a missing program: never a hang, never a
traceback, one line on stderr saying why; each case's exit code reported."""

import os
import pwd
import subprocess
import sys

import common

SYSTEM_PYTHON = "/usr/bin/python3"


def judge(code, err, expect_success=False, zero_with_a_line=False):
    problems = []
    if code is common.HUNG:
        return ["hung (killed after 30 s)"]
    if b"Traceback" in err:
        return ["traceback: %s" % common.last_line(err)]
    if code == 0 and expect_success:
        if err.strip():
            problems.append("a successful run printed %r" % err[:200])
        return problems
    if code == 0 and not zero_with_a_line:
        return ["exit 0: the fault went unnoticed"]
    problem = common.one_line_error(err)
    if problem:
        problems.append(problem)
    return problems


def full_filesystem(sandbox, before):
    """The output directory on a 1 MiB tmpfs; BEFORE: full before the run
    starts, else the job fills it."""
    if not common.IS_ROOT:
        return None, "skipped: mounting a tmpfs needs root"
    log = sandbox.path("log")
    mounted = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", log],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
    if not mounted:
        return None, "skipped: mount -t tmpfs failed (no CAP_SYS_ADMIN here)"
    try:
        if before:
            with open(os.path.join(log, "filler"), "wb") as filler:
                try:
                    while True:
                        filler.write(b"x" * 65536)
                        filler.flush()
                except OSError:
                    pass
        name = "fullbefore" if before else "fullduring"
        sandbox.write_job(name, common.job_text(
            "/bin/sh -c 'i=0; while [ $i -lt 40000 ]; do echo line $i of a job filling the disk; i=$((i+1)); done'",
            timeout="1m"))
        code, _, err, _ = sandbox.run([name], timeout=30)
        return (code, err), None
    finally:
        subprocess.call(["umount", "-l", log])


def unwritable_state():
    """As root: the service user nobody, the state directory root's 0755.
    Otherwise: the current user, the state directory 0555."""
    sandbox = common.Sandbox(user="nobody" if common.IS_ROOT else common.CURRENT_USER)
    try:
        if common.IS_ROOT:
            nobody = pwd.getpwnam("nobody")
            for name in ("log", "run"):
                os.chown(sandbox.path(name), nobody.pw_uid, nobody.pw_gid)
        else:
            os.chmod(sandbox.path("state"), 0o555)
        sandbox.write_job("nostate", common.job_text("/bin/echo ran", timeout="1m"))
        argv = [SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else common.PYTHON,
                common.RUN_JOB, "--config", sandbox.config, "nostate"]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd="/", start_new_session=True)
        code, _, err, _ = common.finish(process, 30)
        ran = any(b"O| ran" in open(path, "rb").read() for path in sandbox.logs("nostate"))
        return code, err, ran
    finally:
        os.chmod(sandbox.path("state"), 0o755)
        sandbox.remove()


def run(args):
    tally = common.Tally(args.failures)
    codes = []
    skipped = []

    def record(label, code, err, expect_success=False, zero_with_a_line=False):
        codes.append("%s %s" % (label, "hang" if code is common.HUNG else code))
        tally.check(judge(code, err, expect_success, zero_with_a_line), label)

    for before in (True, False):
        sandbox = common.Sandbox()
        try:
            result, skip = full_filesystem(sandbox, before)
        finally:
            sandbox.remove()
        label = "full fs before the run" if before else "fs fills during the run"
        if skip:
            skipped.append("%s %s" % (label, skip))
        else:
            record(label, *result)

    code, err, ran = unwritable_state()
    # The job's own outcome is the exit code; the state that cannot be
    # written is one line on stderr (which cron mails).
    record("unwritable state dir", code, err, zero_with_a_line=True)
    codes[-1] += " (the command %s)" % ("ran" if ran else "did not run")

    sandbox = common.Sandbox(extra="")
    try:
        sandbox.write_job("plain", common.job_text("/bin/true", timeout="1m"))
        os.rmdir(sandbox.path("run"))
        code, _, err, _ = sandbox.run(["plain"])
        record("missing run dir (creatable)", code, err, expect_success=True)
        common.write_file(sandbox.path("afile"), "")
        sandbox.write_config(extra="run_directory: afile/run\n")
        code, _, err, _ = sandbox.run(["plain"])
        record("run dir under a file", code, err)
        sandbox.write_config()
        sandbox.write_job("noprogram", common.job_text("/nonexistent/program --flag", timeout="1m"))
        code, _, err, _ = sandbox.run(["noprogram"])
        record("missing program", code, err)
        sandbox.write_job("noprogram2", common.job_text("no-such-program-anywhere", timeout="1m"))
        code, _, err, _ = sandbox.run(["noprogram2"])
        record("program not in PATH", code, err)
    finally:
        sandbox.remove()
    if common.IS_ROOT:
        sandbox = common.Sandbox(user="nobody", directories=False)
        try:
            nobody = pwd.getpwnam("nobody")
            for name in ("log", "state"):
                os.mkdir(sandbox.path(name))
                os.chown(sandbox.path(name), nobody.pw_uid, nobody.pw_gid)
            sandbox.write_job("plain", common.job_text("/bin/true", timeout="1m"))
            process = subprocess.Popen(
                [SYSTEM_PYTHON, common.RUN_JOB, "--config", sandbox.config, "plain"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd="/", start_new_session=True, user="nobody") if sys.version_info >= (3, 9) else None
            if process is None:
                skipped.append("missing run dir as the service user: needs Python 3.9+")
            else:
                code, _, err, _ = common.finish(process, 30)
                record("missing run dir, run as the service user", code, err)
        finally:
            sandbox.remove()
    figure = "exit codes: " + ", ".join(codes)
    if skipped:
        figure += "; " + "; ".join(skipped)
    return tally.trials, tally.ok, figure
