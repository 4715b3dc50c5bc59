// The door's screen: live picture with the guide, clock, the result of each decision
// (from GET /events), IN/OUT/AUTO buttons for walk-up punching, the link indicator.
// Reconnects by itself: EventSource retries, and the picture is reloaded whenever the
// feed comes back (a daemon restart ends both).
"use strict";

const CARD_MS = 5000;
const $ = (id) => document.getElementById(id);
let cardTimer = null;
let walkUp = false;

function tickClock() {
  const now = new Date();
  $("clock").textContent = clockTime();
  $("date").textContent = clockDate(now);
}

function label() {
  for (const b of document.querySelectorAll("#modes button")) b.textContent = t(b.dataset.label);
}

function showCard(outcome, title, body) {
  const card = $("card");
  card.dataset.outcome = outcome;
  $("card-title").textContent = title;
  $("card-body").textContent = body;
  card.hidden = false;
  clearTimeout(cardTimer);
  cardTimer = setTimeout(() => { card.hidden = true; card.dataset.outcome = ""; }, CARD_MS);
}

function onDecision(d) {
  const at = clockTime(d.ts_server);
  if (d.outcome === "punched") {
    showCard("punched", t("punched", d.name, d.type), at);
  } else if (d.outcome === "duplicate") {
    showCard("duplicate", t("duplicate", d.name), at);
  } else if (d.reason === "unknown") {
    showCard("unknown", d.message, t("unknown_help"));
  } else {
    showCard("failed", t("failed"), d.message || "");
  }
}

function onGuidance(g) {
  const el = $("guidance");
  el.dataset.code = g.code;
  el.textContent = g.message || (walkUp ? t("idle") : t("walk_up_off"));
}

function onMode(m) {
  for (const b of document.querySelectorAll("#modes button")) {
    b.classList.toggle("active", b.dataset.mode === m.mode);
  }
}

function onStatus(s) {
  const online = s.mqtt === "connected" || s.mqtt === "disabled";
  const link = $("link");
  link.dataset.state = online ? "online" : "offline";
  link.textContent = online ? t("online") : t("offline");
  // Without a broker (standalone) nothing is ever sent: nothing is "waiting".
  const waiting = s.mqtt !== "disabled" && s.outbox_pending;
  $("outbox").textContent = waiting ? t("outbox", s.outbox_pending) : "";
}

function reloadStream() {
  $("stream").src = `/stream.mjpeg?t=${Date.now()}`;
}

function connect() {
  const feed = new EventSource("/events");
  let lost = false;
  feed.addEventListener("hello", (e) => {
    const h = JSON.parse(e.data);
    setLang(h.locale);
    walkUp = h.walk_up;
    $("modes").hidden = !h.walk_up;
    label();
    tickClock();
    onMode({ mode: h.mode });
    if (lost) reloadStream();
    lost = false;
  });
  feed.addEventListener("decision", (e) => onDecision(JSON.parse(e.data)));
  feed.addEventListener("guidance", (e) => onGuidance(JSON.parse(e.data)));
  feed.addEventListener("mode", (e) => onMode(JSON.parse(e.data)));
  feed.addEventListener("status", (e) => onStatus(JSON.parse(e.data)));
  feed.onerror = () => {
    lost = true;
    const link = $("link");
    link.dataset.state = "lost";
    link.textContent = t("lost");
  };
}

for (const b of document.querySelectorAll("#modes button")) {
  b.addEventListener("click", () => {
    api("/punch-mode", { method: "POST", json: { mode: b.dataset.mode } })
      .then(onMode)
      .catch(() => {});
  });
}
// A picture that fails (camera restarting) is asked for again.
$("stream").addEventListener("error", () => setTimeout(reloadStream, 2000));
setInterval(tickClock, 1000);
tickClock();
label();
$("link").textContent = t("connecting");
loadSession().catch(() => {}).finally(connect);
