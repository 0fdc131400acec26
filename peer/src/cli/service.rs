//! `peer service`: run `peer host` as a user service (systemd on Linux, launchd on macOS) that
//! starts at boot and restarts on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use peer::paths::Paths;

/// What to do with the service.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Write the unit, enable it and start it now.
    Install {
        /// Only print the unit file; change nothing.
        #[arg(long)]
        print: bool,
        /// Extra arguments for `peer host` (after --).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Stop and remove the service.
    Uninstall,
}

const UNIT: &str = "peer-host.service";
const LABEL: &str = "dev.peer.host";

/// Runs a service action.
pub fn run(action: ServiceAction, paths: &Paths) -> Result<u8> {
    let exe = std::env::current_exe().context("locating the peer binary")?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")?;
    let macos = cfg!(target_os = "macos");
    match action {
        ServiceAction::Install { print, args } => {
            let (path, text) = if macos {
                (
                    home.join(format!("Library/LaunchAgents/{LABEL}.plist")),
                    launchd_plist(&exe, paths.root(), &args),
                )
            } else {
                (
                    systemd_dir(&home).join(UNIT),
                    systemd_unit(&exe, paths.root(), &args),
                )
            };
            if print {
                print!("{text}");
                return Ok(0);
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            if macos {
                sh("launchctl", &["load", "-w", &path.to_string_lossy()])?;
            } else {
                sh("systemctl", &["--user", "daemon-reload"])?;
                sh("systemctl", &["--user", "enable", "--now", UNIT])?;
                println!(
                    "started. To keep it running without a login session (at boot), run once:\n  sudo loginctl enable-linger {}",
                    std::env::var("USER").unwrap_or_else(|_| "$USER".into())
                );
                println!("logs: journalctl --user -u {UNIT} -f; pairing code: peer pair");
            }
            Ok(0)
        }
        ServiceAction::Uninstall => {
            if macos {
                let path = home.join(format!("Library/LaunchAgents/{LABEL}.plist"));
                let _ = sh("launchctl", &["unload", "-w", &path.to_string_lossy()]);
                remove(&path)?;
            } else {
                let _ = sh("systemctl", &["--user", "disable", "--now", UNIT]);
                remove(&systemd_dir(&home).join(UNIT))?;
                let _ = sh("systemctl", &["--user", "daemon-reload"]);
            }
            Ok(0)
        }
    }
}

fn systemd_dir(home: &Path) -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"))
        .join("systemd/user")
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            println!("removed {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("no service installed");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn sh(cmd: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(cmd)
        .args(args)
        .status()
        .with_context(|| format!("running {cmd}"))?;
    if !status.success() {
        bail!("{cmd} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Quotes an argument for a systemd `ExecStart=` line.
fn systemd_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
    {
        s.to_owned()
    } else {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('%', "%%")
        )
    }
}

fn systemd_unit(exe: &Path, home: &Path, args: &[String]) -> String {
    let mut exec = vec![
        systemd_quote(&exe.to_string_lossy()),
        "host".into(),
        "--no-pairing".into(),
    ];
    exec.extend(args.iter().map(|a| systemd_quote(a)));
    format!(
        "[Unit]\n\
         Description=peer host: this machine's terminals for your paired devices\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={}\n\
         Environment={}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         KillSignal=SIGTERM\n\
         # Stop and restart signal the host only: the session keepers it started stay, and\n\
         # the next host takes their shells over (`peer host --kill-sessions-on-exit`: no keepers).\n\
         KillMode=process\n\
         TimeoutStopSec=10\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec.join(" "),
        systemd_quote(&format!("PEER_HOME={}", home.display())),
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn launchd_plist(exe: &Path, home: &Path, args: &[String]) -> String {
    let mut argv = vec![
        exe.to_string_lossy().into_owned(),
        "host".into(),
        "--no-pairing".into(),
    ];
    argv.extend(args.iter().cloned());
    let argv: String = argv
        .iter()
        .map(|a| format!("    <string>{}</string>\n", xml_escape(a)))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\
         \x20 <key>Label</key><string>{LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n{argv}  </array>\n\
         \x20 <key>EnvironmentVariables</key><dict><key>PEER_HOME</key><string>{}</string></dict>\n\
         \x20 <key>RunAtLoad</key><true/>\n\
         \x20 <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n\
         \x20 <key>AbandonProcessGroup</key><true/>\n\
         </dict>\n</plist>\n",
        xml_escape(&home.to_string_lossy())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_unit_quotes_and_restarts() {
        let unit = systemd_unit(
            Path::new("/usr/bin/peer"),
            Path::new("/home/a b/.peer"),
            &["--name".into(), "my box".into()],
        );
        assert!(unit.contains("ExecStart=/usr/bin/peer host --no-pairing --name \"my box\"\n"));
        assert!(unit.contains("Environment=\"PEER_HOME=/home/a b/.peer\"\n"));
        assert!(unit.contains("Restart=on-failure"));
        // Upgrades and restarts leave the session keepers (and their shells) alone.
        assert!(unit.contains("\nKillMode=process\n"));
        assert!(unit.contains("WantedBy=default.target"));
    }

    #[test]
    fn launchd_plist_escapes() {
        let p = launchd_plist(
            Path::new("/bin/peer"),
            Path::new("/Users/x"),
            &["--name".into(), "a<b".into()],
        );
        assert!(p.contains("<string>a&lt;b</string>"));
        assert!(p.contains("<key>KeepAlive</key>"));
        assert!(p.contains("<key>AbandonProcessGroup</key><true/>"));
    }
}
