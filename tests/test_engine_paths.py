"""A learner's folder name never matters: where an engine refuses a path, labkit writes through
one it accepts, or refuses before any work with the fix."""
import os
import tempfile
from pathlib import Path

import pytest

from conftest import LEARNER_FOLDER
from labkit import doctor, engine_paths
from labkit.errors import LabkitError


def test_the_suite_works_in_folders_named_as_learners_name_theirs(tmp_path):
    """Every other test's workspace, runs and files lie under such a folder: this one keeps it so."""
    for folder in (tmp_path, Path(os.environ["LABKIT_HOME"])):
        assert LEARNER_FOLDER in str(folder)
    assert " " in LEARNER_FOLDER and "张三" in LEARNER_FOLDER and "Zoë" in LEARNER_FOLDER
    assert not engine_paths.accepts("mindspore", tmp_path)   # so MindSpore's exports go through a folder it accepts


@pytest.mark.parametrize("path, mindspore", [("/tmp/labkit-x1/jobs/V001/onnx", True), ("C:\\Users\\ab_c.d", True),
                                             ("/home/张三/ws", False), ("/home/ann lee/ws", False),
                                             ("/home/zoë/ws", False)])
def test_the_engines_rules_for_paths(path, mindspore):
    assert engine_paths.accepts("mindspore", path) is mindspore
    assert engine_paths.accepts("pytorch", path) and engine_paths.accepts("onnxruntime", path)


def test_an_engine_writes_through_a_folder_it_accepts_and_the_files_land_in_place(tmp_path):
    target = tmp_path / "实验 空间" / "onnx"
    with engine_paths.writing_through("mindspore", target) as folder:
        assert folder != target and engine_paths.accepts("mindspore", folder)
        (folder / "raw.onnx").write_bytes(b"model")
        (folder / "sub").mkdir()
        (folder / "sub" / "weights.bin").write_bytes(b"w")
    assert (target / "raw.onnx").read_bytes() == b"model" and (target / "sub" / "weights.bin").read_bytes() == b"w"
    assert not folder.exists()   # the temporary folder is gone


def test_a_failed_write_leaves_nothing_in_place_nor_behind(tmp_path):
    target = tmp_path / "实验 空间" / "onnx"
    with pytest.raises(ValueError), engine_paths.writing_through("mindspore", target) as folder:
        (folder / "half.onnx").write_bytes(b"half")
        raise ValueError("the exporter failed")
    assert not target.exists() and not folder.exists()


def test_an_accepted_path_is_written_directly(tmp_path, monkeypatch):
    plain = Path(tempfile.mkdtemp(prefix="labkit-plain-"))
    try:
        with engine_paths.writing_through("mindspore", plain / "onnx") as folder:
            assert folder == plain / "onnx" and folder.is_dir()
        with engine_paths.writing_through("pytorch", tmp_path / "模型") as folder:
            assert folder == tmp_path / "模型"
    finally:
        os.rmdir(plain / "onnx")
        os.rmdir(plain)


@pytest.fixture
def learners_tmpdir(tmp_path, monkeypatch):
    """TMPDIR itself under the learner's folder, as on a machine whose temporary folder is in their home."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_refused_temporary_folder_falls_back_to_the_systems(learners_tmpdir):
    root = engine_paths.temp_root("mindspore")
    assert str(root) in engine_paths.FALLBACK_TEMP_ROOTS
    target = learners_tmpdir / "导出"
    with engine_paths.writing_through("mindspore", target) as folder:
        assert folder.parent == root
        (folder / "model.mindir").write_bytes(b"m")
    assert (target / "model.mindir").exists()


def test_with_no_folder_the_engine_accepts_it_refuses_before_any_work_with_the_fix(learners_tmpdir, monkeypatch):
    monkeypatch.setattr(engine_paths, "FALLBACK_TEMP_ROOTS", (str(learners_tmpdir / "另一个"),))
    target = learners_tmpdir / "导出"
    with pytest.raises(LabkitError) as err, engine_paths.writing_through("mindspore", target):
        pytest.fail("the block must not run")
    assert "mindspore writes only under a path of ASCII letters" in err.value.message
    assert "TMPDIR" in err.value.hint and not target.exists()
    engine_paths.check("mindspore", Path("/tmp/plain"))   # a path it accepts needs no temporary folder
    engine_paths.check("pytorch", target)


def test_doctor_says_how_each_engine_takes_the_workspaces_path(learners_tmpdir, monkeypatch):
    assert doctor.path_check("mindspore", Path("/srv/ws")).detail == "mindspore writes at the workspace's path"
    check = doctor.path_check("mindspore", learners_tmpdir)
    assert check.ok and "labkit exports through /" in check.detail
    monkeypatch.setattr(engine_paths, "FALLBACK_TEMP_ROOTS", ())
    check = doctor.path_check("mindspore", learners_tmpdir)
    assert not check.ok and "TMPDIR" in check.fix
