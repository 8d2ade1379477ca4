import { RaftError } from '@omnidict/raft';

test('RaftError carries its code', () => {
  const e = new RaftError('NOT_LEADER', 'no', { leaderId: 2 });
  expect(e.code).toBe('NOT_LEADER');
  expect(e.leaderId).toBe(2);
});
