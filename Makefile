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
