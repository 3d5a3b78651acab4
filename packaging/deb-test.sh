#!/bin/bash
# The packages on a glibc-2.31 system (Debian bullseye, as Ubuntu 20.04), end to end:
#   amd64: boot a bullseye root with systemd-nspawn, where Debian's prometheus-pushgateway
#          runs and holds a group; apt-get install our .deb (it takes over the data),
#          push and scrape, kill -9 the service (systemd restarts it, data intact),
#          upgrade in place (data and a local conffile edit intact), remove, purge;
#          report idle RSS under systemd and `systemd-analyze security`.
#   arm64: install the arm64 .deb in an arm64 bullseye root under qemu-user, and serve a
#          push and a scrape as the service user.
#   both:  lintian, no errors.
# Usage: packaging/deb-test.sh DIST_DIR   (run as root; make deb-test does it)
# The bullseye roots are cached as tarballs in $PGW_DEB_TEST_CACHE.
set -euo pipefail

dist=$(cd "$1" && pwd)
cache=${PGW_DEB_TEST_CACHE:-$HOME/.cache/pushgateway-deb-test}
mkdir -p "$cache"
work=$(mktemp -d /var/tmp/pgw-deb-test.XXXXXX)
nspawn_pid=
leader=

say() { printf '[deb-test %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

cleanup() {
    set +e
    if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
        kill -RTMIN+4 "$leader"             # poweroff
        for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    fi
    [ -n "$nspawn_pid" ] && kill -9 "$nspawn_pid" 2>/dev/null
    for m in "$work"/arm64/proc "$work"/amd64/proc; do
        mountpoint -q "$m" && umount -l "$m"
    done
    rm -rf "$work"
}
trap cleanup EXIT

amd64_deb=$(ls "$dist"/pushgateway_*_amd64.deb | head -n1)
arm64_deb=$(ls "$dist"/pushgateway_*_arm64.deb | head -n1)
version=$(dpkg-deb -f "$amd64_deb" Version)

say "lintian"
for deb in "$amd64_deb" "$arm64_deb"; do
    lintian --no-cfg --fail-on error "$deb" >&2 || fail "lintian errors in $deb"
done

# The Debian mirror apt already uses on this machine.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || fail "no Debian mirror in the apt configuration"

# A bullseye root for ARCH, from the cache or debootstrapped (and then cached).
make_root() {
    local arch=$1 dir=$2 tarball=$cache/bullseye-$1.tar
    mkdir -p "$dir"
    if [ -f "$tarball" ]; then
        tar -xf "$tarball" -C "$dir"
        return
    fi
    say "debootstrap bullseye $arch (cached afterwards)"
    if [ "$arch" = amd64 ]; then
        debootstrap --variant=minbase \
            --include=systemd,systemd-sysv,dbus,prometheus-pushgateway \
            bullseye "$dir" "$mirror" >"$work/debootstrap-$arch.log" 2>&1 ||
            { tail -n 20 "$work/debootstrap-$arch.log" >&2; fail "debootstrap $arch"; }
    else
        debootstrap --arch=arm64 --foreign --variant=minbase bullseye "$dir" "$mirror" \
            >"$work/debootstrap-$arch.log" 2>&1 ||
            { tail -n 20 "$work/debootstrap-$arch.log" >&2; fail "debootstrap $arch"; }
        chroot "$dir" /debootstrap/debootstrap --second-stage >>"$work/debootstrap-$arch.log" 2>&1 ||
            { tail -n 20 "$work/debootstrap-$arch.log" >&2; fail "debootstrap $arch (second stage)"; }
    fi
    tar -cf "$tarball.part" -C "$dir" . && mv "$tarball.part" "$tarball"
}

# ---------------------------------------------------------------- amd64, booted
root=$work/amd64
make_root amd64 "$root"
cp "$amd64_deb" "$root/root/new.deb"
# The same package as a newer version, for the upgrade.
upgrade_dir=$work/upgrade
mkdir -p "$upgrade_dir/x"
dpkg-deb -R "$amd64_deb" "$upgrade_dir/x"
sed -i "s/^Version: .*/Version: ${version}+upgrade1/" "$upgrade_dir/x/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz --build "$upgrade_dir/x" "$root/root/upgrade.deb" >/dev/null

say "booting the amd64 root with systemd-nspawn"
systemd-nspawn -b -D "$root" --machine="pgw-deb-test-$$" --register=no --keep-unit \
    --private-network -q >"$work/boot.log" 2>&1 &
nspawn_pid=$!
find_leader() {
    local p c
    for p in $(pgrep -P "$1"); do
        if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = systemd ]; then echo "$p"; return; fi
        c=$(find_leader "$p"); [ -n "$c" ] && { echo "$c"; return; }
    done
}
for _ in $(seq 100); do
    leader=$(find_leader "$nspawn_pid" || true)
    [ -n "$leader" ] && break
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/boot.log" >&2; fail "nspawn exited"; }
    sleep 0.2
done
[ -n "$leader" ] || fail "no systemd in the container"
inside() { nsenter -t "$leader" -a -- "$@"; }
# HTTP into the container's network namespace with this machine's curl.
http() { nsenter -t "$leader" -n -- curl -sS --max-time 10 "$@"; }
for _ in $(seq 150); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.2
done
say "container is $state"
inside systemctl is-active --quiet prometheus-pushgateway || fail "Debian's prometheus-pushgateway is not running"

wait_ready() {
    for _ in $(seq 100); do
        http -f -o /dev/null http://127.0.0.1:9091/-/ready 2>/dev/null && return 0
        sleep 0.1
    done
    fail "nothing ready on :9091"
}
wait_ready
say "Debian's prometheus-pushgateway holds a group"
printf 'swap_test_metric 42\n' | http -f --data-binary @- http://127.0.0.1:9091/metrics/job/swap >/dev/null

say "apt-get install of our package (replaces prometheus-pushgateway)"
inside apt-get install -y -q /root/new.deb >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "apt-get install"; }
grep -q "took over the metrics" "$work/install.log" || { cat "$work/install.log" >&2; fail "no takeover"; }
case "$(inside dpkg-query -W -f '${db:Status-Abbrev}' prometheus-pushgateway 2>/dev/null)" in
    ii*) fail "prometheus-pushgateway is still installed" ;;
esac
wait_ready
pid=$(inside systemctl show -p MainPID --value pushgateway)
[ "$(inside readlink /proc/"$pid"/exe)" = /usr/bin/pushgateway ] || fail "not our binary on :9091"
http -f http://127.0.0.1:9091/metrics | grep -q '^swap_test_metric{instance="",job="swap"} 42$' ||
    fail "the Go gateway's group was not taken over"

say "push and scrape"
printf '# TYPE deb_test_metric gauge\ndeb_test_metric{a="1"} 3.5\n' |
    http -f --data-binary @- http://127.0.0.1:9091/metrics/job/deb/instance/i >/dev/null
scrape() { http -f http://127.0.0.1:9091/metrics; }
scrape | grep -q '^deb_test_metric{a="1",instance="i",job="deb"} 3.5$' || fail "pushed metric not scraped"
uid=$(inside awk '/^Uid:/ {print $2}' /proc/"$pid"/status)
[ "$(inside id -u pushgateway)" = "$uid" ] || fail "the service does not run as pushgateway"
inside grep -Eq '^Max open files +8192 +8192' /proc/"$pid"/limits || fail "LimitNOFILE is not in force"
sleep 1 # idle: what the RSS figure means
rss=$(inside awk '/^VmRSS:/ {print $2}' /proc/"$pid"/status)
security=$(inside systemd-analyze security pushgateway.service 2>/dev/null | grep -i "overall exposure" || true)
verify=$(inside systemd-analyze verify /lib/systemd/system/pushgateway.service 2>&1 || true)
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"

say "kill -9: systemd restarts it, data intact"
inside sh -c "kill -9 $pid"
for _ in $(seq 100); do
    new=$(inside systemctl show -p MainPID --value pushgateway)
    [ "$new" != 0 ] && [ "$new" != "$pid" ] && break
    sleep 0.1
done
[ "$new" != "$pid" ] && [ "$new" != 0 ] || fail "not restarted"
[ "$(inside systemctl show -p NRestarts --value pushgateway)" = 1 ] || fail "NRestarts is not 1"
wait_ready
scrape | grep -q '^deb_test_metric{a="1",instance="i",job="deb"} 3.5$' || fail "data lost to kill -9"
scrape | grep -q '^swap_test_metric{instance="",job="swap"} 42$' || fail "taken-over data lost"

say "upgrade in place"
inside sh -c 'echo "# local edit" >> /etc/default/pushgateway'
inside dpkg -i /root/upgrade.deb >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log" >&2; fail "upgrade"; }
[ "$(inside dpkg-query -W -f '${Version}' pushgateway)" = "${version}+upgrade1" ] || fail "version not upgraded"
up=$(inside systemctl show -p MainPID --value pushgateway)
[ "$up" != "$new" ] || fail "not restarted by the upgrade"
wait_ready
scrape | grep -q '^deb_test_metric{a="1",instance="i",job="deb"} 3.5$' || fail "data lost in the upgrade"
inside grep -q "# local edit" /etc/default/pushgateway || fail "conffile edit lost in the upgrade"

say "remove"
inside dpkg -r pushgateway >"$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "remove"; }
http -o /dev/null http://127.0.0.1:9091/metrics 2>/dev/null && fail "still serving after remove"
inside test -f /var/lib/pushgateway/pushgateway.data || fail "remove deleted the data"
say "purge"
inside dpkg -P pushgateway >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "purge"; }
inside test ! -e /var/lib/pushgateway || fail "purge left /var/lib/pushgateway"
inside test ! -e /etc/default/pushgateway || fail "purge left /etc/default/pushgateway"

# ---------------------------------------------------------------- arm64, under qemu-user
say "arm64"
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
aroot=$work/arm64
make_root arm64 "$aroot"
[ "$(chroot "$aroot" uname -m)" = aarch64 ] || fail "the arm64 root does not run aarch64 code"
cp "$arm64_deb" "$aroot/root/new.deb"
mount -t proc proc "$aroot/proc"
chroot "$aroot" dpkg -i /root/new.deb >"$work/arm64-install.log" 2>&1 ||
    { cat "$work/arm64-install.log" >&2; fail "arm64 dpkg -i"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot --userspec=pushgateway:pushgateway "$aroot" /usr/bin/pushgateway \
    --web.listen-address=127.0.0.1:"$port" \
    --persistence.file=/var/lib/pushgateway/pushgateway.data >"$work/arm64.log" 2>&1 &
arm_pid=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready" && break
    sleep 0.2
done
printf 'arm_metric 7\n' | curl -sSf --data-binary @- "http://127.0.0.1:$port/metrics/job/arm" >/dev/null ||
    { cat "$work/arm64.log" >&2; fail "arm64 push"; }
curl -sSf "http://127.0.0.1:$port/metrics" | grep -q '^arm_metric{instance="",job="arm"} 7$' ||
    fail "arm64 scrape"
kill -TERM "$arm_pid"
wait "$arm_pid" || true
[ -s "$aroot/var/lib/pushgateway/pushgateway.data" ] || fail "arm64: nothing persisted at shutdown"
umount "$aroot/proc"

bin_amd64=$(dpkg-deb --fsys-tarfile "$amd64_deb" | tar -tvf - ./usr/bin/pushgateway | awk '{print $3}')
bin_arm64=$(dpkg-deb --fsys-tarfile "$arm64_deb" | tar -tvf - ./usr/bin/pushgateway | awk '{print $3}')
cat <<REPORT
deb-test passed on Debian bullseye (glibc $(chroot "$root" ldd --version 2>/dev/null | head -n1 | awk '{print $NF}')):
  package amd64: $(stat -c %s "$amd64_deb") bytes, binary $bin_amd64 bytes
  package arm64: $(stat -c %s "$arm64_deb") bytes, binary $bin_arm64 bytes
  idle RSS of the service under systemd (amd64): ${rss} KiB
  systemd-analyze security: ${security:-unavailable}
  lintian: no errors (amd64, arm64)
REPORT
