"""The kinds of artifact a workspace holds, one row each: the folder it lives in, how its
versions are spelled, which field of its record names it and which schema the record follows,
the state of a finished one, and the command group that handles it (``labkit train ...``).
``records.Kind`` (the runs), ``packs``, ``cleanup`` and ``status`` read this table.

Importing it is cheap: a schema is named here, and imported (with pydantic) only when asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit import workspace
from labkit.workspace import SEMVER, SEQUENCE, Numbering


@dataclass(frozen=True)
class Artifact:
    kind: str  # how commands, packs and messages name it (``--kind job``)
    area: str  # its folder in the workspace
    numbering: Numbering | None  # how its versions are spelled; None: it is not versioned
    key: str  # the field of its record that holds its name
    schema_name: str  # its record's schema in ``labkit.schemas``
    finished: str | None  # the state of a finished one (what can be packed); None: it never finishes
    cli: str  # its command group: ``labkit CLI ...``
    runs: bool  # a process owns it while it runs, and ``labkit CLI stop NAME`` ends that
    single: bool = False  # one per workspace: its stop command takes no name

    @property
    def schema(self):
        from labkit import schemas

        return getattr(schemas, self.schema_name)

    @property
    def versioned(self) -> bool:
        return self.numbering is not None

    def root(self) -> Path:
        return workspace.area(self.area)

    def stop_command(self, ref: str) -> str:
        """The command that stops a running one (the CLI's spelling is a contract)."""
        if not self.runs:
            raise ValueError(f"a {self.kind} does not run")
        return f"labkit {self.cli} stop" + ("" if self.single else f" {ref}")


DATASET = Artifact("dataset", "datasets", SEQUENCE, "name", "Dataset", None, "data", runs=False)
JOB = Artifact("job", "jobs", SEQUENCE, "job", "Job", "COMPLETED", "train", runs=True)
CONVERSION = Artifact("conversion", "conversions", SEQUENCE, "task", "Conversion", "COMPLETED", "convert", runs=True)
MODEL = Artifact("model", "models", SEMVER, "model", "Model", "NORMAL", "model", runs=False)
SERVICE = Artifact("service", "services", None, "service", "Service", None, "service", runs=True)
TENSORBOARD = Artifact("tensorboard", "tensorboard", None, "name", "Board", None, "tensorboard", runs=True, single=True)

BY_KIND = {a.kind: a for a in (DATASET, JOB, CONVERSION, MODEL, SERVICE, TENSORBOARD)}
VERSIONED = tuple(kind for kind, a in BY_KIND.items() if a.versioned)  # what packs carry and cleanup deletes
AREAS = tuple(a.area for a in BY_KIND.values())
