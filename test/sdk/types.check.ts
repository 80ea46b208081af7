// Compile-time tests of defineWorkflow's types, checked by `npm run typecheck`
// (tsconfig.check.json); never run. Each `@ts-expect-error` must meet an error:
// if the types stop catching the mistake, the unused directive fails the typecheck.
import { defineWorkflow, type AnyWorkflow } from '../../src/index.js';

const ok: AnyWorkflow = defineWorkflow({
  name: 'typed',
  params: {
    wiki: { required: true },
    size: { default: 'regular', enum: ['regular', 'large'] },
    parts: { default: 4 },
    note: { description: 'optional, no default' },
  },
  defaults: { retries: { max: 2, delay: '10s' }, timeout: '1h' },
  tasks: {
    fetch: { run: 'echo {{ params.wiki }} > {{ outputs.list }}', outputs: { list: 'out/list.txt' } },
    count: {
      needs: ['fetch'],
      handler: async (ctx) => {
        const size: 'regular' | 'large' = ctx.params.size;
        const parts: number = ctx.params.parts;
        const wiki: unknown = ctx.params.wiki;
        const note: unknown = ctx.params.note;
        ctx.progress(50);
        return { size, parts, wiki, note, list: ctx.tasks.fetch?.outputs.list };
      },
    },
    split: { needs: 'count', split: { handler: () => [1, 2] }, handler: (ctx) => ctx.chunk, combine: 'true' },
    sub: { needs: ['split'], workflow: 'other', with: { wiki: '{{ params.wiki }}' } },
  },
});
void ok;

defineWorkflow({
  name: 'bad-needs',
  tasks: {
    a: { run: 'true' },
    // @ts-expect-error a `needs` naming a task the workflow does not have
    b: { needs: ['nope'], run: 'true' },
  },
});

defineWorkflow({
  name: 'bad-needs-string',
  tasks: {
    a: { run: 'true' },
    // @ts-expect-error needs as one id, unknown
    b: { needs: 'aa', run: 'true' },
  },
});

defineWorkflow({
  name: 'bad-param',
  params: { wiki: { required: true } },
  tasks: {
    a: {
      handler: (ctx) => {
        // @ts-expect-error a parameter the workflow does not declare
        return ctx.params.wikki;
      },
    },
  },
});

defineWorkflow({
  name: 'bad-param-type',
  params: { size: { default: 'regular', enum: ['regular', 'large'] } },
  tasks: {
    a: {
      handler: (ctx) => {
        // @ts-expect-error the enum's values only
        const s: 'small' = ctx.params.size;
        return s;
      },
    },
  },
});

defineWorkflow({
  name: 'bad-upstream',
  tasks: {
    a: { run: 'true' },
    b: {
      needs: ['a'],
      // @ts-expect-error tasks are known by id
      handler: (ctx) => ctx.tasks.zz,
    },
  },
});

defineWorkflow({
  name: 'bad-field',
  tasks: {
    // @ts-expect-error a field the format does not have
    a: { run: 'true', retry: 3 },
  },
});
