"""hostile: a corpus of attacks, each refused (64, 77 or 78) with no side
effect, or survived without harm: bad job names, symlinks out of the job
directory, unsafe owners and modes, a private --config, injection into the
generated crontab through every value that reaches it, and lock, state and
history files replaced by symlinks, FIFOs, directories, devices and huge
files. Every process runs with a time limit: a hang is a failed trial."""

import os
import pwd
import re
import resource
import stat
import subprocess
import sys

import common

sys.path.insert(0, common.REPO)
import run_job  # noqa: E402

REFUSED = (64, 77, 78)
EVIL_JOB = "command: /bin/sh -c 'echo pwned >> %s'\n"


def limited_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def snapshot(sandbox):
    found = set()
    for name in ("log", "run", "state"):
        for root, dirs, files in os.walk(sandbox.path(name)):
            found.update(os.path.join(root, entry) for entry in dirs + files)
    return found


def pwned(sandbox):
    return os.path.exists(sandbox.path("pwned"))


def refused_without_side_effect(sandbox, args, before=None, tool="run-job", secret=None):
    before = snapshot(sandbox) if before is None else before
    code, out, err, _ = sandbox.run(args, tool=tool, timeout=20, preexec_fn=limited_memory)
    problems = []
    if code is common.HUNG:
        return ["hung"]
    if b"Traceback" in err:
        return ["traceback: %s" % common.last_line(err)]
    if code not in REFUSED:
        problems.append("exit %s, not refused: %s" % (code, common.last_line(err) or common.last_line(out)))
    if pwned(sandbox):
        problems.append("the attack's command ran")
        os.unlink(sandbox.path("pwned"))
    created = snapshot(sandbox) - before
    if created:
        problems.append("side effect: created %s" % ", ".join(sorted(os.path.relpath(p, sandbox.root) for p in created)[:3]))
    if secret and (secret.encode() in err or secret.encode() in out):
        problems.append("the private file's content was printed")
    return problems


def name_attacks(sandbox, tally, quick):
    common.write_file(sandbox.path("x.yaml"), EVIL_JOB % sandbox.path("pwned"))
    os.mkdir(sandbox.path("jobs", "sub"))
    common.write_file(sandbox.path("jobs", "sub", "b.yaml"), EVIL_JOB % sandbox.path("pwned"))
    common.write_file(sandbox.path("jobs", "ok.yaml"), EVIL_JOB % sandbox.path("pwned"))
    names = ["..", "../x", "sub/b", "/etc/passwd", "-x", "--x", "-", "a" * 300, "ok.yaml",
             ".hidden", "a b", "a\nb", "a\rb", "ok\n", "ok/", "./ok", "%ok", "ok=1", "\xe9t\xe9"]
    for name in names:
        actions = ([name], ["--status", name]) if quick else (
            [name], ["--job", name], ["--kill-job", name], ["--status", name])
        for args in actions:
            tally.check(refused_without_side_effect(sandbox, args), "job name %r (%s)" % (
                name[:20], args[0] if len(args) > 1 else "run"))
    for name in ("a\0b", "..", "a/b", "a" * 300, ""):
        try:
            run_job.check_job_name(name)
            problems = ["check_job_name accepted %r" % name[:20]]
        except run_job.ProcessControlError:
            problems = []
        except Exception as error:
            problems = ["check_job_name(%r): %s (a traceback)" % (name[:20], type(error).__name__)]
        tally.check(problems, "job name %r, in process" % name[:20])
    os.unlink(sandbox.path("jobs", "ok.yaml"))


def link_and_mode_attacks(sandbox, tally):
    outside = sandbox.path("outside")
    os.mkdir(outside)
    common.write_file(os.path.join(outside, "evil.yaml"), EVIL_JOB % sandbox.path("pwned"))
    cases = [("out", os.path.join("..", "outside", "evil.yaml")),
             ("absolute", os.path.join(outside, "evil.yaml")),
             ("passwd", "/etc/passwd"), ("devzero", "/dev/zero"), ("loop", "loop.yaml"),
             ("dir", "../outside")]
    for name, target in cases:
        os.symlink(target, sandbox.path("jobs", name + ".yaml"))
        tally.check(refused_without_side_effect(sandbox, [name], secret="root:x:0:0"),
                    "job file symlinked to %s" % target)
        tally.check(status_survives(sandbox, name), "--status of a job symlinked to %s" % target)
        os.unlink(sandbox.path("jobs", name + ".yaml"))
    for mode in (0o664, 0o646, 0o666, 0o620):
        sandbox.write_job("mode", EVIL_JOB % sandbox.path("pwned"), mode=mode)
        tally.check(refused_without_side_effect(sandbox, ["mode"]), "job file mode %o" % mode)
    os.unlink(sandbox.path("jobs", "mode.yaml"))
    sandbox.write_job("victim", EVIL_JOB % sandbox.path("pwned"))
    for mode in (0o775, 0o757, 0o777, 0o1777):
        os.chmod(sandbox.jobs, mode)
        tally.check(refused_without_side_effect(sandbox, ["victim"]), "job directory mode %o" % mode)
    os.chmod(sandbox.jobs, 0o755)
    if common.IS_ROOT:
        nobody = pwd.getpwnam("nobody")
        os.chown(sandbox.path("jobs", "victim.yaml"), nobody.pw_uid, nobody.pw_gid)
        tally.check(refused_without_side_effect(sandbox, ["victim"]), "job file owned by nobody")
        os.chown(sandbox.path("jobs", "victim.yaml"), 0, 0)
        os.chown(sandbox.jobs, nobody.pw_uid, nobody.pw_gid)
        tally.check(refused_without_side_effect(sandbox, ["victim"]), "job directory owned by nobody")
        os.chown(sandbox.jobs, 0, 0)
    os.unlink(sandbox.path("jobs", "victim.yaml"))


def unreadable_job_file(tally):
    """A job file the service user cannot read: --check and cron-generate
    must agree that it cannot run (it must not be scheduled)."""
    nobody = pwd.getpwnam("nobody")
    sandbox = common.Sandbox(user="nobody")
    try:
        for name in ("log", "run", "state"):
            os.chown(sandbox.path(name), nobody.pw_uid, nobody.pw_gid)
        sandbox.write_job("good", "command: /bin/true\nschedule: '*/5 * * * *'\n")
        path = sandbox.write_job("private", "command: /bin/true\nschedule: '*/5 * * * *'\n", mode=0o600)
        code, _, err, _ = sandbox.run(["--check"], timeout=20)
        check_says = any(path.encode() in line and b": warning: " not in line for line in err.split(b"\n"))
        code, out, err2, _ = sandbox.run(["--stdout"], tool="cron-generate", timeout=20)
        scheduled = b"--job private " in out
        problems = []
        if not check_says:
            problems.append("run-job --check does not report %s" % os.path.basename(path))
        if scheduled:
            problems.append("cron-generate schedules a job file the service user cannot read "
                            "(run-job --check: %s)" % ("invalid" if check_says else "valid"))
        if b"Traceback" in err + err2:
            problems.append("traceback")
        tally.check(problems, "job file unreadable by the service user")
    finally:
        sandbox.remove()


def status_survives(sandbox, name):
    code, _, err, _ = sandbox.run(["--status", name], timeout=20, preexec_fn=limited_memory)
    if code is common.HUNG:
        return ["--status hung"]
    if b"Traceback" in err:
        return ["--status: traceback: %s" % common.last_line(err)]
    if b"root:x:0:0" in err:
        return ["--status printed the linked file's content"]
    return []


def private_config_attacks(sandbox, tally):
    secret = "SECRET-%d" % os.getpid()
    private = sandbox.path("private")
    os.mkdir(private, 0o700)
    text = "user: %s\njob_directory: ../jobs\n# %s\nmailto: %s\n" % (common.CURRENT_USER, secret, secret)
    common.write_file(os.path.join(private, "pc.yaml"), text, 0o644)
    common.write_file(sandbox.path("private.yaml"), text.replace("../jobs", "jobs"), 0o600)
    sandbox.write_job("ok", "command: /bin/true\n")
    for path in (os.path.join(private, "pc.yaml"), sandbox.path("private.yaml"), "/etc/shadow"):
        for args in (["ok"], ["--status"], ["--check"], ["--list-jobs"]):
            argv = [common.PYTHON, common.RUN_JOB, "--config", path] + args
            tally.check(run_refused(argv, sandbox, secret), "--config %s %s" % (
                os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path), args[0]))
        argv = [common.PYTHON, common.CRON_GENERATE, "--config", path, "--stdout"]
        tally.check(run_refused(argv, sandbox, secret), "cron-generate --config %s" % os.path.basename(path))
    os.unlink(sandbox.path("jobs", "ok.yaml"))


def run_refused(argv, sandbox, secret):
    # Root reads anything: the attacker is whoever runs run-job through a
    # sudo rule, which is what the o+r rule is for, so it holds for root too.
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=sandbox.root, start_new_session=True)
    code, out, err, _ = common.finish(process, 20)
    problems = []
    if code is common.HUNG:
        return ["hung"]
    if b"Traceback" in err:
        return ["traceback: %s" % common.last_line(err)]
    if code not in REFUSED:
        problems.append("exit %s, not refused" % code)
    if secret.encode() in out + err or b"root:" in err:
        problems.append("the private file's content was printed")
    return problems


INJECTIONS = ["\nEVIL", "\rEVIL", "%EVIL", "=EVIL", "\r\n* * * * * root /bin/EVIL", "\n* * * * * root /bin/EVIL"]
ENTRY = re.compile(r"^(@\w+|(\S+\s+){4}\S+)\s+\S+\s+")
ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")


def yaml_string(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def crontab_problems(text, expected_entries, allowed_variables, template=False):
    problems = []
    if "\r" in text:
        problems.append("a carriage return in the crontab")
    entries = []
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        variable = ENV_LINE.match(line)
        if variable and not ENTRY.match(line):
            if variable.group(1) not in allowed_variables:
                problems.append("an unexpected variable line %r" % line[:80])
            continue
        entries.append(line)
    if template and len(entries) != len(expected_entries):
        # The template is the operator's: its entry may differ, not its count.
        problems.append("%d entry lines, expected %d: %r" % (len(entries), len(expected_entries), entries[:3]))
    elif not template and sorted(entries) != sorted(expected_entries):
        problems.append("entry lines %r, expected %r" % (entries[:3], expected_entries))
    for line in entries:
        if re.search(r"(?<!\\)%", line):
            problems.append("an unescaped %% in %r" % line[:80])
    return problems


def injection_attacks(tally, quick):
    runner = "/usr/bin/run-job"
    good = "*/5 * * * * %s %s --job good --scheduled '*/5 * * * *'" % (common.CURRENT_USER, runner)
    cases = []
    for injection in (INJECTIONS[::3] if quick else INJECTIONS):
        for key in ("job_directory", "output_directory", "run_directory", "state_directory"):
            cases.append(("global %s" % key, {key: "d" + injection}, None, None))
        cases.append(("global runner_path", {"runner_path": runner + injection}, None, None))
        cases.append(("global cron_template", {"cron_template": "{schedule} {user} {command}" + injection}, None, None))
        cases.append(("global mailto", {"mailto": "ops@example.com" + injection}, None, None))
        cases.append(("cron_environment value", {"cron_environment": {"X": "v" + injection}}, None, None))
        cases.append(("cron_environment name", {"cron_environment": {"X" + injection: "v"}}, None, None))
        cases.append(("global user", {"user": common.CURRENT_USER + injection}, None, None))
        cases.append(("job schedule", {}, "schedule: %s\n" % yaml_string("*/5 * * * *" + injection), None))
        cases.append(("job name key", {}, "name: %s\n" % yaml_string("n" + injection), None))
        cases.append(("job environment", {}, "environment:\n    Y: %s\n" % yaml_string("v" + injection), None))
        cases.append(("job command", {}, "command: %s\n" % yaml_string("/bin/true" + injection), None))
        cases.append(("job file name", {}, None, "bad" + injection.replace("/", "_")))
    for label, globals_, job_extra, file_name in cases:
        sandbox = common.Sandbox()
        try:
            os.mkdir(sandbox.path("cron.d"))
            lines = ["user: %s" % common.CURRENT_USER, "job_directory: jobs", "output_directory: log",
                     "run_directory: run", "state_directory: state", "output_crontab: cron.d/pc",
                     "runner_path: %s" % runner]
            settings = {}
            for line in lines:
                key, _, value = line.partition(": ")
                settings[key] = value
            for key, value in globals_.items():
                settings[key] = value
            text = ""
            for key, value in settings.items():
                if isinstance(value, dict):
                    text += "%s:\n" % key + "".join("    %s: %s\n" % (yaml_string(k), yaml_string(v))
                                                    for k, v in value.items())
                else:
                    text += "%s: %s\n" % (key, value if key not in globals_ else yaml_string(value))
            common.write_file(sandbox.config, text)
            if "job_directory" not in globals_:
                sandbox.write_job("good", "command: /bin/true\nschedule: '*/5 * * * *'\n")
            expected = [good]
            if job_extra is not None:
                sandbox.write_job("injected", "command: /bin/true\n" + job_extra
                                  if not job_extra.startswith("command") else job_extra)
            if file_name is not None:
                common.write_file(os.path.join(sandbox.jobs, file_name + ".yaml"),
                                  "command: /bin/true\nschedule: '* * * * *'\n")
            code, out, err, _ = sandbox.run([], tool="cron-generate", timeout=20)
            problems = []
            if code is common.HUNG:
                problems.append("hung")
            elif b"Traceback" in err:
                problems.append("traceback: %s" % common.last_line(err))
            elif code not in (0,) + REFUSED:
                problems.append("exit %s" % code)
            crontab = sandbox.path("cron.d", "pc")
            if os.path.exists(crontab):
                with open(crontab, "rb") as stream:
                    written = stream.read().decode("utf-8", "replace")
                allowed = {"MAILTO", "X", "PATH"}
                if "schedule" in label or "name key" in label or "environment" in label or "command" in label:
                    # the injected job itself may be scheduled, once, harmlessly
                    extra_entries = [line for line in written.split("\n") if "--job injected" in line]
                    if len(extra_entries) == 1 and "EVIL" not in extra_entries[0]:
                        expected = expected + extra_entries
                problems += crontab_problems(written, expected, allowed, "template" in label)
                if "template" not in label and "EVIL" in "".join(line for line in written.split("\n") if not line.startswith("#")
                                     and not line.startswith("X=")):
                    problems.append("EVIL outside a comment in the crontab")
            elif code == 0:
                problems.append("exit 0 but no crontab written")
            tally.check(problems, "crontab injection through %s (%r)" % (label, injection_of(label, globals_, job_extra, file_name)))
        finally:
            sandbox.remove()


def injection_of(label, globals_, job_extra, file_name):
    for value in list(globals_.values()) + [job_extra, file_name]:
        text = repr(value)
        for injection in INJECTIONS:
            if repr(injection)[1:-1] in text:
                return injection[:12]
    return "?"


KINDS = ["symlink outside", "symlink /dev/zero", "FIFO", "directory", "device /dev/null",
         "device /dev/zero", "huge file"]


def replace_with(path, kind, target):
    if kind == "symlink outside":
        os.symlink(target, path)
    elif kind == "symlink /dev/zero":
        os.symlink("/dev/zero", path)
    elif kind == "FIFO":
        os.mkfifo(path, 0o644)
    elif kind == "directory":
        os.mkdir(path)
    elif kind.startswith("device"):
        if not common.IS_ROOT:
            return False
        minor = 3 if kind.endswith("null") else 5
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, minor))
    elif kind == "huge file":
        with open(path, "wb") as stream:
            stream.truncate(8 << 30)
    return True


def file_attacks(tally, skipped, quick):
    roles = (("lock", "run", ".lock"), ("state", "state", ".state"), ("history", "state", ".history"))
    for role, directory, suffix in (roles[1:2] if quick else roles):
        for kind in KINDS:
            sandbox = common.Sandbox()
            try:
                target = sandbox.path("precious")
                common.write_file(target, "precious\n")
                # A failing job: its record counts the failures before it, read
                # from the state file in place.
                sandbox.write_job("good", "command: /bin/false\ntimeout: 10s\n")
                if not replace_with(sandbox.path(directory, "good" + suffix), kind, target):
                    skipped.add("devices need root")
                    continue
                problems = []
                for args in (["--status"], ["--status", "good"], ["good"], ["good"]):
                    code, _, err, _ = sandbox.run(args, timeout=4 if quick else 8, preexec_fn=limited_memory)
                    if code is common.HUNG:
                        problems.append("%s hung" % " ".join(args))
                        break  # the next ones would hang as long
                    elif b"Traceback" in err:
                        problems.append("%s: traceback: %s" % (" ".join(args), common.last_line(err)))
                    elif code not in (0, 1) + REFUSED:
                        problems.append("%s exited %s: %s" % (" ".join(args), code, common.last_line(err)))
                    elif args == ["good"] and code != 0 and not err.strip():
                        problems.append("refused without saying why")
                with open(target) as stream:
                    if stream.read() != "precious\n":
                        problems.append("the file a symlink pointed to was changed")
                tally.check(problems, "%s file replaced by a %s" % (role, kind))
            finally:
                sandbox.remove()


def run(args):
    tally = common.Tally(args.failures)
    skipped = set()
    sandbox = common.Sandbox()
    try:
        name_attacks(sandbox, tally, args.quick)
        link_and_mode_attacks(sandbox, tally)
        private_config_attacks(sandbox, tally)
    finally:
        sandbox.remove()
    if common.IS_ROOT:
        unreadable_job_file(tally)
    else:
        skipped.add("a job file unreadable by the service user needs root")
    injection_attacks(tally, args.quick)
    file_attacks(tally, skipped, args.quick)
    figure = "%d attacks (names, links, owners and modes, private configs, crontab injection, replaced lock/state/history files); %d refused or survived" % (
        tally.trials, tally.ok)
    if skipped:
        figure += "; skipped: " + ", ".join(sorted(skipped))
    return tally.trials, tally.ok, figure
