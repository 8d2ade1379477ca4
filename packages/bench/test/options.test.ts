import { clusterUpArgs } from '../src/omniCluster.js';
import { parseCountList } from '../src/options.js';

test('count lists keep order, drop duplicates, refuse non-positive entries; none is empty', () => {
  expect(parseCountList('1,16,64,256')).toEqual([1, 16, 64, 256]);
  expect(parseCountList('64, 1, 64')).toEqual([64, 1]);
  expect(parseCountList('none')).toEqual([]);
  expect(() => parseCountList('1,0')).toThrow(/positive/);
  expect(() => parseCountList('1,x')).toThrow(/positive/);
});

test('the OmniDict cluster is started detached through the launcher with the shard count asked for', () => {
  const args = clusterUpArgs('/repo/packages/cli/dist/main.js', '/tmp/run/shards-64', 64);
  expect(args.slice(0, 3)).toEqual(['/repo/packages/cli/dist/main.js', 'cluster', 'up']);
  expect(args).toContain('--detach');
  expect(args[args.indexOf('--dir') + 1]).toBe('/tmp/run/shards-64');
  expect(args[args.indexOf('--shards') + 1]).toBe('64');
});
