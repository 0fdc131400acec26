// End-to-end test of the phone app in Debian's Chromium (playwright-core), phone-emulated,
// against a real `peer-relay` (serving the built app and the bridge) and real `peer host`s.
//
//   npm run build && npm run e2e
//
// Binaries: ../target/debug/peer and peer-relay (built with cargo if missing; override with
// PEER_BIN / PEER_RELAY_BIN). Chromium: /usr/bin/chromium (CHROMIUM). Screenshots and
// results.json go to test-results/e2e/.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, writeFileSync, rmSync, statSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { chromium, devices } from 'playwright-core';
import { startPushService, stubScript } from './push.mjs';
import { localModelSteps } from './local-model.mjs';
import { lockSteps } from './lock.mjs';
import { predictSteps } from './predict.mjs';

const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(web, '..');
const out = join(web, 'test-results', 'e2e');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const PEER = process.env.PEER_BIN ?? join(repo, 'target', 'debug', 'peer');
const RELAY = process.env.PEER_RELAY_BIN ?? join(repo, 'target', 'debug', 'peer-relay');
if (!existsSync(PEER) || !existsSync(RELAY)) {
  const r = spawnSync('cargo', ['build', '-p', 'peer', '-p', 'peer-relay', '--locked'], { cwd: repo, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('cargo build failed');
}
// The app under test: a build with the in-page test hooks (window.peerDebug), in dist-e2e/. The
// production build (dist/, `npm run build`) must have none: checked below, and its size is the
// one reported.
const appDir = join(web, 'dist-e2e');
{
  const r = spawnSync('npx', ['vite', 'build', '--outDir', 'dist-e2e', '--emptyOutDir'], {
    cwd: web,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PEER_DEBUG_HOOKS: '1' },
  });
  if (r.status !== 0) throw new Error('vite build of dist-e2e failed');
}
{
  const r = spawnSync('npm', ['run', 'build'], { cwd: web, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('npm run build failed');
}
// Screenshots for the docs: every screen at 390×844, 360×640 and in landscape.
const docShots = join(out, 'docs');
mkdirSync(docShots, { recursive: true });
const SIZES = [
  ['390x844', { width: 390, height: 844 }],
  ['360x640', { width: 360, height: 640 }],
  ['landscape', { width: 844, height: 390 }],
];
/** Screenshots of what the page shows at each size (CSS pixels), then back to the phone's own. */
async function shots(page, name, sizes = SIZES, prepare = async () => {}) {
  const own = page.viewportSize();
  for (const [label, size] of sizes) {
    await page.setViewportSize(size);
    await page.waitForTimeout(350);
    await prepare();
    await page.screenshot({ path: join(docShots, `${name}-${label}.png`), scale: 'css' });
  }
  await page.setViewportSize(own);
  await page.waitForTimeout(200);
}

const children = [];
const temps = [];
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  for (const t of temps) rmSync(t, { recursive: true, force: true });
}
process.on('exit', cleanup);

/** Starts a process and collects its stdout lines. */
function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, RUST_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) w(line);
    }
  });
  const waitLine = (needle, ms = 30000) =>
    new Promise((resolve, reject) => {
      const hit = lines.find((l) => l.includes(needle));
      if (hit) return resolve(hit);
      const timer = setTimeout(() => reject(new Error(`${cmd}: no line with ${JSON.stringify(needle)}; got:\n${lines.join('\n')}`)), ms);
      const w = (line) => {
        if (line.includes(needle)) {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(w), 1);
          resolve(line);
        }
      };
      waiters.push(w);
    });
  return { child, lines, waitLine };
}

async function startHost(relayUrl, name, extra = []) {
  const home = mkdtempSync(join(tmpdir(), 'peer-e2e-'));
  temps.push(home);
  // Without a relay URL the host runs its embedded front (relay, bridge and the app).
  const where = relayUrl ? ['--relay', relayUrl] : ['--web-root', appDir];
  const env = { PEER_HOME: home, PEER_KEY_STORE: 'file', XDG_STATE_HOME: '' };
  const args = ['host', '--listen', '127.0.0.1', '--push-insecure-loopback', ...where, '--name', name, ...extra];
  const hostEnv = { ...env, SHELL: '/bin/bash', PS1: '$ ' };
  const p = start(PEER, args, hostEnv);
  const line = await p.waitLine('pairing URL: ');
  /** `peer ARGS` against this host's state directory (its control socket). */
  const cli = (...args) => {
    const r = spawnSync(PEER, args, { env: { ...process.env, RUST_LOG: 'warn', ...env }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`peer ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const devices = () => JSON.parse(cli('devices', '--json')).filter((d) => d.revoked_at === null);
  const host = { ...p, home, cli, devices, url: line.slice(line.indexOf('pairing URL: ') + 13).trim() };
  /**
   * Stops the host with `signal` (if it still runs), then
   * starts it again on the same state directory with the same arguments: the same key, and the
   * same ports (host/ports.json), so paired phones find it where it was. `whileDown` runs between
   * the two. Resolves once the new host is up (it prints a pairing URL at every start); `child`,
   * `lines` and `waitLine` are the new process's from then on.
   */
  host.restart = async (signal = 'SIGKILL', whileDown = async () => {}) => {
    const old = host.child;
    if (old.exitCode === null && old.signalCode === null) {
      const gone = new Promise((r) => old.once('exit', r));
      old.kill(signal);
      await gone;
    }
    await whileDown();
    const q = start(PEER, args, hostEnv);
    Object.assign(host, { child: q.child, lines: q.lines, waitLine: q.waitLine });
    await q.waitLine('pairing URL: ');
    return host;
  };
  return host;
}

const results = { steps: [], metrics: {} };
let shot = 0;
// No step may hang the run: past this it fails with its name (a hung run used to end only when
// an outer timeout signalled node, and Playwright's signal handler then closed Chromium, which
// looked like Chromium going away by itself).
const STEP_TIMEOUT_MS = 120000;
// PEER_E2E_ONLY=PREFIX runs only the steps whose names start with it (while working on them).
const ONLY = process.env.PEER_E2E_ONLY ?? '';
async function step(name, page, fn, timeoutMs = STEP_TIMEOUT_MS) {
  if (!name.startsWith(ONLY)) return;
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`step timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const file = `${String(++shot).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`;
    await page.screenshot({ path: join(out, file) });
    results.steps.push({ name, ok: true, ms: Date.now() - t0, screenshot: file });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    await page.screenshot({ path: join(out, `failed-${shot + 1}.png`) }).catch(() => undefined);
    results.steps.push({ name, ok: false, error: String(e) });
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    throw e;
  }
}

const termText = (page) => page.evaluate(() => window.peerDebug.termText());
async function waitTerm(page, pred, what, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const text = await termText(page);
    if (pred(text)) return text;
    if (Date.now() - t0 > ms) throw new Error(`terminal never showed ${what}; it shows:\n${text.slice(-2000)}`);
    await page.waitForTimeout(50);
  }
}
// Once `routeBridges` ran, every new socket to a bridge goes through this route: it can swallow
// everything both ways without closing anything (`blackhole`: a Wi-Fi handover, a NAT that
// forgot the mapping). (Playwright relays a routed socket's messages through node without
// backpressure, so steps that need the socket's own flow control run before it.)
const net = { blackhole: false };
async function routeBridges(page) {
  await page.routeWebSocket(/\/bridge\//, (ws) => {
    const server = ws.connectToServer();
    // Closing one side closes the other (handlers replace Playwright's own forwarding).
    const code = (c) => (c === 1000 || (c >= 3000 && c <= 4999) ? c : 1000);
    ws.onClose((c, reason) => {
      server.close({ code: code(c), reason }).catch(() => {});
    });
    server.onClose((c, reason) => {
      ws.close({ code: code(c), reason }).catch(() => {});
    });
    ws.onMessage((m) => {
      if (!net.blackhole) server.send(m);
    });
    server.onMessage((m) => {
      if (!net.blackhole) ws.send(m);
    });
  });
}
const typeText = async (page, text) => {
  await page.locator('.term-input').focus();
  await page.keyboard.type(text);
};

/** Presses a key of the key bar as a finger does (the bar acts on pointerdown). */
const pressKey = (page, key) => page.locator(`.keybar [data-key="${key}"]`).dispatchEvent('pointerdown');

/** Where the terminal's view is: the line at its top and the newest line's. */
const viewport = (page) =>
  page.evaluate(() => {
    const b = window.peerDebug.term().term.buffer.active;
    return { y: b.viewportY, base: b.baseY };
  });

// Agent sessions: a host whose agents.toml registers the scripted ACP agent (peer-fake-agent),
// a real git repository in a temp dir; start a session from the app, answer its approval with
// a button, see the result, survive a dropped socket without doubles, look at the diff.
// The agent: ../target/debug/peer-fake-agent (built if missing), or PEER_FAKE_AGENT_BIN.
const FAKE_AGENT = process.env.PEER_FAKE_AGENT_BIN ?? join(repo, 'target', 'debug', 'peer-fake-agent');

async function agentSteps(page, relayUrl) {
  let gitRepo;
  const agentsHost = {};
  await step('agent: start a session from the app and answer its approval with a button', page, async () => {
    if (!existsSync(FAKE_AGENT)) {
      const r = spawnSync('cargo', ['build', '-p', 'peer-testkit', '--bin', 'peer-fake-agent', '--locked'], { cwd: repo, stdio: 'inherit' });
      if (r.status !== 0) throw new Error('cargo build of peer-fake-agent failed');
    }
    const home = mkdtempSync(join(tmpdir(), 'peer-e2e-agents-'));
    temps.push(home);
    mkdirSync(join(home, 'host'), { recursive: true });
    const agentState = join(home, 'fake-agent-state');
    mkdirSync(agentState);
    writeFileSync(
      join(home, 'host', 'agents.toml'),
      `[agents.fake]\ncommand = [${JSON.stringify(FAKE_AGENT)}]\nenv = { PEER_FAKE_AGENT_STATE = ${JSON.stringify(agentState)} }\n`,
    );
    gitRepo = mkdtempSync(join(tmpdir(), 'peer-e2e-repo-'));
    temps.push(gitRepo);
    const git = (...args) => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: gitRepo, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    };
    git('init', '-q', '-b', 'main');
    writeFileSync(join(gitRepo, 'a.txt'), 'one\n');
    git('add', '.');
    git('commit', '-q', '-m', 'init');
    const p = start(PEER, ['host', '--listen', '127.0.0.1', '--push-insecure-loopback', '--relay', relayUrl, '--name', 'agents'], {
      PEER_HOME: home,
      PEER_KEY_STORE: 'file',
      XDG_STATE_HOME: '',
    });
    Object.assign(agentsHost, { home, p });
    const line = await p.waitLine('pairing URL: ');
    await page.goto(line.slice(line.indexOf('pairing URL: ') + 13).trim());
    await page.getByRole('button', { name: /Open agents/ }).click({ timeout: 15000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('new-agent').click();
    const form = page.getByTestId('new-agent-form');
    await form.locator('select option[value="fake"]').waitFor({ state: 'attached', timeout: 10000 });
    await form.locator('input[name="repo"]').fill(gitRepo);
    await form.locator('textarea[name="prompt"]').fill('run echo hello-from-agent');
    await form.getByRole('button', { name: 'Start' }).click();
    // The chat: the prompt, the tool call, and an approval card that cannot be missed.
    const card = page.getByTestId('approval').filter({ hasText: 'echo hello-from-agent' });
    await card.getByRole('button', { name: 'Allow once' }).waitFor({ timeout: 20000 });
    await page.getByTestId('agent-state').filter({ hasText: 'needs approval' }).waitFor();
    await page.getByTestId('msg-user').filter({ hasText: 'run echo hello-from-agent' }).waitFor();
    // What will run, and where (the host's reading of the tool call, as the CLI shows it).
    const cmd = await card.getByTestId('approval-command').locator('.what-value').textContent();
    if (cmd !== 'echo hello-from-agent') throw new Error(`the card's command reads ${JSON.stringify(cmd)}`);
    const dir = await card.getByTestId('approval-cwd').textContent();
    if (!/^In\/\S+the agent's directory$/.test(dir)) throw new Error(`the card's directory reads ${JSON.stringify(dir)}`);
    await page.screenshot({ path: join(out, 'agent-approval.png') });
    await shots(page, 'agent-approval');
    // The sessions list shows the badge, titled by the first prompt; the hosts list shows how
    // many approvals wait on each host; back to the chat (a catch-up from the last seen event).
    await page.getByRole('button', { name: '‹' }).click();
    const row = page.getByTestId('agent-session').filter({ has: page.getByTestId('needs-approval') });
    await row.waitFor({ timeout: 10000 });
    const title = await row.getByTestId('agent-title').textContent();
    if (title !== 'run echo hello-from-agent') throw new Error(`the session is titled ${JSON.stringify(title)}`);
    await page.screenshot({ path: join(out, 'agent-list.png') });
    await page.getByRole('button', { name: '‹' }).click();
    const host = page.getByTestId('host').filter({ hasText: 'agents' });
    await host.getByTestId('host-approvals').filter({ hasText: '1 approval' }).waitFor({ timeout: 15000 });
    await shots(page, 'hosts');
    await host.getByRole('button').first().click();
    await row.click();
    await card.getByRole('button', { name: 'Allow once' }).click({ timeout: 10000 });
    await card.getByTestId('answered').filter({ hasText: /Allow once — answered by / }).waitFor({ timeout: 10000 });
    await page.getByTestId('msg-agent').filter({ hasText: 'exit 0: hello-from-agent' }).waitFor({ timeout: 20000 });
    await page.getByTestId('agent-state').filter({ hasText: 'idle' }).waitFor({ timeout: 10000 });
    const users = await page.getByTestId('msg-user').count();
    const approvals = await page.getByTestId('approval').count();
    if (users !== 1 || approvals !== 1) throw new Error(`after reopening: ${users} prompts, ${approvals} approvals (want 1 and 1)`);
  });

  await step('agent: a dropped socket catches up without doubles; the diff', page, async () => {
    await page.evaluate(() => window.peerDebug.dropSockets());
    await page.getByTestId('prompt').fill('write notes.txt hello from the agent');
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByRole('button', { name: 'Send' }).click();
    const tool = page.getByTestId('tool-call').filter({ hasText: 'Write notes.txt' });
    await tool.filter({ hasText: '+hello from the agent' }).waitFor({ timeout: 20000 });
    await page.evaluate(() => window.peerDebug.dropSockets());
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('prompt').fill('after the drop');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'echo: after the drop' }).waitFor({ timeout: 20000 });
    const counts = await page.evaluate(() => ({
      users: document.querySelectorAll('[data-testid="msg-user"]').length,
      agents: document.querySelectorAll('[data-testid="msg-agent"]').length,
      tools: document.querySelectorAll('[data-testid="tool-call"]').length,
      seqs: window.peerDebug.agentView()?.model.items.map((i) => i.seq),
      repeats: [...window.peerDebug.conns.values()].reduce((n, c) => n + c.agentRepeats, 0),
    }));
    // Each re-attach asked from the last event seen + 1: the host sent nothing twice.
    if (counts.repeats !== 0) throw new Error(`${counts.repeats} events came twice`);
    // Prompts: run, write, after; agent bubbles: the run's result, the echo; tool calls: the
    // approved command and the write.
    if (counts.users !== 3 || counts.agents !== 2 || counts.tools !== 2) throw new Error(`doubled or missing: ${JSON.stringify(counts)}`);
    if (new Set(counts.seqs).size !== counts.seqs.length) throw new Error(`an event shown twice: ${counts.seqs}`);
    await page.getByRole('button', { name: 'Diff' }).click();
    const file = page.getByTestId('diff-file').filter({ hasText: 'notes.txt' });
    await file.filter({ hasText: 'hello from the agent' }).waitFor({ timeout: 10000 });
    // Per file: its +/− counts, numbered lines, no git headers.
    await file.getByTestId('diff-counts').filter({ hasText: '+1 −0' }).waitFor({ timeout: 5000 });
    const diffText = await page.locator('.diff-sheet').textContent();
    if (/index [0-9a-f]+\.\.|diff --git|\+\+\+ b\//.test(diffText)) throw new Error(`raw git headers in the diff: ${diffText}`);
    const added = await file.locator('.drow.add').first().evaluate((r) => [...r.children].map((c) => c.textContent));
    if (added[1] !== '1' || added[3] !== 'hello from the agent') throw new Error(`the added line shows as ${JSON.stringify(added)}`);
    await page.screenshot({ path: join(out, 'agent-diff.png') });
    await shots(page, 'agent-diff');
    await page.getByRole('button', { name: 'Done' }).click();
  });

  await step('agent: Markdown is rendered and sanitised; a queued prompt never merges two turns', page, async () => {
    const md = [
      'md **bold** and `code` <script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2">',
      '',
      '| file | change |',
      '|---|---|',
      '| notes.txt | +1 |',
      '',
      '```js',
      'const answer = 6 * 7;',
      '```',
    ].join('\n');
    await page.getByTestId('prompt').fill(md);
    await page.getByRole('button', { name: 'Send' }).click();
    const bubble = page.getByTestId('msg-agent').filter({ hasText: 'echo: md' });
    await bubble.locator('strong').filter({ hasText: 'bold' }).waitFor({ timeout: 20000 });
    await bubble.locator('.table-scroll table').waitFor();
    await bubble.locator('.code-block pre').filter({ hasText: 'const answer = 6 * 7;' }).waitFor();
    await bubble.locator('.code-copy').waitFor();
    await page.waitForTimeout(500);
    const xss = await page.evaluate(() => ({
      flag: window.__xss ?? null,
      scripts: document.querySelectorAll('[data-testid="chat-log"] script').length,
      imgs: document.querySelectorAll('[data-testid="chat-log"] img').length,
      handlers: [...document.querySelectorAll('[data-testid="chat-log"] *')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    }));
    if (xss.flag !== null || xss.scripts || xss.imgs || xss.handlers) throw new Error(`agent output was not sanitised: ${JSON.stringify(xss)}`);
    // The text of the script and the handler is shown as text, not run.
    await bubble.filter({ hasText: '<script>window.__xss = 1</script>' }).waitFor();
    await shots(page, 'agent-markdown');

    // A prompt queued while a turn waits for an approval; the turn goes on after it, then the
    // queued prompt's own turn: two bubbles, in order, never one.
    await page.getByTestId('prompt').fill('run echo turn-one');
    await page.getByRole('button', { name: 'Send' }).click();
    const card = page.getByTestId('approval').filter({ hasText: 'echo turn-one' });
    await card.getByRole('button', { name: 'Allow once' }).waitFor({ timeout: 20000 });
    await page.getByTestId('prompt').fill('turn two');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('msg-user').filter({ hasText: 'turn two' }).filter({ hasText: 'queued' }).waitFor({ timeout: 10000 });
    await card.getByRole('button', { name: 'Allow once' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'echo: turn two' }).waitFor({ timeout: 20000 });
    await page.getByTestId('agent-state').filter({ hasText: 'idle' }).waitFor({ timeout: 10000 });
    const order = await page.evaluate(() =>
      [...document.querySelectorAll('[data-testid="chat-log"] > *')].map((e) => `${e.dataset.testid ?? e.className}: ${e.textContent.slice(0, 60)}`),
    );
    const i1 = order.findIndex((t) => t.startsWith('msg-agent') && t.includes('exit 0: turn-one'));
    const iq = order.findIndex((t) => t.startsWith('msg-user') && t.includes('turn two'));
    const i2 = order.findIndex((t) => t.startsWith('msg-agent') && t.includes('echo: turn two'));
    if (i1 < 0 || iq < 0 || i2 < 0 || !(i1 < iq && iq < i2)) throw new Error(`bubbles out of order or merged: ${JSON.stringify(order.slice(-8))}`);
    // The tool call the turn left pending is closed with it.
    const tool = page.getByTestId('tool-call').filter({ hasText: 'echo turn-one' });
    await tool.locator('.status').filter({ hasText: 'completed' }).waitFor({ timeout: 5000 });
    // A pill, not the connection banner's yellow-brown strip (they share the class name).
    const pillBg = await tool.locator('.status').first().evaluate((e) => getComputedStyle(e).backgroundColor);
    if (pillBg === 'rgb(43, 36, 16)') throw new Error('the tool status pill takes the connection banner style');
  });

  await step("agent: the agent's slash commands as you type /, its modes as a picker", page, async () => {
    await page.getByTestId('prompt').fill('all');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'hello' }).waitFor({ timeout: 20000 });
    // ('hello' is also in the first turn's reply: wait for the commands this turn offers.)
    await page.waitForFunction(() => (window.peerDebug.agentView()?.model.commands.length ?? 0) > 0, null, { timeout: 20000 });
    await page.getByTestId('prompt').fill('');
    await page.getByTestId('prompt').pressSequentially('/t');
    const item = page.getByTestId('slash-item').filter({ hasText: '/test' });
    await item.waitFor({ timeout: 5000 });
    await shots(page, 'agent-slash', [SIZES[0]]);
    await page.getByTestId('prompt').focus();
    await item.click();
    const value = await page.getByTestId('prompt').inputValue();
    if (value !== '/test ') throw new Error(`the prompt reads ${JSON.stringify(value)}`);
    await page.getByTestId('prompt').fill('');
    const mode = page.getByTestId('agent-choices').locator('select[data-choice="mode"]');
    await mode.selectOption('plan');
    await page.waitForFunction(() => window.peerDebug.agentView()?.model.choices.find((c) => c.id === 'mode')?.current === 'plan', null, { timeout: 10000 });
  });

  await step('agent: a prompt queued behind a running turn; cancel drops it', page, async () => {
    await page.getByTestId('prompt').fill('wait');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'waiting' }).waitFor({ timeout: 20000 });
    await page.getByTestId('agent-state').filter({ hasText: 'running' }).waitFor({ timeout: 10000 });
    await page.getByTestId('prompt').fill('behind the wait');
    await page.getByRole('button', { name: 'Send' }).click();
    const queued = page.getByTestId('msg-user').filter({ hasText: 'behind the wait' });
    await queued.filter({ hasText: 'queued' }).waitFor({ timeout: 10000 });
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByText('turn ended: cancelled').waitFor({ timeout: 10000 });
    await page.getByText('1 queued prompt(s) dropped').waitFor({ timeout: 10000 });
    await page.getByTestId('agent-state').filter({ hasText: 'idle' }).waitFor({ timeout: 10000 });
    await queued.filter({ hasText: 'dropped (not sent)' }).waitFor({ timeout: 10000 });
  });

  await step('agent: two answers to one approval, the second gets Conflict', page, async () => {
    await page.getByTestId('prompt').fill('ask');
    await page.getByRole('button', { name: 'Send' }).click();
    const card = page.getByTestId('approval').filter({ hasText: 'cargo test' });
    await card.getByRole('button', { name: 'Allow once' }).waitFor({ timeout: 20000 });
    // Another answer wins first (as from a second client); the page has not redrawn yet (its
    // frames held back for this) when the button is pressed: the host refuses that one.
    await page.evaluate(async () => {
      const view = window.peerDebug.agentView();
      const a = view.model.items.find((i) => i.kind === 'approval' && !i.resolved);
      const conn = [...window.peerDebug.conns.values()].find((c) => c.agentStats().length > 0);
      const raf = window.requestAnimationFrame;
      window.requestAnimationFrame = () => 0;
      try {
        await conn.request({ AgentAnswer: { session: view.model.session, approval: a.approval, option: 'reject' } });
        document.querySelector('[data-testid="approval"]:not(.resolved) .btn.primary').click();
      } finally {
        window.requestAnimationFrame = raf;
      }
    });
    await card.getByTestId('answered').filter({ hasText: /Reject — answered by / }).waitFor({ timeout: 10000 });
    await card.getByText(/Already answered: .*answered/i).waitFor({ timeout: 10000 });
    await page.getByTestId('msg-agent').filter({ hasText: 'permission: reject' }).waitFor({ timeout: 20000 });
  });
  await step('agent: approval cards show the command, the file and its diff, the URL, cut visibly', page, async () => {
    // A long command wraps inside the card (the page never scrolls sideways).
    const long = `cargo test --workspace --all-targets -- --test-threads=1 ${'--include-ignored '.repeat(6)}&& echo ${'x'.repeat(2100)}`;
    await page.getByTestId('prompt').fill(`asks ${long}`);
    await page.getByRole('button', { name: 'Send' }).click();
    const card = page.locator('[data-testid="approval"]:not(.resolved)');
    await card.getByRole('button', { name: 'Reject' }).waitFor({ timeout: 20000 });
    const cmd = await card.getByTestId('approval-command').locator('.what-value').textContent();
    if (!cmd.startsWith('cargo test --workspace') || !/… \(\d+ more characters\)$/.test(cmd)) throw new Error(`long command shown as ${JSON.stringify(cmd.slice(0, 80))}…${JSON.stringify(cmd.slice(-40))}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (wide > 0) throw new Error(`a long command widens the page by ${wide} px`);
    const showCard = () => card.locator('.actions').scrollIntoViewIfNeeded();
    await shots(page, 'agent-approval-long', SIZES.slice(0, 2), showCard);
    await card.getByRole('button', { name: 'Reject' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'permission: reject' }).last().waitFor({ timeout: 20000 });
    // An edit: the file and the change, in the app's diff view.
    await page.getByTestId('prompt').fill('askedit notes.txt');
    await page.getByRole('button', { name: 'Send' }).click();
    await card.getByRole('button', { name: 'Allow once' }).waitFor({ timeout: 20000 });
    await card.getByTestId('approval-file').filter({ hasText: 'notes.txt' }).waitFor();
    await card.locator('.drow.del').filter({ hasText: 'two' }).waitFor();
    await card.locator('.drow.add').filter({ hasText: '2' }).waitFor();
    await shots(page, 'agent-approval-edit', SIZES.slice(0, 2), showCard);
    await card.getByRole('button', { name: 'Allow once' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'permission: allow' }).last().waitFor({ timeout: 20000 });
    // A fetch: its URL.
    await page.getByTestId('prompt').fill('askfetch https://example.com/api?q=1');
    await page.getByRole('button', { name: 'Send' }).click();
    await card.getByTestId('approval-url').filter({ hasText: 'https://example.com/api?q=1' }).waitFor({ timeout: 20000 });
    await card.getByRole('button', { name: 'Reject' }).click();
    await page.getByTestId('agent-state').filter({ hasText: 'idle' }).waitFor({ timeout: 20000 });
  });

  await step('agent: nothing an agent prints can fake the screen (escapes, HTML, forged approvals)', page, async () => {
    const before = await page.evaluate(() => ({ title: document.title, cards: document.querySelectorAll('[data-testid="approval"]').length }));
    await page.getByTestId('prompt').fill('evil');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'after the trick' }).waitFor({ timeout: 20000 });
    await page.getByTestId('prompt').fill('evilhtml');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('msg-agent').filter({ hasText: 'after the html' }).waitFor({ timeout: 20000 });
    await page.getByTestId('agent-state').filter({ hasText: 'idle' }).waitFor({ timeout: 10000 });
    // Open the tool calls so their output is in the page too.
    await page.evaluate(() => {
      for (const d of document.querySelectorAll('[data-testid="tool-call"]')) d.open = true;
    });
    await page.waitForTimeout(500);
    const seen = await page.evaluate(() => {
      const log = document.querySelector('[data-testid="chat-log"]');
      const text = log.textContent;
      return {
        flag: window.__pwned ?? null,
        title: document.title,
        scripts: log.querySelectorAll('script').length,
        imgs: log.querySelectorAll('img').length,
        bold: log.querySelectorAll('b').length,
        handlers: [...log.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
        jsLinks: [...log.querySelectorAll('a')].filter((a) => (a.getAttribute('href') ?? '').trim().toLowerCase().startsWith('javascript')).length,
        cards: log.querySelectorAll('[data-testid="approval"]').length,
        buttons: [...log.querySelectorAll('button')].filter((b) => /allow/i.test(b.textContent)).length,
        rawEscapes: /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(text),
        shownEsc: text.includes('␛[2J') && text.includes('␛]0;pwned-title␇') && text.includes('␛]52;c;cm0gLXJmIH4=␇'),
        forged: text.includes('? approval 9: harmless') && text.includes('⚠ approval needed'),
        toolOut: text.includes('␛[2J␛[Hout'),
      };
    });
    const bad = [];
    if (seen.flag !== null) bad.push(`a script ran (${seen.flag})`);
    if (seen.title !== before.title) bad.push(`the title changed to ${JSON.stringify(seen.title)}`);
    if (seen.scripts || seen.imgs || seen.bold || seen.handlers || seen.jsLinks) bad.push('elements were injected');
    if (seen.cards !== before.cards) bad.push(`${seen.cards - before.cards} approval cards appeared`);
    if (seen.buttons !== 0) bad.push(`${seen.buttons} allow buttons with nothing pending`);
    if (seen.rawEscapes) bad.push('control characters are in the page unshown');
    if (!seen.shownEsc || !seen.toolOut) bad.push('escape sequences are not shown as text');
    if (!seen.forged) bad.push('the forged approval is not shown as plain text');
    if (bad.length) throw new Error(`${bad.join('; ')}: ${JSON.stringify(seen)}`);
    // A real approval after it: the only card, the only buttons.
    await page.getByTestId('prompt').fill('asks rm -rf build');
    await page.getByRole('button', { name: 'Send' }).click();
    const card = page.locator('[data-testid="approval"]:not(.resolved)');
    await card.getByRole('button', { name: 'Reject' }).waitFor({ timeout: 20000 });
    if ((await card.count()) !== 1) throw new Error(`${await card.count()} pending cards`);
    await shots(page, 'agent-escapes', [SIZES[0]], () => card.locator('.actions').scrollIntoViewIfNeeded());
    await card.getByRole('button', { name: 'Reject' }).click();
    await page.getByTestId('agent-state').filter({ hasText: 'idle' }).waitFor({ timeout: 20000 });
  });
  return agentsHost;
}

// Notifications: turned on in the settings, registered with every host; an approval asked for
// while the phone looks elsewhere goes host → push service (Node's crypto checks and decrypts
// it) → service worker (CDP) → a notification, whose tap opens the approval card.
async function pushSteps(page, context, relayUrl, svc, agents) {
  const origin = new URL(relayUrl).origin;
  await step('notifications: turned on in the settings, every host gets the subscription', page, async () => {
    await page.goto(relayUrl);
    await page.getByRole('button', { name: 'Settings' }).click();
    const sw = page.getByTestId('push-switch');
    await sw.check();
    const lines = page.getByTestId('push-host');
    await page.waitForFunction(
      () => {
        const l = [...document.querySelectorAll('[data-testid="push-host"]')];
        return l.length >= 4 && l.every((e) => !e.textContent.endsWith('…'));
      },
      null,
      { timeout: 30000 },
    );
    const texts = await lines.allTextContents();
    if (!texts.every((t) => t.endsWith(': on'))) throw new Error(`registrations: ${texts.join(' | ')}`);
    svc.state.key = Buffer.from(await page.evaluate(() => localStorage.getItem('peer-test-push-key')), 'base64url');
    results.metrics.pushHosts = texts.length;
  });

  await step('notifications: an approval reaches the phone, encrypted; the tap opens its card', page, async () => {
    // The phone looks at the host list, not at the agent's chat.
    await page.goto(relayUrl);
    await page.getByTestId('host').first().waitFor();
    // A laptop prompts the agent: `peer pair` + `peer agent send` against the agents host.
    const env = { ...process.env, RUST_LOG: 'warn', PEER_KEY_STORE: 'file', XDG_STATE_HOME: '' };
    const run = (home, ...args) => {
      const r = spawnSync(PEER, args, { env: { ...env, PEER_HOME: home }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`peer ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const url = run(agents.home, 'pair', '--no-wait').split('\n').find((l) => l.startsWith('pairing URL: ')).slice(13).trim();
    const laptop = mkdtempSync(join(tmpdir(), 'peer-e2e-laptop-'));
    temps.push(laptop);
    run(laptop, 'pair', url, '--name', 'laptop');
    const [s] = JSON.parse(run(laptop, 'agent', 'ls', '--json'));
    const before = svc.state.received.length;
    const t0 = Date.now();
    run(laptop, 'agent', 'send', String(s.id), 'ask');
    const push = await svc.waitFor((j) => j.kind === 'approval' && j.session?.agent === s.id);
    results.metrics.approvalPushMs = push.at - t0;
    if (push.size !== 1024 || push.urgency !== 'high') throw new Error(`push ${JSON.stringify({ size: push.size, urgency: push.urgency })}`);
    if (push.json.title !== 'fake needs approval' || push.json.host_name !== 'agents') throw new Error(`push ${push.data}`);
    if (svc.state.rejected.length) throw new Error(`rejected: ${svc.state.rejected}`);
    if (svc.state.received.length !== before + 1) throw new Error(`${svc.state.received.length - before} pushes for one approval`);
    // Hand it to the service worker as the browser's push service would.
    const cdp = await context.newCDPSession(page);
    const regs = new Map();
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      for (const r of registrations) if (!r.isDeleted) regs.set(r.scopeURL, r.registrationId);
    });
    await cdp.send('ServiceWorker.enable');
    const t1 = Date.now();
    while (![...regs.keys()].some((k) => k.startsWith(origin))) {
      if (Date.now() - t1 > 10000) throw new Error(`no service worker registration: ${[...regs.keys()]}`);
      await page.waitForTimeout(50);
    }
    const registrationId = [...regs.entries()].find(([k]) => k.startsWith(origin))[1];
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId, data: push.data });
    // Polled from here: the page's answer is a promise (getNotifications).
    let n = null;
    const t2 = Date.now();
    while (!n) {
      n = await page.evaluate(async (tag) => {
        const ns = await (await navigator.serviceWorker.ready).getNotifications({ tag });
        return ns.length ? { title: ns[0].title, body: ns[0].body, tag: ns[0].tag } : null;
      }, push.json.tag);
      if (n) break;
      if (Date.now() - t2 > 10000) throw new Error('the service worker showed no notification within 10 s');
      await page.waitForTimeout(100);
    }
    if (n.title !== 'fake needs approval' || !n.body.startsWith('agents · ')) throw new Error(`notification ${JSON.stringify(n)}`);
    results.metrics.notification = n;
    await page.screenshot({ path: join(out, 'push-notification-shown.png') });
    // A tap (no browser API clicks a notification: the service worker's test hook does).
    await page.evaluate((tag) => navigator.serviceWorker.controller.postMessage({ type: 'peer-test-click', tag }), push.json.tag);
    const card = page.locator(`[data-testid="approval"][data-approval="${push.json.approval}"]`);
    await card.filter({ has: page.getByRole('button', { name: 'Allow once' }) }).waitFor({ timeout: 15000 });
    await page.locator('[data-testid="approval"].focus').waitFor({ timeout: 5000 });
    const box = await card.boundingBox();
    const vh = page.viewportSize().height;
    if (!box || box.y < 0 || box.y + Math.min(box.height, 100) > vh) throw new Error(`the card is not in view: ${JSON.stringify(box)}, viewport ${vh}`);
    await page.screenshot({ path: join(out, 'push-tap-opens-approval.png') });
    // Answered from the phone; the notification is gone after the tap.
    await card.getByRole('button', { name: 'Allow once' }).click();
    await card.getByTestId('answered').waitFor({ timeout: 10000 });
    const left = await page.evaluate(async (tag) => (await (await navigator.serviceWorker.ready).getNotifications({ tag })).length, push.json.tag);
    if (left !== 0) throw new Error(`${left} notifications left after the tap`);
    // The app opened "closed" at the URL a tap opens (clients.openWindow): the same session.
    await page.goto(`${relayUrl}?open=${push.json.host}/agent/${s.id}&approval=${push.json.approval}`);
    await page.getByTestId('approval').first().waitFor({ timeout: 15000 });
    if (new URL(page.url()).search !== '') throw new Error(`the query stayed: ${page.url()}`);
  });
}

// Host restarts: `peer host` keeps each shell in a keeper process, so a host that is killed
// (SIGKILL) and started again on the same state directory takes the shells over, and the phone
// resumes where it was, byte-exact; a host started with --kill-sessions-on-exit takes its
// shells with it, and the phone says so. A page of its own (its own pairings), at 390×844.
async function restartSteps(browser, relayUrl) {
  const context = await browser.newContext({ ...devices['Pixel 7'], viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  /** Pairs the page with `host` and opens a new terminal on it, at a shell prompt. */
  const pairAndOpen = async (host, name) => {
    await page.goto(host.url);
    await page.getByRole('button', { name: new RegExp(`Open ${name}`) }).click({ timeout: 15000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('new-session').click();
    await page.locator('.xterm-rows').waitFor();
    await waitTerm(page, (t) => /[$#] ?$/m.test(t), 'a prompt');
  };
  const restartToast = page.locator('.toast').filter({ hasText: 'The host restarted.' });
  const endedWithHost = 'The host restarted; this session ended with it.';
  const count = (text, line) => text.split('\n').filter((l) => l === line).length;
  /** The controls among `selector` that a tap at their centre would miss (something covers them). */
  const covered = (selector) =>
    page.evaluate((sel) => {
      return [...document.querySelectorAll(sel)]
        .filter((e) => {
          const r = e.getBoundingClientRect();
          const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
          return !(hit === e || e.contains(hit));
        })
        .map((e) => `${e.dataset.key ?? e.textContent}: under ${document.elementFromPoint(e.getBoundingClientRect().x + 4, e.getBoundingClientRect().y + 4)?.className}`);
    }, selector);

  await step('host restart: after a SIGKILL the next host takes the shell over; the phone resumes byte-exact', page, async () => {
    const host = await startHost(relayUrl, 'phoenix');
    await pairAndOpen(host, 'phoenix');
    await typeText(page, 'export X=kept-$((6*7)); echo $X\n');
    await waitTerm(page, (t) => /^kept-42$/m.test(t), 'kept-42');
    // A stream running across the kill: `seq 1 N` in 40 slices 0.1 s apart (about 4 s), framed
    // by markers the typed command's echo cannot contain. Its PTY output (LF becomes CRLF) must
    // arrive whole and once.
    const N = 400_000;
    const slice = N / 40;
    const expected = createHash('sha256');
    let expectedLen = 0;
    for (let i = 1; i <= N; i += slice) {
      let chunk = '';
      for (let j = i; j < i + slice; j++) chunk += `${j}\r\n`;
      expected.update(chunk);
      expectedLen += chunk.length;
    }
    await page.evaluate(() => window.peerDebug.recordOutput());
    await typeText(page, `printf 'BEGIN\\n'; for i in $(seq 0 39); do seq $((i*${slice}+1)) $((i*${slice}+${slice})); sleep 0.1; done; printf 'END\\n'\n`);
    await page.waitForFunction(() => window.peerDebug.recordedLength().len >= 300_000, null, { timeout: 30000, polling: 20 });
    const at = await page.evaluate(() => window.peerDebug.recordedLength().len);
    const t0 = Date.now();
    await host.restart('SIGKILL');
    const upMs = Date.now() - t0;
    await restartToast.waitFor({ timeout: 20000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 20000 });
    const onlineMs = Date.now() - t0;
    // The toast leaves the key bar to the fingers.
    if (!(await restartToast.isVisible())) throw new Error('the restart toast was gone when the app came online');
    const hidden = await covered('.keybar .key');
    if (hidden.length) throw new Error(`the restart toast covers keys: ${hidden.join(', ')}`);
    await shots(page, 'terminal-host-restarted-toast', [SIZES[0]]);
    let got = null;
    const deadline = Date.now() + 60000;
    while (!(got = await page.evaluate(() => window.peerDebug.recordedBetween('BEGIN\r\n', 'END\r\n')))) {
      if (Date.now() > deadline) throw new Error('END never arrived after the restart');
      await page.waitForTimeout(100);
    }
    const { lost } = await page.evaluate(() => window.peerDebug.recordedLength());
    if (lost !== 0) throw new Error(`the host reported ${lost} bytes lost`);
    if (got.len !== expectedLen) throw new Error(`received ${got.len} bytes of ${expectedLen}`);
    if (got.sha256 !== expected.digest('hex')) throw new Error('the stream differs from seq 1 N (SHA-256)');
    // What the terminal shows: the stream's last lines once each, in order, then END.
    let text = await waitTerm(page, (t) => /^END$/m.test(t), 'END');
    const tail = text.split('\n').filter((l) => l !== '');
    const iEnd = tail.lastIndexOf('END');
    const want = [...Array.from({ length: 20 }, (_, k) => String(N - 19 + k)), 'END'];
    if (tail.slice(iEnd - 20, iEnd + 1).join(',') !== want.join(',')) throw new Error(`the stream's end shows as:\n${tail.slice(iEnd - 22, iEnd + 2).join('\n')}`);
    // The terminal opened afresh as a notification's tap opens it (straight from the URL, the
    // host's screen never shown), then the host killed again while idle, and typed at while it
    // is down: sent once the next host is up; the phone says the host restarted.
    const [hostId, sessionId] = await page.evaluate(() => {
      const [[id, c]] = [...window.peerDebug.conns.entries()];
      return [id, c.channelStats()[0].session];
    });
    await page.goto(`${relayUrl}?open=${hostId}/pty/${sessionId}`);
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await waitTerm(page, (t) => /^END$/m.test(t), 'END in the reopened terminal');
    // The picture of the screen it opens with is the screen's as the phone shows it: the prompt
    // on the cursor's line, the last one written, right under END (a picture drawn for another
    // size leaves the cursor in the middle of old lines).
    await page.waitForTimeout(300);
    const screen = await page.evaluate(() => {
      const t = window.peerDebug.term().term;
      const b = t.buffer.active;
      const line = (i) => b.getLine(i)?.translateToString(true) ?? '';
      const cursorAt = b.baseY + b.cursorY;
      let last = b.length - 1;
      while (last > 0 && line(last) === '') last--;
      return { cols: t.cols, rows: t.rows, cursorAt, last, lines: [line(cursorAt - 2), line(cursorAt - 1), line(cursorAt)] };
    });
    if (screen.cursorAt !== screen.last || screen.lines[0] !== '400000' || screen.lines[1] !== 'END' || !/[$#] ?$/.test(screen.lines[2])) {
      throw new Error(`the reopened terminal's picture is off: ${JSON.stringify(screen)}`);
    }
    const t1 = Date.now();
    await host.restart('SIGKILL', async () => {
      await page.getByTestId('conn-state').filter({ hasNotText: 'online' }).waitFor({ timeout: 10000 });
      await typeText(page, 'echo $X-after\n');
    });
    await restartToast.waitFor({ timeout: 20000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 20000 });
    text = await waitTerm(page, (t) => /^kept-42-after$/m.test(t), 'kept-42-after (the same shell)', 20000);
    const againMs = Date.now() - t1;
    if (count(text, 'kept-42-after') !== 1) throw new Error(`kept-42-after shows ${count(text, 'kept-42-after')} times`);
    if (text.includes('ended with it') || (await page.getByTestId('ended').count()) > 0) throw new Error(`the session shows as ended:\n${text.slice(-1500)}`);
    if (!(await page.getByTestId('keybar').isVisible())) throw new Error('the key bar is gone after the restart');
    await typeText(page, 'echo still-$((7*6))\n');
    await waitTerm(page, (t) => /^still-42$/m.test(t), 'still-42');
    results.metrics.hostRestart = { streamBytes: expectedLen, killedAtBytes: at, hostUpMs: upMs, onlineAfterKillMs: onlineMs, typedWhileDownShownMs: againMs };
    await shots(page, 'terminal-after-host-restart', [SIZES[0]]);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  });

  await step('host restart: with --kill-sessions-on-exit the shell ends with the host, the terminal says how, the app goes on', page, async () => {
    const host = await startHost(relayUrl, 'ephemeral', ['--kill-sessions-on-exit']);
    await pairAndOpen(host, 'ephemeral');
    await typeText(page, 'echo before-$((2*3))\n');
    await waitTerm(page, (t) => /^before-6$/m.test(t), 'before-6');
    // Stopped (SIGTERM): the host hangs the shell up and writes down how it ended, which the
    // next host tells the phone.
    await host.restart('SIGTERM');
    const ended = page.getByTestId('ended');
    await ended.waitFor({ timeout: 20000 });
    await restartToast.waitFor({ timeout: 5000 });
    let hidden = await covered('[data-testid="ended"] button');
    if (hidden.length) throw new Error(`the restart toast covers the ended session's buttons: ${hidden.join(', ')}`);
    const said = (await ended.locator('.ended-text').textContent()) ?? '';
    if (!/^Session ended: (ended by |exited with status )/.test(said)) throw new Error(`after a stop the terminal says ${JSON.stringify(said)}`);
    let text = await termText(page);
    if (count(text, 'before-6') !== 1) throw new Error(`before-6 shows ${count(text, 'before-6')} times`);
    results.metrics.killSessionsStopSays = said;
    await shots(page, 'terminal-host-stopped-session-ended', [SIZES[0]]);
    // The app goes on: a new terminal; then the host is killed (SIGKILL), so nothing wrote the
    // session's end down: the phone says it ended with the host.
    await ended.getByRole('button', { name: 'New terminal here' }).click();
    await page.locator('.xterm-rows').waitFor();
    await waitTerm(page, (t) => /[$#] ?$/m.test(t), 'a prompt in the new terminal');
    await typeText(page, 'echo second-$((3*3))\n');
    await waitTerm(page, (t) => /^second-9$/m.test(t), 'second-9');
    await host.restart('SIGKILL');
    await ended.filter({ hasText: endedWithHost }).waitFor({ timeout: 20000 });
    if (await restartToast.isVisible()) {
      hidden = await covered('[data-testid="ended"] button');
      if (hidden.length) throw new Error(`the restart toast covers the ended session's buttons: ${hidden.join(', ')}`);
    }
    text = await termText(page);
    if (!text.replace(/\n/g, '').includes(`[${endedWithHost}]`)) throw new Error(`the terminal does not say it ended with the host:\n${text.slice(-800)}`);
    if (await page.getByTestId('keybar').isVisible()) throw new Error('the key bar stays after the session ended');
    await shots(page, 'terminal-host-killed-session-ended', [SIZES[0]]);
    await ended.getByRole('button', { name: 'New terminal here' }).click();
    await page.locator('.xterm-rows').waitFor();
    await waitTerm(page, (t) => /[$#] ?$/m.test(t), 'a prompt after the restart');
    await typeText(page, 'echo third-$((4*4))\n');
    await waitTerm(page, (t) => /^third-16$/m.test(t), 'third-16');
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  });
  await context.close();
}

let failed = false;
const relay = start(RELAY, ['--http-bind', '127.0.0.1:0', '--web-root', appDir, '--allow-root']);
const pushService = await startPushService();
const relayLine = await relay.waitLine('relay URL: ');
const relayUrl = relayLine.slice(relayLine.indexOf('relay URL: ') + 11).trim();
const hostA = await startHost(relayUrl, 'studio');

// Chromium's own output: run with DEBUG=pw:browser to see it.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    // Playwright adds --headless and a fresh temporary profile (--user-data-dir) itself.
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // Shared memory in /tmp, not /dev/shm: containers (CI) often give /dev/shm 64 MB, which a
    // renderer drawing a flood can exhaust. Debian's launcher means to add this flag then, but its
    // check breaks when findmnt lists /dev/shm twice.
    '--disable-dev-shm-usage',
  ],
});
const context = await browser.newContext({ ...devices['Pixel 7'] });
// The browser's real push service is not reachable offline: `subscribe` hands out the test's.
await context.addInitScript(stubScript, { endpoint: pushService.endpoint, p256dh: pushService.p256dh, auth: pushService.auth });
await context.grantPermissions(['notifications'], { origin: new URL(relayUrl).origin });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(String(e)));
page.on('crash', () => console.log('the page crashed (rerun with DEBUG=pw:browser for its output)'));
// Playwright closes Chromium itself when node gets one of these: say so, or it looks like a crash.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => console.log(`received ${sig}: Playwright closes Chromium and the run stops`));
}
let closing = false;
browser.on('disconnected', () => {
  if (!closing) console.log('the browser went away (rerun with DEBUG=pw:browser for its output)');
});

try {
  await step('pair from the QR link and compare the short code', page, async () => {
    await page.goto(hostA.url);
    // The fragment (the secret) is gone from the address bar at once.
    if (new URL(page.url()).hash !== '') throw new Error(`fragment not scrubbed: ${page.url()}`);
    const code = page.getByTestId('short-code');
    await code.filter({ hasText: /\d{3} \d{3}/ }).waitFor({ timeout: 15000 });
    const shown = (await code.textContent()).trim();
    const line = await hostA.waitLine('short code ');
    const hostCode = line.match(/short code (\d{3} \d{3})/)[1];
    if (shown !== hostCode) throw new Error(`page shows ${shown}, host ${hostCode}`);
    results.metrics.shortCode = shown;
    results.metrics.deviceKey = await page.evaluate(() => window.peerDebug.keyKind());
    await page.getByRole('button', { name: /Open studio/ }).waitFor();
  });

  await step('open a terminal and run echo hi', page, async () => {
    await page.getByRole('button', { name: /Open studio/ }).click();
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('new-session').click();
    await page.locator('.xterm-rows').waitFor();
    await waitTerm(page, (t) => /[$#] ?$/m.test(t), "a prompt");
    await typeText(page, 'echo hi\n');
    await waitTerm(page, (t) => /^hi$/m.test(t), '"hi" on its own line');
  });

  await step('the cursor shows in a fresh shell, and the key bar fits a 360 px phone', page, async () => {
    // A solid block where the next character goes, although the terminal itself never has the
    // focus (input goes to the app's own field).
    const cursor = await page.evaluate(() => {
      const c = document.querySelector('.xterm-rows .xterm-cursor');
      if (!c) return null;
      const st = getComputedStyle(c);
      return { cls: c.className, bg: st.backgroundColor, termFocused: document.activeElement?.classList.contains('xterm-helper-textarea') ?? false };
    });
    if (!cursor) throw new Error('no cursor in the terminal');
    if (!/xterm-cursor-block/.test(cursor.cls) || /rgba\(0, 0, 0, 0\)|transparent/.test(cursor.bg)) {
      throw new Error(`the cursor is not a visible block: ${JSON.stringify(cursor)}`);
    }
    if (cursor.termFocused) throw new Error('xterm has the focus: the test would not show the unfocused cursor');
    results.metrics.cursor = cursor;
    // At 360×640, ^C and every key of the first page are on screen: nothing to scroll.
    await page.setViewportSize({ width: 360, height: 640 });
    await page.waitForTimeout(300);
    const fit = await page.evaluate(() => {
      const bar = document.querySelector('[data-testid="keybar"]');
      const keys = [...bar.querySelectorAll('.key')].map((k) => {
        const r = k.getBoundingClientRect();
        const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return { key: k.dataset.key, left: r.left, right: r.right, bottom: r.bottom, width: r.width, reachable: hit === k || k.contains(hit) };
      });
      return { keys, scroll: bar.scrollWidth - bar.clientWidth, w: innerWidth, h: innerHeight };
    });
    const cc = fit.keys.find((k) => k.key === 'ctrl-c');
    if (!cc || !cc.reachable || cc.right > fit.w || cc.bottom > fit.h) throw new Error(`^C is not reachable at 360 px: ${JSON.stringify(cc)}`);
    const off = fit.keys.filter((k) => !k.reachable || k.right > fit.w || k.left < 0);
    if (off.length || fit.scroll > 0) throw new Error(`keys off screen at 360 px: ${JSON.stringify(off)}, overflow ${fit.scroll}`);
    results.metrics.keyWidthAt360 = Math.min(...fit.keys.map((k) => k.width));
    await page.setViewportSize(devices['Pixel 7'].viewport);
    await page.waitForTimeout(300);
  });

  await step('key bar: Paste, Alt, Shift+Tab; jump to latest; search; copy all; font size resizes the PTY', page, async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(page.url()).origin });
    await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((3*7))'));
    await pressKey(page, 'paste');
    await typeText(page, '\n');
    await waitTerm(page, (t) => /^pasted-21$/m.test(t), 'the pasted command run');
    // Shift+Tab and Alt+x reach the program as ESC [ Z and ESC x (cat -v shows them).
    await typeText(page, 'cat -v\n');
    await page.waitForTimeout(300);
    await pressKey(page, 's-tab');
    await pressKey(page, 'alt');
    await typeText(page, 'x\n');
    await waitTerm(page, (t) => t.includes('^[[Z^[x'), 'ESC [ Z and ESC x from the key bar');
    await pressKey(page, 'ctrl-c');
    // The shell's prompt first: keys that reach the terminal with the ^C are discarded with it.
    await waitTerm(
      page,
      (t) => {
        const lines = t.split('\n').map((l) => l.trimEnd());
        const at = lines.findLastIndex((l) => l.endsWith('^C'));
        return at >= 0 && lines.slice(at + 1).some((l) => /[$#]$/.test(l));
      },
      'the prompt after ^C',
    );
    // Scrolled up: a button back to the newest line; typing goes back there too.
    await typeText(page, 'seq 1 400\n');
    await waitTerm(page, (t) => /^400$/m.test(t), 'seq up to 400');
    await page.evaluate(() => window.peerDebug.term().term.scrollLines(-150));
    const latest = page.getByTestId('jump-latest');
    await latest.waitFor({ state: 'visible', timeout: 5000 });
    await shots(page, 'terminal-scrolled', [SIZES[0]]);
    await latest.dispatchEvent('pointerdown');
    await latest.waitFor({ state: 'hidden', timeout: 5000 });
    let v = await viewport(page);
    if (v.y !== v.base) throw new Error(`not at the newest line after "Latest": ${JSON.stringify(v)}`);
    await page.evaluate(() => window.peerDebug.term().term.scrollLines(-150));
    await typeText(page, 'e');
    await page.waitForTimeout(200);
    v = await viewport(page);
    if (v.y !== v.base) throw new Error(`typing did not bring the screen back to the cursor: ${JSON.stringify(v)}`);
    await typeText(page, '\x7f');
    // Search (on the second page of keys).
    await pressKey(page, 'more');
    await pressKey(page, 'find');
    await page.locator('.find-input').fill('pasted-21');
    await page.getByTestId('find-count').filter({ hasText: /^1\/1$/ }).waitFor({ timeout: 5000 });
    const sel = await page.evaluate(() => window.peerDebug.term().term.getSelection());
    if (sel !== 'pasted-21') throw new Error(`search selected ${JSON.stringify(sel)}`);
    await shots(page, 'terminal-search', [SIZES[0]]);
    await page.getByRole('button', { name: 'close search' }).click();
    await pressKey(page, 'more');
    // Copy mode: "Copy all" puts the scrollback on the clipboard.
    await pressKey(page, 'copy');
    await page.getByTestId('copy-sheet').getByRole('button', { name: 'Copy all' }).click();
    await page.getByTestId('copy-sheet').waitFor({ state: 'detached', timeout: 5000 });
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    if (!/^pasted-21$/m.test(copied) || !/^400$/m.test(copied)) throw new Error(`Copy all copied ${copied.length} chars without the output`);
    // A bigger font: fewer columns, and the program sees the new size.
    const before = await page.evaluate(() => window.peerDebug.term().term.cols);
    await page.evaluate(() => window.peerDebug.term().setFont(20));
    await page.waitForTimeout(300);
    const grid = await page.evaluate(() => ({ cols: window.peerDebug.term().term.cols, rows: window.peerDebug.term().term.rows }));
    if (grid.cols >= before) throw new Error(`font 20: ${grid.cols} columns, was ${before}`);
    await typeText(page, 'clear; stty size\n');
    await waitTerm(page, (t) => new RegExp(`^${grid.rows} ${grid.cols}$`, 'm').test(t), `stty size ${grid.rows} ${grid.cols}`);
    await page.evaluate(() => window.peerDebug.term().setFont(13));
    await page.waitForTimeout(300);
    results.metrics.colsPixel7Font13 = await page.evaluate(() => window.peerDebug.term().term.cols);
  });

  await step('lose the socket and resume with nothing missing or doubled', page, async () => {
    await typeText(page, 'for i in $(seq 1 60); do echo line$i; sleep 0.05; done\n');
    await waitTerm(page, (t) => /^line5$/m.test(t), 'line5');
    await page.evaluate(() => window.peerDebug.dropSockets());
    // Typed while offline: kept and sent after the resume, exactly once.
    await page.keyboard.type('echo typed-while-away\n');
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    const text = await waitTerm(page, (t) => /^typed-while-away$/m.test(t) && /^line60$/m.test(t), 'line60 and the typed command', 20000);
    for (let i = 1; i <= 60; i++) {
      // The echo of what was typed while away may share a line with the loop's output (the
      // keystrokes reach the terminal one by one, between the loop's lines).
      const n = text.split('\n').filter((l) => l === `line${i}` || new RegExp(`\\Dline${i}$`).test(l)).length;
      if (n !== 1) throw new Error(`line${i} appears ${n} times; the terminal shows:\n${text.slice(-3000)}`);
    }
    const n = text.split('\n').filter((l) => l === 'typed-while-away').length;
    if (n !== 1) throw new Error(`the typed command's output appears ${n} times`);
  });

  await step('flood with yes and stop it with the key bar ^C', page, async () => {
    await typeText(page, 'yes\n');
    await page.waitForTimeout(1500);
    // The page still answers while the flood runs.
    const t0 = Date.now();
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    results.metrics.frameDuringFloodMs = Date.now() - t0;
    // The key bar's ^C, timed in the page: until the host's echo of ^C arrives, and until it
    // is on the screen.
    results.metrics.floodBytesPerHalfSecond = await page.evaluate(() =>
      [...window.peerDebug.conns.values()].flatMap((c) => c.channelStats()).map((s) => s.recentBytes).join(','),
    );
    const c = await page.evaluate(() => window.peerDebug.measureCtrlC());
    results.metrics.ctrlCArrivedMs = +c.arrivedMs.toFixed(1);
    results.metrics.ctrlCShownMs = +c.shownMs.toFixed(1);
    results.metrics.ctrlCBytesInFlight = c.bytesAfter;
    // How its effect was seen: the echo of ^C or the prompt after it.
    results.metrics.ctrlCSeenBy = c.how;
    results.metrics.ctrlCAttaches = c.attaches;
    await typeText(page, 'echo stopped-$((6*7))\n');
    await waitTerm(page, (t) => /^stopped-42$/m.test(t), 'the prompt after ^C', 20000);
    results.metrics.ctrlCSkippedBacklog = await page.evaluate(() =>
      [...window.peerDebug.conns.values()].some((c) => c.skipAheads > 0),
    );
    // The target is 200 ms (met on an idle machine, see docs/benchmarks.md). The test runs
    // debug builds of the relay and host on a shared 2-core machine, where a fresh socket's
    // handshake alone can take hundreds of ms under load, so it fails only past 2 s: the flood
    // must stop promptly, and the time is recorded in results.json.
    if (c.shownMs > 2000) throw new Error(`^C took ${c.shownMs} ms to show`);
  });

  await step('keystroke echo and rendering speed, measured in the page', page, async () => {
    await typeText(page, 'clear\n');
    await page.waitForTimeout(300);
    const times = await page.evaluate(() => window.peerDebug.measureEcho(200));
    times.sort((a, b) => a - b);
    results.metrics.echoP50Ms = +times[Math.floor(times.length * 0.5)].toFixed(2);
    results.metrics.echoP99Ms = +times[Math.floor(times.length * 0.99)].toFixed(2);
    results.metrics.renderMBps = +(await page.evaluate(() => window.peerDebug.measureRender(16))).toFixed(1);
  });

  await step('an ended session says so and offers a new terminal in its directory', page, async () => {
    // Something to look at in the screenshots first.
    await typeText(page, "clear; cd /usr/share && ls -d */ | head -n 12; printf '\\033[1;32mok\\033[0m build passed in 2.1s\\n'\n");
    await waitTerm(page, (t) => /build passed/.test(t), 'the listing');
    await page.waitForTimeout(300);
    await shots(page, 'terminal');
    await pressKey(page, 'more');
    await shots(page, 'keybar-page2', [SIZES[0], SIZES[1]]);
    await pressKey(page, 'more');
    // A phone in landscape with its keyboard up: about 220 px left; the header steps aside.
    await page.setViewportSize({ width: 844, height: 220 });
    await page.waitForTimeout(400);
    const header = await page.evaluate(() => getComputedStyle(document.querySelector('header.bar')).display);
    const rows = await page.evaluate(() => window.peerDebug.term().term.rows);
    await page.screenshot({ path: join(docShots, 'terminal-landscape-keyboard.png'), scale: 'css' });
    await page.setViewportSize(devices['Pixel 7'].viewport);
    await page.waitForTimeout(300);
    if (header !== 'none') throw new Error(`the header stays in a 220 px high landscape view (${rows} rows)`);
    results.metrics.rowsLandscapeKeyboardUp = rows;
    await typeText(page, 'exit\n');
    const ended = page.getByTestId('ended');
    await ended.filter({ hasText: 'Session ended: exited with status 0' }).waitFor({ timeout: 10000 });
    if (await page.getByTestId('keybar').isVisible()) throw new Error('the key bar stays after the session ended');
    // Nothing reads the keys any more: no cursor either.
    await page
      .waitForFunction(() => !document.querySelector('.xterm-rows .xterm-cursor'), null, { timeout: 3000 })
      .catch(() => {
        throw new Error('the cursor still shows in an ended session');
      });
    await shots(page, 'terminal-ended', [SIZES[0]]);
    await ended.getByRole('button', { name: 'New terminal here' }).click();
    await page.locator('.xterm-rows').waitFor();
    await waitTerm(page, (t) => /[$#] ?$/m.test(t), 'a prompt in the new terminal');
    await typeText(page, 'echo here-$((2+3))\n');
    await waitTerm(page, (t) => /^here-5$/m.test(t), 'here-5');
  });

  await step('the sessions list shows what runs where and when; rename; kill', page, async () => {
    await page.getByRole('button', { name: '‹' }).click();
    const row = page.getByTestId('session').first();
    await row.filter({ hasText: 'running' }).waitFor({ timeout: 10000 });
    // The shell, the directory it started in, and when it last did something.
    const where = await row.getByTestId('session-where').textContent();
    const meta = await row.getByTestId('session-meta').textContent();
    if (!where.startsWith('/')) throw new Error(`the row shows no directory: ${where}`);
    if (!/just now|min ago/.test(meta)) throw new Error(`the row shows no last activity: ${meta}`);
    page.once('dialog', (d) => void d.accept('build box'));
    await row.getByRole('button', { name: 'Rename' }).click();
    await page.getByTestId('session-name').filter({ hasText: 'build box' }).waitFor({ timeout: 10000 });
    await shots(page, 'sessions');
    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('session').first().getByRole('button', { name: 'Kill' }).click();
    await page.getByTestId('session').first().filter({ hasText: /ended/ }).waitFor({ timeout: 10000 });
  });

  await step('pair a second host', page, async () => {
    const hostB = await startHost(relayUrl, 'laptop');
    await page.goto(hostB.url);
    const code = page.getByTestId('short-code');
    await code.filter({ hasText: /\d{3} \d{3}/ }).waitFor({ timeout: 15000 });
    const shown = (await code.textContent()).trim();
    const line = await hostB.waitLine('short code ');
    if (!line.includes(shown)) throw new Error(`page shows ${shown}, host says ${line}`);
    await page.getByRole('button', { name: /Open laptop/ }).waitFor();
    await page.goto(relayUrl);
    await page.getByTestId('host').nth(1).waitFor();
    const names = await page.getByTestId('host').allTextContents();
    if (!names.some((n) => n.includes('studio')) || !names.some((n) => n.includes('laptop'))) {
      throw new Error(`host list: ${names.join(' | ')}`);
    }
    // Each host says whether it is reachable.
    await page.getByTestId('host').filter({ hasText: 'studio' }).getByTestId('host-state').filter({ hasText: /^online/ }).waitFor({ timeout: 15000 });
  });

  await step('settings name the origin the app came from and the relays of each host', page, async () => {
    await page.getByRole('button', { name: 'Settings' }).click();
    const origin = new URL(relayUrl).origin;
    const hint = page.locator('p.hint[data-origin]');
    await hint.waitFor({ timeout: 10000 });
    const shown = await hint.getAttribute('data-origin');
    if (shown !== origin) throw new Error(`settings say the app came from ${shown}, not ${origin}`);
    const rows = await page.locator('small.relays').allTextContents();
    if (rows.length < 2 || !rows.every((r) => r.includes(origin))) throw new Error(`relays shown: ${rows.join(' | ')}`);
  });

  let hostC;
  await step("pair with a host that serves the app itself (peer host's embedded front)", page, async () => {
    hostC = await startHost(null, 'embedded');
    await page.goto(hostC.url);
    const code = page.getByTestId('short-code');
    await code.filter({ hasText: /\d{3} \d{3}/ }).waitFor({ timeout: 15000 });
    const shown = (await code.textContent()).trim();
    const line = await hostC.waitLine('short code ');
    if (!line.includes(shown)) throw new Error(`page shows ${shown}, host says ${line}`);
    await page.getByRole('button', { name: /Open embedded/ }).click();
    // As in the other steps: a terminal asked for before the host is reached may fail (a toast).
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('new-session').click();
    await page.locator('.xterm-rows').waitFor();
    await typeText(page, 'echo embedded-$((40+2))\n');
    await waitTerm(page, (t) => /^embedded-42$/m.test(t), 'embedded-42');
  });

  await step('a 28 MB stream survives the phone offline for 0.5 s, 5 s and 30 s: every byte, once', page, async () => {
    // PTY output of `seq 1 N` (LF becomes CRLF), framed by markers the typed command's echo
    // cannot contain.
    const N = 3_300_000;
    const expected = createHash('sha256');
    let expectedLen = 0;
    for (let i = 1; i <= N; i += 100_000) {
      let chunk = '';
      for (let j = i; j < Math.min(i + 100_000, N + 1); j++) chunk += `${j}\r\n`;
      expected.update(chunk);
      expectedLen += chunk.length;
    }
    const want = expected.digest('hex');
    await page.evaluate(() => window.peerDebug.recordOutput());
    const t0 = Date.now();
    await typeText(page, `printf 'BEGIN\\n'; seq 1 ${N}; printf 'END\\n'\n`);
    const outages = [];
    for (const [after, ms] of [[2e6, 500], [8e6, 5000], [14e6, 30000]]) {
      // Offline once the stream is `after` bytes in.
      await page.waitForFunction((n) => window.peerDebug.recordedLength().len >= n, after, { timeout: 60000, polling: 100 }).catch(async () => {
        const got = await page.evaluate(() => window.peerDebug.recordedLength().len);
        throw new Error(`the stream stopped at ${got} bytes before the ${ms} ms outage`);
      });
      // The browser goes offline (new sockets fail) and its open sockets drop, as a phone's do
      // when the radio goes; no route in the way, so the sockets' own backpressure holds.
      await context.setOffline(true);
      await page.evaluate(() => window.peerDebug.dropSockets());
      await page.waitForTimeout(ms);
      const during = await page.getByTestId('conn-state').textContent();
      if (ms >= 5000 && /^online/.test(during ?? '')) throw new Error(`online while the browser was offline (${during})`);
      await context.setOffline(false);
      const back = Date.now();
      await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 }).catch(async (e) => {
        const status = await page.getByTestId('conn-status').textContent().catch(() => '');
        throw new Error(`not online 15 s after a ${ms} ms outage (${status}): ${e}`);
      });
      outages.push({ ms, onlineAfterMs: Date.now() - back });
    }
    let got = null;
    const deadline = Date.now() + 120000;
    while (!(got = await page.evaluate(() => window.peerDebug.recordedBetween('BEGIN\r\n', 'END\r\n')))) {
      if (Date.now() > deadline) throw new Error('END never arrived');
      await page.waitForTimeout(250);
    }
    results.metrics.offlineStream = { bytes: expectedLen, outages, totalMs: Date.now() - t0 };
    const { lost } = await page.evaluate(() => window.peerDebug.recordedLength());
    if (lost !== 0) throw new Error(`the host reported ${lost} bytes lost`);
    if (got.len !== expectedLen) throw new Error(`received ${got.len} bytes of ${expectedLen}`);
    if (got.sha256 !== want) throw new Error(`SHA-256 differs: ${got.sha256} != ${want}`);
    await typeText(page, 'clear\n');
  }, 240000);

  await step('a link that stops carrying data is noticed, and the app is back as soon as data flows', page, async () => {
    await routeBridges(page);
    await page.evaluate(() => window.peerDebug.dropSockets());
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await typeText(page, 'echo before-$((1+1))\n');
    await waitTerm(page, (t) => /^before-2$/m.test(t), 'before-2');
    net.blackhole = true;
    const t0 = Date.now();
    await page.getByTestId('conn-status').filter({ hasText: /No contact/ }).waitFor({ timeout: 10000 });
    const noticedMs = Date.now() - t0;
    // Typed while there is no contact: queued, shown as waiting, sent once afterwards.
    await typeText(page, 'echo during-$((2+2))\n');
    await page.getByTestId('conn-status').filter({ hasText: /waiting to be sent/ }).waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(out, 'no-contact.png') });
    await page.waitForTimeout(2000);
    net.blackhole = false;
    const t1 = Date.now();
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await waitTerm(page, (t) => /^during-4$/m.test(t), 'during-4', 15000);
    const backMs = Date.now() - t1;
    results.metrics.deadLinkNoticedMs = noticedMs;
    results.metrics.liveAfterFlowMs = backMs;
    const text = await termText(page);
    const n = text.split('\n').filter((l) => l === 'during-4').length;
    if (n !== 1) throw new Error(`the command typed offline ran ${n} times`);
    if (noticedMs > 6000) throw new Error(`the dead link was noticed after ${noticedMs} ms`);
    if (backMs > 2000) throw new Error(`live again ${backMs} ms after data flowed`);
  });

  await step('revoked while attached: the removal screen at once; pairing again recovers without a reload', page, async () => {
    const [phone] = hostC.devices();
    const t0 = Date.now();
    hostC.cli('devices', 'revoke', phone.id);
    const panel = page.getByTestId('failure').filter({ hasText: 'This phone was removed from embedded' });
    await panel.waitFor({ timeout: 10000 });
    const ms = Date.now() - t0;
    results.metrics.revokedShownMs = ms;
    if (ms > 2000) throw new Error(`the removal screen came after ${ms} ms`);
    await page.screenshot({ path: join(out, 'revoked.png') });
    await panel.getByRole('button', { name: 'Pair again' }).click();
    const fresh = hostC.cli('pair', '--no-wait');
    const url = fresh.split('\n').find((l) => l.startsWith('pairing URL: ')).slice(13).trim();
    await page.locator('textarea.paste').fill(url);
    await page.getByRole('button', { name: 'Pair', exact: true }).click();
    await page.getByRole('button', { name: /Open embedded/ }).click({ timeout: 15000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('new-session').click();
    await page.locator('.xterm-rows').waitFor();
    await typeText(page, 'echo again-$((5*5))\n');
    await waitTerm(page, (t) => /^again-25$/m.test(t), 'again-25');
  });

  await step('two hosts send the phone to one app (--app-url): one list, one device key', page, async () => {
    // An embedded host whose pairing links open the relay's app instead of its own.
    const hostD = await startHost(null, 'tower', ['--app-url', relayUrl]);
    if (!hostD.url.startsWith(relayUrl)) throw new Error(`pairing URL ${hostD.url} is not under ${relayUrl}`);
    await page.goto(hostD.url);
    await page.getByTestId('short-code').filter({ hasText: /\d{3} \d{3}/ }).waitFor({ timeout: 15000 });
    await page.getByRole('button', { name: /Open tower/ }).click({ timeout: 15000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.goto(relayUrl);
    await page.getByTestId('host').filter({ hasText: 'tower' }).waitFor({ timeout: 10000 });
    const names = await page.getByTestId('host').allTextContents();
    if (!names.some((n) => n.includes('studio'))) throw new Error(`host list: ${names.join(' | ')}`);
    // Each host lists the phone once, under the same device key.
    const a = hostA.devices();
    const d = hostD.devices();
    if (a.length !== 1 || d.length !== 1 || a[0].id !== d[0].id) {
      throw new Error(`devices: studio ${JSON.stringify(a)}, tower ${JSON.stringify(d)}`);
    }
    await page.screenshot({ path: join(out, 'one-app-two-hosts.png') });
  });

  await restartSteps(browser, relayUrl);
  const agents = await agentSteps(page, relayUrl);
  await pushSteps(page, context, relayUrl, pushService, agents);
  await localModelSteps({ page, relayUrl, step, start, PEER, repo, out, temps });
  await lockSteps({ browser, relayUrl, step, startHost, shotsDir: docShots });
  // Predicted echo through a 400 ms round trip (PEER_E2E_PREDICT=0 leaves the steps out).
  if (process.env.PEER_E2E_PREDICT !== '0') {
    await predictSteps({ browser, relayUrl, step, startHost, shotsDir: docShots, results });
  }

  await step('a used pairing link is refused with a clear message', page, async () => {
    await page.goto(hostA.url);
    await page.getByText(/already used/).waitFor({ timeout: 15000 });
  });
} catch {
  failed = true;
}

// Bundle size: what a phone downloads for the app shell (JS + CSS + HTML, gzip).
let gz = 0;
const assets = join(web, 'dist', 'assets');
let mdGz = 0;
for (const f of readdirSync(assets)) {
  if (f.startsWith('jsQR')) continue; // loaded only when the camera is used
  const bytes = readFileSync(join(assets, f));
  if (f.endsWith('.js') && bytes.includes('peerDebug')) {
    failed = true;
    console.log(`FAIL the production build has the test hooks (${f})`);
  }
  // The Markdown renderer is loaded with the first agent chat.
  if (f.startsWith('markdown')) mdGz += gzipSync(bytes).length;
  else gz += gzipSync(bytes).length;
}
results.metrics.markdownGzipKB = +(mdGz / 1024).toFixed(1);
gz += gzipSync(readFileSync(join(web, 'dist', 'index.html'))).length;
results.metrics.bundleGzipKB = +(gz / 1024).toFixed(1);
results.metrics.consoleErrors = consoleErrors;
if (consoleErrors.some((e) => /Content Security Policy/i.test(e))) {
  failed = true;
  console.log('FAIL the page broke its CSP:', consoleErrors);
}
writeFileSync(join(out, 'results.json'), JSON.stringify(results, null, 2));
console.log(JSON.stringify(results.metrics, null, 2));
closing = true;
pushService.close();
// A browser that died does not answer close(): give it 5 s.
await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5000))]);
cleanup();
process.exit(failed ? 1 : 0);
