// A folder laid out like a user's project that has installed Gantry: its
// TypeScript workflow files `import { defineWorkflow } from 'gantry'`, which
// resolves through node_modules/gantry (a link to this repository) to the
// built package (dist/: `npm run build` first, as `npm test` does).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `module: 'esm'` adds a package.json with "type": "module"; 'cjs' leaves the .ts files to be compiled as CommonJS. */
export function makeProject(dir: string, files: Record<string, string>, o: { module?: 'esm' | 'cjs' } = {}): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/index.js is missing: run `npm run build` first');
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'gantry'), 'dir');
  if ((o.module ?? 'esm') === 'esm') fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
}

/**
 * Two workflows in one file (default and named export): function handlers
 * (also as split, chunk and combine), a shell task, dependencies, and results
 * and outputs flowing downstream in both directions (shell → function → shell).
 */
export const FLOW = `
import fs from 'node:fs/promises';
import { defineWorkflow } from 'gantry';

export default defineWorkflow({
  name: 'sdk-flow',
  params: { who: { required: true }, punct: { default: '!', enum: ['!', '?'] } },
  labels: { kind: 'sdk' },
  tasks: {
    greet: {
      run: 'printf "hello %s" {{ params.who }} > {{ outputs.text }}',
      outputs: { text: 'out/{{ run.id }}/greet.txt' },
    },
    measure: {
      needs: ['greet'],
      handler: async (ctx) => {
        const text = await fs.readFile(ctx.tasks.greet!.outputs.text!, 'utf8');
        ctx.log('measured ' + text);
        return { chars: text.length, words: text.split(' '), punct: ctx.params.punct };
      },
    },
    shout: {
      needs: ['measure'],
      split: { handler: (ctx) => (ctx.tasks.measure!.result as { words: string[] }).words },
      handler: (ctx) => (ctx.chunk as { value: string }).value.toUpperCase(),
      combine: { handler: (ctx) => ctx.chunks!.results.join(' ') },
    },
    report: {
      needs: ['measure', 'shout'],
      run: 'echo {{ tasks.measure.result.chars }} {{ tasks.shout.result }}{{ tasks.measure.result.punct }}',
    },
  },
});

export const tiny = defineWorkflow({
  name: 'sdk-tiny',
  tasks: { answer: { handler: () => ({ answer: 42 }) }, echo: { needs: 'answer', run: ['echo', '{{ tasks.answer.result.answer }}'] } },
});
`;

/** A TypeScript workflow with mistakes only the validator sees (its types are fine). */
export const BAD_FLOW = `
import { defineWorkflow } from 'gantry';

export const bad = defineWorkflow({
  name: 'sdk-bad',
  tasks: {
    a: { run: 'true', timeout: 'soon' },
    b: { needs: ['a'], run: 'echo {{ tasks.zz.result }}' },
    c: { needs: ['b'], handler: async () => 1, run: 'true' },
  },
});
`;
