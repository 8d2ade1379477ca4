import { decodeConfChange } from '../core/confChangeCodec.js';
import type { ConfChange, ConfState, Entry, HardState, Message, Ready, Snapshot } from '../core/types.js';
import { ConfChangeType, EntryType, MessageType, StateRole } from '../core/types.js';

/*
 * Readable one-line renderings of Raft values, shared by the simulation trace and the interaction
 * transcripts (etcd-io/raft `DescribeMessage` style). The output is part of the golden transcripts
 * under test/interaction: change it only on purpose, then regenerate and review those files.
 */

const messageTypeNames: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, value]) => [value, `Msg${name}`]),
);

const roleNames: Record<number, string> = Object.fromEntries(
  Object.entries(StateRole).map(([name, value]) => [value, name]),
);

const confChangeNames: Record<number, string> = {
  [ConfChangeType.AddVoter]: 'add-voter',
  [ConfChangeType.AddLearner]: 'add-learner',
  [ConfChangeType.RemoveNode]: 'remove',
};

const decoder = new TextDecoder('utf-8', { fatal: true });

/** formatData renders opaque bytes as a quoted string when printable ASCII, else as hex. */
export function formatData(data: Uint8Array): string {
  if (data.length === 0) return '';
  try {
    const s = decoder.decode(data);
    if (/^[\x20-\x7e]*$/.test(s)) return JSON.stringify(s);
  } catch {
    // Not UTF-8: fall through to hex.
  }
  return `0x${Buffer.from(data).toString('hex')}`;
}

export function formatRole(role: StateRole): string {
  return roleNames[role] ?? `Role(${role})`;
}

export function formatMessageType(type: MessageType): string {
  return messageTypeNames[type] ?? `Msg(${type})`;
}

export function formatConfChange(cc: ConfChange): string {
  return `${confChangeNames[cc.type] ?? `cc(${cc.type})`} ${cc.replicaId}`;
}

export function formatConfState(cs: ConfState): string {
  const learners = cs.learners.length > 0 ? ` learners=(${cs.learners.join(' ')})` : '';
  return `voters=(${cs.voters.join(' ')})${learners}`;
}

/** formatEntry renders `term/index Type payload`, decoding conf changes. */
export function formatEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    let body: string;
    try {
      body = formatConfChange(decodeConfChange(e.data));
    } catch {
      body = `<malformed ${formatData(e.data)}>`;
    }
    return `${e.term}/${e.index} EntryConfChange ${body}`;
  }
  const data = formatData(e.data);
  return `${e.term}/${e.index} EntryNormal${data === '' ? '' : ` ${data}`}`;
}

export function formatEntries(entries: readonly Entry[]): string {
  return `[${entries.map(formatEntry).join(', ')}]`;
}

export function formatHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function formatSnapshot(s: Snapshot): string {
  const md = s.metadata;
  return `Index:${md.index} Term:${md.term} ConfState:${formatConfState(md.confState)}`;
}

/** formatMessage renders one message on one line: `from->to MsgType Term:t Log:logTerm/index ...`. */
export function formatMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${formatMessageType(m.type)} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:${formatEntries(m.entries)}`;
  if (m.snapshot !== undefined) s += ` Snapshot: ${formatSnapshot(m.snapshot)}`;
  if (m.context !== undefined && m.context.length > 0) s += ` Context:${formatData(m.context)}`;
  return s;
}

/** formatReady renders a Ready as indented lines (no trailing newline), empty sections omitted. */
export function formatReady(rd: Ready, indent = '  '): string[] {
  const out: string[] = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState !== undefined) {
    out.push(`Lead:${rd.softState.leaderId} State:${formatRole(rd.softState.role)}`);
  }
  if (rd.hardState !== undefined) out.push(`HardState ${formatHardState(rd.hardState)}`);
  if (rd.snapshot !== undefined) out.push(`Snapshot ${formatSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) {
    out.push('Entries:');
    for (const e of rd.entries) out.push(formatEntry(e));
  }
  if (rd.committedEntries.length > 0) {
    out.push('CommittedEntries:');
    for (const e of rd.committedEntries) out.push(formatEntry(e));
  }
  if (rd.messages.length > 0) {
    out.push('Messages:');
    for (const m of rd.messages) out.push(formatMessage(m));
  }
  if (rd.readStates.length > 0) {
    out.push('ReadStates:');
    for (const r of rd.readStates) out.push(`Index:${r.index} RequestCtx:${formatData(r.requestCtx)}`);
  }
  return out.map((l) => indent + l);
}
