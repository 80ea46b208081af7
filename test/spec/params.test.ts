import { describe, expect, it } from 'vitest';
import { resolveParams, type ParamSpec } from '../../src/spec/index.js';

const spec = (params: Record<string, ParamSpec>) => ({ params });
const wf = spec({
  wiki: { required: true },
  size: { required: false, default: 'regular', enum: ['regular', 'large'] },
  jobs: { required: false, default: 4 },
  dry: { required: false, default: false },
  wikis: { required: false, default: ['enwiki'] },
  level: { required: false, enum: [1, 2, 3] },
});

describe('resolveParams', () => {
  it('applies defaults and keeps given strings', () => {
    expect(resolveParams(wf, { wiki: 'dewiki' })).toEqual({
      params: { wiki: 'dewiki', size: 'regular', jobs: 4, dry: false, wikis: ['enwiki'] },
      errors: [],
    });
  });

  it('reports a missing required parameter', () => {
    expect(resolveParams(wf, {}).errors).toEqual(["missing required parameter 'wiki'"]);
  });

  it('reports an unknown parameter with the declared ones', () => {
    expect(resolveParams(wf, { wiki: 'x', wkii: 'y' }).errors)
      .toEqual(["unknown parameter 'wkii' (declared: wiki, size, jobs, dry, wikis, level)"]);
    expect(resolveParams(spec({}), { a: '1' }).errors).toEqual(["unknown parameter 'a' (this workflow declares no parameters)"]);
  });

  it('rejects a value not in the enum, naming value and allowed values', () => {
    expect(resolveParams(wf, { wiki: 'x', size: 'huge' }).errors)
      .toEqual(["parameter 'size' is 'huge', must be one of: regular, large"]);
  });

  it('coerces CLI strings to numbers and booleans when the declaration implies it', () => {
    const r = resolveParams(wf, { wiki: 'x', jobs: '8', dry: 'true', level: '2' });
    expect(r.errors).toEqual([]);
    expect(r.params).toMatchObject({ jobs: 8, dry: true, level: 2 });
    expect(resolveParams(wf, { wiki: 'x', jobs: 'many', dry: 'yes', level: '9' }).errors).toEqual([
      "parameter 'jobs' must be a number, got 'many'",
      "parameter 'dry' must be true or false, got 'yes'",
      "parameter 'level' is '9', must be one of: 1, 2, 3",
    ]);
  });

  it('takes JSON lists for list parameters, and comma lists too', () => {
    expect(resolveParams(wf, { wiki: 'x', wikis: '["a","b"]' }).params.wikis).toEqual(['a', 'b']);
    expect(resolveParams(wf, { wiki: 'x', wikis: 'a, b' }).params.wikis).toEqual(['a', 'b']);
    expect(resolveParams(spec({ any: { required: false } }), { any: '[1,2]' }).params.any).toEqual([1, 2]);
  });

  it('keeps text parameters text even when they look like JSON', () => {
    expect(resolveParams(wf, { wiki: '[enwiki]' }).params.wiki).toBe('[enwiki]');
  });

  it('accepts non-string values given through the API as they are', () => {
    expect(resolveParams(wf, { wiki: 'x', jobs: 2 }).params.jobs).toBe(2);
  });
});
