//! `peer host`, `peer pair` (a fresh code from the running host) and `peer devices`: the
//! commands that run on the host machine.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use peer::client;
use peer::host::{Host, HostConfig, HostEvent};
use peer::paths::Paths;
use peer::proto::{LocalReply, LocalRequest, Role};

use super::{DevicesAction, HostArgs};

pub(super) async fn run_host(paths: Paths, args: HostArgs, relay_only: bool) -> Result<u8> {
    // The embedded relay holds a descriptor per relay client and browser socket: take the
    // whole hard limit, as `peer-relay` does.
    match peer_relay::fd_limit::raise_soft_limit() {
        Ok(r) if r.after.soft > r.before.soft => tracing::info!(
            from = r.before.soft,
            to = r.after.soft,
            "raised the file descriptor limit to the hard limit"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the file descriptor limit: {e}"),
    }
    let mut cfg = HostConfig::new(paths);
    if let Some(n) = args.name {
        cfg.name = n;
    }
    cfg.listen = args.listen;
    cfg.port = args.port;
    cfg.relay_port = args.relay_port;
    cfg.relays = args
        .relay
        .iter()
        .map(|u| u.parse().map_err(|e| anyhow!("--relay {u}: {e}")))
        .collect::<Result<_>>()?;
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
    cfg.scrollback_lines = args.scrollback;
    cfg.keep_ended = args.keep_ended.max(1);
    // Shells live in keepers run from this very binary (even if the file is replaced later),
    // unless they are to end with the host.
    cfg.keeper_exe = (!args.kill_sessions_on_exit).then(|| "/proc/self/exe".into());
    cfg.web_app = match args.web_root {
        Some(dir) => peer_relay::WebApp::Dir(dir),
        None => peer_relay::WebApp::BuiltIn,
    };
    cfg.app_url = match args.app_url {
        Some(u) => Some(peer::host::check_app_url(&u).map_err(|e| anyhow!(e))?),
        None => None,
    };
    cfg.attach_hold = Duration::from_secs(args.attach_hold);
    if args.push_insecure_loopback {
        eprintln!("peer: test mode: Web Push goes to plain-http endpoints on loopback too");
        cfg.push.allow_loopback_http = true;
    }
    let serves_app = cfg.relays.is_empty();
    let web_app = cfg.web_app.clone();
    let mut host = Host::start(cfg).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "peer host {}", host.endpoint_id())?;
    writeln!(out, "host key: {}", host.key_store())?;
    let status = host.status();
    writeln!(out, "relay: {}", status.relay_urls.join(" "))?;
    if serves_app {
        match (&web_app, peer_relay::built_in_web_app()) {
            (peer_relay::WebApp::Dir(dir), _) => writeln!(out, "web app: {}", dir.display())?,
            (_, Ok(_)) => writeln!(out, "web app: built in")?,
            (_, Err(why)) => writeln!(
                out,
                "web app: not built into this binary ({why}): pairing links open a page that \
                 says how to get it; `peer pair URL` works without it"
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
    outln!("shutting down");
    host.shutdown().await;
    Ok(0)
}

/// The relay token from `--relay-token`/`PEER_RELAY_TOKEN` or `--relay-token-file`.
pub(super) fn relay_token(
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

pub(super) fn print_pairing(out: &mut impl Write, url: &str, ttl: u64) -> Result<()> {
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

pub(super) async fn show_local_pairing(
    paths: &Paths,
    role: Role,
    ttl: u64,
    wait: bool,
) -> Result<u8> {
    let url = match client::local_request(
        paths,
        LocalRequest::NewPairing {
            role,
            ttl_secs: ttl,
        },
    )
    .await
    .map_err(|e| anyhow!(e))?
    {
        LocalReply::Pairing { url, .. } => url,
        LocalReply::Error(e) => bail!("{}", e.message),
        other => bail!("unexpected reply: {other:?}"),
    };
    print_pairing(&mut std::io::stdout().lock(), &url, ttl)?;
    if !wait {
        return Ok(0);
    }
    let pairing_id = peer_pairing::PairingPayload::from_url(&url)
        .context("the host's own pairing URL")?
        .secret
        .pairing_id();
    let waiting = client::local_request(
        paths,
        LocalRequest::AwaitPairing {
            pairing_id,
            timeout_secs: u32::try_from(ttl).unwrap_or(u32::MAX),
        },
    );
    let reply = with_spinner(
        "waiting for a device to pair (Ctrl-C stops waiting; the code stays valid)",
        waiting,
    )
    .await;
    match reply.map_err(|e| anyhow!(e))? {
        LocalReply::Paired {
            name,
            device,
            role,
            code,
        } => {
            outln!(
                "paired {name} ({}…) as {} — short code {code}: check that the device shows the same",
                &device[..12.min(device.len())],
                role.as_str()
            );
            Ok(0)
        }
        LocalReply::Error(e) => {
            eprintln!("peer: {}", e.message);
            Ok(1)
        }
        other => bail!("unexpected reply: {other:?}"),
    }
}

/// Runs `fut`, showing `what` with a spinner on stderr meanwhile (when stderr is a terminal).
async fn with_spinner<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    tokio::pin!(fut);
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut tick = tokio::time::interval(Duration::from_millis(120));
    let mut i = 0;
    let out = loop {
        tokio::select! {
            out = &mut fut => break out,
            _ = tick.tick() => {
                eprint!("\r{} {what}", frames[i % frames.len()]);
                i += 1;
            }
        }
    };
    // Clear the spinner's line.
    eprint!("\r\x1b[2K");
    out
}

pub(super) async fn devices(
    paths: &Paths,
    action: Option<DevicesAction>,
    json: bool,
) -> Result<u8> {
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
                outln!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            if list.is_empty() {
                outln!("no paired devices; pair one with `peer pair`");
            }
            let now = peer::util::now_secs();
            for d in list {
                let state = match (d.revoked_at, d.last_seen) {
                    (Some(at), _) => format!("revoked {}", peer::util::ago(at, now)),
                    (None, _) if d.connections > 0 => format!("online ({})", d.connections),
                    (None, Some(seen)) => format!("last seen {}", peer::util::ago(seen, now)),
                    (None, None) => "never connected".to_string(),
                };
                // How it paired: a browser through the bridge, or a native client.
                let how = if d.browser { "browser" } else { "peer CLI" };
                outln!(
                    "{}  {:<20} {:<8} {:<24} paired {} ({how})",
                    &d.id[..16],
                    d.name,
                    d.role.as_str(),
                    state,
                    peer::util::ago(d.paired_at, now),
                );
            }
            Ok(0)
        }
        LocalReply::Revoked { device, closed } => {
            outln!(
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
