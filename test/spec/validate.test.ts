import { describe, expect, it } from 'vitest';
import { formatSpecError } from '../../src/spec/index.js';
import { brief, parseYaml } from './helpers.js';

/** Errors of a workflow whose tasks section is `tasks` (indented by two), as `line: message`. */
function errorsOf(source: string): string[] {
  const { definition, errors } = parseYaml(source);
  if (errors.length) expect(definition).toBeNull();
  return brief(errors);
}

describe('all problems of a file are reported together', () => {
  it('reports three different problems at once and yields no definition', () => {
    const { definition, errors, file } = parseYaml(`name: three
tasks:
  stubs:
    run: ./dump.sh
    retrys: 3
  articles:
    needs: [stubz]
    run: ./dump.sh articles
    timeout: 5x
`);
    expect(definition).toBeNull();
    expect(errors.map(formatSpecError)).toEqual([
      `${file}:5:5: tasks.stubs.retrys: unknown field 'retrys' (did you mean 'retries'?)`,
      `${file}:7:13: tasks.articles.needs[0]: unknown task 'stubz' in needs (tasks are: stubs, articles); did you mean 'stubs'?`,
      `${file}:9:14: tasks.articles.timeout: '5x' is not a duration (use e.g. 30s, 10m, 6h, 2d)`,
    ]);
  });
});

describe('schema errors', () => {
  it('unknown fields point at the key itself, with a suggestion when close', () => {
    expect(errorsOf('name: x\ndescriptoin: y\ntasks:\n  a: { run: "true" }\n')).toEqual([
      "2: unknown field 'descriptoin' (did you mean 'description'?)",
    ]);
  });

  it('missing required fields', () => {
    expect(errorsOf('description: nothing\n')).toEqual([
      "1: missing required field 'name'",
      "1: missing required field 'tasks'",
    ]);
  });

  it('bad types, enums, memory sizes and numbers', () => {
    expect(errorsOf(`name: x
tasks:
  a:
    run: "true"
    trigger: sometimes
    resources: { cpu: two, memory: 2X, gpu: many }
    priority: 1.5
    queue: []
    retries: { max: -1, backoff: 0.5 }
    concurrency: 0
    split: "x"
`)).toEqual([
      '5: must be one of all_success, all_done, any_failed',
      '6: must be a number (got string)',
      "6: '2X' is not a memory size (use e.g. 512M, 2G, 64K)",
      '6: a custom resource must be a number',
      '7: must be a whole number',
      '8: must list at least one queue name',
      '9: must be at least 0',
      '9: must be at least 1',
      '10: must be at least 1',
    ]);
  });

  it('schedule: bad cron, unknown timezone, bad overlap, a cron that never fires, a missing required parameter', () => {
    expect(errorsOf(`name: x
params:
  wiki: { required: true }
schedule:
  - cron: "61 * * * *"
    timezone: Mars/Base
    params: { wiki: enwiki }
  - cron: "0 0 31 2 *"
    overlap: sometimes
    params: { wiki: enwiki }
  - cron: "0 3 * * *"
tasks:
  a: { run: "true" }
`)).toEqual([
      "5: bad cron expression '61 * * * *': Invalid value for minute: 61",
      "6: unknown timezone 'Mars/Base' (use an IANA name such as UTC or Europe/Berlin)",
      "8: cron expression '0 0 31 2 *' never fires",
      '9: must be one of skip, queue, cancel_running',
      "11: schedule: missing required parameter 'wiki'",
    ]);
  });

  it('a parameter default outside its enum', () => {
    expect(errorsOf(`name: x
params:
  size: { default: huge, enum: [regular, large] }
tasks:
  a: { run: "true" }
`)).toEqual(['3: default "huge" of parameter \'size\' is not one of its enum values ("regular", "large")']);
  });

  it('notify targets must be mailto: or http(s) URLs', () => {
    expect(errorsOf('name: x\nnotify: { on: failed, to: [ops@example.org] }\ntasks:\n  a: { run: "true" }\n'))
      .toEqual(['2: must be a mailto: or http(s):// address']);
  });
});

describe('task structure', () => {
  it('a task needs exactly one of run, handler, workflow', () => {
    expect(errorsOf(`name: x
tasks:
  none:
    needs: []
  both:
    run: "true"
    workflow: other
`)).toEqual([
      "3: task 'none' needs one of run, handler, workflow",
      "7: task 'both' has both run and workflow; use exactly one",
    ]);
  });

  it('combine/concurrency only with split; foreach/with only with workflow', () => {
    expect(errorsOf(`name: x
tasks:
  a:
    run: "true"
    combine: "cat"
    concurrency: 2
    foreach: [1, 2]
    with: { a: 1 }
`)).toEqual([
      '5: combine is only allowed on a task with split',
      '6: concurrency is only allowed on a task with split',
      '7: foreach is only allowed on a task with workflow',
      '8: with is only allowed on a task with workflow',
    ]);
  });

  it('handler must be path#export and the file must exist', () => {
    const { errors, dir } = parseYaml(`name: x
tasks:
  a: { handler: ./handlers/sync.ts }
  b: { handler: ./handlers/missing.ts#run }
  c: { handler: ./handlers/sync.ts#ok }
`, { 'handlers/sync.ts': 'export async function ok() {}\n' });
    expect(brief(errors)).toEqual([
      '3: must be path#export, e.g. ./handlers/sync.ts#syncToMirror',
      `4: handler file './handlers/missing.ts' not found (looked for ${dir}/handlers/missing.ts)`,
    ]);
  });

  it('task ids may not contain dots or brackets', () => {
    expect(errorsOf('name: x\ntasks:\n  ok_id-1: { run: "true" }\n  a.b: { run: "true" }\n  "c[0]": { run: "true" }\n')).toEqual([
      "4: task id 'a.b' may use only letters, digits, _ and - (dots and brackets are reserved for sub-workflow tasks)",
      "5: task id 'c[0]' may use only letters, digits, _ and - (dots and brackets are reserved for sub-workflow tasks)",
    ]);
  });
});

describe('dependencies', () => {
  it('unknown task in needs, with the line of the entry', () => {
    expect(errorsOf('name: x\ntasks:\n  a: { run: "true" }\n  b: { run: "true" }\n  c:\n    run: "true"\n    needs:\n      - a\n      - x\n'))
      .toEqual(["9: unknown task 'x' in needs (tasks are: a, b, c)"]);
  });

  it('reports each cycle once, with its path', () => {
    expect(errorsOf(`name: x
tasks:
  a:
    run: "true"
    needs: [c]
  b:
    run: "true"
    needs: [a]
  c:
    run: "true"
    needs: [b]
  d:
    run: "true"
    needs: [d]
  e:
    run: "true"
    needs: [a]
`)).toEqual([
      '5: dependency cycle: a → c → b → a',
      '14: dependency cycle: d → d',
    ]);
  });

  it('accepts a diamond', () => {
    expect(errorsOf('name: x\ntasks:\n  a: { run: "1" }\n  b: { run: "2", needs: a }\n  c: { run: "3", needs: [a] }\n  d: { run: "4", needs: [b, c] }\n'))
      .toEqual([]);
  });
});

describe('template references', () => {
  it('reports unknown params, outputs, roots and unterminated braces', () => {
    expect(errorsOf(`name: x
params:
  wiki: { required: true }
tasks:
  a:
    run: echo {{ params.wikki }} {{ outputs.xml }}
    outputs: { part: "/d/{{ foo }}" }
  b:
    run: echo {{ params.wiki
  c:
    run: [echo, "{{ run.id }}", "{{ run.when }}"]
`)).toEqual([
      "6: unknown output 'xml' in {{ outputs.xml }} (task 'a' declares: part)",
      "6: unknown parameter 'wikki' in {{ params.wikki }} (declared: wiki)",
      "7: unknown template value 'foo' in {{ foo }} (use params, run, outputs, tasks, item, chunk, chunks, secrets)",
      "9: unterminated '{{' at '{{ params.wiki' (close it with '}}')",
      '11: {{ run.when }}: a run has only {{ run.id }} and {{ run.date }}',
    ]);
  });

  it('outputs in split and combine steps refer to their own step', () => {
    expect(errorsOf(`name: x
tasks:
  a:
    split:
      run: plan > {{ outputs.plan }}
      outputs: { plan: /tmp/plan }
    run: work {{ chunk.n }} > {{ outputs.plan }}
    outputs: { part: "/tmp/{{ chunk.n }}" }
    combine:
      run: cat {{ chunks.outputs.part }} > {{ outputs.all }} {{ outputs.part }}
      outputs: { all: /tmp/all }
`)).toEqual([
      "7: unknown output 'plan' in {{ outputs.plan }} (task 'a' declares: part)",
      "10: unknown output 'part' in {{ outputs.part }} (the combine step of task 'a' declares: all)",
    ]);
  });

  it('tasks.t must be a known upstream task, and its outputs real', () => {
    expect(errorsOf(`name: x
tasks:
  stubs:
    run: "true"
    outputs: { xml: /x }
  articles:
    needs: [stubs]
    split: plan {{ tasks.stubs.outputs.xml }}
    run: "true"
    combine: { run: "true", outputs: { all: /all } }
  compress:
    needs: [articles]
    run: 7z {{ tasks.articles.outputs.all }} {{ tasks.stubs.outputs.xml }} {{ tasks.stubs.result.count }}
  other:
    run: echo {{ tasks.stubs.outputs.xml }} {{ tasks.nope.result }}
  bad:
    needs: [stubs]
    run: echo {{ tasks.stubs.outputs.json }} {{ tasks.stubs.log }}
`)).toEqual([
      "15: task 'other' uses tasks.stubs but does not depend on it (add it to needs)",
      "15: unknown task 'nope' in {{ tasks.nope.result }} (tasks are: stubs, articles, compress, other, bad)",
      '18: {{ tasks.stubs.log }}: use tasks.stubs.outputs.<name> or tasks.stubs.result',
      "18: task 'stubs' has no output 'json' (it declares: xml)",
    ]);
  });

  it('labels see only params and run; with sees item; foreach sees params', () => {
    expect(errorsOf(`name: x
params:
  wikis: { default: [a, b] }
labels: { a: "{{ params.wikis }}-{{ run.date }}", b: "{{ outputs.x }}" }
tasks:
  per:
    workflow: child
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}", nested: ["{{ params.nope }}"], c: "{{ chunk.x }}" }
`)).toEqual([
      '4: {{ outputs.x }} cannot be used in labels (only params, run)',
      "9: unknown parameter 'nope' in {{ params.nope }} (declared: wikis)",
      '9: {{ chunk.x }} cannot be used in with (only params, run, item)',
    ]);
  });

  it('accepts item, chunk, chunks, secrets and run roots without deeper checks', () => {
    expect(errorsOf(`name: x
tasks:
  a:
    run: echo {{ item.x }} {{ chunk.start }} {{ chunks.results }} {{ secrets.token }} {{ run.id }} {{run.date}}
`)).toEqual([]);
  });

  it('secrets: {{ secrets.NAME }} in run and env; any other form, or a secret in an output path, is refused clearly', () => {
    expect(errorsOf(`name: x
defaults:
  env: { A: "{{ secrets.API_KEY }}" }
tasks:
  a:
    run: [curl, -u, "{{ secrets.user-name }}"]
    env: { B: "{{ secrets.B_2 }}", C: "{{ params.free_until_run }}" }
`)).toEqual([]);
    expect(errorsOf(`name: x
defaults:
  env: { A: "{{ secrets }}" }
tasks:
  a:
    run: echo {{ secrets.a.b }}
    env: { B: "{{ secrets.x[0] }}" }
    outputs: { o: "out/{{ secrets.K }}.txt" }
`)).toEqual([
      '3: {{ secrets }}: name one secret, as {{ secrets.NAME }} (NAME: letters, digits, _ -; set it with gantry secret set NAME)',
      '6: {{ secrets.a.b }}: name one secret, as {{ secrets.NAME }} (NAME: letters, digits, _ -; set it with gantry secret set NAME)',
      '7: {{ secrets.x[0] }}: name one secret, as {{ secrets.NAME }} (NAME: letters, digits, _ -; set it with gantry secret set NAME)',
      '8: {{ secrets.K }} cannot be used in outputs: paths are stored and shown in clear (use it in run or env)',
    ]);
  });
});
