"""The benchmark page's verdicts: a target's ratio of medians, and how its single rounds fell.

scripts/benchkit is not a package of ft; it is imported from scripts/ as bench.py
imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchkit.figures import Results  # noqa: E402
from benchkit.merge import merge_section, sections_of  # noqa: E402
from benchkit.report import Target, check  # noqa: E402

PUT = Target("put ≥ 0.5× floor", "ft-put", "floor", 0.5)


def results_of(ours: list[float], floor: list[float]) -> Results:
    results = Results()
    for value in ours:
        results.add("ft-put", "ft put", "MB/s", value)
    for value in floor:
        results.add("floor", "floor", "MB/s", value)
    return results


def test_every_round_on_one_side_gives_a_plain_verdict() -> None:
    assert check(PUT, results_of([60, 70, 80], [100, 100, 100])) == (
        "0.70× (rounds 0.60–0.80)", "PASS")
    assert check(PUT, results_of([20, 30, 40], [100, 100, 100])) == (
        "0.30× (rounds 0.20–0.40)", "MISS")


def test_rounds_on_both_sides_are_counted_beside_the_verdict() -> None:
    assert check(PUT, results_of([40, 45, 60], [100, 100, 100])) == (
        "0.45× (rounds 0.40–0.60)", "MISS (1 of 3 rounds met it)")
    assert check(PUT, results_of([50, 55, 30], [100, 100, 100])) == (
        "0.50× (rounds 0.30–0.55)", "PASS (2 of 3 rounds met it)")


def test_a_target_with_nothing_measured_says_so() -> None:
    assert check(PUT, results_of([50], [])) == ("", "not measured")
    assert check(Target("small ≥ 3000 files/s", "ft-small", None, 3000.0), Results()) == (
        "", "not measured")


def test_a_merged_section_replaces_only_its_own_and_a_new_one_is_appended() -> None:
    page = "# B\n\n## One\n\nold one\n\n### sub\n\nx\n\n## Two\n\nkept\n"
    merged = merge_section(page, ["", "## One", "", "new one"])
    assert merged == "# B\n\n## One\n\nnew one\n\n## Two\n\nkept\n"
    appended = merge_section(merged, ["## Three", "", "third"])
    assert appended == merged + "\n## Three\n\nthird\n"
    assert merge_section(appended, ["## Three", "", "again"]) == merged + "\n## Three\n\nagain\n"


def test_the_own_sections_of_a_page_are_found_by_their_heading() -> None:
    page = ("# B\n\n## HTTP: a, data in /x\n\nrows\n\n### sub\n\nmore\n\n## Figures\n\nno\n\n"
            "## HTTP: a, data in /y\n\nother\n")
    assert sections_of(page) == [["## HTTP: a, data in /x", "", "rows", "", "### sub", "",
                                  "more"], ["## HTTP: a, data in /y", "", "other"]]
