// The signed-in user's devices.

import type { Knex } from 'knex';
import { notFound } from '../errors.js';
import * as Devices from '../repositories/devices.js';
import * as Tokens from '../repositories/tokens.js';
import type { UiaEngine } from '../uia/engine.js';
import { REAUTH_FLOWS } from './account.js';
import type { Requester } from './sessions.js';

export interface DeviceView {
  device_id: string;
  display_name?: string;
  last_seen_ip?: string;
  last_seen_ts?: number;
}

function view(d: Devices.DeviceRow): DeviceView {
  const v: DeviceView = { device_id: d.device_id };
  if (d.display_name !== null) v.display_name = d.display_name;
  if (d.last_seen_ip !== null) v.last_seen_ip = d.last_seen_ip;
  if (d.last_seen_ts !== null) v.last_seen_ts = d.last_seen_ts;
  return v;
}

export class DeviceHandler {
  constructor(
    private readonly db: Knex,
    private readonly uia: UiaEngine,
  ) {}

  async list(requester: Requester): Promise<{ devices: DeviceView[] }> {
    return { devices: (await Devices.listDevices(this.db, requester.userId)).map(view) };
  }

  async get(requester: Requester, deviceId: string): Promise<DeviceView> {
    const d = await Devices.findDevice(this.db, requester.userId, deviceId);
    if (!d) throw notFound('Device not found');
    return view(d);
  }

  async rename(requester: Requester, deviceId: string, displayName: string | null | undefined): Promise<Record<string, never>> {
    const d = await Devices.findDevice(this.db, requester.userId, deviceId);
    if (!d) throw notFound('Device not found');
    // An absent display_name leaves the name as it is; null clears it.
    if (displayName !== undefined) await Devices.setDeviceDisplayName(this.db, requester.userId, deviceId, displayName);
    return {};
  }

  /** DELETE /devices/{deviceId} and POST /delete_devices: UIA, then the devices and their tokens go. */
  async delete(requester: Requester, req: { operation: string; deviceIds: string[]; auth: unknown; ip: string }): Promise<Record<string, never>> {
    const auth = await this.uia.authenticate(
      { name: req.operation, userId: requester.userId, binding: { devices: req.deviceIds }, clientIp: req.ip },
      REAUTH_FLOWS,
      req.auth,
    );
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      await Tokens.deleteTokensForDevices(trx, requester.userId, req.deviceIds);
      await Devices.deleteDevices(trx, requester.userId, req.deviceIds);
    });
    return {};
  }
}
