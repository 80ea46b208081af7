// Request and response schemas of the namespace settings routes (namespaceRoutes.ts).
import path from 'node:path';
import { z } from 'zod';
import { component, namespaceName } from './schemas.js';

/**
 * A Unix user or group name as useradd/groupadd take them (POSIX portable
 * characters, not starting with '-', at most 32): stored as a name, resolved by
 * each worker on its own host.
 */
export const UNIX_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;
const unixName = (what: string) => z.string().regex(UNIX_NAME, `a Unix ${what} name: letters, digits, _ . - (not starting with - or a digit), at most 32`);

/** An absolute, normalised folder: no `..`, no `.`, no double or trailing slash. */
const outputRoot = z
  .string()
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0') && (p === '/' || (path.posix.normalize(p) === p && !p.endsWith('/'))), {
    message: 'an absolute folder, normalised (no .., no . and no trailing /), such as /srv/dumps',
  });

export const namespaceSettingsParam = z.object({ namespace: namespaceName });

export const namespaceSettingsBody = z
  .object({
    user: unixName('user').nullable().optional().meta({ description: 'the Unix user its jobs run as (null: none)' }),
    group: unixName('group').nullable().optional().meta({ description: "the Unix group its jobs run as (null: the user's own)" }),
    public: z.boolean().optional().meta({ description: 'anyone may read its runs, jobs, logs and events without a token (acting still needs one)' }),
    outputRoots: z.array(outputRoot).max(64).optional().meta({ description: 'folders its absolute outputs must stay under ([]: not confined)' }),
  })
  .strict();

export const namespaceSettingsSchema = component(
  'NamespaceSettings',
  z.object({
    namespace: z.string(),
    user: z.string().nullable(),
    group: z.string().nullable(),
    public: z.boolean(),
    outputRoots: z.array(z.string()),
  }),
  'what an admin set for a namespace (a namespace nobody set: no user, not public, no roots)',
);

export const namespacesResponse = z.object({ namespaces: z.array(namespaceSettingsSchema) });
