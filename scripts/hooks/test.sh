#!/bin/sh
# scripts/hooks/test.sh: end-to-end test of the access point hooks against a
# real node. Builds irmv, then (inside scripts/netns-run, so nothing leaves
# this machine) starts a node on 127.0.0.1 with a temporary data dir and
# runs dnsmasq-dhcp-hook and hostapd-action against it. When the namespace
# has its LAN-like address it also runs them against a node whose API
# listens beyond loopback, where the admin token is required.
# Needs curl and what scripts/netns-run needs. Exit status 0 only if every
# check passed.
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)

if [ "${IRMV_HOOKTEST_IN_NETNS:-}" != 1 ]; then
	bin=$(mktemp -d "${TMPDIR:-/tmp}/irmv-hooktest.XXXXXX")
	trap 'rm -rf "$bin"' EXIT
	go build -o "$bin/irmv" ./cmd/irmv
	IRMV_HOOKTEST_IN_NETNS=1 IRMV_HOOKTEST_BIN=$bin/irmv scripts/netns-run sh "$root/scripts/hooks/test.sh"
	exit $?
fi

command -v curl >/dev/null || { echo "test.sh: needs curl" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/irmv-hooktest-run.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# start_node API: starts a node with a fresh data dir, waits for /healthz.
start_node() {
	[ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
	data=$work/data-$(echo "$1" | tr -c '0-9a-z\n' _)
	"$IRMV_HOOKTEST_BIN" node --data-dir "$data" --listen /ip4/127.0.0.1/tcp/0 \
		--api "$1" --mdns=false --log-level warn >"$work/node.log" 2>&1 &
	pid=$!
	i=0
	until curl -fs "http://$1/healthz" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$work/node.log"
			echo "FAIL node did not start on $1"
			exit 1
		fi
		sleep 0.1
	done
	export IRMV_NODE=http://$1
	admin=$(cat "$data/admin.token")
}

# terminals: the node's list (beyond loopback only the admin may list).
terminals() { curl -fsS -H "Authorization: Bearer $admin" "$IRMV_NODE/v1/terminals"; }
listed() { terminals | grep -q "\"$1\""; }

# run_suite LABEL: the hook checks against $IRMV_NODE.
run_suite() {
	l=$1
	export IRMV_HOOK_STATE=$work/state-$l
	hooks=$root/scripts/hooks

	# dnsmasq: add, lists the uid, old keeps the handle, del removes it.
	if DNSMASQ_TIME_REMAINING=1200 "$hooks/dnsmasq-dhcp-hook" add 02:AA:bb:cc:dd:01 10.99.0.23 laptop-1; then
		pass "$l dnsmasq add"
	else fail "$l dnsmasq add"; fi
	listed 02:aa:bb:cc:dd:01 && pass "$l dnsmasq add: uid listed" || fail "$l dnsmasq add: uid not listed"
	terminals | grep -q '10.99.0.23' && pass "$l dnsmasq add: address listed" || fail "$l dnsmasq add: address not listed"
	h1=$(cat "$IRMV_HOOK_STATE/02aabbccdd01" 2>/dev/null || true)
	"$hooks/dnsmasq-dhcp-hook" old 02:aa:bb:cc:dd:01 10.99.0.24 laptop-1 || fail "$l dnsmasq old"
	h2=$(cat "$IRMV_HOOK_STATE/02aabbccdd01" 2>/dev/null || true)
	[ -n "$h1" ] && [ "$h1" = "$h2" ] && pass "$l dnsmasq old: same terminal ($h1)" || fail "$l dnsmasq old: handle $h1 -> $h2"
	n=$(terminals | grep -o '02:aa:bb:cc:dd:01' | wc -l)
	terminals | grep -q '10.99.0.24' && pass "$l dnsmasq old: address updated" || fail "$l dnsmasq old: address not updated"
	"$hooks/dnsmasq-dhcp-hook" del 02:aa:bb:cc:dd:01 10.99.0.24 laptop-1 && pass "$l dnsmasq del" || fail "$l dnsmasq del"
	listed 02:aa:bb:cc:dd:01 && fail "$l dnsmasq del: uid still listed" || pass "$l dnsmasq del: uid gone"
	[ -e "$IRMV_HOOK_STATE/02aabbccdd01" ] && fail "$l dnsmasq del: state file left" || true
	# del with the state lost (e.g. /tmp after a reboot): still removed.
	"$hooks/dnsmasq-dhcp-hook" add 02:aa:bb:cc:dd:02 10.99.0.25 || fail "$l dnsmasq add 2"
	rm -rf "$IRMV_HOOK_STATE"
	"$hooks/dnsmasq-dhcp-hook" del 02:aa:bb:cc:dd:02 10.99.0.25 && ! listed 02:aa:bb:cc:dd:02 &&
		pass "$l dnsmasq del without state" || fail "$l dnsmasq del without state"
	# Ignored actions and DHCPv6 without a MAC.
	"$hooks/dnsmasq-dhcp-hook" init && "$hooks/dnsmasq-dhcp-hook" tftp 100 10.99.0.9 /x &&
		"$hooks/dnsmasq-dhcp-hook" add 00:01:00:01:2a:3b:4c:5d:aa:bb:cc:dd:ee:ff fd00::5 &&
		pass "$l dnsmasq ignores other actions" || fail "$l dnsmasq other actions"
	# Lease time beyond the node's limits is clamped.
	DNSMASQ_TIME_REMAINING=5 "$hooks/dnsmasq-dhcp-hook" add 02:aa:bb:cc:dd:03 10.99.0.26 &&
		pass "$l dnsmasq short lease clamped" || fail "$l dnsmasq short lease"
	"$hooks/dnsmasq-dhcp-hook" del 02:aa:bb:cc:dd:03 10.99.0.26 || fail "$l dnsmasq del 3"

	# hostapd: connect lists the uid, disconnect removes it.
	"$hooks/hostapd-action" wlan0 AP-STA-CONNECTED 02:aa:bb:cc:dd:10 && pass "$l hostapd connect" || fail "$l hostapd connect"
	listed 02:aa:bb:cc:dd:10 && pass "$l hostapd connect: uid listed" || fail "$l hostapd connect: uid not listed"
	terminals | grep -q '127.0.0.1' && fail "$l hostapd connect: loopback taken as address" || true
	"$hooks/hostapd-action" wlan0 AP-STA-POLL-OK 02:aa:bb:cc:dd:10 || fail "$l hostapd other event"
	"$hooks/hostapd-action" wlan0 AP-STA-DISCONNECTED 02:aa:bb:cc:dd:10 && pass "$l hostapd disconnect" || fail "$l hostapd disconnect"
	listed 02:aa:bb:cc:dd:10 && fail "$l hostapd disconnect: uid still listed" || pass "$l hostapd disconnect: uid gone"
	# The DHCP hook and hostapd share the terminal (same uid).
	"$hooks/hostapd-action" wlan0 AP-STA-CONNECTED 02:aa:bb:cc:dd:11
	"$hooks/dnsmasq-dhcp-hook" add 02:aa:bb:cc:dd:11 10.99.0.31 phone
	"$hooks/hostapd-action" wlan0 AP-STA-DISCONNECTED 02:aa:bb:cc:dd:11
	listed 02:aa:bb:cc:dd:11 && fail "$l dhcp+hostapd: still listed" || pass "$l dhcp+hostapd: one terminal, removed"
	# A node that is down: the hook fails.
	IRMV_NODE=http://127.0.0.1:1 "$hooks/dnsmasq-dhcp-hook" add 02:aa:bb:cc:dd:12 10.99.0.32 2>/dev/null &&
		fail "$l node down: hook succeeded" || pass "$l node down: hook fails"
	# Nothing left behind.
	[ "$(terminals | grep -c '02:aa:bb')" = 0 ] && pass "$l register empty" || fail "$l register not empty"
}

start_node 127.0.0.1:17370
unset IRMV_TOKEN
export IRMV_ADMIN_TOKEN_FILE=$work/no-such-token
run_suite loopback

# An API beyond loopback needs the admin token.
if ip -4 addr show dev d0 2>/dev/null | grep -q 10.99.0.1; then
	start_node 10.99.0.1:17371
	# Anyone on the LAN may register a new terminal, but only the admin
	# (or the terminal) may remove it.
	export IRMV_HOOK_STATE=$work/state-lan
	export IRMV_ADMIN_TOKEN_FILE=$work/no-such-token
	"$root/scripts/hooks/dnsmasq-dhcp-hook" add 02:aa:bb:cc:dd:20 10.99.0.40 || fail "lan: add without a token"
	"$root/scripts/hooks/dnsmasq-dhcp-hook" del 02:aa:bb:cc:dd:20 10.99.0.40 2>/dev/null &&
		fail "lan: removed without a token" || pass "lan: remove refused without a token"
	export IRMV_ADMIN_TOKEN_FILE=$data/admin.token
	"$root/scripts/hooks/dnsmasq-dhcp-hook" del 02:aa:bb:cc:dd:20 10.99.0.40 && ! listed 02:aa:bb:cc:dd:20 &&
		pass "lan: removed with the token file" || fail "lan: remove with the token file"
	run_suite lan-tokenfile
	unset IRMV_ADMIN_TOKEN_FILE
	IRMV_TOKEN=$(cat "$data/admin.token") run_suite lan-token
else
	echo "skip LAN API checks: no d0 interface in this namespace"
fi

if [ "$fails" -gt 0 ]; then
	echo "hooks test: $fails check(s) failed"
	exit 1
fi
echo "hooks test: all checks passed"
