"""`handoff bench` on the tiny company, one run: every figure it can measure is there and positive,
and those that wait for parts not built yet say so."""

import json
import os
import subprocess
import sys

from pipeline.bench.worker import WRITEBACK_PASSES
from pipeline.settings import PROJECT_DIR

NOT_BUILT_YET = ["latency.webhook_to_feedback.p50_seconds", "latency.webhook_to_feedback.p95_seconds",
                 "latency.webhook_to_alert.p50_seconds", "latency.webhook_to_alert.p95_seconds"]
GROWTH = ["growth.crm.full_load", "growth.marketing.full_load", "growth.web.full_load", "growth.sync.full"]


def test_bench_reports_every_figure_measured_or_why_not(tmp_path):
    env = {**os.environ, "HANDOFF_HOME": str(tmp_path), "COLUMNS": "200"}
    bench = subprocess.run([sys.executable, "-m", "pipeline.cli", "bench", "--scale", "tiny", "--runs", "1"],
                           cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert bench.returncode == 0, bench.stdout + bench.stderr

    report = json.loads((tmp_path / "reports" / "bench-tiny.json").read_text())
    assert report["limits"]["sandbox"]["crm_requests_per_10s"] == 100 * report["limits"]["vendors"]["crm_requests_per_10s"]
    assert report["machine"]["cpus"] >= 1
    figures = report["figures"]
    measured = {key: figure for key, figure in figures.items() if key not in NOT_BUILT_YET + GROWTH}
    assert {"crm.full_load.seconds", "web.full_load.peak_rss_mb", "marketing.download_only.ratio",
            "all.incremental.1pct.share", "sync.full.seconds", "sync.incremental.0.1pct.share",
            "writeback.crm.share_of_ceiling", "writeback.marketing.records_per_second"} <= set(measured)
    for key, figure in measured.items():
        assert figure["status"] == "measured" and len(figure["values"]) == 1 and figure["value"] > 0, key
    # The write-back's timed passes send every live contact once each.
    contacts = report["figures"]["writeback.crm.records"]["value"]
    assert contacts > 0 and contacts % (WRITEBACK_PASSES - 1) == 0
    # The download-only loops fetch the very pages the loads fetch.
    for system in ("crm", "marketing"):
        assert figures[f"{system}.download_only.requests"]["value"] == figures[f"{system}.full_load.requests"]["value"]
    for key in NOT_BUILT_YET:
        assert figures[key]["status"] == "not measured yet" and figures[key]["reason"] and figures[key]["value"] is None
    for key in GROWTH:
        assert figures[key]["status"] == "not run" and "--compare" in figures[key]["reason"]
    assert "not measured yet" in bench.stdout and "load ÷ download-only" in bench.stdout
