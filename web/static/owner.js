import {
  allPages, api, coupons, escapeHtml, requireSession, say, seoulTime, settlementAmounts,
} from "app";

// This page's own problem codes, in Korean (app.js knows the shared ones).
const WORDS = {
  owner_role_required: "사장님 계정으로 로그인해야 볼 수 있어요.",
  not_center_owner: "다른 사장님의 센터예요.",
  timeslot_overlap: "이미 열린 수업과 시간이 겹쳐요.",
  empty_pattern: "그 기간에는 고른 요일이 없어요.",
  pattern_too_large: "한 번에 열 수 있는 수업은 500개까지예요. 기간을 줄여 주세요.",
  timeslot_in_past: "지난 시간에는 수업을 열 수 없어요.",
  timeslot_too_far_ahead: "수업은 2년 안으로만 열 수 있어요.",
  validation_failed: "입력한 값을 다시 확인해 주세요.",
  sport_not_offered: "센터에 등록된 종목만 고를 수 있어요.",
};
const ATTENDANCE = {
  confirmed: ["예약 확정", ""],
  attended: ["출석", "ok"],
  no_show: ["노쇼", "bad"],
  cancelled: ["예약 취소", "muted"],
};
const SETTLEMENT_STATUS = { draft: "검증 대기", verified: "검증 완료", paid: "지급 완료" };
const DAYS_AHEAD = 14;
const DAY_MS = 24 * 3600 * 1000;
const CHECK_IN_WINDOW_MS = 30 * 60 * 1000;  // check-in opens 30 min before, closes 30 after
const ATTENDANCE_REFRESH_MS = 10_000;

const $ = (id) => document.getElementById(id);
const status = $("owner-status");
const picker = $("center-choice");
const isoDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Seoul" });  // YYYY-MM-DD
const dayLabel = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", month: "long", day: "numeric", weekday: "short",
});
const clock = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", hour: "numeric", minute: "2-digit",
});
const sportWords = Object.fromEntries([...$("program-sport").options]
  .map((option) => [option.value, option.textContent]));

let centers = [];
let center = null;
let programs = [];

function message(error) {
  if (error.code && WORDS[error.code]) {
    const fields = error.body && error.body.errors;
    const which = fields && fields.length ? ` (${fields.map((f) => f.field).join(", ")})` : "";
    return WORDS[error.code] + which;
  }
  return error.message;
}

// --- programs ----------------------------------------------------------------

function renderPrograms() {
  $("programs").innerHTML = programs.length ? programs.map((program) => `
    <li class="card"><strong>${escapeHtml(program.name)}</strong><br>
    <span class="muted">${escapeHtml(sportWords[program.sport] || program.sport)} ·
    ${coupons(program.price_coupons)} · ${program.duration_minutes}분</span></li>`).join("")
    : '<li class="muted">아직 프로그램이 없어요. 아래에서 추가해 주세요.</li>';
  const chosen = $("weekly-program").value;
  $("weekly-program").innerHTML = programs.map((program) =>
    `<option value="${program.id}">${escapeHtml(program.name)} (${program.duration_minutes}분)</option>`).join("");
  if (chosen && programs.some((program) => String(program.id) === chosen)) {
    $("weekly-program").value = chosen;
  }
}

$("program-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const result = $("program-result");
  const fields = new FormData(form);
  const body = {
    name: fields.get("name").trim(),
    sport: fields.get("sport"),
    price_coupons: Number(fields.get("price_coupons")),
    duration_minutes: Number(fields.get("duration_minutes")),
    description: fields.get("description").trim(),
  };
  if (!body.name || fields.get("price_coupons") === "" || !Number.isInteger(body.price_coupons)
      || !Number.isInteger(body.duration_minutes)) {
    result.className = "status bad";
    result.textContent = "프로그램 이름, 가격, 수업 시간을 모두 적어 주세요.";
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { data } = await api("POST", `/api/v1/centers/${center.id}/programs`, { body });
    programs.push(data);
    renderPrograms();
    $("weekly-program").value = String(data.id);
    form.reset();
    result.className = "status ok";
    result.textContent = `‘${data.name}’ 프로그램을 추가했어요. 아래에서 수업을 열어 주세요.`;
  } catch (error) {
    result.className = "status bad";
    result.textContent = message(error);
  } finally {
    button.disabled = false;
  }
});

// --- weekly pattern ------------------------------------------------------------

function parseTimes(text) {
  const times = [];
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const match = /^(\d{1,2}):(\d{2})$/.exec(part);
    if (!match || Number(match[1]) > 23 || Number(match[2]) > 59) return null;
    times.push(`${match[1].padStart(2, "0")}:${match[2]}`);
  }
  return times.length ? [...new Set(times)] : null;
}

$("weekly-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const result = $("weekly-result");
  const fields = new FormData(form);
  const weekdays = fields.getAll("weekday").map(Number);
  const times = parseTimes(fields.get("times"));
  const problem = !programs.length ? "먼저 프로그램을 추가해 주세요."
    : !weekdays.length ? "요일을 하나 이상 골라 주세요."
      : !times ? "시작 시간을 07:00처럼 적어 주세요. 여러 개는 쉼표로 나눠요."
        : !fields.get("from_date") || !fields.get("to_date") ? "첫 수업 날짜와 마지막 수업 날짜를 골라 주세요."
          : fields.get("to_date") < fields.get("from_date") ? "마지막 수업 날짜가 첫 수업 날짜보다 빨라요."
            : !(Number(fields.get("capacity")) >= 1) ? "정원을 1명 이상으로 적어 주세요." : null;
  if (problem) {
    result.className = "status bad";
    result.textContent = problem;
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  result.className = "status";
  result.textContent = "수업을 여는 중…";
  try {
    const { data } = await api("POST", `/api/v1/programs/${fields.get("program")}/timeslots/weekly`, {
      body: {
        weekdays, times, from_date: fields.get("from_date"), to_date: fields.get("to_date"),
        capacity: Number(fields.get("capacity")),
      },
    });
    result.className = "status ok";
    result.textContent = `수업 ${data.items.length}개를 열었어요.`;
    await loadSlots();
  } catch (error) {
    result.className = "status bad";
    result.textContent = message(error);
  } finally {
    button.disabled = false;
  }
});

// --- upcoming timeslots and attendance ---------------------------------------

function inCheckInWindow(slot, now = Date.now()) {
  const starts = Date.parse(slot.dataset.startsAt);
  return starts - CHECK_IN_WINDOW_MS <= now && now <= starts + CHECK_IN_WINDOW_MS;
}

function slotHtml(slot, program) {
  const name = escapeHtml(program.name);
  return `<li class="card" data-timeslot-id="${slot.id}" data-starts-at="${slot.starts_at}">
    <div class="row"><div>
      <strong>${clock.format(new Date(slot.starts_at))} ${name}</strong><br>
      <span class="muted">예약 ${slot.reserved}명 · 정원 ${slot.capacity}명</span>
    </div>
    <button type="button" class="secondary attendance-toggle" aria-expanded="false"
      aria-controls="attendance-${slot.id}" aria-label="${name} ${seoulTime(slot.starts_at)} 출석 보기">출석 보기</button></div>
    <div id="attendance-${slot.id}" class="attendance" hidden>
      <ul class="list" aria-label="${name} ${seoulTime(slot.starts_at)} 출석 명단"></ul>
      <p class="status muted" role="status" aria-live="polite"></p>
    </div>
  </li>`;
}

async function showAttendance(card) {
  const box = card.querySelector(".attendance");
  const note = box.querySelector(".status");
  try {
    const { data } = await api("GET", `/api/v1/timeslots/${card.dataset.timeslotId}/attendance`);
    box.querySelector("ul").innerHTML = data.items.length ? data.items.map((item) => {
      const [word, tone] = ATTENDANCE[item.status] || [item.status, ""];
      return `<li data-reservation-id="${item.reservation_id}"><span>${escapeHtml(item.user_name)}</span>
        <span class="${tone}">${word}</span></li>`;
    }).join("") : '<li class="muted">예약한 사람이 없어요.</li>';
    const came = data.items.filter((item) => item.status === "attended").length;
    const booked = data.items.filter((item) => item.status !== "cancelled").length;
    note.textContent = data.items.length ? `출석 ${came}명 / 예약 ${booked}명` : "";
  } catch (error) {
    note.textContent = message(error);
  }
}

function openAttendance(card, open) {
  const button = card.querySelector(".attendance-toggle");
  button.setAttribute("aria-expanded", String(open));
  button.textContent = open ? "출석 닫기" : "출석 보기";
  button.setAttribute("aria-label", button.getAttribute("aria-label")
    .replace(/출석 (보기|닫기)$/, open ? "출석 닫기" : "출석 보기"));
  card.querySelector(".attendance").hidden = !open;
  if (open) showAttendance(card);
}

$("slots").addEventListener("click", (event) => {
  const button = event.target.closest(".attendance-toggle");
  if (!button) return;
  openAttendance(button.closest("[data-timeslot-id]"), button.getAttribute("aria-expanded") !== "true");
});

async function loadSlots() {
  const today = isoDay.format(new Date());
  const from = new Date(`${today}T00:00:00+09:00`);
  const to = new Date(from.getTime() + (DAYS_AHEAD + 1) * DAY_MS);
  const range = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  const byProgram = new Map(programs.map((program) => [program.id, program]));
  const perProgram = await Promise.all(programs.map(
    (program) => allPages(`/api/v1/programs/${program.id}/timeslots?${range}`)));
  const slots = perProgram.flat().sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  const byDay = new Map();
  for (const slot of slots) {
    const key = dayLabel.format(new Date(slot.starts_at));
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(slot);
  }
  $("slots").innerHTML = [...byDay].map(([label, daySlots]) => `<li><h3>${label}</h3>
    <ul class="list">${daySlots.map((slot) => slotHtml(slot, byProgram.get(slot.program_id))).join("")}</ul></li>`).join("");
  $("slots-status").textContent = slots.length ? ""
    : `오늘부터 ${DAYS_AHEAD}일 동안 열린 수업이 없어요.`;
  for (const card of $("slots").querySelectorAll("[data-timeslot-id]")) {
    if (inCheckInWindow(card)) openAttendance(card, true);
  }
}

// Attendance of the sessions people are checking into now, kept fresh.
setInterval(() => {
  for (const card of $("slots").querySelectorAll("[data-timeslot-id]")) {
    if (!card.querySelector(".attendance").hidden && inCheckInWindow(card)) showAttendance(card);
  }
}, ATTENDANCE_REFRESH_MS);

// --- settlements ---------------------------------------------------------------

function monthLabel(month) {
  const [year, number] = month.split("-");
  return `${year}년 ${Number(number)}월`;
}

function settlementHtml(item) {
  const tone = item.status === "paid" ? "ok" : "muted";
  return `<li class="card"><div class="row"><strong>${monthLabel(item.month)} 정산</strong>
    <span class="${tone}">${SETTLEMENT_STATUS[item.status] || item.status}</span></div>
    ${settlementAmounts(item)}
    ${item.discrepancies ? `<p class="muted">확인 중인 차이 ${item.discrepancies}건: 확인이 끝나면 지급돼요.</p>` : ""}
  </li>`;
}

async function loadSettlements() {
  const month = $("settlement-month").value;
  const note = $("settlements-status");
  if (!month) { note.textContent = "정산 월을 골라 주세요."; return; }
  note.textContent = "정산을 불러오는 중…";
  try {
    const { data } = await api("GET", `/api/v1/owner/settlements?month=${encodeURIComponent(month)}`);
    const mine = data.items.filter((item) => item.center_id === center.id);
    $("settlements").innerHTML = mine.map(settlementHtml).join("");
    note.textContent = mine.length ? "" : `${monthLabel(month)} 정산이 아직 없어요. 정산은 다음 달 초에 만들어져요.`;
  } catch (error) {
    note.textContent = message(error);
  }
}

$("settlement-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadSettlements();
});

// --- usage CSV -------------------------------------------------------------------

let downloadUrl = null;

$("usage-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const note = $("usage-status");
  const from = $("usage-from").value;
  const to = $("usage-to").value;
  if (!from || !to || to < from) {
    note.className = "status bad";
    note.textContent = "시작 날짜와 끝 날짜를 골라 주세요. 끝 날짜는 시작 날짜보다 빠를 수 없어요.";
    return;
  }
  note.className = "status";
  note.textContent = "이용 내역을 받는 중…";
  try {
    const query = new URLSearchParams({ from, to });
    // The CSV needs the Bearer header, so the page fetches it and hands it over as a file.
    const { data } = await api("GET", `/api/v1/owner/centers/${center.id}/usage?${query}`,
      { headers: { Accept: "text/csv" } });
    const text = String(data).replace(/^\ufeff/, "");
    const rows = Math.max(text.trim().split(/\r?\n/).length - 1, 0);
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    // The BOM lets Excel read the Korean names as UTF-8.
    downloadUrl = URL.createObjectURL(new Blob(["\ufeff", text], { type: "text/csv;charset=utf-8" }));
    const link = $("usage-download");
    link.href = downloadUrl;
    link.download = `usage-${center.id}-${from}-${to}.csv`;
    link.hidden = false;
    link.click();
    note.className = "status ok";
    note.textContent = `이용 내역 ${rows}건을 CSV 파일로 받았어요.`;
  } catch (error) {
    note.className = "status bad";
    note.textContent = message(error);
  }
});

// --- the page --------------------------------------------------------------------

function previousMonth() {
  const [year, month] = isoDay.format(new Date()).split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 2, 1));
  return date.toISOString().slice(0, 7);
}

async function showCenter(chosen) {
  center = chosen;
  $("center-name").textContent = center.name;
  $("center-address").textContent = center.address;
  $("kiosk-link").href = `/owner/centers/${center.id}/kiosk`;
  $("public-link").href = `/centers/${center.id}`;
  $("owner-center").hidden = false;
  // A program's sport is one of its center's.
  $("program-sport").innerHTML = center.sports.map((sport) =>
    `<option value="${escapeHtml(sport)}">${escapeHtml(sportWords[sport] || sport)}</option>`).join("");
  programs = await allPages(`/api/v1/centers/${center.id}/programs`);
  renderPrograms();
  await Promise.all([
    loadSlots().catch((error) => { $("slots-status").textContent = message(error); }),
    loadSettlements(),
  ]);
}

function setDefaults() {
  const today = isoDay.format(new Date());
  const inFourWeeks = isoDay.format(new Date(Date.now() + 27 * DAY_MS));
  const tomorrow = isoDay.format(new Date(Date.now() + DAY_MS));
  $("weekly-from").value = tomorrow;
  $("weekly-to").value = inFourWeeks;
  $("settlement-month").value = previousMonth();
  $("usage-from").value = `${today.slice(0, 8)}01`;
  $("usage-to").value = today;
}

picker.addEventListener("change", () => {
  const chosen = centers.find((item) => String(item.id) === picker.value);
  history.replaceState(null, "", `?center=${chosen.id}`);
  showCenter(chosen).catch((error) => { status.textContent = message(error); });
});

async function load() {
  const user = await requireSession();
  if (user.role !== "owner") {
    status.className = "status bad";
    status.textContent = `사장님 계정으로 로그인해야 볼 수 있어요. 지금 ${user.name}님은 사장님 계정이 아니에요.`;
    return;
  }
  centers = await allPages("/api/v1/owner/centers");
  if (!centers.length) {
    status.textContent = "아직 등록한 센터가 없어요. 센터를 먼저 등록해 주세요.";
    $("new-center").open = true;
    return;
  }
  setDefaults();
  picker.innerHTML = centers.map((item) =>
    `<option value="${item.id}">${escapeHtml(item.name)}</option>`).join("");
  $("owner-picker").hidden = centers.length < 2;
  const asked = new URLSearchParams(location.search).get("center");
  const chosen = centers.find((item) => String(item.id) === asked) || centers[0];
  picker.value = String(chosen.id);
  status.textContent = "";
  await showCenter(chosen);
}

// --- a new center ----------------------------------------------------------

$("new-center-here").addEventListener("click", () => {
  const result = $("center-form-result");
  if (!navigator.geolocation) { result.textContent = "이 브라우저는 위치를 알려주지 않아요."; return; }
  navigator.geolocation.getCurrentPosition((position) => {
    $("new-center-latitude").value = position.coords.latitude.toFixed(6);
    $("new-center-longitude").value = position.coords.longitude.toFixed(6);
  }, () => { result.textContent = "위치를 알 수 없어요. 위도와 경도를 적어 주세요."; });
});

$("center-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const result = $("center-form-result");
  const fields = new FormData(form);
  const optional = (name) => fields.get(name) || undefined;
  const body = {
    name: fields.get("name").trim(),
    address: fields.get("address").trim(),
    latitude: Number(fields.get("latitude")),
    longitude: Number(fields.get("longitude")),
    sports: fields.getAll("sports"),
    description: fields.get("description"),
    phone: optional("phone"),
    opens_at: optional("opens_at"),
    closes_at: optional("closes_at"),
  };
  if (!body.sports.length) { result.className = "status bad"; result.textContent = "종목을 하나 이상 골라 주세요."; return; }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { data } = await api("POST", "/api/v1/centers", { body });
    history.replaceState(null, "", `?center=${data.id}`);
    form.reset();
    $("new-center").open = false;
    result.className = "status ok";
    result.textContent = `${data.name}을(를) 등록했어요.`;
    await load();
  } catch (error) {
    result.className = "status bad";
    result.textContent = message(error);
  } finally {
    button.disabled = false;
  }
});

load().catch((error) => {
  status.className = "status bad";
  status.textContent = message(error);
  say(message(error));
});
