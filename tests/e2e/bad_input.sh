#!/bin/bash
# Bad input gets one clear line naming the object and a non-zero exit:
# missing or unreadable source, broken config YAML (file and line), unknown
# SPEC, not a repository, existing restore target; earlier revisions stay.
. "$(dirname "$0")/lib.sh"
requires openssl

img=$T/vm.img
rand_bytes bad 8 > "$img"
expect_fail "init: source image does not exist .*$T/nope.img" "$BACKY" -b "$T/repo" init file "$T/nope.img"
expect_fail "init: .*unknown source type 'floppy'" "$BACKY" -b "$T/repo" init floppy x
expect_fail "status: not a backy repository .*$T/repo" "$BACKY" -b "$T/repo" status
"$BACKY" -b "$T/repo" init file "$img"
expect_fail "init: already a repository" "$BACKY" -b "$T/repo" init file "$img"
"$BACKY" -b "$T/repo" backup daily
good=$(sha < "$img")

# Source gone.
mv "$img" "$img.away"
expect_fail "backup: source image does not exist .*$img" "$BACKY" -b "$T/repo" backup daily
mv "$img.away" "$img"

# Source unreadable (as an unprivileged user; root reads everything).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chmod 0755 "$T"
  chown -R nobody "$T/repo"
  chmod 0600 "$img"
  expect_fail "backup: open source image: Permission denied .*$img" \
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$BACKY" -b "$T/repo" backup daily
  chmod 0644 "$img"
fi

# Source is a directory.
cp "$T/repo/config" "$T/config.good"
sed -i "s|filename: .*|filename: $T|" "$T/repo/config"
expect_fail "backup: source is neither a regular file nor a block device" "$BACKY" -b "$T/repo" backup daily
cp "$T/config.good" "$T/repo/config"

# Broken YAML: the error names the file and the line.
printf 'format: 1\nsource:\n  type: file\n  filename: [oops\n' > "$T/repo/config"
expect_fail "backup: .*$T/repo/config:[0-9]+" "$BACKY" -b "$T/repo" backup daily
printf 'format: 1\nsource:\n  filename: /x\n' > "$T/repo/config"
expect_fail "source has no 'type'" "$BACKY" -b "$T/repo" backup daily
printf 'format: 7\nsource: {type: file, filename: /x}\n' > "$T/repo/config"
expect_fail "unsupported repository format 7" "$BACKY" -b "$T/repo" status
cp "$T/config.good" "$T/repo/config"

# Unknown SPECs and bad tags.
expect_fail "restore: no revision matches 'nosuch'" "$BACKY" -b "$T/repo" restore -r nosuch -
expect_fail "restore: no revision '5': there are only 1 revisions" "$BACKY" -b "$T/repo" restore -r 5 -
expect_fail "find: no revision matches 'weekly'" "$BACKY" -b "$T/repo" find -r weekly
expect_fail "forget: no revision matches 'x'" "$BACKY" -b "$T/repo" forget -r x
expect_fail "backup: tag must not contain" "$BACKY" -b "$T/repo" backup "a b"

# Restore never overwrites data without --force.
echo data > "$T/target"
expect_fail "target exists and is not empty; use --force" "$BACKY" -b "$T/repo" restore "$T/target"
[ "$(cat "$T/target")" = data ] || fail "target was changed"
"$BACKY" -b "$T/repo" restore --force "$T/target"
[ "$(sha < "$T/target")" = "$good" ] || fail "--force restore differs"
expect_fail "target is a directory" "$BACKY" -b "$T/repo" restore "$T"

# The earlier revision is intact after all this.
[ "$("$BACKY" -b "$T/repo" restore - | sha)" = "$good" ] || fail "revision damaged"
echo PASS
