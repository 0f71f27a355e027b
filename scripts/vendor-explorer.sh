#!/usr/bin/env bash
# Vendors Swagger UI, the API explorer served at /docs from the binary (gateway/src/explorer.rs),
# from its npm package: the exact version below, its tarball checked against the pinned sha512
# integrity (the registry's `dist.integrity`), and only the files the explorer serves plus the
# licences. Nothing is fetched at build or run time: the files are committed.
#
#   scripts/vendor-explorer.sh          # (re)write gateway/explorer/swagger-ui-dist/
#   scripts/vendor-explorer.sh --check  # verify the committed files are the pinned tarball's
#
# To update: set VERSION and INTEGRITY together (`npm view swagger-ui-dist@X.Y.Z dist.integrity`),
# run it, then the browser test (tests/browser) and the explorer's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=5.36.0
INTEGRITY=sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A==
DEST=gateway/explorer/swagger-ui-dist
# The UI (one self-contained bundle, no standalone preset: the page has no top bar), its styles,
# the icon, and the licences: Swagger UI's (Apache-2.0, with its NOTICE) and those of the code the
# bundle contains.
FILES=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)

check=0
[[ "${1:-}" == "--check" ]] && check=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# npm pack downloads the tarball only: no install, so no install scripts run.
(cd "$work" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tarball="$work/swagger-ui-dist-$VERSION.tgz"
actual=$(node -e 'const c = require("crypto"), fs = require("fs");
  console.log("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
if [[ "$actual" != "$INTEGRITY" ]]; then
  echo "swagger-ui-dist@$VERSION: integrity $actual, expected $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"

if [[ $check -eq 1 ]]; then
  status=0
  for file in "${FILES[@]}"; do
    cmp -s "$work/package/$file" "$DEST/$file" || { echo "$DEST/$file differs from swagger-ui-dist@$VERSION" >&2; status=1; }
  done
  [[ "$(cat "$DEST/VERSION")" == "$VERSION" ]] || { echo "$DEST/VERSION is not $VERSION" >&2; status=1; }
  [[ $status -eq 0 ]] && echo "$DEST: swagger-ui-dist@$VERSION ($INTEGRITY)"
  exit $status
fi

rm -rf "$DEST"
mkdir -p "$DEST"
for file in "${FILES[@]}"; do
  cp "$work/package/$file" "$DEST/$file"
done
printf '%s\n' "$VERSION" >"$DEST/VERSION"
echo "vendored swagger-ui-dist@$VERSION into $DEST:"
ls -l "$DEST"
