#!/bin/sh
# Translations of vmclone (gettext domain "vmclone").
#
#   tools/update-po.sh          regenerate po/vmclone.pot from the files in
#                               po/POTFILES (Rust sources, GtkBuilder .ui files,
#                               the desktop file, the metainfo and the polkit
#                               policy) and merge it into every po/LANG.po
#   tools/update-po.sh --check  change nothing; fail when po/vmclone.pot is
#                               stale or a language of po/LINGUAS is incomplete
#                               or does not compile (msgfmt --check)
set -eu
cd "$(dirname "$0")/.."

mode=update
[ "${1:-}" = "--check" ] && mode=check

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=$(grep -v '^#' po/POTFILES | grep -v '^$')
for f in $files; do
    [ -f "$f" ] || { echo "update-po: $f (listed in po/POTFILES) is missing" >&2; exit 1; }
done
rust=$(echo "$files" | grep '\.rs$' || true)
other=$(echo "$files" | grep -v '\.rs$' || true)

new="$tmp/vmclone.pot"
common="--package-name=vmclone --msgid-bugs-address=https://github.com/vmclone/vmclone/issues \
    --from-code=UTF-8 --add-comments=Translators --sort-by-file"
# xgettext has no Rust parser; the C one reads gettext("…") calls in Rust
# correctly as long as the strings are plain one-line literals (no raw
# strings, no `\` line continuations). Lifetimes ('static) look like
# unterminated C character constants: that warning is noise.
# shellcheck disable=SC2086
xgettext $common --language=C --keyword= --keyword=gettext --keyword=ngettext:1,2 \
    --keyword=pgettext:1c,2 -o "$new" $rust 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
grep -v 'unterminated character constant' "$tmp/err" >&2 || true
# .ui, .desktop, .metainfo.xml and .policy are recognised by their ITS rules.
# shellcheck disable=SC2086
xgettext $common --join-existing -o "$new" $other

# The messages alone, to compare catalogs without dates and line numbers.
messages() { msgattrib --no-location --no-wrap --sort-output "$1" | sed '1,/^$/d'; }

status=0
if [ "$mode" = update ]; then
    if [ -f po/vmclone.pot ] && [ "$(messages po/vmclone.pot)" = "$(messages "$new")" ]; then
        : # unchanged: keep the file, and its creation date, as it is
    else
        cp "$new" po/vmclone.pot
    fi
elif [ "$(messages po/vmclone.pot)" != "$(messages "$new")" ]; then
    echo "update-po: po/vmclone.pot is stale; run tools/update-po.sh" >&2
    status=1
fi

for lang in $(grep -v '^#' po/LINGUAS); do
    po="po/$lang.po"
    if [ "$mode" = update ]; then
        if [ -f "$po" ]; then
            msgmerge --quiet --update --backup=none --no-fuzzy-matching "$po" po/vmclone.pot
        else
            msginit --no-translator --locale="$lang" -i po/vmclone.pot -o "$po"
        fi
    fi
    stats=$(msgfmt --check --statistics -o /dev/null "$po" 2>&1) || { echo "$stats" >&2; status=1; }
    echo "$lang: $stats"
    if [ "$mode" = check ]; then
        # Every message of the sources has a translation (not fuzzy, not missing).
        if ! msgcmp "$po" "$new" 2>"$tmp/cmp" || echo "$stats" | grep -Eq 'untranslated|fuzzy'; then
            echo "update-po: $po is incomplete:" >&2
            cat "$tmp/cmp" >&2
            status=1
        fi
    fi
done
exit $status
