import {
  api, coupons, escapeHtml, problemMessage, requireSession, say, seoulTime,
} from "app";

const SEOUL_OFFSET_MS = 9 * 3600 * 1000;  // Asia/Seoul keeps no daylight saving
const DAY_MS = 24 * 3600 * 1000;
const CHECK_IN_WINDOW_MS = 30 * 60 * 1000;  // check-in opens and closes 30 min either side
const REFUNDS = {
  policy_full: (n) => `전액 환불 · ${coupons(n)}을 돌려받아요.`,
  policy_partial: (n) => `부분 환불 · ${coupons(n)}을 돌려받아요.`,
  late_no_refund: () => "환불 불가 · 수업 시작이 가까워 쿠폰을 돌려받을 수 없어요.",
  first_late_cancel_free: (n) => `이번 달 첫 늦은 취소라 전액 환불해 드려요 (${coupons(n)}).`,
  center_closed: (n) => `전액 환불 · ${coupons(n)}을 돌려받아요.`,
};
const REPEAT_REASONS = {
  no_matching_week: "다음 달에 같은 주의 같은 요일이 없어요.",
  no_matching_timeslot: "같은 시간 수업이 아직 열리지 않았어요.",
};

const entries = document.getElementById("entries");
const status = document.getElementById("calendar-status");
const period = document.getElementById("period");
const dayLabel = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", month: "long", day: "numeric", weekday: "short",
});
const clock = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", hour: "numeric", minute: "2-digit",
});

// What is shown: a Seoul month, or the Seoul week (from Monday) holding `anchor`.
let view = "month";
const seoulNow = new Date(Date.now() + SEOUL_OFFSET_MS);
let anchor = Date.UTC(seoulNow.getUTCFullYear(), seoulNow.getUTCMonth(), seoulNow.getUTCDate());
// ?date=YYYY-MM-DD opens the period holding that (Seoul) day.
const asked = new URLSearchParams(location.search).get("date");
if (asked && /^\d{4}-\d{2}-\d{2}$/.test(asked)) anchor = Date.parse(`${asked}T00:00:00Z`);

function range() {
  const day = new Date(anchor);
  if (view === "month") {
    const from = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1);
    const to = Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + 1, 1);
    return { from, to, label: `${day.getUTCFullYear()}년 ${day.getUTCMonth() + 1}월` };
  }
  const from = anchor - ((day.getUTCDay() + 6) % 7) * DAY_MS;
  const last = new Date(from + 6 * DAY_MS);
  const first = new Date(from);
  return {
    from, to: from + 7 * DAY_MS,
    label: `${first.getUTCMonth() + 1}월 ${first.getUTCDate()}일 – ${last.getUTCMonth() + 1}월 ${last.getUTCDate()}일`,
  };
}

const month = (utcMidnight) => new Date(utcMidnight).toISOString().slice(0, 7);

function reservationActions(entry) {
  const fromStart = Date.now() - Date.parse(entry.starts_at);
  if (Math.abs(fromStart) <= CHECK_IN_WINDOW_MS) {
    return `<button type="button" class="check-in" data-id="${entry.id}">출석 체크</button>`;
  }
  if (fromStart > 0) return "";
  return `<button type="button" class="secondary move" data-id="${entry.id}" data-timeslot-id="${entry.timeslot_id}">바꾸기</button>
    <button type="button" class="secondary cancel" data-id="${entry.id}">예약 취소</button>`;
}

function entryHtml(entry) {
  const time = `${clock.format(new Date(entry.starts_at))}–${clock.format(new Date(entry.ends_at))}`;
  const actions = entry.kind === "reservation"
    ? reservationActions(entry) : `<a href="/clubs/${entry.club_id}">크루 보기</a>`;
  const kind = entry.kind === "reservation" ? "예약" : "크루 모임";
  return `<li class="card" data-kind="${entry.kind}" data-id="${entry.id}">
    <div class="row"><div><span class="muted">${kind}</span><br>
    <strong>${escapeHtml(entry.title)}</strong><br>
    <span>${time}</span> · <span class="muted">${escapeHtml(entry.location)}</span></div>
    <div class="row">${actions}</div></div></li>`;
}

let shown = 0;  // the latest load asked for: an older answer arriving late is dropped

async function load() {
  await requireSession();
  const asked = ++shown;
  const { from, to, label } = range();
  period.textContent = label;
  const query = new URLSearchParams({
    from: new Date(from - SEOUL_OFFSET_MS).toISOString(),
    to: new Date(to - SEOUL_OFFSET_MS).toISOString(),
  });
  const { data } = await api("GET", `/api/v1/me/calendar?${query}`);
  if (asked !== shown) return;
  const byDay = new Map();
  for (const entry of data.items) {
    const key = dayLabel.format(new Date(entry.starts_at));
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(entry);
  }
  entries.innerHTML = [...byDay].map(([day, items]) =>
    `<li><h3>${day}</h3><ul class="list">${items.map(entryHtml).join("")}</ul></li>`).join("");
  status.textContent = data.items.length ? "" : "이 기간에는 일정이 없어요.";
}

function reload() {
  load().catch((error) => { status.textContent = error.message; });
}

function ask(dialog) {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

async function cancel(id) {
  const quote = await api("GET", `/api/v1/reservations/${id}/refund`);
  const words = REFUNDS[quote.data.refund_reason] || ((n) => `${coupons(n)}을 돌려받아요.`);
  document.getElementById("cancel-refund").textContent = words(quote.data.refunded_coupons);
  if (await ask(document.getElementById("cancel-dialog")) !== "cancel") return;
  const { status: answered, data } = await api("DELETE", `/api/v1/reservations/${id}`);
  say(answered === 200
    ? `예약을 취소했어요. ${data.refunded_coupons ? `${coupons(data.refunded_coupons)}을 돌려받았어요.` : "돌려받은 쿠폰은 없어요."}`
    : "취소를 접수했어요. 곧 반영돼요.");
  reload();
}

async function move(id, timeslotId) {
  const current = await api("GET", `/api/v1/timeslots/${timeslotId}`);
  const query = new URLSearchParams({ from: new Date().toISOString(), limit: "100" });
  const slots = await api("GET", `/api/v1/programs/${current.data.program_id}/timeslots?${query}`);
  const choices = slots.data.items.filter((slot) => slot.id !== current.data.id && slot.remaining > 0);
  const select = document.getElementById("move-target");
  if (!choices.length) { say("바꿀 수 있는 다른 시간이 없어요."); return; }
  select.innerHTML = choices.map((slot) =>
    `<option value="${slot.id}">${seoulTime(slot.starts_at)} · 남은 자리 ${slot.remaining}</option>`).join("");
  if (await ask(document.getElementById("move-dialog")) !== "move") return;
  const answer = await api("POST", `/api/v1/reservations/${id}/move`, {
    body: { timeslot_id: Number(select.value) }, headers: { Prefer: "wait=10" },
  });
  say(answer.status === 202 ? `접수됨 · 대기 순번 ${answer.data.position}번` : "일정을 바꿨어요.");
  reload();
}

async function checkIn(id) {
  const field = document.getElementById("check-in-code");
  field.value = "";
  if (await ask(document.getElementById("check-in-dialog")) !== "check-in") return;
  await api("POST", `/api/v1/reservations/${id}/check-in`,
    { body: { code: field.value.replace(/\s/g, "") } });
  say("출석했어요. 즐거운 운동 되세요!");
  reload();
}

const ACTIONS = {
  cancel: (button) => cancel(button.dataset.id),
  move: (button) => move(button.dataset.id, button.dataset.timeslotId),
  "check-in": (button) => checkIn(button.dataset.id),
};

entries.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const name = button && Object.keys(ACTIONS).find((key) => button.classList.contains(key));
  if (!name) return;
  const action = ACTIONS[name](button);
  action.catch((error) => say(error.body ? problemMessage(error.body) : error.message));
});

function step(direction) {
  if (view === "week") { anchor += direction * 7 * DAY_MS; } else {
    const day = new Date(anchor);
    anchor = Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + direction, 1);
  }
  reload();
}
document.getElementById("previous").addEventListener("click", () => step(-1));
document.getElementById("next").addEventListener("click", () => step(1));
for (const name of ["month", "week"]) {
  document.getElementById(`view-${name}`).addEventListener("click", () => {
    view = name;
    for (const other of ["month", "week"]) {
      document.getElementById(`view-${other}`).setAttribute("aria-pressed", String(other === name));
    }
    reload();
  });
}

document.getElementById("repeat").addEventListener("click", async (event) => {
  // The month on show (in week view, the month of the day it opened on).
  const shownDay = new Date(anchor);
  const body = {
    from_month: month(Date.UTC(shownDay.getUTCFullYear(), shownDay.getUTCMonth(), 1)),
    to_month: month(Date.UTC(shownDay.getUTCFullYear(), shownDay.getUTCMonth() + 1, 1)),
  };
  const button = event.currentTarget;
  button.disabled = true;
  try {
    const { data } = await api("POST", "/api/v1/me/calendar/repeat", { body });
    document.getElementById("repeat-results").innerHTML = data.items.length
      ? data.items.map((item) => `<li class="card">${item.command_id
        ? "접수됨 · 곧 결과를 알려드려요." : escapeHtml(REPEAT_REASONS[item.reason] || problemMessage({ code: item.reason }))}</li>`).join("")
      : '<li class="muted">반복할 예약이 없어요.</li>';
  } catch (error) {
    say(error.message);
  } finally {
    button.disabled = false;
  }
});

document.getElementById("feed").addEventListener("click", async () => {
  try {
    const { data } = await api("POST", "/api/v1/me/calendar/feed");
    const field = document.getElementById("feed-url");
    field.value = data.url;
    field.hidden = false;
    document.getElementById("feed-label").hidden = false;
    document.getElementById("copy-feed").hidden = false;
  } catch (error) {
    say(error.message);
  }
});
document.getElementById("copy-feed").addEventListener("click", async () => {
  const url = document.getElementById("feed-url").value;
  try {
    await navigator.clipboard.writeText(url);
    say("iCal 링크를 복사했어요.");
  } catch {
    document.getElementById("feed-url").select();
    say("링크를 길게 눌러 복사해 주세요.");
  }
});

reload();
