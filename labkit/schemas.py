"""What each record may hold: one pydantic schema per record kind, checked whenever a record
comes from outside (a pack, an import) and whenever one is read back from the workspace.

A record that fails is refused naming the file and the field. Bounds hold for any JSON
labkit reads: at most ``MAX_RECORD_BYTES``, ``MAX_DEPTH`` levels of nesting, strings of at
most ``MAX_TEXT`` characters in the fields that have a meaning. Unknown extra fields are kept
(a newer labkit may add some), within those bounds.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from labkit import boundary, workspace
from labkit.errors import LabkitError
from labkit.tasks import CLASSIFICATION, COUNTING

MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
MAX_DEPTH = 20
MAX_TEXT = 4096
MAX_CLASSES = 10_000

Task = Literal[CLASSIFICATION, COUNTING]
Engine = Literal["pytorch", "mindspore"]
Split = Literal["stratified", "source"]  # a version's split: seeded by class, or the source's own
Layout = Literal["NCHW", "NHWC"]
OutputType = Literal["fp32", "fp16"]
Name = Annotated[str, StringConstraints(pattern=workspace.NAME_RE.pattern)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, le=10**9)]
Number = int | float
Scalar = Annotated[str, StringConstraints(max_length=MAX_TEXT)] | bool | int | float | None


def _ref(numbering: workspace.Numbering):
    def check(value: str) -> str:
        name, at, version = value.partition("@")
        if not (workspace.NAME_RE.match(name) and at and numbering.pattern.match(version)):
            raise ValueError(f"not NAME@VERSION (versions are {numbering.spelling})")
        return value
    return check


def _relative(value: str) -> str:
    why = boundary.problem(value)
    if why:
        raise ValueError(f"unsafe path: {why}")
    return value


def is_label(value) -> bool:
    """A class name, from a folder, a manifest or a record: 1-64 printable characters, no
    surrounding spaces, not hidden; ``/`` may separate a category and a name (seed 004's
    ``美食/凉皮``), but no part may be empty, ``.`` or ``..``, and no ``\\``."""
    return (isinstance(value, str) and 0 < len(value) <= 64 and value == value.strip() and not value.startswith(".")
            and "\\" not in value and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value)
            and not {"", ".", ".."} & set(value.split("/")))


def _label(value: str) -> str:
    if not is_label(value):
        raise ValueError("not a class name (1-64 printable characters, no '\\', no empty, '.' or '..' part)")
    return value


Ref = Annotated[str, AfterValidator(_ref(workspace.SEQUENCE))]
ModelRef = Annotated[str, AfterValidator(_ref(workspace.SEMVER))]
RelPath = Annotated[str, AfterValidator(_relative)]
Label = Annotated[str, AfterValidator(_label)]
Timestamps = Annotated[dict[Annotated[str, StringConstraints(max_length=32)], Text], Field(max_length=16)]
Metrics = Annotated[dict[Text, Number], Field(max_length=256)]


class Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


# --- datasets ------------------------------------------------------------------------------

ClassCounts = Annotated[dict[Label, Count], Field(max_length=MAX_CLASSES)]


class Heads(Record):
    total: Count
    min: Count
    max: Count


class Dataset(Record):
    name: Name
    task: Task
    classes: Annotated[list[Label], Field(max_length=MAX_CLASSES)]
    count: Count
    source: dict
    class_counts: ClassCounts = {}
    heads: Heads | None = None


class Item(Record):
    """One line of ``items.jsonl``: an image of the dataset (and its ground truth)."""
    file: RelPath
    label: Label | None = None
    count: Count | None = None
    ground_truth: RelPath | None = None
    usage: Literal["train", "val"] | None = None


ITEM_FIELDS = {CLASSIFICATION: ("label",), COUNTING: ("count", "ground_truth")}


def check_items(items: list[dict], task: str, where: str) -> list[dict]:
    """``items`` if each has what an item of ``task`` needs (a label; a count and a ground truth)."""
    for n, item in enumerate(items, 1):
        missing = [k for k in ITEM_FIELDS[task] if item.get(k) is None]
        if missing:
            raise LabkitError(f"{where}, item {n} is refused: an item of a {task} dataset needs "
                              f"{' and '.join(missing)}", "restore the file, or import the dataset again")
    return items


class SplitCounts(Record):
    images: Count
    per_class: ClassCounts | None = None
    heads: Count | None = None


class Version(Record):
    dataset: Name
    task: Task
    classes: Annotated[list[Label], Field(max_length=MAX_CLASSES)]
    checksum: Sha256
    split: Split
    train_ratio: Annotated[float, Field(gt=0, lt=1)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**63)] | None = None
    counts: dict[Literal["train", "val"], SplitCounts]

    @model_validator(mode="after")
    def stratified_has_its_ratio_and_seed(self):
        if self.split == "stratified" and (self.train_ratio is None or self.seed is None):
            raise ValueError("a stratified split records its train_ratio and seed")
        if set(self.counts) != {"train", "val"}:
            raise ValueError("counts has the train and the val side")
        return self


class Annotation(Record):
    type: Text
    name: Label | None = None
    count: Count | None = None
    ground_truth: RelPath | None = None
    density_map: RelPath | None = None


class SplitLine(Record):
    """One line of a version's ``train.jsonl`` / ``val.jsonl`` (a ModelArts manifest line)."""
    source: RelPath
    sha256: Sha256
    annotation: Annotated[list[Annotation], Field(min_length=1, max_length=1)]


# --- runs ----------------------------------------------------------------------------------

class World(Record):
    size: Annotated[int, Field(ge=1, le=4096)]
    nnodes: Annotated[int, Field(ge=1, le=64)]
    node_rank: Annotated[int, Field(ge=0, le=63)]
    master_addr: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:_-]{1,253}$")] | None = None
    master_port: Annotated[int, Field(ge=1, le=65535)] | None = None

    @model_validator(mode="after")
    def several_machines_have_a_master(self):
        if self.nnodes > 1 and (self.master_addr is None or self.master_port is None):
            raise ValueError("a job over several machines records its master's address and port")
        return self


class Run(Record):
    """What every run's record holds: when it reached each state, and the process that owns it."""
    timestamps: Timestamps
    pid: Annotated[int, Field(ge=1, le=2**22)] | None = None
    pid_started: Number | None = None  # the kernel's start tick: without it, the pid is not labkit's


class Job(Run):
    job: Name
    algorithm: Name
    engine: Engine
    dataset: Ref
    hyper: Annotated[dict[Name, Scalar], Field(max_length=256)]
    device: Literal["cpu", "gpu", "ascend"]
    device_num: Annotated[int, Field(ge=1, le=64)]
    world: World
    state: Literal["CREATING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"]
    metrics: Metrics = {}
    data_url: Text | None = None
    train_url: Text | None = None
    peak_memory_mb: Number = None  # absent until the job ends, then a number
    cpu_seconds: Number = None
    exit_code: int = None


class Evaluation(Record):
    """A job's ``eval.json``: its final metrics, and a classifier's square confusion matrix."""
    confusion: Annotated[list[Annotated[list[Count], Field(max_length=MAX_CLASSES)]], Field(max_length=MAX_CLASSES)] = []

    @model_validator(mode="after")
    def square(self):
        if any(len(row) != len(self.confusion) for row in self.confusion):
            raise ValueError("the confusion matrix is square")
        return self


class ModelInfo(Record):
    task: Task
    engine: Engine
    image_size: Annotated[int, Field(ge=8, le=4096)]
    channels: Literal[1, 3]
    labels: Annotated[list[Label], Field(max_length=MAX_CLASSES)] = []


class ConversionOptions(Record):
    template: Name
    precision: Name
    size: Annotated[int, Field(ge=8, le=4096)]
    batch: Annotated[int, Field(ge=1, le=4096)] | None = None
    input_format: Layout
    output_nodes: Annotated[list[Text], Field(max_length=64)] = []
    output_type: OutputType = "fp32"
    preprocess: Text | None = None


class Conversion(Run):
    task: Name
    job: Ref
    engine: Engine
    model_info: ModelInfo
    options: ConversionOptions
    state: Literal["CREATING", "RUNNING", "COMPLETED", "FAILED", "STOPPED"]
    job_run: Text | None = None
    data_url: Text | None = None


class ParityRow(Record):
    """One model's line of a conversion's parity report; a measure is absent or a number."""
    model: Text
    size_mb: Number
    throughput: Number
    accuracy: Number = None
    mae: Number = None
    max_abs_diff: Number = None
    latency_ms: Number = None


class Report(Record):
    """A conversion's ``report.json``."""
    models: Annotated[list[ParityRow], Field(min_length=1, max_length=16)]


class ImportedConfig(Record):
    """A ModelArts ``config.json`` beside a model imported from a directory: what labkit keeps of it."""
    model_algorithm: Task | None = None
    metrics: Metrics = {}


class ModelSource(Record):
    kind: Literal["job", "conversion", "directory"]
    ref: Text


class Model(Record):
    model: Name
    state: Literal["NORMAL", "FAILED"]
    source: ModelSource
    timestamps: Timestamps
    metrics: Metrics = {}


class ServingInput(Record):
    name: Text
    datatype: Literal["UINT8", "FP32", "FP16"]
    layout: Layout
    channels: Literal[1, 3]
    size: Annotated[int, Field(ge=1, le=4096)]


class Serving(Record):
    task: Task
    input: ServingInput


class Service(Run):
    """A service's record: ``service start`` deploys again from these options, checked again."""
    service: Name
    model: ModelRef
    state: Literal["DEPLOYING", "RUNNING", "STOPPED", "FAILED"]
    instances: Annotated[int, Field(ge=1, le=16)]
    host: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:_-]{1,253}$")]
    port: Annotated[int, Field(ge=0, le=65535)]
    auto_stop: Annotated[Number, Field(gt=0)] | None = None
    access: Literal["owner", "any"] = "any"   # owner: on a shared server, only the user who deployed it
    max_batch: Annotated[int, Field(ge=1, le=4096)]
    max_wait: Annotated[Number, Field(ge=0, le=60)]
    max_body: Annotated[int, Field(ge=1, le=2**34)]
    deadline: Annotated[Number, Field(gt=0, le=86400)]
    url: Text | None = None


class Board(Run):
    """TensorBoard's record (``labkit tensorboard``): the jobs it shows, none for all of them."""
    name: Name
    state: Literal["STARTING", "RUNNING", "STOPPED", "FAILED"]
    jobs: Annotated[list[Ref], Field(max_length=1000)]
    host: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:_-]{1,253}$")]
    url: Text | None = None
    browser_url: Text | None = None


# --- the catalog ---------------------------------------------------------------------------

class HyperSpec(Record):
    name: Name
    type: Literal["int", "float", "str", "bool"]
    default: Scalar = None


class Algorithm(Record):
    """A custom algorithm's ``algorithm.json`` (``labkit algo create``)."""
    name: Name
    engine: Engine
    task: Task
    boot_file: RelPath
    source: Text
    hyper: Annotated[list[HyperSpec], Field(max_length=256)]


# --- packs --------------------------------------------------------------------------------

class PackFile(Record):
    size: Annotated[int, Field(ge=0, le=2**40)]
    sha256: Sha256


class PackPart(Record):
    kind: Literal["dataset", "job", "conversion", "model"]
    ref: Text
    dir: Text
    engine: Engine | None = None
    files: Annotated[dict[RelPath, PackFile], Field(max_length=100_000)]


class Pack(Record):
    """A pack's ``manifest.json``."""
    format: Text
    kind: Literal["dataset", "job", "conversion", "model"]
    ref: Text
    home: Text
    versions: Annotated[dict[Text, Text | None], Field(max_length=64)]
    parts: Annotated[list[PackPart], Field(min_length=1, max_length=8)]


# --- reading -------------------------------------------------------------------------------

def depth(value, limit: int = MAX_DEPTH) -> int:
    """How deeply ``value`` nests lists and objects, counted up to ``limit + 1`` (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def parse(text: str | bytes, where: str):
    """JSON ``text`` within the bounds; a ``LabkitError`` naming ``where`` otherwise."""
    if len(text) > MAX_RECORD_BYTES:
        raise LabkitError(f"{where} is refused: over {MAX_RECORD_BYTES // 2**20} MB", "a labkit record is far smaller")
    try:
        value = json.loads(text)
    except RecursionError:
        raise LabkitError(f"{where} is refused: nested too deeply", "a labkit record nests a few levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabkitError(f"{where} is damaged: not JSON ({exc})", "restore it, or remove what holds it") from None
    if depth(value) > MAX_DEPTH:
        raise LabkitError(f"{where} is refused: nested more than {MAX_DEPTH} levels", "a labkit record nests a few levels")
    return value


def problem(schema: type[Record], value) -> str | None:
    """Which field of ``value`` breaks ``schema``, and how; None if it is a valid record."""
    try:
        schema.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"])) or "the record"
        why = first["msg"].removeprefix("Value error, ")  # pydantic's words for a validator's ValueError
        return f"field {boundary.printable(field)!r}: {boundary.printable(why)}"
    return None


def check(schema: type[Record], value, where: str) -> dict:
    """``value`` if it is a valid ``schema`` record; a ``LabkitError`` naming the field otherwise."""
    why = problem(schema, value)
    if why:
        raise LabkitError(f"{where} is refused: {why}", f"a {schema.__name__.lower()} record as labkit writes it; "
                          "restore the file or remove what holds it")
    return value


def read(path: Path, schema: type[Record] | None = None):
    """The JSON file ``path`` (a ``schema`` record when given), bounded and checked."""
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_RECORD_BYTES + 1)
    except IsADirectoryError:
        raise LabkitError(f"{path} is a folder, not a record", "remove it") from None
    value = parse(text, str(path))
    return check(schema, value, str(path)) if schema else value


def read_lines(path: Path, schema: type[Record]) -> list[dict]:
    """The JSON lines of ``path``, each a valid ``schema`` record."""
    out = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            if len(line) > MAX_LINE_BYTES:
                raise LabkitError(f"{where} is refused: over {MAX_LINE_BYTES // 1024} KB", "one image per short line")
            out.append(check(schema, parse(line, where), where))
    return out
