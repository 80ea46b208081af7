// Schemas of GET /api/v1/acct (acct.ts): the route parses with them and the
// OpenAPI document is generated from them.
import { z } from 'zod';
import { ACCT_KEYS, type AcctKey, type AcctRow } from '../store/acctRows.js';
import { component, timeParam } from './schemas.js';

/** `by` absent: per namespace; empty (`by=`): one total line only. */
export const acctBy = z
  .union([z.string(), z.array(z.string())])
  .transform((v, ctx) => {
    const names = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    const bad = names.filter((n) => !(ACCT_KEYS as readonly string[]).includes(n));
    if (bad.length) {
      ctx.addIssue({ code: 'custom', message: `cannot group by ${bad.map((b) => `'${b}'`).join(', ')}: use ${ACCT_KEYS.join(', ')} (comma-separated)` });
      return z.NEVER;
    }
    return [...new Set(names)] as AcctKey[];
  });

export const acctQuery = z.object({
  since: timeParam.optional().meta({ description: 'attempts that ended at or after this time: epoch ms, ISO 8601, or a duration ago (30m, 2h, 7d)' }),
  until: timeParam.optional().meta({ description: 'attempts that ended before this time' }),
  by: acctBy.optional().meta({
    description: `what to group by, comma-separated or repeated: ${ACCT_KEYS.join(', ')} (default namespace; empty: the total only). A task is grouped within its workflow and a workflow within its namespace`,
  }),
  namespace: z.string().min(1).optional().meta({ description: 'only attempts of runs of this namespace' }),
});

const count = z.number().int();
export const acctRowSchema = component(
  'AcctRow',
  z.object({
    namespace: z.string().optional(),
    workflow: z.string().optional(),
    task: z.string().optional(),
    worker: z.string().optional(),
    attempts: count.meta({ description: 'attempts that ended in the range' }),
    succeeded: count,
    failed: count.meta({ description: 'failed or timed out (the rest were lost, cancelled or skipped)' }),
    wallMs: z.number().meta({ description: 'wall-clock time of the attempts, start to end (ms)' }),
    cpuMs: z.number().meta({ description: "CPU time (user + system) of the measured attempts' process trees (ms)" }),
    measured: count.meta({ description: 'attempts with a measurement (commands: not handlers, lost or cancelled attempts)' }),
    maxRssBytes: z.number().nullable().meta({ description: 'the highest peak resident memory of one attempt; null: none measured' }),
    meanRssBytes: z.number().nullable().meta({ description: "the mean of the measured attempts' peaks; null: none measured" }),
  }),
  'what the attempts of one group used',
);
export const acctResponse = z.object({
  by: z.array(z.enum(ACCT_KEYS)).meta({ description: 'the keys each group has (those asked for and the ones above them)' }),
  since: z.number().nullable(),
  until: z.number().nullable(),
  groups: z.array(acctRowSchema).meta({ description: 'one per group, in key order' }),
  total: acctRowSchema.meta({ description: 'every group together' }),
});

export type AcctReport = z.output<typeof acctResponse>;

// drift check: the schema describes exactly the store's row
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same: Same<z.infer<typeof acctRowSchema>, AcctRow> = true;
void same;
