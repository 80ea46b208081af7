# articles.awk: stub XML in, full "pages-articles" XML out. Every
# <text bytes="N" id="..." /> of the stubs becomes the revision's text: N bytes
# of wikitext generated from (wiki, revision id). Needs -v wiki=DB and
# -v total=<number of pages>, for the `gantry-progress N` lines on stderr.
# (The real dumps get the text from the external storage clusters instead.)

BEGIN { last = -1; if (total + 0 < 1) total = 1 }

/^    <title>/ { t = $0; sub(/^ *<title>/, "", t); sub(/<\/title>$/, "", t) }
/^    <revision>/ { inrev = 1 }
/^      <id>/ && inrev { rev = $0; gsub(/[^0-9]/, "", rev); inrev = 0 }
/^      <text bytes="/ {
    n = $0; sub(/^ *<text bytes="/, "", n); sub(/".*/, "", n)
    printf "      <text bytes=\"%d\" xml:space=\"preserve\">", n
    gen_text(rev + 0, n + 0, t, 0)
    print "</text>"
    next
}
{ print }
/^  <\/page>/ {
    done++
    pct = int(done * 100 / total)
    if (pct != last) { print "gantry-progress " pct > "/dev/stderr"; fflush("/dev/stderr"); last = pct }
}
