// The router's own view of backend load, kept from what it sent and what came back (no
// polling): requests in flight, and prompt tokens sent that the backend has not prefilled
// yet. Updated at send (the policy's estimate of the uncached part), at the first token
// (prefill is over) and at completion. The live router and the routing simulator both keep
// one, so the policies see the same signals in both. Plus the small comparisons the
// policies share.
import type { BackendLoad, RouteRequest } from './types.ts';

/** One request's share of a backend's load, returned by `sent` and handed back later. */
export interface LoadTicket {
  readonly backend: string;
  readonly prefillTokens: number;
  /** Internal: which updates were applied (each at most once). */
  firstTokenSeen: boolean;
  finished: boolean;
}

export class LoadTracker {
  private readonly loads = new Map<string, { inFlight: number; outstandingPrefillTokens: number; kvUtilization?: number }>();

  /** A backend joined (idempotent). */
  add(backend: string): void {
    if (!this.loads.has(backend)) this.loads.set(backend, { inFlight: 0, outstandingPrefillTokens: 0 });
  }

  remove(backend: string): void {
    this.loads.delete(backend);
  }

  /** The backend's reported KV-cache utilization (0..1), for policies that use it. */
  setKvUtilization(backend: string, usage: number | undefined): void {
    const l = this.loads.get(backend);
    if (l) l.kvUtilization = usage;
  }

  /** A request was sent to `backend`; `prefillTokens` = its estimated uncached prompt tokens. */
  sent(backend: string, prefillTokens: number): LoadTicket {
    this.add(backend);
    const l = this.loads.get(backend)!;
    l.inFlight++;
    l.outstandingPrefillTokens += prefillTokens;
    return { backend, prefillTokens, firstTokenSeen: false, finished: false };
  }

  /** The first token came back: the prompt is prefilled. */
  firstToken(t: LoadTicket): void {
    if (t.firstTokenSeen || t.finished) return;
    t.firstTokenSeen = true;
    const l = this.loads.get(t.backend);
    if (l) l.outstandingPrefillTokens = Math.max(0, l.outstandingPrefillTokens - t.prefillTokens);
  }

  /** The request ended (completed, failed or cancelled). */
  finished(t: LoadTicket): void {
    if (t.finished) return;
    this.firstToken(t);
    t.finished = true;
    const l = this.loads.get(t.backend);
    if (l) l.inFlight = Math.max(0, l.inFlight - 1);
  }

  /** The load of `backends` (all known ones when omitted), in that order. */
  view(backends?: readonly string[]): BackendLoad[] {
    const ids = backends ?? [...this.loads.keys()];
    return ids.map((id) => {
      const l = this.loads.get(id);
      const out: BackendLoad = { id, inFlight: l?.inFlight ?? 0, outstandingPrefillTokens: l?.outstandingPrefillTokens ?? 0 };
      if (l?.kvUtilization !== undefined) out.kvUtilization = l.kvUtilization;
      return out;
    });
  }
}

/** Prompt tokens covered by `matchedBlocks` blocks (the last block may be partial). */
export function cachedTokens(req: RouteRequest, matchedBlocks: number): number {
  return Math.min(req.promptTokens, matchedBlocks * req.blockTokens);
}

/** Index of the least loaded backend: fewest in flight, then least outstanding prefill, then first. */
export function leastLoadedIndex(backends: readonly BackendLoad[]): number {
  let best = 0;
  for (let i = 1; i < backends.length; i++) {
    const b = backends[i]!;
    const c = backends[best]!;
    if (b.inFlight < c.inFlight || (b.inFlight === c.inFlight && b.outstandingPrefillTokens < c.outstandingPrefillTokens)) best = i;
  }
  return best;
}
