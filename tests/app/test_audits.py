"""Alert rules of WAP audit trends, at their edges."""

from datetime import UTC, datetime, timedelta

from app.audits import AuditRun, GuaranteeResult, results_from_dbt_run_results, trends

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run(hours_ago: float, status: str, *failing: str, run_id: str | None = None) -> AuditRun:
    results = tuple(GuaranteeResult(g, passed=False) for g in failing)
    return AuditRun(run_id or f"r{hours_ago}", status, NOW - timedelta(hours=hours_ago), results=results)


def codes(runs):
    return {a.code for a in trends(runs, NOW).alerts}


def test_two_failed_runs_in_a_day_are_too_few_for_the_rate_alert():
    assert "failure_rate_24h" not in codes([run(3, "failed"), run(2, "failed")])


def test_three_runs_with_two_failed_raise_the_rate_alert():
    assert "failure_rate_24h" in codes([run(3, "failed"), run(2, "failed"), run(1, "passed")])


def test_exactly_half_failed_does_not_raise_the_rate_alert():
    runs = [run(4, "failed"), run(3, "passed"), run(2, "failed"), run(1, "passed")]
    assert "failure_rate_24h" not in codes(runs)


def test_a_run_older_than_a_day_does_not_count_in_the_24h_window():
    runs = [run(25, "failed"), run(3, "failed"), run(2, "failed"), run(1, "passed")]
    window = trends(runs, NOW).windows[0]
    assert (window.window, window.runs, window.failed) == ("24h", 3, 2)


def test_four_failures_of_one_guarantee_in_a_week_do_not_alert_but_five_do():
    four = [run(24 * d + 1, "failed", "not_null_plan_code") for d in range(4)] + [run(0.5, "passed")]
    assert "guarantee_flapping" not in codes(four)
    five = four + [run(0.7, "failed", "not_null_plan_code")]
    assert "guarantee_flapping" in codes(five)


def test_failures_older_than_a_week_do_not_count_towards_flapping():
    runs = [run(24 * 8 + d, "failed", "unique_id") for d in range(5)] + [run(1, "passed")]
    assert "guarantee_flapping" not in codes(runs)


def test_latest_run_failed_alerts_only_when_the_newest_run_failed():
    assert "latest_run_failed" in codes([run(5, "passed"), run(1, "failed")])
    assert "latest_run_failed" not in codes([run(5, "failed"), run(1, "passed")])


def test_rising_rate_compares_the_week_with_the_month():
    # 30 days: 10 runs, 2 failed (20%); 7 days: 2 runs, 1 failed (50% > 1.5 * 20%)
    old = [run(24 * (10 + d), "passed") for d in range(7)] + [run(24 * 20, "failed")]
    recent = [run(24 * 2, "failed"), run(24 * 3, "passed")]
    assert "failure_rate_rising" in codes(old + recent)
    # a week exactly at 1.5x does not alert: month 4/12 = 33%, week 2/4 = 50%
    month = [run(24 * (10 + d), "failed" if d < 2 else "passed") for d in range(8)]
    week = [run(24 * (1 + d), "failed" if d < 2 else "passed") for d in range(4)]
    assert "failure_rate_rising" not in codes(month + week)


def test_no_runs_no_alerts_and_empty_rates():
    t = trends([], NOW)
    assert t.alerts == ()
    assert [w.rate for w in t.windows] == [None, None, None]


def test_top_failing_orders_guarantees_by_failures():
    runs = [run(1, "failed", "a", "b"), run(2, "failed", "b"), run(3, "failed", "b", "c")]
    assert trends(runs, NOW).top_failing[0] == ("b", 3)


def test_dbt_run_results_map_tests_to_the_asset_by_name():
    body = {
        "results": [
            {"unique_id": "test.shop.not_null_fct_revenue_plan_code.ab12", "status": "fail", "failures": 3},
            {"unique_id": "test.shop.unique_fct_revenue_id.cd34", "status": "pass", "failures": 0},
            {"unique_id": "test.shop.not_null_fct_revenue_daily_id.ef56", "status": "fail"},
            {"unique_id": "model.shop.fct_revenue", "status": "success"},
        ]
    }
    results = results_from_dbt_run_results(body, "fct_revenue", other_assets=["fct_revenue_daily"])
    assert [(r.guarantee, r.passed, r.rows_failed) for r in results] == [
        ("not_null_fct_revenue_plan_code", False, 3),
        ("unique_fct_revenue_id", True, 0),
    ]


def test_dbt_run_results_prefer_the_registry_mapping_of_tests_to_assets():
    body = {"results": [{"unique_id": "test.shop.assert_totals.1", "status": "error"},
                        {"unique_id": "test.shop.unique_fct_revenue_id.2", "status": "pass"}]}
    mapping = {"fct_revenue": ["test.shop.assert_totals.1"]}
    results = results_from_dbt_run_results(body, "fct_revenue", tests_by_asset=mapping)
    assert [(r.guarantee, r.passed) for r in results] == [("assert_totals", False)]
