// The signed-in user's devices.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { missingParam, notFound } from '../errors.js';
import * as Devices from '../repositories/devices.js';
import type { UiaEngine } from '../uia/engine.js';
import type { CompletedAuth } from '../uia/types.js';
import { hasSession, reauthFlows } from './account.js';
import type { Requester, SessionHandler } from './sessions.js';

/**
 * A device as GET /devices and /devices/{deviceId} show it (spec: "Device
 * management"). Every key is present, null when unknown, as Synapse sends
 * them: matrix-nio refuses a device without display_name or last_seen_ip.
 */
export interface DeviceView {
  device_id: string;
  display_name: string | null;
  last_seen_ip: string | null;
  /** Milliseconds since the epoch. */
  last_seen_ts: number | null;
}

function view(d: Devices.DeviceRow): DeviceView {
  return { device_id: d.device_id, display_name: d.display_name, last_seen_ip: d.last_seen_ip, last_seen_ts: d.last_seen_ts };
}

export class DeviceHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Pick<Config, 'password_config'>,
    private readonly uia: UiaEngine,
    private readonly sessions: SessionHandler,
  ) {}

  async list(requester: Requester): Promise<{ devices: DeviceView[] }> {
    return { devices: (await Devices.listDevices(this.db, requester.userId)).map(view) };
  }

  async get(requester: Requester, deviceId: string): Promise<DeviceView> {
    const d = await Devices.findDevice(this.db, requester.userId, deviceId);
    if (!d) throw notFound('Device not found');
    return view(d);
  }

  /**
   * PUT /devices/{deviceId}: a string renames, null clears, undefined (absent)
   * leaves the name. 404 M_NOT_FOUND unless the device is the requester's.
   * The route has checked the name (at most 100 characters).
   */
  async rename(requester: Requester, deviceId: string, displayName: string | null | undefined): Promise<Record<string, never>> {
    // An absent display_name leaves the name as it is (but the device must still exist); null clears it.
    const found =
      displayName === undefined
        ? (await Devices.findDevice(this.db, requester.userId, deviceId)) !== null
        : await Devices.setDeviceDisplayName(this.db, requester.userId, deviceId, displayName);
    if (!found) throw notFound('Device not found');
    return {};
  }

  /** DELETE /devices/{deviceId}: UIA, then the device and its tokens go (200 also when it was already gone). */
  async deleteOne(requester: Requester, req: { deviceId: string; auth: unknown; ip: string }): Promise<Record<string, never>> {
    const auth = await this.authenticate(requester, 'DELETE /devices/{deviceId}', { device_id: req.deviceId }, req.auth, req.ip);
    if (!auth.previous) await this.deleteDevices(requester, auth, [req.deviceId]);
    return {};
  }

  /**
   * POST /delete_devices: UIA, then the devices and their tokens go. The UIA
   * session remembers `devices`, so the completing request may leave it out.
   * Errors: 400 M_MISSING_PARAM (no devices in this request or the session's), UIA's.
   */
  async deleteMany(requester: Requester, req: { deviceIds: string[] | null; auth: unknown; ip: string }): Promise<Record<string, never>> {
    if (req.deviceIds === null && !hasSession(req.auth)) throw missingParam('Missing parameter: devices');
    const params = req.deviceIds === null ? {} : { devices: req.deviceIds };
    const auth = await this.authenticate(requester, 'POST /delete_devices', params, req.auth, req.ip);
    if (auth.previous) return {};
    const deviceIds = auth.params.devices;
    if (!Array.isArray(deviceIds)) throw missingParam('Missing parameter: devices');
    await this.deleteDevices(requester, auth, deviceIds as string[]);
    return {};
  }

  // The session is bound to the devices named, so it cannot be reused for others.
  private authenticate(requester: Requester, operation: string, params: Record<string, unknown>, authDict: unknown, ip: string) {
    return this.uia.authenticate({ name: operation, userId: requester.userId, params, clientIp: ip }, reauthFlows(this.config), authDict);
  }

  private async deleteDevices(requester: Requester, auth: CompletedAuth, deviceIds: string[]): Promise<void> {
    await this.db.transaction(async (trx) => {
      await this.uia.complete(auth, trx);
      await this.sessions.endSessions(trx, requester.userId, deviceIds);
    });
  }
}
