// The Python client's own tests (clients/python/test_gantry_client.py, unittest)
// run here against a real Gantry, with the machine's python3, so that `npm test`
// (and CI) runs them. Python's output is shown when they fail.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embedded, type Embedded } from '../helpers/embedded.js';
import { loadDefinitions } from '../../src/spec/parse.js';
import { formatSpecError } from '../../src/spec/model.js';

const CLIENT_DIR = path.resolve(import.meta.dirname, '../../clients/python');

function python(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    p.on('error', (e) => reject(new Error(`cannot run python3: ${e.message}`)));
    p.on('close', (code) => resolve({ code, output }));
  });
}

describe('the Python client (clients/python)', () => {
  let g: Embedded;
  let scratch: string;
  beforeAll(async () => {
    g = await embedded({ slots: 4 });
    const { definitions, errors } = await loadDefinitions([path.join(CLIENT_DIR, 'testdata')]);
    expect(errors.map(formatSpecError)).toEqual([]);
    await g.up.store.putDefinitions(definitions);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-py-'));
  });
  afterAll(async () => {
    await g?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('passes its unittest suite against a running Gantry', async () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GANTRY_')) env[k] = v;
    Object.assign(env, { GANTRY_SERVER: g.up.url, GANTRY_TEST_DIR: scratch, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' });
    // the server's admin token, once it has one (auth): the client sends it as a bearer token
    const token = (g.up as { adminToken?: string }).adminToken;
    if (token) env.GANTRY_TOKEN = token;
    const r = await python(['-m', 'unittest', '-v', 'test_gantry_client'], env, CLIENT_DIR);
    expect(r.code, `python3 -m unittest failed:\n${r.output}`).toBe(0);
    // every test ran: none was skipped for want of a server
    expect(r.output).not.toMatch(/GANTRY_SERVER is not set/);
    expect(r.output).toMatch(/^OK/m);
  }, 180_000);
});
