// The watchers of the watch benchmark, in their own process so that decoding 100 event
// streams does not delay the load generator's timestamps (and the other way round).
// Started with fork() by watch.ts; talks over the IPC channel:
//
//   parent → { type: 'open', url, token, path, watchers, objects, namePrefix }
//   worker → { type: 'opened' } once every watch has answered 200 (or { type: 'error' })
//   worker → { type: 'progress', received } every 200 ms
//   parent → { type: 'finish' }
//   worker → { type: 'result', times, otherEvents, errors }
//
// times[w][i] is when watcher w received the ADDED event of object `${namePrefix}${i}`, in
// CLOCK_MONOTONIC milliseconds (process.hrtime), taken when the chunk holding the event
// came off the socket; -1 if it never came.

import { Client } from 'undici';
import { nowMs } from './stats.ts';

interface OpenMessage {
  type: 'open';
  url: string;
  token: string;
  path: string;
  watchers: number;
  objects: number;
  namePrefix: string;
}

type ParentMessage = OpenMessage | { type: 'finish' };

const send = (msg: unknown) => process.send?.(msg);

let clients: Client[] = [];
let times: Float64Array[] = [];
let received = 0;
let otherEvents = 0;
const errors: string[] = [];
let progressTimer: NodeJS.Timeout | undefined;

async function openWatch(msg: OpenMessage, w: number): Promise<void> {
  const client = new Client(msg.url, { pipelining: 1, bodyTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 60_000 });
  clients.push(client);
  const res = await client.request({ method: 'GET', path: msg.path, headers: { authorization: `Bearer ${msg.token}` } });
  if (res.statusCode !== 200) {
    const body = await res.body.text();
    throw new Error(`watch ${w}: HTTP ${res.statusCode} ${body.slice(0, 200)}`);
  }
  const mine = times[w]!;
  let buffered = '';
  res.body.setEncoding('utf8');
  res.body.on('data', (chunk: string) => {
    const at = nowMs();
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const ev = JSON.parse(line) as { type: string; object: { metadata?: { name?: string }; message?: string } };
      const name = ev.object.metadata?.name ?? '';
      if (ev.type === 'ADDED' && name.startsWith(msg.namePrefix)) {
        const i = Number(name.slice(msg.namePrefix.length));
        if (Number.isInteger(i) && i >= 0 && i < mine.length && mine[i]! < 0) {
          mine[i] = at;
          received++;
        }
      } else if (ev.type === 'ERROR') {
        if (errors.length < 5) errors.push(`watch ${w}: ERROR event: ${ev.object.message ?? line.slice(0, 200)}`);
      } else {
        otherEvents++;
      }
    }
  });
  res.body.on('error', (err: Error) => {
    if (errors.length < 5 && !finishing) errors.push(`watch ${w}: ${err.message}`);
  });
  res.body.on('end', () => {
    if (errors.length < 5 && !finishing) errors.push(`watch ${w}: the server ended the stream`);
  });
}

let finishing = false;

async function finish(): Promise<void> {
  finishing = true;
  clearInterval(progressTimer);
  const result = { type: 'result', times: times.map((t) => Array.from(t)), otherEvents, errors };
  await Promise.allSettled(clients.map((c) => c.destroy()));
  clients = [];
  send(result);
}

process.on('message', (msg: ParentMessage) => {
  if (msg.type === 'open') {
    times = Array.from({ length: msg.watchers }, () => new Float64Array(msg.objects).fill(-1));
    // Open them a few at a time so the server is not hit by 100 connections at once.
    void (async () => {
      try {
        for (let w = 0; w < msg.watchers; w += 10) {
          await Promise.all(Array.from({ length: Math.min(10, msg.watchers - w) }, (_, k) => openWatch(msg, w + k)));
        }
        progressTimer = setInterval(() => send({ type: 'progress', received }), 200);
        send({ type: 'opened' });
      } catch (err) {
        send({ type: 'error', message: (err as Error).message });
      }
    })();
  } else if (msg.type === 'finish') {
    void finish();
  }
});

// The parent went away: nothing left to do.
process.on('disconnect', () => {
  for (const c of clients) void c.destroy();
  process.exit(0);
});
