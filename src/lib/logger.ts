// Structured JSON logs (pino). `up` writes them to a file so the terminal keeps the banner.
import { pino, type Logger } from 'pino';

export function createLogger(opts: { level?: string; file?: string; name?: string } = {}): Logger {
  const level = opts.level ?? process.env.K8S4AI_LOG_LEVEL ?? 'info';
  const destination = opts.file && opts.file !== '-' ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : pino.destination(2);
  return pino({ level, name: opts.name ?? 'k8s4ai', base: { pid: process.pid } }, destination);
}

export type { Logger };
