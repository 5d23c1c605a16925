"""The benches' one table: each figure, run-job's median against the
reference's, their ratio, the goal, run-job's min..max and MISSED when the
goal is missed. Rows are printed as they are measured (flushed, so that a
long run shows progress through a pipe too)."""

import statistics
import sys

# unit -> (scale from the measured value, column form, min..max form)
UNITS = {"us": (1e6, "%8.0fus", "%.0f"), "ms": (1e3, "%8.1fms", "%.1f"),
         "s": (1, "%8.3fs", "%.3f"), "KiB": (1, "%7dKiB", "%d")}
HEADER = "%-50s %10s %10s %12s %8s  %s" % (
    "figure (medians)", "run-job", "reference", "ratio", "goal", "run-job min..max")


def spread(figures, unit):
    """min..max of FIGURES, compact."""
    scale, _, compact = UNITS[unit]
    return (compact + ".." + compact + "%s") % (min(figures) * scale, max(figures) * scale,
                                                unit)


class Table(object):

    def __init__(self):
        self.missed = []
        self.failed = []
        self._print(HEADER)

    def _print(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def row(self, label, ours, theirs, unit, goal=None, limit=None):
        """run-job's figures OURS against the reference's THEIRS (None: no
        reference); GOAL is the largest ratio accepted, LIMIT the largest
        median accepted, in UNIT."""
        scale, form, _ = UNITS[unit]
        mine = statistics.median(ours)
        reference, ratio_text, missed = "-", "-", False
        if theirs is not None:
            reference = form % (statistics.median(theirs) * scale)
            ratio = mine / statistics.median(theirs)
            ratio_text = "%.2fx" % ratio
            missed = goal is not None and ratio > goal
        missed = missed or (limit is not None and mine * scale > limit)
        goal_text = ("<=%gx" % goal if goal is not None
                     else "<=%g%s" % (limit, unit) if limit is not None else "-")
        self._line(label, form % (mine * scale), reference, ratio_text, goal_text,
                   spread(ours, unit), missed)

    def faster(self, label, ours, theirs, unit, goal=None):
        """A figure where run-job is to win: the reference's median over
        run-job's, at least GOAL times."""
        scale, form, _ = UNITS[unit]
        mine, reference = statistics.median(ours), statistics.median(theirs)
        speed_up = reference / mine
        self._line(label, form % (mine * scale), form % (reference * scale),
                   ("%.1fx faster" if speed_up >= 10 else "%.2fx faster") % speed_up,
                   ">=%gx" % goal if goal is not None else "-", spread(ours, unit),
                   goal is not None and speed_up < goal)

    def _line(self, label, mine, reference, ratio, goal, span, missed):
        if missed:
            self.missed.append(label.strip())
        self._print("%-50s %10s %10s %12s %8s  %s%s" % (
            label, mine, reference, ratio, goal, span, "  MISSED" if missed else ""))

    def note(self, label, text):
        """A figure that was not measured, and why (a tool is not installed)."""
        self._print("%-50s %s" % (label, text))

    def failure(self, label, error):
        self.failed.append(label.strip())
        self._print("%-50s FAILED: %s" % (label, error))

    def summary(self):
        if self.failed:
            self._print("MEASUREMENT FAILED: %s" % "; ".join(self.failed))
        if self.missed:
            self._print("GOAL MISSED: %s" % "; ".join(self.missed))
        elif not self.failed:
            self._print("goals met")
