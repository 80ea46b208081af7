# text.awk: helpers shared by the stage programs of dump.sh. Load it first:
#   awk -v wiki=simplewiki -f lib/text.awk -f lib/stubs.awk
#
# Everything here is a pure function of the wiki name and a page's revision
# id, so every stage (and every rerun, and every awk: gawk, mawk, busybox)
# derives the same titles and the same article text. Only integer arithmetic
# that stays exact in a double is used (no srand/rand: they differ between
# awks).

BEGIN {
    ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789_"
    B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
    NWORD = split("the of and in to a is was for on as with by that from at " \
        "which it an are were this be has also its first one their had or " \
        "city river village region people north south east west small large " \
        "old new early late century war church school station island lake " \
        "valley mountain family language music album song film game team " \
        "player club league season group company system population area " \
        "county district province capital border coast road bridge railway " \
        "house castle tower market harbour garden forest field farm mill " \
        "bird fish tree flower stone water fire light sound colour number " \
        "name word book story poem letter paper law court king queen duke " \
        "bishop saint army battle treaty union state nation council party " \
        "election member leader writer painter singer actor teacher doctor " \
        "known called used made built found named born died became moved " \
        "lived worked played wrote started opened closed grew joined left " \
        "between during after before since about around near under over " \
        "many most some several other only main local national popular " \
        "important famous common modern ancient public central northern " \
        "southern eastern western", WORD, " ")
    NTOPIC = split("river lake mountain village town castle church battle " \
        "treaty album song film railway station bridge island valley " \
        "language dialect festival league club dynasty kingdom province " \
        "district bird beetle flower tree", TOPIC, " ")
    NADJ = split("northern southern eastern western upper lower old new " \
        "great little royal red white black green golden silver", ADJ, " ")
    NSYL = split("ka ro vi an el mar to sen dal ia or be lin ta mo ri sa " \
        "ne lu ver gor en al da ki no ha ru fel tor bra ste", SYL, " ")
    NSUF = split("ia a on en ov burg ham ford ville stad dorf berg", SUF, " ")
    split("Wikipedia Wiktionary Wikibooks Wikinews Wikiquote Wikisource " \
        "Wikiversity Wikivoyage Wikimedia", SITENAME, " ")
}

# --- deterministic pseudo-random numbers (Park-Miller "minimal standard") ---
# R*16807 < 2^46, exact in a double.
function rseed(s) { R = s % 2147483646 + 1; rnd(2); rnd(2) }
function rnd(n) { R = (R * 16807) % 2147483647; return R % n }

# A 31-bit hash of a string made of [a-z0-9_] (other bytes count as 0).
function hash(s,    h, i, n) {
    h = 5381; n = length(s)
    for (i = 1; i <= n; i++) h = (h * 33 + index(ALNUM, substr(s, i, 1))) % 2147483647
    return h
}

# The seed of a page's text: the wiki and the revision id, nothing else.
function text_seed(revid) { return (hash(wiki) + revid * 7919) % 2147483646 }

function cap(s) { return toupper(substr(s, 1, 1)) substr(s, 2) }
function word() { return WORD[rnd(NWORD) + 1] }

function base36(n,    s, i) { s = ""; for (i = 0; i < n; i++) s = s substr(B36, rnd(36) + 1, 1); return s }

# --- where a wiki lives: dbname -> host, site name, language ---
# An approximation of Wikimedia's naming: <lang>wiki -> <lang>.wikipedia.org,
# <lang>wiktionary -> <lang>.wiktionary.org, ..., plus a few special wikis.
function site_of(db,    p, s, i) {
    SITE_NAME = "Wikipedia"; SITE_LANG = "en"
    if (db == "commonswiki")        { SITE_HOST = "commons.wikimedia.org"; SITE_NAME = "Wikimedia Commons"; return }
    if (db == "metawiki")           { SITE_HOST = "meta.wikimedia.org";    SITE_NAME = "Meta"; return }
    if (db == "specieswiki")        { SITE_HOST = "species.wikimedia.org"; SITE_NAME = "Wikispecies"; return }
    if (db == "wikidatawiki")       { SITE_HOST = "www.wikidata.org";      SITE_NAME = "Wikidata"; return }
    if (db == "mediawikiwiki")      { SITE_HOST = "www.mediawiki.org";     SITE_NAME = "MediaWiki"; return }
    if (db == "sourceswiki")        { SITE_HOST = "wikisource.org";        SITE_NAME = "Wikisource"; return }
    p = db; s = "wikipedia"
    for (i = 1; i <= 9; i++) {
        if (i == 1) continue            # "wiki" is the fallback below
        if (match(db, tolower(SITENAME[i]) "$") && RSTART > 1) {
            p = substr(db, 1, RSTART - 1); s = tolower(SITENAME[i]); SITE_NAME = SITENAME[i]; break
        }
    }
    if (i > 9 && match(db, /wiki$/) && RSTART > 1) p = substr(db, 1, RSTART - 1)
    gsub(/_/, "-", p)
    SITE_HOST = p "." s ".org"
    # language codes are short ("en", "zh-min-nan"); "simple", "commons"... are English
    if (length(p) <= 3 || index(p, "-")) SITE_LANG = p
}

# --- titles ---
function pname(    n, s, i) {
    n = 2 + rnd(2); s = ""
    for (i = 0; i < n; i++) s = s SYL[rnd(NSYL) + 1]
    if (rnd(2)) s = s SUF[rnd(NSUF) + 1]
    return cap(s)
}
function title(    k) {
    k = rnd(100)
    if (k < 30) return pname()
    if (k < 50) return pname() " " pname()
    if (k < 70) return cap(ADJ[rnd(NADJ) + 1]) " " TOPIC[rnd(NTOPIC) + 1] " of " pname()
    if (k < 85) return cap(TOPIC[rnd(NTOPIC) + 1]) " of " pname()
    return pname() " (" TOPIC[rnd(NTOPIC) + 1] ")"
}

# --- article text ---
# gen_text(revid, nbytes, title, tostr): exactly nbytes bytes of wikitext.
# tostr=0 prints it (no newline added); tostr=1 returns it instead (only for
# short texts: building a long string in awk is quadratic).
function emit(s) {
    if (GEN_REM <= 0) return
    if (length(s) >= GEN_REM) s = substr(s, 1, GEN_REM)
    GEN_REM -= length(s)
    if (GEN_STR) GEN_OUT = GEN_OUT s; else printf "%s", s
}
function sentence(    n, i, s, r) {
    # one random draw per word picks the word and, 1 time in 16, makes it a link
    n = 6 + rnd(11); s = cap(word())
    for (i = 1; i < n; i++) {
        r = rnd(NWORD * 16)
        if (r < NWORD) s = s " [[" (r % 3 ? WORD[r + 1] : pname()) "]]"
        else s = s " " WORD[r % NWORD + 1]
    }
    return s (rnd(8) ? ". " : ", " word() " " word() ". ")
}
function gen_text(revid, nbytes, t, tostr,    p, k, n) {
    rseed(text_seed(revid))
    GEN_REM = nbytes; GEN_STR = tostr; GEN_OUT = ""
    emit("'''" t "''' is a " word() " " TOPIC[rnd(NTOPIC) + 1] " " word() " " word() " [[" pname() "]]. ")
    for (p = 0; GEN_REM > 0; p++) {
        if (p > 0 && rnd(3) == 0) emit("\n\n== " cap(word()) " " word() " ==\n")
        else if (p > 0) emit("\n\n")
        n = 2 + rnd(5)
        for (k = 0; k < n && GEN_REM > 0; k++) emit(sentence())
    }
    return GEN_OUT
}
