// Namespace settings over HTTP: an admin maps a namespace to a Unix user and
// group, makes it public (readable without a token) and confines its absolute
// outputs to roots. Readers of a namespace may see its settings.
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { Store } from '../store/types.js';
import { defaultNamespaceSettings, mergeNamespaceSettings } from '../store/namespaceRows.js';
import type { ReadAccess } from './readScope.js';
import { namespaceSettingsBody, namespaceSettingsParam } from './namespaceSchemas.js';

export interface NamespaceRouteOptions {
  store: Store;
  parse: <T>(schema: z.ZodType<T>, value: unknown, where: string) => T;
  reads: ReadAccess;
}

/** A change that would leave a group without a user: refused (400) by the route. */
export class GroupWithoutUser extends Error {}

export function registerNamespaceRoutes(app: FastifyInstance, o: NamespaceRouteOptions): void {
  const { store, parse, reads } = o;

  app.get('/api/v1/namespaces', async (req) => {
    const visible = await reads.visible(req);
    return { namespaces: (await store.listNamespaceSettings()).filter((s) => visible(s.namespace)) };
  });

  app.get('/api/v1/namespaces/:namespace', async (req) => {
    const { namespace } = parse(namespaceSettingsParam, req.params, 'path');
    await reads.requireNamespace(req, namespace);
    return (await store.getNamespaceSettings(namespace)) ?? defaultNamespaceSettings(namespace);
  });

  // admin only (the default for a mutation)
  app.put('/api/v1/namespaces/:namespace', async (req) => {
    const { namespace } = parse(namespaceSettingsParam, req.params, 'path');
    const patch = parse(namespaceSettingsBody, req.body, 'body');
    const next = mergeNamespaceSettings((await store.getNamespaceSettings(namespace)) ?? defaultNamespaceSettings(namespace), patch);
    if (next.group !== null && next.user === null)
      throw new GroupWithoutUser(`body.group: namespace '${namespace}' would have group '${next.group}' and no user: give a user too (or group: null)`);
    const saved = await store.setNamespaceSettings(namespace, patch);
    reads.invalidate();
    return saved;
  });
}
