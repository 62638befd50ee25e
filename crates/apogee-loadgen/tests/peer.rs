//! Smoke test of the `peer` scenario at tiny sizes: the generator starts Apogee (`APOGEE_BIN`) and
//! a real Synapse from the venv `scripts/with-synapse.sh` installs, alternates them, and every
//! message of both fan-outs and send loops must arrive. Runs under `scripts/with-synapse.sh`
//! (which installs the venv); skipped elsewhere.

use serde_json::Value;
use std::process::Command;

#[test]
fn peer_scenario_runs_against_apogee_and_synapse() {
    let (Ok(_), Ok(apogee)) = (
        std::env::var("APOGEE_TEST_SYNAPSE_URL"),
        std::env::var("APOGEE_BIN"),
    ) else {
        eprintln!(
            "skipped: needs APOGEE_BIN and a Synapse venv (run under scripts/with-synapse.sh)"
        );
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_apogee-loadgen"))
        .args([
            "--apogee-bin",
            &apogee,
            "peer",
            "--repeats",
            "1",
            "--senders",
            "2",
        ])
        .args(["--send-seconds", "1", "--members", "3", "--rate", "5"])
        .args(["--fanout-seconds", "1"])
        .output()
        .expect("run apogee-loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peer failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["order"], serde_json::json!(["apogee", "synapse"]));
    for server in ["apogee", "synapse"] {
        let run = &v[server][0];
        assert_eq!(run["fanout"]["delivered"], 15, "{server}: {run}");
        assert_eq!(run["fanout"]["expected"], 15, "{server}: {run}");
        assert_eq!(run["fanout"]["send_errors"], 0, "{server}: {run}");
        assert!(
            run["send"]["acknowledged"].as_u64() > Some(0),
            "{server}: {run}"
        );
        assert_eq!(run["send"]["errors"], 0, "{server}: {run}");
        for rss in ["rss_empty_kib", "rss_started_kib", "rss_members_kib"] {
            assert!(run[rss].as_u64() > Some(1024), "{server} {rss}: {run}");
        }
    }
    let md = v["markdown"].as_str().unwrap();
    assert!(md.contains("| send rate, 2 senders: messages/s |"), "{md}");
    assert!(stderr.contains("**Apogee vs Synapse**"), "{stderr}");
}
