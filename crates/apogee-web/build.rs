//! Builds the browser client in `web/` with npm + Vite into `$OUT_DIR/dist` and writes
//! `$OUT_DIR/assets.rs`, a table of every built file (`include_bytes!`) with a gzipped copy of the
//! text ones, so that a plain `cargo build` yields a binary that serves the client.
//!
//! Cargo reruns this only when a client source, the lock file or the build configuration changes
//! (`rerun-if-changed`), so builds that touch only Rust pay nothing. `npm ci` runs only when
//! `web/node_modules` is missing or older than `web/package-lock.json`.
//!
//! - `APOGEE_WEB_DIST=<dir>`: embed an already built `dist` directory instead (packagers, or
//!   machines without Node.js).
//! - Without `npm` on the PATH the binary embeds a one-page notice instead of the client and the
//!   build says so in a warning; any other failure (a type error in the client, a failed
//!   install) fails the build, since a binary with a broken client should not pass for a good one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the client build reads; a change to any of them rebuilds it.
const INPUTS: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

/// Extensions worth storing gzipped as well (already-compressed images and fonts are not).
const COMPRESSIBLE: &[&str] = &[
    "js",
    "css",
    "html",
    "svg",
    "json",
    "txt",
    "map",
    "webmanifest",
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let web = manifest.join("../../web");
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=APOGEE_WEB_DIST");

    let dist = match std::env::var_os("APOGEE_WEB_DIST") {
        Some(dir) => PathBuf::from(dir),
        None => match build_client(&web, &out.join("dist")) {
            Some(dist) => dist,
            None => placeholder(&out.join("placeholder")),
        },
    };
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    write_table(&dist, &out, &files);
}

/// `npm ci` when needed, then `vite build` into `dist`. `None` when npm is not installed.
fn build_client(web: &Path, dist: &Path) -> Option<PathBuf> {
    if Command::new("npm").arg("--version").output().is_err() {
        println!(
            "cargo:warning=npm not found: the binary will serve a notice instead of the web \
             client (install Node.js 20.19+ and npm, or set APOGEE_WEB_DIST)"
        );
        return None;
    }
    // Vite 8 needs Node 20.19 or later; an older one (Debian 12's is 18) fails obscurely.
    let node = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    if !node_is_recent(node.trim()) {
        println!(
            "cargo:warning=Node.js {node:?} is older than 20.19: the binary will serve a notice \
             instead of the web client (install a newer Node.js, or set APOGEE_WEB_DIST)"
        );
        return None;
    }
    if needs_install(web) {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(web),
            "npm ci",
        );
    }
    run(
        Command::new("npm")
            .args(["run", "build", "--", "--emptyOutDir", "--outDir"])
            .arg(dist)
            .current_dir(web),
        "npm run build",
    );
    Some(dist.to_path_buf())
}

/// `v20.19.0` or later (`vMAJOR.MINOR.PATCH` as `node --version` prints it).
fn node_is_recent(version: &str) -> bool {
    let mut parts = version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major > 20 || (major == 20 && minor >= 19)
}

fn needs_install(web: &Path) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    // npm writes this file at the end of every install.
    match (
        modified(&web.join("node_modules/.package-lock.json")),
        modified(&web.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    assert!(
        status.success(),
        "{what} failed ({status}): see the output above. A first build needs the npm registry \
         (npm ci); a machine without it can set APOGEE_WEB_DIST to a client built elsewhere"
    );
}

fn placeholder(dir: &Path) -> PathBuf {
    // A path that never exists makes cargo run this script at every build, so the client is
    // built as soon as a usable Node.js appears (checking for it costs milliseconds).
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("never-exists-rerun-until-node-is-found").display()
    );
    fs::create_dir_all(dir).expect("placeholder dir");
    fs::write(
        dir.join("index.html"),
        "<!doctype html><meta charset=utf-8><title>Apogee</title>\
         <p>This apogee binary was built without its web client (npm was not found). \
         The REST API and DDP are served as usual.</p>\n",
    )
    .expect("placeholder page");
    dir.to_path_buf()
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel.to_str().expect("asset names are UTF-8");
            files.push(rel.replace('\\', "/"));
        }
    }
}

fn write_table(dist: &Path, out: &Path, files: &[String]) {
    let gz_dir = out.join("gz");
    let _ = fs::remove_dir_all(&gz_dir);
    let mut table = String::from(
        "/// Every file of the built client: (URL path, contents, gzipped contents or empty).\n\
         pub static FILES: &[(&str, &[u8], &[u8])] = &[\n",
    );
    for rel in files {
        let source = dist.join(rel);
        let ext = rel.rsplit('.').next().unwrap_or_default();
        let gz = if COMPRESSIBLE.contains(&ext) {
            let bytes = fs::read(&source).expect("read asset");
            let target = gz_dir.join(format!("{rel}.gz"));
            fs::create_dir_all(target.parent().expect("parent")).expect("gz dir");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&bytes).expect("gzip");
            fs::write(&target, enc.finish().expect("gzip")).expect("write gz");
            format!("include_bytes!({:?})", target.display().to_string())
        } else {
            "&[]".to_string()
        };
        table.push_str(&format!(
            "    ({:?}, include_bytes!({:?}), {gz}),\n",
            format!("/{rel}"),
            source.display().to_string()
        ));
    }
    table.push_str("];\n");
    fs::write(out.join("assets.rs"), table).expect("write assets.rs");
}
