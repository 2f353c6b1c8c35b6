package main

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// goListDeps is every package the package pattern links with the build
// tags given.
func goListDeps(t *testing.T, tags, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, pattern).Output()
	if err != nil {
		t.Fatalf("go list -deps -tags %s %s: %v", tags, pattern, err)
	}
	return strings.Fields(string(out))
}

// TestNodeOnlyBuildLinksNoWebRTC: the firmware build (scripts/build-firmware's
// tags) without its SIP side (irmv_no_sip) links the TURN relay but none of
// the terminal's media stack: only the SIP bridge brings WebRTC in. The
// signalling messages depend on no pion package at all.
func TestNodeOnlyBuildLinksNoWebRTC(t *testing.T) {
	script, err := os.ReadFile("../../scripts/build-firmware")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^tags=\$\{IRMV_TAGS-([^}]*)\}`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/build-firmware: no default tags line")
	}
	tags := string(m[1]) + ",irmv_no_sip"
	deps := goListDeps(t, tags, ".")
	has := func(prefix string) bool {
		for _, d := range deps {
			if d == prefix || strings.HasPrefix(d, prefix+"/") {
				return true
			}
		}
		return false
	}
	if !has("github.com/pion/turn/v5") {
		t.Error("the node-only build has no pion/turn: is the relay gone?")
	}
	for _, p := range []string{
		"github.com/pion/webrtc/v4", "github.com/pion/ice/v4", "github.com/pion/sctp",
		"github.com/pion/srtp/v3", "github.com/pion/interceptor", "github.com/irmv/irmv/call/media",
	} {
		if has(p) {
			t.Errorf("the node-only build (-tags %s) links %s", tags, p)
		}
	}
	for _, d := range goListDeps(t, "", "github.com/irmv/irmv/call/signal") {
		if strings.HasPrefix(d, "github.com/pion/") || d == "github.com/irmv/irmv/call/media" {
			t.Errorf("call/signal depends on %s", d)
		}
	}
}

// TestImportGraph: cmd → node → {share, search, call} → the shared model
// (client, ident, record; call/signal is the wire protocol terminals speak,
// so client names its Party). A feature imports only itself, the model and
// internal/ helpers, never another feature; sim and sip assemble features as
// a node does (a simulated node's share and search; the SIP bridge places
// calls and finds terminals) and no feature imports them, node or cmd.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/irmv/irmv/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	area := func(p string) string { // the top directory, call/signal apart
		p = strings.TrimPrefix(p, mod)
		if p == "call/signal" {
			return "model"
		}
		top, _, _ := strings.Cut(p, "/")
		switch top {
		case "client", "ident", "record":
			return "model"
		}
		return top
	}
	may := map[string][]string{
		"model":  {"model", "internal"},
		"share":  {"share", "model", "internal"},
		"search": {"search", "model", "internal"},
		"call":   {"call", "model", "internal"},
		"sim":    {"sim", "share", "search", "model", "internal"},
		"sip":    {"sip", "call", "share", "search", "model", "internal"},
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		from := area(f[0])
		allowed, ok := may[from]
		if !ok {
			continue
		}
		checked++
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			if to := area(imp); !slices.Contains(allowed, to) {
				t.Errorf("%s imports %s: %s may import only %v", f[0], imp, from, allowed)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d packages checked: is the module path right?", checked)
	}
}
