// `run` / `handler` values → Command, shared by the model builder and validator.

import path from 'node:path';
import type { Command } from './model.js';

/** `./handlers/sync.ts#syncToMirror` → absolute module path and export name. */
export function parseHandlerRef(ref: string, baseDir: string): { module: string; exportName: string } | null {
  const hash = ref.lastIndexOf('#');
  if (hash <= 0 || hash === ref.length - 1) return null;
  return { module: path.resolve(baseDir, ref.slice(0, hash)), exportName: ref.slice(hash + 1) };
}

/** A string runs under /bin/sh -c; a list is exec'd as argv; a handler is imported. */
export function toCommand(
  src: { run?: string | Array<string | number | boolean>; handler?: string },
  baseDir: string,
): Command | null {
  if (typeof src.run === 'string') return { kind: 'shell', script: src.run };
  if (Array.isArray(src.run)) return { kind: 'argv', argv: src.run.map(String) };
  if (src.handler !== undefined) {
    const h = parseHandlerRef(src.handler, baseDir);
    return h && { kind: 'handler', ...h };
  }
  return null;
}
