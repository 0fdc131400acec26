//! `peer audit`: the host's audit log, filtered by time, device and kind, in local times, with
//! runs of connections of one device folded into one line.

use std::io::Write;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use peer::client::{self, sanitize::inline};
use peer::paths::Paths;
use peer::proto::{AuditQuery, AuditRow, LocalReply, LocalRequest};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Rows to show, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only rows since then: `30m`, `2h`, `3d`, `1w` ago, or a date (`2025-06-01`, local time)
    /// or date and time (`2025-06-01 14:00`).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only rows of this device: its name, or a prefix of its id.
    #[arg(long, value_name = "NAME|ID")]
    device: Option<String>,
    /// Only rows of this kind (`agent.prompt`), or of these kinds (`agent` for every `agent.*`).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Show every `connect` row (by default a run of them from one device is one line).
    #[arg(long)]
    connects: bool,
    /// Machine-readable output (every row, unfolded).
    #[arg(long)]
    json: bool,
}

/// Unix seconds of `when` (see [`AuditArgs::since`]) relative to `now`.
pub fn parse_since(when: &str, now: jiff::Timestamp) -> Result<u64> {
    let w = when.trim();
    let units = [
        ("s", 1u64),
        ("m", 60),
        ("h", 3600),
        ("d", 86_400),
        ("w", 604_800),
    ];
    for (suffix, secs) in units {
        if let Some(n) = w.strip_suffix(suffix)
            && let Ok(n) = n.trim().parse::<u64>()
        {
            let back = n.saturating_mul(secs);
            return Ok((now.as_second().max(0) as u64).saturating_sub(back));
        }
    }
    let tz = jiff::tz::TimeZone::system();
    let civil = w
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| {
            w.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .map_err(|_| {
            anyhow!(
                "--since {when:?}: give a time ago (30m, 2h, 3d, 1w) or a date (2025-06-01 [14:00])"
            )
        })?;
    let ts = civil
        .to_zoned_datetime(tz)
        .map_err(|e| anyhow!("--since {when:?}: {e}"))?
        .timestamp();
    Ok(ts.as_second().max(0) as u64)
}

/// A unix time as local date and time.
fn local(at: u64) -> String {
    match jiff::Timestamp::from_second(at as i64) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => at.to_string(),
    }
}

fn who(r: &AuditRow) -> String {
    r.device_name
        .as_deref()
        .map(inline)
        .or_else(|| r.device.as_ref().map(|d| d[..d.len().min(8)].to_string()))
        .unwrap_or_else(|| "host".into())
}

/// Rows to print: a run of `connect` rows of one device becomes one row (newest first) with
/// how many and since when.
pub fn fold(rows: &[AuditRow]) -> Vec<(AuditRow, usize, u64)> {
    let mut out: Vec<(AuditRow, usize, u64)> = Vec::new();
    for r in rows {
        if let Some((last, n, oldest)) = out.last_mut()
            && r.event == "connect"
            && last.event == "connect"
            && last.device == r.device
        {
            *n += 1;
            *oldest = r.at;
            continue;
        }
        out.push((r.clone(), 1, r.at));
    }
    out
}

pub async fn audit(paths: &Paths, a: AuditArgs) -> Result<u8> {
    let since = a
        .since
        .as_deref()
        .map(|w| parse_since(w, jiff::Timestamp::now()))
        .transpose()?;
    if a.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let q = AuditQuery {
        limit: a.limit,
        since,
        device: a.device.clone(),
        kind: a.kind.clone(),
    };
    let reply = client::local_request(paths, LocalRequest::AuditQuery(q))
        .await
        .map_err(|e| anyhow!(e))?;
    let rows = match reply {
        LocalReply::Audit(rows) => rows,
        LocalReply::Error(e) => return Err(anyhow!(e)),
        other => bail!("unexpected reply: {other:?}"),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"at": r.at, "time": local(r.at), "device": r.device,
                       "device_name": r.device_name, "event": r.event, "detail": r.detail})
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    if rows.is_empty() {
        writeln!(out, "no audit rows match")?;
        return Ok(0);
    }
    let shown: Vec<(AuditRow, usize, u64)> = if a.connects || a.kind.is_some() {
        rows.into_iter().map(|r| (r.clone(), 1, r.at)).collect()
    } else {
        fold(&rows)
    };
    writeln!(out, "{:<19}  {:<14} {:<18} DETAIL", "WHEN", "WHO", "EVENT")?;
    for (r, n, oldest) in shown {
        let detail = if n > 1 {
            format!("{n} connections since {}", local(oldest))
        } else {
            inline(&r.detail)
        };
        writeln!(
            out,
            "{:<19}  {:<14} {:<18} {}",
            local(r.at),
            who(&r),
            inline(&r.event),
            detail
        )?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: u64, device: &str, event: &str) -> AuditRow {
        AuditRow {
            at,
            device: Some(device.into()),
            device_name: None,
            event: event.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn since_takes_a_time_ago_or_a_date() {
        let now = jiff::Timestamp::from_second(1_000_000).expect("ts");
        assert_eq!(parse_since("30m", now).expect("m"), 1_000_000 - 1800);
        assert_eq!(parse_since("2h", now).expect("h"), 1_000_000 - 7200);
        assert_eq!(parse_since("1w", now).expect("w"), 1_000_000 - 604_800);
        assert!(parse_since("2025-06-01", now).expect("date") > 1_700_000_000);
        assert!(parse_since("2025-06-01 14:00", now).expect("datetime") > 1_700_000_000);
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn runs_of_connections_of_one_device_fold() {
        let rows = vec![
            row(9, "a", "connect"),
            row(8, "a", "connect"),
            row(7, "a", "connect"),
            row(6, "b", "connect"),
            row(5, "a", "agent.prompt"),
            row(4, "a", "connect"),
        ];
        let f = fold(&rows);
        let got: Vec<(&str, usize, u64)> = f
            .iter()
            .map(|(r, n, o)| (r.event.as_str(), *n, *o))
            .collect();
        assert_eq!(
            got,
            [
                ("connect", 3, 7),
                ("connect", 1, 6),
                ("agent.prompt", 1, 5),
                ("connect", 1, 4)
            ]
        );
    }
}
