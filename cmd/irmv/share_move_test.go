package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// TestShareAddMovesKeylessTerminal: a terminal without a key registered at
// node a moves to node b with `share add --from --from-token`: a withdraws
// it, and searches at either node find it only at b.
func TestShareAddMovesKeylessTerminal(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := nodes[0], nodes[1]
	add := func(args ...string) client.Ack {
		t.Helper()
		code, out, errOut := runCLI(append([]string{"share", "add", "--json", "--uid", "handset-7", "--name", "Handset"}, args...)...)
		if code != exitOK {
			t.Fatalf("share add %v: exit %d\n%s", args, code, errOut)
		}
		var ack client.Ack
		if err := json.Unmarshal([]byte(out), &ack); err != nil {
			t.Fatalf("share add output %q: %v", out, err)
		}
		return ack
	}
	first := add("--node", a.APIURL())
	if first.Signer != "node" || first.Token == "" {
		t.Fatalf("registration at a: %+v", first)
	}
	add("--node", b.APIURL(), "--from", a.ID().String(), "--from-token", first.Token)
	nodetest.WaitFor(t, "a withdrew the terminal", func() bool { return a.Registry().Count() == 0 })
	for _, n := range nodes {
		cl, err := client.New(n.APIURL(), "")
		if err != nil {
			t.Fatal(err)
		}
		nodetest.WaitFor(t, "the terminal found only at b from "+n.APIURL(), func() bool {
			var at []string
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl.Search(ctx, client.Query{Text: "uid:handset-7", Timeout: time.Second}, func(r client.Result) error {
				at = append(at, r.Node)
				return nil
			})
			return len(at) == 1 && at[0] == b.ID().String()
		})
	}
}

// TestShareAddWrongFromTokenFails: a move with a wrong --from-token is
// refused by the previous node; `share add` says so and exits non-zero,
// and the terminal stays registered only at its previous node.
func TestShareAddWrongFromTokenFails(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if code, _, errOut := runCLI("share", "add", "--node", a.APIURL(), "--uid", "hk-10"); code != exitOK {
		t.Fatalf("share add at a: exit %d\n%s", code, errOut)
	}
	code, out, errOut := runCLI("share", "add", "--node", b.APIURL(), "--uid", "hk-10", "--from", a.ID().String(), "--from-token", "WRONG")
	if code != exitError {
		t.Fatalf("share add with a wrong --from-token: exit %d, want %d\n%s", code, exitError, out)
	}
	if !strings.Contains(errOut, "refused the move") || !strings.Contains(errOut, "wrong token") {
		t.Errorf("share add with a wrong --from-token says %q, want the previous node's refusal", errOut)
	}
	if n := b.Registry().Count(); n != 0 {
		t.Errorf("b hosts %d terminals after a refused move, want 0", n)
	}
	if n := a.Registry().Count(); n != 1 {
		t.Errorf("a hosts %d terminals after a refused move, want 1", n)
	}
}
