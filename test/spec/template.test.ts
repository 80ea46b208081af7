import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  paramEnv, renderArgv, renderLiteral, renderShell, shellQuote, templateRefs, TemplateError, type TemplateContext,
} from '../../src/spec/index.js';
import { tempDir } from './helpers.js';

const ctx = (over: Partial<TemplateContext> = {}): TemplateContext => ({
  params: { wiki: 'enwiki', n: 3, flag: true, list: ['a b', "c'd"] },
  run: { id: 'r1', date: '20250101' },
  outputs: { xml: '/data/x.xml' },
  tasks: { stubs: { outputs: { xml: '/s.xml' }, result: { count: 7, parts: ['p0', 'p1'] } } },
  ...over,
});

describe('shellQuote', () => {
  it('always single-quotes, even safe strings', () => {
    expect(shellQuote('abc')).toBe("'abc'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});

describe('templateRefs', () => {
  it('lists references with paths and offsets; whitespace inside braces is optional', () => {
    expect(templateRefs('x {{params.wiki}} {{ tasks.a.result.parts[1] }}')).toEqual([
      { path: ['params', 'wiki'], index: 2, text: '{{params.wiki}}' },
      { path: ['tasks', 'a', 'result', 'parts', '1'], index: 18, text: '{{ tasks.a.result.parts[1] }}' },
    ]);
  });

  it('throws TemplateError on unterminated or malformed references', () => {
    expect(() => templateRefs('echo {{ params.x')).toThrow(TemplateError);
    expect(() => templateRefs('echo {{ params.x')).toThrow("unterminated '{{'");
    expect(() => templateRefs('{{ a..b }}')).toThrow("'{{ a..b }}' is not a valid reference");
    expect(() => templateRefs('{{ $(rm) }}')).toThrow(TemplateError);
  });
});

describe('renderShell', () => {
  it('quotes every value; numbers and booleans too', () => {
    expect(renderShell('dump --wiki {{ params.wiki }} -n {{params.n}} {{ params.flag }} > {{ outputs.xml }}', ctx()))
      .toBe("dump --wiki 'enwiki' -n '3' 'true' > '/data/x.xml'");
  });

  it('renders a list as separate quoted words and an object as quoted JSON', () => {
    expect(renderShell('cat {{ params.list }}', ctx())).toBe("cat 'a b' 'c'\\''d'");
    expect(renderShell('echo {{ tasks.stubs.result }}', ctx())).toBe(`echo '{"count":7,"parts":["p0","p1"]}'`);
    expect(renderShell('echo {{ tasks.stubs.result.parts[1] }}', ctx())).toBe("echo 'p1'");
  });

  it('throws on a missing value instead of rendering it empty', () => {
    expect(() => renderShell('x {{ tasks.stubs.result.missing }}', ctx())).toThrow(TemplateError);
    expect(() => renderShell('x {{ tasks.stubs.result.count.deeper }}', ctx())).toThrow('{{ tasks.stubs.result.count.deeper }}: no such value');
    expect(() => renderShell('{{ item }}', ctx())).toThrow('{{ item }}: no such value');
    expect(() => renderShell('{{ params.toString }}', ctx())).toThrow('no such value');
  });

  it('a parameter full of shell syntax arrives as exactly one literal argument, and nothing else runs', () => {
    const dir = tempDir();
    const marker = path.join(dir, 'pwned');
    const script = path.join(dir, 'echo-args');
    fs.writeFileSync(script, '#!/bin/sh\necho "$#"\nfor a in "$@"; do printf \'%s\\n\' "[$a]"; done\n', { mode: 0o755 });
    const evil = `x'; rm -rf "$HOME"; touch ${marker}; echo '$(touch ${marker})\`touch ${marker}\`;`;
    const rendered = renderShell(`${script} {{ params.p }}`, ctx({ params: { p: evil } }));
    // HOME points into the temp dir so even a successful injection could not hurt anything real.
    const out = execFileSync('/bin/sh', ['-c', rendered], { env: { PATH: process.env.PATH ?? '', HOME: dir }, encoding: 'utf8' });
    expect(out).toBe(`1\n[${evil}]\n`);
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.existsSync(script)).toBe(true);
  });

  it('a list parameter arrives as separate arguments, each intact', () => {
    const rendered = renderShell(`printf '%s\\n' {{ params.list }}`, ctx({ params: { list: ['a b', '$HOME', "'"] } }));
    expect(execFileSync('/bin/sh', ['-c', rendered], { encoding: 'utf8' })).toBe("a b\n$HOME\n'\n");
  });
});

describe('renderLiteral', () => {
  it('substitutes without quoting; non-strings as JSON', () => {
    expect(renderLiteral('/data/{{ params.wiki }}/{{ run.date }}/{{ params.n }}', ctx())).toBe('/data/enwiki/20250101/3');
    expect(renderLiteral('{{ params.list }}', ctx())).toBe(`["a b","c'd"]`);
    expect(() => renderLiteral('{{ run.nope }}', ctx())).toThrow('{{ run.nope }}: no such value');
  });
});

describe('renderArgv', () => {
  it('renders each element literally and expands an element that is exactly one list reference', () => {
    expect(renderArgv(['7z', 'a', '{{ outputs.xml }}', '{{ params.list }}', '--n={{ params.n }}', 'x{{ params.list }}'], ctx()))
      .toEqual(['7z', 'a', '/data/x.xml', 'a b', "c'd", '--n=3', `x["a b","c'd"]`]);
  });

  it('throws on missing values', () => {
    expect(() => renderArgv(['{{ chunk.start }}'], ctx())).toThrow('{{ chunk.start }}: no such value');
  });
});

describe('paramEnv', () => {
  it('names variables GANTRY_PARAM_<NAME> and JSON-encodes non-strings', () => {
    expect(paramEnv({ wiki: 'enwiki', 'max-size': 3, list: ['a'], 'a.b': false })).toEqual({
      GANTRY_PARAM_WIKI: 'enwiki',
      GANTRY_PARAM_MAX_SIZE: '3',
      GANTRY_PARAM_LIST: '["a"]',
      GANTRY_PARAM_A_B: 'false',
    });
  });
});
