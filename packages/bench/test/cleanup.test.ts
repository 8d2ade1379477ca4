import { Cleanup } from '../src/cleanup.js';

test('stopAll stops the newest first, and a failing stop falls back to kill without stopping the rest', async () => {
  const events: string[] = [];
  const said: string[] = [];
  const cleanup = new Cleanup((l) => said.push(l));
  cleanup.add({ name: 'dir', stop: async () => void events.push('stop dir'), kill: () => events.push('kill dir') });
  cleanup.add({
    name: 'etcd',
    stop: async () => {
      throw new Error('SIGTERM failed');
    },
    kill: () => events.push('kill etcd'),
  });
  const unregister = cleanup.add({
    name: 'gone',
    stop: async () => void events.push('stop gone'),
    kill: () => undefined,
  });
  cleanup.add({ name: 'omni', stop: async () => void events.push('stop omni'), kill: () => events.push('kill omni') });
  unregister();
  await cleanup.stopAll();
  expect(events).toEqual(['stop omni', 'kill etcd', 'stop dir']);
  expect(said).toEqual(['stopping etcd failed (SIGTERM failed); killing it']);
  expect(cleanup.size).toBe(0);
});

test('abort resolves the stop signal handed to benchmarks', async () => {
  const cleanup = new Cleanup();
  let stopped = false;
  void cleanup.aborted.then(() => {
    stopped = true;
  });
  await Promise.resolve();
  expect(stopped).toBe(false);
  cleanup.abort();
  await cleanup.aborted;
  expect(stopped).toBe(true);
});

test('killAll kills every task synchronously', () => {
  const killed: string[] = [];
  const cleanup = new Cleanup();
  cleanup.add({ name: 'a', stop: async () => undefined, kill: () => killed.push('a') });
  cleanup.add({ name: 'b', stop: async () => undefined, kill: () => killed.push('b') });
  cleanup.killAll();
  expect(killed).toEqual(['b', 'a']);
});
