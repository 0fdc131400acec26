//! `peer status`, `peer models` and the model-server part of `peer agents`: what the host
//! machine has (its GPUs, the model servers it can reach).

use anyhow::{Result, anyhow, bail};
use peer::client::{self, HostConn};
use peer::paths::Paths;
use peer::proto::{
    GpuInfo, HostStatus, LocalReply, LocalRequest, ModelPlace, ModelServer, Reply, Request,
};
use serde_json::{Value, json};

use super::{connect, hang_up};

/// `peer status [--json]`.
pub async fn status(paths: &Paths, as_json: bool) -> Result<u8> {
    let s = match client::local_request(paths, LocalRequest::Status)
        .await
        .map_err(|e| anyhow!(e))?
    {
        LocalReply::Status(s) => s,
        other => bail!("unexpected reply: {other:?}"),
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&status_json(&s))?);
        return Ok(0);
    }
    println!("host       {}", s.host_name);
    println!("id         {}", s.endpoint_id);
    println!("relays     {}", s.relay_urls.join(" "));
    println!("direct     {}", s.direct_addrs.join(" "));
    println!("key        {}", s.key_store);
    println!("sessions   {}", s.sessions);
    println!("clients    {}", s.connections);
    for line in gpu_lines(&s.gpus) {
        println!("{line}");
    }
    Ok(0)
}

fn status_json(s: &HostStatus) -> Value {
    json!({"host_name": s.host_name, "endpoint_id": s.endpoint_id, "relay_urls": s.relay_urls,
           "direct_addrs": s.direct_addrs, "key_store": s.key_store, "sessions": s.sessions,
           "connections": s.connections, "gpus": gpus_json(&s.gpus)})
}

/// GPUs as JSON.
pub fn gpus_json(gpus: &[GpuInfo]) -> Value {
    gpus.iter()
        .map(|g| {
            let procs: Vec<Value> = g
                .processes
                .iter()
                .map(|p| json!({"pid": p.pid, "name": p.name, "used_mib": p.used_mib}))
                .collect();
            json!({"index": g.index, "name": g.name, "uuid": g.uuid,
                   "utilization_pct": g.utilization_pct, "memory_used_mib": g.memory_used_mib,
                   "memory_total_mib": g.memory_total_mib, "processes": procs})
        })
        .collect()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".into(), |v| v.to_string())
}

/// `gpu 0     NVIDIA … 37% 18734/24564 MiB`, and a line per process.
pub fn gpu_lines(gpus: &[GpuInfo]) -> Vec<String> {
    let mut out = Vec::new();
    for g in gpus {
        out.push(format!(
            "gpu {:<6} {}  {}%  {}/{} MiB",
            g.index,
            g.name,
            opt(g.utilization_pct),
            opt(g.memory_used_mib),
            opt(g.memory_total_mib)
        ));
        for p in &g.processes {
            out.push(format!(
                "             pid {} {} ({} MiB)",
                p.pid,
                p.name,
                opt(p.used_mib)
            ));
        }
    }
    out
}

/// Asks a host for its model servers.
pub async fn model_servers(conn: &HostConn) -> Result<Vec<ModelServer>> {
    let Reply::ModelServers(list) = conn.request(Request::ListModelServers).await? else {
        bail!("unexpected reply");
    };
    Ok(list)
}

/// `peer models [--json]`.
pub async fn models(
    paths: &Paths,
    host: Option<String>,
    as_json: bool,
    relay_only: bool,
) -> Result<u8> {
    let (dialer, conn) = connect(paths, host.as_deref(), relay_only).await?;
    let list = model_servers(&conn).await;
    hang_up(dialer, conn).await;
    let list = list?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&servers_json(&list))?);
    } else {
        print_servers(&list);
    }
    Ok(0)
}

/// Model servers as JSON.
pub fn servers_json(list: &[ModelServer]) -> Value {
    list.iter()
        .map(|s| {
            let models: Vec<Value> = s
                .models
                .iter()
                .map(|m| json!({"id": m.id, "context": m.context}))
                .collect();
            json!({"name": s.name, "url": s.url, "configured": s.configured,
                   "reachable": s.reachable, "error": s.error, "models": models,
                   "elapsed_ms": s.elapsed_ms})
        })
        .collect()
}

/// The model servers as a table: one line per server, one per model.
pub fn print_servers(list: &[ModelServer]) {
    println!("{:<12} {:<32} STATE", "MODEL SERVER", "URL");
    for s in list {
        let state = if s.reachable {
            format!("up, {} model(s)", s.models.len())
        } else {
            format!("down: {}", s.error.as_deref().unwrap_or("no answer"))
        };
        println!("{:<12} {:<32} {state}", s.name, s.url);
        for m in &s.models {
            let ctx = m
                .context
                .map(|c| format!("  (context {c})"))
                .unwrap_or_default();
            println!("             local:{}{ctx}", m.id);
        }
    }
}

/// Where a session's model runs, in words.
pub fn place_text(p: &ModelPlace) -> String {
    match p {
        ModelPlace::Local {
            server,
            endpoint,
            model,
        } => format!("{model} on this host's {server} server ({endpoint})"),
        ModelPlace::Provider { provider: Some(p) } => format!("the agent's own model: {p}"),
        ModelPlace::Provider { provider: None } => "the agent's own model".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peer::proto::GpuProcess;

    #[test]
    fn gpus_print_and_serialise() {
        let g = vec![GpuInfo {
            index: 0,
            name: "NVIDIA GeForce RTX 4090".into(),
            uuid: "GPU-1".into(),
            utilization_pct: None,
            memory_used_mib: Some(10),
            memory_total_mib: Some(24564),
            processes: vec![GpuProcess {
                pid: 7,
                name: "llama-server".into(),
                used_mib: Some(9),
            }],
        }];
        let lines = gpu_lines(&g);
        assert_eq!(
            lines[0],
            "gpu 0      NVIDIA GeForce RTX 4090  ?%  10/24564 MiB"
        );
        assert!(lines[1].contains("pid 7 llama-server (9 MiB)"));
        let j = gpus_json(&g);
        assert_eq!(j[0]["processes"][0]["pid"], 7);
        assert_eq!(j[0]["utilization_pct"], Value::Null);
    }
}
