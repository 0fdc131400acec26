//! The host's GPUs, from `nvidia-smi`: a sans-IO parser of its CSV and a bounded runner.
//!
//! Two queries: `--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total` and
//! `--query-compute-apps=gpu_uuid,pid,process_name,used_memory`, both with
//! `--format=csv,noheader,nounits`. A machine without `nvidia-smi` (or whose driver does not
//! answer in time) has no GPUs as far as peer can tell: the list is empty.

use std::time::Duration;

use tracing::debug;

use crate::proto::{GpuInfo, GpuProcess};

/// How long one `nvidia-smi` call may take (a driver in trouble can hang it).
pub const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(2);

/// The arguments of the GPU query.
pub const QUERY_GPU: &[&str] = &[
    "--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total",
    "--format=csv,noheader,nounits",
];

/// The arguments of the process query.
pub const QUERY_APPS: &[&str] = &[
    "--query-compute-apps=gpu_uuid,pid,process_name,used_memory",
    "--format=csv,noheader,nounits",
];

/// Why a line of `nvidia-smi` output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nvidia-smi line {line}: {why}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub why: String,
}

/// A number, or `None` for the driver's `[N/A]`, `[Not Supported]` and the like.
fn num<T: std::str::FromStr>(field: &str) -> Option<T> {
    field.trim().parse().ok()
}

/// Splits one CSV line; `nvidia-smi` quotes nothing, and names do not contain commas except
/// process names, which come last (the rest of the line is the name then).
fn fields(line: &str, n: usize) -> Vec<&str> {
    line.splitn(n, ',').map(str::trim).collect()
}

/// Parses the output of `nvidia-smi` with [`QUERY_GPU`] and [`QUERY_APPS`] (`apps` may be
/// empty): the GPUs by index, each with the processes holding memory on it.
pub fn parse(gpus: &str, apps: &str) -> Result<Vec<GpuInfo>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in gpus
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let f = fields(line, 6);
        if f.len() != 6 {
            return Err(ParseError {
                line: i + 1,
                why: format!("expected 6 fields, got {}", f.len()),
            });
        }
        let index = num(f[0]).ok_or_else(|| ParseError {
            line: i + 1,
            why: format!("bad index {:?}", f[0]),
        })?;
        out.push(GpuInfo {
            index,
            uuid: f[1].to_string(),
            name: f[2].to_string(),
            utilization_pct: num(f[3]),
            memory_used_mib: num(f[4]),
            memory_total_mib: num(f[5]),
            processes: vec![],
        });
    }
    for (i, line) in apps
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        // gpu_uuid, pid, process_name, used_memory: the name may hold commas, so take the
        // memory from the end.
        let Some((head, mem)) = line.rsplit_once(',') else {
            return Err(ParseError {
                line: i + 1,
                why: "expected 4 fields".into(),
            });
        };
        let f = fields(head, 3);
        if f.len() != 3 {
            return Err(ParseError {
                line: i + 1,
                why: "expected 4 fields".into(),
            });
        }
        let pid = num(f[1]).ok_or_else(|| ParseError {
            line: i + 1,
            why: format!("bad pid {:?}", f[1]),
        })?;
        let p = GpuProcess {
            pid,
            name: f[2].to_string(),
            used_mib: num(mem),
        };
        if let Some(g) = out.iter_mut().find(|g| g.uuid == f[0]) {
            g.processes.push(p);
        }
    }
    out.sort_by_key(|g| g.index);
    Ok(out)
}

/// Runs `program` (normally `nvidia-smi`) with `args`; its standard output, or `None` if it
/// is missing, fails, or takes longer than [`NVIDIA_SMI_TIMEOUT`] (then it is killed).
async fn run(program: &str, args: &[&str]) -> Option<String> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(NVIDIA_SMI_TIMEOUT, child).await {
        Ok(Ok(out)) if out.status.success() => String::from_utf8(out.stdout).ok(),
        Ok(Ok(out)) => {
            debug!(status = %out.status, "{program} failed");
            None
        }
        Ok(Err(e)) => {
            debug!("{program}: {e}");
            None
        }
        Err(_) => {
            debug!("{program} did not answer in {NVIDIA_SMI_TIMEOUT:?}");
            None
        }
    }
}

/// The GPUs as `program` (`nvidia-smi`, or `$PEER_NVIDIA_SMI` when set) reports them; empty
/// where it does not exist or does not answer. The process is asynchronous and bounded: it
/// never blocks the runtime.
pub async fn gpus() -> Vec<GpuInfo> {
    let program = std::env::var("PEER_NVIDIA_SMI").unwrap_or_else(|_| "nvidia-smi".into());
    let (gpus, apps) = tokio::join!(run(&program, QUERY_GPU), run(&program, QUERY_APPS));
    let Some(gpus) = gpus else { return vec![] };
    parse(&gpus, apps.as_deref().unwrap_or("")).unwrap_or_else(|e| {
        debug!("{e}");
        vec![]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from a machine with one RTX 4090 running a llama.cpp server.
    const ONE_GPU: &str =
        "0, GPU-3b5e1d9a-8f2c-4a77-9e41-2c1f0b6d7e88, NVIDIA GeForce RTX 4090, 37, 18734, 24564\n";
    const ONE_GPU_APPS: &str =
        "GPU-3b5e1d9a-8f2c-4a77-9e41-2c1f0b6d7e88, 4121, /usr/local/bin/llama-server, 18210\n";

    /// Recorded from a two-GPU machine: a training run on the first, nothing on the second,
    /// and a driver that cannot report one value.
    const TWO_GPUS: &str = "\
0, GPU-a1b2c3d4-0000-1111-2222-333344445555, NVIDIA A100-SXM4-80GB, 98, 79012, 81920
1, GPU-f0e1d2c3-9999-8888-7777-666655554444, NVIDIA A100-SXM4-80GB, [N/A], 4, 81920
";
    const TWO_GPUS_APPS: &str = "\
GPU-a1b2c3d4-0000-1111-2222-333344445555, 90210, python3, 70112
GPU-a1b2c3d4-0000-1111-2222-333344445555, 90377, /opt/my tools/train,v2, 8890
";

    #[test]
    fn one_gpu_with_its_model_server() {
        let g = parse(ONE_GPU, ONE_GPU_APPS).expect("parse");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].index, 0);
        assert_eq!(g[0].name, "NVIDIA GeForce RTX 4090");
        assert_eq!(g[0].uuid, "GPU-3b5e1d9a-8f2c-4a77-9e41-2c1f0b6d7e88");
        assert_eq!(g[0].utilization_pct, Some(37));
        assert_eq!(g[0].memory_used_mib, Some(18734));
        assert_eq!(g[0].memory_total_mib, Some(24564));
        assert_eq!(
            g[0].processes,
            vec![GpuProcess {
                pid: 4121,
                name: "/usr/local/bin/llama-server".into(),
                used_mib: Some(18210)
            }]
        );
    }

    #[test]
    fn two_gpus_processes_land_on_theirs() {
        let g = parse(TWO_GPUS, TWO_GPUS_APPS).expect("parse");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].utilization_pct, Some(98));
        assert_eq!(g[1].utilization_pct, None, "[N/A] is no number");
        assert_eq!(g[1].memory_used_mib, Some(4));
        assert_eq!(g[0].processes.len(), 2);
        assert_eq!(g[0].processes[1].name, "/opt/my tools/train,v2");
        assert_eq!(g[0].processes[1].used_mib, Some(8890));
        assert!(g[1].processes.is_empty());
    }

    #[test]
    fn no_output_is_no_gpus_and_garbage_is_an_error() {
        assert_eq!(parse("", ""), Ok(vec![]));
        assert_eq!(
            parse("No devices were found\n", "")
                .map(|_| ())
                .expect_err("an error")
                .line,
            1
        );
        assert!(parse(ONE_GPU, "garbage\n").is_err());
    }

    #[tokio::test]
    async fn a_missing_nvidia_smi_means_no_gpus() {
        assert_eq!(run("/nonexistent/nvidia-smi", QUERY_GPU).await, None);
        // A program that hangs is cut off at the timeout.
        let t = std::time::Instant::now();
        assert_eq!(run("sleep", &["30"]).await, None);
        assert!(t.elapsed() < NVIDIA_SMI_TIMEOUT + Duration::from_secs(3));
    }
}
