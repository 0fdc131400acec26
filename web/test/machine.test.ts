import { describe, expect, it } from 'vitest';
import type { AgentDef, GpuInfo, ModelServer } from '../src/gen/protocol';
import { gpuText, isLocal, modelChoices, placeText, privacyText, serverLines } from '../src/machine';

const agent = (name: string, local: boolean, provider: string | null): AgentDef => ({
  name,
  command: [name],
  installed: true,
  needs_login: false,
  login_hint: null,
  local_models: local,
  provider,
});

const servers: ModelServer[] = [
  { name: 'gpu-box', url: 'http://127.0.0.1:9000/v1', configured: true, reachable: true, error: null, models: [{ id: 'qwen2.5-coder:7b', context: 32768 }, { id: 'tiny', context: null }], elapsed_ms: 3 },
  { name: 'ollama', url: 'http://127.0.0.1:11434/v1', configured: false, reachable: false, error: 'nothing listens there', models: [], elapsed_ms: 0 },
];

describe('model picker', () => {
  it('offers the local models only to agents that can use them', () => {
    const fa = modelChoices(agent('fast-agent', true, 'nowhere'), servers);
    expect(fa.map((c) => c.value)).toEqual(['', 'local:gpu-box/qwen2.5-coder:7b', 'local:gpu-box/tiny']);
    expect(fa[1].label).toBe('qwen2.5-coder:7b · gpu-box · 32k context');
    const claude = modelChoices(agent('claude', false, 'Anthropic'), servers);
    expect(claude).toEqual([{ value: '', label: "Agent's own model (Anthropic)" }]);
  });

  it('says what leaves the machine', () => {
    expect(privacyText(agent('fast-agent', true, null), 'local:gpu-box/tiny', servers)).toContain('http://127.0.0.1:9000/v1');
    expect(privacyText(agent('claude', false, 'Anthropic'), '', servers)).toBe(
      'Prompts and code go to Anthropic. claude has no local-model preset on this host.',
    );
    expect(serverLines(servers)).toEqual(['gpu-box · 2 models', 'ollama · down: nothing listens there']);
  });

  it('names where a session runs', () => {
    const local = { local: { server: 'gpu-box', endpoint: 'http://127.0.0.1:9000/v1', model: 'tiny' } };
    expect(placeText(local)).toBe('tiny · on the host (gpu-box, http://127.0.0.1:9000/v1)');
    expect(isLocal(local)).toBe(true);
    expect(placeText({ provider: { provider: 'Anthropic' } })).toBe("agent's own model · Anthropic");
    expect(isLocal({ provider: { provider: null } })).toBe(false);
  });
});

describe('GPUs', () => {
  it('fit on one line each', () => {
    const g: GpuInfo = { index: 1, name: 'NVIDIA A100', uuid: 'GPU-1', utilization_pct: null, memory_used_mib: 512, memory_total_mib: 81920, processes: [] };
    expect(gpuText(g)).toBe('1 · NVIDIA A100 · ? · 512 MiB / 80.0 GiB');
  });
});
