// matrix-js-sdk's startClient() against Gatehouse: the client reaches its
// PREPARED sync state (first sync done) and receives account data pushed
// through a later sync. (Push rules are stood in for until they are served.)

import * as sdk from 'matrix-js-sdk';
import { type Logger, logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel('silent');
const silent: Logger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, getChild: () => silent };

describe.each(backends())('matrix-js-sdk startClient (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('reaches PREPARED, then sees account data set through the API', async () => {
    const u = await hs.register('sdk_sync');
    const statuses: number[] = [];
    const failed: string[] = [];
    const client = sdk.createClient({
      baseUrl: hs.url,
      accessToken: u.access_token,
      userId: u.user_id,
      deviceId: u.device_id,
      logger: silent,
      fetchFn: async (input, init) => {
        const res = await fetch(input, init);
        statuses.push(res.status);
        const path = new URL(String(input)).pathname;
        // Unstable probes (e.g. MSC4143's rtc/transports) expect 404 M_UNRECOGNIZED when not served.
        const probe = res.status === 404 && path.includes('/unstable/') && (await res.clone().json()).errcode === 'M_UNRECOGNIZED';
        if (res.status >= 400 && !probe) failed.push(`${init?.method ?? 'GET'} ${path} ${res.status}`);
        return res;
      },
    });
    try {
      const prepared = new Promise<void>((resolve, reject) => {
        client.on(sdk.ClientEvent.Sync, (state) => {
          if (state === sdk.SyncState.Prepared) resolve();
          if (state === sdk.SyncState.Error) reject(new Error('sync error'));
        });
      });
      await client.startClient({ initialSyncLimit: 1 });
      await prepared;
      const seen = new Promise<unknown>((resolve) => {
        client.on(sdk.ClientEvent.AccountData, (event) => {
          if (event.getType() === 'org.example.sdk') resolve(event.getContent());
        });
      });
      await client.setAccountData('org.example.sdk' as never, { hello: 'world' } as never);
      expect(await seen).toEqual({ hello: 'world' });
      // Nothing the client asked for on its way to the main screen failed (no 4xx or 5xx).
      expect(failed).toEqual([]);
    } finally {
      client.stopClient();
    }
  });
});
