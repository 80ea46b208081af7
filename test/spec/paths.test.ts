// Paths stay where they belong: a handler is the workflow's own file (inside
// its folder) or an installed package, never another file of the machine; a
// relative output may not climb out of the workflow's folder.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { brief, parseYaml, tempDir } from './helpers.js';
import { parseDefinitionSource } from '../../src/spec/index.js';

describe('handler paths', () => {
  it('a handler outside the workflow folder (.. or absolute) is refused at its line', () => {
    const outside = tempDir();
    fs.writeFileSync(path.join(outside, 'x.ts'), 'export function f() {}\n');
    const { definition, errors, dir } = parseYaml(`name: h\ntasks:\n  up:\n    handler: ../../etc/x.ts#f\n  abs:\n    handler: ${outside}/x.ts#f\n`);
    expect(definition).toBeNull();
    expect(brief(errors)).toEqual([
      `4: handler file '../../etc/x.ts' is outside the workflow's folder ${dir} (${path.resolve(dir, '../../etc/x.ts')}): a handler must be in it or an installed package (node_modules)`,
      `6: handler file '${outside}/x.ts' is outside the workflow's folder ${dir} (${outside}/x.ts): a handler must be in it or an installed package (node_modules)`,
    ]);
  });

  it('a symbolic link in the folder leading out of it is refused', () => {
    const outside = tempDir();
    fs.writeFileSync(path.join(outside, 'x.ts'), 'export function f() {}\n');
    const dir = tempDir();
    fs.symlinkSync(path.join(outside, 'x.ts'), path.join(dir, 'link.ts'));
    const file = path.join(dir, 'wf.yaml');
    fs.writeFileSync(file, `name: h\ntasks:\n  t:\n    handler: ./link.ts#f\n`);
    const { definition, errors } = parseDefinitionSource(fs.readFileSync(file, 'utf8'), file);
    expect(definition).toBeNull();
    expect(brief(errors)).toEqual([
      `4: handler file './link.ts' leads outside the workflow's folder ${dir} (it is ${fs.realpathSync(path.join(outside, 'x.ts'))}): a handler must be in it or an installed package (node_modules)`,
    ]);
  });

  it("handlers in the folder, a subfolder, or an installed package of a folder above are accepted", () => {
    const { definition, errors } = parseYaml(
      `name: ok\ntasks:\n  a:\n    handler: ./h.ts#f\n  b:\n    handler: lib/h.ts#f\n  c:\n    handler: node_modules/pkg/index.js#f\n`,
      { 'h.ts': 'export function f() {}\n', 'lib/h.ts': 'export function f() {}\n', 'node_modules/pkg/index.js': 'export function f() {}\n' },
    );
    expect(errors).toEqual([]);
    expect(definition).not.toBeNull();
  });
});

describe('output paths', () => {
  it('a relative output climbing out with .. is refused at its line; absolute and inside ones pass', () => {
    const { definition, errors } = parseYaml(
      `name: o\ntasks:\n  a:\n    outputs:\n      bad: ../../etc/passwd\n      sneaky: out/../../x\n      fine: out/x.txt\n      abs: /srv/dumps/x\n    run: "true"\n  s:\n    split:\n      outputs: { up: ../list.json }\n      run: "true"\n    run: "true"\n`,
    );
    expect(definition).toBeNull();
    expect(brief(errors)).toEqual([
      "5: output 'bad' (../../etc/passwd) climbs out of the workflow's folder with '..': write inside it, or give an absolute path",
      "6: output 'sneaky' (out/../../x) climbs out of the workflow's folder with '..': write inside it, or give an absolute path",
      "12: output 'up' (../list.json) climbs out of the workflow's folder with '..': write inside it, or give an absolute path",
    ]);
  });
});
