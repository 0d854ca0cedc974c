// CLI failures: one clear line on stderr and a non-zero exit.
export class CliError extends Error {
  readonly code = 'K8S4AI_CLI';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
