"""Every command a reader is shown is real: each `labkit ...` in the docs, the lessons and the
code's hints and errors names a command and verb that exist and, where it holds no placeholder,
parses with the CLI's own parser; each `make TARGET` the docs name is a target of the Makefile."""
import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from labkit.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "README.zh-CN.md", *(ROOT / "docs").glob("*.md")])
LESSONS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
CODE = sorted((ROOT / "labkit").rglob("*.py"))
INLINE = re.compile(r"`((?:!)?labkit [^`\n]+)`")
# what marks a synopsis rather than a command: options in brackets, alternatives (a|b, a / b),
# ellipses, placeholders in capitals (NAME, JOB@V001, --port PORT)
PLACEHOLDER = re.compile(r"[\[\]|<>{}…]|\.\.\.|^/$|^[A-Z][A-Z0-9_@.:-]*$|=[A-Z][A-Z_]*$")


def shell_lines(text: str) -> list[str]:
    """The commands of a markdown document's code blocks (continued lines joined, comments cut)."""
    found, block, pending = [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            block, pending = not block, ""
            continue
        if block:
            line = pending + line.split(" #")[0].strip()
            pending = line[:-1] + " " if line.endswith("\\") else ""
            if not pending:
                found.append(line)
    return found


def commands() -> list[tuple[str, str]]:
    """(where, command) for every `labkit ...` shown to a reader."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        found += [(path.name, c) for c in INLINE.findall(text)]
        found += [(path.name, line) for line in shell_lines(text) if line.startswith("labkit ")]
    for path in LESSONS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            found += [(path.name, c) for c in INLINE.findall(text)]
            found += [(path.name, line.strip()[1:]) for line in text.splitlines() if line.strip().startswith("!labkit ")]
    for path in CODE:
        found += [(str(path.relative_to(ROOT)), c) for c in INLINE.findall(path.read_text(encoding="utf-8"))]
    return [(where, c.lstrip("!").split(" #")[0].strip()) for where, c in found]


def subcommands(parser) -> dict:
    """A parser's sub-parsers by name (empty if it has none)."""
    return next((a.choices for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"), {})


def problem(command: str) -> str | None:
    """Why ``command`` is not a labkit command a reader could run, or None."""
    try:
        words = shlex.split(command.replace("{", "").replace("}", ""))[1:]
    except ValueError:
        words = command.split()[1:]
    parser = build_parser()
    groups = subcommands(parser)
    if not words:
        return "no command"
    if words[0] in ("--help", "-h", "--version") or re.fullmatch(r"[A-Z]+|\.\.\.", words[0]):
        return None  # `labkit --help`, `labkit VERB --help`, `labkit ... | head`
    unknown = [g for g in words[0].split("|") if g not in groups]
    if unknown:
        return f"no command {unknown[0]!r}"
    for group in words[0].split("|"):
        verbs = subcommands(groups[group])
        asked = words[1].split("|") if verbs and len(words) > 1 and not words[1].startswith("-") else []
        missing = [v for v in asked if not PLACEHOLDER.search(v) and v not in verbs]
        if missing:
            return f"{group} has no verb {missing[0]!r} (it has {', '.join(verbs)})"
    if any(PLACEHOLDER.search(w) for w in words) or "$" in command or "{" in command:
        return None  # a synopsis: the command and verb are checked, the rest is for the reader to fill in
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(words)
    except SystemExit:
        error = said.getvalue().strip().splitlines()[-1] if said.getvalue().strip() else ""
        mention = ("the following arguments are required" in error  # a verb or an option named in prose
                   or "expected one argument" in error and words[-1].startswith("--"))
        if error and not mention:
            return error
    return None


def test_every_labkit_command_shown_to_a_reader_exists():
    found = commands()
    assert len(found) > 100  # the collection reads the docs, the lessons and the code
    wrong = sorted({f"{where}: {c}: {why}" for where, c in found if (why := problem(c))})
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_an_unknown_verb_and_a_wrong_option():
    assert "no verb 'labels'" in problem("labkit eval labels")
    assert "no verb 'shows'" in problem("labkit train list|shows NAME")
    assert "no command 'trian'" in problem("labkit trian list")
    assert "unrecognized arguments: --epochs" in problem("labkit data make flowers --epochs 3")
    assert problem("labkit train show JOB") is None and problem("labkit gc --dry-run") is None


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set()
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"`make ([a-z][a-z0-9-]*)", text))
        named |= {line.split()[1] for line in shell_lines(text) if line.startswith("make ") and len(line.split()) > 1}
    assert named and named <= targets, f"named but not in the Makefile: {sorted(named - targets)}"


@pytest.mark.parametrize("command", ["labkit data make flowers --name fl --count 10 --size 32",
                                     "labkit unpack packs/flowers-job.tar.gz"])
def test_a_real_command_parses(command):
    assert problem(command) is None
