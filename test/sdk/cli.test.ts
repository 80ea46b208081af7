// TypeScript workflows through the real `gantry` command: validate (no
// server), `gantry up DIR` picking up *.workflow.ts, apply, run --wait.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, gantry, gantryJson, startUp, tempDir, type RunJson, type UpProcess } from '../e2e/helpers.js';
import { BAD_FLOW, FLOW, makeProject } from './project.js';

describe('gantry with TypeScript workflow files', () => {
  let dir: string;
  let up: UpProcess;
  const cli = (args: string[]) => gantry(args, { server: up.url, cwd: dir });

  beforeAll(async () => {
    dir = tempDir('gantry-sdk-cli-');
    makeProject(dir, {
      'flows/flow.workflow.ts': FLOW,
      'flows/handlers.ts': 'export const unused = () => 1;\n',
      'later.ts': "import { defineWorkflow } from 'gantry';\nexport const later = defineWorkflow({ name: 'sdk-later', tasks: { t: { handler: async (ctx) => ctx.run.id } } });\n",
      'bad.ts': BAD_FLOW,
    });
    up = await startUp(dir, ['flows']);
  });
  afterAll(async () => {
    await up?.stop();
    await cleanup();
  });

  it('validate: a good file passes, a bad one exits 2 naming each field', async () => {
    const ok = await gantry(['validate', path.join(dir, 'flows/flow.workflow.ts')], { cwd: dir });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok\s+workflow sdk-flow\b/m);
    expect(ok.stdout).toMatch(/^ok\s+workflow sdk-tiny\b/m);
    const bad = await gantry(['validate', path.join(dir, 'bad.ts')], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${path.join(dir, 'bad.ts')}:7:23: tasks.a.timeout: 'soon' is not a duration`);
    expect(bad.stderr).toContain('tasks.b.run: unknown task');
    expect(bad.stderr).toContain("tasks.c.run: task 'c' has both handler and run");
  });

  it('up DIR applied the *.workflow.ts file; run --wait runs it to success', async () => {
    const { json, res } = await gantryJson<RunJson>(['run', 'sdk-flow', '-p', 'who=lin', '--wait'], { server: up.url, cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    expect(json.state).toBe('succeeded');
    const logs = await cli(['logs', `${json.id}:report`]);
    expect(logs.stdout).toContain('9 HELLO LIN!');
  });

  it('apply registers a TypeScript file; a bad one is refused with exit 2 and nothing stored', async () => {
    const applied = await cli(['apply', path.join(dir, 'later.ts')]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/created\s+workflow sdk-later/);
    const { json } = await gantryJson<RunJson>(['run', 'sdk-later', '--wait'], { server: up.url, cwd: dir });
    expect(json.state).toBe('succeeded');
    const bad = await cli(['apply', path.join(dir, 'bad.ts')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('tasks.a.timeout');
    const { json: wfs } = await gantryJson<Array<{ name: string }>>(['workflows'], { server: up.url, cwd: dir });
    expect(wfs.map((w) => w.name).sort()).toEqual(['sdk-flow', 'sdk-later', 'sdk-tiny']);
  });
});
