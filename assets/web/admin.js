// The admin page: sign in with the admin key (exchanged for an HttpOnly session cookie;
// the key is never stored by the page), people, enrolment from the camera or a photo,
// deletion, today's records, CSV export.
"use strict";

const $ = (id) => document.getElementById(id);

function notice(id, kind, text) {
  const el = $(id);
  el.dataset.kind = kind;
  el.textContent = text;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// The API's bare dates are UTC days; the admin means days on the terminal's clock
// (09:00 KST is 00:00 UTC): RFC 3339 bounds of local days `from`..`to` (YYYY-MM-DD).
function localDays(from, to) {
  const [fy, fm, fd] = from.split("-").map(Number);
  const [ty, tm, td] = to.split("-").map(Number);
  return {
    from: new Date(fy, fm - 1, fd, 0, 0, 0, 0).toISOString(),
    to: new Date(ty, tm - 1, td, 23, 59, 59, 999).toISOString(),
  };
}

async function loadPeople() {
  const list = await api("/users");
  $("people-count").textContent = `(${list.count})`;
  const body = $("people");
  body.replaceChildren();
  for (const u of list.users) {
    const tr = document.createElement("tr");
    tr.dataset.employeeId = u.employee_id;
    const templates = u.learned ? `${u.templates} (학습 ${u.learned} learned)` : u.templates;
    tr.append(cell(u.employee_id), cell(u.name), cell(templates), cell(u.created_at));
    const td = document.createElement("td");
    if (u.learned) {
      const unlearn = document.createElement("button");
      unlearn.type = "button";
      unlearn.textContent = "학습 삭제 · Unlearn";
      unlearn.addEventListener("click", async () => {
        if (!confirm(`${u.name} (${u.employee_id}): 학습된 얼굴을 삭제할까요? Erase learned faces?`)) return;
        try {
          const a = await api(`/users/${encodeURIComponent(u.employee_id)}/learned`, { method: "DELETE" });
          notice("people-notice", "ok", `${u.employee_id}: ${a.message} (${a.templates_deleted})`);
          loadPeople();
        } catch (e) {
          notice("people-notice", "error", e.message);
        }
      });
      td.append(unlearn);
    }
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "삭제 · Delete";
    del.addEventListener("click", async () => {
      if (!confirm(`${u.name} (${u.employee_id}): 삭제할까요? Delete?`)) return;
      try {
        await api(`/users/${encodeURIComponent(u.employee_id)}`, { method: "DELETE" });
        notice("people-notice", "ok", `${u.employee_id} 삭제됨 · deleted`);
        loadPeople();
      } catch (e) {
        notice("people-notice", "error", e.message);
      }
    });
    td.append(del);
    tr.append(td);
    body.append(tr);
  }
}

async function loadToday() {
  const d = today();
  const q = new URLSearchParams({ ...localDays(d, d), limit: "1000" });
  const list = await api(`/attendance?${q}`);
  const body = $("today");
  body.replaceChildren();
  for (const r of list.records) {
    const tr = document.createElement("tr");
    tr.append(cell(clockTime(r.ts_server)), cell(r.employee_id || "—"), cell(r.type),
      cell(r.reason || "ok"), cell(r.source));
    body.append(tr);
  }
}

function enrolled(a) {
  // A photo or frames without a usable face answer 200 with success false and the reason.
  if (a.success === false) {
    notice("enrol-notice", "error", a.message || a.reason);
    return;
  }
  notice("enrol-notice", "ok", `${a.message || "OK"}: ${a.employee_id} (${a.templates_added ?? a.templates ?? 1})`);
  loadPeople();
}

function enrolFailed(e) {
  const b = e.body || {};
  notice("enrol-notice", "error", b.detail ? `${e.message} (${b.detail})` : e.message);
}

function person() {
  const p = { name: $("enrol-name").value.trim() };
  const id = $("enrol-id").value.trim();
  if (id) p.employee_id = id;
  return p;
}

function watchCamera() {
  $("preview").src = "/stream.mjpeg";
  const feed = new EventSource("/events");
  feed.addEventListener("hello", (e) => setLang(JSON.parse(e.data).locale));
  feed.addEventListener("guidance", (e) => {
    const g = JSON.parse(e.data);
    notice("guidance", g.code === "ready" ? "ok" : "error", g.message || "");
  });
}

async function showConsole() {
  $("signin").hidden = true;
  $("console").hidden = false;
  $("export-from").value = today();
  $("export-to").value = today();
  watchCamera();
  await Promise.all([loadPeople(), loadToday()]);
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const s = await api("/session", { method: "POST", json: { key: $("key").value } });
    csrf = s.csrf;
    $("key").value = "";
    await showConsole();
  } catch (e) {
    notice("signin-notice", "error", e.message);
  }
});

$("signout").addEventListener("click", async () => {
  await api("/session", { method: "DELETE" }).catch(() => {});
  location.reload();
});

$("enrol-camera").addEventListener("click", async () => {
  if (!$("enrol-name").reportValidity()) return;
  notice("enrol-notice", "", "카메라를 바라봐 주세요 · Look at the camera…");
  try {
    enrolled(await api("/enroll/json", { method: "POST", json: person() }));
  } catch (e) {
    enrolFailed(e);
  }
});

$("enrol-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("enrol-photo").files[0];
  if (!file) {
    notice("enrol-notice", "error", "사진을 고르세요 · Choose a photo");
    return;
  }
  const form = new FormData();
  const p = person();
  for (const k of Object.keys(p)) form.append(k, p[k]);
  form.append("image", file);
  try {
    enrolled(await api("/enroll", { method: "POST", body: form }));
  } catch (e) {
    enrolFailed(e);
  }
});

$("export-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const days = localDays($("export-from").value, $("export-to").value);
  const q = new URLSearchParams({ ...days, format: "csv" });
  location.href = `/attendance?${q}`;
});

loadSession()
  .then((s) => (s.signed_in ? showConsole() : ($("signin").hidden = false)))
  .catch(() => ($("signin").hidden = false));
