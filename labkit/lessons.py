"""The lessons -- the five stage notebooks -- in each language, and keeping their twins in step.

The English notebooks (``notebooks/NN_*.ipynb``) are the one source of the code. A language's
twins (``notebooks/zh-CN/`` ...) hold the same cells in the same order with the same ids: code
cells identical but for the value of the ``LANGUAGE`` parameter, markdown cells translated. Each
translated cell records the sha256 of the English text it translates (cell metadata
``labkit.translates``), so that a change to the English prose shows as a stale translation.

``sync(language)`` rewrites the twins from the English notebooks (``make twins``): code and
parameters are copied, a translation whose English is unchanged is kept, a new or changed one
gets the English text under a ``TODO`` marker. ``drift(language)`` lists what is out of step;
the test suite fails on any.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path

from labkit.errors import LabkitError
from labkit.i18n import LANGUAGES

NOTEBOOKS = Path(os.environ.get("LABKIT_NOTEBOOKS", Path(__file__).resolve().parent.parent / "notebooks"))
ENGLISH = LANGUAGES[0]
TODO = "<!-- TODO translate: the English text below changed or is new -->"
_LANGUAGE_LINE = re.compile(r'^LANGUAGE = "[^"]*"( *)', re.M)


def notebook(name: str, language: str = ENGLISH) -> Path:
    """The lesson notebook ``name`` (e.g. ``01_data_prep.ipynb``) in ``language``."""
    if language not in LANGUAGES:
        raise LabkitError(f"no lessons in {language!r}: the languages are {', '.join(LANGUAGES)}")
    return NOTEBOOKS / name if language == ENGLISH else NOTEBOOKS / language / name


def names() -> list[str]:
    """The stage notebooks' file names, in order."""
    return sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines:
        lines[-1] = lines[-1].rstrip("\n")
    return lines


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _in_language(code: str, language: str) -> str:
    """A code cell as the twin holds it: the LANGUAGE parameter set to ``language``, its comment
    kept in the same column."""
    def swap(m):
        old = m.group(0)
        new = f'LANGUAGE = "{language}"'
        return new.ljust(len(old)) if len(new) < len(old) else new + " "
    return _LANGUAGE_LINE.sub(swap, code)


def twin_of(english: dict, language: str, current: dict | None = None) -> dict:
    """The twin in ``language`` of an English notebook: ``current`` (the twin as it is now)
    lends the translations that still match the English text."""
    kept = {c["id"]: c for c in (current or {}).get("cells", []) if c["cell_type"] == "markdown"}
    twin = copy.deepcopy(english)
    twin["metadata"].setdefault("labkit", {})["language"] = language
    for cell in twin["cells"]:
        text = _text(cell)
        if cell["cell_type"] != "markdown":
            cell["source"] = _lines(_in_language(text, language))
            continue
        old = kept.get(cell["id"])
        if old and old["metadata"].get("labkit", {}).get("translates") == _sha(text) and TODO not in _text(old):
            cell["source"] = old["source"]
        else:
            cell["source"] = _lines(f"{TODO}\n\n{text}")
        cell["metadata"] = {**cell["metadata"], "labkit": {"translates": _sha(text)}}
    return twin


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def sync(language: str) -> list[str]:
    """Rewrite the twins in ``language`` from the English notebooks; return the cells that
    need a translation (``NOTEBOOK#CELL-ID``)."""
    todo = []
    for name in names():
        path = notebook(name, language)
        twin = twin_of(_read(notebook(name)), language, _read(path) if path.exists() else None)
        _write(path, twin)
        todo += [f"{name}#{c['id']}" for c in twin["cells"] if TODO in _text(c)]
    return todo


def drift(language: str) -> list[str]:
    """What is out of step between the English lessons and their twins in ``language``: a
    missing twin, cells added, removed or moved, code that differs, stale or missing translations."""
    problems = []
    for name in names():
        path = notebook(name, language)
        if not path.exists():
            problems.append(f"{name}: no {language} twin")
            continue
        english, twin = _read(notebook(name)), _read(path)
        ids = [(c["id"], c["cell_type"]) for c in english["cells"]]
        if ids != [(c["id"], c["cell_type"]) for c in twin["cells"]]:
            problems.append(f"{name}: the {language} twin's cells are not the English cells in order")
            continue
        for e, t in zip(english["cells"], twin["cells"], strict=True):
            where = f"{name}#{e['id']}"
            if e["cell_type"] != "markdown":
                if _text(t) != _in_language(_text(e), language) or t["metadata"] != e["metadata"]:
                    problems.append(f"{where}: the code differs from the English cell")
            elif TODO in _text(t) or t["metadata"].get("labkit", {}).get("translates") != _sha(_text(e)):
                problems.append(f"{where}: the translation is missing or older than the English text")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m labkit.lessons sync|check [LANGUAGE ...]`` (``make twins``)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    verb, languages = (args[0] if args else "check"), (args[1:] or list(LANGUAGES[1:]))
    failed = False
    for language in languages:
        found = sync(language) if verb == "sync" else drift(language)
        for line in found:
            print(f"{language}: {line}")
        failed |= bool(found)
    return 1 if failed and verb == "check" else 0


if __name__ == "__main__":
    raise SystemExit(main())
