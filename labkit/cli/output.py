"""What every verb shares: a table for people, the record as JSON for scripts (``--json``),
and progress on stderr, so that stdout holds only the answer."""
from __future__ import annotations

import argparse
import json
import sys

from labkit.boundary import printable
from labkit.errors import LabkitError
from labkit.workspace import size_text


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit(args: argparse.Namespace, record, human: str) -> None:
    """Print the record as JSON with ``--json``, else the human text, whose names may come from
    outside (an archive's entries, a manifest's labels): control characters are escaped."""
    print(json.dumps(record, indent=2, ensure_ascii=False, default=str) if args.json
          else printable(human, limit=10**9, keep="\n\t"))


def progress(message: str) -> None:
    print(printable(message, limit=10**9, keep="\n\t"), file=sys.stderr)


def on_terminal() -> bool:
    """Is progress read by a person? Bars only then: piped to a file, progress stays plain lines."""
    return sys.stderr.isatty()


def save_figure(figure, path: str) -> None:
    """``--plot FILE``: the figure into FILE, its format from the extension; a clear error if it cannot be."""
    try:
        figure.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise LabkitError(f"cannot write the figure to {path}: {exc}",
                          "give a file in an existing folder, ending in .png, .svg or .pdf") from None


def verb(group, name: str, help: str, func, ref: tuple[str, str] | None = None) -> argparse.ArgumentParser:
    """A verb that makes or shows a record: an optional positional ``ref`` (dest, metavar) and
    ``--json``; the caller adds its own options to the parser returned."""
    p = group.add_parser(name, help=help)
    if ref:
        p.add_argument(ref[0], metavar=ref[1])
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=func)
    return p


def verbs(sub, name: str, help: str):
    """A command group (``labkit data ...``): its sub-parsers, one per verb."""
    return sub.add_parser(name, help=help).add_subparsers(dest="verb", required=True, metavar="VERB")


def delete_verb(group, kind: str, metavar: str) -> None:
    """``delete REF [--force]``: the same verb in every group that keeps versions (cleanup.delete)."""
    def delete(args) -> int:
        from labkit import cleanup

        rec = cleanup.delete(kind, args.ref, force=args.force, log=lambda _: None)
        emit(args, rec, f"deleted {kind} {args.ref} ({', '.join(rec['deleted']) or 'no versions'}): "
                        f"{size_text(rec['freed_bytes'])} freed")
        return 0

    p = verb(group, "delete", f"delete a {kind}: one version, or the name with all its versions", delete,
             ("ref", metavar))
    p.add_argument("--force", action="store_true",
                   help="delete it even though a later artifact names it (never what is running)")
