# stubs.awk: the "stub" dump of one wiki: every page with its latest
# revision's metadata (ids, timestamp, contributor, comment, size, sha1) but
# no text, like <wiki>-<date>-stub-articles.xml.gz. Needs -v wiki=DB -v pages=N.
# Prints `gantry-progress N` lines on stderr.

function xml_header() {
    site_of(wiki)
    print "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.11/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://www.mediawiki.org/xml/export-0.11/ http://www.mediawiki.org/xml/export-0.11.xsd\" version=\"0.11\" xml:lang=\"" SITE_LANG "\">"
    print "  <siteinfo>"
    print "    <sitename>" SITE_NAME "</sitename>"
    print "    <dbname>" wiki "</dbname>"
    print "    <base>https://" SITE_HOST "/wiki/Main_Page</base>"
    print "    <generator>MediaWiki 1.46.0-wmf.3</generator>"
    print "    <case>first-letter</case>"
    print "    <namespaces>"
    print "      <namespace key=\"-2\" case=\"first-letter\">Media</namespace>"
    print "      <namespace key=\"-1\" case=\"first-letter\">Special</namespace>"
    print "      <namespace key=\"0\" case=\"first-letter\" />"
    print "      <namespace key=\"1\" case=\"first-letter\">Talk</namespace>"
    print "      <namespace key=\"2\" case=\"first-letter\">User</namespace>"
    print "      <namespace key=\"4\" case=\"first-letter\">" SITE_NAME "</namespace>"
    print "      <namespace key=\"6\" case=\"first-letter\">File</namespace>"
    print "      <namespace key=\"10\" case=\"first-letter\">Template</namespace>"
    print "      <namespace key=\"14\" case=\"first-letter\">Category</namespace>"
    print "    </namespaces>"
    print "  </siteinfo>"
}

BEGIN {
    if (wiki == "" || pages + 0 < 1) { print "stubs.awk: need -v wiki=DB -v pages=N" > "/dev/stderr"; exit 2 }
    xml_header()
    rseed(hash(wiki))
    pageid = 1 + rnd(50); revid = 1000 + rnd(100000); textid = revid; last = -1
    for (i = 1; i <= pages; i++) {
        t = title()
        if (t in seen) t = t " (" (++seen[t]) ")"
        seen[t] = 1
        pageid += 1 + (rnd(4) ? 0 : rnd(20))
        revid += 1 + rnd(3000)
        # sizes: mostly short articles, a long tail of long ones
        bytes = 150 + rnd(1200) + (rnd(8) ? 0 : rnd(8000))
        ts = sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", 2004 + rnd(22), 1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60), rnd(60))
        user = cap(word()) cap(word()) (rnd(3) ? "" : rnd(1000))
        print "  <page>"
        print "    <title>" t "</title>"
        print "    <ns>0</ns>"
        print "    <id>" pageid "</id>"
        print "    <revision>"
        print "      <id>" revid "</id>"
        print "      <parentid>" (revid - 1 - rnd(500)) "</parentid>"
        print "      <timestamp>" ts "</timestamp>"
        print "      <contributor>"
        print "        <username>" user "</username>"
        print "        <id>" (1 + rnd(2000000)) "</id>"
        print "      </contributor>"
        if (rnd(3)) print "      <comment>" word() " " word() " " word() "</comment>"
        print "      <model>wikitext</model>"
        print "      <format>text/x-wiki</format>"
        print "      <text bytes=\"" bytes "\" id=\"" (textid + i) "\" />"
        print "      <sha1>" base36(31) "</sha1>"
        print "    </revision>"
        print "  </page>"
        pct = int(i * 100 / pages)
        if (pct % 10 == 0 && pct != last) { print "gantry-progress " pct > "/dev/stderr"; fflush("/dev/stderr"); last = pct }
    }
    print "</mediawiki>"
}
