// How a PTY session is described in the app's session list.
import type { SessionInfo } from './gen/protocol';

/** `3s`, `5m`, `2h`, `4d`. */
export function shortDuration(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/**
 * One line under a session's name: its state, size and attachments, then what the host's model
 * of its screen knows (title, working directory, idle time, bells, the last line on screen).
 */
export function describeSession(s: SessionInfo, nowMs: number): string {
  const state = s.state === 'Running' ? 'running' : `ended (${s.state.Exited.signal ?? `exit ${s.state.Exited.code}`})`;
  const parts = [state, `${s.size.cols}×${s.size.rows}`, `${s.attached} attached`];
  const f = s.screen;
  if (f.title) parts.push(f.title);
  if (f.cwd) parts.push(f.cwd);
  if (f.last_output_ms > 0) parts.push(`idle ${shortDuration(nowMs - f.last_output_ms)}`);
  if (f.bells > 0) parts.push(f.bells === 1 ? '1 bell' : `${f.bells} bells`);
  if (f.last_line) parts.push(`“${f.last_line}”`);
  return parts.join(' · ');
}
