"""Tests for the packaging: make install/uninstall, the man pages, the bash
completions. Real make, bash, groff and mandoc in temporary directories; each
test skips with its reason when its tool is missing."""

import ast
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_job  # noqa: E402
import cron_generate  # noqa: E402

MAN_PAGES = ("man/run-job.1", "man/cron-generate.1", "man/process-control.yaml.5")
# process-control.yaml(5)'s key sections: (heading, the next heading, their keys).
MAN_KEY_SECTIONS = (("GLOBAL KEYS", "JOB KEYS", run_job.GLOBAL_KEYS),
                    ("JOB KEYS", "DURATIONS", run_job.JOB_KEYS))
IS_ROOT = os.geteuid() == 0


def read(relative_path):
    with open(os.path.join(HERE, relative_path), encoding="utf-8") as handle:
        return handle.read()


def write(path, text, mode=0o644):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def service_user():
    """An existing unprivileged user: nobody as root, else ourselves."""
    return "nobody" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name


def plain_roff(text):
    """Roff source with the escapes these pages use undone: what a reader sees."""
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"') \
        .replace("\\(rs", "\\")


def man_terms(text, first_heading, next_heading):
    """{term: its paragraph} for the .TP entries between two .SH headings."""
    section = text[text.index(".SH " + first_heading):text.index(".SH " + next_heading)]
    entries = {}
    for entry in section.split("\n.TP\n")[1:]:
        heading, _, body = entry.partition("\n")
        for word in re.split(r"[ ,\"]+", heading.split(" ", 1)[1]):
            if word:
                entries[word] = body
    return entries


def roff_line_text(line):
    """What roff prints for one source line: a font macro's arguments, the
    alternating ones (.BR, .IR, ...) joined without spaces."""
    if not line.startswith("."):
        return plain_roff(line)
    macro, _, rest = line.partition(" ")
    arguments = [quoted or bare for quoted, bare in re.findall(r'"([^"]*)"|(\S+)', rest)]
    joiner = " " if macro in (".B", ".I") else ""
    return plain_roff(joiner.join(arguments))


def man_default(body):
    """The default an entry of process-control.yaml(5) states (its sentence
    "Default: ...", without the final period), or "required"."""
    text = " ".join(roff_line_text(line) for line in body.split("\n.IP\n")[0].splitlines())
    if re.search(r"(^| )Required\.", text):
        return "required"
    found = re.search(r"Default: (.*?)\.( |$)", text)
    return found.group(1) if found else None


def readme_key_table(readme, heading):
    """{key: its default column} of the first table after README's HEADING;
    a row may name two keys ("`tag` or `tags`")."""
    section = readme[readme.index("\n" + heading + "\n"):]
    section = section[:section.index("\n## ", 1)]
    table = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            keys, default = line.split(" | ")[:2]
            for key in re.findall(r"`([^`]+)`", keys):
                table[key] = default
    return table


def options_in(text):
    """Every -x and --long option named in a text."""
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def clean_make_environment():
    """The environment without what an outer make (make test PYTHON=...)
    passes to a make started inside it."""
    environment = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTHON", "DESTDIR",
                 "PREFIX", "BINDIR", "MANDIR", "DOCDIR", "DATAROOTDIR", "BASHCOMPLETIONDIR"):
        environment.pop(name, None)
    return environment


def make(*arguments, **settings):
    """Run make in the source tree; return (exit code, stdout + stderr)."""
    process = subprocess.run(["make", "--no-print-directory", "-C", HERE] + list(arguments),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env=settings.get("env", clean_make_environment()),
                             universal_newlines=True)
    return process.returncode, process.stdout


def files_under(root):
    found = []
    for directory, _, names in os.walk(root):
        found.extend(os.path.relpath(os.path.join(directory, name), root) for name in names)
    return sorted(found)


class ArchitectureTests(unittest.TestCase):
    def test_each_section_of_run_job_uses_only_those_above_it(self):
        # The numbered banners `# ---- N. name`: a function or class of
        # section N may name only what sections 1 to N define.
        with open(os.path.join(HERE, "run_job.py")) as script:
            source = script.read()
        starts = [(number + 1, int(line.split()[2].rstrip(".")))
                  for number, line in enumerate(source.splitlines())
                  if line.startswith("# ---- ")]
        self.assertEqual([section for _, section in starts], list(range(1, len(starts) + 1)))

        def section(line):
            return max([0] + [number for start, number in starts if start <= line])
        tree = ast.parse(source)
        defined = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined[node.name] = section(node.lineno)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        defined[target.id] = section(node.lineno)
        later = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                for name in ast.walk(node):
                    if isinstance(name, ast.Name) and defined.get(name.id, 0) > section(node.lineno):
                        later.append("%s (section %d) uses %s (section %d)" % (
                            node.name, section(node.lineno), name.id, defined[name.id]))
        self.assertEqual(later, [])


class DocumentationTests(unittest.TestCase):
    def setUp(self):
        self.format_page = plain_roff(read("man/process-control.yaml.5"))

    def test_the_man_page_documents_exactly_the_keys_and_their_defaults(self):
        raw_page = read("man/process-control.yaml.5")
        for heading, following, keys in MAN_KEY_SECTIONS:
            entries = man_terms(raw_page, heading, following)
            self.assertEqual(sorted(entries), sorted(key.name for key in keys),
                             "process-control.yaml(5) %s" % heading)
            for key in keys:
                documented = key.documented.replace("`", "")
                stated = man_default(entries[key.name]) or ""
                self.assertTrue(stated == documented or stated.startswith(documented + " ("),
                                "process-control.yaml(5): %s's default is %r, not %r"
                                % (key.name, stated, documented))
                self.assertIn(".EX\n", entries[key.name], "key %s: no example" % key.name)

    def test_each_man_page_example_is_valid(self):
        for heading, following, keys in MAN_KEY_SECTIONS:
            for term, body in man_terms(self.format_page, heading, following).items():
                example = re.search(r"^\.EX\n(.*?)^\.EE$", body, re.S | re.M).group(1)
                source = "/etc/process-control.yaml"
                mapping, marks = run_job.load_yaml_mapping(example, source)
                for name, value in mapping.items():
                    origin = run_job.Origin(source, marks, (name,))
                    key = run_job.find_key(keys, name, origin)
                    if name == "log_group":  # its parser wants a group of this machine
                        self.assertIsInstance(value, str)
                        value = grp.getgrgid(os.getegid()).gr_name
                    key.parse(value, name, origin)

    def test_the_readme_tables_list_exactly_the_keys_and_their_defaults(self):
        readme = read("README.md")
        for heading, keys in (("## Configuration", run_job.GLOBAL_KEYS),
                              ("## Job files", run_job.JOB_KEYS)):
            self.assertEqual(readme_key_table(readme, heading),
                             dict((key.name, key.documented) for key in keys),
                             "README.md's table under %s" % heading)

    def test_the_documented_defaults_are_the_programs(self):
        """A default documented as a value is what its parser makes of it
        (cron_template's is cron-generate's); one documented as none is empty."""
        for key in run_job.JOB_KEYS + run_job.GLOBAL_KEYS:
            origin = run_job.Origin("/etc/process-control.yaml", {}, (key.name,))
            if key.documented == "none":
                self.assertFalse(key.default_value(), key.name)
            elif re.match(r"^`[^`]*`$", key.documented):
                written = run_job.parse_yaml_document("v: " + key.documented[1:-1])[0]["v"]
                expected = key.default_value()
                if key.name == "cron_template":
                    expected = cron_generate.DEFAULT_TEMPLATE
                self.assertEqual(key.parse(written, key.name, origin), expected, key.name)
        self.assertEqual(run_job.Job("demo").verbose_name, "demo")

    def test_every_run_job_option_is_in_its_man_page_and_completion(self):
        page = options_in(plain_roff(read("man/run-job.1")))
        completion = options_in(read("completion/run-job"))
        for option in run_job.OPTIONS:
            self.assertIn(option, page, "run-job(1) does not document %s" % option)
            self.assertIn(option, completion, "completion/run-job does not offer %s" % option)

    def test_every_cron_generate_option_is_in_its_man_page_and_completion(self):
        options = options_in(cron_generate.USAGE)
        self.assertIn("--config", options)
        page = options_in(plain_roff(read("man/cron-generate.1")))
        completion = options_in(read("completion/cron-generate"))
        for option in options:
            self.assertIn(option, page, "cron-generate(1) does not document %s" % option)
            self.assertIn(option, completion, "completion/cron-generate does not offer %s" % option)


    def test_the_pages_name_the_scripts_version(self):
        for page in MAN_PAGES:
            title = read(page).split("\n", 1)[0]
            self.assertIn('"process-control %s"' % run_job.VERSION, title, page)


class ManLintTests(unittest.TestCase):
    def lint(self, tool, command):
        if shutil.which(tool) is None:
            self.skipTest("%s is not installed (apt-get install %s)"
                          % (tool, "groff-base" if tool == "groff" else tool))
        for page in MAN_PAGES:
            process = subprocess.run(command + [os.path.join(HERE, page)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     universal_newlines=True)
            self.assertEqual((process.returncode, process.stdout), (0, ""),
                             "%s finds problems in %s" % (tool, page))

    def test_groff_warns_about_nothing(self):
        self.lint("groff", ["groff", "-ww", "-z", "-man"])

    def test_mandoc_lint_is_clean(self):
        self.lint("mandoc", ["mandoc", "-T", "lint"])


@unittest.skipIf(shutil.which("make") is None, "make is not installed")
class MakefileTests(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="pc-packaging-")
        os.chmod(self.root, 0o755)
        self.destdir = os.path.join(self.root, "dest")
        self.addCleanup(shutil.rmtree, self.root)

    def install(self, *arguments):
        code, output = make("install", "DESTDIR=" + self.destdir, "PYTHON=" + sys.executable,
                            "BUILD=" + os.path.join(self.root, "build"), *arguments)
        self.assertEqual(code, 0, output)

    def test_test_uses_python3_from_path_unless_python_is_given(self):
        self.assertIn("\npython3 test_run_job.py\n", "\n" + make("-n", "test")[1])
        self.assertIn("\n/opt/py/bin/python3 test_run_job.py\n",
                      "\n" + make("-n", "test", "PYTHON=/opt/py/bin/python3")[1])

    def test_install_writes_debians_python_in_isolated_mode_by_default(self):
        code, output = make("-n", "install")
        self.assertIn("'1s|^#!.*|#!/usr/bin/python3 -I|'", output)

    def test_install_refuses_a_relative_interpreter(self):
        code, output = make("install", "DESTDIR=" + self.destdir, "PYTHON=python3")
        self.assertNotEqual(code, 0)
        self.assertIn("PYTHON must be an absolute path", output)
        self.assertFalse(os.path.exists(self.destdir))

    def test_install_then_uninstall_leaves_only_what_was_there(self):
        self.install()
        bindir = os.path.join(self.destdir, "usr", "bin")
        self.assertEqual(files_under(self.destdir), sorted(
            ["usr/bin/run-job", "usr/bin/cron-generate",
             "usr/share/man/man1/run-job.1", "usr/share/man/man1/cron-generate.1",
             "usr/share/man/man5/process-control.yaml.5",
             "usr/share/bash-completion/completions/run-job",
             "usr/share/bash-completion/completions/cron-generate",
             "usr/share/doc/process-control/README.md",
             "usr/share/doc/process-control/examples/process-control.yaml",
             "usr/share/doc/process-control/examples/job.example.yaml",
             "usr/share/doc/process-control/examples/tmpfiles.d/process-control.conf"]
            + ["usr/share/doc/process-control/examples/jobs/" + name
               for name in os.listdir(os.path.join(HERE, "examples", "jobs"))]))
        for path in files_under(self.destdir):
            mode = stat.S_IMODE(os.stat(os.path.join(self.destdir, path)).st_mode)
            self.assertEqual(mode, 0o755 if path.startswith("usr/bin/") else 0o644, path)
        write(os.path.join(bindir, "someone-elses"), "keep me\n")
        code, output = make("uninstall", "DESTDIR=" + self.destdir)
        self.assertEqual(code, 0, output)
        self.assertEqual(files_under(self.destdir), ["usr/bin/someone-elses"])
        self.assertFalse(os.path.exists(os.path.join(self.destdir, "usr/share/doc/process-control")))
        os.unlink(os.path.join(bindir, "someone-elses"))
        self.assertEqual(files_under(self.destdir), [])
        # Someone's file in a directory of our own: uninstall keeps it, and the
        # directory, and says so; it still succeeds.
        self.install()
        theirs = os.path.join(self.destdir, "usr/share/doc/process-control/examples/jobs/mine.yaml")
        write(theirs, "command: x\n")
        code, output = make("uninstall", "DESTDIR=" + self.destdir)
        self.assertEqual(code, 0, output)
        self.assertIn("holds files install did not put there", output)
        self.assertEqual(files_under(self.destdir),
                         ["usr/share/doc/process-control/examples/jobs/mine.yaml"])

    def test_prefix_and_directories_can_be_chosen(self):
        self.install("PREFIX=/opt/pc", "MANDIR=/opt/man", "BASHCOMPLETIONDIR=/etc/completions")
        installed = files_under(self.destdir)
        for path in ("opt/pc/bin/run-job", "opt/man/man5/process-control.yaml.5",
                     "etc/completions/run-job", "opt/pc/share/doc/process-control/README.md"):
            self.assertIn(path, installed)
        code, output = make("uninstall", "DESTDIR=" + self.destdir, "PREFIX=/opt/pc",
                            "MANDIR=/opt/man", "BASHCOMPLETIONDIR=/etc/completions")
        self.assertEqual((code, files_under(self.destdir)), (0, []), output)

    def test_installed_scripts_run_isolated_and_cron_generate_finds_run_job(self):
        self.install()
        bindir = os.path.join(self.destdir, "usr", "bin")
        with open(os.path.join(bindir, "run-job")) as handle:
            self.assertEqual(handle.readline(), "#!%s -I\n" % sys.executable)
        # A PYTHONPATH holding a sitecustomize is what would run first without -I.
        hijack = os.path.join(self.root, "hijack")
        os.mkdir(hijack)
        marker = os.path.join(self.root, "hijacked")
        write(os.path.join(hijack, "sitecustomize.py"), "open(%r, 'w').close()\n" % marker)
        environment = dict(os.environ, PYTHONPATH=hijack, PYTHONSTARTUP=hijack)
        subprocess.check_call([sys.executable, os.path.join(HERE, "run_job.py"), "--version"],
                              env=environment, stdout=subprocess.DEVNULL)
        self.assertTrue(os.path.exists(marker), "the control run did not import the hijack")
        os.unlink(marker)

        output = subprocess.check_output([os.path.join(bindir, "run-job"), "--version"],
                                         env=environment, universal_newlines=True)
        self.assertEqual(output, "run-job %s\n" % run_job.VERSION)
        jobs = os.path.join(self.root, "jobs")
        os.mkdir(jobs, 0o755)
        write(os.path.join(jobs, "alpha.yaml"), "command: /bin/true\nschedule: '5 4 * * *'\n")
        config = os.path.join(self.root, "process-control.yaml")
        write(config, "user: %s\njob_directory: jobs\noutput_directory: log\nrun_directory: "
                      "run\nstate_directory: state\n" % service_user())  # not the machine's
        crontab = subprocess.check_output([os.path.join(bindir, "cron-generate"), "--stdout",
                                           "--config", config], env=environment,
                                          universal_newlines=True)
        self.assertIn("5 4 * * * %s %s --job alpha" % (service_user(),
                                                        os.path.join(bindir, "run-job")), crontab)
        self.assertFalse(os.path.exists(marker), "an installed script imported from PYTHONPATH")

    def test_check_names_the_missing_tool(self):
        environment = dict(clean_make_environment(), PATH=self.root)
        process = subprocess.run([shutil.which("make"), "-C", HERE, "check"], env=environment,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True)
        self.assertNotEqual(process.returncode, 0)
        self.assertIn("make check: ruff is not installed", process.stdout)


def bash_can_complete():
    bash = shutil.which("bash")
    return bash is not None and subprocess.call(
        [bash, "--norc", "--noprofile", "-c", "type complete compgen"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


@unittest.skipUnless(bash_can_complete(), "bash with programmable completion is not installed")
class CompletionTests(unittest.TestCase):
    """Sources each completion in a real bash and asks it, as readline would."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="pc-completion-")
        os.chmod(cls.root, 0o755)
        for config, names in (("a", ["alpha", "beta"]), ("b", ["gamma"])):
            jobs = os.path.join(cls.root, config, "jobs")
            os.makedirs(jobs)
            os.chmod(os.path.join(cls.root, config), 0o755)
            os.chmod(jobs, 0o755)
            for name in names:
                write(os.path.join(jobs, name + ".yaml"), "command: /bin/true\n")
            write(os.path.join(cls.root, config, "pc.yaml"),
                  "user: %s\njob_directory: jobs\n" % service_user())
        bindir = os.path.join(cls.root, "bin")
        os.mkdir(bindir, 0o755)
        write(os.path.join(bindir, "run-job"), '#!/bin/sh\nexec %s %s "$@"\n'
              % (sys.executable, os.path.join(HERE, "run_job.py")), 0o755)
        cls.environment = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"],
                               PROCESS_CONTROL_CONFIG=os.path.join(cls.root, "a", "pc.yaml"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def complete(self, command, *words):
        """COMPREPLY for the command line WORDS, the last being completed."""
        script = ('source %s\nCOMP_WORDS=("$@")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
                  'COMPREPLY=()\n%s\nprintf "%%s\\n" "${COMPREPLY[@]}"\n'
                  % (os.path.join(HERE, "completion", command),
                     "_run_job" if command == "run-job" else "_cron_generate"))
        output = subprocess.check_output(
            ["bash", "--norc", "--noprofile", "-c", script, "bash", command] + list(words),
            env=self.environment, cwd=self.root, universal_newlines=True)
        return sorted(line for line in output.split("\n") if line)

    def test_a_bare_argument_is_a_job_of_the_default_config(self):
        self.assertEqual(self.complete("run-job", ""), ["alpha", "beta"])
        self.assertEqual(self.complete("run-job", "b"), ["beta"])

    def test_job_names_come_from_the_config_given_on_the_line(self):
        config = os.path.join(self.root, "b", "pc.yaml")
        self.assertEqual(self.complete("run-job", "-c", config, ""), ["gamma"])
        self.assertEqual(self.complete("run-job", "--config", config, "-j", ""), ["gamma"])
        self.assertEqual(self.complete("run-job", "--config", "=", config, "--kill-job", "g"),
                         ["gamma"])
        self.assertEqual(self.complete("run-job", "--config=" + config, "-s", ""), ["gamma"])

    def test_job_names_after_each_option_that_takes_one(self):
        for option in ("-j", "--job", "-k", "--kill-job", "-s", "--status"):
            self.assertEqual(self.complete("run-job", option, "al"), ["alpha"], option)
        self.assertEqual(self.complete("run-job", "--status", "alpha", ""), ["alpha", "beta"])

    def test_options(self):
        self.assertEqual(self.complete("run-job", "--sl"), ["--slow-start"])
        self.assertLessEqual(set(run_job.OPTIONS), set(self.complete("run-job", "-")))
        self.assertEqual(self.complete("run-job", "--scheduled", ""), [])
        self.assertEqual(set(self.complete("cron-generate", "-")),
                         options_in(cron_generate.USAGE))
        self.assertEqual(self.complete("cron-generate", "--s"), ["--stdout"])

    def test_file_names_after_config(self):
        prefix = os.path.join(self.root, "a", "p")
        expected = [os.path.join(self.root, "a", "pc.yaml")]
        for command in ("run-job", "cron-generate"):
            self.assertEqual(self.complete(command, "-c", prefix), expected, command)
            self.assertEqual(self.complete(command, "--config", prefix), expected, command)
            self.assertEqual(self.complete(command, "--config", "=", prefix), expected, command)
            self.assertEqual(self.complete(command, "--config=" + prefix),
                             ["--config=" + expected[0]], command)


if __name__ == "__main__":
    unittest.main()
