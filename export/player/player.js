// The chat player: replays a window of archived chat. Data comes embedded in the page (rows, see
// export/html.py for their shape) or, when meta.source is set, from a URL serving
// canonical records as JSON lines (slimmed here exactly as export/html.py slims them).
// Only the rows in view are in the DOM (fixed row height), so 100,000 messages or more stay smooth.
(function () {
  "use strict";
  var ROW = 24; // px, as .row in player.css
  var MAX_PX = 8000000; // browsers cap an element's height: beyond this the scroll maps proportionally
  var PALETTE = ["#FF0000", "#0000FF", "#008000", "#B22222", "#FF7F50", "#9ACD32", "#FF4500", "#2E8B57",
    "#DAA520", "#D2691E", "#5F9EA0", "#1E90FF", "#FF69B4", "#8A2BE2", "#00FF7F"];
  var COLOR_RE = /^#[0-9A-Fa-f]{6}$/;
  var CODES = { PRIVMSG: "P", USERNOTICE: "U", CLEARMSG: "M", CLEARCHAT: "C" };

  function $(id) { return document.getElementById(id); }
  function jsonOf(id) { return JSON.parse($(id).textContent); }

  // FNV-1a (32 bit) of the login's code points into Twitch's palette, as export/ass.py stable_color
  function stableColor(login) {
    var h = 0x811c9dc5;
    for (var ch of login) { h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0; }
    return PALETTE[h % PALETTE.length];
  }

  // A name colour made legible on the dark background: dark ones are mixed halfway with white
  function readable(hex) {
    var rgb = [1, 3, 5].map(function (i) { return parseInt(hex.slice(i, i + 2), 16); });
    if (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] >= 90) { return hex; }
    return "#" + rgb.map(function (c) { return Math.round((c + 255) / 2).toString(16).padStart(2, "0"); }).join("");
  }

  function str(v) { return typeof v === "string" ? v : ""; }

  function trimmed(row, keep) {
    while (row.length > keep && row[row.length - 1] === "") { row.pop(); }
    return row;
  }

  // canonical records -> the page's rows, as export/html.py's Slimmer makes them (without its
  // memory bounds: a browser holds the whole window anyway)
  function slimRecords(records, startMs) {
    var rows = [], userIndex = new Map(), ids = new Map(), lines = 0;
    records.forEach(function (rec) {
      var code = CODES[rec.command];
      if (!code) { return; }
      var tags = rec.tags || {};
      var params = rec.params || [];
      var login = str(rec.user) || str(tags.login);
      var user = [login, str(tags["display-name"]), str(tags.color), str(tags.badges)];
      var key = JSON.stringify(user);
      var u = userIndex.get(key);
      if (u === undefined) { u = userIndex.size; userIndex.set(key, u); rows.push(trimmed(user.slice(), 1)); }
      var row = [Math.round(rec.time * 1000 - startMs), code, u, str(params[1])];
      if (code === "P" || code === "U") {
        if (code === "P") { row.push(str(tags["reply-parent-display-name"]), str(tags["reply-parent-msg-body"])); }
        else { row.push(str(tags["system-msg"]) || str(tags["msg-id"])); }
        if (str(tags.id)) { ids.set(str(tags.id), lines); }
        lines++;
      } else if (code === "M") {
        var target = str(tags["target-msg-id"]);
        row.push(target && ids.has(target) ? ids.get(target) : -1);
      }
      rows.push(trimmed(row, 4));
    });
    return rows;
  }

  function esc(s) {
    return s.replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }

  function displayName(login, shown) {
    if (!login) { return shown || "?"; }
    if (!shown) { return login; }
    return shown.toLowerCase() === login.toLowerCase() ? shown : shown + " (" + login + ")";
  }

  function meAction(text) {
    if (text.indexOf("\x01ACTION ") === 0 || text === "\x01ACTION") {
      return text.slice(7).trim().replace(/\x01+$/, "").trim();
    }
    return null;
  }

  function upperBound(arr, n, value) { // first i in [0, n) with arr[i] > value
    var lo = 0, hi = n;
    while (lo < hi) { var mid = (lo + hi) >>> 1; if (arr[mid] <= value) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }

  // The chat lines (P and U rows), their users, and when each was removed (Infinity: never)
  function buildModel(data) {
    var shown = [], times = [], removed = [], users = [], byUser = new Map(), clearedTo = 0;
    data.forEach(function (row) {
      if (typeof row[0] === "string") { users.push([row[0], row[1] || "", row[2] || "", row[3] || ""]); return; }
      var t = row[0], code = row[1];
      if (code === "P" || code === "U") {
        var k = shown.length;
        shown.push(row); times.push(t); removed.push(Infinity);
        var login = (users[row[2]] || [""])[0].toLowerCase();
        if (login) { if (!byUser.has(login)) { byUser.set(login, []); } byUser.get(login).push(k); }
      } else if (code === "M") {
        var target = row[4];
        if (typeof target === "number" && target >= 0 && target < shown.length && removed[target] > t) { removed[target] = t; }
      } else if (code === "C") {
        var who = (row[3] || "").toLowerCase();
        var list = who ? (byUser.get(who) || []) : null;
        if (list) { list.forEach(function (i) { if (removed[i] > t) { removed[i] = t; } }); }
        else { for (var i = clearedTo; i < shown.length; i++) { if (removed[i] > t) { removed[i] = t; } } clearedTo = shown.length; }
      }
    });
    var removals = removed.filter(function (r) { return r !== Infinity; }).sort(function (a, b) { return a - b; });
    return { rows: shown, times: Float64Array.from(times), removed: Float64Array.from(removed), users: users,
      removals: Float64Array.from(removals) };
  }

  // The page's images (export/html.py PageImages): e, data URIs by number; b, badge -> number.
  // Only data: URIs of the five image types are ever put in an src (the CSP allows nothing else).
  var IMAGES = { e: [], b: {} };
  var DATA_URI = /^data:image\/(png|gif|webp|avif|jpeg);base64,[A-Za-z0-9+\/=]+$/;

  function imageOf(i) {
    var uri = typeof i === "number" ? IMAGES.e[i] : undefined;
    return typeof uri === "string" && DATA_URI.test(uri) ? uri : null;
  }

  function imgHtml(uri, word, cls) {
    return '<img class="' + cls + '" src="' + uri + '" alt="' + esc(word) + '" title="' + esc(word) + '">';
  }

  // text with its emote spans ([start, end, image] in code points) shown as images; a span whose
  // image is missing, or that does not fit the text, stays the word
  function bodyHtml(text, spans) {
    if (!Array.isArray(spans) || !spans.length) { return esc(text); }
    var cps = Array.from(text), out = "", at = 0;
    spans.forEach(function (s) {
      if (!Array.isArray(s) || !(s[0] >= at) || !(s[1] > s[0]) || s[1] > cps.length) { return; }
      var uri = imageOf(s[2]);
      if (!uri) { return; }
      out += esc(cps.slice(at, s[0]).join("")) + imgHtml(uri, cps.slice(s[0], s[1]).join(""), "emote");
      at = s[1];
    });
    return out + esc(cps.slice(at).join(""));
  }

  function badgesHtml(badges) {
    if (!badges) { return ""; }
    return badges.split(",").map(function (b) {
      var parts = b.split("/"), label = parts[0] + (parts[1] && parts[1] !== "1" ? " " + parts[1] : "");
      var uri = Object.prototype.hasOwnProperty.call(IMAGES.b, b) ? imageOf(IMAGES.b[b]) : null;
      if (uri) { return imgHtml(uri, label, "badge-img"); }
      return label ? '<span class="badge">' + bdi(label) + "</span>" : "";
    }).join("");
  }

  function Player(meta, model) {
    this.meta = meta;
    this.m = model;
    this.startMs = meta.start * 1000;
    var last = model.times.length ? model.times[model.times.length - 1] : 0;
    this.duration = Math.max(0, meta.end != null ? meta.end * 1000 - this.startMs : last);
    this.t = 0;
    this.playing = false;
    this.speed = 1;
    this.follow = true;
    this.filter = null; // Int32Array of message indices matching the search, or null
    this.filterTimes = null;
    this.lower = null;
    this.renderKey = "";
    this.firstRenderMs = null;
  }

  Player.prototype.count = function () {
    if (this.filter) { return upperBound(this.filterTimes, this.filter.length, this.t); }
    return upperBound(this.m.times, this.m.times.length, this.t);
  };

  Player.prototype.messageAt = function (i) { return this.filter ? this.filter[i] : i; };

  // Every text a user chose goes in a <bdi>: a right-to-left override (U+202E) or any other bidi
  // control in a name or a message then reorders only that text, never the rest of the row.
  function bdi(text) { return "<bdi>" + esc(text) + "</bdi>"; }

  Player.prototype.rowHtml = function (k) {
    var row = this.m.rows[k], user = this.m.users[row[2]] || ["", "", "", ""];
    var login = user[0], color = readable(COLOR_RE.test(user[2]) ? user[2] : stableColor(login));
    var name = bdi(displayName(login, user[1])), text = row[3] || "";
    var abs = new Date(this.startMs + row[0]);
    var html = '<span class="ts">' + abs.toISOString().slice(11, 19) + "</span>" + badgesHtml(user[3]);
    var nameHtml = '<span class="name" style="color:' + color + '">' + name + "</span>";
    var spans = row[1] === "U" ? row[5] : row[6];
    if (row[1] === "U") {
      html += '<span class="sys">\u2605 ' + bdi(row[4] || "user notice") + "</span>";
      if (text) { html += nameHtml + '<span class="body">: <bdi>' + bodyHtml(text, spans) + "</bdi></span>"; }
    } else {
      if (row[4]) { html += '<span class="reply">\u21aa @' + bdi(row[4]) + ": " + bdi(row[5] || "") + "</span>"; }
      var action = meAction(text);
      if (action !== null) {
        html += '<span class="me" style="color:' + color + '">' + nameHtml + ' <span class="body"><bdi>' + bodyHtml(action, spans) + "</bdi></span></span>";
      } else {
        html += nameHtml + '<span class="body">: <bdi>' + bodyHtml(text, spans) + "</bdi></span>";
      }
    }
    var cls = this.m.removed[k] <= this.t ? "row removed" : "row";
    return '<div class="' + cls + '" data-i="' + k + '">' + html + "</div>";
  };

  Player.prototype.render = function () {
    var log = $("log"), count = this.count(), total = count * ROW, spacerH = Math.min(total, MAX_PX);
    $("spacer").style.height = spacerH + "px";
    if (this.follow) { log.scrollTop = log.scrollHeight; }
    var viewH = log.clientHeight, top = log.scrollTop, first, offset;
    if (total <= MAX_PX) {
      first = Math.floor(top / ROW); offset = first * ROW;
    } else {
      var maxScroll = Math.max(1, spacerH - viewH);
      first = Math.round(Math.min(1, top / maxScroll) * Math.max(0, count - Math.floor(viewH / ROW))); offset = top;
    }
    var n = Math.min(count - first, Math.ceil(viewH / ROW) + 1);
    var removedNow = upperBound(this.m.removals, this.m.removals.length, this.t);
    var key = [count, first, n, offset, removedNow, this.filter ? this.filter.length : -1].join(",");
    if (key !== this.renderKey) {
      this.renderKey = key;
      var parts = [];
      for (var i = first; i < first + n; i++) { parts.push(this.rowHtml(this.messageAt(i))); }
      var rowsEl = $("rows");
      rowsEl.style.top = offset + "px";
      rowsEl.innerHTML = parts.join("");
    }
    var total2 = this.filter ? this.filter.length : this.m.times.length;
    var times = this.filter ? this.filterTimes : this.m.times;
    // in a silent stretch (nothing in the last minute), say where the chat goes on
    var hint = "";
    if (count < total2 && (count === 0 || this.t - times[count - 1] > QUIET_MS)) {
      hint = " \u00b7 quiet here; next message at +" + hms(times[count]);
    }
    $("status").textContent = count + " of " + total2 + (this.filter ? " matching" : "") + " messages" + hint;
    $("status").dataset.count = String(count);
  };

  var QUIET_MS = 60000;

  function hms(ms) {
    var s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  Player.prototype.seek = function (ms) {
    this.t = Math.max(0, Math.min(this.duration, ms));
    $("slider").value = String(this.t);
    var abs = new Date(this.startMs + this.t);
    var iso = abs.toISOString();  // the date too: a window can run past midnight
    $("clock").textContent = iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC (+" + hms(this.t) + " / " + hms(this.duration) + ")";
    $("clock").title = abs.toISOString();
    this.render();
  };

  Player.prototype.play = function () {
    if (this.playing) { return; }
    if (this.t >= this.duration) { this.seek(0); }
    this.playing = true; this.follow = true;
    $("play").textContent = "Pause";
    var self = this, last = performance.now();
    function tick(now) {
      if (!self.playing) { return; }
      self.seek(self.t + (now - last) * self.speed); last = now;
      if (self.t >= self.duration) { self.pause(); } else { requestAnimationFrame(tick); }
    }
    requestAnimationFrame(tick);
  };

  Player.prototype.pause = function () { this.playing = false; $("play").textContent = "Play"; };
  Player.prototype.toggle = function () { if (this.playing) { this.pause(); } else { this.play(); } };

  Player.prototype.search = function (query) {
    var q = query.trim().toLowerCase();
    if (!q) { this.filter = null; this.filterTimes = null; }
    else {
      var m = this.m;
      if (!this.lower) {
        this.lower = m.rows.map(function (row) {
          var u = m.users[row[2]] || ["", ""];
          var extra = row[1] === "U" ? row[4] || "" : "";
          return (u[0] + "\n" + u[1] + "\n" + (row[3] || "") + "\n" + extra).toLowerCase();
        });
      }
      var hits = [];
      for (var i = 0; i < this.lower.length; i++) { if (this.lower[i].indexOf(q) !== -1) { hits.push(i); } }
      this.filter = Int32Array.from(hits);
      this.filterTimes = Float64Array.from(hits, function (k) { return m.times[k]; });
    }
    this.follow = true;
    this.render();
  };

  Player.prototype.setSpeed = function (speed) { this.speed = speed; $("speed").value = String(speed); };

  function bind(player) {
    var slider = $("slider"), speeds = Array.from($("speed").options, function (o) { return Number(o.value); });
    slider.max = String(player.duration);
    slider.addEventListener("input", function () { player.follow = true; player.seek(Number(slider.value)); });
    $("play").addEventListener("click", function () { player.toggle(); });
    $("speed").addEventListener("change", function () { player.speed = Number($("speed").value); });
    var pending = null;
    $("search").addEventListener("input", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { player.search($("search").value); }, 120);
    });
    $("log").addEventListener("scroll", function () {
      var log = $("log");
      player.follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 2;
      player.render();
    });
    window.addEventListener("resize", function () { player.render(); });
    document.addEventListener("keydown", function (e) {
      var inField = e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT");
      if (e.target === $("search")) {
        if (e.key === "Escape") { e.target.blur(); } else if (e.key === "Enter") { player.search(e.target.value); }
        return;
      }
      if (inField && e.target !== slider && e.key !== " ") { return; }
      var step = e.shiftKey ? 60000 : 5000, handled = true, at = speeds.indexOf(player.speed);
      if (e.key === " ") { player.toggle(); }
      else if (e.key === "ArrowRight") { player.follow = true; player.seek(player.t + step); }
      else if (e.key === "ArrowLeft") { player.follow = true; player.seek(player.t - step); }
      else if (e.key === "ArrowUp") { player.setSpeed(speeds[Math.min(speeds.length - 1, at + 1)] || 1); }
      else if (e.key === "ArrowDown") { player.setSpeed(speeds[Math.max(0, at - 1)] || 1); }
      else if (e.key === "Home") { player.seek(0); }
      else if (e.key === "End") { player.seek(player.duration); }
      else if (e.key === "/") { $("search").focus(); }
      else { handled = false; }
      if (handled) { e.preventDefault(); }
    });
  }

  function start(meta, data) {
    var player = new Player(meta, buildModel(data));
    window.chatPlayer = player;
    bind(player);
    // `#t=SECONDS`: a finite non-negative decimal number, else the fragment is ignored
    function hashSeconds() {
      var match = /(?:^#|&)t=([^&]*)/.exec(location.hash);
      if (!match || !/^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(match[1])) { return null; }
      var seconds = Number(match[1]);
      return isFinite(seconds) && seconds >= 0 ? seconds : null;
    }
    function fromHash(first) {
      var seconds = hashSeconds();
      if (seconds === null && first !== true) { return; }
      player.follow = true;
      player.seek(seconds === null ? 0 : seconds * 1000);
    }
    window.addEventListener("hashchange", fromHash);
    fromHash(true);
    player.firstRenderMs = performance.now();
    document.documentElement.dataset.ready = "1";
  }

  function fail(message) {
    $("rows").innerHTML = '<div id="empty">' + esc(message) + "</div>";
    document.documentElement.dataset.ready = "error";
  }

  try { IMAGES = jsonOf("chat-images") || IMAGES; } catch (e) { /* no images: words */ }
  if (!Array.isArray(IMAGES.e) || typeof IMAGES.b !== "object" || IMAGES.b === null) { IMAGES = { e: [], b: {} }; }
  var meta = jsonOf("chat-meta");
  if (meta.source) {
    fetch(meta.source).then(function (r) {
      if (!r.ok) { throw new Error(r.status + " " + r.statusText); }
      return r.text();
    }).then(function (text) {
      var records = text.split("\n").filter(Boolean).map(function (line) { return JSON.parse(line); });
      if (meta.start == null) { meta.start = records.length ? records[0].time : 0; }
      start(meta, slimRecords(records, meta.start * 1000));
    }).catch(function (e) { fail("could not load the chat from " + meta.source + ": " + e.message); });
  } else {
    start(meta, jsonOf("chat-rows"));
  }
}());
