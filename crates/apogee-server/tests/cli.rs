//! The binary's start-up errors: one clear line and a failing exit code, never a panic.

use std::process::Command;

fn apogee(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(args)
        .output()
        .expect("run apogee");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_flags_are_refused() {
    let (ok, err) = apogee(&["serve", "--no-such-flag"]);
    assert!(!ok);
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn unreachable_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let url = "postgres://apogee:secret@127.0.0.1:9/apogee";
    let (ok, err) = apogee(&["serve", "--data-dir", data, "--database-url", url]);
    assert!(!ok);
    assert!(err.contains("cannot reach PostgreSQL"), "{err}");
    assert!(
        !err.contains("secret"),
        "credentials must not be printed: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unwritable_data_dir_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let (ok, err) = apogee(&["serve", "--data-dir", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("data directory"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn bad_database_scheme_is_reported() {
    let (ok, err) = apogee(&["serve", "--database-url", "mysql://x/y"]);
    assert!(!ok);
    assert!(err.contains("--database-url"), "{err}");
}

#[test]
fn admin_commands_create_and_reset_users() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, err) = apogee(&[
        "admin",
        "create-user",
        "--data-dir",
        data,
        "--username",
        "ops",
        "--password",
        "pw1",
        "--admin",
    ]);
    assert!(ok, "{err}");
    let (ok, err) = apogee(&[
        "admin",
        "reset-password",
        "--data-dir",
        data,
        "--username",
        "ops",
        "--password",
        "pw2",
    ]);
    assert!(ok, "{err}");
    let (ok, err) = apogee(&[
        "admin",
        "reset-password",
        "--data-dir",
        data,
        "--username",
        "nobody",
        "--password",
        "x",
    ]);
    assert!(!ok);
    assert!(err.contains("User not found"), "{err}");
}
