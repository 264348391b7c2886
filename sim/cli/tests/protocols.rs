//! Every protocol subcommand of `epidemic-sim`, run small, as a user runs it: each prints
//! JSON whose figures show the protocol did its job end to end.

use std::process::Command;

use serde_json::Value;

fn json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_epidemic-sim"))
        .args(args)
        .arg("--json")
        .env_remove("SEED")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("prints JSON")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn swim_detects_the_killed_member_without_false_positives() {
    let runs = json(&["swim", "--nodes", "30", "--observe-secs", "30"]);
    let run = &runs[0];
    assert_eq!(run["nodes"], 30);
    assert!(num(&run["killed"]) >= 1.0);
    assert_eq!(run["undetected"], 0);
    assert_eq!(run["false_positives"], 0);
    assert!(num(&run["join_all_secs"]) < 30.0);
    assert!(num(&run["msgs_per_member_period"]) > 0.0);
}

#[test]
fn hyparview_overlay_is_symmetric_and_heals_without_isolated_nodes() {
    let r = json(&[
        "hyparview",
        "--nodes",
        "200",
        "--rounds",
        "5",
        "--levels",
        "50",
        "--heal-rounds",
        "5",
    ]);
    assert_eq!(r["overlay"]["asymmetric_edges"], 0);
    assert_eq!(r["overlay"]["components"], 1);
    let level = &r["failures"][0];
    assert_eq!(level["failed_percent"], 50);
    assert_eq!(level["isolated"], 0);
    assert_eq!(level["components"], 1);
    assert!((num(&level["reliability"]) - 1.0).abs() < 1e-9);
}

#[test]
fn plumtree_delivers_every_broadcast_once_over_a_spanning_tree() {
    let r = json(&[
        "plumtree",
        "--nodes",
        "100",
        "--broadcasts",
        "5",
        "--bursts",
        "2",
        "--burst-size",
        "5",
        "--levels",
        "40",
        "--during",
        "3",
        "--after",
        "2",
    ]);
    let runs = r["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs
        .iter()
        .map(|run| run["plumtree"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["single sender", "random senders", "bursts", "fail 40%"]
    );
    for run in runs {
        let p = &run["plumtree"];
        let name = &p["name"];
        assert!((num(&p["reliability_min"]) - 1.0).abs() < 1e-9, "{name}");
        assert!(
            (num(&p["reliability_min_during"]) - 1.0).abs() < 1e-9,
            "{name}"
        );
        assert_eq!(p["double_deliveries"], 0, "{name}");
        assert!(num(&run["flood"]["rmr_mean"]) > 1.0, "{name}");
        assert!(num(&run["ldh_ratio"]) >= 1.0, "{name}");
    }
    assert!(num(&runs[0]["plumtree"]["rmr_after_warmup"]).abs() < 1e-9);
    assert!(num(&runs[1]["plumtree"]["rmr_after_warmup"]) <= 0.05);
}

#[test]
fn merkle_finds_the_exact_difference_with_every_method() {
    let r = json(&[
        "merkle",
        "--keys",
        "10000",
        "--diffs",
        "1,100",
        "--riblt-seeds",
        "2",
    ]);
    let runs = r["runs"].as_array().expect("runs");
    assert!(runs.len() >= 8, "{} runs", runs.len());
    for run in runs {
        assert_eq!(run["exact"], true, "{run}");
        assert_eq!(run["repaired"], true, "{run}");
    }
    // One differing key in 10,000 costs bytes in proportion to it, not to the dataset.
    let planned_one = runs
        .iter()
        .find(|r| r["method"] == "Planned" && r["differences"] == 1)
        .expect("planned run at d = 1");
    assert!(num(&planned_one["bytes"]) < 2_000.0, "{planned_one}");
}

#[test]
fn bvv_replicas_converge_to_identical_stores() {
    let r = json(&[
        "bvv",
        "--keys",
        "1000",
        "--writes",
        "2000",
        "--window-s",
        "2",
        "--sweep",
        "--merkle",
        "false",
    ]);
    let runs = r["runs"].as_array().expect("runs");
    assert!(!runs.is_empty());
    for run in runs {
        assert_eq!(run["converged"], true, "{run}");
        assert_eq!(run["identical_stores"], true, "{run}");
        assert_eq!(run["lost_or_wrong_keys"], 0, "{run}");
        assert_eq!(run["log_final"], 0, "{run}");
    }
}

#[test]
fn read_repair_blocking_reads_are_monotonic_and_digests_save_bytes() {
    let r = json(&["read-repair", "--ops", "100"]);
    for b in r["bytes"].as_array().expect("bytes") {
        assert!(num(&b["digest"]) < num(&b["full_quorum"]), "{b}");
    }
    let in_sync = &r["round_trips"][0];
    assert_eq!(in_sync["case"], "in sync");
    assert!((num(&in_sync["mean"]) - 1.0).abs() < 1e-9);
    let blocking: Vec<&Value> = r["monotonic"]
        .as_array()
        .expect("monotonic")
        .iter()
        .filter(|m| m["mode"] == "Blocking")
        .collect();
    assert!(!blocking.is_empty());
    for m in blocking {
        assert_eq!(m["violations"], 0, "{m}");
    }
}

#[test]
fn hinted_handoff_loses_no_acknowledged_write() {
    let r = json(&[
        "hinted-handoff",
        "--rate",
        "50",
        "--duration-s",
        "20",
        "--down-at-s",
        "2",
        "--down-for-s",
        "5",
        "--availability-writes",
        "50",
    ]);
    for mode in ["adaptive", "unthrottled"] {
        let run = &r[mode];
        assert_eq!(run["acked_lost"], 0, "{mode}");
        assert_eq!(run["guest_copies_left"], 0, "{mode}");
        assert!(
            num(&run["hints_stored"]) > 0.0,
            "{mode}: the outage made hints"
        );
    }
}
