// Property-based fuzzing (fast-check): malformed workflow files thrown at the
// parser, malformed bodies and query strings thrown at every route of the API
// (on SQLite, by inject). Whatever comes in: never a 500, never a throw out of
// the parser, never a hang; the server still answers afterwards.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';
import type { FastifyInstance } from 'fastify';
import { parseDefinitionSource } from '../../src/spec/parse.js';
import { buildApp } from '../../src/server/app.js';
import { ROUTES } from '../../src/server/openapi.js';
import { silentLogger } from '../../src/log.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { makeToken } from '../helpers/cluster.js';

const VALID = `name: fz
description: a workflow to mutate
params:
  day: { default: "2026-01-01" }
schedule:
  - { cron: "0 3 * * *", timezone: Europe/Berlin, params: { day: "2026-02-02" } }
tasks:
  fetch:
    run: echo {{ params.day }} > {{ outputs.raw }}
    outputs: { raw: "out/{{ params.day }}.txt" }
    retries: { max: 2, delay: 1s }
  split:
    needs: [fetch]
    split: echo '[1, 2, 3]'
    run: echo {{ chunk }}
    combine:
      run: cat {{ chunks.outputs.part }}
  report:
    needs: [split]
    trigger: all_done
    pool: db
    queue: [fast, default]
    run: wc -l < {{ tasks.fetch.outputs.raw }}
`;

/** YAML-significant pieces, so mutations hit the parser's interesting paths rather than only plain text. */
const PIECES = [':', ': ', '- ', '[', ']', '{', '}', '|', '>', '&a', '*a', '!!str ', '!!binary ', '%YAML 1.2\n', '---\n', '...\n', '#', "'", '"', '\n', '\t', '  ', '{{', '}}', '\\', '\0', '\u2028', 'null', '~', '1e999', '-0', 'tasks:', 'needs: [', 'run:', '<<: *a'];

const mutation = fc.record({
  at: fc.nat(),
  cut: fc.nat({ max: 40 }),
  insert: fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 8 })),
});
function mutate(source: string, ms: { at: number; cut: number; insert: string }[]): string {
  let s = source;
  for (const m of ms) {
    const at = s.length ? m.at % s.length : 0;
    s = s.slice(0, at) + m.insert + s.slice(at + m.cut);
  }
  return s;
}

/** Documents shaped like a workflow with arbitrary values where the parser expects particular ones. */
const workflowish = fc
  .record(
    {
      name: fc.oneof(fc.string(), fc.jsonValue()),
      namespace: fc.oneof(fc.string(), fc.jsonValue()),
      params: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string({ maxLength: 8 }), fc.record({ enum: fc.jsonValue(), default: fc.jsonValue(), required: fc.jsonValue() }, { requiredKeys: [] }))),
      schedule: fc.oneof(fc.jsonValue(), fc.array(fc.record({ cron: fc.string(), timezone: fc.string(), overlap: fc.string(), catchup: fc.jsonValue(), params: fc.jsonValue() }, { requiredKeys: [] }))),
      tasks: fc.oneof(
        fc.jsonValue(),
        fc.dictionary(
          fc.string({ maxLength: 10 }),
          fc.record(
            {
              run: fc.oneof(fc.string(), fc.jsonValue()),
              needs: fc.oneof(fc.array(fc.string({ maxLength: 6 })), fc.jsonValue()),
              outputs: fc.jsonValue(),
              retries: fc.oneof(fc.integer(), fc.jsonValue(), fc.record({ max: fc.jsonValue(), delay: fc.string() }, { requiredKeys: [] })),
              timeout: fc.string(),
              split: fc.jsonValue(),
              combine: fc.jsonValue(),
              workflow: fc.jsonValue(),
              resources: fc.jsonValue(),
              trigger: fc.string(),
              queue: fc.jsonValue(),
            },
            { requiredKeys: [] },
          ),
          { maxKeys: 5 },
        ),
      ),
    },
    { requiredKeys: [] },
  )
  .map((doc) => YAML.stringify(doc));

describe('fuzz: the workflow parser', () => {
  const check = (source: string) => {
    const started = performance.now();
    const r = parseDefinitionSource(source, '/fuzz/wf.yaml');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(Array.isArray(r.errors)).toBe(true);
    // No definition comes without saying why.
    if (!r.definition) expect(r.errors.length).toBeGreaterThan(0);
    for (const e of r.errors) expect(typeof e.message).toBe('string');
  };

  it('the valid source parses (the fuzz starts from a real workflow)', () => {
    const r = parseDefinitionSource(VALID, '/fuzz/wf.yaml');
    expect(r.errors).toEqual([]);
    expect(r.definition?.name).toBe('fz');
  });

  it('arbitrary text, mutated workflows and workflow-shaped documents: errors, never a throw or a hang', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), check), { numRuns: 200 });
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (ms) => check(mutate(VALID, ms))), { numRuns: 400 });
    fc.assert(fc.property(workflowish, check), { numRuns: 300 });
  });
});

describe('fuzz: the HTTP API (SQLite)', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  /** an admin's: the fuzz reaches past the token check (auth.test.ts covers requests without one) */
  let auth: { authorization: string };
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-fuzz-'));
    store = new SqliteStore(path.join(dir, 'gantry.db'));
    await store.migrate();
    app = await buildApp({ store, logger: silentLogger() });
    auth = { authorization: `Bearer ${await makeToken(store)}` };
    const r = await app.inject({ method: 'POST', url: '/api/v1/definitions', headers: auth, payload: { files: [{ path: '/fuzz/wf.yaml', source: VALID }] } });
    expect(r.statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/v1/runs', headers: auth, payload: { workflow: 'fz' } })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // The event stream is endless by design, and logs' `wait` a deliberate long poll: neither is a hang.
  const routes = Object.keys(ROUTES).filter((k) => k !== 'GET /api/v1/events');
  const queryNames = ['limit', 'offset', 'workflow', 'namespace', 'state', 'label', 'latest', 'worker', 'since', 'until', 'run', 'stale', 'job', 'after'];

  const pathValue = fc.oneof(fc.constantFrom('1', '0', '1:fetch', '1:split#0', 'fz', '99999999999999999999', '-1', '%', '..'), fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 }));
  const queryValue = fc.oneof(
    fc.constantFrom('', '1', '-1', '0.5', 'true', 'maybe', 'a=b', '=', '2h', '2026-01-01', '1e999', 'NaN', 'running', 'fz'),
    fc.string({ maxLength: 16 }),
  );
  const query = fc.oneof(
    fc.dictionary(fc.oneof(fc.constantFrom(...queryNames), fc.string({ maxLength: 6 })), fc.oneof(queryValue, fc.array(queryValue, { maxLength: 3 })), { maxKeys: 5 }).map((q) => {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
      return p.toString();
    }),
    // raw, possibly badly encoded
    fc.string({ maxLength: 40 }),
  );
  const jsonBody = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.record(
      {
        workflow: fc.oneof(fc.constant('fz'), fc.string({ maxLength: 8 }), fc.jsonValue()),
        namespace: fc.oneof(fc.string({ maxLength: 8 }), fc.jsonValue()),
        params: fc.oneof(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue()), fc.jsonValue()),
        labels: fc.oneof(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })), fc.jsonValue()),
        priority: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
        force: fc.jsonValue(),
        at: fc.oneof(fc.constantFrom('+10m', '+0s', '2020-01-01T00:00:00Z', '+99999999d'), fc.string({ maxLength: 10 })),
        failed: fc.jsonValue(),
        slots: fc.oneof(fc.integer(), fc.constant(null), fc.jsonValue()),
        files: fc.oneof(fc.jsonValue(), fc.array(fc.record({ path: fc.oneof(fc.string(), fc.jsonValue()), source: fc.oneof(fc.constant(VALID), fc.string({ maxLength: 80 }), fc.jsonValue()) }, { requiredKeys: [] }), { maxLength: 3 })),
      },
      { requiredKeys: [] },
    ),
  );
  const body = fc.oneof(
    jsonBody.map((b) => ({ payload: JSON.stringify(b), type: 'application/json' })),
    fc.string({ maxLength: 60 }).map((s) => ({ payload: s, type: 'application/json' })),
    fc.string({ maxLength: 30 }).map((s) => ({ payload: s, type: 'text/plain' })),
    fc.constant(undefined),
  );

  it('random routes, path values, query strings and bodies: always an answer below 500, as JSON', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), pathValue, query, body, async (route, value, qs, b) => {
        const [method, template] = route.split(' ') as ['GET' | 'POST' | 'PUT' | 'DELETE', string];
        const url = template.replace(/:\w+/g, () => encodeURIComponent(value)) + (qs ? `?${qs}` : '');
        const r = await app.inject({
          method,
          url,
          headers: { ...auth, ...(b && method !== 'GET' ? { 'content-type': b.type } : {}) },
          ...(b && method !== 'GET' ? { payload: b.payload } : {}),
        });
        seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
        expect(r.statusCode, `${method} ${url} ${b?.payload.slice(0, 200)} → ${r.body.slice(0, 300)}`).toBeLessThan(500);
        // the two text documents; everything else answers JSON (a refused feed query too)
        if (template !== '/metrics' && !(template === '/api/v1/feed.atom' && r.statusCode === 200)) expect(() => JSON.parse(r.body), `${method} ${url}: ${r.body.slice(0, 200)}`).not.toThrow();
      }),
      { numRuns: 400 },
    );
    // The fuzz reached both sides: refusals and successes.
    expect([...seen.keys()].some((s) => s >= 400)).toBe(true);
    expect([...seen.keys()].some((s) => s < 300)).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/api/v1/health' })).statusCode).toBe(200);
  });
});
