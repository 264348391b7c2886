//! The `epidemic-sim` binary as a user runs it: flags, JSON, the plot, and `SEED`.

use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_epidemic-sim"))
}

fn json(args: &[&str], seed_env: Option<&str>) -> serde_json::Value {
    let mut cmd = sim();
    cmd.args(args).env_remove("SEED");
    if let Some(seed) = seed_env {
        cmd.env("SEED", seed);
    }
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("prints JSON")
}

/// A small lossy flood, as JSON.
const RUN: [&str; 8] = [
    "flood",
    "--nodes",
    "300",
    "--messages",
    "3",
    "--loss",
    "0.05",
    "--json",
];

#[test]
fn flood_json_reports_the_run_and_seed_selects_it() {
    let a = json(&RUN, Some("9"));
    assert_eq!(a["seed"], 9);
    assert_eq!(a["nodes"], 300);
    let ratio = a["delivery_ratio"].as_f64().unwrap();
    assert!(ratio > 0.9 && ratio <= 1.0, "{ratio}");
    assert!(a["dropped"].as_u64().unwrap() > 0);
    assert!(a["bytes_sent"].as_u64().unwrap() > a["messages_sent"].as_u64().unwrap() * 64);
    // --seed and SEED name the same run; another seed is another run.
    let with_flag: Vec<&str> = ["--seed", "9"].into_iter().chain(RUN).collect();
    let b = json(&with_flag, None);
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    let c = json(&RUN, Some("10"));
    assert_ne!(a["trace_hash"], c["trace_hash"]);
}

#[test]
fn flood_plot_writes_an_svg_and_the_table_names_the_speed() {
    let dir = std::env::temp_dir().join(format!("epidemic-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("flood.svg");
    let out = sim()
        .args(["flood", "--nodes", "200", "--plot"])
        .arg(&svg)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("deliveries / s (wall)") && table.contains("trace hash"));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("200 nodes"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_flags_fail_with_a_message_not_a_panic() {
    let out = sim()
        .args(["flood", "--loss", "1.5"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--loss must be in [0, 1]"), "{err}");
    assert!(!err.contains("panicked"));
}
