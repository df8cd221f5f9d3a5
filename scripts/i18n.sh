#!/usr/bin/env bash
# Refresh the translations after adding or changing a translatable string:
#
#   scripts/i18n.sh          extract strings into the .po files (keeps existing
#                            translations), then compile the .mo files
#   scripts/i18n.sh --check  fail when a committed .mo does not match its .po; count the
#                            Dutch strings that still need a translation (.ci/run uses this)
#
# Strings go to listenline/locale (LOCALE_PATHS), except those of an app with its own
# locale/ folder (telephony/locale), which keep going there.
#
# Source strings are English; Dutch is the default language, so fill every empty or
# "fuzzy" msgstr in locale/nl before committing, then run this script again. Commit the
# .po and the .mo files: the .mo files ship in the package. Needs gettext (msgfmt).
set -euo pipefail

cd "$(dirname "$0")/.."
LOCALES=(nl en)
IGNORES=(--ignore '.venv' --ignore '.venv/*' --ignore 'venv' --ignore 'venv/*'
         --ignore 'node_modules' --ignore '*/node_modules/*' --ignore 'build/*'
         --ignore 'dist/*' --ignore 'tests/*' --ignore 'benchmarks/*')
LOCALE_DIR=listenline/locale

if ! command -v msgfmt >/dev/null; then
    echo "i18n.sh: msgfmt is missing: apt-get install gettext" >&2
    exit 2
fi
if command -v listenline >/dev/null; then
    LISTENLINE=(listenline)
else
    LISTENLINE=(python -m listenline.cli)
fi
export DJANGO_SETTINGS_MODULE=listenline.settings

check() {
    local status=0 po mo tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    shopt -s nullglob
    for po in */locale/*/LC_MESSAGES/*.po; do
        mo="${po%.po}.mo"
        msgfmt --check-format --check-domain -o "$tmp/fresh.mo" "$po"
        if [[ ! -f "$mo" ]]; then
            echo "i18n: $mo is missing: run scripts/i18n.sh" >&2
            status=1
            continue
        fi
        # Compare what the catalogs say, not their bytes (msgfmt versions lay out differently).
        if ! python - "$tmp/fresh.mo" "$mo" <<'PY'
import gettext, sys
fresh, committed = (gettext.GNUTranslations(open(p, "rb"))._catalog for p in sys.argv[1:])
sys.exit(0 if fresh == committed else 1)
PY
        then
            echo "i18n: $mo is out of date with $po: run scripts/i18n.sh" >&2
            status=1
        fi
    done
    for po in */locale/nl/LC_MESSAGES/*.po; do
        local stats
        stats="$(LC_ALL=C msgfmt --statistics -o /dev/null "$po" 2>&1)"
        if [[ "$stats" == *fuzzy* || "$stats" == *untranslated* ]]; then
            echo "i18n: warning: $po: $stats (Dutch is the default: translate them)" >&2
        fi
    done
    return $status
}

if [[ "${1:-}" == "--check" ]]; then
    check
    exit $?
fi

mkdir -p "$LOCALE_DIR"
locale_args=()
for code in "${LOCALES[@]}"; do locale_args+=(-l "$code"); done
"${LISTENLINE[@]}" makemessages "${locale_args[@]}" --no-obsolete "${IGNORES[@]}"
# Strings in our JavaScript (gettext() via Django's JavaScript catalog), when there are any.
if grep -rlq --include='*.js' -E '\b(n|p|np)?gettext\(' frontend/static 2>/dev/null; then
    "${LISTENLINE[@]}" makemessages -d djangojs "${locale_args[@]}" --no-obsolete "${IGNORES[@]}"
fi
"${LISTENLINE[@]}" compilemessages "${locale_args[@]}" "${IGNORES[@]}"
check
