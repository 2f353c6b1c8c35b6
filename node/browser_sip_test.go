//go:build !irmv_no_sip

package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestBrowserBridgedPCMU: a SIP phone with G.711 only (a sipgo user agent
// sending PCMU) calls the web page: the page shows "bridged", Chromium
// negotiates PCMU with the bridge (the page does not filter codecs) and
// plays what the phone sends.
func TestBrowserBridgedPCMU(t *testing.T) {
	n := nodetest.Start(t, func() node.Options {
		o := nodetest.Options(t)
		o.SIP, o.SIPOpen = "127.0.0.1:0", []string{"127.0.0.0/8"}
		return o
	}())
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
