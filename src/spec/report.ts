// Shared by the semantic checks: lenient reads of the raw document, and the
// error list they fill with positions from the locator.

import { formatDocPath, type DocPath, type Locate } from './locate.js';
import type { SpecError } from './model.js';

export type Obj = Record<string, unknown>;
export const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
export const has = (o: Obj, k: string) => Object.hasOwn(o, k) && o[k] !== undefined;

export class Report {
  readonly errors: SpecError[] = [];
  constructor(private file: string, private locate: Locate) {}
  add(path: DocPath, message: string, atKey = false): void {
    const { line, column } = this.locate(path, { atKey });
    this.errors.push({ file: this.file, line, column, path: formatDocPath(path), message });
  }
}

/** What the checks need to know about a task, read leniently from the raw document. */
export interface TaskInfo {
  id: string;
  raw: Obj;
  needs: string[];
  outputs: string[];
  splitOutputs: string[];
  combineOutputs: string[];
  isWorkflow: boolean;
}
