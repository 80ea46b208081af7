// Namespace settings as both stores keep them (one row per namespace an admin
// configured), and the merge of a partial change into what is stored.
import type { NamespaceSettings, NamespaceSettingsPatch } from './types.js';

export interface NamespaceRowDb {
  namespace: string;
  run_user: string | null;
  run_group: string | null;
  public: number | boolean;
  output_roots: string;
}

/** What a namespace nobody configured has: no user mapping, not public, no output roots. */
export function defaultNamespaceSettings(namespace: string): NamespaceSettings {
  return { namespace, user: null, group: null, public: false, outputRoots: [] };
}

export function toNamespaceSettings(r: NamespaceRowDb): NamespaceSettings {
  return {
    namespace: r.namespace,
    user: r.run_user,
    group: r.run_group,
    public: r.public === true || r.public === 1,
    outputRoots: JSON.parse(r.output_roots) as string[],
  };
}

/** The stored settings after `patch`: absent fields keep their value; output roots keep their order, once each. */
export function mergeNamespaceSettings(current: NamespaceSettings, patch: NamespaceSettingsPatch): NamespaceSettings {
  return {
    namespace: current.namespace,
    user: patch.user !== undefined ? patch.user : current.user,
    group: patch.group !== undefined ? patch.group : current.group,
    public: patch.public ?? current.public,
    outputRoots: patch.outputRoots ? [...new Set(patch.outputRoots)] : current.outputRoots,
  };
}

/** The column values of `s`, in the order namespace, run_user, run_group, public, output_roots. */
export function namespaceValues(s: NamespaceSettings): [string, string | null, string | null, boolean, string] {
  return [s.namespace, s.user, s.group, s.public, JSON.stringify(s.outputRoots)];
}
