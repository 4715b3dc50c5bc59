// Shared by the kiosk and the admin page: the two languages, the API call with the
// session's CSRF token, times in the terminal's clock. No framework, no network beyond
// the terminal: it may be offline.
"use strict";

const TEXT = {
  ko: {
    in: "출근", out: "퇴근", auto: "자동",
    punched: (name, kind) => `${name}님 ${kind === "OUT" ? "퇴근" : "출근"}`,
    duplicate: (name) => `${name}님 이미 기록되었습니다`,
    unknown_help: "관리자에게 등록을 요청해 주세요",
    failed: "인식하지 못했습니다",
    online: "온라인", offline: "오프라인", connecting: "연결 중…", lost: "연결 끊김 · 재연결 중",
    outbox: (n) => `전송 대기 ${n}건`,
    mode_chosen: (m) => `다음 기록: ${m}`,
    idle: "카메라를 바라봐 주세요",
    walk_up_off: "관리자에게 문의해 주세요",
    weekdays: ["일", "월", "화", "수", "목", "금", "토"],
  },
  en: {
    in: "IN", out: "OUT", auto: "AUTO",
    punched: (name, kind) => `${name} · ${kind === "OUT" ? "OUT" : "IN"}`,
    duplicate: (name) => `${name} · already recorded`,
    unknown_help: "Please ask an administrator to enrol you",
    failed: "Not recognised",
    online: "Online", offline: "Offline", connecting: "Connecting…", lost: "Disconnected · reconnecting",
    outbox: (n) => `${n} waiting to send`,
    mode_chosen: (m) => `Next punch: ${m}`,
    idle: "Please look at the camera",
    walk_up_off: "Please ask an administrator",
    weekdays: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
  },
};

let lang = "ko";
let csrf = null;

function t(key, ...args) {
  const v = (TEXT[lang] || TEXT.ko)[key];
  return typeof v === "function" ? v(...args) : v;
}

function setLang(l) {
  lang = TEXT[l] ? l : "ko";
  document.documentElement.lang = lang;
}

// HH:MM:SS of a server timestamp (RFC 3339) in the terminal's own time zone.
function clockTime(ts) {
  const d = ts ? new Date(ts) : new Date();
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

function clockDate(d) {
  const wd = t("weekdays")[d.getDay()];
  const ymd = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  return lang === "ko" ? `${ymd} (${wd})` : `${wd} ${ymd}`;
}

// Asks the terminal; changing requests carry the session's CSRF token. Answers the
// parsed JSON, or throws an Error whose message is the API's.
async function api(path, options = {}) {
  const opts = { credentials: "same-origin", ...options };
  opts.headers = { ...(options.headers || {}) };
  if (opts.method && opts.method !== "GET" && csrf) opts.headers["X-CSRF-Token"] = csrf;
  if (opts.json !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
    delete opts.json;
  }
  const r = await fetch(path, opts);
  const type = r.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const e = new Error((body && body.message) || `HTTP ${r.status}`);
    e.status = r.status;
    e.body = body;
    throw e;
  }
  return body;
}

// The session state; keeps the CSRF token for `api`.
async function loadSession() {
  const s = await api("/session");
  csrf = s.csrf || null;
  return s;
}
