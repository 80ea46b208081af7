// A workflow in TypeScript: the same model as a YAML file (the same field
// names), with handlers as functions. `gantry up examples` picks it up (every
// *.workflow.ts file), `gantry validate` / `gantry apply` take it by name.
//
//   ./bin/gantry.js run wordcount --wait          # the bundled sample text
//   ./bin/gantry.js run wordcount -p top=3 -p text=/path/to/any.txt --wait
//
// `fetch` is a shell command, `count` splits the text into blocks of lines
// (a function), counts each block in its own job (a function, run by any
// worker) and merges the counts (a function); `report` is a shell command again
// that reads the merged result. Types: `needs` takes only this workflow's task
// ids, and `ctx.params.top` is a number because its default is one.
import { readFile } from 'node:fs/promises';
import { defineWorkflow } from 'gantry';

const LINES_PER_CHUNK = 20;

export default defineWorkflow({
  name: 'wordcount',
  description: 'The most frequent words of a text, counted in parallel blocks',
  params: {
    text: { default: './sample.txt', description: 'a text file (relative to this folder)' },
    top: { default: 5 },
  },
  labels: { example: 'sdk' },
  defaults: { retries: { max: 1, delay: '5s' }, timeout: '10m' },
  tasks: {
    fetch: {
      run: 'cp {{ params.text }} {{ outputs.copy }}',
      outputs: { copy: 'out/{{ run.id }}/text.txt' },
    },
    count: {
      needs: ['fetch'],
      split: {
        handler: async (ctx) => {
          const lines = (await readFile(ctx.tasks.fetch!.outputs.copy!, 'utf8')).split('\n').length;
          const blocks = [];
          for (let from = 0; from < lines; from += LINES_PER_CHUNK) blocks.push({ from, to: Math.min(lines, from + LINES_PER_CHUNK) });
          return blocks;
        },
      },
      handler: async (ctx) => {
        const { from, to } = ctx.chunk as { from: number; to: number };
        const counts: Record<string, number> = {};
        const text = (await readFile(ctx.tasks.fetch!.outputs.copy!, 'utf8')).split('\n').slice(from, to).join(' ');
        for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) counts[word] = (counts[word] ?? 0) + 1;
        return counts;
      },
      combine: {
        handler: (ctx) => {
          const total: Record<string, number> = {};
          for (const counts of ctx.chunks!.results as Array<Record<string, number>>) {
            for (const [word, n] of Object.entries(counts)) total[word] = (total[word] ?? 0) + n;
          }
          const top = Object.entries(total).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, ctx.params.top);
          ctx.log(`${Object.keys(total).length} distinct words`);
          return top.map(([word, n]) => `${word}=${n}`).join(' ');
        },
      },
    },
    report: {
      needs: ['count'],
      run: 'echo top words: {{ tasks.count.result }}',
    },
  },
});
