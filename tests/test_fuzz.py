"""A property-based fuzzer (Hypothesis) over the files labkit takes from outside: real packs,
ModelArts manifests and workspace records, each mutated where its structure says a value goes
(a field replaced by a hostile value, removed or added), packs re-signed afterwards. Whatever
comes in: no traceback (only a ``LabkitError``), nothing written outside the workspace, the
workspace unchanged after a refusal, and every list and ``status`` still answering.

Derandomized, so every run tries the same cases: ``LABKIT_FUZZ_EXAMPLES`` per test (CI: 60;
``make fuzz``: 1,000)."""
import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import colour_manifest, labkit_home, listing, members, resign, write_archive
from labkit import data as datasets, packs
from labkit.cli import main as cli
from labkit.errors import LabkitError

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LABKIT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
HOSTILE = ["..", "../x", "../../../../outside/evil", "/etc/passwd", "C:/x", "a\\..\\b", "a\x00b", "\x1b[2J",
           "x" * 300, "", ".", "images/../../x", "images/./a.jpg", "jobs/../../etc", "mc@V001", "NORMAL",
           "COMPLETED", "pytorch", "tensorflow", "crowd_counting", "0" * 64]
VALUES = st.deferred(lambda: st.one_of(
    st.sampled_from(HOSTILE), st.text(max_size=12), st.integers(-2**63, 2**63), st.floats(), st.booleans(),
    st.none(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.integers(10, 3000).map(lambda n: json.loads("[" * n + "]" * n) if n < 900 else "[" * n)))


def mutated(draw, doc):
    """``doc`` with one change where its structure has a value: a value replaced, a key or an
    element removed, or a key added, at a depth drawn along the document's own keys."""
    path, node = [], doc
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    op = draw(st.sampled_from(["replace", "remove", "add"]))
    if not path and op != "add" or not isinstance(node, (dict, list)):
        if not path:
            return draw(VALUES)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if op == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(VALUES)
        return doc
    if isinstance(node, dict):
        if op == "add" or not node:
            node[draw(st.sampled_from(HOSTILE + ["state", "command", "dir", "file"]))] = draw(VALUES)
        elif op == "remove":
            del node[draw(st.sampled_from(sorted(node)))]
        else:
            node[draw(st.sampled_from(sorted(node)))] = draw(VALUES)
    elif op == "add" or not node:
        node.append(draw(VALUES))
    elif op == "remove":
        node.pop(draw(st.integers(0, len(node) - 1)))
    else:
        node[draw(st.integers(0, len(node) - 1))] = draw(VALUES)
    return doc


def answers(*argv) -> int:
    """The exit status of ``labkit ARGV`` run in this process (its output swallowed)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli(list(argv))


@contextlib.contextmanager
def room():
    """A fresh folder holding a workspace and an ``outside`` folder nothing may write into."""
    root = Path(tempfile.mkdtemp(prefix="labkit-fuzz-"))
    old = os.environ.get("LABKIT_HOME")
    os.environ["LABKIT_HOME"] = str(root / "workspace")
    (root / "outside").mkdir()
    try:
        yield root
    finally:
        os.environ["LABKIT_HOME"] = old
        shutil.rmtree(root, ignore_errors=True)


def still_answers(root: Path) -> None:
    """Every list and status answers without a defect, and nothing is outside the workspace."""
    for argv in (("data", "list"), ("train", "list"), ("convert", "list"), ("model", "list"), ("service", "list"),
                 ("status",)):
        assert answers(*argv) == 0, argv
    assert not any((root / "outside").iterdir())
    assert {p.name for p in root.iterdir()} <= {"hostile.tar.gz", "outside", "workspace"}


@pytest.fixture(scope="module")
def pack_files(instructor):
    _, out = instructor
    return {name: members(out / f"{name}.tar.gz") for name in ("job", "conversion", "model", "flowers")}


@FUZZ
@given(st.data())
def test_a_mutated_pack_is_installed_whole_or_refused_leaving_nothing(pack_files, data):
    files = dict(pack_files[data.draw(st.sampled_from(sorted(pack_files)), label="pack")])
    records = sorted(n for n in files if n.endswith((".json", ".jsonl")))
    target = data.draw(st.sampled_from(records), label="file")
    manifest = json.loads(files.pop("manifest.json"))
    if target == "manifest.json":
        manifest = mutated(data.draw, manifest)  # its checksums stay those of the files
    else:
        if target.endswith(".jsonl"):
            lines = files[target].decode().splitlines()
            i = data.draw(st.integers(0, len(lines) - 1), label="line")
            lines[i] = json.dumps(mutated(data.draw, json.loads(lines[i])), ensure_ascii=False)
            files[target] = ("\n".join(lines) + "\n").encode()
        else:
            files[target] = json.dumps(mutated(data.draw, json.loads(files[target])), ensure_ascii=False).encode()
        resign(manifest, files)
    with room() as root:
        # the manifest may have become any JSON value: written as it is, first
        archive = write_archive(root / "hostile.tar.gz", {"manifest.json": json.dumps(manifest).encode(), **files})
        before = listing(root)
        try:
            packs.unpack(archive, log=lambda *_: None)
        except LabkitError:
            assert listing(root) == before
        still_answers(root)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A ModelArts manifest and its images (labkit's colour classes)."""
    return colour_manifest(tmp_path_factory.mktemp("export") / "export", per_class=2, size=16)


@FUZZ
@given(st.data())
def test_a_mutated_manifest_imports_what_is_safe_or_is_refused(export, data):
    lines = export.read_text(encoding="utf-8").splitlines()
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    lines[i] = json.dumps(mutated(data.draw, json.loads(lines[i])), ensure_ascii=False)
    hostile = export.with_name("hostile.manifest")
    hostile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with room() as root:
        try:
            rec = datasets.import_dataset(hostile, "mf")
            assert 0 < rec["count"] <= len(lines)
        except LabkitError:
            assert not (root / "workspace" / "datasets" / "mf").exists()
        still_answers(root)


@pytest.fixture(scope="module")
def installed(instructor, tmp_path_factory):
    """A workspace holding the instructor's conversion (with its job and dataset) and model,
    unpacked; and its records."""
    _, out = instructor
    home = tmp_path_factory.mktemp("installed") / "workspace"
    with labkit_home(home):
        for name in ("conversion", "model"):
            packs.unpack(out / f"{name}.tar.gz", log=lambda *_: None)
    return home, {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*")
                  if p.is_file() and p.suffix in (".json", ".jsonl")}


@FUZZ
@given(st.data())
def test_a_record_damaged_in_the_workspace_is_skipped_or_refused_by_name(installed, data):
    original, records = installed
    target = data.draw(st.sampled_from(sorted(records)), label="record")
    with room() as root:
        home = root / "workspace"
        shutil.copytree(original, home)
        if target.endswith(".jsonl"):
            lines = records[target].decode().splitlines()
            i = data.draw(st.integers(0, len(lines) - 1), label="line")
            lines[i] = json.dumps(mutated(data.draw, json.loads(lines[i])), ensure_ascii=False)
            (home / target).write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            (home / target).write_text(json.dumps(mutated(data.draw, json.loads(records[target]))), encoding="utf-8")
        still_answers(root)
        for argv in (("train", "show", "mc"), ("convert", "show", "mc-fp32"), ("model", "show", "crowd"),
                     ("data", "show", "cr"), ("data", "show", "cr@V001"),
                     ("train", "resume", "mc"), ("gc", "--dry-run"), ("data", "publish", "cr")):
            assert answers(*argv) in (0, 1), argv
