"""``labkit pack`` and ``labkit unpack``: an instructor's artifact, handed to a learner as one
verified archive."""
from __future__ import annotations

from labkit.cli.output import emit, progress, verb
from labkit.packs import KINDS


def pack(args) -> int:
    from labkit import packs

    rec = packs.pack(args.ref, args.out, kind=args.kind, log=progress)
    emit(args, rec, rec["path"])
    return 0


def unpack(args) -> int:
    from labkit import packs

    rec = packs.unpack(args.file, log=progress)
    emit(args, rec, f"{rec['kind']} {rec['ref']} is in this workspace now"
                    + ("" if rec["kind"] in ("dataset", "model") else
                       f"; continue with: labkit convert create --job {rec['ref']} ..." if rec["kind"] == "job" else
                       f"; continue with: labkit model import --name NAME --from-conversion {rec['ref']}"))
    return 0


def add(sub) -> None:
    p = verb(sub, "pack", "write a dataset version, a job, a conversion or a model into one verified archive", pack,
             ("ref", "NAME[@VERSION]"))
    p.add_argument("--out", required=True, metavar="FILE", help="the archive to write (.tar.gz)")
    p.add_argument("--kind", choices=KINDS, help="what NAME is, when several kinds share the name")
    verb(sub, "unpack", "check an archive made by `labkit pack` and install it into this workspace", unpack,
         ("file", "FILE"))
