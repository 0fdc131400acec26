// Diffs on screen: a numbered, unwrapped, side-scrolling view of `diff.ts` rows; folded
// unchanged lines open on a tap.
import { h } from './dom';
import { block } from './visible';
import type { DiffRow, ParsedDiff } from './diff';

/** `+3 −1` for a summary line. */
export function diffCounts(d: ParsedDiff): HTMLElement {
  const el = h('span', 'diff-counts');
  el.dataset.testid = 'diff-counts';
  el.append(h('span', 'add', `+${d.added}`), h('span', 'del', ` −${d.removed}`));
  return el;
}

function rowEl(r: DiffRow): HTMLElement {
  if (r.op === 'note') return h('div', 'drow note', block(r.text));
  if (r.op === 'gap') return h('div', 'drow gap');
  const cls = r.op === '+' ? 'drow add' : r.op === '-' ? 'drow del' : 'drow';
  const row = h('div', cls);
  row.append(
    h('span', 'ln', r.old === null ? '' : String(r.old)),
    h('span', 'ln', r.new === null ? '' : String(r.new)),
    h('span', 'sign', r.op === ' ' ? '' : r.op === '-' ? '−' : '+'),
    h('span', 'dcode', block(r.text)),
  );
  return row;
}

/** The rows as a block that scrolls sideways (code lines never wrap). */
export function diffBlock(d: ParsedDiff): HTMLElement {
  const box = h('div', 'diff2');
  const inner = h('div', 'diff2-rows');
  box.append(inner);
  for (const r of d.rows) {
    if (r.op !== 'gap') {
      inner.append(rowEl(r));
      continue;
    }
    const label = r.count === null ? '⋯ unchanged lines' : `⋯ ${r.count} unchanged line${r.count === 1 ? '' : 's'}`;
    if (r.hidden.length === 0) {
      inner.append(h('div', 'drow gap', label));
      continue;
    }
    const gap = h('button', 'drow gap', `${label} (show)`);
    gap.type = 'button';
    gap.addEventListener('click', () => gap.replaceWith(...r.hidden.map(rowEl)));
    inner.append(gap);
  }
  return box;
}
