// The SQL of a reader's scope (ReaderScope in types.ts), in either dialect.

/** `column IN (…)` over `namespaces`, each a bound value through `arg`; a condition that holds for no row when the list is empty. */
export function inNamespaces(column: string, namespaces: readonly string[], arg: (v: unknown) => string): string {
  if (namespaces.length === 0) return '1 = 0';
  return `${column} IN (${namespaces.map((n) => arg(n)).join(', ')})`;
}
