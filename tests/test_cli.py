import json
import subprocess
import sys

import pytest

from helpers import labkit_cli
from labkit import cpu


def test_data_verbs_end_to_end(ws, tmp_path):
    env = {"LABKIT_HOME": str(ws)}
    made = labkit_cli("data", "make", "flowers", "--name", "fl", "--count", "25", "--size", "32", env=env)
    assert "25 flowers images of 32px made" in made.stdout
    again = labkit_cli("data", "make", "flowers", "--name", "fl", "--count", "25", "--size", "32", env=env)
    assert "already there" in again.stdout
    pub = labkit_cli("data", "publish", "fl", "--train-ratio", "0.8", "--seed", "3", env=env)
    assert pub.stdout.strip() == "V001"  # scripts read the version from stdout
    listed = json.loads(labkit_cli("data", "list", "--json", env=env).stdout)
    assert [(d["name"], d["versions"]) for d in listed] == [("fl", ["V001"])]
    shown = json.loads(labkit_cli("data", "show", "fl@V001", "--json", env=env).stdout)
    assert shown["seed"] == 3 and shown["counts"]["val"]["images"] == 5
    human = labkit_cli("data", "show", "fl@V001", env=env).stdout
    assert "checksum " + shown["checksum"] in human
    assert "fl" in labkit_cli("data", "list", env=env).stdout
    made = json.loads(labkit_cli("data", "make", "food", "--name", "fo", "--count", "10", "--size", "32", "--json",
                                 env=env).stdout)
    assert made["name"] == "fo" and made["count"] == 10
    second = json.loads(labkit_cli("data", "publish", "fl", "--seed", "3", "--json", env=env).stdout)
    assert second["version"] == "V002" and second["checksum"] == shown["checksum"]  # the same split


def test_import_verb_reports_skips(ws, tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "src" / "a" / "ok.png")
    (tmp_path / "src" / "a" / "bad.png").write_bytes(b"nope")
    out = labkit_cli("data", "import", tmp_path / "src", "--name", "imp", env={"LABKIT_HOME": str(ws)}).stdout
    assert "imported 1 images" in out and "skipped a/bad.png" in out


@pytest.mark.parametrize("args,message,fix", [
    (["data", "publish", "missing"], "no dataset named 'missing'", "labkit data make"),
    (["data", "show", "x@v1"], "invalid version", "V001"),
    (["data", "make", "flowers", "--count", "0"], "--count must be at least 1", "one image"),
    (["data", "import", "/nonexistent/path", "--name", "x"], "does not exist", "image folder"),
    (["run", "no-such-lab"], "no lab named", "labkit labs list"),
])
def test_errors_exit_non_zero_with_a_fix(ws, args, message, fix):
    proc = labkit_cli(*args, env={"LABKIT_HOME": str(ws)}, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and "fix:" in proc.stderr and fix in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_every_verb_has_help():
    from labkit.cli import build_parser

    parser = build_parser()
    verbs = [[]]
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        verbs.append([name])
        nested = [a for a in p._actions if a.dest == "verb"]
        verbs += [[name, v] for v in (nested[0].choices if nested else [])]
    assert ["data", "publish"] in verbs and ["doctor"] in verbs
    for verb in verbs:
        proc = subprocess.run([sys.executable, "-m", "labkit.cli", *verb, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: labkit" in proc.stdout, verb


@pytest.mark.slow
def test_doctor_reports_engines_and_exits_zero_when_ready(ws):
    proc = labkit_cli("doctor", env={"LABKIT_HOME": str(ws)}, check=False)
    assert proc.returncode == 0, proc.stdout
    for name in ("python", "cpu", "pytorch", "mindspore", "onnxruntime", "workspace", "disk", "port"):
        assert f"] {name}" in proc.stdout
    assert "labkit is ready." in proc.stdout
    assert "] engine paths" in proc.stdout and "labkit exports through" in proc.stdout   # ws: a learner's folder
    assert cpu.describe()["model"] in proc.stdout and "INT8" in proc.stdout
    checks = json.loads(labkit_cli("doctor", "--json", env={"LABKIT_HOME": str(ws)}).stdout)
    assert {"python", "pytorch", "mindspore", "onnxruntime"} <= {c["name"] for c in checks if c["ok"]}


@pytest.mark.parametrize("flags, named, outlook, precisions", [
    ("fpu avx2 fma", ["AVX2"], "no VNNI", "FP32 only"),
    ("avx2 avx512f avx512_vnni", ["AVX2", "AVX-512", "AVX-512 VNNI"], "VNNI dot products", "FP32 only"),
    ("avx2 avx512f avx512_vnni avx512_bf16", ["AVX2", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16"], "VNNI dot products",
     "FP32 and BF16 (AVX-512 BF16)"),   # AMD Zen 4 and 5
    ("avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile",
     ["AVX2", "AVX-512", "AVX-512 VNNI", "AMX", "AVX-512 BF16", "AMX-BF16"], "AMX", "BF16 (AVX-512 BF16, AMX-BF16)"),
    ("sse4_2", [], "no AVX2", "FP32 only")])
def test_the_cpu_is_named_with_its_vector_features(tmp_path, monkeypatch, flags, named, outlook, precisions):
    fake = tmp_path / "cpuinfo"
    fake.write_text(f"vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
                    f"model name\t: Intel(R) Xeon(R) Platinum 8480C\nflags\t\t: {flags}\n\n"
                    f"vendor_id\t: GenuineIntel\nflags\t\t: {flags}\n")
    monkeypatch.setattr(cpu, "CPUINFO", fake)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    info = cpu.describe()
    assert info["features"] == named and info["vendor"] == "GenuineIntel" and info["family"] == "family 6 model 143"
    assert info["settings"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert outlook in cpu.int8_outlook(named)
    assert precisions in cpu.native_precisions(named)
    assert cpu.summary(info).startswith("Intel(R) Xeon(R) Platinum 8480C (GenuineIntel family 6 model 143")


def test_doctor_fails_with_a_fix_when_the_workspace_is_unusable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = labkit_cli("doctor", env={"LABKIT_HOME": str(blocker / "ws")}, check=False)
    assert proc.returncode == 1
    assert "[FAIL] workspace" in proc.stdout and "fix: set LABKIT_HOME" in proc.stdout


def test_a_card_names_its_published_weights_and_the_recipe_that_uses_them(ws):
    card = json.loads(labkit_cli("algo", "show", "GhostNet", "--json").stdout)
    weights = card["weights"]["imagenet"]
    assert weights["url"].startswith("https://") and len(weights["sha256"]) == 64 and "Apache-2.0" in weights["licence"]
    assert card["transfer"]["features"]["train_layers"] == "head" and card["transfer"]["fine_tune"]["train_layers"] == "last"
    shown = labkit_cli("algo", "show", "ResNet50").stdout
    assert "--hp pretrained=imagenet: torchvision ResNet-50" in shown and "fine_tune: train_layers=last" in shown
    assert json.loads(labkit_cli("algo", "show", "MCNN", "--json").stdout)["weights"] == {}
