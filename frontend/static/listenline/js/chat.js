// The caller's chat (protocol: docs/protocol.md). The conversation token, the last
// sequence number seen and unsent messages live in sessionStorage only: closed with the
// tab, cleared by quick exit and at the end. Never in a URL, never in localStorage.
(function () {
  "use strict";
  var app = document.getElementById("chat-app");
  if (!app) { return; }
  var T = JSON.parse(document.getElementById("chat-strings").textContent);
  var municipalities = JSON.parse(document.getElementById("municipality-data").textContent);
  var KEY = { token: "ll.chat.token", seq: "ll.chat.seq", outbox: "ll.chat.outbox", alias: "ll.chat.alias" };
  var $ = function (id) { return document.getElementById(id); };
  var store = window.sessionStorage;
  var ws = null, retry = 0, leaving = false, wantStart = null, typingSent = 0, typingTimer = null;
  var seenTimer = null;
  var alias = store.getItem(KEY.alias) || "";

  function fmt(s, args) { return s.replace(/%\((\w+)\)s/g, function (_, k) { return args[k]; }); }
  function lastSeq() { return parseInt(store.getItem(KEY.seq) || "0", 10); }
  function outbox() { try { return JSON.parse(store.getItem(KEY.outbox) || "[]"); } catch (e) { return []; } }
  function saveOutbox(items) { store.setItem(KEY.outbox, JSON.stringify(items)); }
  function status(text) { $("chat-status").textContent = text || ""; }
  function show(view) {
    ["start", "waiting", "conversation", "ended"].forEach(function (v) { $("view-" + v).hidden = v !== view; });
  }
  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function newId() {
    var bytes = new Uint8Array(9);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // --- the conversation log -------------------------------------------------------------
  function bubble(id, from, text, state) {
    var li = document.getElementById("m-" + id);
    if (!li) {
      li = document.createElement("div");
      li.id = "m-" + id;
      li.className = "msg msg-" + from;
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = from === "caller" ? T.you : alias;
      var body = document.createElement("p");
      body.className = "text";
      body.textContent = text;
      var meta = document.createElement("span");
      meta.className = "delivery";
      li.appendChild(who); li.appendChild(body); li.appendChild(meta);
      $("messages").appendChild(li);
      li.scrollIntoView({ block: "end" });
    }
    if (state) { li.querySelector(".delivery").textContent = T[state] || ""; li.dataset.state = state; }
    return li;
  }
  function note(text) {
    var li = document.createElement("div");
    li.className = "msg-notice";
    li.textContent = text;
    $("messages").appendChild(li);
  }
  // One read receipt per burst (a reload replays every message at once): each frame counts
  // against the conversation's rate limit, which a reconnect does not reset.
  function seenSoon() {
    if (seenTimer !== null) { return; }
    seenTimer = window.setTimeout(function () {
      seenTimer = null;
      if (!document.hidden && lastSeq()) { send({ type: "seen", upto: lastSeq() }); }
    }, 300);
  }
  function entry(e) {
    // Our own message coming back is its acknowledgement: it is stored, with this seq.
    if (e.type === "message" && e.from === "caller") { unqueue(e.id); }
    if (e.seq <= lastSeq()) { return; }
    store.setItem(KEY.seq, String(e.seq));
    if (e.type === "message") {
      var li = bubble(e.from === "caller" ? e.id : "s" + e.seq, e.from, e.text, e.from === "caller" ? "sent" : null);
      li.dataset.seq = String(e.seq);
      if (e.from === "volunteer") { $("typing").textContent = ""; seenSoon(); }
    } else if (e.type === "joined") {
      alias = e.alias; store.setItem(KEY.alias, alias);
      $("talking-with").textContent = fmt(T.talking_with, { alias: alias });
      note(fmt(T.joined, { alias: alias }));
      show("conversation");
    } else if (e.type === "notice") {
      note(fmt(T[e.code] || e.code, { alias: alias }));
      if (e.code === "transferring") { show("waiting"); }
    } else if (e.type === "ended") {
      finish(T["ended_" + e.by] || T.ended);
    }
  }
  function unqueue(id) { saveOutbox(outbox().filter(function (m) { return m.id !== id; })); }
  function sent(id) { unqueue(id); bubble(id, "caller", "", "sent"); }
  function finish(reason) {
    leaving = true;
    [KEY.token, KEY.seq, KEY.outbox, KEY.alias].forEach(function (k) { store.removeItem(k); });
    $("ended-reason").textContent = reason;
    show("ended");
    status("");
    if (ws) { try { ws.close(1000); } catch (e) { /* closing */ } }
  }

  // --- the socket ---------------------------------------------------------------------
  function connect() {
    leaving = false;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + window.location.host + app.dataset.wsPath);
    ws.onopen = function () {
      retry = 0;
      var token = store.getItem(KEY.token);
      if (token) { send({ type: "resume", token: token, last_seq: lastSeq() }); }
      else if (wantStart !== null) { send(wantStart); }
    };
    ws.onmessage = function (event) { receive(JSON.parse(event.data)); };
    ws.onclose = function (event) {
      ws = null;
      if (leaving || event.code === 4000) { return; }
      if (!store.getItem(KEY.token) && wantStart === null) { return; }
      status(T.reconnecting);
      retry = Math.min(retry + 1, 6);
      window.setTimeout(connect, 500 * retry);
    };
  }
  function flushOutbox() {
    outbox().forEach(function (m) { send({ type: "message", id: m.id, text: m.text }); });
  }
  function receive(f) {
    switch (f.type) {
      case "session":
        if (f.token) { store.setItem(KEY.token, f.token); wantStart = null; }
        if (f.alias) { alias = f.alias; store.setItem(KEY.alias, alias); $("talking-with").textContent = fmt(T.talking_with, { alias: alias }); }
        status("");
        if (f.state === "active") { show("conversation"); flushOutbox(); } else { show("waiting"); }
        break;
      case "queue":
        $("queue-place").textContent = f.position <= 1 ? T.next : fmt(T.place, { n: f.position });
        $("queue-estimate").textContent = f.estimate_s === null ? T.no_estimate
          : (f.estimate_s < 60 ? T.estimate_soon : fmt(T.estimate, { m: Math.round(f.estimate_s / 60) }));
        break;
      case "ack": // a retried message the server already had
        sent(f.id);
        break;
      case "receipt":
        Array.prototype.forEach.call(document.querySelectorAll(".msg-caller"), function (li) {
          if (parseInt(li.dataset.seq || "0", 10) <= f.upto) { li.querySelector(".delivery").textContent = T.read; }
        });
        break;
      case "typing":
        $("typing").textContent = f.active ? fmt(T.typing, { alias: alias }) : "";
        break;
      case "error":
        if (f.code === "bad_token") { finish(T.expired); break; }
        if (f.ref) {
          unqueue(f.ref);
          bubble(f.ref, "caller", "", "not_sent");
        }
        if (f.code === "unknown_municipality") { $("start-error").textContent = T.unknown_municipality; show("start"); break; }
        status(T[f.code] || T.error);
        break;
      case "pong": break;
      default:
        if (typeof f.seq === "number") { entry(f); }
    }
  }

  // --- the page ------------------------------------------------------------------------
  $("start-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = $("municipality").value.trim();
    var code = null;
    if (name) {
      var hit = municipalities.filter(function (m) { return m[1].toLowerCase() === name.toLowerCase(); })[0];
      if (!hit) { $("start-error").textContent = T.unknown_municipality; $("municipality").focus(); return; }
      code = hit[0];
    }
    $("start-error").textContent = "";
    wantStart = { type: "start", municipality: code };
    show("waiting");
    if (!send(wantStart)) { connect(); }
  });
  $("message-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var box = $("message-text");
    var text = box.value;
    if (!text.trim()) { return; }
    var m = { id: newId(), text: text };
    saveOutbox(outbox().concat([m]));
    bubble(m.id, "caller", text, "sending");
    box.value = "";
    send({ type: "message", id: m.id, text: text });
    send({ type: "typing", active: false }); typingSent = 0;
    box.focus();
  });
  $("message-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("message-form").requestSubmit(); }
  });
  $("message-text").addEventListener("input", function () {
    var now = Date.now();
    if (now - typingSent > 3000) { typingSent = now; send({ type: "typing", active: true }); }
    window.clearTimeout(typingTimer);
    typingTimer = window.setTimeout(function () { typingSent = 0; send({ type: "typing", active: false }); }, 4000);
  });
  function endIt() { send({ type: "end" }); }
  $("end-button").addEventListener("click", endIt);
  $("stop-waiting").addEventListener("click", endIt);
  $("new-chat").addEventListener("click", function () { $("messages").textContent = ""; show("start"); $("municipality").focus(); });
  document.addEventListener("visibilitychange", function () {
    var last = document.querySelector(".msg-volunteer:last-of-type");
    if (!document.hidden && last) { send({ type: "seen", upto: lastSeq() }); }
  });
  document.addEventListener("listenline:quick-exit", function () {
    leaving = true;
    if (ws) { try { ws.close(1000); } catch (e) { /* closing */ } }
    try { store.clear(); } catch (e) { /* blocked */ }
  });

  // A reload (or a tab restored) continues the same conversation or place in the queue.
  if (store.getItem(KEY.token)) { store.setItem(KEY.seq, "0"); show("waiting"); connect(); }
})();
