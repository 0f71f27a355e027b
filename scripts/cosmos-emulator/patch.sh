#!/usr/bin/env bash
# Four small fixes to @vercel/cosmosdb-server 1.0.1 that the Rust SDK (azure_data_cosmos 1.0)
# needs. Idempotent: a patch already applied is skipped; one whose original text is gone (the
# package changed) fails loudly instead of silently leaving the server broken.
set -euo pipefail
cd "$(dirname "$0")"
L=node_modules/@vercel/cosmosdb-server/lib

# patch NAME FILE ORIGINAL_REGEX SED_EXPRESSION APPLIED_MARKER
patch_one() {
  local name=$1 file=$2 original=$3 expr=$4 marker=$5
  if grep -qF -- "$marker" "$file"; then
    echo "patch $name: already applied"
    return
  fi
  if ! grep -qE -- "$original" "$file"; then
    echo "patch $name: the text it patches is not in $file any more; update scripts/cosmos-emulator/patch.sh" >&2
    exit 1
  fi
  sed -i -E "$expr" "$file"
  grep -qF -- "$marker" "$file" || { echo "patch $name: did not apply to $file" >&2; exit 1; }
  echo "patch $name: applied"
}

# 1. Reading a missing document answers 500 ("Cannot read properties of undefined") instead of
#    404 NotFound: every "not found" path of the SDK breaks.
patch_one missing-document-404 "$L/handler/read-document.js" \
  '^\s*const data = collection\.document\(docId, parsedPartitionKey\)\.read\(\);' \
  's|^(\s*)const data = collection\.document\(docId, parsedPartitionKey\)\.read\(\);|&\n\1if (!data) { res.statusCode = 404; return { code: "NotFound", message: "Entity with the specified id does not exist in the system." }; }|' \
  'if (!data) { res.statusCode = 404;'

# 2. /pkranges reports the partition key range id as the number 0; the SDK expects the string
#    "0" and fails every container with ClientTopologyResolutionFailed.
patch_one pkrange-id-string "$L/account/collection.js" \
  '^\s*id: 0,$' \
  's|^(\s*)id: 0,$|\1id: "0",|' \
  'id: "0",'

# 3. A query routed to a partition key range (x-ms-documentdb-partitionkeyrangeid, the SDK's
#    cross-partition path) is refused with 400 "missing partition keys".
patch_one query-by-pkrange "$L/handler/query-documents.js" \
  'if \(!\(0, true_header_1\.default\)\(req, "x-ms-documentdb-query-enablecrosspartition"\)\) \{' \
  's#if \(!\(0, true_header_1\.default\)\(req, "x-ms-documentdb-query-enablecrosspartition"\)\) \{#if (!(0, true_header_1.default)(req, "x-ms-documentdb-query-enablecrosspartition") \&\& !req.headers["x-ms-documentdb-partitionkeyrangeid"]) {#' \
  '!req.headers["x-ms-documentdb-partitionkeyrangeid"]'

# 4. A transactional batch expects a partitionKey in each operation; the SDKs send it once, in
#    the request header.
patch_one batch-partition-key "$L/handler/batch-documents.js" \
  '^\s*const input = body\[i\];' \
  's|^(\s*)const input = body\[i\];|&\n\1if (input \&\& input.partitionKey === undefined) input.partitionKey = req.headers["x-ms-documentdb-partitionkey"];|' \
  'input.partitionKey = req.headers["x-ms-documentdb-partitionkey"]'
