"""The Chinese-speaking learner: figures that draw CJK text with the font labkit ships, figure
words in both languages, and lessons whose Chinese twins stay in step with the English ones."""
import io
import json
import shutil
import string
import warnings

import pandas as pd
import pytest

from labkit import i18n, lessons, plots

CHINESE = ["美食/凉皮", "美食/柿子饼", "美食/灌汤包", "美食/肉夹馍"]  # seed 004's classes


@pytest.fixture
def chinese():
    i18n.use("zh-CN")
    yield
    i18n.use("en")


def draw(fig) -> None:
    """Render ``fig`` to PNG; a glyph missing from every font is an error, not a box."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        fig.savefig(io.BytesIO(), format="png", dpi=40)


def test_a_glyph_missing_from_the_fonts_is_caught():
    # the check itself: matplotlib's own font alone has no CJK glyphs, and the test sees it
    import matplotlib

    fig = plots.class_balance(pd.DataFrame({"count": {c: 3 for c in CHINESE}}))
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        fig.text(0.5, 0.5, "凉皮")
        with pytest.raises(UserWarning, match="missing from font"):
            draw(fig)


def test_every_figure_draws_chinese_labels_and_words(chinese):
    import numpy as np

    scores = [[c, p] for c, p in zip(CHINESE, (0.7, 0.2, 0.06, 0.04), strict=True)]
    report = {"confusion": [[5, 1, 0, 0], [0, 6, 0, 0], [0, 0, 4, 2], [0, 0, 0, 6]], "labels": CHINESE, "accuracy": 0.875}
    rows = [{"epoch": e, "loss": 1.0 / e, "train_acc": 0.2 * e, "val_acc": 0.15 * e} for e in range(1, 5)]
    crowd_rows = [{"epoch": e, "loss": 1.0 / e, "val_mae": 9.0 / e, "val_rmse": 12.0 / e} for e in range(1, 4)]
    counts = {"truth": [10, 20, 30], "predicted": [12, 18, 33], "train_mean_count": 20.0, "mae": 2.3,
              "mean_baseline_mae": 6.7}
    stats = {"stream": "分类", "images": 8, "e2e": {"mean_ms": 9.0, "p99_ms": 14.0},
             "plugins": {"解码": {"mean_ms": 2.0, "p99_ms": 3.0}, "推理": {"mean_ms": 6.0, "p99_ms": 9.0}}}
    models = [{"model": name, "size_mb": 90.0 / (i + 1), "latency_ms": 8.0, "throughput": 300.0}
              for i, name in enumerate(("PyTorch", "ONNX", "ORT INT8"))]
    image = np.full((32, 32, 3), 200, np.uint8)
    figures = [
        plots.class_balance(pd.DataFrame({"train": {c: 8 for c in CHINESE}, "val": {c: 2 for c in CHINESE}}),
                            title="美食：训练 / 验证"),
        plots.learning_curves(rows, title="作业"), plots.learning_curves(crowd_rows),
        plots.confusion_matrix(report), plots.counts_scatter(counts), plots.conversion_chart(models),
        plots.prediction(image, {"predicted_label": CHINESE[0], "scores": scores}, title="服务"),
        plots.prediction(image, {"count": 3.2, "density_map": np.zeros((8, 8)).tolist()}),
        plots.pipeline_timings(stats),
    ]
    for fig in figures:
        draw(fig)
    # the figure's own words are Chinese
    assert plots.confusion_matrix(report).axes[0].get_xlabel() == "预测"
    assert plots.learning_curves(rows).axes[0].get_xlabel() == "轮次"


def test_figures_of_a_dataset_with_the_tutorials_class_names(ws, chinese):
    from labkit import data

    data.make("food", name="fz", count=16, size=32, class_names="tutorial")
    version = data.publish("fz")
    assert data.show("fz")["classes"] == sorted(CHINESE)
    for fig in (plots.sample_grid("fz", per_class=2), plots.dataset_balance("fz"), plots.split_balance(version)):
        draw(fig)
    data.make("crowd", name="cz", count=4, size=32)
    draw(plots.sample_grid("cz", per_class=2))
    draw(plots.count_histogram("cz"))


def test_every_word_exists_in_every_language_with_the_same_fields():
    def fields(template):
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    for key, texts in i18n.WORDS.items():
        assert len(texts) == len(i18n.LANGUAGES) and all(texts), key
        assert len({frozenset(fields(t)) for t in texts}) == 1, f"{key}: the translations take other fields"
    assert i18n.use(None) == "en"
    with pytest.raises(ValueError, match="zh-CN"):
        i18n.use("fr")


def test_the_chinese_lessons_are_in_step_with_the_english_ones():
    assert lessons.drift("zh-CN") == [], "run `make twins`, then translate what it marks"
    assert len(lessons.names()) == 5, "the five stage lessons"
    for name in lessons.names():
        twin = json.loads(lessons.notebook(name, "zh-CN").read_text(encoding="utf-8"))
        title = "".join(twin["cells"][0]["source"])
        assert title.startswith("# 实验阶段"), name
        assert 'LANGUAGE = "zh-CN"' in "".join(c for cell in twin["cells"] for c in cell["source"])


@pytest.fixture
def lesson_copy(tmp_path, monkeypatch):
    """A copy of the lessons to change, as ``lessons`` sees them."""
    root = tmp_path / "notebooks"
    shutil.copytree(lessons.NOTEBOOKS, root, ignore=shutil.ignore_patterns("labs", ".ipynb_checkpoints"))
    monkeypatch.setattr(lessons, "NOTEBOOKS", root)
    return root


def edit(path, cell_id, change):
    nb = json.loads(path.read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if c["id"] == cell_id]
    cell["source"] = lessons._lines(change("".join(cell["source"])))
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")


def test_drift_is_found_and_sync_mends_the_code_but_not_the_prose(lesson_copy):
    english, twin = lesson_copy / "02_subscribe_and_train.ipynb", lesson_copy / "zh-CN" / "02_subscribe_and_train.ipynb"
    edit(english, "fd039888", lambda s: s + "\nprint(subscription)")           # code
    edit(english, "7312009c", lambda s: s + " Subscriptions are free.")         # prose
    edit(twin, "1390f022", lambda s: s)                                          # untouched translation
    found = lessons.drift("zh-CN")
    assert found == ["02_subscribe_and_train.ipynb#7312009c: the translation is missing or older than the English text",
                     "02_subscribe_and_train.ipynb#fd039888: the code differs from the English cell"]
    assert lessons.sync("zh-CN") == ["02_subscribe_and_train.ipynb#7312009c"]   # left to translate
    after = json.loads(twin.read_text(encoding="utf-8"))
    cells = {c["id"]: "".join(c["source"]) for c in after["cells"]}
    assert cells["fd039888"].endswith("print(subscription)")
    assert cells["7312009c"].startswith(lessons.TODO) and "Subscriptions are free." in cells["7312009c"]
    assert cells["1390f022"].startswith("## 3. 数据")   # a translation of unchanged English is kept
    assert lessons.drift("zh-CN") == [
        "02_subscribe_and_train.ipynb#7312009c: the translation is missing or older than the English text"]
    assert lessons.main(["check"]) == 1


def test_a_cell_added_to_the_english_lesson_is_drift(lesson_copy):
    path = lesson_copy / "04_import_model.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"].insert(3, {"cell_type": "code", "id": "new00001", "metadata": {}, "execution_count": None,
                           "outputs": [], "source": ["print('new')"]})
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    assert lessons.drift("zh-CN") == ["04_import_model.ipynb: the zh-CN twin's cells are not the English cells in order"]
    lessons.sync("zh-CN")
    assert lessons.drift("zh-CN") == []   # a code cell needs no translation


def test_an_unknown_language_is_a_clear_error():
    from labkit.errors import LabkitError

    with pytest.raises(LabkitError, match="zh-CN"):
        lessons.notebook("01_data_prep.ipynb", "fr")


@pytest.mark.slow
def test_jupyterlab_opens_the_chinese_lessons_in_chinese(tmp_path):
    """`make jupyter LESSONS=zh-CN` for real (a server on a free port): the interface's language
    defaults to zh_CN, and the language pack answers with Chinese strings."""
    import os
    import shlex
    import socket
    import subprocess
    import sys
    import time

    import httpx

    made = subprocess.run(["make", "-n", "jupyter", "LESSONS=zh-CN"], capture_output=True, text=True, check=True,
                          cwd=lessons.NOTEBOOKS.parent).stdout.replace("\\\n", " ")
    command = shlex.split(next(line for line in made.splitlines() if " lab " in line))
    assert command[2:4] == ["lab", "notebooks/zh-CN"], command
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user")}
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", *command[3:], "--no-browser", f"--port={port}",
                               "--ServerApp.token=t", "--allow-root"], cwd=lessons.NOTEBOOKS.parent, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "token t"}) as client:
            for _ in range(120):
                try:
                    setting = client.get("/lab/api/settings/@jupyterlab/translation-extension:plugin")
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            assert setting.json()["schema"]["properties"]["locale"]["default"] == "zh_CN"
            pack = client.get("/lab/api/translations/zh_CN").json()["data"]
            assert pack["jupyterlab"]["Run All Cells"] == ["运行所有单元格"]
            assert "02_subscribe_and_train.ipynb" in {c["name"] for c in client.get("/api/contents").json()["content"]}
    finally:
        server.terminate()
        server.wait(30)


def sections_and_commands(path):
    """A markdown document's heading levels, and the commands of its shell blocks (comments,
    which are prose, left out)."""
    import re

    text = path.read_text(encoding="utf-8")
    levels = [len(m.group(1)) for m in re.finditer(r"^(#+) ", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), re.M)]
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        for line in block.splitlines():
            command = " ".join(re.sub(r"(^|\s)#.*$", "", line).split())
            if command:
                commands.append(command)
    return levels, commands


@pytest.mark.parametrize("english, chinese", [("README.md", "README.zh-CN.md"),
                                              ("docs/WORKSHOP.md", "docs/WORKSHOP.zh-CN.md")])
def test_the_chinese_docs_have_the_english_sections_and_commands(english, chinese):
    root = lessons.NOTEBOOKS.parent
    en_levels, en_commands = sections_and_commands(root / english)
    zh_levels, zh_commands = sections_and_commands(root / chinese)
    assert zh_levels == en_levels, f"{chinese} has other sections than {english}"
    assert zh_commands == en_commands, f"{chinese} shows other commands than {english}"
    assert len(en_levels) > 5 and len(en_commands) > 5   # the check reads the documents


FIGURE = """
import warnings
import matplotlib
matplotlib.use("Agg")
import labkit
from labkit import i18n
{setup}
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.set_title("雏菊、玫瑰、郁金香")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fig.canvas.draw()
print(sum("missing from font" in str(w.message) for w in caught))
"""


@pytest.mark.parametrize("setup, missing", [("i18n.use('zh-CN')", False), ("i18n.use(None)", False), ("", True)])
def test_a_learners_own_figure_draws_chinese_once_the_lesson_has_chosen_its_language(setup, missing):
    """The lessons' first cell calls i18n.use: from then on, any figure finds the CJK font; without
    it (the control) matplotlib's default font has no Chinese glyphs."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FIGURE.format(setup=setup)], capture_output=True, text=True, check=True)
    assert (int(out.stdout.strip()) > 0) == missing, out.stderr
