# process-control: two self-contained scripts and their tests.
PYTHON ?= python3
PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin

.PHONY: test install demo

# The whole dependency-free suite; PyYAML/cronsim differential tests skip when absent.
test:
	$(PYTHON) test_run_job.py

install:
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 run_job.py $(DESTDIR)$(BINDIR)/run-job
	install -m 0755 cron_generate.py $(DESTDIR)$(BINDIR)/cron-generate

# Example jobs run as you, in ./demo (git-ignored), made afresh with safe modes:
# the checks, the status, a run and its log, a failure.
DEMO = demo
DEMO_RUN = $(PYTHON) run_job.py --config $(DEMO)/process-control.yaml

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
	@echo; echo "== its log"
	cat "$$(find $(DEMO)/log -type f -path '*hello*' | sort | tail -n 1)"
	@echo; echo "== run-job --slow-start warmup"
	$(DEMO_RUN) --slow-start warmup
	@echo; echo "== run-job broken: a failure, exit code 1"
	$(DEMO_RUN) broken || echo "run-job exited with $$?"
	@echo; echo "== run-job --status"
	$(DEMO_RUN) --status
