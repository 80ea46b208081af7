// Temp folders with real files for the spec tests.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { parseDefinitionSource, formatSpecError, type SpecError } from '../../src/spec/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-spec-'));
  dirs.push(d);
  return d;
}

/** Write files (relative path → content) into a fresh temp dir; returns the dir. */
export function writeFiles(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

/** Parse YAML written to a real temp file; returns the result and the file path. */
export function parseYaml(source: string, extra: Record<string, string> = {}) {
  const dir = writeFiles({ 'wf.yaml': source, ...extra });
  const file = path.join(dir, 'wf.yaml');
  return { ...parseDefinitionSource(fs.readFileSync(file, 'utf8'), file), file, dir };
}

/** `line: message` for compact assertions. */
export const brief = (errors: SpecError[]) => errors.map((e) => `${e.line}: ${e.message}`);
export { formatSpecError };
