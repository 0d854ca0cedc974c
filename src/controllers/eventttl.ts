// Events are for recent history: like kube-apiserver's --event-ttl (1h), Events whose
// last occurrence is older than the TTL are deleted, so they never pile up.
import type { Logger } from 'pino';
import { Event } from '../api/kinds/core.ts';
import type { Registry } from '../apiserver/registry.ts';
import { ApiError } from '../apiserver/errors.ts';

export const DEFAULT_EVENT_TTL_MS = 60 * 60 * 1000;

export class EventTTLController {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
    private readonly ttlMs = DEFAULT_EVENT_TTL_MS,
    private readonly sweepMs = Math.min(60_000, ttlMs),
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.sweepMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Deletes expired Events; returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    let deleted = 0;
    try {
      for (const e of await this.registry.listAll(Event)) {
        const last = Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp));
        if (!(now - last > this.ttlMs)) continue;
        try {
          await this.registry.delete(Event, e.metadata.namespace, e.metadata.name, { preconditions: { resourceVersion: e.metadata.resourceVersion } });
          deleted++;
        } catch (err) {
          if (!(err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict'))) throw err;
        }
      }
    } catch (err) {
      this.log.warn({ err }, 'event cleanup failed; will retry');
    }
    return deleted;
  }
}
