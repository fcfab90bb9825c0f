// The real route table, as the suites' servers mount it, read from a server
// built in the test process (nothing listens; the database is in memory).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createGatehouse, type RouteInfo } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';

/** The routes of a server built on the suites' settings (the spawned servers mount the same ones). */
export async function serverRoutes(): Promise<RouteInfo[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-routes-'));
  try {
    const { config } = buildConfig(
      {
        server_name: 'test.local',
        listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http' }],
        database: { name: 'sqlite3', args: { database: ':memory:' } },
        signing_key_path: join(dir, 'signing.key'),
        enable_registration: true,
        enable_registration_without_verification: true,
        registration_shared_secret: 'test-shared-secret',
      },
      dir,
    );
    const gatehouse = await createGatehouse(config, { logger: pino({ level: 'silent' }), ephemeralKey: true });
    try {
      return gatehouse.routes();
    } finally {
      await gatehouse.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
