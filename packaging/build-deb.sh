#!/bin/sh
# Builds pushgateway_<version>_<arch>.deb from a release binary, with dpkg-deb alone.
#   packaging/build-deb.sh ARCH BINARY VERSION OUTDIR [HELP_BINARY]
# ARCH is a Debian architecture (amd64, arm64); HELP_BINARY (default BINARY) is a binary
# this machine can run, whose --help becomes the man page.
set -eu
arch=$1 binary=$2 version=$3 outdir=$4 help_binary=${5:-$2}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/debian
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

install -D -m 0755 "$binary" "$stage/usr/bin/pushgateway"
install -D -m 0644 "$src/pushgateway.service" "$stage/lib/systemd/system/pushgateway.service"
install -D -m 0644 "$src/pushgateway.default" "$stage/etc/default/pushgateway"
install -D -m 0644 "$src/copyright" "$stage/usr/share/doc/pushgateway/copyright"
install -D -m 0644 "$src/lintian-overrides" "$stage/usr/share/lintian/overrides/pushgateway"
gzip -9n < "$src/changelog" > "$stage/usr/share/doc/pushgateway/changelog.Debian.gz"
chmod 0644 "$stage/usr/share/doc/pushgateway/changelog.Debian.gz"

# The man page: every flag, from --help.
mkdir -p "$stage/usr/share/man/man1"
{
    printf '.TH PUSHGATEWAY 1 "" "pushgateway %s" "User Commands"\n' "$version"
    printf '.SH NAME\npushgateway \\- keeps the metrics that batch jobs push, for Prometheus to scrape\n'
    printf '.SH SYNOPSIS\n.B pushgateway\n[\\fIflags\\fR]\n'
    printf '.SH DESCRIPTION\nA drop-in replacement for the Prometheus Pushgateway. Jobs push metrics\n'
    printf 'to /metrics/job/<job>{/<label>/<value>}; Prometheus scrapes /metrics with honor_labels: true.\n'
    printf 'The service reads its flags from ARGS in /etc/default/pushgateway.\n'
    printf 'SIGTERM, SIGINT and /-/quit write the persistence file and stop; SIGHUP writes it and keeps serving.\n'
    printf '.SH FLAGS\n'
    "$help_binary" --help | sed -n '/^Flags:/,$p' | tail -n +2 | while IFS= read -r line; do
        case "$line" in
            "      --"*|"  -h"*) printf '.TP\n.B %s\n' "$(echo "$line" | sed 's/^ *//; s/-/\\-/g')" ;;
            *) echo "$line" | sed "s/^ *//; s/^\([.']\)/\\\\\&\1/" ;;
        esac
    done
    printf '.SH FILES\n.TP\n/etc/default/pushgateway\nflags of the service\n'
    printf '.TP\n/var/lib/pushgateway/pushgateway.data\nthe persisted metrics (the Go Pushgateway'"'"'s format)\n'
} | gzip -9n > "$stage/usr/share/man/man1/pushgateway.1.gz"
chmod 0644 "$stage/usr/share/man/man1/pushgateway.1.gz"

mkdir -p "$stage/DEBIAN"
for s in postinst prerm postrm; do
    install -m 0755 "$src/$s" "$stage/DEBIAN/$s"
done
echo /etc/default/pushgateway > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: pushgateway
Version: $version
Architecture: $arch
Maintainer: pushgateway maintainers <maintainers@pushgateway.invalid>
Installed-Size: $size
Depends: adduser
Conflicts: prometheus-pushgateway
Replaces: prometheus-pushgateway
Provides: prometheus-pushgateway
Section: net
Priority: optional
Description: Prometheus Pushgateway for small hosts (drop-in, static)
 Keeps the last push of each group of metrics from batch jobs, cron scripts
 and devices behind NAT, for Prometheus to scrape. Same URLs, flags, text and
 protobuf formats, JSON API and persistence file as the Go Pushgateway, in a
 small static binary using a fraction of its memory.
 .
 Replaces Debian's prometheus-pushgateway and takes over its data file.
CONTROL
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
mkdir -p "$outdir"
out="$outdir/pushgateway_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
