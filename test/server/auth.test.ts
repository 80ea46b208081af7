// Security, as a client of the API sees it, on both stores: every mutation
// needs a valid token (401), a token acts only in its namespaces (403) and a
// viewer changes nothing (403); tokens are stored hashed; a parameter full of
// shell syntax reaches a real process as one argument and runs nothing.
import { it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, makeToken, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { ROUTES } from '../../src/server/openapi.js';
import type { ApiToken, Run } from '../../src/store/types.js';

const MUTATIONS = Object.keys(ROUTES).filter((k) => !k.startsWith('GET '));
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

  it('a malformed, unknown or revoked token is a 401, reads included; reads without a token work', async () => {
    for (const header of ['Bearer nope', 'Basic dXNlcjpwYXNz', `Bearer gantry_0123456789ab_${'x'.repeat(43)}`, `Bearer ${g.token}x`]) {
      const r = await g.app.inject({ method: 'POST', url: '/api/v1/runs', headers: { authorization: header }, payload: { workflow: 'xml', namespace: 'dumps' } });
      expect(r.statusCode, header).toBe(401);
      expect(r.json().error, header).toMatch(/token|Bearer/);
      expect((await g.app.inject({ method: 'GET', url: '/api/v1/runs', headers: { authorization: header } })).statusCode, header).toBe(401);
    }
    expect((await g.inject('GET', '/api/v1/runs', undefined, null)).status).toBe(200);
    expect((await g.inject('GET', `/api/v1/runs/${botsRun.id}`, undefined, null)).status).toBe(200);
    expect((await g.inject('GET', '/api/v1/health', undefined, null)).status).toBe(200);

    const gone = await g.inject<ApiToken & { token: string }>('POST', '/api/v1/tokens', { namespaces: ['dumps'], role: 'maintainer', name: 'short-lived' });
    expect(gone.status).toBe(201);
    expect((await g.inject('POST', '/api/v1/definitions', files('dumps.yaml'), gone.body.token)).status).toBe(200);
    expect((await g.inject('DELETE', `/api/v1/tokens/${gone.body.id}`)).status).toBe(200);
    expect((await g.inject('POST', '/api/v1/definitions', files('dumps.yaml'), gone.body.token)).status).toBe(401);
    expect((await g.inject('DELETE', `/api/v1/tokens/${gone.body.id}`)).status).toBe(404);
  });

  it('a viewer token changes nothing: 403 on every mutation', async () => {
    for (const key of MUTATIONS) {
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
});
