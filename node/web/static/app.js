// irmv web terminal: registers this browser as a terminal with its own
// Ed25519 key, searches the directory and calls over the browser's WebRTC,
// speaking the node's terminal API and the signalling of call/signal
// exactly as `irmv phone` does. Page state is mirrored into data-*
// attributes on <body> (data-state, data-ws, data-call, data-chat,
// data-route, data-leg) for tests and CSS.
"use strict";

const PING_MS = 10000;              // phone.PingInterval
const REREGISTER_MS = 8 * 3600e3;   // phone.ReregisterInterval (record.MaxAge / 3)
const RECORD_CONTEXT = "irmv-record-v1:";          // share/record signContext
const FP_CONTEXT = "irmv-dtls-fingerprint:";       // call/media sigContext
const DB_NAME = "irmv", DB_STORE = "keys", KEY_ID = "terminal";
const LEG_TIMEOUT_MS = 10000;       // phone.RerouteTimeout: a new leg not up by then is given up
const LEG_CHAT_GRACE_MS = 3000;     // a connected new leg takes over without its chat channel
const MAX_LEG = 1000;               // signal.MaxLeg

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();

// ---- small helpers -------------------------------------------------------

function b64(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function setState(k, v) { document.body.dataset[k] = v; }

function show(el, on) { el.hidden = !on; }

function randomHex(n) {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function label(ids) {
  if (!ids) return "";
  return ids.name || ids.phone || ids.uid || ids.ip || "";
}

function idLine(ids) {
  if (!ids) return "";
  return [ids.phone, ids.uid ? "ID " + ids.uid : "", ids.ip].filter(Boolean).join(" · ");
}

async function api(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = "Bearer " + token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty or not JSON */ }
  if (!res.ok) throw new Error((data && data.error) || res.status + " " + res.statusText);
  return data;
}

// ---- the terminal key, kept in IndexedDB ---------------------------------

function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(DB_STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function dbOp(mode, fn) {
  return openDB().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(DB_STORE, mode);
    const req = fn(tx.objectStore(DB_STORE));
    tx.oncomplete = () => { db.close(); resolve(req.result); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  }));
}

// loadKey returns the stored key pair, creating one (private part not
// extractable) on first use.
async function loadKey() {
  let pair = await dbOp("readonly", (s) => s.get(KEY_ID));
  if (!pair) {
    pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    await dbOp("readwrite", (s) => s.put(pair, KEY_ID));
  }
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { priv: pair.privateKey, pub };
}

async function sign(bytes) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, T.key.priv, bytes));
}

async function verify(pub, sig, bytes) {
  const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, sig, bytes);
}

// ---- terminal state ------------------------------------------------------

const T = {
  key: null,        // {priv, pub}
  reg: null,        // identifiers as typed
  ack: null,        // the node's acknowledgement
  ws: null,
  node: "",         // hosting node's peer ID, from welcome
  ice: [],          // ICE servers, from welcome
  pingTimer: 0,
  backoff: 250,
  call: null,       // the one call, see newCall
  searchAbort: null,
};

// ---- registration --------------------------------------------------------

function regFields() {
  return {
    name: $("reg-name").value.trim(),
    phone: $("reg-phone").value.trim(),
    uid: $("reg-uid").value.trim(),
  };
}

async function register(fields) {
  const reg = { keepalive: true, key: b64(T.key.pub) };
  for (const k of ["name", "phone", "uid"]) if (fields[k]) reg[k] = fields[k];
  const status = T.ack ? $("status").value : "";
  if (status) reg.status = status;
  const prep = await api("POST", "/v1/terminals/prepare", reg);
  // prep.sign is "irmv-record-v1:" + body; rebuild it to be sure what we sign.
  const body = unb64(prep.body);
  const want = concat(enc.encode(RECORD_CONTEXT), body);
  if (b64(want) !== prep.sign) throw new Error("the node asked to sign something other than the record");
  reg.body = prep.body;
  reg.sig = b64(await sign(want));
  const ack = await api("POST", "/v1/terminals", reg);
  T.reg = fields;
  T.ack = ack;
  localStorage.setItem("irmv-identifiers", JSON.stringify(fields));
  return ack;
}

function showAck(ack) {
  const dl = $("ack-list");
  dl.textContent = "";
  const rows = [
    ["Name", ack.identifiers.name],
    ["Phone", ack.identifiers.phone],
    ["Unique ID", ack.identifiers.uid],
    ["Terminal", ack.terminal],
    ["Signed by", ack.signer],
    ["Expires", new Date(ack.expires_at).toLocaleString()],
  ];
  for (const [k, v] of rows) {
    if (!v) continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.dataset.field = k.toLowerCase().replace(/ /g, "-");
    dl.append(dt, dd);
  }
  $("status").value = ack.status || "online";
  const me = $("me");
  me.textContent = label(ack.identifiers);
  show(me, true);
  document.body.dataset.terminal = ack.terminal;
}

async function onRegister(ev) {
  ev.preventDefault();
  const fields = regFields();
  const err = $("reg-error");
  show(err, false);
  if (!fields.name && !fields.phone && !fields.uid) {
    err.textContent = "Give at least a name, a phone number or a unique ID.";
    show(err, true);
    return;
  }
  $("reg-submit").disabled = true;
  setState("state", "registering");
  try {
    const ack = await register(fields);
    showAck(ack);
    show($("register"), false);
    show($("ack"), true);
    show($("search"), true);
    setState("state", "registered");
    connect();
  } catch (e) {
    err.textContent = "Registration failed: " + e.message;
    show(err, true);
    setState("state", T.ack ? "registered" : "unregistered");
  } finally {
    $("reg-submit").disabled = false;
  }
}

async function onStatus() {
  const st = $("status").value;
  try {
    const ack = await api("PUT", "/v1/terminals/" + encodeURIComponent(T.ack.terminal) + "/status", { status: st }, T.ack.token);
    document.body.dataset.status = ack.status;
  } catch (e) {
    alert("Setting the status failed: " + e.message);
  }
}

async function reregister() {
  try {
    const ack = await register(T.reg);
    showAck(ack);
  } catch (e) {
    console.warn("re-registration failed", e);
  }
}

// ---- the node's WebSocket ------------------------------------------------

function connect() {
  if (T.ws) return;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
  const ws = new WebSocket(url);
  T.ws = ws;
  setConn("connecting");
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", terminal: T.ack.terminal, token: T.ack.token }));
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (_) { return; }
    onMessage(m);
  };
  ws.onclose = () => {
    clearInterval(T.pingTimer);
    if (T.ws !== ws) return;
    T.ws = null;
    setConn("offline");
    if (T.call && !T.call.ended) endCall("node", false);
    const wait = T.backoff;
    T.backoff = Math.min(T.backoff * 2, 10000);
    setTimeout(async () => {
      if (T.helloRefused) { T.helloRefused = false; await reregister(); }
      connect();
    }, wait);
  };
}

function setConn(s) {
  setState("ws", s);
  const el = $("conn");
  el.textContent = s === "open" ? "connected" : s;
  el.className = "pill " + (s === "open" ? "ok" : s === "connecting" ? "warn" : "bad");
}

function send(m) {
  if (!T.ws || T.ws.readyState !== WebSocket.OPEN) return false;
  T.ws.send(JSON.stringify(m));
  return true;
}

function onMessage(m) {
  switch (m.type) {
    case "welcome":
      T.node = m.node || "";
      T.ice = (m.ice_servers || []).map((s) => {
        const o = { urls: s.urls };
        if (s.username) o.username = s.username;
        if (s.credential) o.credential = s.credential;
        return o;
      });
      T.backoff = 250;
      setConn("open");
      clearInterval(T.pingTimer);
      T.pingTimer = setInterval(() => send({ type: "ping" }), PING_MS);
      return;
    case "ping":
      send({ type: "pong" });
      return;
    case "pong":
      return;
    case "invite":
      onInvite(m);
      return;
    case "error":
      if (!m.call) {
        // Before welcome this means the registration is gone: register anew.
        if (document.body.dataset.ws !== "open") T.helloRefused = true;
        console.warn("node refused:", m.reason);
        return;
      }
  }
  const c = T.call;
  if (!c || c.id !== m.call || c.ended) return;
  onCallMessage(c, m);
}

// ---- search --------------------------------------------------------------

async function onSearch(ev) {
  ev.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) return;
  if (T.searchAbort) T.searchAbort.abort();
  const abort = new AbortController();
  T.searchAbort = abort;
  const list = $("results");
  list.textContent = "";
  const info = $("search-info");
  info.textContent = "Searching…";
  setState("search", "running");
  let n = 0;
  try {
    const res = await fetch("/v1/search?q=" + encodeURIComponent(q), { signal: abort.signal });
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try { msg = (await res.json()).error || msg; } catch (_) { /* keep status */ }
      throw new Error(msg);
    }
    // NDJSON: show each result as its line arrives.
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        addResult(JSON.parse(line));
        n++;
        info.textContent = n + (n === 1 ? " terminal" : " terminals") + " found so far…";
      }
      if (done) break;
    }
    info.textContent = n === 0 ? "Nobody found for “" + q + "”." : n + (n === 1 ? " terminal found." : " terminals found.");
  } catch (e) {
    if (e.name === "AbortError") return;
    info.textContent = "Search failed: " + e.message;
  } finally {
    if (T.searchAbort === abort) {
      T.searchAbort = null;
      setState("search", "done");
    }
  }
}

function addResult(r) {
  const li = $("result-tpl").content.firstElementChild.cloneNode(true);
  li.dataset.terminal = r.terminal;
  li.dataset.node = r.node;
  li.dataset.status = r.status;
  if (r.identifiers.phone) li.dataset.phone = r.identifiers.phone;
  li.querySelector(".who-name").textContent = label(r.identifiers) || r.terminal;
  const via = r.via + (r.verified ? ", verified" : "");
  li.querySelector(".who-ids").textContent = [idLine(r.identifiers), via].filter(Boolean).join(" · ");
  const st = li.querySelector(".status");
  st.textContent = r.status;
  st.className = "status st-" + r.status;
  const btn = li.querySelector(".call-btn");
  const self = T.ack && r.node === T.node && r.terminal === T.ack.terminal;
  btn.disabled = self || !(r.status === "online" || r.status === "idle");
  if (self) btn.textContent = "You";
  btn.addEventListener("click", () => startCall(r));
  $("results").append(li);
}

// ---- calls ---------------------------------------------------------------

function newCall(id, outgoing, remote, remoteKey) {
  return {
    id, outgoing, remote, remoteKey,
    cur: newLeg(0), next: null, // the leg carrying the call, the one being brought up
    stream: null,               // our microphone, sent on every leg
    route: "", routeWhy: "",
    statsTimer: 0, ended: false, invite: null,
  };
}

function setCallState(c, s, text) {
  if (T.call !== c) return;
  setState("call", s);
  const pill = $("call-state");
  pill.textContent = text || s;
  pill.className = "pill " + ({ connected: "ok", ended: "bad" }[s] || "warn");
  show($("ring-actions"), s === "incoming");
  show($("hangup-row"), s !== "incoming" && s !== "ended");
  show($("chat-form"), s === "connected");
  show($("quality"), s === "connected" || (s === "ended" && c.statsSeen));
}

function showCall(c) {
  T.call = c;
  $("call-title").textContent = c.outgoing ? "Calling" : "Incoming call";
  $("call-peer").textContent = label(c.remote.identifiers) || c.remote.terminal;
  $("chat-log").textContent = "";
  for (const id of ["q-loss", "q-jitter", "q-rtt", "q-route"]) $(id).textContent = "–";
  setState("route", "");
  setState("leg", "0");
  setState("routeChanges", "0");
  warn("");
  show($("call"), true);
  $("call").scrollIntoView({ block: "nearest" });
}

function warn(text) {
  const w = $("call-warning");
  w.textContent = text;
  show(w, !!text);
}

function fingerprintsOf(sdp) {
  const out = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith("a=fingerprint:")) out.push(line.slice(14).trim());
  }
  return out;
}

function sameFP(a, b) {
  const norm = (s) => s.trim().split(/\s+/).join(" ").toLowerCase();
  return norm(a) === norm(b);
}

// describe builds a signed call/media Description of our local SDP.
async function describe(desc) {
  const fps = fingerprintsOf(desc.sdp);
  if (fps.length === 0) throw new Error("local SDP has no a=fingerprint");
  const sig = await sign(enc.encode(FP_CONTEXT + fps[0]));
  return { type: desc.type, sdp: desc.sdp, fingerprint: fps[0], sig: b64(sig) };
}

// checkDesc is call/media's Description.Verify: the signature over the
// fingerprint (when the sender has a key) and every SDP fingerprint.
async function checkDesc(d, key) {
  if (!d || !d.sdp) return "no session description";
  if (key) {
    if (!d.sig) return "the description is unsigned";
    let ok = false;
    try { ok = await verify(key, unb64(d.sig), enc.encode(FP_CONTEXT + d.fingerprint)); } catch (_) { ok = false; }
    if (!ok) return "the fingerprint signature does not verify";
  }
  const fps = fingerprintsOf(d.sdp);
  if (fps.length === 0) return "the SDP has no a=fingerprint";
  for (const fp of fps) if (!sameFP(fp, d.fingerprint)) return "the SDP fingerprint is not the signed one";
  return "";
}

// Known keys: the key of each identifier called successfully; a change is
// shown as a warning.
function knownKeys() {
  try { return JSON.parse(localStorage.getItem("irmv-known-keys") || "{}"); } catch (_) { return {}; }
}

function keyWarnings(ids, key) {
  const known = knownKeys(), out = [];
  for (const k of ["phone", "uid", "name"]) {
    const v = ids && ids[k];
    if (v && known[k + ":" + v] && known[k + ":" + v] !== key) out.push("the key of " + v + " has changed since your last call");
  }
  return out;
}

function rememberKey(ids, key) {
  if (!key) return;
  const known = knownKeys();
  for (const k of ["phone", "uid", "name"]) if (ids && ids[k]) known[k + ":" + ids[k]] = key;
  localStorage.setItem("irmv-known-keys", JSON.stringify(known));
}

// A call's connections are legs (call/phone route.go): leg 0 is set up by
// invite/accept; a caller that moves the call to another route offers a
// leg n > 0 in an update. The page answers it on a second connection and,
// once that is connected and its chat channel open, moves audio and chat
// over and closes the old one (make-before-break).
function newLeg(n, route, reason) {
  return {
    n, route: route || "", reason: reason || "",
    pc: null, chat: null, remoteStream: null,
    sent: false, localPending: [], remotePending: [], remoteSet: false,
    connected: false, closed: false, timer: 0, graceTimer: 0,
  };
}

// isRelayRoute: any route name starting with "relay" is relay-only
// ("relayed", and relay routes a newer phone may name).
function isRelayRoute(route) { return typeof route === "string" && route.startsWith("relay"); }

function newPC(c, l, relayOnly) {
  const pc = new RTCPeerConnection({ iceServers: T.ice, iceTransportPolicy: relayOnly ? "relay" : "all" });
  l.pc = pc;
  pc.onicecandidate = (ev) => {
    if (!ev.candidate || !ev.candidate.candidate) return; // end of candidates
    const ci = ev.candidate.toJSON();
    if (l.sent) sendCandidate(c, l, ci);
    else l.localPending.push(ci);
  };
  pc.ontrack = (ev) => {
    l.remoteStream = ev.streams[0] || new MediaStream([ev.track]);
    if (c.cur === l) playRemote(l);
  };
  pc.ondatachannel = (ev) => { if (ev.channel.label === "chat") setChat(c, l, ev.channel); };
  pc.onconnectionstatechange = () => onLegState(c, l);
  return pc;
}

async function newPeer(c) {
  const pc = newPC(c, c.cur, c.remote.private);
  try {
    c.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    warn("No microphone (" + e.message + "): you will only listen.");
  }
  return pc;
}

function playRemote(l) {
  if (!l.remoteStream) return;
  const audio = $("remote-audio");
  if (audio.srcObject === l.remoteStream) return;
  audio.srcObject = l.remoteStream;
  audio.play().catch(() => { /* autoplay may need a gesture; the call goes on */ });
}

function onLegState(c, l) {
  if (c.ended || l.closed) return;
  const st = l.pc.connectionState;
  if (l === c.cur) {
    if (st === "connected" && !c.connectedAt) {
      c.connectedAt = performance.now();
      rememberKey(c.remote.identifiers, c.remote.key);
      setCallState(c, "connected", "connected");
      $("call-title").textContent = "In call with";
      c.statsTimer = setInterval(() => stats(c), 1000);
    } else if (st === "failed") {
      // The leg being brought up may still carry the call on.
      if (!c.next) endCall("failed", true);
    }
    return;
  }
  if (l !== c.next) return;
  if (st === "connected") {
    l.connected = true;
    // Take over once the chat channel is open too, as call/phone does; a
    // caller that opens none does not hold the switch up for long.
    if (!l.graceTimer) l.graceTimer = setTimeout(() => { if (c.next === l) takeOver(c, l); }, LEG_CHAT_GRACE_MS);
    maybeTakeOver(c, l);
  } else if (st === "failed" || st === "closed") {
    abandonLeg(c, "its connection failed");
  }
}

function addTracks(c, pc) {
  if (c.stream) {
    for (const t of c.stream.getAudioTracks()) pc.addTrack(t, c.stream);
  } else {
    pc.addTransceiver("audio", { direction: "recvonly" });
  }
}

function setChat(c, l, dc) {
  l.chat = dc;
  dc.onopen = () => {
    if (c.cur === l) { if (T.call === c) document.body.dataset.chat = "open"; }
    else if (c.next === l) maybeTakeOver(c, l);
  };
  dc.onclose = () => { if (T.call === c && c.cur === l) document.body.dataset.chat = "closed"; };
  dc.onmessage = (ev) => { if (typeof ev.data === "string") chatLine(ev.data, "them"); };
}

function chatLine(text, who) {
  const li = document.createElement("li");
  li.className = who;
  li.textContent = text;
  $("chat-log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function sendCandidate(c, l, ci) {
  const m = { type: "candidate", call: c.id, candidate: ci };
  if (l.n) m.leg = l.n;
  send(m);
}

function flushLocal(c, l) {
  l.sent = true;
  for (const ci of l.localPending) sendCandidate(c, l, ci);
  l.localPending = [];
}

async function addRemote(l, ci) {
  if (!ci || l.closed) return;
  if (!l.remoteSet) {
    if (l.remotePending.length < 64) l.remotePending.push(ci);
    return;
  }
  try { await l.pc.addIceCandidate(ci); } catch (e) { console.debug("remote candidate refused", e); }
}

async function remoteSet(l) {
  l.remoteSet = true;
  const pending = l.remotePending;
  l.remotePending = [];
  for (const ci of pending) await addRemote(l, ci);
}

// legOf is the call's leg numbered n (0 when left out), null if gone.
function legOf(c, n) {
  n = Number(n) || 0;
  if (c.cur.n === n) return c.cur;
  if (c.next && c.next.n === n) return c.next;
  return null;
}

async function startCall(r) {
  if (T.call && !T.call.ended) return;
  if (!T.node) { alert("Not connected to the node yet."); return; }
  const key = r.key ? unb64(r.key) : null;
  const remote = { node: r.node, terminal: r.terminal, identifiers: r.identifiers, key: r.key || "", private: !!r.private };
  const c = newCall(randomHex(16), true, remote, key);
  showCall(c);
  setCallState(c, "calling", "calling…");
  const warnings = key ? keyWarnings(r.identifiers, r.key) : ["the callee has no key: its identity cannot be verified"];
  if (warnings.length) warn(warnings.join("; "));
  try {
    const pc = await newPeer(c);
    if (c.ended) return;
    setChat(c, c.cur, pc.createDataChannel("chat")); // the caller creates it (call/media)
    addTracks(c, pc);
    await pc.setLocalDescription(await pc.createOffer());
    const desc = await describe(pc.localDescription);
    if (c.ended) return;
    const self = { node: T.node, terminal: T.ack.terminal, identifiers: T.ack.identifiers, key: b64(T.key.pub) };
    if (!send({ type: "invite", call: c.id, from: self, to: { node: r.node, terminal: r.terminal }, desc })) {
      throw new Error("not connected to the node");
    }
    flushLocal(c, c.cur);
    c.ringTimer = setTimeout(() => endCall("no answer", true), 30000);
  } catch (e) {
    warn("Call failed: " + e.message);
    endCall("failed", false);
  }
}

async function onCallMessage(c, m) {
  switch (m.type) {
    case "candidate": {
      const l = legOf(c, m.leg);
      if (l) await addRemote(l, m.candidate);
      return;
    }
    case "update":
      await onUpdate(c, m);
      return;
    case "ringing":
      if (c.outgoing && !c.connectedAt) setCallState(c, "ringing", "ringing…");
      return;
    case "accept": {
      if (!c.outgoing || c.cur.remoteSet) return;
      clearTimeout(c.ringTimer);
      const bad = await checkDesc(m.desc, c.remoteKey);
      if (bad) {
        warn("The callee's answer does not verify: " + bad);
        endCall("identity", true);
        return;
      }
      setCallState(c, "connecting", "connecting…");
      try {
        await c.cur.pc.setRemoteDescription({ type: "answer", sdp: m.desc.sdp });
        await remoteSet(c.cur);
      } catch (e) {
        warn("Call failed: " + e.message);
        endCall("failed", true);
      }
      return;
    }
    case "error":
      if (c.connectedAt) { warn("node: " + m.reason); return; }
      endCall(m.reason || "error", false);
      return;
    case "reject": case "busy": case "unavailable": case "hangup":
      endCall(m.reason || (m.type === "reject" ? "rejected" : m.type), false);
  }
}

// onUpdate takes a renegotiation from the caller: an offer of a new leg
// or one for the current leg (an ICE restart). Only the caller offers, and
// the page never offers while it is the caller, so answers and offers to
// a calling page are ignored.
async function onUpdate(c, m) {
  const d = m.desc;
  if (!d || d.type !== "offer" || c.outgoing || !c.cur.pc) return;
  const n = Number(m.leg) || 0;
  if (!Number.isInteger(n) || n < 0 || n > MAX_LEG) return;
  if (n > c.cur.n && (!c.next || n >= c.next.n)) await acceptLeg(c, m, n);
  else if (n === c.cur.n) await restartLeg(c, m);
}

// acceptLeg answers the offer of leg n on a second connection.
async function acceptLeg(c, m, n) {
  if (c.next) abandonLeg(c, "replaced by leg " + n, true);
  // Registered before any await: its candidates queue up meanwhile.
  const l = newLeg(n, m.route, m.reason);
  c.next = l;
  l.timer = setTimeout(() => { if (c.next === l) abandonLeg(c, "timeout"); }, LEG_TIMEOUT_MS);
  const bad = await checkDesc(m.desc, c.remoteKey);
  if (c.ended || c.next !== l) return;
  if (bad) {
    warn("The caller's new connection does not verify: " + bad);
    endCall("identity", true);
    return;
  }
  try {
    const pc = newPC(c, l, c.remote.private || isRelayRoute(l.route));
    await pc.setRemoteDescription({ type: "offer", sdp: m.desc.sdp });
    addTracks(c, pc);
    await remoteSet(l);
    await pc.setLocalDescription(await pc.createAnswer());
    const desc = await describe(pc.localDescription);
    if (c.ended || c.next !== l) return;
    send({ type: "update", call: c.id, leg: n, desc });
    flushLocal(c, l);
  } catch (e) {
    if (c.next === l) abandonLeg(c, e.message);
  }
}

// restartLeg answers an offer for the current connection.
async function restartLeg(c, m) {
  const l = c.cur;
  l.sent = false;      // our candidates wait for the answer
  l.remoteSet = false; // theirs for the offer
  const bad = await checkDesc(m.desc, c.remoteKey);
  if (c.ended || c.cur !== l) return;
  if (bad) {
    warn("The caller's renegotiation does not verify: " + bad);
    endCall("identity", true);
    return;
  }
  try {
    await l.pc.setRemoteDescription({ type: "offer", sdp: m.desc.sdp });
    await remoteSet(l);
    await l.pc.setLocalDescription(await l.pc.createAnswer());
    const desc = await describe(l.pc.localDescription);
    if (c.ended || c.cur !== l) return;
    const u = { type: "update", call: c.id, desc };
    if (l.n) u.leg = l.n;
    send(u);
    if (m.reason) c.routeWhy = m.reason;
  } catch (e) {
    warn("Renegotiation failed: " + e.message);
  } finally {
    flushLocal(c, l);
    if (!l.remoteSet) await remoteSet(l);
  }
}

function maybeTakeOver(c, l) {
  if (c.next === l && l.connected && l.chat && l.chat.readyState === "open") takeOver(c, l);
}

// takeOver makes the next leg carry the call and closes the old one.
function takeOver(c, l) {
  if (c.ended || c.next !== l) return;
  clearTimeout(l.timer);
  clearTimeout(l.graceTimer);
  const old = c.cur;
  c.cur = l;
  c.next = null;
  old.closed = true;
  old.pc.close();
  playRemote(l);
  if (l.reason) c.routeWhy = l.reason;
  document.body.dataset.leg = String(l.n);
  document.body.dataset.chat = l.chat && l.chat.readyState === "open" ? "open" : "closed";
  stats(c); // shows the new route at once
}

// abandonLeg gives up the leg being brought up; the call stays where it
// is, unless its connection has failed meanwhile.
function abandonLeg(c, why, quiet) {
  const l = c.next;
  if (!l) return;
  c.next = null;
  l.closed = true;
  clearTimeout(l.timer);
  clearTimeout(l.graceTimer);
  if (l.pc) l.pc.close();
  console.warn("leg " + l.n + " abandoned: " + why);
  if (c.ended) return;
  if (c.cur.pc && c.cur.pc.connectionState === "failed") {
    endCall("failed", true);
    return;
  }
  if (!quiet) warn("Moving the call to the " + (l.route || "other") + " route failed (" + why + "); it stays where it was.");
}

async function onInvite(m) {
  if (!m.call || !m.from || !m.desc) {
    if (m.call) send({ type: "reject", call: m.call, reason: "malformed invite" });
    return;
  }
  if (T.call && !T.call.ended) {
    if (T.call.id !== m.call) send({ type: "busy", call: m.call });
    return;
  }
  const key = m.from.key ? unb64(m.from.key) : null;
  const c = newCall(m.call, false, m.from, key);
  c.invite = m;
  showCall(c);
  send({ type: "ringing", call: c.id });
  setCallState(c, "incoming", "ringing");
  if (!key) warn("The caller has no key: its identity cannot be verified.");
  const bad = await checkDesc(m.desc, key);
  if (bad) {
    warn("The caller's offer does not verify: " + bad);
    endCall("identity", true);
  }
}

async function acceptCall() {
  const c = T.call;
  if (!c || c.outgoing || c.ended || c.cur.pc) return;
  setCallState(c, "connecting", "connecting…");
  try {
    const pc = await newPeer(c);
    if (c.ended) return;
    await pc.setRemoteDescription({ type: "offer", sdp: c.invite.desc.sdp });
    addTracks(c, pc); // reuses the offer's audio transceiver, now sendrecv
    await remoteSet(c.cur);
    await pc.setLocalDescription(await pc.createAnswer());
    const desc = await describe(pc.localDescription);
    if (c.ended) return;
    send({ type: "accept", call: c.id, desc });
    flushLocal(c, c.cur);
  } catch (e) {
    warn("Cannot take the call: " + e.message);
    endCall("failed", true);
  }
}

function rejectCall() {
  const c = T.call;
  if (!c || c.outgoing || c.ended) return;
  send({ type: "reject", call: c.id });
  endCall("rejected", false);
}

// endCall ends the current call; notify sends hangup with the reason.
function endCall(reason, notify) {
  const c = T.call;
  if (!c || c.ended) return;
  c.ended = true;
  clearTimeout(c.ringTimer);
  clearInterval(c.statsTimer);
  if (notify) send({ type: "hangup", call: c.id, reason });
  for (const l of [c.next, c.cur]) {
    if (!l) continue;
    l.closed = true;
    clearTimeout(l.timer);
    clearTimeout(l.graceTimer);
    if (l.pc) l.pc.close();
  }
  if (c.stream) for (const t of c.stream.getTracks()) t.stop();
  $("remote-audio").srcObject = null;
  document.body.dataset.callReason = reason;
  setCallState(c, "ended", "ended: " + reason);
  $("call-title").textContent = "Call ended";
}

function sendChat(ev) {
  ev.preventDefault();
  const c = T.call;
  const input = $("chat-input");
  const text = input.value.trim();
  const dc = c && c.cur.chat;
  if (!dc || dc.readyState !== "open" || !text) return;
  dc.send(text);
  chatLine(text, "me");
  input.value = "";
}

// stats shows the call's quality once a second, as `irmv call` does, and
// the route: a change after the first one is shown in the call's status.
async function stats(c) {
  if (c.ended || !c.cur.pc) return;
  const pc = c.cur.pc;
  const report = await pc.getStats();
  if (c.ended || c.cur.pc !== pc) return;
  let inb = null, out = null, pair = null, remoteIn = null, transport = null;
  const byId = new Map();
  report.forEach((s) => {
    byId.set(s.id, s);
    if (s.type === "inbound-rtp" && s.kind === "audio") inb = s;
    if (s.type === "outbound-rtp" && s.kind === "audio") out = s;
    if (s.type === "remote-inbound-rtp" && s.kind === "audio") remoteIn = s;
    if (s.type === "transport") transport = s;
  });
  if (transport && transport.selectedCandidatePairId) pair = byId.get(transport.selectedCandidatePairId);
  if (!pair) report.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
  const q = $("quality");
  if (inb) {
    const lost = Math.max(0, inb.packetsLost || 0), got = inb.packetsReceived || 0;
    $("q-loss").textContent = (got + lost > 0 ? (100 * lost / (got + lost)).toFixed(1) : "0.0") + " %";
    $("q-jitter").textContent = ((inb.jitter || 0) * 1000).toFixed(1) + " ms";
    q.dataset.packetsReceived = got;
  }
  if (out) q.dataset.packetsSent = out.packetsSent || 0;
  let rtt = pair && pair.currentRoundTripTime;
  if (rtt === undefined && remoteIn) rtt = remoteIn.roundTripTime;
  if (rtt !== undefined) $("q-rtt").textContent = (rtt * 1000).toFixed(1) + " ms";
  if (pair) {
    const local = byId.get(pair.localCandidateId), remote = byId.get(pair.remoteCandidateId);
    const relayed = (local && local.candidateType === "relay") || (remote && remote.candidateType === "relay");
    showRoute(c, relayed ? "relayed" : "direct");
  }
  c.statsSeen = true;
}

// showRoute shows the route the call's media takes; a change is noted in
// the call's status and its log.
function showRoute(c, route) {
  if (c.route === route) return;
  const from = c.route;
  c.route = route;
  $("q-route").textContent = route;
  setState("route", route);
  if (!from) return;
  const why = c.routeWhy;
  c.routeWhy = "";
  setState("routeChanges", String((Number(document.body.dataset.routeChanges) || 0) + 1));
  setCallState(c, "connected", "connected · " + route);
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = "Route: " + from + " → " + route + (why ? " (" + why + ")" : "");
  $("chat-log").append(li);
}

// ---- start ---------------------------------------------------------------

async function init() {
  $("reg-form").addEventListener("submit", onRegister);
  $("status").addEventListener("change", onStatus);
  $("reg-edit").addEventListener("click", () => { show($("register"), true); $("reg-name").focus(); });
  $("search-form").addEventListener("submit", onSearch);
  $("accept").addEventListener("click", acceptCall);
  $("reject").addEventListener("click", rejectCall);
  $("hangup").addEventListener("click", () => endCall("hangup", true));
  $("chat-form").addEventListener("submit", sendChat);
  window.addEventListener("pagehide", () => { if (T.call && !T.call.ended) endCall("hangup", true); });
  try {
    const saved = JSON.parse(localStorage.getItem("irmv-identifiers") || "null");
    if (saved) {
      $("reg-name").value = saved.name || "";
      $("reg-phone").value = saved.phone || "";
      $("reg-uid").value = saved.uid || "";
    }
  } catch (_) { /* nothing saved */ }
  try {
    if (!window.crypto || !crypto.subtle) throw new Error("this page needs a secure context (https or localhost)");
    T.key = await loadKey();
    document.body.dataset.key = b64(T.key.pub);
  } catch (e) {
    const err = $("reg-error");
    err.textContent = "No Ed25519 key: " + e.message;
    show(err, true);
    $("reg-submit").disabled = true;
    setState("state", "nokey");
    return;
  }
  setInterval(() => { if (T.ack) reregister(); }, REREGISTER_MS);
  setState("state", "unregistered");
}

init();
