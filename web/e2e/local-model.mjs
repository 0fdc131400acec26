// The app's side of agents on the host machine's own models: the host screen shows the GPUs,
// the new-session form offers the models of the host's model servers and says what leaves the
// machine, and the chat says where the session's model runs.
//
// The host's GPUs come from a recorded `nvidia-smi` (a script named by PEER_NVIDIA_SMI), its
// model server is peer-fake-model (a scripted stand-in for an OpenAI-compatible server), and
// the agent is the scripted peer-fake-agent with a `local` table: this step checks the app;
// a real agent on a local model is tested in peer/tests/it/agent_local_model.rs.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GPU_CSV = '0, GPU-3b5e1d9a-8f2c-4a77-9e41-2c1f0b6d7e88, NVIDIA GeForce RTX 4090, 37, 18734, 24564';
const APPS_CSV = 'GPU-3b5e1d9a-8f2c-4a77-9e41-2c1f0b6d7e88, 4121, /usr/local/bin/llama-server, 18210';

function binary(repo, env, name) {
  const p = process.env[env] ?? join(repo, 'target', 'debug', name);
  if (!existsSync(p)) {
    const r = spawnSync('cargo', ['build', '-p', 'peer-testkit', '--bin', name, '--locked'], { cwd: repo, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`cargo build of ${name} failed`);
  }
  return p;
}

export async function localModelSteps({ page, relayUrl, step, start, PEER, repo, out, temps }) {
  await step('local model: GPUs on the host screen, the model picker, where the model runs', page, async () => {
    const fakeAgent = binary(repo, 'PEER_FAKE_AGENT_BIN', 'peer-fake-agent');
    const fakeModel = binary(repo, 'PEER_FAKE_MODEL_BIN', 'peer-fake-model');
    const home = mkdtempSync(join(tmpdir(), 'peer-e2e-local-'));
    temps.push(home);
    mkdirSync(join(home, 'host'), { recursive: true });
    const smi = join(home, 'nvidia-smi');
    writeFileSync(smi, `#!/bin/sh\ncase "$1" in\n  --query-gpu=*) echo '${GPU_CSV}' ;;\n  --query-compute-apps=*) echo '${APPS_CSV}' ;;\nesac\n`);
    chmodSync(smi, 0o755);
    const model = start(fakeModel, ['--model', 'qwen2.5-coder:7b']);
    const port = (await model.waitLine('listening ')).trim().split(':').pop();
    writeFileSync(
      join(home, 'host', 'agents.toml'),
      `[agents.fake]\ncommand = [${JSON.stringify(fakeAgent)}]\n[agents.fake.local]\nenv = { FAKE_MODEL = "\${PEER_MODEL}" }\n` +
        `[models]\nusual_ports = false\n[models.servers.gpu-box]\nurl = "http://127.0.0.1:${port}/v1"\n`,
    );
    const gitRepo = mkdtempSync(join(tmpdir(), 'peer-e2e-repo-'));
    temps.push(gitRepo);
    const git = (...args) => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: gitRepo, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    };
    git('init', '-q', '-b', 'main');
    writeFileSync(join(gitRepo, 'a.txt'), 'one\n');
    git('add', '.');
    git('commit', '-q', '-m', 'init');
    const p = start(PEER, ['host', '--listen', '127.0.0.1', '--relay', relayUrl, '--name', 'gpubox'], {
      PEER_HOME: home,
      PEER_KEY_STORE: 'file',
      PEER_NVIDIA_SMI: smi,
      XDG_STATE_HOME: '',
    });
    const line = await p.waitLine('pairing URL: ');
    await page.goto(line.slice(line.indexOf('pairing URL: ') + 13).trim());
    await page.getByRole('button', { name: /Open gpubox/ }).click({ timeout: 15000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    // The host screen: the GPU, its memory and the process holding it.
    const gpus = page.getByTestId('gpus');
    await gpus.filter({ hasText: 'NVIDIA GeForce RTX 4090 · 37% · 18.3 GiB / 24.0 GiB' }).waitFor({ timeout: 10000 });
    await gpus.filter({ hasText: '/usr/local/bin/llama-server (pid 4121, 17.8 GiB)' }).waitFor();
    await page.screenshot({ path: join(out, 'host-gpus.png') });
    // The form: the local model is offered, and the hint says the prompts stay on the host.
    await page.getByTestId('new-agent').click();
    const form = page.getByTestId('new-agent-form');
    const option = form.locator('select[name="model"] option[value="local:gpu-box/qwen2.5-coder:7b"]');
    await option.waitFor({ state: 'attached', timeout: 10000 });
    await form.locator('select[name="model"]').selectOption('local:gpu-box/qwen2.5-coder:7b');
    await page.getByTestId('model-hint').filter({ hasText: `http://127.0.0.1:${port}/v1 on the host's side` }).waitFor();
    await form.locator('input[name="repo"]').fill(gitRepo);
    await form.locator('textarea[name="prompt"]').fill('hello');
    await page.screenshot({ path: join(out, 'agent-model-picker.png') });
    await form.getByRole('button', { name: 'Start' }).click();
    // The chat says where the model runs.
    await page.getByTestId('model-place').filter({ hasText: 'Model: qwen2.5-coder:7b · on the host (gpu-box' }).waitFor({ timeout: 20000 });
    await page.getByTestId('msg-agent').filter({ hasText: 'echo: hello' }).waitFor({ timeout: 20000 });
    await page.screenshot({ path: join(out, 'agent-local-model.png') });
  });
}
