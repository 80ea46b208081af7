// Maps a path inside a parsed document (`['tasks', 'stubs', 'needs', 0]`) back
// to the line and column of its YAML node, so every message can point at it.

import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';

export type DocPath = ReadonlyArray<string | number>;

/** `tasks.stubs.needs[0]` */
export function formatDocPath(path: DocPath): string {
  return path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');
}

export interface Position {
  line: number;
  column: number;
}

/** Find a path's node; `atKey` points at the key rather than its value. Missing parts fall back to the deepest node found. */
export type Locate = (path: DocPath, opts?: { atKey?: boolean }) => Position;

function keyText(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function start(node: unknown, lc: LineCounter): Position | null {
  const range = (node as Node | null)?.range;
  if (!range) return null;
  const { line, col } = lc.linePos(range[0]);
  return { line, column: col };
}

export function makeLocator(doc: Document, lc: LineCounter): Locate {
  return (path, opts = {}) => {
    let node: unknown = doc.contents;
    let best = start(node, lc) ?? { line: 1, column: 1 };
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = (node.items as Pair[]).find((p) => keyText(p) === String(seg));
        if (!pair) break;
        const keyPos = start(pair.key, lc);
        const valuePos = start(pair.value, lc);
        // an empty value (`key:`) has no node of its own: point at the key
        best = (last && opts.atKey ? keyPos : valuePos ?? keyPos) ?? best;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        best = start(item, lc) ?? best;
        node = item;
      } else {
        break;
      }
    }
    return best;
  };
}

export interface DuplicateKey {
  path: Array<string | number>;
  key: string;
  offset: number;
  /** where the key was first given */
  firstOffset: number;
}

/** Keys given twice in one mapping. The later one is reported; the parser keeps the last value. */
export function duplicateKeys(doc: Document): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const walk = (node: unknown, path: Array<string | number>): void => {
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items as Pair[]) {
        const key = keyText(pair);
        const offset = (pair.key as Node | null)?.range?.[0] ?? 0;
        const firstOffset = seen.get(key);
        if (firstOffset !== undefined) found.push({ path, key, offset, firstOffset });
        else seen.set(key, offset);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    }
  };
  walk(doc.contents, []);
  return found;
}
