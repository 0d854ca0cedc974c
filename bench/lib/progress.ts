// Progress bars on stderr (cli-progress) for the long phases, and one-line phase notes.
// On a non-TTY stderr the bars stay silent and only the notes are written.

import cliProgress from 'cli-progress';

export interface Progress {
  update(value: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** A bar from 0 to `total` labelled `label`; `unit` names what it counts. */
export function progressBar(label: string, total: number, unit: string): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `  ${label.padEnd(28)} [{bar}] {percentage}% | {value}/{total} ${unit} | {info}`,
      barsize: 24,
      hideCursor: true,
      clearOnComplete: true,
      noTTYOutput: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { info: '' });
  let stopped = false;
  return {
    update(value, payload) {
      if (!stopped) bar.update(Math.min(value, total), { info: '', ...payload });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
