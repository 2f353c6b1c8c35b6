// Package baresiptest runs real baresip SIP phones for tests: headless,
// bound to one address, with a WAV file as microphone and, if asked, a
// recording of what they hear. The cons module takes commands (/dial,
// /hangup) over UDP. Each phone is killed when the test ends.
package baresiptest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irmv/irmv/internal/testenv"
)

// Config describes one phone.
type Config struct {
	// IP is the address the phone binds SIP and RTP to (net_interface).
	IP string
	// Account is the accounts line, e.g.
	// `"Alice" <sip:alice@127.0.0.1:5060>;auth_pass=pw;regint=300`.
	Account string
	// Source is a WAV file the phone sends as its microphone ("": none);
	// its sample rate should be the codec's (8000 Hz for G.711).
	Source string
	// Record is a directory where the sndfile module writes what the
	// phone hears ("": no recording).
	Record string
	// Codecs are the audio codec modules to load; nil: g711.
	Codecs []string
	// MediaEnc loads the srtp module for SDES-SRTP; the account then
	// needs ";mediaenc=srtp" (best effort: RTP/AVP with a=crypto) or
	// ";mediaenc=srtp-mand" (RTP/SAVP only).
	MediaEnc bool
	// CAFile is a PEM certificate the phone trusts for SIP over TLS
	// (sip_cafile; the account's URI then names ";transport=tls"). The
	// phone listens for TLS on its SIP port + 1. baresip 1.0 (libre 1.x)
	// does not check the node's certificate against it: it takes any.
	CAFile string
}

// Phone is a running baresip.
type Phone struct {
	t    testing.TB
	cmd  *exec.Cmd
	cons *net.UDPAddr
	dir  string

	mu  sync.Mutex
	out bytes.Buffer

	exited  chan struct{} // closed when baresip has exited
	waitErr error         // how it exited, once exited is closed
}

// Available reports whether baresip is installed.
func Available() bool {
	_, err := exec.LookPath("baresip")
	return err == nil
}

// Need ends the test when baresip is missing: a skip on a developer's
// machine, a failure where everything is required (internal/testenv).
func Need(t testing.TB) {
	t.Helper()
	testenv.Program(t, "baresip", "baresip-core")
}

// freePort picks a port that is free on ip for both UDP and TCP (baresip
// binds its SIP port on both), below the kernel's ephemeral range
// (32768–60999), where no outgoing connection can take it between the
// check and baresip's bind, and below baresip's rtp_ports.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	for range 200 {
		port := 10000 + rand.IntN(10000)
		addr := net.JoinHostPort(ip, fmt.Sprint(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		c, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		c.Close()
		return port
	}
	t.Fatalf("no free UDP+TCP port on %s in 10000-19999", ip)
	return 0
}

// tcpFree reports whether port is free for TCP on ip (baresip's TLS
// listener takes its SIP port + 1).
func tcpFree(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Start runs a phone until the test ends.
func Start(t testing.TB, c Config) *Phone {
	t.Helper()
	dir := t.TempDir()
	consPort := freePort(t, "127.0.0.1")
	sipPort := freePort(t, c.IP)
	for sipPort == consPort || sipPort+1 == consPort || !tcpFree(c.IP, sipPort+1) {
		sipPort = freePort(t, c.IP)
	}
	codecs := c.Codecs
	if codecs == nil {
		codecs = []string{"g711"}
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "poll_method\tepoll\nsip_listen\t%s\nnet_interface\t%s\n", net.JoinHostPort(c.IP, fmt.Sprint(sipPort)), c.IP)
	fmt.Fprintf(&cfg, "module_path\t/usr/lib/baresip/modules\nrtp_ports\t20000-29999\n")
	if c.CAFile != "" {
		fmt.Fprintf(&cfg, "sip_cafile\t%s\n", c.CAFile)
	}
	fmt.Fprintf(&cfg, "module\tcons.so\ncons_listen\t127.0.0.1:%d\n", consPort)
	for _, m := range codecs {
		fmt.Fprintf(&cfg, "module\t%s.so\n", m)
	}
	// rtcpsummary prints the call's RTCP statistics when it ends (see
	// RTCPSummary).
	fmt.Fprintf(&cfg, "module\taufile.so\nmodule\taubridge.so\nmodule\trtcpsummary.so\n")
	if c.MediaEnc {
		fmt.Fprintf(&cfg, "module\tsrtp.so\n")
	}
	if c.Source != "" {
		fmt.Fprintf(&cfg, "audio_source\taufile,%s\n", c.Source)
	} else {
		fmt.Fprintf(&cfg, "audio_source\taubridge,nil\n")
	}
	fmt.Fprintf(&cfg, "audio_player\taubridge,nil\naudio_alert\taubridge,nil\n")
	if c.Record != "" {
		fmt.Fprintf(&cfg, "module\tsndfile.so\nsnd_path\t%s\n", c.Record)
	}
	fmt.Fprintf(&cfg, "module_app\taccount.so\nmodule_app\tmenu.so\n")
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(c.Account+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Phone{t: t, dir: dir, cons: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: consPort}}
	p.cmd = exec.Command("baresip", "-f", dir)
	p.cmd.Stdout = (*lockedWriter)(p)
	p.cmd.Stderr = (*lockedWriter)(p)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("baresip output:\n%s", p.Output())
		}
	})
	p.WaitOutput("baresip is ready", 20*time.Second)
	return p
}

type lockedWriter Phone

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

// Output is what the phone printed so far.
func (p *Phone) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitOutput waits until the phone printed s. It fails at once when
// baresip exits before (a crash shows as "signal: segmentation fault").
func (p *Phone) WaitOutput(s string, timeout time.Duration) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("print %q", s), timeout, func(out string) bool { return strings.Contains(out, s) })
}

// HungUp is what baresip 1.0 prints when the other side ended the call
// with a BYE: libre answers the BYE 200 OK and closes the session with
// ECONNRESET (re/src/sipsess/listen.c), which baresip prints as is. Its
// "Call with … terminated (duration: …)" line comes only after calls of
// a second or more (print_summary skips a zero duration), so it does not
// tell that a short call ended.
const HungUp = "session closed: Connection reset by peer"

// WaitHungUp waits until the phone took the other side's BYE.
func (p *Phone) WaitHungUp(timeout time.Duration) {
	p.t.Helper()
	p.WaitOutput(HungUp, timeout)
}

// waitFor polls the output until done accepts it, baresip exits or the
// timeout passes.
func (p *Phone) waitFor(what string, timeout time.Duration, done func(out string) bool) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for out := p.Output(); !done(out); out = p.Output() {
		select {
		case <-p.exited:
			if out = p.Output(); !done(out) {
				p.t.Fatalf("baresip exited (%v) before it did %s; output:\n%s", p.waitErr, what, out)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("baresip did not %s in %s; output:\n%s", what, timeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports an error when baresip has exited (how it exited).
func (p *Phone) Running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("baresip exited: %v", p.waitErr)
	default:
		return nil
	}
}

// Command sends a command line to the cons module (e.g. "/dial sip:x@y").
func (p *Phone) Command(cmd string) {
	p.t.Helper()
	c, err := net.DialUDP("udp", nil, p.cons)
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		p.t.Fatal(err)
	}
}

// RTCPSummary waits for the line the rtcpsummary module prints when a
// call ends and returns its fields: PR and PS the packets received and
// sent, PL the packets lost (received, and as the other side reported
// of what it sent), JI the jitter in ms (the same two), DL the round
// trip in ms. baresip 1.0 fills them from the other side's RTCP when a
// Sender Report comes (its stream.c); a call without one fails the test
// ("ERROR=No RTCP stats collected").
func (p *Phone) RTCPSummary(timeout time.Duration) map[string]string {
	p.t.Helper()
	const prefix = "EX=BareSip;"
	p.WaitOutput(prefix, timeout)
	out := p.Output()
	line := out[strings.LastIndex(out, prefix)+len(prefix):]
	line, _, _ = strings.Cut(line, "\n")
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimSpace(line), ";") {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	if e, ok := fields["ERROR"]; ok {
		p.t.Fatalf("baresip's RTCP summary: %s", e)
	}
	return fields
}
