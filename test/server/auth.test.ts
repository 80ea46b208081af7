// Security, as a client of the API sees it, on both stores: every mutation
// needs a valid token (401), a token acts only in its namespaces (403) and a
// viewer changes nothing (403); tokens are stored hashed; a parameter full of
// shell syntax reaches a real process as one argument and runs nothing;
// secrets are stored sealed, reach the job that uses them, and are masked in
// everything the worker ships about it.
import { it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, makeToken, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { ROUTES } from '../../src/server/openapi.js';
import type { ApiToken, Run } from '../../src/store/types.js';

const MUTATIONS = Object.keys(ROUTES).filter((k) => !k.startsWith('GET '));
/** subscribing changes nothing in a namespace: its viewers may, to their own subscriptions */
const VIEWER_MAY = ['POST /api/v1/subscriptions', 'DELETE /api/v1/subscriptions/:id'];
/** a concrete URL for a route template: ids that exist in the test's data where that matters */
const urlOf = (template: string, runId: number) =>
  template.replace(':id', template.includes('/tokens/') ? '0123456789ab' : template.includes('/jobs/') ? `${runId}:a` : String(runId)).replace(/:\w+/g, 'x');

const wf = (name: string, namespace: string, run = 'sleep 30') => `name: ${name}\nnamespace: ${namespace}\ntasks:\n  a: { run: "${run}" }\n`;

onEveryStore('auth', (storeName) => {
  let g: Cluster;
  let viewer: string;
  let dumps: string;
  let both: string;
  let everywhere: string;
  let botsRun: Run;
  beforeAll(async () => {
    g = await cluster(storeName);
    viewer = await makeToken(g.store, 'viewer', ['dumps'], 'a viewer');
    dumps = await makeToken(g.store, 'maintainer', ['dumps'], 'dumps maintainer');
    both = await makeToken(g.store, 'maintainer', ['dumps', 'bots'], 'maintains two tools');
    everywhere = await makeToken(g.store, 'maintainer', ['*']);
    g.write('dumps.yaml', wf('xml', 'dumps'));
    g.write('bots.yaml', wf('notifier', 'bots'));
    expect((await g.apply('dumps.yaml', 'bots.yaml')).status).toBe(200);
    const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'notifier', namespace: 'bots' });
    expect(r.status).toBe(201);
    botsRun = r.body;
  });
  afterAll(async () => {
    await g?.close();
  });

  const files = (...rels: string[]) => ({ files: rels.map((rel) => ({ path: path.join(g.dir, rel), source: fs.readFileSync(path.join(g.dir, rel), 'utf8') })) });

  it('every mutation without a token is a 401 with a JSON error saying how to get one, and changes nothing', async () => {
    for (const key of MUTATIONS) {
      const [method, template] = key.split(' ') as ['POST' | 'PUT' | 'DELETE', string];
      const r = await g.inject<{ error: string }>(method, urlOf(template, botsRun.id), method === 'DELETE' ? undefined : {}, null);
      expect(r.status, key).toBe(401);
      expect(r.body.error, key).toMatch(/token/);
    }
    expect((await g.store.getRun(botsRun.id))!.state).not.toBe('cancelled');
    expect((await g.store.listRuns({})).length).toBe(1);
  });

  it('a malformed, unknown or revoked token is a 401, reads included; reads without a token are a 401 while no namespace is public', async () => {
    for (const header of ['Bearer nope', 'Basic dXNlcjpwYXNz', `Bearer gantry_0123456789ab_${'x'.repeat(43)}`, `Bearer ${g.token}x`]) {
      const r = await g.app.inject({ method: 'POST', url: '/api/v1/runs', headers: { authorization: header }, payload: { workflow: 'xml', namespace: 'dumps' } });
      expect(r.statusCode, header).toBe(401);
      expect(r.json().error, header).toMatch(/token|Bearer/);
      expect((await g.app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: header } })).statusCode, header).toBe(401);
    }
    expect((await g.inject('GET', '/api/v1/runs', undefined, null)).status).toBe(401);
    expect((await g.inject('GET', `/api/v1/runs/${botsRun.id}`, undefined, null)).status).toBe(401);
    expect((await g.inject('GET', '/api/v1/health', undefined, null)).status).toBe(200);

    const gone = await g.inject<ApiToken & { token: string }>('POST', '/api/v1/tokens', { namespaces: ['dumps'], role: 'maintainer', name: 'short-lived' });
    expect(gone.status).toBe(201);
    expect((await g.inject('POST', '/api/v1/definitions', files('dumps.yaml'), gone.body.token)).status).toBe(200);
    expect((await g.inject('DELETE', `/api/v1/tokens/${gone.body.id}`)).status).toBe(200);
    expect((await g.inject('POST', '/api/v1/definitions', files('dumps.yaml'), gone.body.token)).status).toBe(401);
    expect((await g.inject('DELETE', `/api/v1/tokens/${gone.body.id}`)).status).toBe(404);
  });

  it('a viewer token changes nothing: 403 on every mutation (but following a namespace: test/notify)', async () => {
    for (const key of MUTATIONS.filter((k) => !VIEWER_MAY.includes(k))) {
      const [method, template] = key.split(' ') as ['POST' | 'PUT' | 'DELETE', string];
      const r = await g.inject<{ error: string }>(method, urlOf(template, botsRun.id), method === 'DELETE' ? undefined : {}, viewer);
      expect(r.status, key).toBe(403);
      expect(r.body.error, key).toMatch(/viewer|admin/);
    }
    expect((await g.inject('POST', '/api/v1/runs', { workflow: 'xml', namespace: 'dumps' }, viewer)).status).toBe(403);
  });

  it("a maintainer acts in its namespaces only: another namespace's runs, jobs, deferred runs and definitions are 403 and unchanged", async () => {
    // its own namespace: apply, start, cancel, retry, defer and cancel the deferred run
    expect((await g.inject('POST', '/api/v1/definitions', files('dumps.yaml'), dumps)).status).toBe(200);
    const mine = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'xml', namespace: 'dumps' }, dumps);
    expect(mine.status).toBe(201);
    expect((await g.inject('POST', `/api/v1/runs/${mine.body.id}/cancel`, {}, dumps)).status).toBe(200);
    expect((await g.inject('POST', `/api/v1/runs/${mine.body.id}/retry`, { failed: true }, dumps)).status).toBe(200);
    expect((await g.inject('POST', `/api/v1/jobs/${mine.body.id}:a/cancel`, {}, dumps)).status).toBe(200);
    const later = await g.inject<{ id: number }>('POST', '/api/v1/runs', { workflow: 'xml', namespace: 'dumps', at: '+1h' }, dumps);
    expect(later.status).toBe(202);

    // another namespace
    const refused: [string, string, unknown][] = [
      ['POST', '/api/v1/definitions', files('bots.yaml')],
      ['POST', '/api/v1/runs', { workflow: 'notifier', namespace: 'bots' }],
      ['POST', '/api/v1/runs', { workflow: 'notifier', namespace: 'bots', at: '+1h' }],
      ['POST', `/api/v1/runs/${botsRun.id}/cancel`, {}],
      ['POST', `/api/v1/runs/${botsRun.id}/retry`, {}],
      ['POST', `/api/v1/jobs/${botsRun.id}:a/cancel`, {}],
    ];
    for (const [method, url, body] of refused) {
      const r = await g.inject<{ error: string }>(method as 'POST', url, body, dumps);
      expect(r.status, `${method} ${url}`).toBe(403);
      expect(r.body.error).toMatch(/namespace 'bots'/);
    }
    // a file set touching a namespace that is not its own is refused whole
    g.write('mixed/a.yaml', wf('xml2', 'dumps'));
    g.write('mixed/b.yaml', wf('notifier2', 'bots'));
    expect((await g.inject('POST', '/api/v1/definitions', files('mixed/a.yaml', 'mixed/b.yaml'), dumps)).status).toBe(403);
    expect((await g.store.listDefinitions()).map((d) => d.name)).not.toContain('xml2');
    // a deferred run of bots, made by an admin, cannot be cancelled by the dumps maintainer
    const botsLater = await g.inject<{ id: number }>('POST', '/api/v1/runs', { workflow: 'notifier', namespace: 'bots', at: '+1h' });
    expect((await g.inject('POST', `/api/v1/deferred-runs/${botsLater.body.id}/cancel`, {}, dumps)).status).toBe(403);
    expect((await g.inject('POST', `/api/v1/deferred-runs/${later.body.id}/cancel`, {}, dumps)).status).toBe(200);
    expect((await g.store.getDeferredRun(botsLater.body.id))!.state).toBe('waiting');
    const bots = await g.store.getRun(botsRun.id);
    expect(bots!.state).not.toBe('cancelled');
    expect((await g.store.getJob(`${botsRun.id}:a`))!.state).not.toBe('cancelled');

    // cluster-wide things are an admin's
    for (const [method, url, body] of [
      ['PUT', '/api/v1/pools/db', { slots: 1 }],
      ['POST', `/api/v1/workers/${(await g.store.listWorkers())[0]!.name}/drain`, {}],
      ['POST', '/api/v1/tokens', { namespaces: ['dumps'] }],
    ] as const) {
      const r = await g.inject<{ error: string }>(method, url, body, dumps);
      expect(r.status, url).toBe(403);
      expect(r.body.error).toMatch(/admin/);
    }
    expect((await g.inject('GET', '/api/v1/tokens', undefined, dumps)).status).toBe(403);
    expect((await g.inject('GET', '/api/v1/tokens', undefined, null)).status).toBe(401);
    expect((await g.store.listWorkers())[0]!.state).toBe('active');
  });

  it("a token may hold several namespaces ('*': all); an admin acts everywhere", async () => {
    for (const token of [both, everywhere, g.token]) {
      expect((await g.inject('POST', '/api/v1/definitions', files('dumps.yaml', 'bots.yaml'), token)).status).toBe(200);
      for (const [workflow, namespace] of [['xml', 'dumps'], ['notifier', 'bots']]) {
        const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow, namespace }, token);
        expect(r.status).toBe(201);
        expect((await g.inject('POST', `/api/v1/runs/${r.body.id}/cancel`, {}, token)).status).toBe(200);
      }
    }
    // another tool's namespace stays closed to a maintainer of two
    g.write('other.yaml', wf('x', 'other'));
    expect((await g.inject('POST', '/api/v1/definitions', files('other.yaml'), both)).status).toBe(403);
    expect((await g.inject('POST', '/api/v1/definitions', files('other.yaml'), everywhere)).status).toBe(200);
  });

  it('whoami tells the role and namespaces of the presented token, null without one', async () => {
    expect((await g.inject('GET', '/api/v1/auth/whoami', undefined, null)).body).toEqual({ role: null, namespaces: [] });
    expect((await g.inject('GET', '/api/v1/auth/whoami', undefined, both)).body).toMatchObject({ role: 'maintainer', namespaces: ['bots', 'dumps'], name: 'maintains two tools' });
    expect((await g.inject('GET', '/api/v1/auth/whoami', undefined, viewer)).body).toMatchObject({ role: 'viewer', namespaces: ['dumps'] });
    expect((await g.inject('GET', '/api/v1/auth/whoami')).body).toMatchObject({ role: 'admin', namespaces: ['*'] });
  });

  it('tokens are stored hashed: the table holds SHA-256 digests, never a token; the list shows no secret', async () => {
    const made = await g.inject<ApiToken & { token: string }>('POST', '/api/v1/tokens', { namespaces: ['dumps', 'bots'], role: 'maintainer', name: 'ci' });
    expect(made.status).toBe(201);
    expect(made.body.token).toMatch(/^gantry_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(made.body.token.startsWith(`gantry_${made.body.id}_`)).toBe(true);
    const secretPart = made.body.token.slice(`gantry_${made.body.id}_`.length);
    const rows = await g.rows('api_tokens');
    const dump = JSON.stringify([rows, await g.rows('api_token_namespaces')]);
    for (const t of [made.body.token, g.token, viewer, dumps, both, everywhere]) {
      expect(dump).not.toContain(t);
      expect(dump).not.toContain(t.slice(-43)); // the secret part alone
    }
    expect(dump).not.toContain(secretPart);
    const row = rows.find((r) => r.id === made.body.id)!;
    expect(row.hash).toBe(createHash('sha256').update(made.body.token).digest('hex'));
    const listed = await g.inject<{ tokens: Record<string, unknown>[] }>('GET', '/api/v1/tokens');
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toMatch(/gantry_[0-9a-f]{12}_|"hash"/);
    expect(listed.body.tokens.find((t) => t.id === made.body.id)).toMatchObject({ role: 'maintainer', namespaces: ['bots', 'dumps'], name: 'ci' });
  });

  it('a parameter full of shell syntax reaches the command as exactly one argument, and runs nothing', async () => {
    const marker = path.join(g.dir, 'pwned');
    const evil = `'; rm -rf / #\n$(touch ${marker}) \`touch ${marker}\` "double" 'single' $HOME * ; touch ${marker} && echo INJECTED\n|| touch ${marker} \\`;
    g.write('argv/show.sh', `#!/bin/sh\nprintf '%s' "$#" > "$(dirname "$0")/count"\nprintf '%s' "$1" > "$(dirname "$0")/first"\n`);
    fs.chmodSync(path.join(g.dir, 'argv/show.sh'), 0o755);
    g.write('argv/quoting.yaml', `name: quoting\nnamespace: dumps\nparams: { p: { required: true } }\ntasks:\n  show:\n    run: ./show.sh {{ params.p }}\n`);
    expect((await g.inject('POST', '/api/v1/definitions', files('argv/quoting.yaml'), dumps)).status).toBe(200);
    const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'quoting', namespace: 'dumps', params: { p: evil } }, dumps);
    expect(r.status).toBe(201);
    expect((await g.waitRun(r.body.id)).state).toBe('succeeded');
    expect(fs.readFileSync(path.join(g.dir, 'argv/count'), 'utf8')).toBe('1');
    expect(fs.readFileSync(path.join(g.dir, 'argv/first'), 'utf8')).toBe(evil);
    expect(fs.existsSync(marker)).toBe(false);
    expect((await g.store.readLogs({ runId: r.body.id })).map((l) => l.line).join('\n')).not.toContain('INJECTED');
  });

  // a secret full of shell syntax, too: it is substituted shell-quoted like every value
  const SECRET = `s3cr3t-'; touch pwned-by-secret #$(id) \`id\``;

  it('secrets: set by an admin or a maintainer of the namespace only (401, 403), listed by name, stored sealed: the table never holds the value', async () => {
    const put = (ns: string, name: string, value: string, token?: string | null) => g.inject<{ change: string; error?: string }>('PUT', `/api/v1/secrets/${ns}/${name}`, { value }, token);
    expect((await put('dumps', 'API_KEY', SECRET, null)).status).toBe(401);
    expect((await put('dumps', 'API_KEY', SECRET, viewer)).status).toBe(403);
    expect((await put('bots', 'API_KEY', SECRET, dumps)).status).toBe(403);
    expect((await g.inject('DELETE', '/api/v1/secrets/bots/ANY', undefined, dumps)).status).toBe(403);
    const created = await put('dumps', 'API_KEY', 'first value', dumps);
    expect([created.status, created.body.change]).toEqual([200, 'created']);
    const updated = await put('dumps', 'API_KEY', SECRET, dumps);
    expect([updated.status, updated.body.change]).toEqual([200, 'updated']);
    expect((await put('bots', 'API_KEY', 'bots value', both)).status).toBe(200);
    expect((await put('dumps', 'bad.name', 'x', dumps)).status).toBe(400);

    const listed = await g.inject<{ secrets: { namespace: string; name: string }[] }>('GET', '/api/v1/secrets?namespace=dumps', undefined, viewer);
    expect(listed.body.secrets.map((x) => x.name)).toEqual(['API_KEY']);
    expect(JSON.stringify(listed.body)).not.toContain('s3cr3t');
    const rows = await g.rows('secrets');
    expect(rows).toHaveLength(2);
    const dump = JSON.stringify(rows);
    for (const clear of ['s3cr3t', 'first value', 'bots value', Buffer.from(SECRET).toString('base64')]) expect(dump).not.toContain(clear);
    expect(String(rows.find((r) => r.namespace === 'dumps')!.sealed)).toMatch(/^v1:[0-9a-f]{8}:/);
  });

  it('a job that prints its secret logs *** (stdout, stderr, its error); the process got the real value, as one argument and in its env', async () => {
    g.write('sec/use.yaml', `name: use-secret
namespace: dumps
tasks:
  show:
    env: { API_KEY: "{{ secrets.API_KEY }}" }
    run: |
      printf '%s' "$#" > got-argc; printf '%s' "$1" > got-arg; printf '%s' "$API_KEY" > got-env
      echo "the key is $1"
      echo "again: $API_KEY" >&2
      exit 3
    retries: { max: 0 }
`);
    // the argument: the script above is a shell string whose $1 comes from sh -c's argv
    const yaml = fs.readFileSync(path.join(g.dir, 'sec/use.yaml'), 'utf8').replace('    run: |\n', '    run: |\n      set -- {{ secrets.API_KEY }}\n');
    g.write('sec/use.yaml', yaml);
    expect((await g.inject('POST', '/api/v1/definitions', files('sec/use.yaml'), dumps)).status).toBe(200);
    const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'use-secret', namespace: 'dumps' }, dumps);
    expect(r.status).toBe(201);
    expect((await g.waitRun(r.body.id)).state).toBe('failed');
    const dir = path.join(g.dir, 'sec');
    expect(fs.readFileSync(path.join(dir, 'got-argc'), 'utf8')).toBe('1');
    expect(fs.readFileSync(path.join(dir, 'got-arg'), 'utf8')).toBe(SECRET);
    expect(fs.readFileSync(path.join(dir, 'got-env'), 'utf8')).toBe(SECRET);
    expect(fs.existsSync(path.join(dir, 'pwned-by-secret'))).toBe(false);
    const lines = (await g.store.readLogs({ runId: r.body.id })).map((l) => `${l.stream}:${l.line}`);
    expect(lines).toContain('stdout:the key is ***');
    expect(lines).toContain('stderr:again: ***');
    const job = (await g.store.getJob(`${r.body.id}:show`))!;
    expect(job.error).toBe('exit code 3: again: ***');
    // nothing the store holds about the run has the value: logs, jobs, attempts, events
    for (const table of ['logs', 'jobs', 'attempts', 'runs', 'events']) expect(JSON.stringify(await g.rows(table)), table).not.toContain('s3cr3t');
  });

  it("a handler reads its secrets from ctx.secrets (named in its env); what it logs is masked", async () => {
    g.write('sec/handler.mjs', `export async function useSecret(ctx) {
  ctx.log('handler has ' + ctx.secrets.API_KEY);
  ctx.logger.warn('env ' + ctx.env.KEY);
  return { length: ctx.secrets.API_KEY.length };
}
`);
    g.write('sec/handler.yaml', `name: handler-secret\nnamespace: dumps\ntasks:\n  h:\n    handler: ./handler.mjs#useSecret\n    env: { KEY: "{{ secrets.API_KEY }}" }\n`);
    expect((await g.inject('POST', '/api/v1/definitions', files('sec/handler.yaml'), dumps)).status).toBe(200);
    const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'handler-secret', namespace: 'dumps' }, dumps);
    expect((await g.waitRun(r.body.id)).state).toBe('succeeded');
    const lines = (await g.store.readLogs({ runId: r.body.id })).map((l) => `${l.stream}:${l.line}`);
    expect(lines).toContain('stdout:handler has ***');
    expect(lines).toContain('stderr:env ***');
    expect((await g.store.getJob(`${r.body.id}:h`))!.result).toEqual({ length: SECRET.length });
  });

  it('a secret in what a job returns is masked before it reaches the store: $GANTRY_RESULT, a handler result and error, a bad result, split chunks', async () => {
    g.write('sec/results.mjs', `export async function give(ctx) {
  return { key: ctx.secrets.API_KEY, list: ['x', 'with ' + ctx.secrets.API_KEY], n: 7 };
}
export async function boom(ctx) {
  throw new Error('cannot log in with ' + ctx.secrets.API_KEY);
}
`);
    const env = `    env: { API_KEY: "{{ secrets.API_KEY }}" }\n`;
    g.write('sec/results.yaml', `name: secret-results
namespace: dumps
defaults: { retries: { max: 0 } }
tasks:
  res:
${env}    run: printf '{"key":"%s","note":"key=%s;","n":1}' "$API_KEY" "$API_KEY" > "$GANTRY_RESULT"
  down:
    needs: [res]
    run: echo got {{ tasks.res.result.key }}
  notjson:
${env}    run: printf 'not json %s' "$API_KEY" > "$GANTRY_RESULT"
  give:
${env}    handler: ./results.mjs#give
  boom:
${env}    handler: ./results.mjs#boom
  parts:
${env}    split: printf '["plain","%s"]' "$API_KEY"
    run: echo chunk {{ chunk.value }}
`);
    expect((await g.inject('POST', '/api/v1/definitions', files('sec/results.yaml'), dumps)).status).toBe(200);
    const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'secret-results', namespace: 'dumps' }, dumps);
    expect(r.status).toBe(201);
    expect((await g.waitRun(r.body.id)).state).toBe('failed');
    const jobs = await g.jobs(r.body.id);
    expect(jobs.res!.result).toEqual({ key: '***', note: 'key=***;', n: 1 });
    expect(jobs.down!.error).toBeNull();
    expect(await g.stdout(`${r.body.id}:down`)).toEqual(['got ***']); // downstream sees the masked result
    expect(jobs.give!.result).toEqual({ key: '***', list: ['x', 'with ***'], n: 7 });
    expect(jobs.notjson!.error).toBe('$GANTRY_RESULT is not valid JSON: not json ***');
    expect(jobs.boom!.error).toMatch(/cannot log in with \*\*\*$/);
    const chunks = (await g.store.listJobs({ runId: r.body.id })).filter((j) => j.task === 'parts' && j.chunk !== null);
    expect(chunks.map((j) => j.state)).toEqual(['succeeded', 'succeeded']);
    expect((await g.store.readLogs({ runId: r.body.id })).map((l) => l.line)).toEqual(expect.arrayContaining(['chunk plain', 'chunk ***']));
    // nothing the store holds about the run has the value
    for (const table of ['logs', 'jobs', 'attempts', 'runs', 'events', 'audit']) expect(JSON.stringify(await g.rows(table)), table).not.toContain('s3cr3t');
  });

  it('a secret that is not set fails the job, naming it and the namespace; a bad secret reference is refused at apply', async () => {
    g.write('sec/missing.yaml', `name: missing-secret\nnamespace: dumps\ntasks:\n  a: { run: "echo {{ secrets.NOT_SET }}" }\n`);
    expect((await g.inject('POST', '/api/v1/definitions', files('sec/missing.yaml'), dumps)).status).toBe(200);
    const r = await g.inject<Run>('POST', '/api/v1/runs', { workflow: 'missing-secret', namespace: 'dumps' }, dumps);
    expect((await g.waitRun(r.body.id)).state).toBe('failed');
    expect((await g.store.getJob(`${r.body.id}:a`))!.error).toMatch(/secret NOT_SET not set in namespace 'dumps' \(gantry secret set NAME --namespace dumps\)/);

    g.write('sec/bad.yaml', `name: bad-secret\nnamespace: dumps\ntasks:\n  a:\n    run: "echo {{ secrets.A.B }} {{ secrets }}"\n    outputs: { o: "out/{{ secrets.API_KEY }}" }\n`);
    const bad = await g.inject<{ errors: { message: string }[] }>('POST', '/api/v1/definitions', files('sec/bad.yaml'), dumps);
    expect(bad.status).toBe(400);
    const messages = bad.body.errors.map((e) => e.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/\{\{ secrets\.A\.B \}\}: name one secret, as \{\{ secrets\.NAME \}\}/),
        expect.stringMatching(/\{\{ secrets \}\}: name one secret/),
        expect.stringMatching(/cannot be used in outputs/),
      ]),
    );
    // and deleting a secret: gone from the list, a second delete is a 404
    expect((await g.inject('DELETE', '/api/v1/secrets/bots/API_KEY', undefined, both)).status).toBe(200);
    expect((await g.inject('DELETE', '/api/v1/secrets/bots/API_KEY', undefined, both)).status).toBe(404);
  });
});
