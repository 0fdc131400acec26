// Diffs as rows a phone can show: line numbers on both sides, +/− counts, git's headers
// dropped, long runs of unchanged lines folded. Pure (no DOM), so it is unit-tested.
import type { DiffLine } from './agent';
import type { DiffLine as ShownLine } from './gen/protocol';

export type DiffRow =
  | { op: ' ' | '+' | '-'; old: number | null; new: number | null; text: string }
  /** Unchanged lines left out: `count` of them (null: unknown, between two hunks of a patch). */
  | { op: 'gap'; count: number | null; hidden: DiffRow[] }
  /** What git says instead of lines (`Binary files … differ`, a mode change, a rename). */
  | { op: 'note'; text: string };

export interface ParsedDiff {
  added: number;
  removed: number;
  rows: DiffRow[];
}

function count(rows: DiffRow[]): ParsedDiff {
  let added = 0;
  let removed = 0;
  for (const r of rows) {
    if (r.op === '+') added++;
    else if (r.op === '-') removed++;
  }
  return { added, removed, rows };
}

/** Numbered rows of a line diff of two whole texts (a tool call's edit). */
export function numberLines(lines: DiffLine[]): DiffRow[] {
  let o = 1;
  let n = 1;
  return lines.map((l) => {
    if (l.op === '+') return { op: '+', old: null, new: n++, text: l.text };
    if (l.op === '-') return { op: '-', old: o++, new: null, text: l.text };
    return { op: ' ', old: o++, new: n++, text: l.text };
  });
}

/**
 * Folds each run of more than `2 × context + 1` unchanged lines into a gap, keeping `context`
 * lines next to every change (none at the very start or end of the file).
 */
export function fold(rows: DiffRow[], context = 3): DiffRow[] {
  const out: DiffRow[] = [];
  let i = 0;
  while (i < rows.length) {
    if (rows[i].op !== ' ') {
      out.push(rows[i++]);
      continue;
    }
    let j = i;
    while (j < rows.length && rows[j].op === ' ') j++;
    const before = i === 0 ? 0 : context;
    const after = j === rows.length ? 0 : context;
    if (j - i > before + after + 1) {
      out.push(...rows.slice(i, i + before));
      const hidden = rows.slice(i + before, j - after);
      out.push({ op: 'gap', count: hidden.length, hidden });
      out.push(...rows.slice(j - after, j));
    } else {
      out.push(...rows.slice(i, j));
    }
    i = j;
  }
  return out;
}

/** A tool call's edit: its line diff, numbered and folded, with counts. */
export function editDiff(lines: DiffLine[], context = 3): ParsedDiff {
  return count(fold(numberLines(lines), context));
}

/**
 * The change the host shows with an approval (already cut to its changed lines, a little
 * context and a `… N more lines` note): rows without line numbers, since the host sends none.
 */
export function shownDiff(lines: ShownLine[]): ParsedDiff {
  return count(
    lines.map((l): DiffRow => {
      if ('add' in l) return { op: '+', old: null, new: null, text: l.add };
      if ('del' in l) return { op: '-', old: null, new: null, text: l.del };
      if ('same' in l) return { op: ' ', old: null, new: null, text: l.same };
      return { op: 'note', text: l.cut };
    }),
  );
}

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/**
 * A git unified diff of one file (`AgentDiff`'s `patch`): its lines numbered from the hunk
 * headers, the headers (`diff --git`, `index`, `---`, `+++`) left out, a gap between hunks and
 * before the first one when it does not start at line 1.
 */
export function parsePatch(patch: string): ParsedDiff {
  const rows: DiffRow[] = [];
  let o = 0;
  let n = 0;
  let inHunk = false;
  for (const line of patch.replace(/\n$/, '').split('\n')) {
    const h = HUNK.exec(line);
    if (h) {
      const from = Number(h[1]);
      const to = Number(h[2]);
      // Lines skipped before this hunk: known exactly from where the last one ended.
      const skipped = inHunk ? from - o : Math.max(0, from - 1);
      if (skipped > 0) rows.push({ op: 'gap', count: skipped, hidden: [] });
      o = from;
      n = to;
      // `-0,0` / `+0,0`: the file did not exist / no longer exists.
      if (o === 0) o = 1;
      if (n === 0) n = 1;
      inHunk = true;
      continue;
    }
    if (!inHunk) {
      if (/^(diff --git|index |--- |\+\+\+ |new file mode|deleted file mode|similarity index)/.test(line)) continue;
      if (line.trim()) rows.push({ op: 'note', text: line });
      continue;
    }
    const c = line[0];
    if (c === '+') rows.push({ op: '+', old: null, new: n++, text: line.slice(1) });
    else if (c === '-') rows.push({ op: '-', old: o++, new: null, text: line.slice(1) });
    else if (c === ' ' || line === '') rows.push({ op: ' ', old: o++, new: n++, text: line.slice(1) });
    else if (line.startsWith('\\')) rows.push({ op: 'note', text: line.slice(2) });
    else rows.push({ op: 'note', text: line });
  }
  return count(rows);
}
