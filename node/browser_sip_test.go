//go:build !irmv_no_sip

package node_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/sip/baresiptest"
)

// TestBrowserBridgedPCMU: a SIP phone with G.711 only (a sipgo user agent
// sending PCMU) calls the web page: the page shows "bridged", Chromium
// negotiates PCMU with the bridge (the page does not filter codecs) and
// plays what the phone sends.
func TestBrowserBridgedPCMU(t *testing.T) {
	n := sipNode(t, "127.0.0.0/8")
	p := openPage(t, n, 1280, 800)
	p.register("Carla Web", "+49 40 5550100")
	sp := newSIPgoPhone(t, n, "deskphone")
	offer := strings.Replace(sp.offer(nil), " 111\r\na=rtpmap:111 opus/48000/2", " 0\r\na=rtpmap:0 PCMU/8000", 1)

	type answered struct {
		err  error
		body string
		stop func()
	}
	done := make(chan answered, 1)
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	go func() {
		sess, to, _, err := sp.call(ctx, "b1", "+49405550100", offer)
		if err != nil {
			done <- answered{err: err}
			return
		}
		// PCMU every 20 ms until the test ends the call.
		quit := make(chan struct{})
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for seq := uint16(0); ; seq++ {
				sp.rtp.WriteTo(pcmuPacket(seq, nil), to)
				select {
				case <-tick.C:
				case <-quit:
					return
				}
			}
		}()
		done <- answered{body: string(sess.InviteResponse.Body()), stop: func() {
			close(quit)
			<-sent
			sess.Bye(context.Background())
			sess.Close()
		}}
	}()
	p.waitFor(`document.body.dataset.call === "incoming"`)
	p.waitFor(`document.body.dataset.bridged === "1" && !document.getElementById("call-bridged").hidden`)
	p.do(chromedp.Click(chromedp.CSS("#accept")))
	a := <-done
	if a.err != nil {
		t.Fatalf("the phone's call: %v\npage state: %s", a.err, p.state())
	}
	if !strings.Contains(a.body, "RTP/AVP 0") {
		t.Errorf("the bridge answered the phone with\n%s\nwant PCMU (0)", a.body)
	}
	p.waitFor(`document.body.dataset.call === "connected"`)
	p.waitFor(`Number(document.getElementById("quality").dataset.packetsReceived) > 20`)
	a.stop()
	p.waitFor(`document.body.dataset.call === "ended"`)
}

// TestBrowserCallsBaresip: the web page calls a baresip phone registered
// at the node, once per codec the phone speaks (Opus, or G.711 only); the
// node bridges the page's WebRTC call to the phone's RTP. The page shows
// "bridged" and receives the phone's tone, baresip records the page's
// (fake) microphone, and when the page hangs up baresip sees the call end
// and is still running.
func TestBrowserCallsBaresip(t *testing.T) {
	for _, c := range []sipCase{{name: "opus", codec: "opus", rtt: true}, {name: "PCMU", codec: "PCMU"}, {name: "PCMA", codec: "PCMA"}} {
		t.Run(c.name, func(t *testing.T) {
			baresiptest.Need(t)
			n := sipNode(t)
			if _, err := n.SIP().AddUser(client.SIPUser{User: "alice", Password: "s3cret"}); err != nil {
				t.Fatal(err)
			}
			ph, rec := c.baresip(t, n, "alice", "s3cret", 440)
			term := n.SIP().Bindings()[0].Terminal

			p := openPage(t, n, 1280, 800)
			p.register("Wendy Web", "")
			p.search("alice", term)
			p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#results li[data-terminal=%q] .call-btn`, term))))
			p.waitFor(`document.body.dataset.call === "connected" && document.body.dataset.bridged === "1"`)
			ph.WaitOutput("Call established", browserWait)
			if c.g711() && !strings.Contains(ph.Output(), "Set audio decoder: "+c.codec) {
				t.Errorf("baresip did not decode %s:\n%s", c.codec, ph.Output())
			}
			p.waitFor(`Number(document.getElementById("quality").dataset.packetsReceived) > 100`)
			if c.rtt {
				// The phone leg's round trip (from baresip's RTCP): loopback.
				p.waitFor(`document.getElementById("quality").dataset.sipRtt !== undefined`)
				sip, err := strconv.ParseFloat(p.eval(`document.getElementById("quality").dataset.sipRtt`), 64)
				if err != nil {
					t.Fatal(err)
				}
				if shown := p.eval(`document.getElementById("q-sip").hidden ? "" : document.getElementById("q-sip-rtt").textContent`); sip < 0 || sip > 1 || !strings.HasSuffix(shown, " ms") {
					t.Errorf("SIP leg round trip %v s, shown %q: want 0 to 1 s, shown in ms", sip, shown)
				}
				t.Logf("SIP leg %.4f s", sip)
			}
			nodetest.WaitFor(t, "baresip hears the page", func() bool { return decodedBytes(rec) > 2*c.bytesPerSecond() })
			p.do(chromedp.Click(chromedp.CSS("#hangup")))
			ph.WaitHungUp(browserWait)
			p.waitFor(`document.body.dataset.call === "ended"`)
			if err := ph.Running(); err != nil {
				t.Error(err)
			}
		})
	}
}
