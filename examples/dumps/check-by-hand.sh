#!/usr/bin/env bash
# check-by-hand.sh: run the `dumps` workflow WITHOUT Gantry, the way Gantry's
# engine runs it, and check what it produced.
#
#   examples/dumps/check-by-hand.sh            # simplewiki, 20261124, 20000 pages
#   WIKI=enwiktionary PAGES=2000 KEEP=1 examples/dumps/check-by-hand.sh
#
# On a copy of this folder in a temp dir (the "workflow folder"), for every
# task of dumps.yaml, in dependency order (tasks of one level in parallel):
#   - the task's templates are rendered from dumps.yaml itself, by a small
#     stand-in for the engine's renderer: in a shell string every value is
#     single-quoted; outputs are relative to the workflow folder;
#   - {{ outputs.x }} is a STAGING path (another file name, in a hidden
#     staging folder); {{ tasks.T.outputs.x }} is T's final path;
#   - a `run` string goes to /bin/sh -c in the workflow folder, with only
#     PATH, HOME, GANTRY_PARAM_* and GANTRY_RESULT in the environment; a
#     `handler` is imported with tsx and called with a fake context;
#   - on success the staged files are moved into place; a task whose outputs
#     all exist is skipped.
# Then: the checksum files are verified in the data and the public folders,
# all archives are tested, the output is checked for determinism, a second
# pass must skip every task, a hostile wiki name must be refused, and an
# aborted publish must leave no dumpstatus.json.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
WIKI=${WIKI:-simplewiki}
DATE=${DATE:-20261124}
PAGES=${PAGES:-20000}
RUN_ID=${RUN_ID:-check-$$}

tsx=$root/node_modules/.bin/tsx
[ -x "$tsx" ] || { echo "check-by-hand: $tsx not found (npm install in $root first)" >&2; exit 2; }
node -e "require('$root/node_modules/yaml')" 2>/dev/null || { echo "check-by-hand: the yaml package is not installed in $root" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gantry-dumps-check.XXXXXX")
if [ -n "${KEEP:-}" ]; then echo "keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
wf=$tmp/dumps
mkdir -p "$wf" "$tmp/results" "$tmp/logs"
cp -p "$here/dumps.yaml" "$here/dump.sh" "$here/publish.ts" "$wf/"
cp -rp "$here/lib" "$wf/"
# As in the repo, .ts files are ES modules.
echo '{ "type": "module" }' > "$tmp/package.json"

fail() { echo "FAIL: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------------------
# The stand-in renderer. Same rules as src/spec/template.ts: missing values are
# errors, non-strings render as JSON, shell values are always single-quoted.
cat > "$tmp/render.mjs" <<'EOF'
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
const require = createRequire(process.env.GANTRY_ROOT + '/package.json');
const YAML = require('yaml');

const [file, what, task, ...rest] = process.argv.slice(2);
const wf = YAML.parse(readFileSync(file, 'utf8'));
const dir = path.dirname(path.resolve(file));
const given = JSON.parse(process.env.CHECK_PARAMS || '{}');
const params = {};
for (const [k, p] of Object.entries(wf.params ?? {})) params[k] = k in given ? given[k] : p.default;
const run = { id: process.env.CHECK_RUN_ID, date: process.env.CHECK_DATE };
const tasks = wf.tasks;

const text = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
function render(tpl, ctx, quote, where) {
  return tpl.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (m, expr) => {
    let cur = ctx;
    for (const seg of expr.split('.')) cur = cur != null && Object.hasOwn(cur, seg) ? cur[seg] : undefined;
    if (cur === undefined) throw new Error(`${where}: ${m}: no such value`);
    return Array.isArray(cur) ? cur.map((e) => (quote ? q(text(e)) : text(e))).join(' ') : quote ? q(text(cur)) : text(cur);
  });
}
const base = { params, run };
function finals(id) {
  const out = {};
  for (const [k, t] of Object.entries(tasks[id].outputs ?? {})) out[k] = path.resolve(dir, render(t, base, false, `${id}.outputs.${k}`));
  return out;
}
function ctxFor(id, staging) {
  const up = {};
  for (const n of tasks[id].needs ?? []) {
    const r = path.join(process.env.CHECK_RESULTS, n + '.json');
    up[n] = { outputs: finals(n), result: existsSync(r) ? JSON.parse(readFileSync(r, 'utf8') || 'null') : null };
  }
  return { params, run, outputs: staging, tasks: up };
}
function checkRefs(id) {
  // every {{ tasks.X... }} names a direct need and an output X declares
  const t = tasks[id];
  const src = JSON.stringify([t.run ?? '', t.handler ?? '']);
  for (const [, x, kind, name] of src.matchAll(/\{\{\s*tasks\.([\w-]+)\.(\w+)(?:\.(\w+))?\s*\}\}/g)) {
    if (!(t.needs ?? []).includes(x)) throw new Error(`${id}: uses tasks.${x} but does not need it`);
    if (kind === 'outputs' && !(name in (tasks[x].outputs ?? {}))) throw new Error(`${id}: tasks.${x} has no output ${name}`);
  }
  for (const [, name] of src.matchAll(/\{\{\s*outputs\.(\w+)\s*\}\}/g)) {
    if (!(name in (t.outputs ?? {}))) throw new Error(`${id}: {{ outputs.${name} }} is not declared`);
  }
}
const staging = Object.fromEntries(rest.map((a) => a.split(/=(.*)/s).slice(0, 2)));

switch (what) {
  case 'levels': { // task ids by level of the DAG, one level a line
    const level = {};
    const lv = (id) => (level[id] ??= 1 + Math.max(0, ...(tasks[id].needs ?? []).map(lv)));
    Object.keys(tasks).forEach((id) => { checkRefs(id); lv(id); });
    const by = [];
    for (const [id, l] of Object.entries(level)) (by[l - 1] ??= []).push(id);
    console.log(by.map((ids) => ids.join(' ')).join('\n'));
    break;
  }
  case 'outputs': for (const [k, f] of Object.entries(finals(task))) console.log(`${k}\t${f}`); break;
  case 'kind': console.log(tasks[task].handler ? 'handler' : Array.isArray(tasks[task].run) ? 'argv' : 'shell'); break;
  case 'shell': process.stdout.write(render(tasks[task].run, ctxFor(task, staging), true, `${task}.run`)); break;
  case 'argv': process.stdout.write(tasks[task].run.map((a) => render(a, ctxFor(task, staging), false, task) + '\0').join('')); break;
  case 'handler': { const [m, e] = tasks[task].handler.split('#'); console.log(`${path.resolve(dir, m)}\t${e}`); break; }
  case 'ctx': console.log(JSON.stringify(ctxFor(task, staging))); break;
  case 'env': for (const [k, v] of Object.entries(params)) console.log(`GANTRY_PARAM_${k.toUpperCase().replace(/[^A-Z0-9]/g, '_')}=${text(v)}`); break;
  default: throw new Error(`render.mjs: unknown request ${what}`);
}
EOF

# The stand-in worker for handlers: import, call with a fake context, print the result.
cat > "$tmp/run-handler.mts" <<'EOF'
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [modulePath, exportName, ctxFile, resultFile, abort] = process.argv.slice(2);
const data = JSON.parse(readFileSync(ctxFile!, 'utf8'));
const mod = await import(pathToFileURL(modulePath!).href);
const ac = new AbortController();
if (abort === 'abort') ac.abort(new Error('cancelled by check-by-hand'));
let last = -1;
const ctx = {
  ...data,
  log: (msg: string) => console.error(`[log] ${msg}`),
  progress: (n: number) => { if (n !== last) console.error(`gantry-progress ${(last = n)}`); },
  signal: ac.signal,
};
const result = await mod[exportName!](ctx);
writeFileSync(resultFile!, JSON.stringify(result));
console.log(JSON.stringify(result));
EOF

export GANTRY_ROOT=$root CHECK_RUN_ID=$RUN_ID CHECK_DATE=$DATE CHECK_RESULTS=$tmp/results
export CHECK_PARAMS="{\"wiki\": \"$WIKI\", \"pages\": $PAGES}"
render() { node "$tmp/render.mjs" "$wf/dumps.yaml" "$@"; }

# run_task TASK [abort]: one job, as the engine would run it. Returns the
# command's exit status; prints "skipped" when every output already exists.
run_task() {
  local task=$1 mode=${2:-} t0 rc=0 kind name final stage args=() finals=() log=$tmp/logs/$1.log
  local sdir=$wf/.gantry/staging/$RUN_ID/$task
  while IFS=$'\t' read -r name final; do finals+=("$name=$final"); done < <(render outputs "$task")
  local all=1
  for nf in "${finals[@]}"; do [ -e "${nf#*=}" ] || all=0; done
  if [ ${#finals[@]} -gt 0 ] && [ $all = 1 ] && [ "$mode" != abort ]; then echo "[$task] skipped: all outputs exist"; return 0; fi
  rm -rf "$sdir"; mkdir -p "$sdir"
  for nf in "${finals[@]}"; do
    name=${nf%%=*}; final=${nf#*=}
    args+=("$name=$sdir/.$name.$RANDOM$RANDOM.staged")
  done
  kind=$(render kind "$task")
  local -a envv=(env -i PATH="$PATH" HOME="$HOME" GANTRY_RESULT="$tmp/results/$task.json")
  while IFS= read -r kv; do envv+=("$kv"); done < <(render env)
  t0=$(now)
  case $kind in
    shell)
      local cmd; cmd=$(render shell "$task" "${args[@]}")
      echo "[$task] \$ $cmd"
      (cd "$wf" && "${envv[@]}" /bin/sh -c "$cmd") 2> "$log" || rc=$? ;;
    argv)
      local -a argv; mapfile -d '' argv < <(render argv "$task" "${args[@]}")
      echo "[$task] exec ${argv[*]}"
      (cd "$wf" && "${envv[@]}" "${argv[@]}") 2> "$log" || rc=$? ;;
    handler)
      local mod exp; IFS=$'\t' read -r mod exp < <(render handler "$task")
      render ctx "$task" "${args[@]}" > "$tmp/$task.ctx.json"
      echo "[$task] handler $mod#$exp"
      # from $tmp, not the workflow folder: a handler must not depend on the worker's cwd
      (cd "$tmp" && "$tsx" "$tmp/run-handler.mts" "$mod" "$exp" "$tmp/$task.ctx.json" "$tmp/results/$task.json" "$mode") \
        > "$tmp/logs/$task.out" 2> "$log" || rc=$? ;;
  esac
  local took; took=$(secs "$t0" "$(now)")
  if [ $rc != 0 ]; then
    echo "[$task] FAILED (exit $rc, ${took}s); staged files deleted. stderr:"; sed 's/^/    /' "$log"
    rm -rf "$sdir"; return $rc
  fi
  # Progress lines: integers 0..100, never going back.
  local p; p=$(awk '/^gantry-progress /{ n++; if ($2 !~ /^[0-9]+$/ || $2 > 100 || $2 < last) bad = 1; last = $2 }
                 END { if (bad) print "BAD"; else if (n) printf "%d progress lines, last %d", n, last; else print "no progress" }' "$log")
  [ "$p" != BAD ] || fail "$task: malformed or decreasing gantry-progress lines"
  for i in "${!finals[@]}"; do
    final=${finals[$i]#*=}; stage=${args[$i]#*=}
    [ -s "$stage" ] || fail "$task: staged output '$stage' was not written"
    [ ! -e "$final" ] || fail "$task: wrote its final path '$final' itself"
    mkdir -p "$(dirname "$final")"; mv "$stage" "$final"
  done
  rm -rf "$sdir"
  echo "[$task] ok in ${took}s ($p)$( [ -s "$tmp/results/$task.json" ] && printf ', result %s' "$(tr -d '\n' < "$tmp/results/$task.json")")"
}

run_all() {
  local level task pids
  while read -r level; do
    pids=()
    for task in $level; do run_task "$task" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || fail "a task of level [$level] failed"; done
  done < <(render levels)
}

echo "== dumps: wiki=$WIKI date=$DATE pages=$PAGES in $wf"
start=$(now)
run_all
total=$(secs "$start" "$(now)")
echo "== all tasks done in ${total}s"

# ---------------------------------------------------------------------------
data=$wf/out/$WIKI/$DATE
pub=$wf/out/public/$WIKI/$DATE
prefix=$WIKI-$DATE
echo "== checking $data"
ls -l "$data" "$pub" | sed 's/^/    /'
(cd "$data" && md5sum --quiet -c "$prefix-md5sums.txt" && sha1sum --quiet -c "$prefix-sha1sums.txt") || fail "checksums do not match the data files"
[ "$(wc -l < "$data/$prefix-md5sums.txt")" = 4 ] || fail "md5sums.txt should list 4 files"
grep -q "  $prefix-pages-articles.xml.bz2\$" "$data/$prefix-md5sums.txt" || fail "md5sums.txt must list base names"
gzip -t "$data/$prefix-stub-articles.xml.gz" "$data/$prefix-abstract.xml.gz" "$data/$prefix-pages-articles.xml.gz"
bzip2 -t "$data/$prefix-pages-articles.xml.bz2"
n=$(bzip2 -dc "$data/$prefix-pages-articles.xml.bz2" | grep -c '^  <page>')
[ "$n" = "$PAGES" ] || fail "articles have $n pages, expected $PAGES"
n=$(gzip -dc "$data/$prefix-abstract.xml.gz" | grep -c '^<doc>')
[ "$n" = "$PAGES" ] || fail "abstracts have $n docs, expected $PAGES"
cmp -s <(bzip2 -dc "$data/$prefix-pages-articles.xml.bz2") <(gzip -dc "$data/$prefix-pages-articles.xml.gz") ||
  fail "the .gz and .bz2 articles differ"
[ "$(bzip2 -dc "$data/$prefix-pages-articles.xml.bz2" | tail -n 1)" = "</mediawiki>" ] || fail "articles XML is truncated"
# Every <text> holds exactly the bytes its stub announced.
bzip2 -dc "$data/$prefix-pages-articles.xml.bz2" | awk '
  /<text bytes="/ { inside = 1; n = $0; sub(/.*<text bytes="/, "", n); sub(/".*/, "", n); t = $0; sub(/.*xml:space="preserve">/, "", t); got = length(t) }
  inside && !/<text bytes="/ { got += 1 + length($0) }
  inside && /<\/text>$/ { got -= length("</text>"); if (got != n) { print "text of " n " bytes has " got > "/dev/stderr"; bad = 1; exit } inside = 0 }
  END { exit bad }' || fail "a <text> does not have the size its stub announced"

echo "== checking the published copy in $pub"
(cd "$pub" && md5sum --quiet -c "$prefix-md5sums.txt" && sha1sum --quiet -c "$prefix-sha1sums.txt") || fail "published files do not match their checksums"
[ -s "$pub/dumpstatus.json" ] || fail "no dumpstatus.json"
[ -z "$(find "$pub" -name '.*partial*')" ] || fail "publish left temporary files behind"
node -e '
  const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const r = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
  const n = Object.values(s.jobs).reduce((a, j) => a + Object.keys(j.files).length, 0);
  if (s.status !== "done" || n !== 6 || r.files !== 6 || !(r.bytes > 0)) { console.error(s, r); process.exit(1); }
  console.log(`    dumpstatus.json: ${n} files; publish returned ${JSON.stringify(r)}`);
' "$pub/dumpstatus.json" "$tmp/results/publish.json" || fail "dumpstatus.json or the publish result is wrong"

echo "== determinism: the stubs again, by hand"
"$wf/dump.sh" stubs --wiki "$WIKI" --pages "$PAGES" --out "$tmp/again.xml.gz" 2>/dev/null
cmp -s "$tmp/again.xml.gz" "$data/$prefix-stub-articles.xml.gz" || fail "stubs are not deterministic"
echo "    same bytes"

echo "== a second pass skips every task"
out=$(run_all)
echo "$out" | sed 's/^/    /'
[ "$(echo "$out" | grep -vc 'skipped: all outputs exist')" = 0 ] || fail "some task ran again"

echo "== an aborted publish writes no dumpstatus.json"
rm -f "$pub/dumpstatus.json"
if run_task publish abort > "$tmp/abort.out" 2>&1; then fail "publish ignored its abort signal"; fi
[ ! -e "$pub/dumpstatus.json" ] || fail "an aborted publish left dumpstatus.json"
echo "    refused: $(grep -m1 -o 'cancelled by check-by-hand' "$tmp/logs/publish.log" || echo '?')"

echo "== a hostile wiki name is refused, quoted as one word"
bad="x'; touch pwned; echo '"
if out=$(cd "$wf" && env -i PATH="$PATH" CHECK_PARAMS="{\"wiki\": \"$(printf '%s' "$bad" | sed 's/"/\\"/g')\", \"pages\": 5}" \
    GANTRY_ROOT="$root" CHECK_RUN_ID=x CHECK_DATE="$DATE" CHECK_RESULTS="$tmp/results" \
    node "$tmp/render.mjs" dumps.yaml shell stubs xml="$tmp/bad.xml.gz"); then
  echo "    \$ $out"
  rc=0; (cd "$wf" && /bin/sh -c "$out") 2> "$tmp/bad.err" || rc=$?
  [ $rc = 2 ] || fail "a bad wiki name should exit 2, got $rc"
  [ ! -e "$wf/pwned" ] && [ ! -e "$tmp/bad.xml.gz" ] || fail "the bad wiki name was not contained"
  sed 's/^/    /' "$tmp/bad.err"
else
  fail "could not render the stubs command"
fi

echo "PASS: dumps for $WIKI ($PAGES pages) ran by hand in ${total}s"
