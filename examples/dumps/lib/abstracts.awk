# abstracts.awk: stub XML in, an "abstract" feed out (<wiki>-<date>-abstract.xml),
# one <doc> per page: title, URL and the first sentence of the page's text with
# the markup stripped. The text comes from the same generator as articles.awk,
# so an abstract always agrees with its article. Needs -v wiki=DB.

BEGIN { site_of(wiki); print "<feed>" }
/^    <title>/ { t = $0; sub(/^ *<title>/, "", t); sub(/<\/title>$/, "", t) }
/^    <revision>/ { inrev = 1 }
/^      <id>/ && inrev { rev = $0; gsub(/[^0-9]/, "", rev); inrev = 0 }
/^      <text bytes="/ {
    n = $0; sub(/^ *<text bytes="/, "", n); sub(/".*/, "", n)
    a = gen_text(rev + 0, (n + 0 < 400 ? n + 0 : 400), t, 1)
    gsub(/'''|\[\[|\]\]/, "", a)
    if ((k = index(a, ". ")) > 0) a = substr(a, 1, k)    # the first sentence
    sub(/\n.*/, "", a)
    url = t; gsub(/ /, "_", url)
    print "<doc>"
    print "<title>" SITE_NAME ": " t "</title>"
    print "<url>https://" SITE_HOST "/wiki/" url "</url>"
    print "<abstract>" a "</abstract>"
    print "<links>"
    print "</links>"
    print "</doc>"
}
END { print "</feed>" }
