# process-control: two self-contained scripts, their man pages, bash
# completions and examples.
#
#   make test                 the whole dependency-free suite, with python3 from PATH
#   make test PYTHON=/x/python3   the same with another interpreter
#   make check                ruff, pyflakes and vermin (dev tools: pip install ruff pyflakes vermin)
#   sudo make install         into PREFIX (/usr); DESTDIR for staged installs
#   sudo make uninstall       removes exactly what install put there

PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
DATAROOTDIR ?= $(PREFIX)/share
DOCDIR ?= $(DATAROOTDIR)/doc/process-control
MANDIR ?= $(DATAROOTDIR)/man
BASHCOMPLETIONDIR ?= $(DATAROOTDIR)/bash-completion/completions

# PYTHON is the interpreter written into the installed scripts' shebang, so it
# must be an absolute path. The suite, the demo and the benches run with
# python3 from PATH unless PYTHON is given (CI: make test PYTHON=...).
ifeq ($(origin PYTHON),undefined)
PYTHON = /usr/bin/python3
RUN_PYTHON = python3
else
RUN_PYTHON = $(PYTHON)
endif

SHIPPED = run_job.py cron_generate.py
PYTHON_FILES = $(SHIPPED) $(wildcard test_*.py bench/*.py .ci/*.py torture/*.py)
MAN1 = man/run-job.1 man/cron-generate.1
MAN5 = man/process-control.yaml.5
COMPLETIONS = completion/run-job completion/cron-generate
EXAMPLES = examples/process-control.yaml examples/job.example.yaml
EXAMPLE_JOBS = $(wildcard examples/jobs/*.yaml)
EXAMPLE_TMPFILES = examples/tmpfiles.d/process-control.conf
BUILD = build

INSTALLED_FILES = \
	$(BINDIR)/run-job $(BINDIR)/cron-generate \
	$(addprefix $(MANDIR)/man1/,$(notdir $(MAN1))) \
	$(addprefix $(MANDIR)/man5/,$(notdir $(MAN5))) \
	$(addprefix $(BASHCOMPLETIONDIR)/,$(notdir $(COMPLETIONS))) \
	$(DOCDIR)/README.md \
	$(addprefix $(DOCDIR)/examples/,$(notdir $(EXAMPLES))) \
	$(addprefix $(DOCDIR)/examples/jobs/,$(notdir $(EXAMPLE_JOBS))) \
	$(DOCDIR)/examples/tmpfiles.d/process-control.conf
# Only these directories are ours to remove, innermost first, and only when empty.
OWN_DIRECTORIES = $(DOCDIR)/examples/jobs $(DOCDIR)/examples/tmpfiles.d $(DOCDIR)/examples $(DOCDIR)

.PHONY: all test check lint-man install uninstall demo bench clean

all:
	@echo "nothing to build: make test, make check, make install"

# The whole dependency-free suite; PyYAML/cronsim differential tests skip when absent.
test:
	$(RUN_PYTHON) test_run_job.py

# Dev tools, not needed to run or install: .ci/run installs them into its venv.
check:
	@for tool in ruff pyflakes vermin; do \
	    command -v $$tool >/dev/null 2>&1 || { \
	        echo "make check: $$tool is not installed; pip install ruff pyflakes vermin" \
	             "(into a virtualenv), or run .ci/run" >&2; exit 1; }; \
	done
	ruff check --quiet --select F,E9,W605 $(PYTHON_FILES)
	pyflakes $(PYTHON_FILES)
	vermin --target=3.6- --violations --no-tips $(SHIPPED)

# The man pages with both formatters' warnings (groff-base and mandoc).
lint-man:
	@for tool in groff mandoc; do \
	    command -v $$tool >/dev/null 2>&1 || { \
	        echo "make lint-man: $$tool is not installed; apt-get install groff-base mandoc" >&2; \
	        exit 1; }; \
	done
	@for page in $(MAN1) $(MAN5); do \
	    out=$$(groff -ww -z -man $$page 2>&1) && [ -z "$$out" ] || { echo "$$out"; exit 1; }; \
	    mandoc -T lint $$page || exit 1; \
	done
	@echo "man pages: groff -ww and mandoc -T lint are clean"

# The scripts get PYTHON in isolated mode (-I): neither environment variables
# (PYTHONPATH, PYTHONSTARTUP...), nor user site-packages, nor the script's
# directory can change what a privileged run-job imports.
install:
	@case '$(PYTHON)' in /*) ;; *) \
	    echo "make install: PYTHON must be an absolute path (it becomes the scripts'" \
	         "interpreter), not '$(PYTHON)'" >&2; exit 1;; esac
	install -d $(BUILD)
	sed '1s|^#!.*|#!$(PYTHON) -I|' run_job.py > $(BUILD)/run-job
	sed '1s|^#!.*|#!$(PYTHON) -I|' cron_generate.py > $(BUILD)/cron-generate
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(BASHCOMPLETIONDIR) $(DESTDIR)$(DOCDIR)/examples/jobs \
	    $(DESTDIR)$(DOCDIR)/examples/tmpfiles.d
	install -m 0755 $(BUILD)/run-job $(BUILD)/cron-generate $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(COMPLETIONS) $(DESTDIR)$(BASHCOMPLETIONDIR)/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 $(EXAMPLE_JOBS) $(DESTDIR)$(DOCDIR)/examples/jobs/
	install -m 0644 $(EXAMPLE_TMPFILES) $(DESTDIR)$(DOCDIR)/examples/tmpfiles.d/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))
	for directory in $(addprefix $(DESTDIR),$(OWN_DIRECTORIES)); do \
	    if [ -d "$$directory" ] && ! rmdir "$$directory" 2>/dev/null; then \
	        echo "make uninstall: $$directory holds files install did not put there: left as it is"; \
	    fi; \
	done

# Example jobs run as you, in ./demo (git-ignored), made afresh with safe modes:
# the checks, the status, a run and its log, a failure.
DEMO = demo
DEMO_RUN = $(RUN_PYTHON) run_job.py --config $(DEMO)/process-control.yaml

demo:
	rm -rf $(DEMO)
	install -d -m 0755 $(DEMO) $(DEMO)/jobs
	install -m 0644 examples/jobs/*.yaml $(DEMO)/jobs/
	sed "s/@USER@/$$(id -un)/" examples/demo-config.yaml > $(DEMO)/process-control.yaml
	chmod 0644 $(DEMO)/process-control.yaml
	@echo; echo "== run-job --check: the config and every job file"
	$(DEMO_RUN) --check
	@echo; echo "== run-job --status"
	$(DEMO_RUN) --status
	@echo; echo "== run-job hello"
	$(DEMO_RUN) hello
	@echo; echo "== its log: run-job --log hello"
	$(DEMO_RUN) --log hello
	@echo; echo "== run-job --slow-start warmup"
	$(DEMO_RUN) --slow-start warmup
	@echo; echo "== run-job broken: a failure, exit code 1"
	$(DEMO_RUN) broken || echo "run-job exited with $$?"
	@echo; echo "== what it wrote on stderr: run-job --log broken --stderr"
	$(DEMO_RUN) --log broken --stderr
	@echo; echo "== run-job --history hello"
	$(DEMO_RUN) --history hello
	@echo; echo "== its log: the job's output, then its on_failure hook's (stream H)"
	cat "$$(find $(DEMO)/log -type f -path '*broken*' | sort | tail -n 1)"
	@echo; echo "== run-job --status"
	$(DEMO_RUN) --status

# The figures the issues asked for, in one table (a few minutes; about a minute
# with BENCH_ARGS=--quick). run-job itself runs with Debian's /usr/bin/python3
# whatever runs the report; the YAML and schedule figures with the interpreter
# the suite runs with, against PyYAML and cronsim when it has them. A missed goal is marked MISSED, not
# fatal; a measurement that fails is.
BENCH_ARGS ?=
bench:
	$(RUN_PYTHON) bench/report.py $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(DEMO) __pycache__ bench/__pycache__ .ci/__pycache__
