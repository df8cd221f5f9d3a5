// The volunteer console (protocol: docs/protocol.md). Shows what the volunteer may know
// of a contact and nothing that identifies a caller. Rings with a Web Audio tone.
// Durations (waited on an offer, talking on an active contact) tick every second in a
// <time> element outside any live region: readable on demand, never announced.
(function () {
  "use strict";
  var app = document.getElementById("console-app");
  if (!app) { return; }
  var T = JSON.parse(document.getElementById("console-strings").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var ws = null, retry = 0, seen = {}, seenTimers = {}, audio = null, ringTimer = null;

  function fmt(s, args) { return s.replace(/%\((\w+)\)s/g, function (_, k) { return args[k]; }); }
  function two(n) { return n < 10 ? "0" + n : String(n); }
  // mm:ss, or hh:mm:ss from an hour on; and the same as an ISO 8601 duration.
  function clock(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? two(h) + ":" : "") + two(m) + ":" + two(s % 60);
  }
  function isoDuration(s) {
    s = Math.max(0, Math.floor(s));
    return "PT" + Math.floor(s / 3600) + "H" + Math.floor((s % 3600) / 60) + "M" + (s % 60) + "S";
  }
  function status(text) { $("console-status").textContent = text || ""; }
  function send(frame) { if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); } }
  function newId() {
    var b = new Uint8Array(9); window.crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  // --- ringing: a soft two-tone chime from the Web Audio API, no file, no third party ---
  function chime() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [660, 880].forEach(function (freq, i) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = freq; osc.connect(gain); gain.connect(audio.destination);
        var t = audio.currentTime + i * 0.25;
        gain.gain.setValueAtTime(0.0001, t); gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.22);
        osc.start(t); osc.stop(t + 0.25);
      });
    } catch (e) { /* no audio: the visual ring remains */ }
  }
  function ringUpdate() {
    var ringing = document.querySelectorAll(".offer").length > 0;
    if (ringing && !ringTimer) { chime(); ringTimer = window.setInterval(chime, 2000); }
    if (!ringing && ringTimer) { window.clearInterval(ringTimer); ringTimer = null; }
  }

  // --- durations: a <time> per duration; ticking ones carry data-since (ms, our clock) ---
  // The server sends durations as of sending (waited_s, talked_s), never clock times, so
  // a browser clock that is off does not matter: we count on from the moment we got it.
  function setDuration(time, s) {
    var text = clock(s);
    if (time.textContent !== text) { time.textContent = text; time.setAttribute("datetime", isoDuration(s)); }
  }
  function tick() {
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll("time[data-since]"), function (time) {
      setDuration(time, (now - parseInt(time.dataset.since, 10)) / 1000);
    });
  }
  // The translated template (e.g. "waited %(s)s") with a <time> where %(s)s stands.
  function duration(template, seconds, ticking) {
    var span = document.createElement("span"), parts = template.split("%(s)s");
    var time = document.createElement("time");
    time.className = "duration";
    if (ticking) { time.dataset.since = String(Date.now() - 1000 * seconds); }
    setDuration(time, seconds);
    span.appendChild(document.createTextNode(parts[0]));
    span.appendChild(time);
    span.appendChild(document.createTextNode(parts.slice(1).join("")));
    return span;
  }

  // --- contacts ------------------------------------------------------------------------
  function facts(c) {
    var parts = [T[c.channel] || c.channel, c.home_branch || T.national];
    if (c.municipality) { parts.push(c.municipality); }
    return parts.join(" · ");
  }
  // Facts and the waited time; it ticks while the caller still waits (an offer).
  function showFacts(node, c, ticking) {
    node.textContent = facts(c) + " · ";
    node.appendChild(duration(T.waited, c.waited_s, ticking));
  }
  function offer(c) {
    if (document.getElementById("offer-" + c.contact_id)) { return; }
    var li = $("offer-template").content.firstElementChild.cloneNode(true);
    li.id = "offer-" + c.contact_id;
    li.querySelector(".offer-title").textContent = T.new_offer;
    showFacts(li.querySelector(".offer-facts"), c, true);
    $("offer-announce").textContent = fmt(T.offer_announce, { facts: facts(c) + " · " + fmt(T.waited, { s: clock(c.waited_s) }) });
    li.querySelector(".accept").addEventListener("click", function () { send({ type: "offer.accept", contact_id: c.contact_id }); });
    li.querySelector(".decline").addEventListener("click", function () { send({ type: "offer.decline", contact_id: c.contact_id }); });
    $("offers").appendChild(li);
    ringUpdate();
  }
  function dropOffer(id) { var el = document.getElementById("offer-" + id); if (el) { el.remove(); } ringUpdate(); }
  function panel(c) {
    var el = document.getElementById("contact-" + c.contact_id);
    if (el) { return el; }
    el = $("contact-template").content.firstElementChild.cloneNode(true);
    el.id = "contact-" + c.contact_id;
    el.dataset.channel = c.channel;
    el.querySelector(".contact-title").textContent = (T[c.channel] || c.channel) + " · " + (c.home_branch || T.national);
    Array.prototype.forEach.call(el.querySelectorAll(c.channel === "chat" ? ".phone-only" : ".chat-only"), function (n) { n.remove(); });
    if (c.channel === "phone") { el.querySelector(".messages").remove(); }
    var form = el.querySelector(".message-form");
    if (form) {
      var box = form.querySelector("textarea"), typingSent = 0;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (!box.value.trim()) { return; }
        send({ type: "message", contact_id: c.contact_id, id: newId(), text: box.value });
        box.value = ""; box.focus();
      });
      box.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
      });
      box.addEventListener("input", function () {
        var now = Date.now();
        if (now - typingSent > 3000) { typingSent = now; send({ type: "typing", contact_id: c.contact_id, active: true }); }
      });
    }
    var handover = el.querySelector(".handover");
    if (handover) { handover.addEventListener("click", function () { send({ type: "contact.handover", contact_id: c.contact_id }); }); }
    el.querySelector(".end").addEventListener("click", function () { send({ type: "contact.end", contact_id: c.contact_id }); });
    var wrap = el.querySelector(".wrapup");
    wrap.querySelector(".wrapup-title").textContent = T.wrapup;
    Array.prototype.forEach.call(wrap.querySelectorAll("input, select"), function (input, i) { input.id = "w-" + c.contact_id + "-" + i; });
    wrap.addEventListener("submit", function (event) {
      event.preventDefault();
      var topics = Array.prototype.map.call(wrap.querySelectorAll("input[name=topics]:checked"), function (i) { return i.value; });
      send({
        type: "wrapup", contact_id: c.contact_id, topics: topics,
        age_band: wrap.elements.age_band.value, gender: wrap.elements.gender.value,
        referral_given: wrap.elements.referral_given.checked,
        handed_over: wrap.elements.handed_over.value, ending: wrap.elements.ending.value,
      });
    });
    $("contacts").appendChild(el);
    return el;
  }
  // Talking time from the accept on: ticking while active (kept, not restarted, when a
  // resync agrees within 2 s), the final length in wrap-up.
  function showTalked(el, c) {
    var box = el.querySelector(".contact-duration"), time = box.querySelector("time[data-since]");
    if (c.state === "active") {
      var since = Date.now() - 1000 * (c.talked_s || 0);
      if (time && Math.abs(parseInt(time.dataset.since, 10) - since) < 2000) { return; }
      box.replaceChildren(duration(T.talking, c.talked_s || 0, true));
    } else {
      var final = time ? (Date.now() - parseInt(time.dataset.since, 10)) / 1000 : 0;
      box.replaceChildren(duration(T.lasted, c.talked_s || final, false));
    }
  }
  function contact(c) {
    dropOffer(c.contact_id);
    var el = panel(c);
    el.dataset.state = c.state;
    showFacts(el.querySelector(".contact-facts"), c, false);
    showTalked(el, c);
    if (c.state === "wrap_up") {
      var wrap = el.querySelector(".wrapup");
      wrap.hidden = false;
      Array.prototype.forEach.call(el.querySelectorAll(".message-form, .end, .handover"), function (n) { n.hidden = true; });
      wrap.querySelector("input").focus();
    }
  }
  function line(contactId, cls, text, who) {
    var el = document.getElementById("contact-" + contactId);
    var log = el && el.querySelector(".messages");
    if (!log) { return; }
    var li = document.createElement("div");
    li.className = cls;
    if (who) { var w = document.createElement("span"); w.className = "who"; w.textContent = who; li.appendChild(w); }
    var p = document.createElement("p"); p.className = "text"; p.textContent = text; li.appendChild(p);
    log.appendChild(li);
    li.scrollIntoView({ block: "end" });
  }
  // One read receipt per burst (a replay after a reload is many messages at once): every
  // frame counts against the rate limit, which a reconnect does not reset.
  function seenSoon(id) {
    if (seenTimers[id]) { return; }
    seenTimers[id] = window.setTimeout(function () {
      delete seenTimers[id];
      if (seen[id]) { send({ type: "seen", contact_id: id, upto: seen[id] }); }
    }, 300);
  }
  function entry(f) {
    var id = f.contact_id;
    if (f.seq <= (seen[id] || 0)) { return; }
    seen[id] = f.seq;
    if (f.type === "message") {
      line(id, "msg msg-" + f.from, f.text, f.from === "caller" ? T.caller : T.you);
      if (f.from === "caller") {
        var el = document.getElementById("contact-" + id);
        if (el) { el.querySelector(".typing").textContent = ""; }
        seenSoon(id);
      }
    } else if (f.type === "joined") { line(id, "msg-notice", T.joined); }
    else if (f.type === "notice") { line(id, "msg-notice", T[f.code] || f.code); }
    else if (f.type === "ended") { line(id, "msg-notice", T["ended_" + f.by] || f.by); }
  }

  // --- the socket ----------------------------------------------------------------------
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + window.location.host + app.dataset.wsPath);
    ws.onopen = function () { retry = 0; status(""); send({ type: "sync", last_seq: seen }); };
    ws.onmessage = function (event) { receive(JSON.parse(event.data)); };
    ws.onclose = function (event) {
      if (event.code === 4401 || event.code === 4403) { return; }
      status(T.reconnecting);
      retry = Math.min(retry + 1, 6);
      window.setTimeout(connect, 500 * retry);
    };
  }
  function receive(f) {
    switch (f.type) {
      case "state":
        app.dataset.ready = "1";
        Object.keys(f.presence).forEach(function (ch) { presence(ch, f.presence[ch]); });
        var live = {};
        f.contacts.forEach(function (c) { live[c.contact_id] = true; if (c.state === "offered") { offer(c); } else { contact(c); } });
        Array.prototype.forEach.call(document.querySelectorAll(".contact, .offer"), function (el) {
          if (!live[el.id.replace(/^(contact|offer)-/, "")]) { el.remove(); }
        });
        ringUpdate();
        break;
      case "presence": presence(f.channel, f.state); break;
      case "queue":
        ["branch", "national"].forEach(function (k) {
          $("q-" + k + "-waiting").textContent = f[k].waiting;
          $("q-" + k + "-longest").textContent = clock(f[k].longest_wait_s);
        });
        break;
      case "offer": offer(f); break;
      case "offer.withdrawn": dropOffer(f.contact_id); break;
      case "contact": contact(f); break;
      case "wrapup.saved":
        var done = document.getElementById("contact-" + f.contact_id);
        if (done) { done.remove(); }
        delete seen[f.contact_id];
        status(T.saved);
        break;
      case "typing":
        var el = document.getElementById("contact-" + f.contact_id);
        if (el) { el.querySelector(".typing").textContent = f.active ? T.typing : ""; }
        break;
      case "handover.started": status(T.handover_started); break;
      case "error": status(fmt(T.error, { m: f.message })); break;
      case "ack": case "receipt": case "pong": break;
      default: if (typeof f.seq === "number" && f.contact_id) { entry(f); }
    }
  }
  function presence(channel, state) {
    var input = document.querySelector("input[name=presence-" + channel + "][value=" + state + "]");
    if (input) { input.checked = true; }
  }
  Array.prototype.forEach.call(document.querySelectorAll("fieldset.presence input"), function (input) {
    input.addEventListener("change", function () {
      if (audio === null) { try { audio = new (window.AudioContext || window.webkitAudioContext)(); } catch (e) { audio = null; } }
      send({ type: "presence", channel: input.closest("fieldset").dataset.channel, state: input.value });
    });
  });
  window.setInterval(tick, 250);  // cheap: writes only when a shown second changes
  connect();
})();
