"""crash: kill -9 to run-job at a random moment (before the lock, while the
job runs, while it writes the state): never two overlapping runs, never a
stale lock (the next run takes it once the orphans are gone), never an
unreadable state, and `--kill-job NAME` stops every orphan."""

import concurrent.futures
import json
import os
import random
import signal
import time

import common

PHASES = ("before the lock", "while the job runs", "while writing state")


def count_lines(path):
    try:
        with open(path) as stream:
            return len(stream.read().split())
    except OSError:
        return 0


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def read_state(sandbox):
    """(parsed state or None when absent, problem or None)."""
    try:
        with open(sandbox.state("crash"), "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return None, None
    try:
        return json.loads(data.decode("utf-8")), None
    except ValueError as error:
        return None, "unreadable state (%s): %r" % (error, data[:80])


class Worker(object):
    def __init__(self, number):
        self.sandbox = common.Sandbox()
        self.token = "crash-%d-%d" % (os.getpid(), number)
        self.inside = self.sandbox.path("inside")
        self.overlap = self.sandbox.path("overlap")
        self.ends = self.sandbox.path("ends")
        # The killed run's job sleeps long enough for the next run to find
        # its orphans alive; the runs after it, briefly.
        self.duration = self.sandbox.path("duration")
        command = ("/bin/sh -c 'mkdir %s 2>/dev/null || echo overlap >> %s; sleep $(cat %s); "
                   "rmdir %s; echo e >> %s'" % (self.inside, self.overlap, self.duration,
                                                self.inside, self.ends))
        self.sandbox.write_job("crash", common.job_text(command, self.token, timeout="30s",
                                                        kill_grace="1s"))

    def trial(self, rng, phase):
        problems = []
        ends_before = count_lines(self.ends)
        common.write_file(self.duration, "0.1\n" if phase == 2 else "3\n")
        victim = self.sandbox.popen(["crash"])
        if phase == 0:
            time.sleep(rng.uniform(0, 0.15))
        elif phase == 1:
            wait_for(lambda: os.path.isdir(self.inside), 10)
            time.sleep(rng.uniform(0, 0.3))
        else:
            wait_for(lambda: count_lines(self.ends) > ends_before or victim.poll() is not None, 10)
            time.sleep(rng.uniform(0, 0.015))
        try:
            os.kill(victim.pid, signal.SIGKILL)
        except OSError:
            pass
        common.finish(victim, 10)
        common.write_file(self.duration, "0.05\n")
        state, problem = read_state(self.sandbox)
        if problem:
            problems.append(problem)
        orphans = bool(common.marked_processes(self.token))
        code, _, err, _ = self.sandbox.run(["crash"], timeout=15)
        if code not in (0, 75):
            problems.append("the next run exited %s: %s" % (code, common.last_line(err)))
        stopped = False
        if code == 75 or common.marked_processes(self.token):
            code, _, err, _ = self.sandbox.run(["--kill-job", "crash"], timeout=15)
            left = common.wait_until_gone(self.token, 2)
            if code not in (0, 1):
                problems.append("--kill-job exited %s: %s" % (code, common.last_line(err)))
            if left:
                problems.append("--kill-job left %d processes of the job running" % len(left))
                common.kill_marked(self.token)
            stopped = code == 0
            if stopped:
                state, problem = read_state(self.sandbox)
                if problem or (state or {}).get("status") != "killed":
                    problems.append("after --kill-job the state is %s, not killed" % (
                        problem or (state or {}).get("status")))
            if os.path.isdir(self.inside):
                os.rmdir(self.inside)  # the killed holder's; nothing of the job lives
            code, _, err, _ = self.sandbox.run(["crash"], timeout=15)
            if code != 0:
                problems.append("stale lock: the run after the orphans were gone exited %s: %s" % (
                    code, common.last_line(err)))
        left = common.wait_until_gone(self.token, 3)
        if left:
            problems.append("%d processes of the job outlived every run" % len(left))
            common.kill_marked(self.token)
        if os.path.isdir(self.inside):
            os.rmdir(self.inside)
        if os.path.exists(self.overlap):
            problems.append("two runs overlapped")
            os.unlink(self.overlap)
        state, problem = read_state(self.sandbox)
        if problem:
            problems.append(problem)
        return problems, orphans, stopped


def run(args):
    trials = 15 if args.quick else 100
    workers = [Worker(number) for number in range(4)]
    tally = common.Tally(args.failures)
    orphaned = stopped = 0

    def one(index):
        rng = random.Random(args.seed * 100003 + index)
        worker = workers[index % len(workers)]
        return worker.trial(rng, index % len(PHASES))

    try:
        with concurrent.futures.ThreadPoolExecutor(len(workers)) as pool:
            # Each worker runs its trials one after the other: trial i on worker i % 3.
            futures = []
            for start in range(0, trials, len(workers)):
                batch = [pool.submit(one, index) for index in range(start, min(trials, start + len(workers)))]
                for index, future in zip(range(start, trials), batch):
                    problems, orphans, killed = future.result()
                    orphaned += orphans
                    stopped += killed
                    tally.check(problems, "kill -9 %s" % PHASES[index % len(PHASES)])
                futures.extend(batch)
    finally:
        for worker in workers:
            common.kill_marked(worker.token)
            worker.sandbox.remove()
    figure = ("%d kill -9 (before the lock, job running, writing state); %d left orphans, "
              "%d stopped by --kill-job; %d trials failed" % (
                  trials, orphaned, stopped, tally.trials - tally.ok))
    return tally.trials, tally.ok, figure
