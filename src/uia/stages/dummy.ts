// m.login.dummy: always passes. Offered only where config allows registration without verification.

import type { StageOutcome, UiaStage } from '../types.js';

export class DummyStage implements UiaStage {
  readonly type = 'm.login.dummy';

  async check(): Promise<StageOutcome> {
    return { ok: true };
  }
}
