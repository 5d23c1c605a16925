"""bad input: seeded mutations of the example job files and global configs
and of hand-written extremes (huge numbers in every notation, NULs, line
breaks, invalid UTF-8, deep nesting, megabyte lines): never a traceback,
every error one line naming the file (and its line where it has one);
`run-job --check` and cron-generate agree on every job file.

The bulk loads in-process (run_job.load_job, load_global_config); every job
file is also judged by both tools as processes, 500 to a job
directory; a sample of the global configs goes through both tools too."""

import glob
import os
import random
import re
import subprocess
import sys

import common

sys.path.insert(0, common.REPO)
import run_job  # noqa: E402

HUGE = "9" * 5000
EXTREMES = [
    HUGE, "-" + HUGE, "0x" + "f" * 4000, "0X" + "F" * 4000, "0o" + "7" * 4000, "0b" + "1" * 5000,
    "1e999", "-1e999", "1e-999", "1" + "0" * 400 + "e-400", ".inf", "-.inf", ".nan", ".NaN",
    "1_000_000", "+0x1F", "0x", "0o", "0b", "0" * 300 + "1", HUGE + "s", HUGE + "d", "0x" + "f" * 3000 + "m",
    "1.7976931348623157e309", "-0", "0", "-5", "2**64", "18446744073709551617", "1e3m", "1.5e308h",
    '"\\0"', '"a\\0b"', '"\\u0000"', '"\\x00"', '"a\\nb"', '"\\r"', '"a\\r\\nb"', '"%"', '"a=b"', '"\\ud800"',
    "~", "null", "[]", "{}", "[[[[]]]]", "!!binary x", "&anchor x", "*alias", "|\n  block\n  text\n",
    ">\n  folded\n", "yes", "on", "True", "''", '""', "'" + "a" * 300 + "'", "@", "`", "%TAG", "---", "...",
]
INSERTIONS = [b"\0", b"\n", b"\r", b"\r\n", b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
              b"\t", b"'", b'"', b"%", b"=", b"#", b": ", b"- ", b"[", b"{", b"}", b"&a ", b"*a",
              b"!!str ", b"\\", b"\x1b[2J", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"  ", b"? ", b"|"]
JOB_KEYS = ["command", "slow_start_command", "timeout", "kill_grace", "schedule", "environment",
            "success_exit_codes", "tags", "tag", "name", "description", "disabled", "allow_overtime",
            "fail_on_stderr", "failure_threshold_for_mail", "failmail"]
GLOBAL_KEYS = ["user", "job_directory", "output_directory", "run_directory", "state_directory",
               "runner_path", "cron_template", "output_crontab", "mailto", "cron_environment",
               "default_job_config", "log_group", "logging"]

HAND_JOBS = [
    "command: /bin/true\ntimeout: %s\nkill_grace: %s\n" % (HUGE, "0x" + "f" * 4000),
    "command: /bin/true\nenvironment:\n    A: %s\n    B: 0x%s\n" % (HUGE, "a" * 4000),
    "command: /bin/true\nsuccess_exit_codes: [%s, -1, 256, 0x100]\n" % HUGE,
    "command: \"/bin/echo a\\0b\"\nschedule: \"* * * * *\"\n",
    "command: /bin/true\nschedule: \"* * * * *\\n* * * * * root /bin/evil\"\n",
    "command: /bin/true\nname: \"a\\nb\"\ndescription: \"\\r\\0\"\n",
    "command: [" * 200 + "]" * 200 + "\n",
    "command:\n" + "".join("  " * i + "k%d:\n" % i for i in range(1, 300)),
    "command: /bin/true\ntags: [" + ", ".join("t%d" % i for i in range(5000)) + "]\n",
    "command: /bin/true\n\xff\xfe: x\n",
    "command: /bin/true\ntimeout: 1e400s\n",
    "command: /bin/true\ntimeout: 0x1p10\n",
    "\0",
    "",
    "command:\n",
    "- just a list\n",
    "command: /bin/true\ncommand: /bin/false\n",
]
HAND_GLOBALS = [
    "user: \"ro\\0ot\"\njob_directory: jobs\n",
    "user: root\njob_directory: \"jo\\0bs\"\n",
    "user: root\njob_directory: jobs\noutput_directory: \"log\\nx\"\n",
    "user: root\njob_directory: jobs\nrun_directory: \"run\\r\"\n",
    "user: root\njob_directory: jobs\nrunner_path: \"/usr/bin/run-job\\n* * * * * root /bin/evil\"\n",
    "user: root\njob_directory: jobs\ndefault_job_config:\n    timeout: %s\n" % ("0x" + "f" * 4000),
    "user: root\njob_directory: jobs\ncron_environment:\n    A: %s\n    \"B\\nC\": x\n" % HUGE,
    "user: root\njob_directory: jobs\nmailto: \"a@b\\nMAILTO=evil\"\n",
    "user: root\njob_directory: jobs\ncron_template: \"{schedule} {user} {command}\\n* * * * * root evil\"\n",
    "user: root\njob_directory: jobs\nlogging:\n" + "".join("  " * i + "k%d:\n" % i for i in range(1, 300)),
    "user: " + "a" * (1 << 20) + "\n",
    "\xff\xfe\0\n",
]


def base_texts(pattern):
    texts = []
    for path in sorted(glob.glob(os.path.join(common.REPO, pattern))):
        with open(path, "rb") as stream:
            texts.append(stream.read())
    return texts


def mutate(rng, text, keys):
    data = bytearray(text)
    for _ in range(rng.randint(1, 3)):
        operator = rng.randrange(9)
        position = rng.randint(0, len(data))
        if operator == 0:  # a value replaced by an extreme
            lines = bytes(data).split(b"\n")
            candidates = [i for i, line in enumerate(lines) if b": " in line]
            if candidates:
                i = rng.choice(candidates)
                lines[i] = lines[i].split(b": ", 1)[0] + b": " + rng.choice(EXTREMES).encode()
                data = bytearray(b"\n".join(lines))
        elif operator == 1:
            data[position:position] = rng.choice(INSERTIONS)
        elif operator == 2 and data:
            del data[position:position + rng.randint(1, 40)]
        elif operator == 3:
            lines = bytes(data).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            if rng.random() < 0.5:
                lines.insert(i, lines[j])
            data = bytearray(b"\n".join(lines))
        elif operator == 4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif operator == 5:
            data += ("\n%s: %s\n" % (rng.choice(keys), rng.choice(EXTREMES))).encode()
        elif operator == 6:
            data += ("\n%s:\n    %s: %s\n" % (rng.choice(keys), rng.choice(keys + ["PATH", "X"]),
                                              rng.choice(EXTREMES))).encode()
        elif operator == 7:
            depth = rng.choice((50, 500, 5000))
            if rng.random() < 0.5:
                data += ("\n%s: %s%s\n" % (rng.choice(keys), "[" * depth, "]" * depth)).encode()
            else:
                data += ("\n%s:\n" % rng.choice(keys)).encode() + b"".join(
                    b"  " * i + b"k:\n" for i in range(1, min(depth, 400)))
        elif operator == 8 and rng.random() < 0.02:  # a megabyte line, rarely
            data += ("\n%s: %s\n" % (rng.choice(keys), "x" * (1 << 20))).encode()
    return bytes(data)


def corpus(rng, count, bases, hand, keys):
    texts = [text.encode("utf-8", "surrogateescape") for text in hand]
    while len(texts) < count:
        texts.append(mutate(rng, rng.choice(bases + texts[:len(hand)]), keys))
    return texts[:count]


def error_problems(message, path):
    """What is wrong with an error message about the file at PATH."""
    if "\n" in message or "\r" in message:
        return ["an error broken by %d line feeds and %d carriage returns: %r" % (
            message.count("\n"), message.count("\r"), message[:120])]
    if not message.startswith(path):
        return ["an error that does not start with the file's name: %r" % message[:120]]
    return []


def judge_in_process(load, path, lines_found):
    try:
        load()
    except run_job.ProcessControlError as error:
        message = str(error)
        if re.match(re.escape(path) + r":\d+:", message):
            lines_found[0] += 1
        return error_problems(message, path), False
    except RecursionError:
        return ["RecursionError (a traceback)"], False
    except Exception as error:  # a traceback for a user
        return ["%s: %s (a traceback)" % (type(error).__name__, str(error)[:100])], False
    return [], True


PROGRAM_PROBLEM = re.compile(rb"\.yaml:\d+:\d+: `(command|slow_start_command|on_failure|on_recovery"
                             rb"|on_success)`: (program .* is not found"
                             rb"|.* does not exist; install it|.* is a directory, not a program"
                             rb"|the service user .* cannot (execute|reach) )")


def tool_verdicts(sandbox, names, tally, stats):
    """Each job NAME (all in the job directory) judged by run-job --check and
    by cron-generate --stdout: agree on every one, no traceback, every line
    of stderr one message starting with the tool's name."""
    rj_code, _, rj_err, _ = sandbox.run(["--check"], timeout=300)
    cg_code, cg_out, cg_err, _ = sandbox.run(["--stdout"], tool="cron-generate", timeout=300)
    common_problems = []
    for tool, code, err in (("run-job", rj_code, rj_err), ("cron-generate", cg_code, cg_err)):
        if code is common.HUNG:
            common_problems.append("%s hung on a job directory of mutants" % tool)
        if b"Traceback" in err:
            common_problems.append("%s: traceback: %s" % (tool, common.last_line(err)))
        for line in err.split(b"\n")[:-1]:
            if not line.startswith(tool.encode() + b": "):
                common_problems.append("%s printed a line that is not a message: %r" % (tool, line[:100]))
                break
    name_pattern = re.compile(rb"/(m\d{5})\.yaml")
    rj_bad, cg_bad = set(), set()
    rj_why = {}
    rj_not_program = set()  # files with an error other than about a program
    cg_unscheduled = set()
    for line in rj_err.split(b"\n"):
        match = name_pattern.search(line)
        if match and b": warning: " not in line:
            rj_bad.add(match.group(1).decode())
            if not PROGRAM_PROBLEM.search(line):
                rj_not_program.add(match.group(1).decode())
            what = re.sub(rb"^.*?\.yaml(:\d+:\d+)?: ", b"", line).split(b";")[0]
            rj_why.setdefault(match.group(1).decode(), " ".join(word[:30] for word in what.decode("utf-8", "replace").split()[:6]))
    for line in cg_err.split(b"\n"):
        match = name_pattern.search(line)
        if match:  # an error (left off) or a warning that a cron run would fail
            cg_bad.add(match.group(1).decode())
    for line in cg_out.split(b"\n"):
        if line.startswith(b"# Skipping invalid job m"):
            cg_bad.add(line.split()[4].rstrip(b":").decode())
        elif re.match(rb"# Skipping (unscheduled|disabled) job m\d{5}$", line):
            cg_unscheduled.add(line.split()[4].decode())
    tally.check(common_problems, "a batch of %d job files through both tools" % len(names))
    crashed = [tool for tool, code, err in (("run-job --check", rj_code, rj_err),
                                             ("cron-generate", cg_code, cg_err))
               if code is common.HUNG or b"Traceback" in err]
    for name in names:
        problems = []
        if crashed:
            problems.append("not judged: %s crashed on its batch" % " and ".join(crashed))
        elif (name in rj_bad and name not in cg_bad and name in cg_unscheduled
              and name not in rj_not_program):
            # A program that does not exist, in a job cron never starts:
            # cron-generate checks programs only of the jobs it schedules
            # (README, "cron-generate"); --check reports it for a manual run.
            stats["unscheduled programs"] += 1
        elif (name in rj_bad) != (name in cg_bad):
            problems.append("run-job --check says %s, cron-generate says %s" % (
                "invalid (%s)" % rj_why.get(name, "?") if name in rj_bad else "valid",
                "invalid" if name in cg_bad else "valid"))
            stats["disagree"] += 1
        tally.check(problems, "job file judged by both tools")


def run(args):
    rng = random.Random(args.seed)
    job_count = 800 if args.quick else 8000
    global_count = 200 if args.quick else 2000
    global_sample = 10 if args.quick else 60
    tally = common.Tally(args.failures)
    stats = {"disagree": 0, "unscheduled programs": 0, "left out": 0}
    lines_found = [0]
    valid = 0
    sandbox = common.Sandbox(user="root" if common.IS_ROOT else common.CURRENT_USER)
    try:
        config = run_job.load_global_config(sandbox.config, {})
        jobs = corpus(rng, job_count, base_texts("examples/jobs/*.yaml") + base_texts("examples/job.example.yaml"),
                      HAND_JOBS, JOB_KEYS)
        batch = []
        for index, text in enumerate(jobs):
            name = "m%05d" % index
            path = os.path.join(sandbox.jobs, name + ".yaml")
            common.write_file(path, text)
            problems, ok = judge_in_process(lambda: run_job.load_job(config, name), path, lines_found)
            valid += ok
            tally.check(problems, "job file, in process")
            if any("a traceback" in problem for problem in problems):
                # Failed already; left out of the process runs, where its
                # traceback would leave the other files of its batch unjudged.
                os.unlink(path)
                stats["left out"] += 1
            else:
                batch.append(name)
            if len(batch) == 500 or (index == len(jobs) - 1 and batch):
                tool_verdicts(sandbox, batch, tally, stats)
                for done in batch:
                    os.unlink(os.path.join(sandbox.jobs, done + ".yaml"))
                batch = []
        sandbox.write_job("good", "command: /bin/true\nschedule: '*/5 * * * *'\n")
        globals_ = corpus(rng, global_count, base_texts("examples/*.yaml")[:0] + [
            open(sandbox.config, "rb").read() + b"mailto: ops@example.com\nrunner_path: /usr/bin/run-job\n"
            b"cron_environment:\n    PATH: /usr/bin:/bin\ndefault_job_config:\n    timeout: 10m\n"],
            HAND_GLOBALS, GLOBAL_KEYS)
        globals_ += corpus(rng, global_count // 4, base_texts("examples/*.yaml"), [], GLOBAL_KEYS)
        global_valid = 0
        for index, text in enumerate(globals_):
            path = sandbox.path("g%05d.yaml" % index)
            common.write_file(path, text)
            problems, ok = judge_in_process(lambda: run_job.load_global_config(path, {}), path, lines_found)
            global_valid += ok
            tally.check(problems, "global config, in process")
            if index < global_sample or (index % max(1, len(globals_) // global_sample) == 0):
                tally.check(global_config_by_both_tools(sandbox, path), "global config, both tools")
            os.unlink(path)
    finally:
        sandbox.remove()
    figure = ("%d job files (%d valid) and %d global configs (%d valid); %d errors with a line number; "
              "%d job files where --check and cron-generate disagree (%d unscheduled jobs with a missing "
              "program only --check reports; %d files with a traceback in process left out)" % (
                  len(jobs), valid, len(globals_), global_valid, lines_found[0], stats["disagree"],
                  stats["unscheduled programs"], stats["left out"]))
    return tally.trials, tally.ok, figure


def global_config_by_both_tools(sandbox, path):
    problems = []
    verdicts = []
    for tool, args in (("run-job", ["--check"]), ("cron-generate", ["--stdout"])):
        argv = [common.PYTHON, common.RUN_JOB if tool == "run-job" else common.CRON_GENERATE,
                "--config", path] + args
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=sandbox.root, start_new_session=True)
        code, _, err, _ = common.finish(process, 60)
        if code is common.HUNG:
            problems.append("%s hung" % tool)
        if b"Traceback" in err:
            problems.append("%s: traceback: %s" % (tool, common.last_line(err)))
        for line in err.split(b"\n")[:-1]:
            if not line.startswith(tool.encode() + b": "):
                problems.append("%s printed a line that is not a message: %r" % (tool, line[:100]))
                break
        prefix = ("%s: %s" % (tool, path)).encode()
        verdicts.append(any(line.startswith(prefix) and b": warning: " not in line
                            for line in err.split(b"\n")))
    if verdicts[0] != verdicts[1] and not problems:  # a crashed tool has no verdict
        problems.append("the global config is %s for run-job --check, %s for cron-generate" % (
            "invalid" if verdicts[0] else "valid", "invalid" if verdicts[1] else "valid"))
    return problems
