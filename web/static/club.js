import {
  api, coupons, currentSession, escapeHtml, idempotencyKey, openEvents, problemMessage,
  QueuedCommands, requireSession, say, seoulTime,
} from "app";

// The club's own answers, in words (the shared ones are in app.js).
const WORDS = {
  club_full: "크루 정원이 찼어요.",
  club_not_found: "찾는 크루가 없어요.",
  meetup_not_found: "찾는 모임이 없어요.",
  meetup_closed: "이미 시작한 모임이에요.",
  meetup_in_past: "모임은 지금부터 1년 안에 시작해야 해요.",
  not_club_leader: "크루장만 할 수 있어요.",
  application_decided: "이미 결정한 신청이에요.",
  application_not_found: "찾는 신청이 없어요.",
};
const words = (problem) => WORDS[problem.code] || problemMessage(problem);
const errorWords = (error) => (error.code ? words(error.body || { code: error.code }) : error.message);
const SPORTS = JSON.parse(document.getElementById("sport-words").textContent);
const ROLES = { leader: "크루장", member: "크루원" };
const MEETUP_DAYS = 90;
const DAY_MS = 24 * 3600 * 1000;
// The Seoul day of a meetup, for the calendar link: YYYY-MM-DD.
const isoDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Seoul" });
const joinedDate = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", year: "numeric", month: "long", day: "numeric",
});

const clubId = Number(document.getElementById("club").dataset.clubId);
const $ = (id) => document.getElementById(id);
const clubStatus = $("club-status");
const applicationStatus = $("application-status");
const meetupList = $("meetups");

let club = null;
let user = null;
let isMember = false;
let myApplicationId = null;

// --- the club --------------------------------------------------------------

function showClub() {
  $("club-name").textContent = club.name;
  document.title = `${club.name} · FitNus`;
  const sports = club.sports.map((s) => SPORTS[s] || s).join(" · ");
  const headcount = club.max_members
    ? `크루원 ${club.member_count}/${club.max_members}명` : `크루원 ${club.member_count}명`;
  $("club-facts").textContent = `${sports} · ${headcount}`;
  $("club-description").textContent = club.description;
}

async function reloadClub() {
  club = (await api("GET", `/api/v1/clubs/${clubId}`)).data;
  showClub();
}

// --- applying, and hearing the leader's decision ----------------------------

$("apply").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.target.querySelector("button");
  button.disabled = true;
  try {
    await requireSession();
    const { data } = await api("POST", `/api/v1/clubs/${clubId}/applications`,
      { body: { message: $("apply-message").value.trim() } });
    myApplicationId = data.id;
    applicationStatus.className = "status";
    applicationStatus.textContent = "가입 신청했어요. 크루장이 결정하면 바로 알려드려요.";
    $("apply-section").hidden = true;
  } catch (error) {
    applicationStatus.className = "status bad";
    applicationStatus.textContent = errorWords(error);
    if (error.code === "already_member") { await showMemberParts(); return; }
    button.disabled = error.code === "already_applied" || error.code === "club_full";
  }
});

async function accepted(event) {
  if (event.club_id !== clubId || isMember) return;
  // A decision replayed from long ago (a member who left since) is not news:
  // the server's member list is the truth.
  try {
    await loadMembers();
  } catch (error) {
    if (error.code === "not_a_member") return;
    throw error;
  }
  applicationStatus.className = "status ok";
  applicationStatus.textContent = "가입 신청이 수락됐어요. 이제 크루원이에요!";
  await reloadClub();
  await showMemberParts({ membersShown: true });
}

function rejected(event) {
  // An old decision replayed from the stream says nothing of a newer application.
  if (event.club_id !== clubId || isMember
      || (myApplicationId !== null && event.application_id < myApplicationId)) return;
  applicationStatus.className = "status bad";
  applicationStatus.textContent = "가입 신청이 거절됐어요.";
  $("apply-section").hidden = false;
  $("apply").querySelector("button").disabled = false;
}

// --- meetups: join with a place in line, the outcome from the stream --------

const queued = new QueuedCommands();  // meetup joins, by command id
let joinedMeetups = new Set();

function seatsText(meetup) {
  return meetup.remaining > 0 ? `남은 자리 ${meetup.remaining}/${meetup.capacity}` : "정원 마감";
}

function meetupHtml(meetup) {
  const minutes = Math.round((Date.parse(meetup.ends_at) - Date.parse(meetup.starts_at)) / 60000);
  const fee = meetup.fee_coupons ? `참가비 ${coupons(meetup.fee_coupons)}` : "참가비 없음";
  const action = joinedMeetups.has(meetup.id)
    ? '<span class="ok">참여 중</span>'
    : `<button type="button" class="join" aria-label="${escapeHtml(meetup.title)} ${seoulTime(meetup.starts_at)} 참여하기"
        ${meetup.remaining > 0 ? "" : "disabled"}>참여하기</button>`;
  return `<li class="card meetup" data-meetup-id="${meetup.id}" data-starts-at="${meetup.starts_at}">
    <div class="row"><div>
      <strong>${escapeHtml(meetup.title)}</strong><br>
      <span>${seoulTime(meetup.starts_at)} · ${minutes}분</span><br>
      <span class="muted">${escapeHtml(meetup.place)} · ${fee} · <span class="seats">${seatsText(meetup)}</span></span>
    </div>${action}</div>
    <p class="status outcome" role="status" aria-live="polite"></p>
  </li>`;
}

function meetupRange() {
  const now = Date.now();
  return new URLSearchParams({
    from: new Date(now).toISOString(), to: new Date(now + MEETUP_DAYS * DAY_MS).toISOString(),
  });
}

async function fetchMeetups() {
  const range = meetupRange();
  const [meetups, calendar] = await Promise.all([
    api("GET", `/api/v1/clubs/${clubId}/meetups?${range}`),
    api("GET", `/api/v1/me/calendar?${range}`),
  ]);
  joinedMeetups = new Set(calendar.data.items
    .filter((entry) => entry.kind === "club_event").map((entry) => entry.id));
  return meetups.data.items;
}

async function loadMeetups() {
  const meetups = await fetchMeetups();
  meetupList.innerHTML = meetups.map(meetupHtml).join("");
  $("meetups-status").textContent = meetups.length ? "" : "아직 잡힌 모임이 없어요.";
}

// The places the server counts now, once a decision has changed them.
async function refreshSeats() {
  for (const meetup of await fetchMeetups()) {
    const card = meetupList.querySelector(`[data-meetup-id="${meetup.id}"]`);
    if (!card) continue;
    card.querySelector(".seats").textContent = seatsText(meetup);
    const button = card.querySelector(".join");
    if (button && meetup.remaining <= 0) button.disabled = true;
  }
}

function showJoined(card) {
  const outcome = card.querySelector(".outcome");
  outcome.className = "status outcome ok";
  outcome.innerHTML = `참여 확정 · <a href="/me/calendar?date=${isoDay.format(new Date(card.dataset.startsAt))}">내 일정에서 보기</a>`;
  const button = card.querySelector(".join");
  if (button) button.outerHTML = '<span class="ok">참여 중</span>';
  joinedMeetups.add(Number(card.dataset.meetupId));
  refreshSeats().catch(() => {});
}

function showRefused(card, code, message = words({ code })) {
  const outcome = card.querySelector(".outcome");
  outcome.className = "status outcome bad";
  outcome.textContent = message;
  const button = card.querySelector(".join");
  if (button) button.disabled = code === "meetup_full" || code === "already_joined";
  refreshSeats().catch(() => {});
}

async function join(card) {
  const button = card.querySelector(".join");
  const outcome = card.querySelector(".outcome");
  button.disabled = true;
  try {
    await requireSession();
    await events.ready;
    const { status: answered, data } = await api(
      "POST", `/api/v1/meetups/${card.dataset.meetupId}/attendees`,
      { headers: { "Idempotency-Key": idempotencyKey() } });
    outcome.className = "status outcome";
    if (answered === 202) {
      outcome.textContent = `접수됨 · 대기 순번 ${data.position}번`;
      queued.expect(data.command_id, card);
    } else {
      showJoined(card);
    }
  } catch (error) {
    showRefused(card, error.code, errorWords(error));
  }
}

meetupList.addEventListener("click", (event) => {
  const button = event.target.closest("button.join");
  if (button) join(button.closest("[data-meetup-id]"));
});

// --- members ------------------------------------------------------------------

function showMembers(members) {
  $("members").innerHTML = members.map((member) => `<li class="card">
    <strong>${escapeHtml(member.name)}</strong>
    ${member.role === "leader" ? `<span class="badge">${ROLES.leader}</span>` : ""}<br>
    <span class="muted">${joinedDate.format(new Date(member.joined_at))} 가입</span></li>`).join("");
  $("members-section").hidden = false;
}

async function loadMembers() {
  showMembers((await api("GET", `/api/v1/clubs/${clubId}/members`)).data.items);
}

// --- the leader: applications and new meetups --------------------------------

function applicationHtml(application) {
  const who = escapeHtml(application.applicant_name);
  return `<li class="card application" data-application-id="${application.id}">
    <div class="row"><div>
      <strong>${who}</strong> <span class="muted">${seoulTime(application.created_at)}</span>
      ${application.message ? `<br><span>${escapeHtml(application.message)}</span>` : ""}
    </div>
    <div class="decide">
      <button type="button" class="secondary reject" aria-label="${who}님의 가입 신청 거절">거절</button>
      <button type="button" class="accept" aria-label="${who}님의 가입 신청 수락">수락</button>
    </div></div></li>`;
}

async function loadApplications() {
  const { data } = await api("GET", `/api/v1/clubs/${clubId}/applications?status=pending&limit=100`);
  $("applications").innerHTML = data.items.map(applicationHtml).join("");
  $("applications-status").textContent = data.items.length ? "" : "기다리는 가입 신청이 없어요.";
}

$("applications").addEventListener("click", async (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const card = button.closest("[data-application-id]");
  const accept = button.classList.contains("accept");
  const name = card.querySelector("strong").textContent;
  for (const each of card.querySelectorAll("button")) each.disabled = true;
  try {
    await api("POST", `/api/v1/clubs/${clubId}/applications/${card.dataset.applicationId}/${accept ? "accept" : "reject"}`);
    say(accept ? `${name}님이 크루원이 됐어요.` : `${name}님의 가입 신청을 거절했어요.`);
    card.remove();
    if (!$("applications").children.length) $("applications-status").textContent = "기다리는 가입 신청이 없어요.";
    if (accept) await Promise.all([reloadClub(), loadMembers()]);
  } catch (error) {
    say(errorWords(error));
    loadApplications().catch(() => {});
  }
});

// Many applications replayed at once from the stream make one reload.
let reloading = null;
function applicationsChanged() {
  if (reloading) return;
  reloading = setTimeout(() => {
    reloading = null;
    loadApplications().catch((error) => { $("applications-status").textContent = errorWords(error); });
  }, 300);
}

// A datetime-local value is the wall clock in Seoul, which keeps no daylight saving.
const seoulMoment = (local) => `${local.length === 16 ? `${local}:00` : local}+09:00`;

$("new-meetup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const formStatus = $("meetup-form-status");
  formStatus.textContent = "";
  const title = $("meetup-title").value.trim();
  const startsAt = $("meetup-starts").value;
  const place = $("meetup-place").value.trim();
  const numbers = {
    duration_minutes: [$("meetup-duration"), 10, 1440, "진행 시간은 10분에서 1,440분 사이로 정해 주세요."],
    capacity: [$("meetup-capacity"), 1, 10000, "정원은 1명에서 10,000명 사이로 정해 주세요."],
    fee_coupons: [$("meetup-fee"), 0, 1000, "참가비는 쿠폰 0장에서 1,000장 사이로 정해 주세요."],
  };
  const missing = !title ? ["모임 이름을 적어 주세요.", $("meetup-title")]
    : !startsAt ? ["시작 시간을 골라 주세요.", $("meetup-starts")]
      : !place ? ["장소를 적어 주세요.", $("meetup-place")] : null;
  if (missing) { formStatus.textContent = missing[0]; missing[1].focus(); return; }
  const body = { title, place, starts_at: seoulMoment(startsAt) };
  for (const [name, [input, low, high, message]] of Object.entries(numbers)) {
    const value = Number(input.value);
    if (input.value === "" || !Number.isInteger(value) || value < low || value > high) {
      formStatus.textContent = message;
      input.focus();
      return;
    }
    body[name] = value;
  }
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    await api("POST", `/api/v1/clubs/${clubId}/meetups`, { body });
    say(`모임을 만들었어요: ${title}`);
    form.reset();
    await loadMeetups();
  } catch (error) {
    formStatus.textContent = errorWords(error);
  } finally {
    button.disabled = false;
  }
});

// --- the event stream -----------------------------------------------------------

let events = { ready: Promise.resolve() };

function startEvents() {
  let opened;
  const ready = new Promise((resolve) => { opened = resolve; });
  const stream = openEvents({
    "club.application_accepted": (event) => { accepted(event).catch(() => {}); },
    "club.application_rejected": rejected,
    "club.application_received": (event) => {
      if (event.club_id === clubId && !$("applications-section").hidden) applicationsChanged();
    },
    "meetup.joined": (event) => queued.decided(event.command_id, showJoined),
    "meetup.rejected": (event) => queued.decided(event.command_id,
      (card) => showRefused(card, event.code)),
  }, { onOpen: opened });
  events = { ready, close: stream.close };
}

// --- what this person sees -------------------------------------------------------

async function showMemberParts({ membersShown = false } = {}) {
  isMember = true;
  $("apply-section").hidden = true;
  $("meetups-section").hidden = false;
  const leader = user && club.leader_id === user.id;
  $("applications-section").hidden = !leader;
  $("new-meetup-section").hidden = !leader;
  const parts = [loadMeetups()];
  if (!membersShown) parts.push(loadMembers());
  if (leader) parts.push(loadApplications());
  await Promise.all(parts);
}

async function load() {
  await reloadClub();
  clubStatus.textContent = "";
  user = await currentSession().catch(() => null);
  if (!user) { $("apply-section").hidden = false; return; }
  try {
    await loadMembers();
    isMember = true;
  } catch (error) {
    if (error.code !== "not_a_member") throw error;
  }
  // After the membership is known, so a decision replayed from the stream
  // is weighed against it.
  startEvents();
  if (isMember) await showMemberParts({ membersShown: true }); else $("apply-section").hidden = false;
}

load().catch((error) => {
  clubStatus.className = "status bad";
  clubStatus.textContent = errorWords(error);
});
