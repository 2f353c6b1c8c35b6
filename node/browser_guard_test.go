package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

// attackPage is a page of another site that turns the visitor's browser
// against the node at NODE: a no-cors fetch that registers a terminal, and
// two script loads of searches, one with results and one without, whose
// load/error events would tell them apart.
const attackPage = `<!doctype html><title>attack</title><script>
const node = NODE;
window.results = {};
function load(q) {
  return new Promise(resolve => {
    const s = document.createElement("script");
    s.src = node + "/v1/search?timeout=1s&q=" + encodeURIComponent(q);
    s.onload = () => resolve("load");
    s.onerror = () => resolve("error");
    document.head.appendChild(s);
  });
}
(async () => {
  try {
    const r = await fetch(node + "/v1/terminals", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({uid: "nocors-1", address: "6.6.6.6"})});
    window.results.nocors = r.type;
  } catch (e) { window.results.nocors = "failed: " + e; }
  window.results.found = await load("Oracle Target");
  window.results.none = await load("nobody-at-all");
  window.done = true;
})();
</script>`

// TestBrowserCrossSiteRefused drives real Chromium as a victim whose
// browser visits a page of another site (evil.test, resolved to loopback
// by Chromium's resolver rules, as DNS rebinding would): its no-cors fetch
// and form post change nothing, its script loads of searches cannot tell
// results from none, and the rebound name itself is refused as Host.
func TestBrowserCrossSiteRefused(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	if _, err := n.Registry().Register(client.Registration{Name: "Oracle Target", UID: "oracle-1", Address: "10.99.0.9"}); err != nil {
		t.Fatal(err)
	}
	nodeURL := n.APIURL()
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, strings.Replace(attackPage, "NODE", fmt.Sprintf("%q", nodeURL), 1))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil.Listener = ln
	evil.Start()
	t.Cleanup(evil.Close)
	_, evilPort, _ := net.SplitHostPort(ln.Addr().String())
	_, nodePort, _ := net.SplitHostPort(n.APIAddr().String())

	exe := testenv.Chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(browserFlags(t.TempDir()), chromedp.ExecPath(exe),
			chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"))...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelRun := context.WithTimeout(bctx, 2*browserWait)
	defer cancelRun()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return v
	}
	poll := func(cond string) {
		t.Helper()
		for {
			_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
				chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
			if err != nil && strings.Contains(err.Error(), "(-32000)") && ctx.Err() == nil {
				continue // the page navigated while polling (its context is gone): poll the new one
			}
			if err != nil {
				t.Fatalf("waiting for %s: %v (page: %s)", cond, err, eval(`document.documentElement.outerHTML.slice(0, 500)`))
			}
			return
		}
	}

	// The no-cors fetch and the search oracle.
	run("open the attack page", chromedp.Navigate("http://evil.test:"+evilPort+"/"))
	poll(`window.done === true`)
	var res map[string]string
	if err := json.Unmarshal([]byte(eval(`JSON.stringify(window.results)`)), &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("attack page: %v", res)
	if res["found"] != res["none"] {
		t.Errorf("a script load of a search tells results (%s) from none (%s)", res["found"], res["none"])
	}
	if n.Registry().Count() != 1 {
		t.Fatalf("the no-cors fetch (%s) registered a terminal: %d terminals", res["nocors"], n.Registry().Count())
	}

	// A form post: the browser navigates to the node's answer.
	run("submit a form", chromedp.Evaluate[chromedp.Void](`(() => {
  const f = document.createElement("form");
  f.method = "POST"; f.enctype = "text/plain"; f.action = `+fmt.Sprintf("%q", nodeURL+"/v1/terminals")+`;
  const i = document.createElement("input");
  i.name = '{"uid":"form-1","address":"6.6.6.6","x":"'; i.value = '"}';
  f.appendChild(i); document.body.appendChild(f); f.submit();
})()`))
	poll(fmt.Sprintf(`location.port === %q && document.body !== null && document.body.innerText.includes("error")`, nodePort))
	if body := eval(`document.body.innerText`); !strings.Contains(body, "cross-origin request refused") {
		t.Errorf("the form post answered %q", body)
	}
	if n.Registry().Count() != 1 {
		t.Fatalf("the form post registered a terminal: %d terminals", n.Registry().Count())
	}

	// DNS rebinding: evil.test now resolves to the node; its pages are
	// same-origin with the answers, so the Host check is what refuses.
	run("open the rebound name", chromedp.Navigate("http://evil.test:"+nodePort+"/v1/terminals"))
	poll(`document.body !== null && document.body.innerText.includes("error")`)
	if body := eval(`document.body.innerText`); !strings.Contains(body, "is not served here") {
		t.Errorf("the rebound name got %q", body)
	}
	got := eval(`fetch("/v1/terminals", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({uid: "rebound-1"})}).then(r => String(r.status))`)
	if got != "403" {
		t.Errorf("a same-origin registration under the rebound name: %s, want 403", got)
	}
	if n.Registry().Count() != 1 {
		t.Errorf("the rebound page registered a terminal: %d terminals", n.Registry().Count())
	}
}
