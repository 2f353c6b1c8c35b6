#!/bin/sh
# scripts/firmware/test.sh: checks the firmware build as an integrator would
# use it. Builds with scripts/build-firmware (arm and amd64), fails if the
# linux/arm binary is over the 20 MB budget (20,000,000 bytes), then runs
# the amd64 binary (inside scripts/netns-run, so nothing leaves this
# machine): version, --help, a node started from a JSON --config with a
# flag winning over it, the errors for a bad config, for a QUIC listen
# address, for --portmap and for --mdns (firmware nodes speak TCP only and join through
# --bootstrap), a SIP phone (SIPp) registering, two firmware nodes finding a
# terminal through the DHT. The full build's YAML --config gets the same
# start-up check. Needs curl and sipp (Debian sip-tester). Exit status 0 only if every
# check passed.
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
budget=20000000

if [ "${IRMV_FWTEST_IN_NETNS:-}" != 1 ]; then
	dist=$(mktemp -d "${TMPDIR:-/tmp}/irmv-fwtest.XXXXXX")
	trap 'rm -rf "$dist"' EXIT
	DIST=$dist scripts/build-firmware arm amd64
	size=$(wc -c <"$dist/irmv-linux-arm" | tr -d ' ')
	if [ "$size" -gt "$budget" ]; then
		echo "FAIL linux/arm firmware binary is $size bytes, budget $budget"
		exit 1
	fi
	echo "ok   linux/arm firmware binary $size bytes (budget $budget)"
	go build -o "$dist/irmv-full" ./cmd/irmv
	IRMV_FWTEST_IN_NETNS=1 IRMV_FWTEST_DIST=$dist scripts/netns-run sh "$root/scripts/firmware/test.sh"
	exit $?
fi

for c in curl sipp; do
	command -v $c >/dev/null || { echo "test.sh: needs $c (apt-get install curl sip-tester)" >&2; exit 2; }
done
bin=$IRMV_FWTEST_DIST/irmv-linux-amd64
work=$(mktemp -d "${TMPDIR:-/tmp}/irmv-fwtest-run.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# expect_exit CODE TEXT CMD...: CMD exits with CODE and says TEXT on stderr.
expect_exit() {
	want=$1 text=$2
	shift 2
	set +e
	"$@" >"$work/out" 2>"$work/err"
	got=$?
	set -e
	if [ "$got" = "$want" ] && grep -q -- "$text" "$work/err"; then
		pass "$* → exit $got, \"$text\""
	else
		fail "$* → exit $got (want $want), stderr: $(cat "$work/err")"
	fi
}

# node_up BIN CONFIG ARGS...: starts a node, waits for its API (whose
# address it logs), then checks /v1/node and stops it.
node_up() {
	b=$1 cfg=$2
	shift 2
	"$b" node --config "$cfg" "$@" >"$work/node.log" 2>&1 &
	pid=$!
	api=
	for _ in $(seq 100); do
		api=$(sed -n 's/.*msg="Node started".* api=\([0-9.:]*\).*/\1/p' "$work/node.log")
		[ -n "$api" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	ok=0
	if [ -n "$api" ] && curl -fsS "http://$api/v1/node" >"$work/info" 2>/dev/null; then
		ok=1
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	pid=
	[ "$ok" = 1 ]
}

v=$("$bin" version)
case $v in irmv*) pass "version: $v" ;; *) fail "version printed: $v" ;; esac
"$bin" --help >"$work/help" 2>&1 && grep -q "COMMANDS:" "$work/help" && grep -q "search" "$work/help" &&
	pass "--help lists the commands" || fail "--help: $(cat "$work/help")"
"$bin" node --help >"$work/help" 2>&1 && grep -q -- "--listen value" "$work/help" && grep -q "JSON file" "$work/help" &&
	pass "node --help lists the flags" || fail "node --help: $(cat "$work/help")"
if "$bin" call --help >/dev/null 2>&1; then fail "the node-only build has the call command"; else pass "no terminal commands in the node-only build"; fi

cat >"$work/node.json" <<JSON
{"data-dir": "$work/data", "listen": ["/ip4/127.0.0.1/tcp/0"], "api": "127.0.0.1:0",
 "turn": "off", "mdns": false, "log-level": "error"}
JSON
if node_up "$bin" "$work/node.json" --log-level info && grep -q '"peer_id"' "$work/info"; then
	pass "node from a JSON config (flag --log-level wins over it) answers /v1/node"
else
	fail "node from a JSON config: $(cat "$work/node.log")"
fi
[ -f "$work/data/identity.key" ] && pass "data-dir from the config" || fail "no identity.key in the config's data-dir"
echo '{"listen": "/ip4/127.0.0.1/tcp/0"}' >"$work/bad.json"
expect_exit 2 "want an array of strings" "$bin" node --config "$work/bad.json"
echo '{"lisen": []}' >"$work/bad.json"
expect_exit 2 'unknown key "lisen"' "$bin" node --config "$work/bad.json"
expect_exit 2 "no mDNS" "$bin" node --data-dir "$work/data" --api 127.0.0.1:0 --turn off --listen /ip4/127.0.0.1/tcp/0 --mdns
expect_exit 2 "TCP only" "$bin" node --data-dir "$work/data" --api 127.0.0.1:0 --turn off --mdns=false \
	--listen /ip4/127.0.0.1/udp/0/quic-v1
expect_exit 2 "no port mapping" "$bin" node --data-dir "$work/data" --api 127.0.0.1:0 --turn off --mdns=false \
	--listen /ip4/127.0.0.1/tcp/0 --portmap
expect_exit 2 "irmv phone is not in this build" "$bin" phone

# Two firmware nodes (their kad-dht, kbucket, multicodec and OpenTelemetry
# are the patched copies scripts/build-firmware makes): A runs the SIP
# side; B joins through A and finds a terminal registered at A through the
# DHT.
start_api() { # start_api LOG: waits for a node's API address in LOG
	for _ in $(seq 150); do
		a=$(sed -n 's/.*msg="Node started".* api=\([0-9.:]*\).*/\1/p' "$1")
		[ -n "$a" ] && { echo "$a"; return 0; }
		sleep 0.1
	done
	return 1
}
"$bin" node --data-dir "$work/dht-a" --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --turn off --mdns=false \
	--sip 127.0.0.1:15090 >"$work/a.log" 2>&1 &
apid=$!
if a_api=$(start_api "$work/a.log"); then
	# A SIP phone (SIPp) registers with digest authentication.
	printf 'SEQUENTIAL\nfwphone;x;[authentication username=fwphone password=pw-fwphone]\n' >"$work/phone.csv"
	if curl -fsS -o /dev/null -H 'Content-Type: application/json' -d '{"user":"fwphone","password":"pw-fwphone"}' \
		"http://$a_api/v1/sip/users" &&
		sipp 127.0.0.1:15090 -sf "$root/sip/testdata/sipp/register_bench.xml" -inf "$work/phone.csv" -m 1 \
			-i 127.0.0.1 -nostdin -timeout 30s -timeout_error >"$work/sipp.log" 2>&1 &&
		curl -fsS "http://$a_api/v1/sip/bindings" | grep -q '"aor": *"fwphone"'; then
		pass "a SIP phone (SIPp, digest auth) registers at the firmware node"
	else
		fail "SIP registration at the firmware node: $(tail -3 "$work/sipp.log") $(tail -3 "$work/a.log")"
	fi
	a_addr=$(curl -fsS "http://$a_api/v1/node" | grep -o '"/ip4/127.0.0.1/tcp/[0-9]*/p2p/[^"]*"' | head -1 | tr -d '"')
	"$bin" node --data-dir "$work/dht-b" --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --turn off --mdns=false \
		--bootstrap "$a_addr" >"$work/b.log" 2>&1 &
	bpid=$!
	curl -fsS -o /dev/null -H 'Content-Type: application/json' \
		-d '{"name":"Firmware Probe","uid":"02:00:00:00:fe:01","ttl":600}' "http://$a_api/v1/terminals" || true
	found=0
	if b_api=$(start_api "$work/b.log"); then
		for _ in $(seq 30); do
			if curl -fsS "http://$b_api/v1/search?q=02:00:00:00:fe:01&timeout=2s" 2>/dev/null | grep -q '"via":"dht"'; then
				found=1
				break
			fi
			sleep 1
		done
	fi
	kill "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null || true
	[ "$found" = 1 ] && pass "node B found a terminal of node A through the DHT" ||
		fail "B did not find A's terminal through the DHT: $(tail -5 "$work/b.log")"
else
	fail "DHT node A did not start: $(cat "$work/a.log")"
fi
kill "$apid" 2>/dev/null; wait "$apid" 2>/dev/null || true

cat >"$work/node.yaml" <<YAML
data-dir: $work/data-full
listen: [/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1]
api: 127.0.0.1:0
turn: "off"
mdns: false
YAML
if node_up "$IRMV_FWTEST_DIST/irmv-full" "$work/node.yaml" && grep -q "quic-v1" "$work/info"; then
	pass "full build: node from a YAML config, on TCP and QUIC"
else
	fail "full build from a YAML config: $(cat "$work/node.log")"
fi

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all firmware checks passed"
