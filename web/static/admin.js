import { api, escapeHtml, requireSession, say, settlementAmounts } from "app";

const WORDS = {
  admin_role_required: "관리자 계정으로 로그인해야 볼 수 있어요.",
  discrepancies_open: "해결되지 않은 불일치가 있어 진행할 수 없어요. 아래 불일치를 먼저 해결해 주세요.",
  settlement_not_verified: "검증을 마친 정산만 지급할 수 있어요.",
  settlement_run_not_done: "이 달 정산 배치가 아직 끝나지 않았어요.",
  settlement_not_found: "없는 정산이에요.",
  discrepancy_not_found: "없는 불일치예요.",
  period_not_finished: "아직 끝나지 않은 기간이에요. 지난 날짜나 지난 달만 실행할 수 있어요.",
  invalid_period: "기간 형식이 맞지 않아요.",
  run_not_found: "없는 실행이에요.",
};
const SETTLEMENT_STATUS = { draft: "검증 대기", verified: "검증 완료", paid: "지급 완료" };
const QUEUE_KINDS = { timeslot: "수업", meetup: "모임", auction: "경매" };
const DISCREPANCY_KINDS = {
  usage: "이용 내역 (예약 · 지갑 · 이용 기록)",
  payment: "결제 (주문 · 쿠폰 · 카카오페이)",
  gross: "정산 금액 (이용 내역 합계)",
};
const JOBS = {
  daily_usage: { hint: "끝난 날짜 하루, 예: 2026-12-01", period: "day" },
  monthly_settlement: { hint: "끝난 달, 예: 2026-11", period: "month" },
  coupon_expiry: { hint: "기간 없이 실행해요.", period: null },
  no_shows: { hint: "기간 없이 실행해요.", period: null },
};
const RUN_STATUS = { running: "실행 중", done: "완료", failed: "실패" };
const QUEUES_REFRESH_MS = 5_000;
const RUN_POLL_MS = 1_000;

const $ = (id) => document.getElementById(id);
const isoDay = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Seoul" });  // YYYY-MM-DD
const clockTime = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", hour: "numeric", minute: "2-digit", second: "2-digit",
});
const number = new Intl.NumberFormat("ko-KR");

const message = (error) => (error.code && WORDS[error.code]) || error.message;

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${Math.round(seconds)}초`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}분 ${Math.round(seconds % 60)}초`;
  return `${Math.floor(seconds / 3600)}시간 ${Math.floor((seconds % 3600) / 60)}분`;
}

function monthLabel(month) {
  const [year, n] = month.split("-");
  return `${year}년 ${Number(n)}월`;
}

function previousMonth() {
  const [year, month] = isoDay.format(new Date()).split("-").map(Number);
  return new Date(Date.UTC(year, month - 2, 1)).toISOString().slice(0, 7);
}

// --- queues ------------------------------------------------------------------------

async function loadQueues() {
  try {
    const { data } = await api("GET", "/api/v1/admin/queues");
    $("keyed").innerHTML = data.keyed.length ? data.keyed.map((queue) => `<tr>
      <td>${QUEUE_KINDS[queue.kind] || escapeHtml(queue.kind)}</td><td>${escapeHtml(queue.key)}</td>
      <td>${number.format(queue.depth)}</td><td>${age(queue.oldest_age_s)}</td>
      <td>${queue.lease_token === null ? "–" : `남은 ${age(queue.lease_left_s)}`}</td>
      <td><button type="button" class="link redrive" data-kind="${escapeHtml(queue.kind)}"
        data-key="${escapeHtml(queue.key)}"
        aria-label="${QUEUE_KINDS[queue.kind] || escapeHtml(queue.kind)} ${escapeHtml(queue.key)} 다시 보내기">다시 보내기</button></td></tr>`).join("")
      : '<tr><td colspan="6" class="muted">기다리는 요청이 없어요.</td></tr>';
    $("workers").innerHTML = data.dramatiq.length ? data.dramatiq.map((queue) => `<tr>
      <td>${escapeHtml(queue.queue)}</td><td>${number.format(queue.ready)}</td>
      <td>${number.format(queue.delayed)}</td>
      <td class="${queue.dead ? "bad" : ""}">${number.format(queue.dead)}</td>
      <td>${age(queue.oldest_age_s)}</td></tr>`).join("")
      : '<tr><td colspan="5" class="muted">워커 큐 정보가 없어요.</td></tr>';
    const sum = (items, field) => items.reduce((total, item) => total + item[field], 0);
    $("queues-keyed-total").textContent = number.format(sum(data.keyed, "depth"));
    $("queues-ready-total").textContent = number.format(sum(data.dramatiq, "ready"));
    $("queues-dead-total").textContent = number.format(sum(data.dramatiq, "dead"));
    $("queues-pending").textContent = number.format(data.pending_commands);
    $("queues-updated").textContent = `${clockTime.format(new Date())} 기준 · ${QUEUES_REFRESH_MS / 1000}초마다 새로 고쳐요`;
    $("queues-error").textContent = "";
  } catch (error) {
    $("queues-error").textContent = `큐를 새로 고치지 못했어요: ${message(error)}`;
  }
}

$("queues-refresh").addEventListener("click", loadQueues);
$("keyed").addEventListener("click", async (event) => {
  const button = event.target.closest(".redrive");
  if (!button) return;
  try {
    const { data } = await api("POST",
      `/api/v1/admin/queues/${encodeURIComponent(button.dataset.kind)}/${encodeURIComponent(button.dataset.key)}/redrive`);
    say(`${QUEUE_KINDS[data.kind] || data.kind} ${data.key} 큐를 다시 보냈어요 (대기 ${data.depth}).`);
    loadQueues();
  } catch (error) {
    say(message(error));
  }
});

// --- settlements ---------------------------------------------------------------------

function settlementHtml(item) {
  const title = `${escapeHtml(item.center_name)} #${item.center_id} · ${monthLabel(item.month)}`;
  const tone = item.status === "paid" ? "ok" : item.discrepancies ? "bad" : "muted";
  return `<li class="card" data-settlement-id="${item.id}" data-status="${item.status}">
    <div class="row"><strong>${title}</strong>
    <span class="${tone} state">${SETTLEMENT_STATUS[item.status] || escapeHtml(item.status)}</span></div>
    ${settlementAmounts(item)}
    ${item.discrepancies ? `<p class="bad">미해결 불일치 ${item.discrepancies}건</p>` : ""}
    <div class="actions">
      <button type="button" class="secondary verify" aria-label="${title} 정산 검증"
        ${item.status === "draft" ? "" : "disabled"}>검증</button>
      <button type="button" class="secondary pay" aria-label="${title} 정산 지급"
        ${item.status === "verified" ? "" : "disabled"}>지급</button>
    </div>
    <p class="status outcome" role="status" aria-live="polite"></p>
  </li>`;
}

async function loadSettlements() {
  const query = new URLSearchParams();
  if ($("settlement-month").value) query.set("month", $("settlement-month").value);
  if ($("settlement-state").value) query.set("status", $("settlement-state").value);
  const note = $("settlements-status");
  note.textContent = "정산을 불러오는 중…";
  try {
    const { data } = await api("GET", `/api/v1/admin/settlements?${query}`);
    $("settlements").innerHTML = data.items.map(settlementHtml).join("");
    note.textContent = data.items.length ? `정산 ${data.items.length}건` : "조건에 맞는 정산이 없어요.";
  } catch (error) {
    note.textContent = message(error);
  }
}

$("settlement-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadSettlements();
});

$("settlements").addEventListener("click", async (event) => {
  const button = event.target.closest("button.verify, button.pay");
  if (!button) return;
  const card = button.closest("[data-settlement-id]");
  const outcome = card.querySelector(".outcome");
  const action = button.classList.contains("verify") ? "verify" : "pay";
  button.disabled = true;
  try {
    const { data } = await api("POST", `/api/v1/admin/settlements/${card.dataset.settlementId}/${action}`);
    card.outerHTML = settlementHtml(data);
    const fresh = $("settlements").querySelector(`[data-settlement-id="${data.id}"] .outcome`);
    fresh.className = "status outcome ok";
    fresh.textContent = action === "verify" ? "검증을 마쳤어요. 이제 지급할 수 있어요." : "지급 완료로 표시했어요. 사장님께 알렸어요.";
  } catch (error) {
    outcome.className = "status outcome bad";
    outcome.textContent = message(error);
    button.disabled = false;
  }
});

// --- discrepancies ---------------------------------------------------------------------

function discrepancyHtml(item) {
  const where = item.center_id ? `센터 #${item.center_id}` : "결제 전체";
  const open = item.status === "open";
  return `<li class="card" data-discrepancy-id="${item.id}">
    <div class="row"><strong>${DISCREPANCY_KINDS[item.kind] || escapeHtml(item.kind)}</strong>
      <span class="${open ? "bad" : "ok"}">${open ? "미해결" : "해결됨"}</span></div>
    <p class="muted">${monthLabel(item.month)} · ${where} · ${escapeHtml(item.subject)}</p>
    <p>${escapeHtml(item.detail)}</p>
    ${open ? `<form class="resolve" novalidate>
      <label for="note-${item.id}">해결 메모</label>
      <input id="note-${item.id}" name="note" maxlength="500" required autocomplete="off">
      <button type="submit" class="secondary">해결</button>
      <p class="status outcome" role="status" aria-live="polite"></p>
    </form>` : `<p class="muted">메모: ${escapeHtml(item.note || "")}</p>`}
  </li>`;
}

async function loadDiscrepancies() {
  const query = new URLSearchParams();
  if ($("discrepancy-state").value) query.set("status", $("discrepancy-state").value);
  if ($("discrepancy-month").value) query.set("month", $("discrepancy-month").value);
  const note = $("discrepancies-status");
  try {
    const { data } = await api("GET", `/api/v1/admin/discrepancies?${query}`);
    $("discrepancies").innerHTML = data.items.map(discrepancyHtml).join("");
    note.textContent = data.items.length ? `불일치 ${data.items.length}건` : "조건에 맞는 불일치가 없어요.";
  } catch (error) {
    note.textContent = message(error);
  }
}

$("discrepancy-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadDiscrepancies();
});

$("discrepancies").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target.closest("form.resolve");
  const card = form.closest("[data-discrepancy-id]");
  const outcome = form.querySelector(".outcome");
  const note = form.elements.note.value.trim();
  if (!note) {
    outcome.className = "status outcome bad";
    outcome.textContent = "어떻게 확인했는지 메모를 남겨 주세요.";
    return;
  }
  try {
    const { data } = await api("POST", `/api/v1/admin/discrepancies/${card.dataset.discrepancyId}/resolve`,
      { body: { note } });
    card.outerHTML = discrepancyHtml(data);
    say("불일치를 해결했어요. 이제 정산을 검증할 수 있어요.");
    loadSettlements();
  } catch (error) {
    outcome.className = "status outcome bad";
    outcome.textContent = message(error);
  }
});

// --- batch runs ---------------------------------------------------------------------------

function defaultPeriod(job) {
  if (JOBS[job].period === "month") return previousMonth();
  if (JOBS[job].period === "day") return isoDay.format(new Date(Date.now() - 24 * 3600 * 1000));
  return "";
}

function showJob() {
  const job = $("batch-job").value;
  $("batch-hint").textContent = JOBS[job].hint;
  $("batch-period").disabled = JOBS[job].period === null;
  $("batch-period").value = defaultPeriod(job);
}
$("batch-job").addEventListener("change", showJob);

function runText(run) {
  const state = RUN_STATUS[run.status] || run.status;
  const rows = run.status === "running" ? "" : ` · ${number.format(run.rows)}행`;
  const detail = run.detail ? " · 이미 끝난 기간이라 바뀌는 것이 없어요." : "";
  return `${run.job}${run.period ? ` (${run.period})` : ""} · 실행 #${run.run_id} · ${state}${rows}${detail}`;
}

async function follow(run, item) {
  let current = run;
  while (current.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, RUN_POLL_MS));
    try {
      current = (await api("GET", `/api/v1/admin/batches/${run.job}/runs/${run.run_id}`)).data;
    } catch (error) {
      item.textContent = `${runText(current)} · ${message(error)}`;
      return;
    }
    item.textContent = runText(current);
    item.className = `card ${current.status === "done" ? "ok" : current.status === "failed" ? "bad" : ""}`;
  }
  if (current.job === "monthly_settlement" || current.job === "daily_usage") loadSettlements();
}

$("batch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const job = $("batch-job").value;
  const note = $("batch-status");
  const body = JOBS[job].period === null ? {} : { period: $("batch-period").value.trim() };
  if (JOBS[job].period !== null && !body.period) {
    note.className = "status bad";
    note.textContent = `기간을 적어 주세요. ${JOBS[job].hint}`;
    return;
  }
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { status: answered, data } = await api("POST", `/api/v1/admin/batches/${job}/runs`, { body });
    note.className = "status ok";
    note.textContent = answered === 202 ? "배치를 실행 대기열에 넣었어요." : "이미 끝난 기간이에요. 바뀌는 것이 없어요.";
    const item = document.createElement("li");
    item.className = `card ${data.status === "done" ? "ok" : data.status === "failed" ? "bad" : ""}`;
    item.textContent = runText(data);
    $("runs").prepend(item);
    follow(data, item);
  } catch (error) {
    note.className = "status bad";
    note.textContent = message(error);
  } finally {
    button.disabled = false;
  }
});

// --- the page -------------------------------------------------------------------------------

async function load() {
  const user = await requireSession();
  const status = $("admin-status");
  if (user.role !== "admin") {
    status.className = "status bad";
    status.textContent = `관리자 계정으로 로그인해야 볼 수 있어요. 지금 ${user.name}님은 관리자 계정이 아니에요.`;
    return;
  }
  $("admin-body").hidden = false;
  $("settlement-month").value = previousMonth();
  showJob();
  status.textContent = "";
  await Promise.all([loadQueues(), loadSettlements(), loadDiscrepancies()]);
  setInterval(loadQueues, QUEUES_REFRESH_MS);
}

load().catch((error) => {
  $("admin-status").className = "status bad";
  $("admin-status").textContent = message(error);
});
