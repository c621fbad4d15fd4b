import pytest

from sandbox.bench.measurements import measure_growth
from sandbox.bench.report import FAILED, MEASURED, NOT_RUN, SYSTEMS, BenchReport


def report(limits_factor: float = 100) -> BenchReport:
    return BenchReport(scale="medium", seed=7, runs=3, limits={"factor": limits_factor}, company={})


def test_a_figure_is_the_median_of_its_runs_and_checked_against_its_target():
    bench = report()
    for seconds in (9.0, 1.2, 1.4):
        bench.add("crm.download_only.ratio", seconds)
    ratio = bench.figures["crm.download_only.ratio"]
    assert ratio.value == 1.4 and ratio.meets_target
    assert ratio.as_json()["target"] == "≤ 1.50×"


def test_a_failed_measurement_fails_only_the_figures_no_run_measured():
    bench = report()
    bench.add("sync.full.seconds", 60.0)
    bench.record_failure(2, ("sync.",), "exit status -9")
    assert bench.failures == ["run 2: exit status -9"]
    assert bench.figures["sync.full.seconds"].status == MEASURED
    assert bench.figures["sync.full.peak_rss_mb"].status == FAILED
    assert bench.figures["crm.full_load.seconds"].status == MEASURED  # other prefixes untouched
    assert "sync.full.peak_rss_mb" in bench.failed


def small_report(seconds: float) -> dict:
    figures = {f"{system}.full_load.rows": {"value": 100} for system in SYSTEMS}
    figures |= {f"{system}.full_load.seconds": {"value": seconds} for system in SYSTEMS}
    return {"limits": {"factor": 100}, "figures": {**figures, "sync.full.seconds": {"value": seconds * 3}}}


def test_growth_is_the_time_ratio_per_ten_times_the_rows():
    bench = report()
    for system in SYSTEMS:
        bench.add(f"{system}.full_load.rows", 10_000)  # 100× the rows…
        bench.add(f"{system}.full_load.seconds", 25.0)  # …in 25× the time: 5× per 10×
    bench.add("sync.full.seconds", 75.0)
    measure_growth(bench, small_report(1.0), "small")
    assert bench.figures["growth.crm.full_load"].value == pytest.approx(5.0)
    assert bench.figures["growth.sync.full"].value == pytest.approx(5.0)


def test_growth_needs_a_comparable_report():
    under_other_limits = report(limits_factor=1)
    measure_growth(under_other_limits, small_report(1.0), "small")
    assert under_other_limits.figures["growth.web.full_load"].status == NOT_RUN
    without_small = report()
    measure_growth(without_small, None, "small")
    assert "handoff bench --scale small" in without_small.figures["growth.web.full_load"].reason
