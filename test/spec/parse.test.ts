import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDefinitionSource, type ServiceSpec, type WorkflowSpec } from '../../src/spec/index.js';
import { brief, parseYaml } from './helpers.js';

const SPEC_EXAMPLE = `name: xmldumps
namespace: dumps
description: Monthly XML dumps of one wiki
params:
  wiki: { required: true }
  size: { default: regular, enum: [regular, large] }
labels: { project: "{{ params.wiki }}", kind: xml }
schedule:
  cron: "0 3 1 * *"
  timezone: UTC
  params: { wiki: enwiki }
  overlap: skip
  catchup: false
max_active_runs: 1
notify:
  on: [failed, retries_exhausted]
  to: ["mailto:ops@example.org", "https://hooks.example.org/dumps"]
defaults:
  queue: default
  priority: 0
  retries: { max: 3, delay: 30s, backoff: 2.0, max_delay: 10m }
  timeout: 6h
tasks:
  stubs:
    run: ./dump.sh stubs --wiki {{ params.wiki }} --out {{ outputs.xml }}
    outputs: { xml: "/data/{{ params.wiki }}/{{ run.date }}/stubs.xml.gz" }
    resources: { cpu: 1, memory: 2G, dbconn: 1 }
    pool: dbstore
    priority: 10
  articles:
    needs: [stubs]
    split: ./plan-chunks.sh {{ tasks.stubs.outputs.xml }}   # prints a JSON array
    run: ./dump.sh articles --range {{ chunk.start }}-{{ chunk.end }} --out {{ outputs.part }}
    outputs: { part: "/data/{{ params.wiki }}/{{ run.date }}/articles-{{ chunk.index }}.xml.bz2" }
    combine:
      run: ./recombine.sh {{ chunks.outputs.part }} > {{ outputs.all }}
      outputs: { all: "/data/{{ params.wiki }}/{{ run.date }}/articles.xml.bz2" }
    pool: external-storage
    concurrency: 8                  # at most 8 chunks of this task at once
  compress:
    needs: [articles]
    run: [7z, a, "{{ outputs.archive }}", "{{ tasks.articles.outputs.all }}"]
    outputs: { archive: "/data/{{ params.wiki }}/{{ run.date }}/articles.7z" }
  sync:
    needs: [stubs]
    trigger: all_done               # all_success (default) | all_done | any_failed
    handler: ./handlers/sync.ts#syncToMirror
`;

describe('parseDefinitionSource: the SPEC §2 example', () => {
  const { definition, errors, file, dir } = parseYaml(SPEC_EXAMPLE, { 'handlers/sync.ts': 'export async function syncToMirror() {}\n' });
  const wf = definition as WorkflowSpec;

  it('parses without errors into a workflow', () => {
    expect(errors).toEqual([]);
    expect(wf.kind).toBe('workflow');
    expect(wf).toMatchObject({
      name: 'xmldumps', namespace: 'dumps', description: 'Monthly XML dumps of one wiki', maxActiveRuns: 1,
      file, baseDir: dir, line: 1,
      labels: { project: '{{ params.wiki }}', kind: 'xml' },
      params: { wiki: { required: true }, size: { required: false, default: 'regular', enum: ['regular', 'large'] } },
      notify: { on: ['failed', 'retries_exhausted'], to: ['mailto:ops@example.org', 'https://hooks.example.org/dumps'] },
    });
    expect(wf.schedules).toEqual([{ cron: '0 3 1 * *', timezone: 'UTC', params: { wiki: 'enwiki' }, overlap: 'skip', catchup: false, line: 9 }]);
    expect(wf.tasks.map((t) => [t.id, t.line])).toEqual([['stubs', 24], ['articles', 30], ['compress', 40], ['sync', 44]]);
  });

  it('merges defaults into every task, task fields winning', () => {
    const [stubs, articles] = wf.tasks;
    expect(stubs).toMatchObject({
      priority: 10, queue: ['default'], timeoutMs: 6 * 3600_000, stallTimeoutMs: null, trigger: 'all_success',
      retries: { max: 3, delayMs: 30_000, backoff: 2, maxDelayMs: 600_000 },
      resources: { cpu: 1, memoryBytes: 2 * 1024 ** 3, custom: { dbconn: 1 } },
      pool: 'dbstore', needs: [], workflow: null, split: null, combine: null, concurrency: null,
      command: { kind: 'shell', script: './dump.sh stubs --wiki {{ params.wiki }} --out {{ outputs.xml }}' },
    });
    expect(articles!.priority).toBe(0);
    expect(articles!.resources).toEqual({ cpu: 1, memoryBytes: null, custom: {} });
  });

  it('builds split/combine steps, argv commands and handlers', () => {
    const [, articles, compress, sync] = wf.tasks;
    expect(articles!.split).toEqual({ command: { kind: 'shell', script: './plan-chunks.sh {{ tasks.stubs.outputs.xml }}' }, outputs: {} });
    expect(articles!.combine).toEqual({
      command: { kind: 'shell', script: './recombine.sh {{ chunks.outputs.part }} > {{ outputs.all }}' },
      outputs: { all: '/data/{{ params.wiki }}/{{ run.date }}/articles.xml.bz2' },
    });
    expect(articles!.concurrency).toBe(8);
    expect(compress!.command).toEqual({ kind: 'argv', argv: ['7z', 'a', '{{ outputs.archive }}', '{{ tasks.articles.outputs.all }}'] });
    expect(sync!.command).toEqual({ kind: 'handler', module: path.join(dir, 'handlers', 'sync.ts'), exportName: 'syncToMirror' });
    expect(sync!.trigger).toBe('all_done');
  });
});

describe('built-in defaults and merging', () => {
  it('fills built-in defaults', () => {
    const { definition, errors } = parseYaml('name: tiny\ntasks:\n  a: { run: "true" }\n');
    expect(errors).toEqual([]);
    const wf = definition as WorkflowSpec;
    expect(wf).toMatchObject({ namespace: 'default', description: '', params: {}, labels: {}, schedules: [], maxActiveRuns: null, notify: null });
    expect(wf.tasks[0]).toEqual({
      id: 'a', line: 3, needs: [], trigger: 'all_success', command: { kind: 'shell', script: 'true' }, outputs: {},
      queue: ['default'], priority: 0, retries: { max: 0, delayMs: 10_000, backoff: 2, maxDelayMs: 600_000 },
      timeoutMs: null, stallTimeoutMs: null, resources: { cpu: 1, memoryBytes: null, custom: {} },
      limits: { cpuTimeMs: null, openFiles: null, processes: null }, pool: null, env: {},
      workflow: null, split: null, combine: null, concurrency: null,
    });
  });

  it('merges retries field-wise, resources and env key-wise; integer retries mean max', () => {
    const { definition, errors } = parseYaml(`name: m
defaults:
  retries: { max: 3, delay: 1m }
  resources: { cpu: 2, gpu: 1 }
  env: { A: "1", B: 2 }
  queue: [bigmem, default]
  trigger: all_done
  pool: p
  stall_timeout: 5m
tasks:
  a:
    run: "true"
    retries: { backoff: 3 }
    resources: { memory: 512M }
    env: { B: three }
  b:
    run: "true"
    retries: 5
    queue: fast
    trigger: any_failed
    timeout: 1h30m
`);
    expect(errors).toEqual([]);
    const [a, b] = (definition as WorkflowSpec).tasks;
    expect(a).toMatchObject({
      retries: { max: 3, delayMs: 60_000, backoff: 3, maxDelayMs: 600_000 },
      resources: { cpu: 2, memoryBytes: 512 * 1024 ** 2, custom: { gpu: 1 } },
      env: { A: '1', B: 'three' }, queue: ['bigmem', 'default'], trigger: 'all_done', pool: 'p', stallTimeoutMs: 300_000,
    });
    expect(b).toMatchObject({
      retries: { max: 5, delayMs: 60_000, backoff: 2 }, queue: ['fast'], trigger: 'any_failed', timeoutMs: 5_400_000,
    });
  });

  it('parses sub-workflow tasks, split objects with handlers, and schedule lists', () => {
    const { definition, errors, dir } = parseYaml(`name: nightly
params:
  wikis: { default: [enwiki, dewiki] }
schedule:
  - { cron: "0 1 * * *", timezone: Europe/Berlin }
  - { cron: "0 2 * * 0", overlap: queue, catchup: true }
tasks:
  per-wiki:
    workflow: dumps/xmldumps
    foreach: "{{ params.wikis }}"
    with: { wiki: "{{ item }}" }
  plan:
    split: { handler: ./h.ts#plan, outputs: { list: /tmp/x } }
    handler: ./h.ts#work
`, { 'h.ts': 'export const plan = 1;\n' });
    expect(errors).toEqual([]);
    const wf = definition as WorkflowSpec;
    expect(wf.schedules.map((s) => [s.cron, s.timezone, s.overlap, s.catchup, s.line]))
      .toEqual([['0 1 * * *', 'Europe/Berlin', 'skip', false, 5], ['0 2 * * 0', 'UTC', 'queue', true, 6]]);
    expect(wf.tasks[0]).toMatchObject({
      command: null, workflow: { name: 'dumps/xmldumps', with: { wiki: '{{ item }}' }, foreach: '{{ params.wikis }}', line: 9 },
    });
    expect(wf.tasks[1]!.split).toEqual({ command: { kind: 'handler', module: path.join(dir, 'h.ts'), exportName: 'plan' }, outputs: { list: '/tmp/x' } });
  });
});

describe('services', () => {
  it('parses a service file', () => {
    const { definition, errors, file } = parseYaml(`service: irc-notifier
namespace: bots
run: python3 notifier.py --channel '#dumps'
resources: { cpu: 0.5, memory: 256M }
restart: { delay: 5s, max_delay: 5m }
notify: { on: [restarted, flapping], to: ["mailto:bot-maintainers@example.org"] }
`);
    expect(errors).toEqual([]);
    expect(definition as ServiceSpec).toEqual({
      kind: 'service', name: 'irc-notifier', namespace: 'bots', line: 1, file, baseDir: path.dirname(file),
      command: { kind: 'shell', script: "python3 notifier.py --channel '#dumps'" },
      resources: { cpu: 0.5, memoryBytes: 256 * 1024 ** 2, custom: {} },
      limits: { cpuTimeMs: null, openFiles: null, processes: null },
      restart: { delayMs: 5000, maxDelayMs: 300_000 },
      notify: { on: ['restarted', 'flapping'], to: ['mailto:bot-maintainers@example.org'] },
      env: {}, queue: ['default'],
    });
  });

  it('reports service errors: unknown fields, both run and handler, bad event', () => {
    const { definition, errors } = parseYaml(`service: s
name: s
run: x
handler: ./x.ts#f
notify: { on: [exploded], to: "mailto:a@b" }
`);
    expect(definition).toBeNull();
    expect(brief(errors)).toEqual([
      "2: unknown field 'name' (allowed: service, namespace, description, run, handler, resources, limits, restart, notify, env, queue)",
      "4: service 's' has both run and handler; use exactly one",
      "4: handler file './x.ts' not found (looked for " + path.join(path.dirname(errors[0]!.file), 'x.ts') + ')',
      '5: must be one of started, stopped, failed, restarted, flapping',
    ]);
  });
});

describe('YAML-level errors', () => {
  it('reports YAML syntax errors with their line', () => {
    const { definition, errors } = parseYaml('name: x\ntasks:\n  a: { run: "true"\n  b: [\n');
    expect(definition).toBeNull();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toMatch(/^YAML syntax error: /);
    expect(errors[0]!.line).toBeGreaterThanOrEqual(3);
  });

  it('reports a duplicate task by name, at the second key, with the first line', () => {
    const { definition, errors } = parseYaml('name: x\ntasks:\n  stubs: { run: a }\n  other: { run: b }\n  stubs: { run: c }\n');
    expect(definition).toBeNull();
    expect(errors).toEqual([{
      file: expect.any(String), line: 5, column: 3, path: 'tasks.stubs', message: "duplicate task 'stubs' (first given on line 3)",
    }]);
  });

  it('reports other duplicate keys as duplicate fields', () => {
    const { errors } = parseYaml('name: x\nname: y\ntasks:\n  a: { run: a, run: b }\n');
    expect(brief(errors)).toEqual(["2: duplicate field 'name' (first given on line 1)", "4: duplicate field 'run' (first given on line 4)"]);
  });

  it('rejects empty files and non-mappings', () => {
    expect(brief(parseYaml('').errors)).toEqual(['0: empty file: expected a workflow (name:, tasks:) or a service (service:, run:)']);
    expect(brief(parseYaml('- a\n- b\n').errors)).toEqual(['1: expected a mapping with name: and tasks: (a workflow) or service: (a service)']);
  });

  it('takes a relative file name and makes it absolute', () => {
    const r = parseDefinitionSource('name: x\ntasks: { a: { run: "true" } }\n', 'rel/wf.yaml');
    expect(r.definition?.file).toBe(path.resolve('rel/wf.yaml'));
    expect(r.definition?.baseDir).toBe(path.resolve('rel'));
  });
});

describe('YAML aliases', () => {
  it('reports an alias without its anchor at the alias', () => {
    expect(brief(parseYaml('name: x\ntasks:\n  a: *nope\n').errors))
      .toEqual(['3: YAML error: Unresolved alias (the anchor must be set before the alias): nope']);
  });

  it('follows anchors and aliases', () => {
    const { definition, errors } = parseYaml('name: x\ntasks:\n  a: &t { run: "true", priority: 3 }\n  b: *t\n');
    expect(errors).toEqual([]);
    expect((definition as WorkflowSpec).tasks.map((t) => [t.id, t.priority])).toEqual([['a', 3], ['b', 3]]);
  });
});
