import { describe, expect, it } from 'vitest';
import { InputDiffer, applyCtrl, keyToBytes } from '../src/input';

const k = (key: string, mods: Partial<{ ctrlKey: boolean; altKey: boolean; metaKey: boolean }> = {}) => ({
  key,
  ctrlKey: false,
  altKey: false,
  metaKey: false,
  ...mods,
});

describe('InputDiffer (IME and autocorrect)', () => {
  it('sends typed text once, character by character', () => {
    const d = new InputDiffer();
    expect(d.update('l')).toBe('l');
    expect(d.update('ls')).toBe('s');
    expect(d.update('ls')).toBe('');
  });
  it('turns an autocorrect replacement into backspaces and the new word', () => {
    const d = new InputDiffer();
    d.update('teh');
    expect(d.update('the ')).toBe('\x7f\x7fhe ');
  });
  it('a composition that grows and then commits sends every character exactly once', () => {
    const d = new InputDiffer();
    let sent = '';
    for (const v of ['e', 'ec', 'ech', 'echo', 'echo', 'echo ']) sent += d.update(v);
    expect(sent).toBe('echo ');
  });
  it('handles deletion inside the field', () => {
    const d = new InputDiffer();
    d.update('abc');
    expect(d.update('ab')).toBe('\x7f');
    expect(d.update('')).toBe('\x7f\x7f');
  });
  it('counts code points, not UTF-16 units (emoji, CJK)', () => {
    const d = new InputDiffer();
    expect(d.update('日本')).toBe('日本');
    expect(d.update('日')).toBe('\x7f');
    expect(d.update('日😀')).toBe('😀');
    expect(d.update('日')).toBe('\x7f');
  });
  it('starts fresh after a reset', () => {
    const d = new InputDiffer();
    d.update('pwd');
    d.reset();
    expect(d.update('x')).toBe('x');
  });
});

describe('keys', () => {
  it('named keys send their sequences', () => {
    expect(keyToBytes(k('Enter'), false)).toBe('\r');
    expect(keyToBytes(k('ArrowUp'), false)).toBe('\x1b[A');
    expect(keyToBytes(k('PageDown'), false)).toBe('\x1b[6~');
    expect(keyToBytes(k('Escape'), false)).toBe('\x1b');
    expect(keyToBytes(k('Tab'), false)).toBe('\t');
  });
  it('Ctrl chords and sticky Ctrl give control codes', () => {
    expect(keyToBytes(k('c', { ctrlKey: true }), false)).toBe('\x03');
    expect(keyToBytes(k('d'), true)).toBe('\x04');
    expect(keyToBytes(k('['), true)).toBe('\x1b');
    expect(applyCtrl('c')).toBe('\x03');
    expect(applyCtrl('Z')).toBe('\x1a');
    expect(applyCtrl('1')).toBe('1');
  });
  it('Alt prefixes ESC; plain text is left to the field', () => {
    expect(keyToBytes(k('b', { altKey: true }), false)).toBe('\x1bb');
    expect(keyToBytes(k('a'), false)).toBeNull();
    expect(keyToBytes(k('Backspace'), false)).toBeNull();
    expect(keyToBytes(k('v', { metaKey: true }), false)).toBeNull();
  });
});
