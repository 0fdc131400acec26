//! Agents on the host machine's own model servers: discovery (`peer models`, `peer agents`),
//! a real ACP agent (fast-agent, started by its built-in preset) on a local model chosen with
//! `--model local:…`, and a tool call of the model reaching a paired client as an approval.
//!
//! The model server is `peer-fake-model`, a scripted stand-in that speaks the OpenAI chat API
//! (streaming included) with no model behind it: no model runtime installs from the package
//! registries here. The agent process and everything between it and the client are real.
//! fast-agent is installed by `.ci/install-fast-agent.sh` (see `agent_fast_agent.rs`).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use peer_testkit::agents::{events, find, git_repo};
use peer_testkit::{TestClient, TestHost, pair};
use serde_json::Value;

fn fast_agent() -> PathBuf {
    let p = std::env::var_os("PEER_FAST_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fast-agent/bin/fast-agent")
        });
    assert!(
        p.is_file(),
        "fast-agent is not installed at {}: run `.ci/install-fast-agent.sh`, or set \
         PEER_FAST_AGENT to a fast-agent program",
        p.display()
    );
    p
}

/// `peer-fake-model` on a loopback port; killed on drop.
struct FakeModel {
    child: Child,
    port: u16,
}

impl FakeModel {
    fn start(models: &[&str], log: &Path) -> FakeModel {
        let mut cmd = Command::new(peer_testkit::fake_model_binary());
        for m in models {
            cmd.args(["--model", m]);
        }
        let mut child = cmd
            .args(["--context", "32768", "--log"])
            .arg(log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn peer-fake-model");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("peer-fake-model said {line:?}"));
        FakeModel { child, port }
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `peer ARGS`, asserting failure; returns stderr.
fn fails(client: &TestClient, args: &[&str]) -> String {
    let out = client.cli(args);
    assert!(!out.status.success(), "peer {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The next event number of a session.
fn next_seq(client: &TestClient, id: &str) -> u64 {
    let list: Vec<Value> =
        serde_json::from_str(&client.ok(&["agent", "ls", "--json"])).expect("json");
    list.iter()
        .find(|s| s["id"].as_u64() == id.parse().ok())
        .and_then(|s| s["next_seq"].as_u64())
        .expect("listed")
}

fn agent_text(evs: &[Value]) -> String {
    evs.iter()
        .filter(|e| e["kind"] == "update" && e["data"]["sessionUpdate"] == "agent_message_chunk")
        .map(|e| e["data"]["content"]["text"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn a_real_agent_runs_on_a_local_model_server_and_its_tool_call_reaches_the_phone() {
    let bin = fast_agent();
    let scratch = tempfile::tempdir().expect("tempdir");
    let log = scratch.path().join("requests.jsonl");
    let model = FakeModel::start(&["qwen2.5-coder:7b", "tiny-coder"], &log);
    let gone = free_port();

    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join("host")).expect("mkdir");
    // Nothing but the [models] table: the fast-agent preset is used as it is built in.
    std::fs::write(
        home.path().join("host/agents.toml"),
        format!(
            "[models.servers.gpu-box]\nurl = \"http://127.0.0.1:{}/v1\"\n\
             [models.servers.gone]\nurl = \"http://127.0.0.1:{gone}/v1\"\n",
            model.port
        ),
    )
    .expect("agents.toml");
    // The preset starts `fast-agent` from PATH; its home is a scratch directory.
    let path = std::env::join_paths(
        std::iter::once(bin.parent().expect("bin dir").to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .expect("PATH");
    let agent_home = tempfile::tempdir().expect("tempdir");
    // The host's `nvidia-smi`: missing at first, then a script printing recorded output.
    let smi = scratch.path().join("nvidia-smi");
    let mut host = TestHost::start_in_env(
        home,
        &[],
        &[
            ("PATH", path),
            ("HOME", OsString::from(agent_home.path())),
            ("PEER_NVIDIA_SMI", OsString::from(&smi)),
        ],
    );
    let client = TestClient::new();
    pair(&mut host, &client, "phone");

    // 0. `peer status --json` on the host machine: no GPUs without nvidia-smi, then two.
    let status = |host: &TestHost| -> Value {
        let out = host.cli(&["status", "--json"]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).expect("status json")
    };
    assert_eq!(status(&host)["gpus"], serde_json::json!([]));
    std::fs::write(
        &smi,
        "#!/bin/sh\ncase \"$1\" in\n\
         --query-gpu=*) printf '0, GPU-a, NVIDIA A100-SXM4-80GB, 98, 79012, 81920\\n1, GPU-b, NVIDIA A100-SXM4-80GB, [N/A], 4, 81920\\n' ;;\n\
         --query-compute-apps=*) echo 'GPU-a, 90210, python3, 70112' ;;\nesac\n",
    )
    .expect("script");
    std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let gpus = status(&host)["gpus"].clone();
    assert_eq!(gpus.as_array().map(Vec::len), Some(2), "{gpus}");
    assert_eq!(gpus[0]["name"], "NVIDIA A100-SXM4-80GB");
    assert_eq!(gpus[0]["memory_used_mib"], 79012);
    assert_eq!(gpus[0]["processes"][0]["pid"], 90210);
    assert_eq!(gpus[1]["utilization_pct"], Value::Null);

    // 1. Discovery: the configured server with its models, the dead one as such, the usual
    // ports listed (whatever runs there), and quickly.
    let t = Instant::now();
    let servers: Vec<Value> =
        serde_json::from_str(&client.ok(&["models", "--json"])).expect("json");
    let models_ms = t.elapsed().as_millis();
    let by_name = |n: &str| {
        servers
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed: {servers:#?}"))
    };
    let gpu = by_name("gpu-box");
    assert_eq!(gpu["reachable"], true, "{gpu}");
    assert_eq!(gpu["configured"], true);
    let ids: Vec<&str> = gpu["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["qwen2.5-coder:7b", "tiny-coder"]);
    assert_eq!(gpu["models"][0]["context"], 32768);
    let dead = by_name("gone");
    assert_eq!(dead["reachable"], false);
    assert_eq!(dead["error"], "nothing listens there");
    for usual in ["llama.cpp", "ollama", "vllm", "lm-studio"] {
        let s = by_name(usual);
        assert!(s["elapsed_ms"].as_u64().expect("elapsed") <= 1500, "{s}");
    }
    let human = client.ok(&["agents"]);
    assert!(human.contains("gpu-box"), "{human}");
    assert!(human.contains("local:qwen2.5-coder:7b"), "{human}");
    let agents: Vec<Value> = serde_json::from_str(&client.ok(&["agents", "--json"])).expect("json");
    let fa = agents
        .iter()
        .find(|a| a["name"] == "fast-agent")
        .expect("fast-agent");
    assert_eq!(fa["local_models"], true);
    assert_eq!(fa["installed"], true, "fast-agent on the host's PATH");
    let claude = agents
        .iter()
        .find(|a| a["name"] == "claude")
        .expect("claude");
    assert_eq!(claude["provider"], "Anthropic");

    // An agent without a local preset, and a model nobody serves, are refused with reasons.
    let repo = tempfile::tempdir().expect("repo");
    git_repo(repo.path(), &[("a.txt", "one\n")]);
    let repo_path = repo.path().to_string_lossy().into_owned();
    let e = fails(
        &client,
        &[
            "agent",
            "new",
            "--agent",
            "claude",
            "--model",
            "local:tiny-coder",
            "--repo",
            &repo_path,
        ],
    );
    assert!(e.contains("no way to run on a local model"), "{e}");
    let e = fails(
        &client,
        &[
            "agent",
            "new",
            "--agent",
            "fast-agent",
            "--model",
            "local:gpt-9",
            "--repo",
            &repo_path,
        ],
    );
    assert!(e.contains("gpu-box/tiny-coder"), "{e}");

    // 2. The agent on the local model (named without Ollama's tag): a plain prompt goes to
    // the server and its answer comes back.
    let t = Instant::now();
    let id = client
        .ok(&[
            "agent",
            "new",
            "--agent",
            "fast-agent",
            "--model",
            "local:qwen2.5-coder",
            "--repo",
            &repo_path,
            "hello local model",
        ])
        .trim()
        .to_string();
    let evs = events(&client, &id, 0, "idle,failed");
    let first_turn_ms = t.elapsed().as_millis();
    assert!(
        agent_text(&evs).contains("echo: hello local model"),
        "{evs:#?}"
    );
    let list: Vec<Value> =
        serde_json::from_str(&client.ok(&["agent", "ls", "--json"])).expect("json");
    let info = list
        .iter()
        .find(|s| s["id"].as_u64() == id.parse().ok())
        .expect("listed");
    assert_eq!(info["model"]["runs"], "local", "{info}");
    assert_eq!(info["model"]["server"], "gpu-box");
    assert_eq!(info["model"]["model"], "qwen2.5-coder:7b");
    assert_eq!(
        info["model"]["endpoint"],
        format!("http://127.0.0.1:{}/v1", model.port)
    );
    let wt = PathBuf::from(info["worktree"].as_str().expect("worktree"));

    // 3. The model calls the agent's shell tool: the approval reaches the client; allowed,
    // the host runs the command in the worktree and the result goes back to the model.
    let from = evs.len() as u64;
    client.ok(&["agent", "send", &id, "run: echo from-the-model > local.txt"]);
    let evs = events(&client, &id, from, "waiting_approval");
    let ask = *find(&evs, "permission").last().expect("permission event");
    assert_eq!(
        ask["data"]["toolCall"]["rawInput"]["command"], "echo from-the-model > local.txt",
        "{ask}"
    );
    let n = ask["data"]["approval"]
        .as_u64()
        .expect("approval")
        .to_string();
    client.ok(&["agent", "approve", &id, &n, "allow_once"]);
    let evs = events(&client, &id, from, "idle");
    assert_eq!(find(&evs, "terminal").len(), 1, "{evs:#?}");
    assert_eq!(
        std::fs::read_to_string(wt.join("local.txt")).expect("local.txt"),
        "from-the-model\n"
    );
    assert!(agent_text(&evs).contains("tool result:"), "{evs:#?}");

    // The conversation went to the local server: the prompts, the tool definitions and the
    // tool's result, under the chosen model id.
    let requests: Vec<Value> = std::fs::read_to_string(&log)
        .expect("request log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(requests.len() >= 3, "{requests:#?}");
    assert!(requests.iter().all(|r| r["model"] == "qwen2.5-coder:7b"));
    let all = serde_json::to_string(&requests).expect("json");
    assert!(all.contains("hello local model"));
    assert!(
        all.contains("\"role\":\"tool\""),
        "no tool result reached the model"
    );

    // 4. A host restart: the session starts again on the same local model (no probe needed)
    // and goes on.
    let host = host.restart(&[]);
    let before = requests.len();
    let from = next_seq(&client, &id);
    client.ok(&["agent", "send", &id, "after the restart"]);
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let evs = loop {
        let evs = events(&client, &id, from, "idle,failed");
        if !find(&evs, "turn_end").is_empty() {
            break evs;
        }
        assert!(Instant::now() < deadline, "no turn end: {evs:#?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        agent_text(&evs).contains("echo: after the restart"),
        "{evs:#?}"
    );
    let requests = std::fs::read_to_string(&log).expect("request log");
    let last: Value =
        serde_json::from_str(requests.lines().last().expect("a request")).expect("json");
    assert!(requests.lines().count() > before);
    assert_eq!(last["model"], "qwen2.5-coder:7b");

    client.ok(&["agent", "close", &id]);
    eprintln!(
        "local model e2e: peer models (CLI, 6 servers, 5 down) {models_ms} ms, first turn \
         (agent start + one model round trip) {first_turn_ms} ms"
    );
    drop(host);
}
