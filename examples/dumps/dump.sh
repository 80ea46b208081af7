#!/usr/bin/env bash
# dump.sh: the shell stages of the example `dumps` workflow (see dumps.yaml).
#
#   dump.sh stubs      --wiki DB --pages N   --out FILE.xml.gz
#   dump.sh articles   --wiki DB --stubs FILE.xml.gz  --out FILE.xml.bz2
#   dump.sh abstracts  --wiki DB --stubs FILE.xml.gz  --out FILE.xml.gz
#   dump.sh recompress --in FILE.xml.bz2 --out FILE.xml.gz
#   dump.sh checksums  --md5 FILE --sha1 FILE DATAFILE...
#
# Each stage writes exactly one file (two for checksums) at the path it is
# given, which under Gantry is a staging path: the engine moves it into place
# only when the stage succeeded, so this script never needs temp files or
# cleanup. All output is a pure function of the wiki name and the page count:
# same input, byte-identical files (gzip -n stores no name or time), so the
# checksums of a rerun match those of the first run.
#
# Exit codes: 0 done, 1 a stage failed, 2 bad usage (bad wiki name, ...).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# mawk is ~1.5x faster than gawk here; both print the same bytes.
AWK=${AWK:-$(command -v mawk || command -v awk)}

die() { echo "dump.sh: $*" >&2; exit 2; }
failed() { echo "dump.sh: $stage: $*" >&2; exit 1; }
progress() { echo "gantry-progress $1" >&2; }
# A small JSON result for Gantry ({{ tasks.<id>.result }}); optional.
result() { if [ -n "${GANTRY_RESULT:-}" ]; then printf '%s\n' "$1" > "$GANTRY_RESULT"; fi; }
size() { if [ -f "$1" ]; then wc -c < "$1" | tr -d ' '; else echo null; fi; }

[ $# -ge 1 ] || die "usage: dump.sh stubs|articles|abstracts|recompress|checksums [options]"
stage=$1; shift

wiki='' pages='' out='' stubs='' in='' md5='' sha1=''
files=()
while [ $# -gt 0 ]; do
  case $1 in
    --wiki|--pages|--out|--stubs|--in|--md5|--sha1)
      [ $# -ge 2 ] || die "$1 needs a value"
      declare "${1#--}=$2"; shift 2 ;;
    --) shift; files+=("$@"); break ;;
    -*) die "unknown option '$1'" ;;
    *) files+=("$1"); shift ;;
  esac
done

check_wiki() {
  [ -n "$wiki" ] || die "$stage: --wiki is required"
  # A database name as in Wikimedia's dblists (simplewiki, enwiktionary,
  # zh_min_nanwiki). It ends up in file names and URLs, so nothing else passes.
  [[ $wiki =~ ^[a-z0-9_]+$ ]] ||
    die "invalid wiki name '$wiki': expected a database name such as simplewiki or enwiktionary (only a-z, 0-9 and _)"
}
need() { for v in "$@"; do [ -n "${!v}" ] || die "$stage: --$v is required"; done; }
need_file() { [ -s "$1" ] || failed "input '$1' is missing or empty"; }

case $stage in
  stubs)
    check_wiki; need pages out
    [[ $pages =~ ^[1-9][0-9]{0,6}$ ]] || die "--pages must be a whole number from 1 to 9999999, got '$pages'"
    "$AWK" -v wiki="$wiki" -v pages="$pages" -f "$here/lib/text.awk" -f "$here/lib/stubs.awk" </dev/null |
      gzip -6 -n > "$out" || failed "generating the stubs failed"
    result "{\"pages\": $pages, \"bytes\": $(size "$out")}"
    ;;

  articles)
    check_wiki; need stubs out; need_file "$stubs"
    progress 0
    # A first, cheap pass counts the pages so that progress is a percentage.
    total=$(gzip -dc "$stubs" | grep -c '^  <page>' || true)
    [ "${total:-0}" -gt 0 ] || failed "no <page> in '$stubs'"
    gzip -dc "$stubs" |
      "$AWK" -v wiki="$wiki" -v total="$total" -f "$here/lib/text.awk" -f "$here/lib/articles.awk" |
      bzip2 -9 > "$out" || failed "cannot read '$stubs' (truncated or corrupt?)"
    result "{\"pages\": $total, \"bytes\": $(size "$out")}"
    ;;

  abstracts)
    check_wiki; need stubs out; need_file "$stubs"
    gzip -dc "$stubs" |
      "$AWK" -v wiki="$wiki" -f "$here/lib/text.awk" -f "$here/lib/abstracts.awk" |
      gzip -9 -n > "$out" || failed "cannot read '$stubs' (truncated or corrupt?)"
    result "{\"bytes\": $(size "$out")}"
    ;;

  recompress)
    need in out; need_file "$in"
    progress 0
    # A truncated or corrupt input makes bzip2 fail, and pipefail fails the stage.
    bzip2 -dc "$in" | gzip -9 -n > "$out" || failed "cannot decompress '$in' (truncated or corrupt?)"
    progress 100
    result "{\"bytes\": $(size "$out")}"
    ;;

  checksums)
    need md5 sha1
    [ ${#files[@]} -gt 0 ] || die "checksums: no data files given"
    : > "$md5"; : > "$sha1"
    for f in "${files[@]}"; do
      need_file "$f"
      # Listed by base name, as on dumps.wikimedia.org, so that
      # `md5sum -c` works in the folder the files are published in.
      name=$(basename "$f")
      printf '%s  %s\n' "$(md5sum < "$f" | cut -d' ' -f1)" "$name" >> "$md5"
      printf '%s  %s\n' "$(sha1sum < "$f" | cut -d' ' -f1)" "$name" >> "$sha1"
    done
    result "{\"files\": ${#files[@]}}"
    ;;

  *) die "unknown stage '$stage' (stubs, articles, abstracts, recompress, checksums)" ;;
esac
