import {
  api, coupons, escapeHtml, openEvents, problemMessage, requireSession, say, seoulTime, won,
} from "app";

const LEDGER_WORDS = {
  grant: "쿠폰 지급",
  purchase: "쿠폰 구매",
  booking_debit: "예약",
  booking_refund: "예약 취소 환불",
  bid_hold: "경매 입찰 홀드",
  bid_release: "경매 홀드 해제",
  auction_capture: "경매 낙찰",
  expiry: "유효기간 만료",
  purchase_refund: "구매 환불",
};
const PAYMENT_WORDS = {
  pending: "결제 확인 중",
  approved: "결제 완료",
  cancelled: "결제 취소",
  failed: "결제 실패",
  refunded: "환불 완료",
  partially_refunded: "부분 환불",
};
const PROBLEM_WORDS = {
  refund_window_closed: "결제 후 7일이 지나 환불할 수 없어요.",
  coupons_already_used: "이미 사용했거나 사용 대기 중인 쿠폰은 환불할 수 없어요. 환불할 쿠폰 수를 줄여 주세요.",
  refund_in_progress: "이 결제의 환불이 진행 중이에요. 잠시 후 다시 확인해 주세요.",
  payment_not_refundable: "환불할 수 있는 결제가 아니에요.",
  payment_gateway_error: "카카오페이에서 처리하지 못했어요. 잠시 후 다시 시도해 주세요.",
  bundle_not_found: "없는 쿠폰 묶음이에요. 다시 골라 주세요.",
  invalid_purchase: "구매할 쿠폰 수를 1~1,000장 사이로 입력해 주세요.",
};
const REFUNDABLE = new Set(["approved", "partially_refunded"]);
const REFUND_WINDOW_MS = 7 * 24 * 3600 * 1000;
const MAX_CUSTOM = 1000;
// Events after which the wallet may have changed: it is reloaded whole from
// the server, so an event that arrives twice or late changes nothing.
const WALLET_EVENTS = [
  "reservation.confirmed", "reservation.cancelled", "reservation.moved", "reservation.refunded",
  "meetup.joined", "waitlist.offered", "waitlist.claimed", "waitlist.offer_expired",
  "auction.outbid", "auction.won", "coupons.expiring",
];

const number = new Intl.NumberFormat("ko-KR");
const date = new Intl.DateTimeFormat("ko-KR", {
  timeZone: "Asia/Seoul", year: "numeric", month: "long", day: "numeric",
});
const words = (error) => (error.body && PROBLEM_WORDS[error.body.code]) || error.message;

const walletStatus = document.getElementById("wallet-status");
const ledger = document.getElementById("ledger");
const ledgerStatus = document.getElementById("ledger-status");
const more = document.getElementById("more");
const paymentsList = document.getElementById("payments-list");
const paymentsStatus = document.getElementById("payments-status");
const buyForm = document.getElementById("buy");
const buyStatus = document.getElementById("buy-status");
const pay = document.getElementById("pay");
const customField = document.getElementById("custom-field");
const customCoupons = document.getElementById("custom-coupons");
const total = document.getElementById("total");

// --- balance, lots --------------------------------------------------------------

async function loadWallet() {
  const { data } = await api("GET", "/api/v1/me/wallet");
  document.getElementById("available").textContent = coupons(data.available);
  document.getElementById("balance").textContent = coupons(data.balance);
  document.getElementById("held").textContent = coupons(data.held);
  document.getElementById("lots").innerHTML = data.lots.length
    ? data.lots.map((lot) => `<li class="card row"><span>${coupons(lot.coupons_left)}</span>
        <span class="muted">${date.format(new Date(lot.expires_at))}까지</span></li>`).join("")
    : '<li class="muted">남은 쿠폰이 없어요.</li>';
  walletStatus.textContent = "";
}

// --- the ledger, newest first ---------------------------------------------------

let ledgerCursor = null;

function ledgerHtml(entry) {
  const sign = entry.amount > 0 ? "+" : entry.amount < 0 ? "−" : "";
  return `<li class="card" data-entry-id="${entry.id}"><div class="row">
    <div><strong>${escapeHtml(LEDGER_WORDS[entry.kind] || entry.kind)}</strong><br>
    <span class="muted">${seoulTime(entry.created_at)}</span></div>
    <div class="amount"><strong class="${entry.amount > 0 ? "plus" : ""}">${sign}${number.format(Math.abs(entry.amount))}장</strong><br>
    <span class="muted">잔액 ${number.format(entry.balance_after)}장</span></div></div></li>`;
}

async function loadLedger({ fresh }) {
  const query = new URLSearchParams({ limit: "20" });
  if (!fresh && ledgerCursor) query.set("cursor", ledgerCursor);
  const { data } = await api("GET", `/api/v1/me/wallet/ledger?${query}`);
  // An entry already shown (a page that moved under a live reload) is not shown twice.
  const shown = new Set(fresh ? [] : [...ledger.querySelectorAll("[data-entry-id]")]
    .map((item) => item.dataset.entryId));
  const html = data.items.filter((entry) => !shown.has(String(entry.id))).map(ledgerHtml).join("");
  if (fresh) ledger.innerHTML = html; else ledger.insertAdjacentHTML("beforeend", html);
  ledgerCursor = data.next_cursor;
  more.hidden = !ledgerCursor;
  ledgerStatus.textContent = ledger.children.length ? "" : "아직 쿠폰 내역이 없어요.";
}

more.addEventListener("click", () => {
  more.disabled = true;
  loadLedger({ fresh: false })
    .catch((error) => { ledgerStatus.textContent = error.message; })
    .finally(() => { more.disabled = false; });
});

// --- buying coupons -------------------------------------------------------------

let bundles = [];

function chosen() {
  const picked = buyForm.querySelector('input[name="bundle"]:checked');
  return picked ? bundles.find((bundle) => bundle.id === picked.value) : null;
}

function customCount() {
  const value = customCoupons.value.trim();
  const count = /^\d+$/.test(value) ? Number(value) : NaN;
  return count >= 1 && count <= MAX_CUSTOM ? count : null;
}

function showTotal() {
  const bundle = chosen();
  const custom = bundle && bundle.coupons === null;
  customField.hidden = !custom;
  if (!bundle) { total.textContent = "–"; pay.disabled = true; return; }
  const count = custom ? customCount() : bundle.coupons;
  customCoupons.setAttribute("aria-invalid", String(custom && count === null));
  total.textContent = count === null ? "–" : `${won(custom ? count * bundle.price_krw : bundle.price_krw)} (${coupons(count)})`;
  pay.disabled = count === null;
  buyStatus.className = "status";
  buyStatus.textContent = count === null ? PROBLEM_WORDS.invalid_purchase : "";
}

async function loadBundles() {
  const { data } = await api("GET", "/api/v1/coupon-bundles");
  bundles = data.items;
  document.getElementById("bundle-choices").innerHTML = bundles.map((bundle, index) => {
    const label = bundle.coupons === null
      ? `직접 입력 <span class="muted">· 1장 ${won(bundle.price_krw)}</span>`
      : `${coupons(bundle.coupons)} <strong class="amount">${won(bundle.price_krw)}</strong>`;
    return `<label class="choice"><input type="radio" name="bundle" value="${escapeHtml(bundle.id)}"
      ${index === 0 ? "checked" : ""}><span>${label}</span></label>`;
  }).join("");
  showTotal();
}

buyForm.addEventListener("change", showTotal);
customCoupons.addEventListener("input", showTotal);

buyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const bundle = chosen();
  if (!bundle) return;
  const body = bundle.coupons === null ? { coupons: customCount() } : { bundle_id: bundle.id };
  pay.disabled = true;
  buyStatus.className = "status";
  buyStatus.textContent = "카카오페이 결제를 준비하고 있어요…";
  try {
    await requireSession();
    const { data } = await api("POST", "/api/v1/payments", { body });
    buyStatus.textContent = "카카오페이로 이동해요…";
    location.assign(data.redirect_url);
  } catch (error) {
    buyStatus.className = "status bad";
    buyStatus.textContent = words(error);
    pay.disabled = false;
  }
});

// --- my payments and refunds ----------------------------------------------------

let payments = new Map();

function refundableUntil(payment) {
  if (!REFUNDABLE.has(payment.status) || !payment.approved_at) return null;
  if (payment.coupons - payment.refunded_coupons <= 0) return null;
  const until = new Date(payment.approved_at).getTime() + REFUND_WINDOW_MS;
  return until > Date.now() ? until : null;
}

// What giving back `count` more coupons returns: the order's own price per
// coupon, rounded down to the won over all its refunds (as the server counts).
function refundQuote(payment, count) {
  return Math.floor(payment.amount_krw * (payment.refunded_coupons + count) / payment.coupons)
    - payment.refunded_krw;
}

function paymentHtml(payment) {
  const until = refundableUntil(payment);
  const when = payment.approved_at ? ` · ${seoulTime(payment.approved_at)}` : "";
  const refunded = payment.refunded_krw
    ? `<p class="refund-line">환불 ${won(payment.refunded_krw)} (${coupons(payment.refunded_coupons)})</p>` : "";
  const refundable = until
    ? `<p class="muted refund-line">${seoulTime(new Date(until).toISOString())}까지 환불 가능</p>` : "";
  const button = until
    ? `<button type="button" class="secondary refund" data-id="${payment.id}" aria-describedby="payment-${payment.id}">환불</button>` : "";
  return `<li class="card" data-payment-id="${payment.id}"><div class="row"><div>
    <strong id="payment-${payment.id}">${coupons(payment.coupons)} · ${won(payment.amount_krw)}</strong><br>
    <span class="muted">${PAYMENT_WORDS[payment.status] || escapeHtml(payment.status)}${when}</span>
    ${refunded}${refundable}</div>${button}</div></li>`;
}

async function loadPayments() {
  const { data } = await api("GET", "/api/v1/me/payments");
  payments = new Map(data.items.map((payment) => [payment.id, payment]));
  paymentsList.innerHTML = data.items.length ? data.items.map(paymentHtml).join("")
    : '<li class="muted">아직 결제한 적이 없어요.</li>';
}

const dialog = document.getElementById("refund-dialog");
const refundCoupons = document.getElementById("refund-coupons");
const refundQuoteText = document.getElementById("refund-quote");
const confirmRefund = document.getElementById("confirm-refund");
let refunding = null;

function refundCount() {
  const value = refundCoupons.value.trim();
  const count = /^\d+$/.test(value) ? Number(value) : NaN;
  const left = refunding.coupons - refunding.refunded_coupons;
  return count >= 1 && count <= left ? count : null;
}

function showQuote() {
  const count = refundCount();
  refundCoupons.setAttribute("aria-invalid", String(count === null));
  confirmRefund.disabled = count === null;
  const left = refunding.coupons - refunding.refunded_coupons;
  refundQuoteText.className = count === null ? "bad" : "";
  refundQuoteText.textContent = count === null
    ? `1~${number.format(left)}장 사이로 입력해 주세요.`
    : `${coupons(count)}을 돌려드리고 ${won(refundQuote(refunding, count))}을 환불해요.`;
}
refundCoupons.addEventListener("input", showQuote);

function ask() {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function refund(payment) {
  refunding = payment;
  const left = payment.coupons - payment.refunded_coupons;
  document.getElementById("refund-order").textContent =
    `${coupons(payment.coupons)} · ${won(payment.amount_krw)} 결제에서 최대 ${coupons(left)}까지 환불할 수 있어요. 이미 사용한 쿠폰은 환불되지 않아요.`;
  refundCoupons.max = String(left);
  refundCoupons.value = String(left);
  showQuote();
  if (await ask() !== "refund") return;
  const count = refundCount();
  if (count === null) return;
  paymentsStatus.className = "status";
  paymentsStatus.textContent = "환불하고 있어요…";
  try {
    const { data } = await api("POST", `/api/v1/payments/${payment.id}/refund`,
      { body: { coupons: count } });
    const returned = data.refunded_krw - payment.refunded_krw;
    const message = `${won(returned)}을 환불했어요. ${coupons(data.refunded_coupons - payment.refunded_coupons)}이 지갑에서 빠졌어요.`;
    paymentsStatus.className = "status ok";
    paymentsStatus.textContent = message;
  } catch (error) {
    paymentsStatus.className = "status bad";
    paymentsStatus.textContent = words(error);
  }
  await reload();
}

paymentsList.addEventListener("click", (event) => {
  const button = event.target.closest("button.refund");
  if (!button) return;
  refund(payments.get(Number(button.dataset.id)))
    .catch((error) => say(error.body ? problemMessage(error.body) : error.message));
});

// --- putting it together --------------------------------------------------------

async function reload() {
  await Promise.all([loadWallet(), loadLedger({ fresh: true }), loadPayments()]);
}

let pending = null;
function reloadSoon() {
  clearTimeout(pending);
  pending = setTimeout(() => reload().catch(() => {}), 300);
}

loadBundles().catch((error) => {
  document.getElementById("bundle-choices").innerHTML =
    `<p class="bad">${escapeHtml(error.message)}</p>`;
});
requireSession().then(async () => {
  await reload();
  openEvents(Object.fromEntries(WALLET_EVENTS.map((type) => [type, reloadSoon])));
}).catch((error) => { walletStatus.textContent = error.message; });
