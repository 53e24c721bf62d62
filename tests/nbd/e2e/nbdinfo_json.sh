#!/bin/bash
# nbdinfo --json reports structured replies, base:allocation, multi-conn,
# read-only and the block sizes.
source "$(dirname "$0")/functions.sh"
requires nbdinfo jq
make_image
start_server --file "disk=$IMG=test disk"

json="$(nbdinfo --json "$(uri)")"
echo "$json"
check() {
  [ "$(jq -r "$1" <<<"$json")" = "$2" ] || fail "$1 is not $2"
}
check '.protocol' newstyle-fixed
check '.structured' true
check '.exports[0]["export-name"]' disk
check '.exports[0].description' "test disk"
check '.exports[0]["export-size"]' "$(stat -c %s "$IMG")"
check '.exports[0].contexts | index("base:allocation") != null' true
check '.exports[0].is_read_only' true
check '.exports[0].can_multi_conn' true
check '.exports[0].can_flush' true
check '.exports[0].can_cache' true
check '.exports[0].can_df' true
check '.exports[0].can_trim' false
check '.exports[0].can_zero' false
check '.exports[0].block_size_minimum' 1
check '.exports[0].block_size_preferred' 4096
check '.exports[0].block_size_maximum' 33554432
