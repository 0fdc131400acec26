//! Builds the web app (`../web`) into the binary, so that `peer` and `peer-relay` serve it from
//! wherever they are installed.
//!
//! Writes `$OUT_DIR/web-app/files/` (the app as Vite builds it) and `$OUT_DIR/web-app/gzip/`
//! (a gzip copy of each file that compresses), which `src/front/web_app.rs` embeds, and sets
//! `PEER_WEB_APP_BUILD` to one line saying where the app came from or why it is missing.
//!
//! Where the app comes from, in order:
//! - `PEER_WEB_DIST=DIR`: an app built elsewhere (e.g. a container's Node stage); it must hold
//!   an `index.html`, else the build fails.
//! - `PEER_WEB_APP=skip`: nowhere; the binary serves a page that says how to get the app.
//! - otherwise `npm ci` (only when `web/node_modules` is missing or older than
//!   `web/package-lock.json`) and `vite build` in `../web`, each with a time limit. When Node.js
//!   is missing or too old, or a step fails or times out (offline, say), the build goes on
//!   with a warning and the binary serves the page that says how to get the app — unless
//!   `PEER_WEB_APP=require`, which makes that a build error.
//!
//! Cargo runs this again when the app's sources, its lock file or these variables change.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Node.js version the app's dependencies need (`@noble/*`, Vite).
const NODE_MIN: (u32, u32) = (20, 19);
/// Time limit of `npm ci` (about 30 s on a fresh machine here; more on a slow link).
const INSTALL_LIMIT: Duration = Duration::from_secs(300);
/// Time limit of `vite build` (about 10 s on a quiet 2-core machine).
const BUILD_LIMIT: Duration = Duration::from_secs(300);

/// What is watched for changes: the app's inputs, never its outputs or `node_modules`.
const SOURCES: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SERVER").is_none() {
        // Only the server embeds the app.
        return;
    }
    for var in ["PEER_WEB_DIST", "PEER_WEB_APP", "CARGO_NET_OFFLINE"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.join("../web"), |root| root.join("web"));
    let embed = out.join("web-app");
    let _ = fs::remove_dir_all(&embed);
    let files = embed.join("files");
    let gzip = embed.join("gzip");
    mkdir(&files);
    mkdir(&gzip);

    let mode = std::env::var("PEER_WEB_APP").unwrap_or_default();
    if !matches!(mode.as_str(), "" | "auto" | "require" | "skip") {
        panic!("PEER_WEB_APP={mode:?}: expected auto (the default), require or skip");
    }
    let note = match std::env::var_os("PEER_WEB_DIST") {
        Some(dist) => {
            let dist = PathBuf::from(dist);
            if !dist.join("index.html").is_file() {
                panic!(
                    "PEER_WEB_DIST={}: no index.html there (build the app with `npm run build` \
                     in web/ and point PEER_WEB_DIST at its dist/)",
                    dist.display()
                );
            }
            println!("cargo:rerun-if-changed={}", dist.display());
            Ok((dist, "embedded from PEER_WEB_DIST".to_owned()))
        }
        None if mode == "skip" => Err("the build skipped it (PEER_WEB_APP=skip)".to_owned()),
        None => build_app(&web, &out),
    };
    match note {
        Ok((dist, note)) => {
            let count = copy_and_compress(&dist, &files, &gzip)
                .unwrap_or_else(|e| panic!("copying the web app from {}: {e}", dist.display()));
            println!("cargo:rustc-env=PEER_WEB_APP_BUILD={note} ({count} files)");
        }
        Err(why) => {
            if mode == "require" {
                panic!("the web app could not be built (PEER_WEB_APP=require): {why}");
            }
            println!(
                "cargo:warning=the web app is not built into this binary: {why}; it serves a page \
                 that says how to get it"
            );
            println!("cargo:rustc-env=PEER_WEB_APP_BUILD=missing: {why}");
            // Try again when Node.js may have come (a missing path would rerun every build).
            println!("cargo:rerun-if-env-changed=PATH");
            watch(&web.join("node_modules/.package-lock.json"));
        }
    }
}

/// Reruns this script when `path` changes; only if it exists (cargo reruns every build for a
/// missing one).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn mkdir(dir: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
}

/// Builds the app into `$OUT_DIR/web-dist`; its directory and a note, or why not.
fn build_app(web: &Path, out: &Path) -> Result<(PathBuf, String), String> {
    if !web.join("package.json").is_file() {
        return Err(format!(
            "its sources are not at {} (a packaged crate?); set PEER_WEB_DIST to a built app",
            web.display()
        ));
    }
    for source in SOURCES {
        watch(&web.join(source));
    }
    let version = node_version()?;
    if version < NODE_MIN {
        return Err(format!(
            "Node.js {}.{} is too old (the app needs {}.{} or newer)",
            version.0, version.1, NODE_MIN.0, NODE_MIN.1
        ));
    }
    // Two builds of this tree at once (another target directory) must not install together.
    let lock = fs::File::open(web.join("package.json"))
        .map_err(|e| format!("{}: {e}", web.join("package.json").display()))?;
    let waited = Instant::now();
    while lock.try_lock().is_err() {
        if waited.elapsed() > INSTALL_LIMIT + BUILD_LIMIT {
            return Err("another build of the web app in this tree did not finish".to_owned());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log_path = out.join("web-app-build.log");
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let stale = modified(&web.join("node_modules/.package-lock.json"))
        .is_none_or(|installed| modified(&web.join("package-lock.json")) > Some(installed));
    if stale {
        let mut npm = Command::new("npm");
        npm.args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            // npm's defaults wait minutes for each download when the network is gone.
            "--fetch-timeout=30000",
            "--fetch-retries=1",
        ]);
        if std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true") {
            npm.arg("--offline");
        }
        run(
            npm.current_dir(web),
            &log,
            &log_path,
            INSTALL_LIMIT,
            "npm ci",
        )
        .map_err(|e| format!("{e}; can this machine reach the npm registry?"))?;
    }
    let dist = out.join("web-dist");
    let mut vite = Command::new("node");
    vite.arg("node_modules/vite/bin/vite.js")
        .args(["build", "--emptyOutDir", "--logLevel", "warn", "--outDir"])
        .arg(&dist)
        .current_dir(web);
    run(&mut vite, &log, &log_path, BUILD_LIMIT, "vite build")?;
    if !dist.join("index.html").is_file() {
        return Err(format!(
            "vite build made no index.html in {}",
            dist.display()
        ));
    }
    Ok((dist, "built from web/ by vite".to_owned()))
}

/// The `node` on PATH, as (major, minor).
fn node_version() -> Result<(u32, u32), String> {
    let output = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => "Node.js (node, npm) is not installed".to_owned(),
            _ => format!("cannot run node: {e}"),
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.trim().trim_start_matches('v').split('.');
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (next(), next()) {
        (Some(major), Some(minor)) if output.status.success() => Ok((major, minor)),
        _ => Err(format!("`node --version` printed {:?}", text.trim())),
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs `cmd` with its output appended to `log`; kills its whole process group after `limit`.
fn run(
    cmd: &mut Command,
    log: &fs::File,
    log_path: &Path,
    limit: Duration,
    what: &str,
) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;
    let clone = |f: &fs::File| f.try_clone().map_err(|e| format!("{what}: {e}"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(clone(log)?)
        .stderr(clone(log)?)
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("{what}: npm/node not found"),
            _ => format!("{what}: {e}"),
        })?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                // npm and node start children of their own: end the whole group.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what} did not finish within {} s (log: {})",
                    limit.as_secs(),
                    log_path.display()
                ));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log_path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    for line in tail.iter().rev() {
        println!("cargo:warning=  {line}");
    }
    Err(format!(
        "{what} failed ({status}; log: {})",
        log_path.display()
    ))
}

/// Copies the app and writes a gzip copy of each file that shrinks by at least a tenth; the
/// number of files.
fn copy_and_compress(from: &Path, files: &Path, gzip: &Path) -> io::Result<usize> {
    let mut count = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(from.join(&rel))? {
            let entry = entry?;
            let name = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                mkdir(&files.join(&name));
                stack.push(name);
                continue;
            }
            let data = fs::read(from.join(&name))?;
            fs::write(files.join(&name), &data)?;
            count += 1;
            if !compressible(&name) {
                continue;
            }
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&data)?;
            let packed = encoder.finish()?;
            if packed.len() * 10 <= data.len() * 9 {
                let target = gzip.join(&name);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(target, packed)?;
            }
        }
    }
    Ok(count)
}

/// Text formats (and wasm) compress; images and fonts already are.
fn compressible(name: &Path) -> bool {
    let ext = name
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(
        ext.as_deref(),
        Some(
            "html"
                | "htm"
                | "js"
                | "mjs"
                | "css"
                | "json"
                | "map"
                | "webmanifest"
                | "svg"
                | "txt"
                | "xml"
                | "wasm"
        )
    )
}
