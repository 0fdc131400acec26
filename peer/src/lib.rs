//! peer: the terminals (and, soon, coding agents) of your own machine, from your phone or
//! laptop, end to end encrypted over iroh.
//!
//! The library holds everything; the `peer` binary only parses the command line.
//! - [`host`]: the daemon (`peer host`): identity, endpoint, embedded relay, pairing, sessions.
//! - [`client`]: the CLI side: pairing, known hosts, connecting with resume, attaching.
//! - [`proto`]: the wire protocol, written once.
//! - [`pty`]: PTY sessions with replayable output.
//! - [`agent`]: coding agents driven over ACP.
//! - [`db`]: the host's database and the thread that owns it.
//! - [`machine`]: the host machine's model servers and GPUs.
//! - [`webpush`]: Web Push requests (RFC 8291 encryption, RFC 8292 VAPID), sans-IO.

pub mod agent;
pub mod client;
pub mod db;
pub mod host;
pub mod keystore;
pub mod machine;
pub mod net;
pub mod paths;
pub mod pty;
pub mod qr;
pub mod util;
pub mod webpush;

/// The wire protocol (the `peer-proto` crate).
pub use peer_proto as proto;

#[cfg(test)]
mod layering {
    //! The import graph reads `proto ← {host, client} ← cli`: the client never reaches into
    //! the host (what both need lives in `peer-proto`, `net`, `util` or `paths`), the host
    //! never into the client, and neither into the CLI. A `use` that breaks this fails here.

    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                out.push((path.display().to_string(), text));
            }
        }
    }

    fn offenders(module: &str, forbidden: &[&str]) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join(module);
        let mut files = Vec::new();
        sources(&dir, &mut files);
        files
            .into_iter()
            .flat_map(|(path, text)| {
                let hits: Vec<String> = text
                    .lines()
                    .filter(|l| forbidden.iter().any(|f| l.contains(f)))
                    .map(|l| format!("{path}: {}", l.trim()))
                    .collect();
                hits
            })
            .collect()
    }

    #[test]
    fn no_arrow_points_back() {
        let mut bad = offenders("client", &["crate::host", "crate::cli", "crate::agent"]);
        bad.extend(offenders("host", &["crate::client", "crate::cli"]));
        bad.extend(offenders(
            "agent",
            &["crate::client", "crate::cli", "crate::host"],
        ));
        bad.extend(offenders(
            "pty",
            &["crate::client", "crate::cli", "crate::host", "crate::agent"],
        ));
        assert!(
            bad.is_empty(),
            "imports against the layering:\n{}",
            bad.join("\n")
        );
    }
}
