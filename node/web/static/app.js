// irmv web terminal: registers this browser as a terminal with its own
// Ed25519 key, searches the directory and calls over the browser's WebRTC,
// speaking the node's terminal API and the signalling of call/signal
// exactly as `irmv phone` does. Page state is mirrored into data-*
// attributes on <body> (data-state, data-ws, data-call, data-chat,
// data-route, data-leg, data-rerouting) for tests and CSS. As the caller it
// measures the call's quality and moves it to another route as call/phone
// does. An ES module: quality.js (measuring), monitor.js (when to move)
// and keys.js (known keys) are the Go phone's logic, tested with its cases.
import { Meter, readStats, since, sipLegRTT } from "./quality.js";
import { changedKeys, remembered } from "./keys.js";
import { Monitor } from "./monitor.js";
import { describe, verifyDescription } from "./fingerprint.js";

const NODE_CHECK_MS = 5000;         // how often an unregistered page asks whether the node is up
const RECORD_CONTEXT = "irmv-record-v1:";          // record signContext
const DB_NAME = "irmv", DB_STORE = "keys", KEY_ID = "terminal";
const LEG_CHAT_GRACE_MS = 3000;     // a connected new leg takes over without its chat channel
// The terminal side's figures that irmv phone uses too (call/policy:
// thresholds, route switching, ping, ring and re-registration times),
// served by the node as GET /v1/config; init loads them first.
const CFG = {};

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

// ---- terminal state ------------------------------------------------------

const T = {
  key: null,        // {priv, pub}
  reg: null,        // identifiers as typed
  ack: null,        // the node's acknowledgement
  ws: null,
  node: "",         // hosting node's peer ID, from welcome
  ice: [],          // ICE servers, from welcome
  pingTimer: 0,
  backoff: 0,       // the next reconnect's wait (ms), 0 for CFG.reconnect_min
  call: null,       // the one call, see newCall
  searchAbort: null,
  // The worst quality a call tolerates before the page, as the caller,
  // moves it to another route; a field left out or 0 means its default,
  // a negative one turns that check off (phone.Thresholds). Tests set it.
  thresholds: {},
  cfg: CFG,         // the node's shared figures (GET /v1/config)
};
window.T = T; // a module's constants are not global: the tests read and set T

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
    setState("state", "registered");
    connect();
    refreshCallButtons();
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
    const wait = T.backoff || CFG.reconnect_min * 1000;
    T.backoff = Math.min(wait * 2, CFG.reconnect_max * 1000);
    setTimeout(async () => {
      if (T.helloRefused) { T.helloRefused = false; await reregister(); }
      connect();
    }, wait);
  };
}

// iceServers turns signalled ICE servers (pion's webrtc.ICEServer) into
// RTCIceServer dictionaries.
function iceServers(list) {
  return (Array.isArray(list) ? list : []).map((s) => {
    const o = { urls: s.urls };
    if (s.username) o.username = s.username;
    if (s.credential) o.credential = s.credential;
    return o;
  });
}

// hasTURN: the relayed routes need a TURN server (phone hasTURN).
function hasTURN(servers) {
  return servers.some((s) => [].concat(s.urls || []).some((u) => /^turns?:/.test(u)));
}

// setConn shows the connection to the node: before registering "node" (it
// answers: searching works, calls need registering) or "offline"; after,
// the WebSocket's "connecting", "open" or "offline".
function setConn(s) {
  setState("ws", s);
  const el = $("conn");
  el.textContent = { open: "connected", node: "node up" }[s] || s;
  el.title = {
    open: "connected to the node: calls can come in",
    node: "the node answers: search now, register to call and be called",
    offline: "the node does not answer",
  }[s] || "connection to the node";
  el.className = "pill " + (s === "open" || s === "node" ? "ok" : s === "connecting" ? "warn" : "bad");
}

// checkNode asks whether the node is up while the page is not registered
// (and so has no WebSocket to show it).
async function checkNode() {
  if (T.ack) return;
  let up = false;
  try {
    up = (await fetch("/healthz", { cache: "no-store" })).ok;
  } catch (_) { /* the node does not answer */ }
  if (!T.ack) setConn(up ? "node" : "offline");
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
      T.ice = iceServers(m.ice_servers);
      T.backoff = 0;
      setConn("open");
      refreshCallButtons();
      clearInterval(T.pingTimer);
      T.pingTimer = setInterval(() => send({ type: "ping" }), CFG.ping_interval * 1000);
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
  li.dataset.match = r.match || "";
  const via = r.via + (r.verified ? ", verified" : "");
  li.querySelector(".who-ids").textContent = [idLine(r.identifiers), matchLabel[r.match], via].filter(Boolean).join(" · ");
  const st = li.querySelector(".status");
  st.textContent = r.status;
  st.className = "status st-" + r.status;
  li.result = r;
  const btn = li.querySelector(".call-btn");
  setCallButton(li);
  btn.addEventListener("click", () => startCall(r));
  // Ranked as they arrive: after every result that matches as well or
  // better (exact, then all the name's words, then prefix).
  const list = $("results");
  const rank = matchRank[r.match] || 0;
  const after = [...list.children].find((el) => (matchRank[el.dataset.match] || 0) < rank);
  list.insertBefore(li, after || null);
}

// setCallButton enables a result's Call button when the terminal can take
// a call and this page is registered (the call needs our own terminal).
function setCallButton(li) {
  const r = li.result;
  const btn = li.querySelector(".call-btn");
  const self = T.ack && r.node === T.node && r.terminal === T.ack.terminal;
  btn.disabled = !T.ack || self || !(r.status === "online" || r.status === "idle");
  btn.textContent = self ? "You" : "Call";
  btn.title = T.ack ? "" : "Register this terminal to call";
}

function refreshCallButtons() {
  for (const li of $("results").children) setCallButton(li);
}

const matchRank = { exact: 3, words: 2, prefix: 1 };
const matchLabel = { exact: "exact match", words: "all words", prefix: "" };

// ---- calls ---------------------------------------------------------------

function newCall(id, outgoing, remote, remoteKey) {
  return {
    id, outgoing, remote, remoteKey,
    cur: newLeg(0), next: null, // the leg carrying the call, the one being brought up
    stream: null,               // our microphone, sent on every leg
    route: "", routeWhy: "",
    statsTimer: 0, ended: false, invite: null,
    peerICE: [],                // the callee's node's ICE servers, from accept
    legs: 0,                    // the highest leg number offered
    mon: new Monitor(CFG), // route switching (monitor.js)
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

// showBridged marks the call as bridged: the other party is a SIP phone
// behind its node (the invite or accept says so), which is in the media path.
function showBridged(on) {
  show($("call-bridged"), on);
  setState("bridged", on ? "1" : "");
}

function showCall(c) {
  T.call = c;
  showBridged(false);
  $("call-title").textContent = c.outgoing ? "Calling" : "Incoming call";
  $("call-peer").textContent = label(c.remote.identifiers) || c.remote.terminal;
  $("chat-log").textContent = "";
  for (const id of ["q-loss", "q-jitter", "q-rtt", "q-route", "q-sip-rtt"]) $(id).textContent = "–";
  show($("q-sip"), false);
  delete $("quality").dataset.sipRtt;
  setState("route", "");
  setState("leg", "0");
  setState("routeChanges", "0");
  setState("rerouting", "");
  for (const id of ["q-loss", "q-jitter", "q-rtt"]) $(id).classList.remove("over");
  warn("");
  show($("call"), true);
  $("call").scrollIntoView({ block: "nearest" });
}

function warn(text) {
  const w = $("call-warning");
  w.textContent = text;
  show(w, !!text);
}

// Known keys (keys.js): kept in localStorage.
function knownKeys() {
  try { return JSON.parse(localStorage.getItem("irmv-known-keys") || "{}"); } catch (_) { return {}; }
}

function keyWarnings(ids, key) {
  return changedKeys(knownKeys(), ids, key).map((id) => "the key of " + id.slice(id.indexOf(":") + 1) + " has changed since your last call");
}

function rememberKey(ids, key) {
  localStorage.setItem("irmv-known-keys", JSON.stringify(remembered(knownKeys(), ids, key)));
}

// A call's connections are legs (call/phone route.go): leg 0 is set up by
// invite/accept; a caller that moves the call to another route offers a
// leg n > 0 in an update. The page answers it on a second connection and,
// once that is connected and its chat channel open, moves audio and chat
// over and closes the old one (make-before-break).
function newLeg(n, route, reason) {
  return {
    n, route: route || "", reason: reason || "",
    meter: null, // the last packet counts read, for the loss of each sample
    pc: null, chat: null, remoteStream: null,
    sent: false, localPending: [], remotePending: [], remoteSet: false,
    connected: false, closed: false, timer: 0, graceTimer: 0,
  };
}

// isRelayRoute: any route name starting with "relay" is relay-only
// ("relayed", and relay routes a newer phone may name).
function isRelayRoute(route) { return typeof route === "string" && route.startsWith("relay"); }

function newPC(c, l, relayOnly, servers) {
  const pc = new RTCPeerConnection({ iceServers: servers || T.ice, iceTransportPolicy: relayOnly ? "relay" : "all" });
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
      if (c.outgoing) rememberKey(c.remote.identifiers, c.remote.key); // not what a caller claims
      setCallState(c, "connected", "connected");
      $("call-title").textContent = "In call with";
      c.statsTimer = setInterval(() => stats(c, true), CFG.sample_interval * 1000);
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
    const desc = await describe(pc.localDescription, sign);
    if (c.ended) return;
    const self = { node: T.node, terminal: T.ack.terminal, identifiers: T.ack.identifiers, key: b64(T.key.pub) };
    if (!send({ type: "invite", call: c.id, from: self, to: { node: r.node, terminal: r.terminal }, desc })) {
      throw new Error("not connected to the node");
    }
    flushLocal(c, c.cur);
    c.ringTimer = setTimeout(() => endCall("no answer", true), CFG.ring_timeout * 1000);
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
      if (m.bridged) showBridged(true);
      clearTimeout(c.ringTimer);
      c.peerICE = iceServers(m.peer_ice_servers);
      const bad = await verifyDescription(m.desc, c.remoteKey);
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

// onUpdate takes a renegotiation: from the caller an offer of a new leg
// or one for the current leg (an ICE restart); from the callee the answer
// to the new leg the page offered. Only the caller offers: offers to a
// calling page and answers to a called one are ignored.
async function onUpdate(c, m) {
  const d = m.desc;
  if (!d || !c.cur.pc) return;
  const n = Number(m.leg) || 0;
  if (!Number.isInteger(n) || n < 0 || n > CFG.max_leg) return;
  if (c.outgoing) {
    if (d.type === "answer" && c.next && n === c.next.n) await answeredLeg(c, c.next, m);
    return;
  }
  if (d.type !== "offer") return;
  if (n > c.cur.n && (!c.next || n >= c.next.n)) await acceptLeg(c, m, n);
  else if (n === c.cur.n) await restartLeg(c, m);
}

// offerLeg (caller) brings up a new connection, leg n+1, for route to
// beside the current one and offers it in an update (phone startLeg).
async function offerLeg(c, to, why) {
  if (c.next) abandonLeg(c, "replaced", true);
  if (c.legs >= CFG.max_leg) { c.mon.settle(); return; }
  c.legs++;
  const l = newLeg(c.legs, to, why);
  c.next = l;
  l.timer = setTimeout(() => { if (c.next === l) abandonLeg(c, "timeout"); }, CFG.reroute_timeout * 1000);
  console.info("call " + c.id + ": moving to the " + to + " route, leg " + l.n + " (" + why + ")");
  setState("rerouting", to);
  try {
    // The callee's node's relay for relayed-peer (the callee uses its own:
    // the same relay), ours otherwise.
    const servers = to === "relayed-peer" ? c.peerICE : T.ice;
    const pc = newPC(c, l, c.remote.private || isRelayRoute(to), servers);
    setChat(c, l, pc.createDataChannel("chat")); // the caller creates it on every leg
    addTracks(c, pc);
    await pc.setLocalDescription(await pc.createOffer());
    const desc = await describe(pc.localDescription, sign);
    if (c.ended || c.next !== l) return;
    if (!send({ type: "update", call: c.id, leg: l.n, route: to, desc, reason: why })) {
      throw new Error("not connected to the node");
    }
    flushLocal(c, l);
  } catch (e) {
    if (c.next === l) abandonLeg(c, e.message);
  }
}

// answeredLeg (caller) takes the callee's answer to leg l, verified as the
// first answer is.
async function answeredLeg(c, l, m) {
  if (l.answered) return;
  l.answered = true;
  const bad = await verifyDescription(m.desc, c.remoteKey);
  if (c.ended || c.next !== l) return;
  if (bad) {
    warn("The callee's answer for the new connection does not verify: " + bad);
    endCall("identity", true);
    return;
  }
  try {
    await l.pc.setRemoteDescription({ type: "answer", sdp: m.desc.sdp });
    await remoteSet(l);
  } catch (e) {
    if (c.next === l) abandonLeg(c, e.message);
  }
}

// acceptLeg answers the offer of leg n on a second connection.
async function acceptLeg(c, m, n) {
  if (c.next) abandonLeg(c, "replaced by leg " + n, true);
  // Registered before any await: its candidates queue up meanwhile.
  const l = newLeg(n, m.route, m.reason);
  c.next = l;
  l.timer = setTimeout(() => { if (c.next === l) abandonLeg(c, "timeout"); }, CFG.reroute_timeout * 1000);
  const bad = await verifyDescription(m.desc, c.remoteKey);
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
    const desc = await describe(pc.localDescription, sign);
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
  const bad = await verifyDescription(m.desc, c.remoteKey);
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
    const desc = await describe(l.pc.localDescription, sign);
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
  c.mon.settle();
  setState("rerouting", "");
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
  c.mon.settle();
  setState("rerouting", "");
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
  showBridged(!!m.bridged);
  send({ type: "ringing", call: c.id });
  setCallState(c, "incoming", "ringing");
  if (!key) warn("The caller has no key: its identity cannot be verified.");
  const bad = await verifyDescription(m.desc, key);
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
    const desc = await describe(pc.localDescription, sign);
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
// A sample (the once-a-second reading) of a calling page also decides
// whether to move the call to another route.
async function stats(c, sample) {
  if (c.ended || !c.cur.pc) return;
  const l = c.cur, pc = l.pc;
  const report = await pc.getStats();
  if (c.ended || c.cur.pc !== pc) return;
  // The quality as media.Meter.Sample has it (quality.js): a sample's
  // loss is that of the interval since the previous sample.
  const r = readStats(report);
  const { loss, jitter, rtt } = sample ? (l.meter || (l.meter = new Meter())).next(r) : since(r, null);
  const th = thresholds();
  const q = $("quality");
  if (sample) {
    $("q-loss").textContent = (100 * loss).toFixed(1) + " %";
    $("q-loss").classList.toggle("over", th.maxLoss > 0 && loss > th.maxLoss);
    q.dataset.loss = loss;
  }
  if (r.inbound) {
    $("q-jitter").textContent = (jitter * 1000).toFixed(1) + " ms";
    $("q-jitter").classList.toggle("over", th.maxJitter > 0 && jitter > th.maxJitter);
    q.dataset.jitter = jitter;
    q.dataset.packetsReceived = r.recv;
  }
  if (r.sent >= 0) q.dataset.packetsSent = r.sent;
  if (rtt) {
    $("q-rtt").textContent = (rtt * 1000).toFixed(1) + " ms";
    $("q-rtt").classList.toggle("over", th.maxRTT > 0 && rtt > th.maxRTT);
    q.dataset.rtt = rtt;
  }
  // A SIP phone's leg: RTT above is the WebRTC leg's.
  const sip = document.body.dataset.bridged === "1" ? sipLegRTT(r) : null;
  if (sip !== null) {
    $("q-sip-rtt").textContent = (sip * 1000).toFixed(1) + " ms";
    show($("q-sip"), true);
    q.dataset.sipRtt = sip;
  }
  let route = "";
  if (r.pair) {
    const local = report.get(r.pair.localCandidateId), remote = report.get(r.pair.remoteCandidateId);
    const relayed = (local && local.candidateType === "relay") || (remote && remote.candidateType === "relay");
    route = relayed ? "relayed" : "direct";
    // A relayed pair of a leg made for the other node's relay is that route.
    if (relayed && l.route === "relayed-peer") route = "relayed-peer";
    showRoute(c, route);
  }
  c.statsSeen = true;
  if (sample && c.outgoing && c.connectedAt && route) {
    const to = c.mon.observe(thresholds(), routesFor(c), { loss, jitter, rtt, route }, performance.now());
    if (to) offerLeg(c, to.route, to.reason);
  }
}

// thresholds are T.thresholds with phone's defaults filled in.
function thresholds() {
  const t = { maxLoss: CFG.max_loss, maxJitter: CFG.max_jitter, maxRTT: CFG.max_rtt };
  const set = T.thresholds || {};
  for (const k of Object.keys(t)) if (Number(set[k])) t[k] = Number(set[k]);
  return t;
}

// routesFor says which routes a calling page may move the call to: direct
// unless the callee is private, relayed with a TURN server of our node,
// relayed-peer with one of the callee's node (phone Call.routes).
function routesFor(c) {
  return { "direct": !c.remote.private, "relayed": hasTURN(T.ice), "relayed-peer": hasTURN(c.peerICE) };
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

// loadConfig fetches the node's shared figures (GET /v1/config) into
// CFG, trying again while the node does not answer.
async function loadConfig() {
  for (;;) {
    try {
      Object.assign(CFG, await api("GET", "/v1/config"));
      return;
    } catch (_) {
      setState("state", "noconfig");
      await new Promise((ok) => setTimeout(ok, NODE_CHECK_MS));
    }
  }
}

async function init() {
  await loadConfig();
  $("reg-form").addEventListener("submit", onRegister);
  $("status").addEventListener("change", onStatus);
  $("reg-edit").addEventListener("click", () => { show($("register"), true); $("reg-name").focus(); });
  $("search-form").addEventListener("submit", onSearch);
  $("accept").addEventListener("click", acceptCall);
  $("reject").addEventListener("click", rejectCall);
  $("hangup").addEventListener("click", () => endCall("hangup", true));
  $("chat-form").addEventListener("submit", sendChat);
  checkNode();
  setInterval(checkNode, NODE_CHECK_MS);
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
  setInterval(() => { if (T.ack) reregister(); }, CFG.reregister_interval * 1000);
  setState("state", "unregistered");
}

init();
