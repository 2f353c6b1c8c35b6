//go:build !irmv_no_sip

package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/sip"
)

// A phone places at most sip.MaxCallsPerPhone calls at a time: calling
// every terminal of an access point at once would hold an RTP port and a
// WebRTC peer per call for as long as they ring. The next gets 403.
func TestSIPCallsPerPhoneLimited(t *testing.T) {
	n := sipNode(t, "127.0.0.0/8")
	var callees []string
	for i := range sip.MaxCallsPerPhone + 1 {
		uid := fmt.Sprintf("ringer-%d", i)
		startGoPhone(t, n, client.Registration{Name: "Ringer " + uid, UID: uid},
			phone.Options{Answer: phone.AnswerAsk, Ask: func(ctx context.Context, _ phone.Incoming) bool {
				<-ctx.Done()
				return false
			}})
		find(t, n, uid, uid)
		callees = append(callees, uid)
	}
	p := newSIPgoPhone(t, n, "mallory")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	invite := func(i int) (*sipgo.DialogClientSession, chan error, chan struct{}) {
		inv := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{User: callees[i], Host: "127.0.0.1", Port: p.port})
		inv.AppendHeader(sipmsg.NewHeader("From", fmt.Sprintf("<sip:mallory@127.0.0.1>;tag=m%d", i)))
		inv.AppendHeader(sipmsg.NewHeader("To", "<sip:"+callees[i]+"@127.0.0.1>"))
		inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		inv.SetBody([]byte(p.offer(nil)))
		sess, err := p.dialogs.WriteInvite(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		answered, ringing := make(chan error, 1), make(chan struct{})
		go func() {
			answered <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sipmsg.Response) error {
				if res.StatusCode == 180 {
					select {
					case <-ringing:
					default:
						close(ringing)
					}
				}
				return nil
			}})
		}()
		return sess, answered, ringing
	}
	for i := range sip.MaxCallsPerPhone {
		_, answered, ringing := invite(i)
		select {
		case <-ringing:
		case err := <-answered:
			t.Fatalf("call %d: %v, want it ringing", i, err)
		case <-ctx.Done():
			t.Fatalf("call %d did not ring", i)
		}
	}
	_, answered, ringing := invite(sip.MaxCallsPerPhone)
	select {
	case <-ringing:
		t.Fatalf("call %d rings: over the maximum of %d", sip.MaxCallsPerPhone, sip.MaxCallsPerPhone)
	case err := <-answered:
		var de *sipgo.ErrDialogResponse
		if !errors.As(err, &de) || de.Res.StatusCode != 403 {
			t.Fatalf("call %d: %v, want 403", sip.MaxCallsPerPhone, err)
		}
	case <-ctx.Done():
		t.Fatalf("call %d: no answer", sip.MaxCallsPerPhone)
	}
	if got := metric(t, n, `irmv_sip_dropped_total{reason="calls"}`); got != 1 {
		t.Fatalf("irmv_sip_dropped_total{reason=calls} %v, want 1", got)
	}
}

// A BYE that names a call's dialog (Call-ID and both tags, as someone who
// saw the signalling knows them) but comes from another address than the
// phone's gets 481; the call goes on, and the phone's own BYE ends it.
func TestSIPByeFromAnotherAddress(t *testing.T) {
	n := sipNode(t, "127.0.0.0/8")
	_, bobEv := startGoPhone(t, n, client.Registration{Name: "Bob Answers", UID: "bob-answers"},
		phone.Options{Answer: phone.AnswerAuto})
	find(t, n, "bob-answers", "bob-answers")
	p := newSIPgoPhone(t, n, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, _, _, err := p.call(ctx, "a1", "bob-answers", p.offer(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	bobEv.wait(t, "incoming", ofType(client.EventIncoming))

	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, n.SIP().Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv, res := sess.InviteRequest, sess.InviteResponse
	fromTag, _ := inv.From().Params.Get("tag")
	toTag, _ := res.To().Params.Get("tag")
	fmt.Fprintf(c, "BYE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-spoof;rport\r\n"+
		"From: <sip:alice@127.0.0.1>;tag=%s\r\nTo: <sip:bob-answers@127.0.0.1>;tag=%s\r\nCall-ID: %s\r\nCSeq: 9 BYE\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", res.Contact().Address.String(), c.LocalAddr(), fromTag, toTag, inv.CallID().Value())
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	k, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sipmsg.ParseMessage(buf[:k])
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := m.(*sipmsg.Response); !ok || r.StatusCode != 481 {
		t.Fatalf("BYE from another address: %s, want 481", m.String())
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("the phone's BYE after the forged one: %v (the call had ended)", err)
	}
	bobEv.wait(t, "ended", ofType(client.EventEnded))
	if got := metric(t, n, `irmv_sip_outside_dialog_total{method="BYE"}`); got != 1 {
		t.Fatalf("irmv_sip_outside_dialog_total{method=BYE} %v, want 1", got)
	}
}

// A phone that registers a Contact naming a third party does not make the
// node send there: a call to the phone goes to the address it registered
// from (RFC 3581), so a REGISTER cannot point the node at another host.
func TestSIPContactNotFollowed(t *testing.T) {
	n := sipNode(t, "127.0.0.0/8")
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9)})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	ph, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, n.SIP().Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	fmt.Fprintf(ph, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-c1;rport\r\n"+
		"From: <sip:carol@127.0.0.1>;tag=c\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: contact-1\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:carol@%s>\r\nExpires: 300\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		n.SIP().Addr(), ph.LocalAddr(), victim.LocalAddr())
	buf := make([]byte, 65535)
	read := func(c *net.UDPConn, wait time.Duration) (sipmsg.Message, error) {
		c.SetReadDeadline(time.Now().Add(wait))
		k, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		return sipmsg.ParseMessage(buf[:k])
	}
	if m, err := read(ph, 20*time.Second); err != nil || m.(*sipmsg.Response).StatusCode != 200 {
		t.Fatalf("REGISTER: %v %v", m, err)
	}
	caller, _ := startGoPhone(t, n, client.Registration{Name: "Caller", UID: "caller"}, phone.Options{})
	res := find(t, n, "carol", "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go caller.Call(ctx, res, phone.CallOptions{})
	for {
		m, err := read(ph, 30*time.Second)
		if err != nil {
			t.Fatalf("no INVITE at the address carol registered from: %v", err)
		}
		if req, ok := m.(*sipmsg.Request); ok && req.Method == sipmsg.INVITE {
			break
		}
	}
	if m, err := read(victim, 500*time.Millisecond); err == nil {
		t.Fatalf("the Contact's host got %s", m)
	}
}

// The SIP bindings name every registered phone's address and contact:
// beyond loopback they need the admin token, like the list of terminals.
func TestSIPBindingsNeedAdminBeyondLoopback(t *testing.T) {
	n := lanNodeWith(t, func(o *node.Options) { o.SIP = "127.0.0.1:0" })
	for _, c := range []struct {
		token string
		want  int
	}{{"", 403}, {n.AdminToken(), 200}} {
		hdr := map[string]string{}
		if c.token != "" {
			hdr["Authorization"] = "Bearer " + c.token
		}
		if code, _ := raw(t, "GET", n.APIURL()+"/v1/sip/bindings", hdr, ""); code != c.want {
			t.Errorf("GET /v1/sip/bindings (token %v): %d, want %d", c.token != "", code, c.want)
		}
	}
}
