// Reading manifests from a file, a folder (recursively, in name order) or stdin:
// multi-document YAML or JSON, Lists unwrapped.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../api/meta.ts';
import { CliError } from './errors.ts';

export interface Manifest {
  object: KubeObject;
  source: string;
}

const MANIFEST_EXT = new Set(['.yaml', '.yml', '.json']);

function readStdin(): string {
  return readFileSync(0, 'utf8');
}

export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new CliError(`${source}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new CliError(`${source}: each document must be an object with apiVersion and kind`);
    const obj = value as KubeObject & { items?: KubeObject[] };
    if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
      for (const item of obj.items) out.push({ object: item, source });
      continue;
    }
    if (!obj.apiVersion || !obj.kind) throw new CliError(`${source}: a document is missing apiVersion or kind`);
    out.push({ object: obj, source });
  }
  return out;
}

/** Manifest files (.yaml, .yml, .json) under a folder, recursively, in name order. */
export function manifestFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return manifestFiles(p);
      return MANIFEST_EXT.has(extname(name)) ? [p] : [];
    });
}

export function readManifests(paths: string[]): Manifest[] {
  if (paths.length === 0) throw new CliError('must give -f FILE, a folder, or - for stdin');
  const out: Manifest[] = [];
  for (const p of paths) {
    if (p === '-') {
      out.push(...parseManifests(readStdin(), '<stdin>'));
      continue;
    }
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new CliError(`the path "${p}" does not exist`);
    }
    const files = st.isDirectory() ? manifestFiles(p) : [p];
    for (const f of files) out.push(...parseManifests(readFileSync(f, 'utf8'), f));
  }
  return out;
}
