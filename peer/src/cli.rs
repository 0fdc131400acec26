//! Command-line parsing and the one place that prints errors and picks exit codes.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use peer::client::{self, Dialer, HostConn, KnownHosts};
use peer::host::{self, Host, HostConfig, HostEvent};
use peer::paths::Paths;
use peer::proto::{LocalReply, LocalRequest, Reply, Request, Role};

mod agent;
mod service;
mod sessions;
mod terminal;

use sessions::{attach, create, print_sessions, split_host_id};

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
        /// Host name or id prefix (default: the only paired host).
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
    /// Show the status of the host running on this machine.
    Status,
    /// List the coding agents a host can run, installed or not.
    Agents {
        /// Host name or id prefix (default: the only paired host).
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
    /// Show the audit log of the host running on this machine.
    Audit {
        /// Rows to show, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Install `peer host` as a service that starts at boot and restarts on failure.
    Service {
        #[command(subcommand)]
        action: service::ServiceAction,
    },
}

#[derive(Debug, Args)]
struct HostArgs {
    /// Name shown to paired devices (default: the machine's host name).
    #[arg(long)]
    name: Option<String>,
    /// IP address to listen on (endpoint and embedded relay).
    #[arg(long, default_value = "0.0.0.0")]
    listen: IpAddr,
    /// UDP port for direct connections (default: the last one used, else random).
    #[arg(long)]
    port: Option<u16>,
    /// TCP port of the embedded relay (default: the last one used, else random).
    #[arg(long)]
    relay_port: Option<u16>,
    /// Use this external relay (e.g. https://relay.example.com) instead of the embedded one.
    #[arg(long)]
    relay: Option<String>,
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
    /// Seconds a pairing code stays valid.
    #[arg(long, default_value_t = host::DEFAULT_PAIRING_TTL.as_secs())]
    pairing_ttl: u64,
    /// Role of devices paired with the code shown at start.
    #[arg(long, default_value = "operator")]
    role: Role,
    /// Do not print a pairing code at start.
    #[arg(long)]
    no_pairing: bool,
    /// Serve the web app from this directory on the embedded relay's port (default: the app
    /// built in the source tree this binary comes from, `web/dist`, if it exists).
    #[arg(long, env = "PEER_WEB_ROOT")]
    web_root: Option<std::path::PathBuf>,
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
}

#[derive(Debug, Args)]
struct NewArgs {
    /// Host name or id prefix (default: the only paired host).
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
    /// `[HOST] [ID]`: host name or id prefix, and session id (default: the only session).
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
    /// Bytes of earlier output to replay when attaching to an existing session.
    #[arg(long, default_value_t = 256 * 1024)]
    replay: u64,
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,iroh_relay::server=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
        Err(e) => {
            eprintln!("peer: {e:#}");
            ExitCode::from(255)
        }
    }
}

async fn run(cli: Cli) -> Result<u8> {
    let paths = Paths::from_env().context("locating peer's state directory")?;
    let relay_only = cli.relay_only;
    match cli.command {
        Command::Host(args) => run_host(paths, args, relay_only).await,
        Command::Pair(args) => match args.url {
            Some(url) => pair_with(&paths, &url, args.name, relay_only).await,
            None => show_local_pairing(&paths, args.role, args.ttl).await,
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
            println!("{}", info?.id);
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
        Command::Status => {
            match client::local_request(&paths, LocalRequest::Status)
                .await
                .map_err(|e| anyhow!(e))?
            {
                LocalReply::Status(s) => {
                    println!("host       {}", s.host_name);
                    println!("id         {}", s.endpoint_id);
                    println!("relays     {}", s.relay_urls.join(" "));
                    println!("direct     {}", s.direct_addrs.join(" "));
                    println!("key        {}", s.key_store);
                    println!("sessions   {}", s.sessions);
                    println!("clients    {}", s.connections);
                    Ok(0)
                }
                other => bail!("unexpected reply: {other:?}"),
            }
        }
        Command::Service { action } => service::run(action, &paths),
        Command::Agents { host, json } => agent::agents(&paths, host, json, relay_only).await,
        Command::Agent { action } => agent::run(&paths, action, relay_only).await,
        Command::Audit { limit, json } => agent::audit(&paths, limit, json).await,
    }
}

async fn run_host(paths: Paths, args: HostArgs, relay_only: bool) -> Result<u8> {
    let mut cfg = HostConfig::new(paths);
    if let Some(n) = args.name {
        cfg.name = n;
    }
    cfg.listen = args.listen;
    cfg.port = args.port;
    cfg.relay_port = args.relay_port;
    cfg.relay = args
        .relay
        .map(|u| u.parse())
        .transpose()
        .map_err(|e| anyhow!("--relay: {e}"))?;
    cfg.relay_token = relay_token(args.relay_token, args.relay_token_file.as_deref())?;
    cfg.relay_cert_sha256 = args
        .relay_cert_sha256
        .as_deref()
        .map(peer_relay::pin::Fingerprint::parse)
        .transpose()
        .map_err(|e| anyhow!("--relay-cert-sha256: {e}"))?;
    cfg.advertise = args.advertise;
    cfg.relay_only = relay_only;
    cfg.buffer_bytes = args.buffer.max(4096);
    cfg.web_root = args.web_root.or_else(built_web_app);
    let serves_app = cfg.relay.is_none();
    let host_web_root = cfg.web_root.clone();
    let mut host = Host::start(cfg).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "peer host {}", host.endpoint_id())?;
    writeln!(out, "host key: {}", host.key_store())?;
    let status = host.status();
    writeln!(out, "relay: {}", status.relay_urls.join(" "))?;
    if serves_app {
        match &host_web_root {
            Some(dir) => writeln!(out, "web app: {}", dir.display())?,
            None => writeln!(
                out,
                "web app: not built (npm --prefix web ci && npm --prefix web run build), \
                 so pairing links work with `peer pair` only"
            )?,
        }
    }
    if !args.no_pairing {
        let (url, _) = host.pairing_url(args.role, Duration::from_secs(args.pairing_ttl))?;
        print_pairing(&mut out, &url, args.pairing_ttl)?;
    }
    drop(out);
    let mut events = host.take_events();
    let printer = async {
        while let Some(ev) = events.as_mut()?.recv().await {
            match ev {
                HostEvent::Paired {
                    name,
                    device,
                    role,
                    code,
                } => println!(
                    "paired {name} ({}) as {} — short code {code}",
                    &device[..8],
                    role.as_str()
                ),
                HostEvent::PairingFailed(why) => println!("pairing attempt failed: {why}"),
            }
        }
        Some(())
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = printer => {}
    }
    println!("shutting down");
    host.shutdown().await;
    Ok(0)
}

/// The relay token from `--relay-token`/`PEER_RELAY_TOKEN` or `--relay-token-file`.
fn relay_token(
    text: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<peer_pairing::RelayToken>> {
    let text = zeroize::Zeroizing::new(match (text, file) {
        (Some(_), Some(_)) => {
            bail!(
                "give the relay token once: --relay-token / PEER_RELAY_TOKEN or --relay-token-file"
            )
        }
        (Some(t), None) => t,
        (None, Some(path)) => {
            let content = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("--relay-token-file {}", path.display()))?,
            );
            // The first token line, in the format of peer-relay's tokens file.
            content
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .unwrap_or_default()
                .to_owned()
        }
        (None, None) => return Ok(None),
    });
    peer_pairing::RelayToken::new(text.trim())
        .map(Some)
        .map_err(|_| {
            anyhow!(
                "invalid relay token: it must be 16 to 255 printable ASCII characters without \
                 spaces (`peer-relay --generate-token` makes one)"
            )
        })
}

fn print_pairing(out: &mut impl Write, url: &str, ttl: u64) -> Result<()> {
    if let Some(qr) = peer::qr::render(url) {
        writeln!(out, "{qr}")?;
    }
    writeln!(
        out,
        "Scan the code, or on another machine run:  peer pair '{url}'"
    )?;
    writeln!(out, "pairing URL: {url}")?;
    writeln!(out, "(valid {} min, one device)", ttl.div_ceil(60))?;
    out.flush()?;
    Ok(())
}

async fn show_local_pairing(paths: &Paths, role: Role, ttl: u64) -> Result<u8> {
    match client::local_request(
        paths,
        LocalRequest::NewPairing {
            role,
            ttl_secs: ttl,
        },
    )
    .await
    .map_err(|e| anyhow!(e))?
    {
        LocalReply::Pairing { url, .. } => {
            print_pairing(&mut std::io::stdout().lock(), &url, ttl)?;
            Ok(0)
        }
        LocalReply::Error(e) => bail!("{}", e.message),
        other => bail!("unexpected reply: {other:?}"),
    }
}

async fn load_device(paths: &Paths) -> Result<iroh::SecretKey> {
    let p = paths.clone();
    let (key, _) = tokio::task::spawn_blocking(move || client::load_device_key(&p)).await??;
    Ok(key)
}

async fn pair_with(paths: &Paths, url: &str, name: Option<String>, relay_only: bool) -> Result<u8> {
    let device = load_device(paths).await?;
    let name = name.unwrap_or_else(host::default_host_name);
    let result = client::pair(url, &device, &name, relay_only).await?;
    let mut hosts = KnownHosts::load(paths.hosts_file())?;
    let stored = hosts.upsert(result.host.clone());
    hosts.save()?;
    println!(
        "paired with {stored} as {} — short code {} (check that the host shows the same)",
        result.role.as_str(),
        result.code
    );
    Ok(0)
}

fn list_hosts(paths: &Paths, json: bool) -> Result<u8> {
    let hosts = KnownHosts::load(paths.hosts_file())?;
    if json {
        // The relay token is a secret: say whether there is one, not what it is.
        let mut list = serde_json::to_value(&hosts.hosts)?;
        for (value, host) in list.as_array_mut().into_iter().flatten().zip(&hosts.hosts) {
            if let Some(obj) = value.as_object_mut() {
                obj.insert(
                    "relay_token".into(),
                    serde_json::Value::Bool(host.relay_token.is_some()),
                );
            }
        }
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if hosts.hosts.is_empty() {
        println!("no paired hosts; run `peer pair URL`");
    }
    for h in &hosts.hosts {
        println!(
            "{:<20} {} {:<8} {}",
            h.name,
            &h.endpoint_id[..10.min(h.endpoint_id.len())],
            h.role.as_str(),
            h.relay_urls.join(" ")
        );
    }
    Ok(0)
}

async fn connect(
    paths: &Paths,
    host: Option<&str>,
    relay_only: bool,
) -> Result<(Dialer, HostConn)> {
    let hosts = KnownHosts::load(paths.hosts_file())?;
    let known = hosts.find(host)?.clone();
    let device = load_device(paths).await?;
    let dialer = Dialer::new(&known, device, relay_only).await?;
    let conn = dialer
        .connect()
        .await
        .with_context(|| format!("connecting to {}", known.name))?;
    Ok((dialer, conn))
}

/// Closes the connection and the endpoint so the host sees a clean goodbye at once.
async fn hang_up(dialer: Dialer, conn: HostConn) {
    conn.close();
    tokio::time::timeout(Duration::from_secs(1), dialer.close())
        .await
        .ok();
}

async fn devices(paths: &Paths, action: Option<DevicesAction>, json: bool) -> Result<u8> {
    let req = match &action {
        None => LocalRequest::ListDevices,
        Some(DevicesAction::Revoke { id }) => LocalRequest::RevokeDevice { id: id.clone() },
    };
    match client::local_request(paths, req)
        .await
        .map_err(|e| anyhow!(e))?
    {
        LocalReply::Devices(list) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            if list.is_empty() {
                println!("no paired devices; pair one with `peer pair`");
            }
            for d in list {
                let state = match d.revoked_at {
                    Some(_) => "revoked".to_string(),
                    None if d.connections > 0 => format!("online ({})", d.connections),
                    None => "offline".to_string(),
                };
                println!(
                    "{}  {:<20} {:<8} {}",
                    &d.id[..16],
                    d.name,
                    d.role.as_str(),
                    state
                );
            }
            Ok(0)
        }
        LocalReply::Revoked { device, closed } => {
            println!(
                "revoked {} ({}); closed {closed} connection(s)",
                device.name,
                &device.id[..16]
            );
            Ok(0)
        }
        LocalReply::Error(e) => bail!("{}", e.message),
        other => bail!("unexpected reply: {other:?}"),
    }
}

/// The web app built in the source tree this binary was compiled from (`web/dist`), if there.
fn built_web_app() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    dir.join("index.html").is_file().then_some(dir)
}
