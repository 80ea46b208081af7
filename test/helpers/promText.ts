// A strict reader of the Prometheus text exposition format (0.0.4): every line
// must be a HELP, a TYPE, a comment, a blank line or a sample, or it throws.
// Tests read /metrics through it as Prometheus would, not by substring.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
  /** the value of the one sample with this name and exactly these labels; undefined if none */
  get(name: string, labels?: Record<string, string>): number | undefined;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})?[ \\t]+(${VALUE})(?:[ \\t]+-?\\d+)?$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const ONE_LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let m: RegExpExecArray | null;
    if ((m = TYPE.exec(line))) {
      if (types.has(m[1]!)) throw new Error(`line ${i + 1}: a second TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      return;
    }
    if ((m = HELP.exec(line))) return void help.set(m[1]!, m[2]!);
    if (line.startsWith('#')) return;
    if (!(m = SAMPLE.exec(line))) throw new Error(`line ${i + 1} is not in the Prometheus text format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(ONE_LABEL)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const v = m[3]!;
    samples.push({ name: m[1]!, labels, value: v.endsWith('Inf') ? (v.startsWith('-') ? -Infinity : Infinity) : Number(v) });
  });
  // Every sample belongs to a declared family (histograms: _bucket, _sum, _count).
  for (const s of samples) {
    const family = s.name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(s.name) && !types.has(family)) throw new Error(`sample ${s.name} has no TYPE`);
  }
  const same = (a: Record<string, string>, b: Record<string, string>) =>
    Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
  return {
    types,
    help,
    samples,
    get(name, labels = {}) {
      const found = samples.filter((s) => s.name === name && same(s.labels, labels));
      if (found.length > 1) throw new Error(`${name}${JSON.stringify(labels)} is there ${found.length} times`);
      return found[0]?.value;
    },
  };
}
