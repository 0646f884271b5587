import {
  allPages, api, coupons, escapeHtml, idempotencyKey, openEvents, problemMessage, QueuedCommands,
  requireSession, seoulTime,
} from "app";

const timetable = document.getElementById("timetable");
const status = document.getElementById("timetable-status");
const centerId = timetable.dataset.centerId;
const DAYS = 14;
const day = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", month: "long", day: "numeric", weekday: "short",
});
const clock = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", hour: "numeric", minute: "2-digit",
});

function seatsLeft(slot) {
  return slot.remaining > 0 ? `남은 자리 ${slot.remaining}` : "마감";
}

function bookButton(program, slot) {
  return `<button type="button" class="book"
    aria-label="${escapeHtml(program.name)} ${seoulTime(slot.starts_at)} 예약하기">예약하기</button>`;
}

// A sold-out session: the person may wait for a place (UI.md's sold_out words ask).
function waitlistButton(program, slot) {
  return `<button type="button" class="secondary waitlist"
    aria-label="${escapeHtml(program.name)} ${seoulTime(slot.starts_at)} 대기 명단에 올리기">대기 명단에 올리기</button>`;
}

function render(programs, slots) {
  const byProgram = new Map(programs.map((program) => [program.id, program]));
  const byDay = new Map();
  for (const slot of slots) {
    const key = day.format(new Date(slot.starts_at));
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(slot);
  }
  timetable.innerHTML = [...byDay].map(([label, daySlots]) => `
    <h3>${label}</h3>
    <ul class="list">${daySlots.map((slot) => {
      const program = byProgram.get(slot.program_id);
      return `<li class="card" data-timeslot-id="${slot.id}" data-starts-at="${slot.starts_at}"
        data-program-name="${escapeHtml(program.name)}">
        <div class="row"><div>
          <strong>${clock.format(new Date(slot.starts_at))} ${escapeHtml(program.name)}</strong><br>
          <span class="muted">${coupons(program.price_coupons)} · ${program.duration_minutes}분 ·
            <span class="seats">${seatsLeft(slot)}</span></span>
        </div>
        ${slot.remaining > 0 ? bookButton(program, slot) : waitlistButton(program, slot)}</div>
        <p class="status outcome" role="status" aria-live="polite"></p>
      </li>`;
    }).join("")}</ul>`).join("");
  status.textContent = slots.length ? "" : "앞으로 14일 동안 열린 수업이 없어요.";
}

const queued = new QueuedCommands();
let events = null;

// The Seoul day of a timeslot, for the calendar link: YYYY-MM-DD.
const isoDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Seoul" });

// The seats the server counts now, once a decision has changed them.
async function refreshSeats(card) {
  const { data } = await api("GET", `/api/v1/timeslots/${card.dataset.timeslotId}`);
  card.querySelector(".seats").textContent = seatsLeft(data);
}

function showConfirmed(card) {
  refreshSeats(card).catch(() => {});
  const slot = card.querySelector(".outcome");
  slot.className = "status outcome ok";
  slot.innerHTML = `예약 확정 · <a href="/me/calendar?date=${isoDay.format(new Date(card.dataset.startsAt))}">내 일정에서 보기</a>`;
}

function showRejected(card, code) {
  const slot = card.querySelector(".outcome");
  slot.className = "status outcome bad";
  slot.textContent = problemMessage({ code });
  if (code === "sold_out") soldOut(card);
  refreshSeats(card).catch(() => {});
}

function soldOut(card) {
  const book = card.querySelector(".book");
  if (book) book.outerHTML = waitlistButton(
    { name: card.dataset.programName }, { starts_at: card.dataset.startsAt });
}

async function joinWaitlist(card) {
  const button = card.querySelector(".waitlist");
  const slotStatus = card.querySelector(".outcome");
  button.disabled = true;
  try {
    await requireSession();
    const { data } = await api("POST", `/api/v1/timeslots/${card.dataset.timeslotId}/waitlist`,
      { body: { auto_claim: false } });
    slotStatus.className = "status outcome ok";
    slotStatus.innerHTML = `대기 명단에 올렸어요 · 대기 순번 ${data.position}번. 자리가 나면 <a href="/">홈</a>에서 확정할 수 있어요.`;
    button.remove();
  } catch (error) {
    slotStatus.className = "status outcome bad";
    slotStatus.textContent = error.message;
    button.disabled = error.code === "already_waiting";
  }
}

function startEvents() {
  if (events) return events.ready;
  let opened;
  const ready = new Promise((resolve) => { opened = resolve; });
  events = openEvents({
    "reservation.confirmed": (event) => queued.decided(event.command_id, showConfirmed),
    "reservation.rejected": (event) => queued.decided(event.command_id,
      (card) => showRejected(card, event.code)),
  }, { onOpen: opened });
  events.ready = ready;
  return ready;
}

async function book(card) {
  const button = card.querySelector(".book");
  const slotStatus = card.querySelector(".outcome");
  button.disabled = true;
  try {
    await requireSession();
    // Listen before asking, so the outcome cannot pass unheard; a stream slow
    // to open does not hold the booking back (it resumes where it starts).
    await Promise.race([startEvents(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    const { status: answered, data } = await api("POST", "/api/v1/reservations", {
      body: { timeslot_id: Number(card.dataset.timeslotId) },
      headers: { "Idempotency-Key": idempotencyKey() },
    });
    slotStatus.className = "status outcome";
    if (answered === 202) {
      slotStatus.textContent = `접수됨 · 대기 순번 ${data.position}번`;
      queued.expect(data.command_id, card);
    } else {
      showConfirmed(card);
    }
  } catch (error) {
    slotStatus.className = "status outcome bad";
    slotStatus.textContent = error.message;
    button.disabled = false;
    if (error.code === "sold_out") soldOut(card);
  }
}

timetable.addEventListener("click", (event) => {
  const button = event.target.closest("button.book, button.waitlist");
  if (!button) return;
  const card = button.closest("[data-timeslot-id]");
  if (button.classList.contains("book")) book(card); else joinWaitlist(card);
});

async function load() {
  const now = new Date();
  const until = new Date(now.getTime() + DAYS * 24 * 3600 * 1000);
  const range = new URLSearchParams({ from: now.toISOString(), to: until.toISOString() });
  const programs = await allPages(`/api/v1/centers/${centerId}/programs`);
  const perProgram = await Promise.all(programs.map(
    (program) => allPages(`/api/v1/programs/${program.id}/timeslots?${range}`)));
  const slots = perProgram.flat().sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  render(programs, slots);
}

load().catch((error) => { status.textContent = error.message; });
