package sip

import (
	"fmt"
	"sync"

	"github.com/pion/srtp/v3"
)

// replayWindow is the SRTP replay window on the phone's packets (RFC
// 3711 section 3.3.2: at least 64).
const replayWindow = 128

// srtpLeg protects the phone leg of a bridged call with SDES-SRTP: one
// context per direction, each with its own master key (the phone's for
// what it sends, the node's for what it receives). The phone's RTCP is
// SRTCP with the same key, authenticated and decrypted as it comes; the
// bridge's RTCP to the phone is SRTCP with the node's key.
type srtpLeg struct {
	local  sdesCrypto // the node's key, as it was sent to the phone
	in     *srtp.Context
	inMu   sync.Mutex
	out    *srtp.Context
	outMu  sync.Mutex
	remote sdesCrypto
	m      *metrics
}

// newSRTPLeg sets up both directions. local and remote must be of the
// same suite.
func newSRTPLeg(local, remote sdesCrypto) (*srtpLeg, error) {
	if local.suite != remote.suite {
		return nil, fmt.Errorf("%w: suites %s and %s", errCrypto, local.suite, remote.suite)
	}
	l := &srtpLeg{local: local}
	if err := l.rekey(remote); err != nil {
		return nil, err
	}
	var err error
	if l.out, err = newContext(local); err != nil {
		return nil, err
	}
	return l, nil
}

func newContext(c sdesCrypto, opts ...srtp.ContextOption) (*srtp.Context, error) {
	p, ok := suiteProfile(c.suite)
	if !ok {
		return nil, fmt.Errorf("%w: suite %q", errCrypto, c.suite)
	}
	k, _ := p.KeyLen()
	ctx, err := srtp.CreateContext(c.keySalt[:k], c.keySalt[k:], p, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCrypto, err)
	}
	return ctx, nil
}

// rekey takes the phone's key (again): a re-INVITE may bring a new one.
func (l *srtpLeg) rekey(remote sdesCrypto) error {
	l.inMu.Lock()
	defer l.inMu.Unlock()
	if l.in != nil && remote.suite == l.remote.suite && string(remote.keySalt) == string(l.remote.keySalt) {
		return nil
	}
	in, err := newContext(remote, srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	if err != nil {
		return err
	}
	l.in, l.remote = in, remote
	return nil
}

// decrypt authenticates and decrypts one SRTP packet from the phone into
// dst; an error means it was not the phone's (forged, replayed, plain).
func (l *srtpLeg) decrypt(dst, pkt []byte) ([]byte, error) {
	l.inMu.Lock()
	out, err := l.in.DecryptRTP(dst, pkt, nil)
	l.inMu.Unlock()
	if l.m != nil {
		if err != nil {
			l.m.srtpPackets.WithLabelValues("rejected").Inc()
		} else {
			l.m.srtpPackets.WithLabelValues("from_phone").Inc()
		}
	}
	return out, err
}

// decryptRTCP authenticates and decrypts one SRTCP packet from the phone
// into dst.
func (l *srtpLeg) decryptRTCP(dst, pkt []byte) ([]byte, error) {
	l.inMu.Lock()
	out, err := l.in.DecryptRTCP(dst, pkt, nil)
	l.inMu.Unlock()
	return out, err
}

// encrypt protects one RTP packet for the phone into dst.
func (l *srtpLeg) encrypt(dst, pkt []byte) ([]byte, error) {
	l.outMu.Lock()
	out, err := l.out.EncryptRTP(dst, pkt, nil)
	l.outMu.Unlock()
	if err == nil && l.m != nil {
		l.m.srtpPackets.WithLabelValues("to_phone").Inc()
	}
	return out, err
}

// encryptRTCP protects one RTCP compound packet for the phone into dst.
func (l *srtpLeg) encryptRTCP(dst, pkt []byte) ([]byte, error) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	return l.out.EncryptRTCP(dst, pkt, nil)
}

// offerTag and offerSuite are the crypto line the bridge offers a phone
// it calls: first on RTP/AVP (best effort, RFC 4568 section 5.1.2 aside,
// as phones without SRTP ignore it), on RTP/SAVP to a phone that refused
// that with 488.
const (
	offerTag   = 1
	offerSuite = "AES_CM_128_HMAC_SHA1_80"
)

// leg is the call's SRTP, nil for plain RTP.
func (bc *bridgeCall) leg() *srtpLeg {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return bc.srtp
}

// answerSRTP sets up SRTP for a phone's offer that has crypto lines: the
// node's key answers the most preferred suite. Without crypto lines the
// leg stays plain.
func (s *Server) answerSRTP(bc *bridgeCall, o sdesOffer) error {
	remote, ok := o.choose()
	if !ok {
		if o.savp() {
			return errNoCrypto
		}
		return nil
	}
	leg, err := newSRTPLeg(newCrypto(remote.tag, remote.suite), remote)
	if err != nil {
		return err
	}
	s.useSRTP(bc, leg, o.proto)
	return nil
}

// useSRTP makes leg the call's SRTP; proto is the stream's in the
// bridge's answers.
func (s *Server) useSRTP(bc *bridgeCall, leg *srtpLeg, proto string) {
	leg.m = s.m
	bc.mu.Lock()
	bc.srtp, bc.proto = leg, proto
	bc.mu.Unlock()
	s.m.srtpCalls.Inc()
	s.log.Debug("SIP phone leg is SRTP", "call", bc.id, "suite", leg.local.suite)
}

// offerSRTP adds the node's crypto line to its offer to a phone, on
// RTP/SAVP if savp, else on RTP/AVP.
func (bc *bridgeCall) offerSRTP(body []byte, savp bool) []byte {
	c := newCrypto(offerTag, offerSuite)
	bc.mu.Lock()
	bc.offered = c
	bc.mu.Unlock()
	proto := "RTP/AVP"
	if savp {
		proto = "RTP/SAVP"
	}
	return withSDES(body, proto, c)
}

// acceptSRTP reads the phone's answer to offerSRTP: SRTP when it answered
// the crypto line, plain RTP when it left it out.
func (s *Server) acceptSRTP(bc *bridgeCall, answer []byte) error {
	o, err := parseSDES(answer)
	if err != nil {
		return err
	}
	bc.mu.Lock()
	local := bc.offered
	bc.mu.Unlock()
	remote, ok := o.answered(local)
	if !ok {
		if o.savp() {
			return errNoCrypto
		}
		return nil
	}
	leg, err := newSRTPLeg(local, remote)
	if err != nil {
		return err
	}
	s.useSRTP(bc, leg, o.proto)
	return nil
}

// reofferSRTP takes the SRTP part of a re-INVITE's offer: an SRTP call
// stays SRTP with the suite it has (the phone may bring a new key), a
// plain call stays plain.
func (bc *bridgeCall) reofferSRTP(offer []byte) error {
	leg := bc.leg()
	o, err := parseSDES(offer)
	switch {
	case err != nil:
		return err
	case leg == nil && o.savp():
		return errNoCrypto
	case leg == nil:
		return nil
	}
	for _, c := range o.cryptos {
		if c.suite == leg.local.suite {
			if err := leg.rekey(c); err != nil {
				return err
			}
			bc.mu.Lock()
			leg.local.tag = c.tag
			bc.mu.Unlock()
			return nil
		}
	}
	return errNoCrypto
}

// protect adds the call's crypto line to an SDP body the bridge sends
// (plain calls: unchanged).
func (bc *bridgeCall) protect(body []byte) []byte {
	bc.mu.Lock()
	leg, proto := bc.srtp, bc.proto
	var local sdesCrypto
	if leg != nil {
		local = leg.local
	}
	bc.mu.Unlock()
	if leg == nil {
		return body
	}
	return withSDES(body, proto, local)
}
