// The web app's client of the JSON API: the session (access token in memory,
// refresh token in an HttpOnly cookie only /api/v1/session reads), problem+json
// in Korean, the event stream with tickets, and formats for coupons and times.

const PROBLEM_WORDS = {
  sold_out: "마감되었어요. 대기 명단에 올릴까요?",
  insufficient_coupons: "쿠폰이 부족해요. 쿠폰을 충전해 주세요.",
  already_reserved: "이미 예약한 수업이에요.",
  schedule_conflict: "같은 시간에 다른 일정이 있어요.",
  timeslot_closed: "예약 가능한 시간이 지났어요.",
  already_started: "예약 취소 가능한 시간이 지났어요.",
  move_window_closed: "변경 가능한 시간이 지났어요.",
  club_name_taken: "이미 있는 크루 이름이에요.",
  not_a_member: "크루원만 참여할 수 있어요.",
  meetup_full: "모임 정원이 찼어요.",
  already_joined: "이미 참여한 모임이에요.",
  already_member: "이미 크루원이에요.",
  already_applied: "이미 가입 신청했어요.",
  bid_too_low: "최소 입찰가보다 낮아요.",
  auction_not_open: "지금은 입찰할 수 없어요.",
  already_leading: "이미 최고 입찰 중이에요.",
  not_sold_out: "자리가 있어요. 바로 예약해 주세요.",
  already_waiting: "이미 대기 명단에 있어요.",
  offer_expired: "시간이 지나 다음 분께 넘어갔어요.",
  not_offered: "아직 자리가 나지 않았어요.",
  invalid_code: "코드가 맞지 않아요.",
  check_in_closed: "출석 체크 가능한 시간이 아니에요.",
  invalid_credentials: "이메일 또는 비밀번호가 맞지 않아요.",
  email_taken: "이미 가입한 이메일이에요.",
  not_authenticated: "로그인이 필요해요.",
  service_unavailable: "잠시 후 다시 시도해 주세요.",
  payments_not_configured: "지금은 결제할 수 없어요. 잠시 후 다시 시도해 주세요.",
  too_many_requests: "요청이 너무 많아요. 잠시 후 다시 시도해 주세요.",
};

export function problemMessage(problem) {
  if (problem && PROBLEM_WORDS[problem.code]) return PROBLEM_WORDS[problem.code];
  if (problem && (problem.title || problem.detail)) {
    return [problem.title, problem.detail].filter(Boolean).join(": ");
  }
  return "잠시 후 다시 시도해 주세요.";
}

export class Problem extends Error {
  constructor(status, body) {
    super(problemMessage(body));
    this.status = status;
    this.code = body && body.code;
    this.body = body;
  }
}

// --- the session -----------------------------------------------------------

let accessToken = null;
let currentUser = null;
let refreshing = null;

async function sessionCall(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await readBody(response);
  if (!response.ok) throw new Problem(response.status, data);
  accessToken = data.access_token;
  currentUser = data.user;
  return currentUser;
}

// One refresh at a time, across this tab's calls and, where the browser has
// Web Locks, across tabs: a refresh token is spent once, and presenting a
// spent one revokes the whole session.
function refreshSession() {
  if (!refreshing) {
    const attempt = () => sessionCall("POST", "/api/v1/session/refresh").catch((error) => {
      if (error.status === 401) { accessToken = null; currentUser = null; return null; }
      throw error;
    });
    const locked = navigator.locks
      ? navigator.locks.request("fitnus-session", attempt) : attempt();
    refreshing = locked.finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function signIn(email, password) {
  return sessionCall("POST", "/api/v1/session", { email, password });
}

export async function adoptRefreshToken(refreshToken) {
  const adopt = () => sessionCall("PUT", "/api/v1/session", { refresh_token: refreshToken });
  return navigator.locks ? navigator.locks.request("fitnus-session", adopt) : adopt();
}

export async function signOut() {
  if (accessToken) await api("DELETE", "/api/v1/session");
  accessToken = null;
  currentUser = null;
}

let started = null;
/** The signed-in user, or null: restores the session from its cookie once per page. */
export function currentSession() {
  if (!started) started = accessToken ? Promise.resolve(currentUser) : refreshSession();
  return started;
}

/** The signed-in user; sends the browser to sign in when there is none. */
export async function requireSession() {
  const user = await currentSession();
  if (!user) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new Problem(401, { code: "not_authenticated" });
  }
  return user;
}

// --- the API ---------------------------------------------------------------

async function readBody(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) return response.json();
  return response.text();
}

/** Calls the JSON API; answers the body, throws a Problem for 4xx and 5xx. */
export async function api(method, path, { body, headers = {}, retry = true } = {}) {
  const sent = { ...headers };
  if (accessToken) sent.Authorization = `Bearer ${accessToken}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers: sent, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && retry && (await refreshSession())) {
    return api(method, path, { body, headers, retry: false });
  }
  const data = await readBody(response);
  if (!response.ok) throw new Problem(response.status, data);
  return { status: response.status, data };
}

/** Every item of a paged list (`{items, next_cursor}`), 100 at a time. */
export async function allPages(path) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "100" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `${path}${path.includes("?") ? "&" : "?"}${query}`);
    items.push(...page.data.items);
    cursor = page.data.next_cursor;
  } while (cursor);
  return items;
}

/**
 * Outcomes of queued commands (202 + position) for the page elements that
 * asked: an outcome may arrive on the event stream before the 202 that
 * names its command, and is kept until then.
 */
export class QueuedCommands {
  constructor() {
    this.waiting = new Map();  // command id -> the element that asked
    this.early = new Map();    // command id -> its outcome, before its 202
  }

  /** The 202 named this command for ``element``. */
  expect(commandId, element) {
    this.waiting.set(commandId, element);
    if (this.early.has(commandId)) this.decided(commandId, this.early.get(commandId));
  }

  /** ``show(element)`` once the element that asked is known. */
  decided(commandId, show) {
    const element = this.waiting.get(commandId);
    if (!element) { this.early.set(commandId, show); return; }
    this.waiting.delete(commandId);
    this.early.delete(commandId);
    show(element);
  }
}

export function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// --- the event stream ------------------------------------------------------

const LAST_EVENT = "fitnus:last-event-id";

/**
 * The signed-in user's events. A browser's EventSource cannot send headers and
 * its own reconnect repeats a spent ticket, so each (re)open takes a fresh
 * ticket and resumes after the last id seen. Handlers get each event once.
 */
export function openEvents(handlers, { onOpen } = {}) {
  const seen = new Set();
  let source = null;
  let delay = 500;
  let openedAt = 0;
  let stopped = false;
  const stored = () => `${LAST_EVENT}:${currentUser && currentUser.id}`;
  const retry = () => {
    // A stream that lived a while earns a quick reopen; one that keeps
    // closing at once (a server shutting down) waits longer each time.
    delay = Date.now() - openedAt > 5_000 ? 500 : Math.min(delay * 2, 10_000);
    setTimeout(open, delay);
  };

  async function open() {
    if (stopped) return;
    try {
      const { data } = await api("POST", "/api/v1/events/tickets");
      // A tab's first stream starts after the newest event: the page asks
      // for what it needs now, and only what comes next concerns it.
      const after = sessionStorage.getItem(stored()) || String(data.latest_event_id);
      const query = new URLSearchParams({ ticket: data.ticket, last_event_id: after });
      source = new EventSource(`/api/v1/events?${query}`);
    } catch {
      openedAt = 0;
      retry();
      return;
    }
    source.onopen = () => { openedAt = Date.now(); if (onOpen) onOpen(); };
    source.onerror = () => {
      source.close();
      retry();
    };
    for (const type of Object.keys(handlers)) {
      source.addEventListener(type, (message) => {
        if (seen.has(message.lastEventId)) return;
        seen.add(message.lastEventId);
        sessionStorage.setItem(stored(), message.lastEventId);
        handlers[type](JSON.parse(message.data));
      });
    }
  }
  open();
  return { close() { stopped = true; if (source) source.close(); } };
}

// --- formats ---------------------------------------------------------------

const number = new Intl.NumberFormat("ko-KR");
export const coupons = (n) => `쿠폰 ${number.format(n)}장`;
export const won = (n) => `${number.format(n)}원`;
const when = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", month: "long", day: "numeric", weekday: "short",
  hour: "numeric", minute: "2-digit",
});
/** "12월 3일 (수) 오후 7:00", in Asia/Seoul whatever the browser's zone. */
export const seoulTime = (iso) => when.format(new Date(iso));

/** Shows a message to the person, announced by screen readers. */
export function say(text, { element = document.getElementById("toast") } = {}) {
  element.textContent = text;
}

/** A settlement's money, as owners and admins read it. */
export function settlementAmounts(item) {
  return `<dl class="money">
      <dt>이용 금액</dt><dd>${won(item.gross_krw)}</dd>
      <dt>수수료 (${escapeHtml(item.commission_percent)}%)</dt><dd>−${won(item.commission_krw)}</dd>
      <dt>부가세</dt><dd>−${won(item.vat_krw)}</dd>
      <dt class="payout">지급액</dt><dd class="payout">${won(item.payout_krw)}</dd>
    </dl>`;
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

// --- the header: who is signed in -----------------------------------------

async function showAccount() {
  const slot = document.getElementById("account");
  // Kakao's return adopts a new session: restoring the old one meanwhile could win.
  if (!slot || location.pathname === "/login/kakao") return;
  const user = await currentSession().catch(() => null);
  if (!user) return;
  slot.innerHTML = `<span>${escapeHtml(user.name)}님</span> <button type="button" class="link">로그아웃</button>`;
  slot.querySelector("button").addEventListener("click", async () => {
    await signOut();
    location.assign("/");
  });
  for (const role of ["owner", "admin"]) {
    const link = document.querySelector(`[data-role="${role}"]`);
    if (link && user.role === role) link.hidden = false;
  }
}
showAccount();
