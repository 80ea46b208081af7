import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatSpecError, loadDefinitionFiles, validateDefinitionSet, type WorkflowSpec } from '../../src/spec/index.js';
import { parseYaml, writeFiles } from './helpers.js';

const wf = (name: string, tasks: string, extra = '') => `name: ${name}\n${extra}tasks:\n${tasks}`;

describe('loadDefinitionFiles', () => {
  it('walks folders for *.yaml and *.yml, skipping dot-folders, node_modules and out', () => {
    const dir = writeFiles({
      'a.yaml': wf('a', '  t: { run: "true" }\n'),
      'sub/b.yml': wf('b', '  t: { run: "true" }\n'),
      'sub/svc.yaml': 'service: s\nrun: sleep 1\n',
      'sub/notes.txt': 'not yaml',
      '.git/x.yaml': 'broken: [',
      'node_modules/pkg/x.yaml': 'broken: [',
      'out/x.yaml': 'broken: [',
    });
    const r = loadDefinitionFiles([dir]);
    expect(r.errors).toEqual([]);
    expect(r.definitions.map((d) => `${d.kind}:${d.name}:${path.relative(dir, d.file)}`))
      .toEqual(['workflow:a:a.yaml', 'workflow:b:sub/b.yml', 'service:s:sub/svc.yaml']);
  });

  it('reports an unreadable path with line 0 and keeps going', () => {
    const dir = writeFiles({ 'a.yaml': wf('a', '  t: { run: "true" }\n') });
    const missing = path.join(dir, 'nope.yaml');
    const r = loadDefinitionFiles([missing, path.join(dir, 'a.yaml')]);
    expect(r.errors).toEqual([{ file: missing, line: 0, column: 0, path: '', message: 'cannot read: no such file or directory' }]);
    expect(r.definitions).toHaveLength(1);
  });

  it('reports two workflows with the same namespace and name on the second, naming the first', () => {
    const dir = writeFiles({
      '1.yaml': wf('nightly', '  t: { run: "true" }\n'),
      '2.yaml': '# copy\n' + wf('nightly', '  t: { run: "true" }\n'),
      '3.yaml': wf('nightly', '  t: { run: "true" }\n', 'namespace: other\n'),
      '4.yaml': 'service: nightly\nrun: x\n',
      '5.yaml': 'service: nightly\nrun: y\n',
    });
    const r = loadDefinitionFiles([dir]);
    expect(r.errors.map(formatSpecError)).toEqual([
      `${dir}/2.yaml:2:7: name: workflow 'nightly' is already defined in ${dir}/1.yaml:1`,
      `${dir}/5.yaml:1:10: service: service 'nightly' is already defined in ${dir}/4.yaml:1`,
    ]);
  });

  it('reports references to unknown workflows unless known elsewhere', () => {
    const dir = writeFiles({
      'n.yaml': wf('nightly', '  a: { workflow: dumpwiki }\n  b: { workflow: other/thing }\n  c: { workflow: stored }\n'),
      'd.yaml': wf('dumpwikki', '  t: { run: "true" }\n'),
    });
    const r = loadDefinitionFiles([dir], { knownWorkflows: ['stored'] });
    expect(r.errors.map(formatSpecError)).toEqual([
      `${dir}/n.yaml:3:18: tasks.a.workflow: task 'a' uses unknown workflow 'dumpwiki' (did you mean 'dumpwikki'?)`,
      `${dir}/n.yaml:4:18: tasks.b.workflow: task 'b' uses unknown workflow 'other/thing'`,
    ]);
    expect(loadDefinitionFiles([dir], { knownWorkflows: ['stored', 'dumpwiki', 'other/thing'] }).errors).toEqual([]);
  });

  it('reports a cycle through sub-workflow references once, with its path across workflows', () => {
    const dir = writeFiles({
      'a-nightly.yaml': wf('nightly', '  dumps:\n    workflow: dumpwiki\n    foreach: [enwiki, dewiki]\n    with: { wiki: "{{ item }}" }\n'),
      'b-dumpwiki.yaml': wf('dumpwiki', '  prep: { run: "true" }\n  stubs:\n    needs: [prep]\n    workflow: nightly\n', 'params:\n  wiki: { required: true }\n'),
      'c-self.yaml': wf('selfish', '  me: { workflow: selfish }\n'),
    });
    const r = loadDefinitionFiles([dir]);
    expect(r.errors.map(formatSpecError)).toEqual([
      `${dir}/a-nightly.yaml:4:15: tasks.dumps.workflow: sub-workflow cycle: nightly → dumps.stubs → nightly (nightly.dumps runs dumpwiki, dumpwiki.stubs runs nightly)`,
      `${dir}/c-self.yaml:3:19: tasks.me.workflow: sub-workflow cycle: selfish → me → selfish (selfish.me runs selfish)`,
    ]);
  });

  it('does not call a workflow unknown because its own file has errors', () => {
    const dir = writeFiles({
      'n.yaml': wf('nightly', '  a: { workflow: dumpwiki }\n'),
      'd.yaml': wf('dumpwiki', '  t: { run: "true", retrys: 1 }\n'),
    });
    expect(loadDefinitionFiles([dir]).errors.map((e) => `${path.basename(e.file)}:${e.line}: ${e.message}`))
      .toEqual(["d.yaml:3: unknown field 'retrys' (did you mean 'retries'?)"]);
  });
});

describe('validateDefinitionSet without files', () => {
  it('falls back to the lines stored in the model', () => {
    const { definition } = parseYaml(wf('x', '  a:\n    workflow: x\n'));
    const def = definition as WorkflowSpec;
    fs.rmSync(def.baseDir, { recursive: true, force: true });
    expect(validateDefinitionSet([def])).toEqual([{
      file: def.file, line: 4, column: 1, path: 'tasks.a.workflow', message: 'sub-workflow cycle: x → a → x (x.a runs x)',
    }]);
  });
});

describe('sub-workflow parameters', () => {
  it('checks with: against the child workflow parameters', () => {
    const dir = writeFiles({
      'child.yaml': wf('child', '  t: { run: "true" }\n', 'params:\n  wiki: { required: true }\n  size: { default: small }\n'),
      'parent.yaml': wf('parent', '  ok:\n    workflow: child\n    with: { wiki: enwiki }\n  bad:\n    workflow: child\n    with: { wkii: enwiki }\n'),
    });
    expect(loadDefinitionFiles([dir]).errors.map((e) => `${path.basename(e.file)}:${e.line}: ${e.message}`)).toEqual([
      "parent.yaml:8: task 'bad' passes unknown parameter 'wkii' to workflow 'child' (declared: wiki, size)",
      "parent.yaml:7: task 'bad' does not pass required parameter 'wiki' to workflow 'child' (add it to with)",
    ]);
  });
});
