// Several processes on one PostgreSQL database: they may start at the same
// moment on a fresh database (one migrates, the others wait for its lock), and
// then serve one set of accounts.

import { afterAll, expect, it } from 'vitest';
import { createPgDatabase, describeOnPostgres, type PgDatabase } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

const backend = 'postgres' as const;

describeOnPostgres('several processes on one database (postgres)', () => {
  let pg: PgDatabase;
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await pg?.drop();
  });

  it('start together on a fresh database and share its accounts', async () => {
    pg = await createPgDatabase();
    const database = { name: 'psycopg2', args: pg.args };
    servers.push(...(await Promise.all([1, 2, 3].map(() => startServer(backend, { database })))));
    for (const s of servers) expect(s.logs()).not.toMatch(/already locked|request failed/);

    const alice = await servers[0]!.register('multi-alice');
    for (const s of servers) {
      const who = await s.request('GET', '/_matrix/client/v3/account/whoami', { token: alice.access_token });
      expect(who.status).toBe(200);
      expect(who.body.user_id).toBe(alice.user_id);
    }
    const again = await servers[2]!.request('POST', '/_matrix/client/v3/register', {
      body: { username: 'multi-alice', password: 'another password', auth: { type: 'm.login.dummy' } },
    });
    expect(again.status).toBe(400);
    expect(again.body.errcode).toBe('M_USER_IN_USE');
    const logout = await servers[1]!.request('POST', '/_matrix/client/v3/logout', { token: alice.access_token });
    expect(logout.status).toBe(200);
    // Server 0 cached the token: it hears of the logout through NOTIFY, within milliseconds (issue 15).
    let dead = await servers[0]!.request('GET', '/_matrix/client/v3/account/whoami', { token: alice.access_token });
    for (const start = Date.now(); dead.status === 200 && Date.now() - start < 1000; )
      dead = await servers[0]!.request('GET', '/_matrix/client/v3/account/whoami', { token: alice.access_token });
    expect(dead.status).toBe(401);
    expect(dead.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });
});
