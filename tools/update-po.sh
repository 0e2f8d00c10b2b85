#!/bin/sh
# Regenerates po/vmclone.pot from the files in po/POTFILES (Rust sources,
# GtkBuilder .ui files, the desktop file, the metainfo and the polkit policy),
# merges it into every po/LANG.po of po/LINGUAS and checks each catalog.
#
#   tools/update-po.sh           update the .pot and .po files
#   tools/update-po.sh --check   also fail when a translation is incomplete
set -eu
cd "$(dirname "$0")/.."

check_complete=false
[ "${1:-}" = "--check" ] && check_complete=true

pot=po/vmclone.pot
files=$(grep -v '^#' po/POTFILES | grep -v '^$')
for f in $files; do
    [ -f "$f" ] || { echo "update-po: $f (listed in po/POTFILES) is missing" >&2; exit 1; }
done
rust=$(echo "$files" | grep '\.rs$' || true)
other=$(echo "$files" | grep -v '\.rs$' || true)

common="--package-name=vmclone --msgid-bugs-address=https://github.com/vmclone/vmclone/issues \
    --from-code=UTF-8 --add-comments=Translators --sort-by-file"
# xgettext has no Rust parser; the C one reads gettext("…") calls in Rust correctly
# as long as the strings are plain literals (no raw strings, no format! inside).
# Lifetimes ('static) look like unterminated C character constants: that warning is noise.
# shellcheck disable=SC2086
xgettext $common --language=C --keyword= --keyword=gettext --keyword=ngettext:1,2 \
    --keyword=pgettext:1c,2 -o "$pot.tmp" $rust 2>"$pot.err" || { cat "$pot.err" >&2; exit 1; }
grep -v 'unterminated character constant' "$pot.err" >&2 || true
rm -f "$pot.err"
# .ui, .desktop, .metainfo.xml and .policy are recognised by their ITS rules.
# shellcheck disable=SC2086
xgettext $common --join-existing -o "$pot.tmp" $other
# Keep the .pot stable when only the creation date would change.
if [ -f "$pot" ] && diff -q -I '^"POT-Creation-Date:' "$pot" "$pot.tmp" >/dev/null; then
    rm "$pot.tmp"
else
    mv "$pot.tmp" "$pot"
fi

status=0
for lang in $(grep -v '^#' po/LINGUAS); do
    po="po/$lang.po"
    if [ -f "$po" ]; then
        msgmerge --quiet --update --backup=none --no-fuzzy-matching "$po" "$pot"
    else
        msginit --no-translator --locale="$lang" -i "$pot" -o "$po"
    fi
    stats=$(msgfmt --check --statistics -o /dev/null "$po" 2>&1)
    echo "$lang: $stats"
    if $check_complete && echo "$stats" | grep -Eq 'untranslated|fuzzy'; then
        echo "update-po: $po is incomplete" >&2
        status=1
    fi
done
exit $status
