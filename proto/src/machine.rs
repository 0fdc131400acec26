//! The host machine's own resources as clients see them: the model servers it can reach (for
//! agents on local models) and its GPUs.

use serde::{Deserialize, Serialize};

/// An OpenAI-compatible model server the host probed (`GET <url>/models`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelServer {
    /// `llama.cpp`, `ollama`, `vllm`, `lm-studio` for the usual ports; the table name for a
    /// server listed in the host's `agents.toml`.
    pub name: String,
    /// Base URL of its OpenAI API, e.g. `http://127.0.0.1:11434/v1`.
    pub url: String,
    /// Listed in the host's `agents.toml` (rather than one of the usual ports).
    pub configured: bool,
    /// It answered the model list.
    pub reachable: bool,
    /// Why not, when not reachable (or why the answer was unusable).
    pub error: Option<String>,
    /// Its models, as it listed them.
    pub models: Vec<LocalModel>,
    /// How long the probe took, milliseconds.
    pub elapsed_ms: u32,
}

/// A model a [`ModelServer`] serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalModel {
    /// The id requests name it by.
    pub id: String,
    /// Its context length in tokens, when the server says (vLLM `max_model_len`, llama.cpp
    /// `meta.n_ctx_train`, LM Studio `max_context_length`).
    pub context: Option<u64>,
}

/// Where an agent session's model runs, as far as the host knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPlace {
    /// The agent's own configuration picks the model: prompts and code go where it sends
    /// them.
    Provider {
        /// Where the agent's preset sends them (e.g. `Anthropic`), if the host knows.
        provider: Option<String>,
    },
    /// A model server on the host's machine (or one listed in its `agents.toml`).
    Local {
        /// The server's name ([`ModelServer::name`]).
        server: String,
        /// Its base URL.
        endpoint: String,
        /// The model id.
        model: String,
    },
}

/// One GPU of the host, from `nvidia-smi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// The driver's index.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// `GPU-…` id.
    pub uuid: String,
    /// Utilisation, percent, when the driver says.
    pub utilization_pct: Option<u32>,
    /// Memory in use, MiB.
    pub memory_used_mib: Option<u64>,
    /// Memory in all, MiB.
    pub memory_total_mib: Option<u64>,
    /// Processes holding memory on it.
    pub processes: Vec<GpuProcess>,
}

/// A process holding GPU memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    /// Process id.
    pub pid: u32,
    /// Its name (the driver's `process_name`, usually the program's path).
    pub name: String,
    /// Memory it holds, MiB, when the driver says.
    pub used_mib: Option<u64>,
}
