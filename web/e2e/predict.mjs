// Predicted echo in Chromium through a slow link: a page of its own whose sockets to the bridge
// go through a route that holds every message DELAY ms each way (and can hold the page's
// messages to the host altogether, to keep guesses on screen for the screenshots). The setting
// at Always, a shell prompt: typed letters show underlined before the host's echo, and once it
// arrives the screen is the host's with no guess left; a password prompt (`read -s`) shows
// nothing typed; backspace and arrow edits in bash end as bash has them; a program that echoes
// other characters than typed (a wrong guess) leaves none of the guessed ones. Then Auto: guesses
// show once the round trip is measured above 30 ms. (A routed socket has no backpressure: these
// steps only type.)
import { devices } from 'playwright-core';

/** One way, ms: a 400 ms round trip at least. */
const DELAY = 200;

/** Where the page's guesses and the terminal's cursor line are, every 4 ms, from now on. */
const watch = (page) =>
  page.evaluate(() => {
    const w = { keys: [], frames: [], stop: false };
    window.__predictWatch = w;
    document.addEventListener('keydown', (e) => w.keys.push({ key: e.key, at: performance.now() }), { capture: true });
    const tick = () => {
      if (w.stop) return;
      const t = window.peerDebug.term().term;
      const b = t.buffer.active;
      const line = b.getLine(b.baseY + b.cursorY)?.translateToString(true).trimEnd() ?? '';
      const cells = [...document.querySelectorAll('[data-testid=predicted] .predict-cell')].map((c) => c.textContent);
      const last = w.frames[w.frames.length - 1];
      const guess = cells.join('');
      if (!last || last.line !== line || last.guess !== guess) w.frames.push({ at: performance.now(), line, guess });
      setTimeout(tick, 4);
    };
    tick();
  });
const watched = (page) => page.evaluate(() => window.__predictWatch);
const unwatch = (page) => page.evaluate(() => (window.__predictWatch.stop = true));

/** The guesses on screen now: their text, and whether each is underlined. */
const guesses = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('[data-testid=predicted] .predict-cell')].map((c) => ({
      ch: c.textContent,
      underline: getComputedStyle(c).textDecorationLine.includes('underline'),
    })),
  );
const cursorLine = (page) =>
  page.evaluate(() => {
    const b = window.peerDebug.term().term.buffer.active;
    return b.getLine(b.baseY + b.cursorY)?.translateToString(true).trimEnd() ?? '';
  });
const stats = (page) =>
  page.evaluate(() => {
    const e = window.peerDebug.term().echo;
    // `early`: echo acks that came before the output they cover (answered once it came).
    return { ...e.engine.stats, rtt: e.engine.rtt, early: e.early, lastWrong: e.engine.lastWrong };
  });

/**
 * For diagnosis: each echo ack that comes before the output it covers, with what checking its
 * guesses at once (before that output, as the app did until it read the ack's offset) would
 * have found on screen (`window.__earlyAcks`).
 */
const spyEarlyAcks = () => {
  const t = window.peerDebug.term();
  const e = t.echo;
  const seen = (window.__earlyAcks = []);
  const echoAck = e.echoAck.bind(e);
  // Output received on the terminal's channel so far.
  const received = () => {
    for (const c of window.peerDebug.conns.values()) {
      const s = c.channelStats().find((x) => x.id === t.channel);
      if (s) return s.offset;
    }
    return Infinity;
  };
  e.echoAck = (a) => {
    if (a.offset > received()) {
      const mine = [...e.engine.cells.values()].filter((g) => g.seq <= a.seq).sort((x, y) => x.col - y.col);
      const at = { seq: a.seq, offset: a.offset, received: received(), guessed: mine.map((g) => g.ch).join('') };
      void t.writer.idle().then(() => {
        const b = t.term.buffer.active;
        at.found = mine.map((g) => b.getLine(b.baseY + g.row)?.getCell(g.col)?.getChars() || ' ').join('');
        seen.push(at);
      });
    }
    echoAck(a);
  };
};
const earlyAcks = (page) => page.evaluate(() => window.__earlyAcks ?? []);

export async function predictSteps({ browser, relayUrl, step, startHost, shotsDir, results }) {
  const context = await browser.newContext({ ...devices['Pixel 7'], viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  // `down`: every message dropped both ways, sockets left open (a link that stops carrying data).
  const net = { hold: false, held: [], down: false };
  await page.routeWebSocket(/\/bridge\//, (ws) => {
    const server = ws.connectToServer();
    const code = (c) => (c === 1000 || (c >= 3000 && c <= 4999) ? c : 1000);
    ws.onClose((c, reason) => setTimeout(() => server.close({ code: code(c), reason }).catch(() => {}), DELAY));
    server.onClose((c, reason) => setTimeout(() => ws.close({ code: code(c), reason }).catch(() => {}), DELAY));
    // Timers of one duration fire in the order they were set: the order of messages holds.
    const up = (m) => setTimeout(() => server.send(m), DELAY);
    ws.onMessage((m) => {
      if (net.down) return;
      if (net.hold) net.held.push(() => up(m));
      else up(m);
    });
    server.onMessage((m) => {
      if (!net.down) setTimeout(() => ws.send(m), DELAY);
    });
  });
  const release = () => {
    net.hold = false;
    for (const f of net.held.splice(0)) f();
  };
  const host = await startHost(relayUrl, 'faraway');
  const type = async (text, delay = 0) => {
    await page.locator('.term-input').focus();
    await page.keyboard.type(text, { delay });
  };
  const waitLine = async (pred, what, ms = 15000) => {
    const t0 = Date.now();
    for (;;) {
      const line = await cursorLine(page);
      if (pred(line)) return line;
      if (Date.now() - t0 > ms) throw new Error(`the cursor line never showed ${what}; it shows ${JSON.stringify(line)}`);
      await page.waitForTimeout(20);
    }
  };
  /** Waits until everything typed is answered: the line stays `line` and no guess is left. */
  const settled = async (want) => {
    // The terminal's lines come without their trailing blanks.
    const line = want.trimEnd();
    await waitLine((l) => l === line, JSON.stringify(line));
    await page.waitForTimeout(3 * DELAY);
    const now = await cursorLine(page);
    if (now !== line) throw new Error(`the line became ${JSON.stringify(now)}, expected ${JSON.stringify(line)}`);
    const g = await guesses(page);
    if (g.length) throw new Error(`guesses left after the round trip: ${JSON.stringify(g)}`);
  };
  const openTerminal = async (predict) => {
    await page.evaluate((predict) => {
      const p = JSON.parse(localStorage.getItem('peer.prefs') ?? '{}');
      localStorage.setItem('peer.prefs', JSON.stringify({ ...p, predict }));
    }, predict);
    await page.goto(new URL(relayUrl).origin);
    await page.getByRole('button', { name: /faraway/ }).first().click({ timeout: 15000 });
    await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
    await page.getByTestId('new-session').click();
    await page.locator('.xterm-rows').waitFor();
    await page.waitForFunction(() => window.peerDebug.term()?.echo);
    await page.evaluate(spyEarlyAcks);
    await waitLine((l) => /[$#]$/.test(l), 'a prompt');
    // A prompt of known text, whatever the shell's profile set.
    await type("PS1='$ '; clear\n");
    await page.waitForFunction(() => window.peerDebug.termText().trim() === '$', null, { timeout: 15000 });
  };

  try {
    await step(`predicted echo (Always) through a ${2 * DELAY} ms round trip: letters at once, underlined, then the host's`, page, async () => {
      await page.goto(host.url);
      await page.getByRole('button', { name: /Open faraway/ }).waitFor({ timeout: 20000 });
      await openTerminal('always');
      // Guesses show once the host has confirmed one: the first letter waits for its echo.
      await type('echo ');
      await settled('$ echo ');
      const s0 = await stats(page);
      await watch(page);
      const word = 'quartz';
      for (const ch of word) {
        await type(ch);
        await page.waitForTimeout(60);
      }
      await settled(`$ echo ${word}`);
      const w = await watched(page);
      await unwatch(page);
      const rows = [];
      for (const ch of word) {
        const key = w.keys.find((k) => k.key === ch).at;
        const shown = w.frames.find((f) => f.at >= key && f.guess.includes(ch));
        const echoed = w.frames.find((f) => f.at >= key && f.line.includes(ch));
        if (!shown) throw new Error(`"${ch}" was never shown before the echo: ${JSON.stringify(w.frames)}`);
        if (!echoed) throw new Error(`"${ch}" never echoed`);
        rows.push({ ch, shownMs: +(shown.at - key).toFixed(1), echoMs: +(echoed.at - key).toFixed(1) });
      }
      // Shown while the echo is still a round trip away, and the guesses agree with it.
      for (const r of rows) {
        if (r.echoMs < 2 * DELAY) throw new Error(`the echo of "${r.ch}" came in ${r.echoMs} ms, under the link's ${2 * DELAY} ms`);
        if (r.shownMs > DELAY) throw new Error(`"${r.ch}" took ${r.shownMs} ms to show (echo: ${r.echoMs} ms)`);
      }
      const s = await stats(page);
      if (s.wrong !== s0.wrong) {
        throw new Error(`wrong guesses on a shell prompt: ${JSON.stringify(s0)} → ${JSON.stringify(s)}; early acks ${JSON.stringify(await earlyAcks(page))}; keys ${JSON.stringify(w.keys)}; frames ${JSON.stringify(w.frames)}`);
      }
      results.metrics.predictWrongBefore = s0.wrong;
      results.metrics.predictLastWrongBefore = s0.lastWrong;
      results.metrics.predictShownMs = Math.max(...rows.map((r) => r.shownMs));
      results.metrics.predictEchoMs = Math.min(...rows.map((r) => r.echoMs));
      results.metrics.predictRttMs = Math.round(s.rtt);
      results.metrics.predictEarlyAcks = s.early;
      // Those that checked at once would have found a guess not yet echoed (a wrong guess).
      const early = await earlyAcks(page);
      results.metrics.predictEarlyAckDetails = early;
      results.metrics.predictEarlyAcksWrongIfChecked = early.filter((x) => x.found !== x.guessed).length;
      console.log(`     predicted echo: ${JSON.stringify(rows)}`);
      // Underlined while they are guesses: hold the page's messages to keep them on screen.
      for (const [label, size] of [['390x844', { width: 390, height: 844 }], ['360x640', { width: 360, height: 640 }]]) {
        await page.setViewportSize(size);
        await page.waitForTimeout(400);
        await type(' ');
        await settled(`$ echo ${word} `);
        net.hold = true;
        await type('guess');
        const g = await guesses(page);
        if (g.map((c) => c.ch).join('') !== 'guess' || !g.every((c) => c.underline)) throw new Error(`guesses on screen: ${JSON.stringify(g)}`);
        await page.screenshot({ path: `${shotsDir}/predicted-echo-${label}.png`, scale: 'css' });
        release();
        await settled(`$ echo ${word} guess`);
        await page.keyboard.press('Control+U');
        await settled('$ ');
        await type(`echo ${word}`);
        await settled(`$ echo ${word}`);
      }
      await page.setViewportSize({ width: 390, height: 844 });
      await type('\n');
      await waitLine((l) => l === '$', 'the next prompt');
    });

    await step('predicted echo: a password prompt (read -s) shows nothing typed', page, async () => {
      await type(`read -s -p 'pw: ' P; echo "[\${#P}]"\n`);
      await waitLine((l) => l === 'pw:', 'the password prompt');
      await watch(page);
      for (const ch of 'hunter2') {
        await type(ch);
        await page.waitForTimeout(60);
      }
      await page.waitForTimeout(3 * DELAY);
      const w = await watched(page);
      await unwatch(page);
      const shown = w.frames.filter((f) => f.guess !== '' || f.line !== 'pw:');
      if (shown.length) throw new Error(`the password prompt showed: ${JSON.stringify(shown)}`);
      await type('\n');
      await waitLine((l) => l === '$', 'the next prompt');
      const text = await page.evaluate(() => window.peerDebug.termText());
      if (!/^pw: \[7\]$/m.test(text) || text.includes('hunter')) throw new Error(`after the password: ${text.slice(-300)}`);
    });

    await step('predicted echo: backspace and arrow edits end as bash has them', page, async () => {
      await type('clear\n');
      // The screen cleared (the line before it was a bare prompt too).
      await page.waitForFunction(() => window.peerDebug.termText().trim() === '$', null, { timeout: 15000 });
      await type('echo abcd');
      await settled('$ echo abcd');
      const s0 = await stats(page);
      await watch(page);
      // Each edit while the ones before are still on their way.
      for (const k of ['Backspace', 'ArrowLeft', 'ArrowLeft', 'X', 'ArrowRight', 'Y', 'ArrowRight', 'ArrowRight', 'Z']) {
        await page.keyboard.press(k);
        await page.waitForTimeout(40);
      }
      await settled('$ echo aXbYcZ');
      const w = await watched(page);
      await unwatch(page);
      if (!w.frames.some((f) => f.guess !== '')) throw new Error('no edit was shown before its echo');
      const s = await stats(page);
      if (s.wrong !== s0.wrong) throw new Error(`wrong guesses while editing: ${JSON.stringify(s)}`);
      await type('\n');
      await waitLine((l) => l === '$', 'the next prompt');
      const text = await page.evaluate(() => window.peerDebug.termText());
      if (!/^aXbYcZ$/m.test(text)) throw new Error(`bash ran: ${text.slice(-300)}`);
    });

    await step('predicted echo: a program that echoes other characters takes the guesses back', page, async () => {
      // Echoes the first three keys as typed and the rest in capitals (no line editing): the
      // guesses for the rest are wrong.
      await type(`clear; stty -echo -icanon; n=0; while IFS= read -rs -n1 c; do n=$((n+1)); [ $n -le 3 ] && printf %s "$c" || printf %s "\${c^^}"; [ "$c" = q ] && break; done; stty sane; echo\n`);
      await page.waitForFunction(() => window.peerDebug.termText().trim() === '', null, { timeout: 15000 });
      await page.waitForTimeout(2 * DELAY);
      const before = '';
      for (const ch of 'abc') {
        await type(ch);
        await waitLine((l) => l === before + 'abc'.slice(0, 'abc'.indexOf(ch) + 1), `"${ch}"`);
      }
      await watch(page);
      for (const ch of 'def') {
        await type(ch);
        await page.waitForTimeout(40);
      }
      await settled(before + 'abcDEF');
      const w = await watched(page);
      await unwatch(page);
      const s = await stats(page);
      results.metrics.predictWrongShown = w.frames.some((f) => /[def]/.test(f.guess));
      if (s.wrong === 0) throw new Error(`no wrong guess was made: ${JSON.stringify(s)} ${JSON.stringify(w.frames)}`);
      const text = await page.evaluate(() => window.peerDebug.termText());
      if (/abc.*[def]/.test(text)) throw new Error(`a wrong guess stayed: ${text.slice(-300)}`);
      await type('q');
      await waitLine((l) => l === '$', 'the prompt after the program');
    });

    await step('predicted echo: Ctrl-C takes the line\'s guesses back at once', page, async () => {
      await type('echo ');
      await settled('$ echo ');
      // Held: the guesses stay on screen until the ^C, and the host has not answered it yet.
      await page.evaluate(() => window.peerDebug.recordOutput());
      net.hold = true;
      await type('zap');
      const g = await guesses(page);
      if (g.map((c) => c.ch).join('') !== 'zap') throw new Error(`guesses on screen: ${JSON.stringify(g)}`);
      await page.keyboard.press('Control+C');
      const after = await guesses(page);
      if (after.length) throw new Error(`guesses left after Ctrl-C: ${JSON.stringify(after)}`);
      release();
      // The keys and the ^C reach the terminal together (they come in separate messages), and
      // it discards the keys bash has not read yet: none, some or all of them. A ^C that lands
      // while bash's line editor is between two reads can stay pending until another key comes
      // (bash 5.2; on a bare PTY without peer too, web/README.md), in one of two forms: bash
      // prints nothing more after the keys it read, or it prints `^C`, puts the line back
      // (`ESC[?2004l CR ESC[?2004h`, a cursor move right per key) and waits. Only then, and only
      // once the host has acknowledged every key and the ^C (they are in the PTY: nothing of
      // peer's is still on the way), a second ^C, as a person would press, ends the line.
      const prompt = await waitLine((l) => l === '$', 'the prompt after ^C', 3000).catch(() => null);
      const bashWaits = async () => {
        const line = await cursorLine(page);
        const got = await page.evaluate(() => window.peerDebug.recordedTail(200));
        const acked = (await page.evaluate(() => [...window.peerDebug.conns.values()].flatMap((c) => c.channelStats()))).every((c) => c.unacked === 0);
        const nothingMore = /^\$ echo (z|za|zap)?$/.test(line) && /^(z|za|zap)?$/.test(got);
        const keptLine = /^\$ echo (z|za|zap)?\^C$/.test(line) && /\^C\x1b\[\?2004l\r\x1b\[\?2004h(\x1b\[C)*$/.test(got);
        return acked && (nothingMore || keptLine);
      };
      if (prompt === null && (await bashWaits())) {
        console.log('  (bash left the ^C pending until the next key: a second ^C sent)');
        await page.keyboard.press('Control+C');
      }
      await waitLine((l) => l === '$', 'the prompt after ^C').catch(async (e) => {
        const state = await page.evaluate(() =>
          [...window.peerDebug.conns.values()].map((c) => ({
            state: c.state,
            deadLinks: c.deadLinks,
            skipAheads: c.skipAheads,
            channels: c.channelStats(),
          })),
        );
        const tail = (await page.evaluate(() => window.peerDebug.termText())).slice(-200);
        // Whether the prompt's bytes came (and the screen did not show them) or never came.
        const got = await page.evaluate(() => window.peerDebug.recordedTail(200));
        throw new Error(`${e.message}; connections ${JSON.stringify(state)}; screen ends ${JSON.stringify(tail)}; output received since 'zap' ends ${JSON.stringify(got)}`);
      });
      const text = await page.evaluate(() => window.peerDebug.termText());
      // (A second ^C is echoed where the cursor was, over the first.)
      if (!/^\$ echo (z|za|zap)?\^C$/m.test(text)) throw new Error(`after ^C: ${text.slice(-300)}`);
    });

    await step('predicted echo (Auto): guesses show once the round trip is measured above 30 ms', page, async () => {
      await openTerminal('adaptive');
      await type('echo ');
      await settled('$ echo ');
      await watch(page);
      for (const ch of 'auto') {
        await type(ch);
        await page.waitForTimeout(60);
      }
      await settled('$ echo auto');
      const w = await watched(page);
      await unwatch(page);
      const s = await stats(page);
      if (!(s.rtt > 30)) throw new Error(`measured round trip ${s.rtt}`);
      if (!w.frames.some((f) => f.guess.includes('u'))) throw new Error(`nothing shown before the echo: ${JSON.stringify(w.frames)}`);
    });

    await step('predicted echo (Auto): keys typed while the link is down stay shown, and are confirmed after the resume', page, async () => {
      await type(' ');
      await settled('$ echo auto ');
      const s0 = await stats(page);
      net.down = true;
      await page.getByTestId('conn-status').filter({ hasText: /No contact/ }).waitFor({ timeout: 10000 });
      await type('down');
      const g = await guesses(page);
      if (g.map((c) => c.ch).join('') !== 'down') throw new Error(`guesses shown offline: ${JSON.stringify(g)}`);
      // Longer than a guess's expiry (2 s): the host cannot answer while the link is down.
      await page.waitForTimeout(3000);
      const kept = await guesses(page);
      if (kept.map((c) => c.ch).join('') !== 'down') throw new Error(`guesses left after 3 s offline: ${JSON.stringify(kept)}`);
      net.down = false;
      await page.getByTestId('conn-state').filter({ hasText: 'online' }).waitFor({ timeout: 15000 });
      await settled('$ echo auto down');
      const s = await stats(page);
      if (s.wrong !== s0.wrong) throw new Error(`wrong guesses after the resume: ${JSON.stringify(s0)} → ${JSON.stringify(s)}`);
      // The outage (over 5 s) is no round-trip sample: the smoothed round trip stays near the link's.
      if (!(s.rtt < 2 * (2 * DELAY))) throw new Error(`round trip after the outage: ${JSON.stringify(s0)} → ${JSON.stringify(s)}`);
      results.metrics.predictRttAfterOutageMs = Math.round(s.rtt);
    });
  } finally {
    await context.close();
  }
}
