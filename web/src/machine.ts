// The host machine's own resources on screen: where an agent's model runs, the local model
// servers to pick from in the new-session form, and the GPUs on the host screen.
import { h } from './dom';
import type { AgentDef, GpuInfo, ModelPlace, ModelServer } from './gen/protocol';

/** Where a session's model runs, in words: "qwen2.5-coder:7b on this host (ollama)". */
export function placeText(p: ModelPlace | undefined): string {
  if (!p) return '';
  if ('local' in p) return `${p.local.model} · on the host (${p.local.server}, ${p.local.endpoint})`;
  return p.provider.provider ? `agent's own model · ${p.provider.provider}` : "agent's own model";
}

/** Whether prompts and code stay on the host machine. */
export function isLocal(p: ModelPlace | undefined): boolean {
  return !!p && 'local' in p;
}

/** One option of the model picker: `value` is what `NewAgentSession.model` gets. */
export interface ModelChoice {
  value: string;
  label: string;
}

/** The choices for `agent`: its own model, then every model of every reachable server. */
export function modelChoices(agent: AgentDef | undefined, servers: ModelServer[]): ModelChoice[] {
  const own: ModelChoice = {
    value: '',
    label: agent?.provider ? `Agent's own model (${agent.provider})` : "Agent's own model",
  };
  if (!agent?.local_models) return [own];
  const local: ModelChoice[] = [];
  for (const s of servers) {
    if (!s.reachable) continue;
    for (const m of s.models) {
      const ctx = m.context ? ` · ${Math.round(m.context / 1024)}k context` : '';
      local.push({ value: `local:${s.name}/${m.id}`, label: `${m.id} · ${s.name}${ctx}` });
    }
  }
  return [own, ...local];
}

/** What leaves the machine with this choice, for the hint under the picker. */
export function privacyText(agent: AgentDef | undefined, choice: string, servers: ModelServer[]): string {
  if (choice.startsWith('local:')) {
    const name = choice.slice('local:'.length).split('/')[0];
    const s = servers.find((x) => x.name === name);
    return `Prompts and code go to ${s ? s.url : 'a model server'} on the host's side: they do not leave it for a provider.`;
  }
  if (!agent) return '';
  const where = agent.provider ?? 'the provider the agent is set up for';
  const local = agent.local_models ? '' : ` ${agent.name} has no local-model preset on this host.`;
  return `Prompts and code go to ${where}.${local}`;
}

/** "ollama · down: nothing listens there", for the servers the picker found nothing on. */
export function serverLines(servers: ModelServer[]): string[] {
  return servers.map((s) =>
    s.reachable ? `${s.name} · ${s.models.length} model${s.models.length === 1 ? '' : 's'}` : `${s.name} · down: ${s.error ?? 'no answer'}`,
  );
}

const mib = (v: number | null) => (v === null ? '?' : v >= 1024 ? `${(v / 1024).toFixed(1)} GiB` : `${v} MiB`);

/** A GPU in one line: "0 · NVIDIA GeForce RTX 4090 · 37% · 18.3 GiB / 24.0 GiB". */
export function gpuText(g: GpuInfo): string {
  const util = g.utilization_pct === null ? '?' : `${g.utilization_pct}%`;
  return `${g.index} · ${g.name} · ${util} · ${mib(g.memory_used_mib)} / ${mib(g.memory_total_mib)}`;
}

/** The GPUs as a list with their processes; nothing when there are none. */
export function gpuList(gpus: GpuInfo[]): HTMLElement | null {
  if (gpus.length === 0) return null;
  const ul = h('ul', 'list');
  ul.dataset.testid = 'gpus';
  for (const g of gpus) {
    const li = h('li', 'row');
    const main = h('div', 'row-main');
    main.append(h('strong', '', gpuText(g)));
    const procs = g.processes.map((p) => `${p.name} (pid ${p.pid}, ${mib(p.used_mib)})`).join(' · ');
    main.append(h('small', '', procs || 'no processes hold memory'));
    li.append(main);
    ul.append(li);
  }
  return ul;
}
