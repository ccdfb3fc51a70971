// KAYA787 live analytics dashboard.
// The page carries no data: it reads the analytics stream (server-sent events) with
// fetch(), because EventSource cannot send an Authorization header, and redraws on each
// snapshot. The token comes from signing in through identity (authorization code + PKCE),
// the URL fragment (never sent to a server by the browser) or the form, and lives only in
// this tab's memory.
(function () {
  "use strict";

  var STREAM_URL = "/api/v1/analytics/stream";
  var MIN_RETRY_MS = 1000;
  var MAX_RETRY_MS = 15000;
  var AXIS = { stroke: "#8a96a3", grid: { stroke: "#26313c", width: 1 }, ticks: { stroke: "#26313c" } };
  // Amounts in minor units run to eight digits and more: room for their labels.
  var VALUE_AXIS = Object.assign({}, AXIS, { size: 80 });
  var PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#bc8cff", "#f778ba", "#39c5cf", "#f85149"];

  var token = null;
  var retryMs = MIN_RETRY_MS;
  var retryTimer = null;
  var charts = { transfers: null, volume: null, latency: null };
  var volumeCurrencies = "";

  function $(id) { return document.getElementById(id); }

  function setStatus(state, text) {
    var el = $("stream-status");
    el.dataset.state = state;
    el.textContent = text;
  }

  function showError(text) {
    var el = $("error");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function tokenFromFragment() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    var found = params.get("access_token");
    if (found) {
      // Keep the token out of the address bar, history and any copy of the URL.
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return found;
  }

  // --- the stream -------------------------------------------------------------------

  function scheduleReconnect(reason) {
    setStatus("connecting", "reconnecting (" + reason + ")");
    if (retryTimer) { window.clearTimeout(retryTimer); }
    retryTimer = window.setTimeout(connect, retryMs);
    retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
  }

  function problemDetail(response) {
    return response.text().then(function (body) {
      try { return JSON.parse(body).detail || response.statusText; } catch (e) { return response.statusText; }
    });
  }

  function connect() {
    retryTimer = null;
    if (!token) { return; }
    setStatus("connecting", "connecting");
    window.fetch(STREAM_URL, {
      headers: { "Authorization": "Bearer " + token, "Accept": "text/event-stream" },
      cache: "no-store",
      credentials: "omit",
    }).then(function (response) {
      if (response.status === 401 || response.status === 403) {
        return problemDetail(response).then(function (detail) {
          token = null;
          setStatus("unauthorized", "not authorized");
          showError("The stream refused the token: " + detail);
          $("token-form").hidden = false;
        });
      }
      if (!response.ok || !response.body) {
        return problemDetail(response).then(function (detail) { scheduleReconnect(response.status + " " + detail); });
      }
      showError("");
      return readEvents(response.body.getReader()).then(function () {
        scheduleReconnect("stream ended");
      });
    }).catch(function (err) {
      scheduleReconnect(err && err.message ? err.message : "network error");
    });
  }

  function readEvents(reader) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { return; }
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handleMessage(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  function handleMessage(raw) {
    var event = "message";
    var data = [];
    raw.split("\n").forEach(function (line) {
      if (line === "" || line.charAt(0) === ":") { return; }
      var colon = line.indexOf(":");
      var field = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") { event = value; }
      else if (field === "data") { data.push(value); }
    });
    if (!data.length) { return; }
    var payload = JSON.parse(data.join("\n"));
    if (event === "snapshot") {
      retryMs = MIN_RETRY_MS;
      setStatus("live", "live");
      render(payload);
    } else if (event === "heartbeat") {
      setStatus("live", "live");
    }
  }

  // --- rendering --------------------------------------------------------------------

  function setCount(id, value) {
    var el = $(id);
    el.textContent = String(value);
    el.dataset.value = String(value);
  }

  function fillTable(id, entries) {
    var body = $(id).querySelector("tbody");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    entries.forEach(function (entry) {
      var row = document.createElement("tr");
      row.dataset.key = entry[0];
      entry.forEach(function (cell) {
        var td = document.createElement("td");
        td.textContent = String(cell);
        row.appendChild(td);
      });
      body.appendChild(row);
    });
  }

  function ms(value) { return value === null || value === undefined ? "–" : String(Math.round(value)); }

  function render(snapshot) {
    var o = snapshot.overview;
    setCount("transfers-completed", o.transfers_completed);
    setCount("transfers-failed", o.transfers_failed);
    setCount("deposits-completed", o.deposits_completed);
    setCount("users-registered", o.users_registered);
    setCount("accounts-opened", o.accounts_opened);
    var letters = o.dead_letters || {};
    setCount("dead-letters", Object.keys(letters).reduce(function (n, k) { return n + letters[k]; }, 0));
    var lat = o.transfer_latency_ms || {};
    $("latency").textContent = ms(lat.p50) + " / " + ms(lat.p95) + " / " + ms(lat.p99) + " ms";
    $("as-of").textContent = o.as_of ? "last event " + o.as_of : "no events yet";
    fillTable("volume-table", Object.keys(o.volume).sort().map(function (c) { return [c, o.volume[c]]; }));
    fillTable("dead-letter-table", Object.keys(letters).sort().map(function (t) { return [t, letters[t]]; }));
    drawCharts(snapshot.minutes);
    document.body.dataset.renders = String(Number(document.body.dataset.renders || "0") + 1);
  }

  function chartWidth(el) { return Math.max(320, el.clientWidth || 520); }

  function draw(name, elementId, series, data) {
    var el = $(elementId);
    var chart = charts[name];
    if (chart && chart.series.length !== series.length + 1) {
      chart.destroy();
      chart = null;
    }
    if (!chart) {
      while (el.firstChild) { el.removeChild(el.firstChild); }
      chart = new window.uPlot({
        width: chartWidth(el),
        height: 220,
        scales: { x: { time: true } },
        axes: [AXIS, VALUE_AXIS],
        series: [{}].concat(series),
      }, data, el);
      charts[name] = chart;
    } else {
      chart.setData(data);
    }
  }

  function line(label, index, extra) {
    var s = { label: label, stroke: PALETTE[index % PALETTE.length], width: 2, points: { show: true, size: 4 } };
    return Object.assign(s, extra || {});
  }

  function drawCharts(minutes) {
    var xs = minutes.map(function (m) { return Date.parse(m.minute) / 1000; });
    function col(read) { return minutes.map(read); }

    draw("transfers", "chart-transfers", [line("completed", 1), line("failed", 6)], [
      xs,
      col(function (m) { return m.transfers_completed; }),
      col(function (m) { return m.transfers_failed; }),
    ]);

    var currencies = {};
    minutes.forEach(function (m) { Object.keys(m.volume).forEach(function (c) { currencies[c] = true; }); });
    var codes = Object.keys(currencies).sort();
    if (codes.join() !== volumeCurrencies && charts.volume) {
      charts.volume.destroy();
      charts.volume = null;
    }
    volumeCurrencies = codes.join();
    var volumeData = [xs].concat(codes.map(function (c) { return col(function (m) { return m.volume[c] || 0; }); }));
    if (!codes.length) { volumeData.push(col(function () { return 0; })); }
    draw("volume", "chart-volume",
      (codes.length ? codes : ["(none)"]).map(function (c, i) { return line(c, i); }), volumeData);

    draw("latency", "chart-latency", [line("p50", 0), line("p95", 2), line("p99", 6)], [
      xs,
      col(function (m) { return m.transfer_latency_ms.p50; }),
      col(function (m) { return m.transfer_latency_ms.p95; }),
      col(function (m) { return m.transfer_latency_ms.p99; }),
    ]);
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (name) {
      var chart = charts[name];
      if (chart) { chart.setSize({ width: chartWidth(chart.root.parentNode), height: 220 }); }
    });
  });

  // --- sign-in: authorization code + PKCE (RFC 7636) with identity ---------------------
  // The verifier waits in sessionStorage (this tab only) during the round trip to the
  // sign-in page; the token itself is never stored.

  var CLIENT_ID = "kaya787-dashboard";
  var PKCE_KEY = "kaya787.dashboard.pkce";

  function redirectUri() { return window.location.origin + window.location.pathname; }

  function base64url(bytes) {
    var text = "";
    bytes.forEach(function (b) { text += String.fromCharCode(b); });
    return window.btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString(size) { return base64url(window.crypto.getRandomValues(new Uint8Array(size))); }

  function signIn() {
    var verifier = randomString(48);
    var state = randomString(16);
    window.sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier: verifier, state: state }));
    window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)).then(function (digest) {
      var query = new URLSearchParams({
        response_type: "code", client_id: CLIENT_ID, redirect_uri: redirectUri(),
        scope: "analytics:read", state: state,
        code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: "S256",
      });
      window.location.assign("/oauth2/authorize?" + query.toString());
    });
  }

  function tokenFromCode() {
    var params = new URLSearchParams(window.location.search);
    if (!params.has("code") && !params.has("error")) { return Promise.resolve(null); }
    window.history.replaceState(null, "", window.location.pathname);  // the code is one-use
    var saved = JSON.parse(window.sessionStorage.getItem(PKCE_KEY) || "null");
    window.sessionStorage.removeItem(PKCE_KEY);
    if (params.has("error")) { return Promise.reject(new Error(params.get("error"))); }
    if (!saved || saved.state !== params.get("state")) {
      return Promise.reject(new Error("this sign-in was not started in this tab"));
    }
    return fetch("/oauth2/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
        client_id: CLIENT_ID, code_verifier: saved.verifier,
      }).toString(),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.error_description || body.error); }
        return body.access_token;
      });
    });
  }

  // --- start ------------------------------------------------------------------------

  function start(withToken) {
    token = withToken;
    retryMs = MIN_RETRY_MS;
    $("token-form").hidden = true;
    showError("");
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("token-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var value = $("token-input").value.trim();
      $("token-input").value = "";
      if (value) { start(value); }
    });
    $("sign-in").addEventListener("click", signIn);
    var fromUrl = tokenFromFragment();
    if (fromUrl) { start(fromUrl); return; }
    setStatus("idle", "sign in or paste a token to connect");
    tokenFromCode().then(function (signedIn) {
      if (signedIn) { start(signedIn); }
    }).catch(function (err) { showError("Sign-in failed: " + err.message); });
  });
})();
