// What an approval card shows under its title: what the tool call will run, change or fetch,
// as the host read it from the tool call (the reading `peer agent attach` prints too). Every
// text is shown with its control characters visible; long commands wrap, diffs use the app's
// diff view and scroll sideways. The host has already cut long values (`… (N more
// characters)`, `… N more lines`).
import { h } from './dom';
import { shownDiff } from './diff';
import { diffBlock, diffCounts } from './diffview';
import type { ToolAction } from './gen/protocol';
import { inline } from './visible';

function row(label: string, value: string, cls: string, note = ''): HTMLElement {
  const r = h('div', `what-row ${cls}`);
  r.append(h('span', 'what-label', label));
  const v = h('code', 'what-value', inline(value));
  r.append(v);
  if (note) r.append(h('span', 'what-note', note));
  return r;
}

/** The card's lines for `what`; `cwd` is the agent's working directory. */
export function whatBlock(what: ToolAction[] | null, cwd: string): HTMLElement | null {
  if (what === null) return null;
  const box = h('div', 'what');
  box.dataset.testid = 'approval-what';
  if (what.length === 0) {
    box.append(h('div', 'what-note', 'The agent shows nothing more than the title.'));
    return box;
  }
  for (const w of what) {
    if ('run' in w) {
      const cmd = row('Run', w.run.command, 'run');
      cmd.dataset.testid = 'approval-command';
      box.append(cmd);
      const dir = w.run.cwd === null ? row('In', cwd, 'cwd', "the agent's directory") : row('In', w.run.cwd, 'cwd');
      dir.dataset.testid = 'approval-cwd';
      box.append(dir);
    } else if ('edit' in w) {
      const head = row('Change', w.edit.path, 'edit');
      head.dataset.testid = 'approval-file';
      box.append(head);
      if (w.edit.diff.length > 0) {
        const d = shownDiff(w.edit.diff);
        head.append(diffCounts(d));
        box.append(diffBlock(d));
      }
    } else if ('file' in w) {
      box.append(row('File', w.file.path, 'file'));
    } else if ('fetch' in w) {
      const u = row('Fetch', w.fetch.url, 'fetch');
      u.dataset.testid = 'approval-url';
      box.append(u);
    } else if ('search' in w) {
      box.append(row('Search', w.search.query, 'search'));
    }
  }
  return box;
}
