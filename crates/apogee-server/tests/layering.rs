//! Fails when a crate depends against the layering in ARCHITECTURE.md: dependencies point down
//! only, pure layers stay free of I/O frameworks, wire crates never reach storage adapters.

use std::collections::BTreeMap;
use std::path::Path;

/// Each crate's layer; a crate may depend only on crates of a strictly lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("apogee-domain", 0),
    // Rocket.Chat's client-side E2EE formats: pure crypto, no I/O.
    ("apogee-e2ee", 0),
    ("apogee-core", 1),
    ("apogee-ddp", 1),
    ("apogee-store-sql", 2),
    ("apogee-store-sqlite", 3),
    ("apogee-store-postgres", 3),
    ("apogee-blob", 3),
    ("apogee-bus", 3),
    ("apogee-mail", 3),
    ("apogee-clamd", 3),
    ("apogee-kms", 3),
    // Outbound HTTP and the SSRF address filter, below federation, which filters with it too.
    ("apogee-http", 2),
    ("apogee-rc", 3),
    // Matrix federation (ruma): an adapter beside the Rocket.Chat wire crate.
    ("apogee-federation", 3),
    // The browser client's built files (bytes only; apogee-rc serves them).
    ("apogee-web", 0),
    ("apogee-server", 9),
    // A pure client (load generator): it talks to the server over the wire only.
    ("apogee-loadgen", 9),
];

/// Crates the pure layers (domain, core) must never depend on.
const IO_FRAMEWORKS: &[&str] = &[
    "axum",
    "sqlx",
    "tokio-tungstenite",
    "ruma",
    "async-nats",
    "object_store",
    "reqwest",
    "hyper",
];

/// Crates that must not appear in wire crates (they talk to core, never to storage).
const STORAGE: &[&str] = &[
    "sqlx",
    "apogee-store-sql",
    "apogee-store-sqlite",
    "apogee-store-postgres",
];

fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("read manifest");
    let doc: toml::Table = text.parse().expect("parse manifest");
    // Only normal dependencies count: tests may use anything.
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn crates_depend_downwards_only() {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates dir");
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(crates_dir).expect("list crates") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let Some(&layer) = layers.get(name.as_str()) else {
            panic!("crate {name} has no layer: add it to LAYERS here and to ARCHITECTURE.md");
        };
        seen += 1;
        for dep in dependencies(&dir.join("Cargo.toml")) {
            if let Some(&dep_layer) = layers.get(dep.as_str()) {
                assert!(
                    dep_layer < layer,
                    "{name} (layer {layer}) must not depend on {dep} (layer {dep_layer})"
                );
            }
            if layer <= 1 {
                assert!(
                    !IO_FRAMEWORKS.contains(&dep.as_str()),
                    "{name} must stay free of {dep}"
                );
            }
            if name == "apogee-loadgen" {
                assert!(
                    !dep.starts_with("apogee-"),
                    "the load generator {name} must not depend on {dep}: it is a pure client"
                );
            }
            if name == "apogee-rc" {
                assert!(
                    !STORAGE.contains(&dep.as_str()),
                    "the wire crate {name} must not use {dep}"
                );
            }
        }
    }
    assert_eq!(seen, LAYERS.len(), "every listed crate exists");
}
