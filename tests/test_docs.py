"""The docs' figures come from result files: every marked region is what bench/results says
(`make docs` writes them), a region without a result behind it is an error, each result file
says what was measured on which CPU with which engines, and the English and Chinese docs quote
the same numbers."""
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import docs  # noqa: E402 - bench/ is not a package
import results  # noqa: E402

TWINS = [("README.md", "README.zh-CN.md"), ("docs/WORKSHOP.md", "docs/WORKSHOP.zh-CN.md")]
# a number, also where "x" follows it (3.8x) or Chinese surrounds it; not inside a word or a version
NUMBER = re.compile(r"(?<![A-Za-z0-9_.])\d[\d,]*(?:\.\d+)?(?![A-Za-wyz0-9_])")


def numbers(text: str) -> set[str]:
    """The numbers a reader sees: outside code blocks and links, thousands separators dropped."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"\]\([^)]*\)|`[^`\n]*`", "", text)
    return {n.replace(",", "") for n in NUMBER.findall(text)}


@pytest.mark.parametrize("doc", docs.DOCS)
def test_every_marked_region_is_what_the_results_say(doc):
    text = (ROOT / doc).read_text()
    assert docs.render(text, docs.language(doc)) == text, f"{doc} is out of date with bench/results: run make docs"


def test_the_docs_have_generated_regions_in_both_languages():
    for english, chinese in TWINS:
        en, zh = docs.regions((ROOT / english).read_text()), docs.regions((ROOT / chinese).read_text())
        assert en and en == zh, (english, en, chinese, zh)
    assert "data" in docs.regions((ROOT / "docs/BENCHMARKS.md").read_text())


@pytest.mark.parametrize("english, chinese", TWINS)
def test_english_and_chinese_quote_the_same_numbers(english, chinese):
    en, zh = numbers((ROOT / english).read_text()), numbers((ROOT / chinese).read_text())
    assert en == zh, f"only in {english}: {sorted(en - zh)}; only in {chinese}: {sorted(zh - en)}"


def test_a_region_without_results_or_of_an_unknown_name_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    with pytest.raises(docs.NoResults, match="no result file"):
        docs.render("<!-- results: quick-labs -->\nold\n<!-- /results -->\n", "en")
    with pytest.raises(docs.NoResults, match="does not know"):
        docs.render("<!-- results: made-up -->\n<!-- /results -->\n", "en")
    assert docs.render("no regions, 12.5 s\n", "en") == "no regions, 12.5 s\n"


def test_a_region_shows_the_figure_of_its_result_file(tmp_path, monkeypatch):
    """A result file written the way the benchmarks write it: its numbers and CPU end up in the region."""
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    labs = [results.figure(f"{lab}.lab", lab, seconds, "s", estimated=seconds * 1.2, lab=lab)
            for lab, seconds in (("one", 66.0), ("two", 90.0))]
    path = results.save("estimate-quick", labs, profile="quick")
    saved = json.loads(path.read_text())
    assert saved["cpu"]["model"] and saved["date"] and saved["commit"] and saved["engines"]["torch"]
    text = docs.render("<!-- results: quick-labs -->\n<!-- /results -->\n", "en")
    assert "2 labs took 1.1-1.5 min each" in text and "| two | 1.5 min | 1.8 min | 0.83 |" in text
    assert saved["cpu"]["model"] in text
    assert numbers(text) == numbers(docs.render("<!-- results: quick-labs -->\n<!-- /results -->\n", "zh-CN"))
    results.save("estimate-quick", [results.figure("one.lab", "one", 120.0, "s", estimated=100.0, lab="one")],
                 profile="quick")  # the same day and CPU: replaces that figure, keeps the other
    assert "| one | 2.0 min | 1.7 min | 1.20 |" in docs.render("<!-- results: quick-labs -->\n<!-- /results -->\n", "en")


def test_every_result_file_says_what_where_and_with_what():
    runs = results.load()
    assert runs, "bench/results is empty: the docs' figures need their result files"
    for run in runs:
        assert run["path"].parent.name == run["bench"], run["path"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", run["date"]) and run["commit"], run["path"]
        assert run["cpu"]["model"] and run["cpu"]["cores"] and run["cpu"]["features"] is not None, run["path"]
        assert run["engines"]["labkit"], run["path"]
        for f in run["figures"]:
            assert f["key"] and f["what"] and f["unit"] and isinstance(f["value"], (int, float)), (run["path"], f)


def test_the_test_time_region_quotes_the_suites_their_coverage_and_slowest_tests(tmp_path, monkeypatch):
    """bench/bench_tests.py's parsing of pytest's output, and the region written from its figures."""
    import bench_tests

    output = ("============ slowest 30 durations ============\n"
              "230.24s call     tests/test_room.py::test_a_room[x y]\n"
              "28.71s setup    tests/test_export.py::test_kserve\n"
              "FAILED tests/test_environment.py::test_pins - AssertionError: assert 1 == 2\n")
    slow = bench_tests.slowest(output)
    assert slow == [{"seconds": 230.24, "phase": "call", "test": "tests/test_room.py::test_a_room[x y]"},
                    {"seconds": 28.71, "phase": "setup", "test": "tests/test_export.py::test_kserve"}]
    report = tmp_path / "coverage.json"
    report.write_text(json.dumps({"totals": {"covered_lines": 90, "num_statements": 100, "covered_branches": 40,
                                             "num_branches": 50}}))
    assert bench_tests.coverage_totals(report) == {"lines": 90.0, "branches": 80.0, "statements": 100,
                                                   "branch_count": 50}
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    results.save("tests", [results.figure("tests.fast", "fast", 120.0, "s", passed=200),
                           results.figure("tests.full", "full", 1500.0, "s", passed=500, skipped=1,
                                          coverage=bench_tests.coverage_totals(report), slowest=slow)])
    region = "<!-- results: test-time -->\n<!-- /results -->\n"
    text = docs.render(region, "en")
    assert "`make test-fast` passed 200 tests" in text and "`make test` passed 500 tests (1 skipped) in 25" in text
    assert "covers 90.0% of `labkit/`'s lines and 80.0% of its branches" in text
    assert "`tests/test_room.py::test_a_room[x y]` 230 s" in text
    assert numbers(text) == numbers(docs.render(region, "zh-CN"))
