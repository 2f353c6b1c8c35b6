package sip

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/pion/rtp"

	"github.com/irmv/irmv/call/media"
)

// opusAnswer is a plain answer of the bridge: Opus (111) at 127.0.0.1:4000.
func opusAnswer() []byte {
	return answerSDP(net.IPv4(127, 0, 0, 1), 4000, []phoneCodec{{media.CodecOpus, 111}}, -1, 8000, 1, false)
}

func TestParseCrypto(t *testing.T) {
	key30 := "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes
	for _, tc := range []struct {
		in    string
		ok    bool
		suite string
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, true, "AES_CM_128_HMAC_SHA1_80"},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^31", true, "AES_CM_128_HMAC_SHA1_32"},
		{"3 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1048576", true, "AES_CM_128_HMAC_SHA1_80"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(key30, "="), true, "AES_CM_128_HMAC_SHA1_80"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4", false, ""},         // MKI
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4", false, ""},              // MKI
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", false, ""}, // session parameter
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, false, ""},  // two keys
		{"1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", false, ""},                           // short key
		{"1 AEAD_AES_128_GCM inline:" + key30, false, ""},                              // GCM: 28 bytes
		{"1 F8_128_HMAC_SHA1_80 inline:" + key30, false, ""},                           // unknown suite
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key30, false, ""},                       // tag
		{"1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key30, false, ""},              // tag > 9 digits
		{"1 AES_CM_128_HMAC_SHA1_80 " + key30, false, ""},                              // no inline:
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^99", false, ""},             // lifetime
		{"", false, ""},
	} {
		c, err := parseCrypto(tc.in)
		if (err == nil) != tc.ok || (tc.ok && c.suite != tc.suite) {
			t.Errorf("parseCrypto(%q) = %+v, %v; want ok %t", tc.in, c, err, tc.ok)
			continue
		}
		if tc.ok {
			back, err := parseCrypto(c.String())
			if err != nil || back.tag != c.tag || back.suite != c.suite || !bytes.Equal(back.keySalt, c.keySalt) {
				t.Errorf("round trip of %q: %+v, %v", c.String(), back, err)
			}
		}
	}
}

func TestParseSDES(t *testing.T) {
	offer := func(proto string, cryptos ...string) []byte {
		s := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 " + proto + " 111\r\na=rtpmap:111 opus/48000/2\r\n"
		for _, c := range cryptos {
			s += "a=crypto:" + c + "\r\n"
		}
		return []byte(s)
	}
	c80, c32 := newCrypto(7, "AES_CM_128_HMAC_SHA1_80"), newCrypto(3, "AES_CM_128_HMAC_SHA1_32")
	gcm := newCrypto(5, "AEAD_AES_128_GCM")

	o, err := parseSDES(offer("RTP/SAVP", c32.String(), "9 F8_128_HMAC_SHA1_80 inline:xyz", c80.String()))
	if err != nil || !o.savp() || len(o.cryptos) != 2 {
		t.Fatalf("SAVP offer: %+v, %v", o, err)
	}
	if c, ok := o.choose(); !ok || c.tag != 7 {
		t.Fatalf("chose %+v, want the AES_CM_128_HMAC_SHA1_80 line (tag 7)", c)
	}
	if o, _ := parseSDES(offer("RTP/AVP", c32.String(), gcm.String())); o.savp() {
		t.Fatal("RTP/AVP taken for SAVP")
	} else if c, _ := o.choose(); c.suite != "AEAD_AES_128_GCM" {
		t.Fatalf("chose %s, want AEAD_AES_128_GCM over the 32-bit tag", c.suite)
	}
	if _, err := parseSDES(offer("RTP/SAVP", "1 F8_128_HMAC_SHA1_80 inline:xyz")); err == nil {
		t.Fatal("RTP/SAVP without a usable crypto line accepted")
	}
	if o, err := parseSDES(offer("RTP/AVP")); err != nil || len(o.cryptos) != 0 {
		t.Fatalf("plain offer: %+v, %v", o, err)
	}

	// The bridge's answer carries its own key, under the phone's tag, in
	// the phone's proto; parseAudio still reads it.
	ours := newCrypto(7, "AES_CM_128_HMAC_SHA1_80")
	body := withSDES(opusAnswer(), "RTP/SAVP", ours)
	back, err := parseSDES(body)
	if err != nil || back.proto != "RTP/SAVP" || len(back.cryptos) != 1 || !bytes.Equal(back.cryptos[0].keySalt, ours.keySalt) {
		t.Fatalf("answer %q: %+v, %v", body, back, err)
	}
	if c, ok := back.answered(ours); !ok || c.tag != 7 {
		t.Fatal("answer does not answer the offer's tag")
	}
	if a, err := parseAudio(body); err != nil || a.opus != 111 || a.addr.Port != 4000 {
		t.Fatalf("parseAudio of the SRTP answer: %+v, %v", a, err)
	}
}

// Each suite: what one side protects, the other opens; a replayed, a
// tampered and a plain packet are refused.
func TestSRTPLeg(t *testing.T) {
	for _, s := range sdesSuites {
		t.Run(s.name, func(t *testing.T) {
			phoneKey, nodeKey := newCrypto(1, s.name), newCrypto(1, s.name)
			node, err := newSRTPLeg(nodeKey, phoneKey)
			if err != nil {
				t.Fatal(err)
			}
			phone, err := newSRTPLeg(phoneKey, nodeKey) // the phone's view
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 9, Timestamp: 960, SSRC: 5},
				Payload: []byte("twenty ms of opus")}).Marshal()
			sent, err := phone.encrypt(nil, plain)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(sent, []byte("twenty ms")) {
				t.Fatal("payload sent in clear")
			}
			got, err := node.decrypt(nil, sent)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("decrypt: %v", err)
			}
			if _, err := node.decrypt(nil, sent); err == nil {
				t.Error("replayed packet accepted")
			}
			bad, _ := phone.encrypt(nil, plain)
			bad[len(bad)-1] ^= 1
			if _, err := node.decrypt(nil, bad); err == nil {
				t.Error("tampered packet accepted")
			}
			p2, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 10, Timestamp: 1920, SSRC: 5},
				Payload: []byte("plain rtp, no tag")}).Marshal()
			if _, err := node.decrypt(nil, p2); err == nil {
				t.Error("plain RTP accepted")
			}
			back, err := node.encrypt(nil, plain)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := phone.decrypt(nil, back); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("phone decrypt: %v", err)
			}
		})
	}
}
