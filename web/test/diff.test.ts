import { describe, expect, it } from 'vitest';
import { lineDiff } from '../src/agent';
import { editDiff, fold, numberLines, parsePatch, shownDiff } from '../src/diff';

const PATCH = `diff --git a/src/lib.rs b/src/lib.rs
index 3b18e51..a1c2d3e 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -10,4 +10,5 @@ fn a() {
 one
-two
+TWO
+three
 four
@@ -40,2 +41,2 @@
 forty
-old
+new
\\ No newline at end of file
`;

describe('parsePatch', () => {
  it('numbers lines from the hunk headers, counts changes, drops git headers', () => {
    const d = parsePatch(PATCH);
    expect(d.added).toBe(3);
    expect(d.removed).toBe(2);
    const text = d.rows.map((r) => (r.op === 'gap' ? `gap ${r.count}` : r.op === 'note' ? `note ${r.text}` : `${r.op}${r.old ?? '.'}/${r.new ?? '.'} ${r.text}`));
    expect(text).toEqual([
      'gap 9',
      ' 10/10 one',
      '-11/. two',
      '+./11 TWO',
      '+./12 three',
      ' 12/13 four',
      'gap 27',
      ' 40/41 forty',
      '-41/. old',
      '+./42 new',
      'note No newline at end of file',
    ]);
    expect(text.join('\n')).not.toMatch(/index|diff --git|\+\+\+|---/);
  });

  it('a new file starts at line 1 with no gap; binary files are a note', () => {
    const d = parsePatch('diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\n@@ -0,0 +1,2 @@\n+a\n+b\n');
    expect(d.rows.map((r) => r.op)).toEqual(['+', '+']);
    expect(d.rows[0]).toMatchObject({ new: 1 });
    const bin = parsePatch('diff --git a/x.png b/x.png\nindex 1..2 100644\nBinary files a/x.png and b/x.png differ\n');
    expect(bin.rows).toEqual([{ op: 'note', text: 'Binary files a/x.png and b/x.png differ' }]);
  });
});

describe('fold and editDiff', () => {
  it('folds long unchanged runs, keeping three lines around changes', () => {
    const old = Array.from({ length: 30 }, (_, i) => `l${i + 1}`).join('\n');
    const neu = old.replace('l15', 'L15');
    const d = editDiff(lineDiff(old, neu));
    expect(d.added).toBe(1);
    expect(d.removed).toBe(1);
    const ops = d.rows.map((r) => (r.op === 'gap' ? `gap${r.count}` : r.op));
    expect(ops).toEqual(['gap11', ' ', ' ', ' ', '-', '+', ' ', ' ', ' ', 'gap12']);
    const gap = d.rows[0];
    if (gap.op !== 'gap') throw new Error('no gap');
    expect(gap.hidden.map((r) => (r.op === ' ' ? r.old : 0))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('short runs stay whole', () => {
    const rows = numberLines(lineDiff('a\nb\nc', 'a\nB\nc'));
    expect(fold(rows)).toEqual(rows);
  });
});

describe('shownDiff', () => {
  it("shows the host's cut change without line numbers, the cut as a note", () => {
    const d = shownDiff([{ same: 'one' }, { del: 'two' }, { add: '2' }, { add: '3' }, { cut: '… 60 more lines' }]);
    expect(d.added).toBe(2);
    expect(d.removed).toBe(1);
    expect(d.rows).toEqual([
      { op: ' ', old: null, new: null, text: 'one' },
      { op: '-', old: null, new: null, text: 'two' },
      { op: '+', old: null, new: null, text: '2' },
      { op: '+', old: null, new: null, text: '3' },
      { op: 'note', text: '… 60 more lines' },
    ]);
  });
});
