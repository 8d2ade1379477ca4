/** IPC messages between `bench:runtime` and its host child processes. */
export type BenchRequest =
  | { type: 'init'; nodeId: number; dir: string; tickMs: number }
  | { type: 'peers'; peers: Array<[number, string]> }
  | { type: 'createGroups'; groups: number[]; nodes: number[] }
  | { type: 'campaign'; groups: number[] }
  | { type: 'transfer'; groups: number[]; to: number }
  | { type: 'status'; groups: number[] }
  | { type: 'load'; groups: number[]; concurrency: number; durationMs: number; valueBytes: number }
  | { type: 'cpu'; durationMs: number }
  | { type: 'stop' };

export type BenchReply =
  | { type: 'ready'; port: number }
  | { type: 'ok' }
  | { type: 'error'; message: string }
  | { type: 'status'; led: number; active: number; syncWrites: number }
  | {
      type: 'load';
      committed: number;
      errors: number;
      elapsedMs: number;
      leaderSyncWrites: number;
      p50Ms: number;
      p99Ms: number;
    }
  | { type: 'cpu'; cpuMsPerSec: number; active: number };
