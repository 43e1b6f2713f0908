//! The Grafana dashboard in the repository queries only metrics the binary exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_connect::metering::METRIC_NAMES;

/// The `cdc_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("cdc_") {
        let start = i + at;
        let preceded =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/cdc-pipelines.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let mut queried = std::collections::BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "panel {}: {expr} names no cdc_ metric",
                panel["title"]
            );
            for name in names {
                assert!(
                    METRIC_NAMES.contains(&name.as_str()),
                    "panel {}: {name} is not exported (exported: {METRIC_NAMES:?})",
                    panel["title"]
                );
                queried.insert(name);
            }
        }
    }
    // The variable query too.
    let variable = dashboard["templating"]["list"][1]["query"]
        .as_str()
        .unwrap();
    for name in metric_names(variable) {
        assert!(METRIC_NAMES.contains(&name.as_str()), "{name}");
    }
    // Lag (in time, in LSN distance, in records), throughput, snapshot progress and errors
    // are all on it.
    for needed in [
        "cdc_source_lag_ms",
        "cdc_events_total",
        "cdc_snapshot_rows_done",
        "cdc_errors_total",
        "cdc_source_lsn_distance",
        "cdc_consumer_lag",
    ] {
        assert!(queried.contains(needed), "{needed} has no panel");
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names("cdc_snapshot_rows_done{a=\"x\"} / cdc_snapshot_rows_total + xcdc_no"),
        ["cdc_snapshot_rows_done", "cdc_snapshot_rows_total"]
    );
}
