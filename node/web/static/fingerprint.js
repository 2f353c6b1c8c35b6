// The signed DTLS fingerprint of a call's session descriptions, as
// call/signal's Description (description.go): the sender signs its SDP's
// a=fingerprint with its terminal key, so that a node on the signalling
// path cannot put itself into the media path unseen. Tested with the Go
// code's cases, call/signal/testdata/description-cases.json (node
// TestBrowserDescriptionCases).

const CONTEXT = "irmv-dtls-fingerprint:"; // signal fingerprintContext
const enc = new TextEncoder();

// The errors of signal.Description.Verify, which verifyDescription's
// answers start with.
export const ERR_BAD_SIG = "bad fingerprint signature";
export const ERR_MISMATCH = "SDP fingerprint does not match the signed fingerprint";

// fingerprintsOf returns the values of all a=fingerprint attributes of
// sdp, session and media level, in order.
export function fingerprintsOf(sdp) {
  const out = [];
  for (const line of (sdp || "").split(/\r?\n/)) {
    if (line.startsWith("a=fingerprint:")) out.push(line.slice(14).trim());
  }
  return out;
}

// sameFingerprint compares two fingerprint values ignoring case and runs
// of spaces between hash function and value (RFC 8122 section 5).
export function sameFingerprint(a, b) {
  const norm = (s) => s.trim().split(/\s+/).join(" ").toLowerCase();
  return norm(a) === norm(b);
}

// describe builds the signed Description of a local RTCSessionDescription;
// sign(bytes) resolves to the terminal key's Ed25519 signature.
export async function describe(desc, sign) {
  const fps = fingerprintsOf(desc.sdp);
  if (fps.length === 0) throw new Error(ERR_MISMATCH + ": local SDP has no a=fingerprint");
  const sig = await sign(enc.encode(CONTEXT + fps[0]));
  return { type: desc.type, sdp: desc.sdp, fingerprint: fps[0], sig: b64(sig) };
}

// verifyDescription is Description.Verify: the signature over the
// fingerprint when the sender has a key (raw Ed25519 public key bytes,
// null for none), and that every a=fingerprint of the SDP is the signed
// one. It answers "" or what is wrong.
export async function verifyDescription(d, key) {
  d = d || {};
  if (key) {
    if (key.length !== 32) return ERR_BAD_SIG + ": public key has " + key.length + " bytes";
    if (!d.sig) return ERR_BAD_SIG + ": description is unsigned";
    let ok = false;
    try {
      const k = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
      ok = await crypto.subtle.verify({ name: "Ed25519" }, k, unb64(d.sig), enc.encode(CONTEXT + (d.fingerprint || "")));
    } catch (_) { ok = false; }
    if (!ok) return ERR_BAD_SIG + ": signature does not verify";
  }
  const fps = fingerprintsOf(d.sdp);
  if (fps.length === 0) return ERR_MISMATCH + ": SDP has no a=fingerprint";
  for (const fp of fps) {
    if (!sameFingerprint(fp, d.fingerprint || "")) return ERR_MISMATCH + ": SDP has " + fp + ", signed " + d.fingerprint;
  }
  return "";
}

function b64(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}
