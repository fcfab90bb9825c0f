"""matrix-nio 0.20 (Debian's python3-matrix-nio, with python3-olm) against
Gatehouse: log in, sync, upload device keys, set the display name, list and
rename devices, log out. nio calls the r0 paths and sends the access token in
the query string. Prints one line per step; exits 1 at the first error."""

import asyncio
import sys
import tempfile

from nio import AsyncClient, AsyncClientConfig
from nio.responses import (
    DevicesResponse,
    ErrorResponse,
    KeysUploadResponse,
    LoginResponse,
    LogoutResponse,
    ProfileSetDisplayNameResponse,
    SyncResponse,
    UpdateDeviceResponse,
)


async def main(url: str, user: str, password: str) -> int:
    store = tempfile.mkdtemp(prefix="gatehouse-nio-")
    client = AsyncClient(url, user, store_path=store, config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True))

    def check(step, res, kind):
        if not isinstance(res, kind):
            print(f"FAIL {step}: {res!r}")
            raise SystemExit(1)
        print(f"ok {step}")

    try:
        check("login", await client.login(password, device_name="nio smoke"), LoginResponse)
        check("sync", await client.sync(timeout=0, full_state=True), SyncResponse)
        if client.should_upload_keys:
            check("keys_upload", await client.keys_upload(), KeysUploadResponse)
        else:
            print("FAIL keys_upload: nio saw nothing to upload")
            return 1
        check("sync again", await client.sync(timeout=0), SyncResponse)
        check("set_displayname", await client.set_displayname("Nio Smoke"), ProfileSetDisplayNameResponse)
        devices = await client.devices()
        check("devices", devices, DevicesResponse)
        if client.device_id not in [d.id for d in devices.devices]:
            print("FAIL devices: own device missing")
            return 1
        check("update_device", await client.update_device(client.device_id, {"display_name": "renamed by nio"}), UpdateDeviceResponse)
        check("logout", await client.logout(), LogoutResponse)
        return 0
    finally:
        await client.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3])))
