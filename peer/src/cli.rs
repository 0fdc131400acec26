//! Command-line parsing and the one place that prints errors and picks exit codes.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use peer::host;
use peer::paths::Paths;
use peer::proto::{Reply, Request, Role};

/// `println!` that returns the error (a closed stdout: `peer ls | head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

mod agent;
mod docs;
mod host_cmd;
mod machine;
mod service;
mod session;
mod terminal;
mod watch;

use host_cmd::{devices, run_host, show_local_pairing};
use session::{
    attach, connect, create, hang_up, list_hosts, pair_with, print_sessions, split_host_id,
};

/// peer: your machine's terminals, in your pocket.
///
/// Run `peer host` on the machine with the shells, scan its QR code (or run `peer pair URL` on
/// a laptop), then `peer attach --new` from anywhere.
#[derive(Debug, Parser)]
#[command(name = "peer", version, about, long_about)]
struct Cli {
    /// Never use direct paths; send everything through the relay (strict firewalls).
    #[arg(long, global = true)]
    relay_only: bool,
    /// Log to stderr (-v: info, -vv: debug). Without it, client commands write warnings to
    /// <PEER_HOME>/client/peer.log and nothing to the terminal; `RUST_LOG` also logs to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host: serve this machine's terminals to paired devices.
    Host(HostArgs),
    /// Pair with a host (`peer pair URL`), or, on the host machine, show a fresh pairing code.
    Pair(PairArgs),
    /// List the hosts this device is paired with.
    Hosts {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List a host's sessions.
    Ls {
        /// Host name or id prefix, or `local` (default: the host running on this machine,
        /// else the only paired host).
        host: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Start a new session on a host (detached).
    New(NewArgs),
    /// Kill a running session, or forget an ended one.
    Kill {
        /// `[HOST] ID`.
        #[arg(num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// Attach to a session (detach with Enter ~ .).
    Attach(AttachArgs),
    /// List or revoke the devices paired with the host on this machine.
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show the status of the host running on this machine, with its GPUs.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the coding agents a host can run, installed or not.
    Agents {
        /// Host name or id prefix, or `local` (default: the host running on this machine,
        /// else the only paired host).
        host: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the model servers a host can reach on its machine, and their models.
    Models {
        /// Host name or id prefix, or `local` (default: the host running on this machine,
        /// else the only paired host).
        host: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Agent sessions: start, list, attach, prompt, cancel, diff, close.
    Agent {
        #[command(subcommand)]
        action: agent::AgentCmd,
    },
    /// Print the notices of one or every paired host as they happen (an agent needs approval,
    /// a turn ended, a session ended) and run a command for each (`--exec`).
    Watch(watch::WatchArgs),
    /// Show the audit log of the host running on this machine.
    Audit(agent::AuditArgs),
    /// Install `peer host` as a service that starts at boot and restarts on failure.
    Service {
        #[command(subcommand)]
        action: service::ServiceAction,
    },
    /// Print the shell completion script for SHELL (bash: `source <(peer completions bash)`).
    #[command(after_help = docs::COMPLETIONS_HELP)]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (`peer man | man -l -`), or write one per command to a directory.
    Man {
        /// Write peer.1, peer-host.1, … into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
struct HostArgs {
    /// Name shown to paired devices (default: the machine's host name).
    #[arg(long)]
    name: Option<String>,
    /// IP address to listen on (endpoint and embedded relay). The default, `::`, is every
    /// address of both families (IPv4 and IPv6; IPv4 only where the machine has no IPv6);
    /// `0.0.0.0` is IPv4 only.
    #[arg(long, default_value = "::")]
    listen: IpAddr,
    /// UDP port for direct connections (default: the last one used, else random).
    #[arg(long)]
    port: Option<u16>,
    /// TCP port of the embedded relay (default: the last one used, else random).
    #[arg(long)]
    relay_port: Option<u16>,
    /// Use this external relay (e.g. https://relay.example.com) instead of the embedded one.
    /// Give it up to four times (or PEER_RELAYS=URL,URL): the host stays reachable through
    /// each, fails over when one goes down, and devices dial through any of them.
    #[arg(long, value_name = "URL", env = "PEER_RELAYS", value_delimiter = ',')]
    relay: Vec<String>,
    /// Token for an external relay in token mode (`peer-relay --generate-token`). Devices that
    /// pair get it in the pairing code, to use that relay; it gives no access to this host.
    /// Other users can see flags in `ps`: prefer PEER_RELAY_TOKEN or --relay-token-file.
    #[arg(
        long,
        env = "PEER_RELAY_TOKEN",
        hide_env_values = true,
        requires = "relay"
    )]
    relay_token: Option<String>,
    /// Read the relay token from this file: its first line that is not empty or a `#` comment
    /// (peer-relay's tokens file format).
    #[arg(long, value_name = "PATH", requires = "relay")]
    relay_token_file: Option<std::path::PathBuf>,
    /// SHA-256 fingerprint of the external relay's TLS certificate, as `peer-relay --dev-tls`
    /// prints it (AB:CD:… or 64 hex digits): trust exactly that certificate (self-signed
    /// relays). Devices that pair get the pin too.
    #[arg(long, value_name = "HEX", requires = "relay")]
    relay_cert_sha256: Option<String>,
    /// IP address written into pairing URLs for the embedded relay (default: this machine's
    /// LAN address).
    #[arg(long)]
    advertise: Option<IpAddr>,
    /// Output kept per session for replay, in bytes.
    #[arg(long, default_value_t = host::DEFAULT_BUFFER)]
    buffer: usize,
    /// Scrollback lines each session's screen model keeps: what an attach with a picture of
    /// the screen can show above it (24 bytes per column per line).
    #[arg(long, value_name = "LINES", default_value_t = peer::pty::screen::DEFAULT_SCROLLBACK)]
    scrollback: usize,
    /// Ended sessions kept (the newest), listed with their exit status and last output across
    /// restarts until forgotten with `peer kill ID`.
    #[arg(long, value_name = "N", default_value_t = host::DEFAULT_KEEP_ENDED)]
    keep_ended: usize,
    /// Shells end with the host, however it stops (by default each shell's keeper keeps it
    /// running, and the next `peer host` takes it over).
    #[arg(long)]
    kill_sessions_on_exit: bool,
    /// Seconds a pairing code stays valid.
    #[arg(long, default_value_t = host::DEFAULT_PAIRING_TTL.as_secs())]
    pairing_ttl: u64,
    /// Role of devices paired with the code shown at start.
    #[arg(long, default_value = "operator")]
    role: Role,
    /// Do not print a pairing code at start.
    #[arg(long)]
    no_pairing: bool,
    /// Serve the web app from this directory on the embedded relay's port instead of the one
    /// built into this binary (e.g. `web/dist` while working on the app).
    #[arg(long, value_name = "DIR", env = "PEER_WEB_ROOT")]
    web_root: Option<std::path::PathBuf>,
    /// Base URL of the web app that pairing links open (default: this host's own front, or
    /// the external relay). Give several hosts the same one (e.g. a relay of yours serving the
    /// app with --web-root) and a phone keeps them in one app, with one key.
    #[arg(long, value_name = "URL")]
    app_url: Option<String>,
    /// Seconds an attachment whose client vanished without detaching keeps its place: the
    /// program waits for it as if it were still reading, so a client back within this loses
    /// nothing.
    #[arg(long, value_name = "SECS", default_value_t = peer::pty::ATTACH_HOLD.as_secs())]
    attach_hold: u64,
    /// Tests only: send Web Push to plain-http endpoints on loopback (a fake push service).
    #[arg(long, hide = true)]
    push_insecure_loopback: bool,
}

#[derive(Debug, Args)]
struct PairArgs {
    /// The pairing URL shown by `peer host`. Without it, ask the host on this machine for a
    /// fresh code.
    url: Option<String>,
    /// Name this device is listed under on the host.
    #[arg(long)]
    name: Option<String>,
    /// (Host side) role of the device that uses the new code.
    #[arg(long, default_value = "operator")]
    role: Role,
    /// (Host side) seconds the new code stays valid.
    #[arg(long, default_value_t = host::DEFAULT_PAIRING_TTL.as_secs())]
    ttl: u64,
    /// (Host side) print the code and exit instead of waiting for a device to pair with it.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// Host name or id prefix, or `local` (default: the host running on this machine,
    /// else the only paired host).
    host: Option<String>,
    /// A name for the session.
    #[arg(long)]
    name: Option<String>,
    /// Working directory on the host (default: the host user's home).
    #[arg(long)]
    cwd: Option<String>,
    /// Command and arguments (default: the host user's login shell).
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct AttachArgs {
    /// `[HOST] [ID]`: host name or id prefix (or `local`), and session id (default: the only
    /// running session).
    #[arg(num_args = 0..=2)]
    args: Vec<String>,
    /// Create a new session and attach to it; exit with its exit status.
    #[arg(long)]
    new: bool,
    /// With --new: a name for the session.
    #[arg(long)]
    name: Option<String>,
    /// With --new: working directory on the host.
    #[arg(long)]
    cwd: Option<String>,
    /// Replay this many bytes of earlier output instead of a picture of the screen when
    /// attaching to an existing session (and report output lost while away as a gap instead
    /// of redrawing the screen).
    #[arg(long, value_name = "BYTES")]
    replay: Option<u64>,
    /// Lines of scrollback above a picture of the screen.
    #[arg(long, value_name = "LINES", default_value_t = 1000)]
    scrollback: u32,
    /// Predictive local echo: show typed characters, backspace and the left and right arrows
    /// before the host echoes them, underlined until it does (a wrong guess is taken back
    /// within a round trip): adaptive (when the round trip is above 30 ms), always, or never.
    /// Never at password prompts (echo off) or in full-screen programs.
    #[arg(long, value_name = "WHEN", default_value = "adaptive")]
    predict: peer::client::PredictMode,
    /// With --new: command and arguments.
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum DevicesAction {
    /// Revoke a device: it can no longer connect, and its live connections close now.
    Revoke {
        /// Device id or a unique prefix of it.
        id: String,
    },
}

/// Runs the CLI.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated from this definition; no state directory, runtime or logging needed.
    let printed = match &cli.command {
        Command::Completions { shell } => Some(docs::completions(*shell)),
        Command::Man { out_dir } => Some(docs::man(out_dir.as_deref())),
        _ => None,
    };
    if let Some(result) = printed {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peer: {e:#}");
                ExitCode::from(255)
            }
        };
    }
    logging(matches!(cli.command, Command::Host(_)), cli.verbose);
    // The host serves many connections on all cores. A client has one connection and a few
    // tasks: on one thread, a keystroke's way from stdin to the QUIC socket and an echo's way
    // back to stdout take no cross-thread wake-ups (keystroke echo p50 95 → 77 µs on the
    // benchmark machine, docs/benchmarks.md).
    let mut builder = match cli.command {
        Command::Host(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("peer: cannot start the async runtime: {e}");
            return ExitCode::from(255);
        }
    };
    let result = runtime.block_on(run(cli));
    // Blocked stdin readers must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`| head`) is no error to report: end as if by SIGPIPE.
        Err(e) if broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("peer: {}", error_text(&e));
            ExitCode::from(255)
        }
    }
}

/// Library logs never reach the terminal of a client command unless asked for (`-v` or
/// `RUST_LOG`): they go to `<PEER_HOME>/client/peer.log` (warnings, at most about 1 MiB).
/// `peer host` logs to stderr as a daemon does.
fn logging(host: bool, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match (&env, verbose) {
        (Some(f), _) => EnvFilter::new(f),
        (None, 0) => EnvFilter::new("warn,iroh_relay::server=error"),
        (None, 1) => EnvFilter::new("info"),
        (None, _) => EnvFilter::new("debug"),
    };
    if host || verbose > 0 || env.is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
        return;
    }
    let file = Paths::from_env().ok().and_then(|p| {
        let dir = p.client_dir();
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("peer.log");
        let big = std::fs::metadata(&path).is_ok_and(|m| m.len() > 1024 * 1024);
        std::fs::OpenOptions::new()
            .create(true)
            .append(!big)
            .write(true)
            .truncate(big)
            .open(path)
            .ok()
    });
    if let Some(file) = file {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes, each said once: a cause whose text the message already holds is
/// not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

async fn run(cli: Cli) -> Result<u8> {
    let paths = Paths::from_env().context("locating peer's state directory")?;
    let relay_only = cli.relay_only;
    match cli.command {
        Command::Host(args) => run_host(paths, args, relay_only).await,
        Command::Pair(args) => match args.url {
            Some(url) => pair_with(&paths, &url, args.name, relay_only).await,
            None => show_local_pairing(&paths, args.role, args.ttl, !args.no_wait).await,
        },
        Command::Hosts { json } => list_hosts(&paths, json),
        Command::Ls { host, json } => {
            let (dialer, conn) = connect(&paths, host.as_deref(), relay_only).await?;
            let reply = conn.request(Request::ListSessions).await;
            hang_up(dialer, conn).await;
            let Reply::Sessions(list) = reply? else {
                bail!("unexpected reply");
            };
            print_sessions(&list, json)?;
            Ok(0)
        }
        Command::New(args) => {
            let (dialer, conn) = connect(&paths, args.host.as_deref(), relay_only).await?;
            let info = create(&conn, args.name, args.cwd, args.command, false).await;
            hang_up(dialer, conn).await;
            outln!("{}", info?.id);
            Ok(0)
        }
        Command::Kill { args } => {
            let (host, id) = split_host_id(&args)?;
            let id = id.ok_or_else(|| anyhow!("which session? `peer kill [HOST] ID`"))?;
            let (dialer, conn) = connect(&paths, host.as_deref(), relay_only).await?;
            let reply = conn.request(Request::KillSession { session: id }).await;
            hang_up(dialer, conn).await;
            reply?;
            Ok(0)
        }
        Command::Attach(args) => attach(&paths, args, relay_only).await,
        Command::Devices { action, json } => devices(&paths, action, json).await,
        Command::Status { json } => machine::status(&paths, json).await,
        Command::Models { host, json } => machine::models(&paths, host, json, relay_only).await,
        Command::Service { action } => service::run(action, &paths),
        Command::Agents { host, json } => agent::agents(&paths, host, json, relay_only).await,
        Command::Agent { action } => agent::run(&paths, action, relay_only).await,
        Command::Audit(a) => agent::audit(&paths, a).await,
        Command::Watch(args) => watch::run(&paths, args, relay_only).await,
        Command::Completions { .. } | Command::Man { .. } => Ok(0),
    }
}
