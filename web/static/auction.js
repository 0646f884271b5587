import {
  api, coupons, currentSession, escapeHtml, idempotencyKey, openEvents, problemMessage,
  requireSession, seoulTime,
} from "app";

const root = document.getElementById("auction");
const auctionId = Number(root.dataset.auctionId);
const $ = (id) => document.getElementById(id);
const elements = {
  state: $("state"), live: $("live"), title: $("title"), description: $("description"),
  price: $("price"), leader: $("leader"), leading: $("leading"), result: $("result"),
  countdown: $("countdown"), endsAt: $("ends-at"), extended: $("extended"), notice: $("notice"),
  bidding: $("bidding"), signedOut: $("signed-out"), loginLink: $("login-link"),
  bidForm: $("bid-form"), amount: $("amount"), minHint: $("min-hint"),
  proxyForm: $("proxy-form"), maxAmount: $("max-amount"), bidStatus: $("bid-status"),
  bids: $("bids"),
};
const STATUS_WORDS = { scheduled: "예정", open: "진행 중", closed: "마감", cancelled: "취소" };
const LATEST_BIDS = 10;
// A burst of bids asks the server for the bid list and counts once.
const REFRESH_AFTER_MS = 500;
// The close is settled a moment after the end (fitnus.auctions.service.CLOSE_GRACE);
// a read after it asks for the close if the job has not run yet.
const SETTLE_CHECK_MS = 2_000;
const STREAM_TYPES = ["auction.bid", "auction.extended", "auction.closed", "auction.cancelled"];

// The auction as this page knows it. Prices only go up and an end only moves
// later, so an event or a read older than what is shown changes nothing.
const state = {
  loaded: false, title: "", description: "", startsAt: null, endsAt: null,
  startingPrice: 0, softCloseSeconds: 0, price: null, minNextBid: 0, leader: null,
  bidCount: 0, cancelled: false, closed: false, winner: null, finalPrice: null,
  // The price at which this person was last told they were outbid.
  outbidAt: null,
};
const me = { user: null, alias: null };
let lastEventId = 0;

// The documented increments (API.md): the least raise over a price.
const step = (price) => (price < 50 ? 1 : price < 200 ? 2 : price < 1000 ? 5 : 10);

function phase() {
  if (state.cancelled) return "cancelled";
  if (state.closed) return "closed";
  const now = Date.now();
  if (now < state.startsAt.getTime()) return "scheduled";
  if (now < state.endsAt.getTime()) return "open";
  return "closed";
}

function leading() {
  return Boolean(me.alias) && state.leader === me.alias
    && (state.outbidAt === null || state.price > state.outbidAt);
}

function duration(ms) {
  let seconds = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(seconds / 86_400);
  seconds -= days * 86_400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  if (days) return `${days}일 ${hours}시간`;
  if (hours) return `${hours}시간 ${minutes}분 ${seconds}초`;
  if (minutes) return `${minutes}분 ${seconds}초`;
  return `${seconds}초`;
}

let shownPhase = null;
function tick() {
  if (!state.loaded) return;
  const now = phase();
  if (now !== shownPhase) render();
  const left = {
    scheduled: () => `시작까지 ${duration(state.startsAt - Date.now())}`,
    open: () => `남은 시간 ${duration(state.endsAt - Date.now())}`,
    closed: () => "마감되었어요",
    cancelled: () => "취소되었어요",
  }[now]();
  if (elements.countdown.textContent !== left) elements.countdown.textContent = left;
}

function result() {
  if (state.cancelled) return "취소된 경매예요. 사용 대기(홀드) 중이던 쿠폰은 돌려드렸어요.";
  if (phase() !== "closed") return "";
  if (state.price === null) return "입찰 없이 마감되었어요.";
  if (state.finalPrice === null) return "결과를 정리하는 중이에요…";
  const mine = me.alias && state.winner === me.alias ? " (나)" : "";
  return `낙찰 · ${state.winner}${mine} · ${coupons(state.finalPrice)}`;
}

function render() {
  const now = phase();
  shownPhase = now;
  document.title = `${state.title} · 경매 · FitNus`;
  elements.title.textContent = state.title;
  elements.description.textContent = state.description;
  elements.state.textContent = STATUS_WORDS[now];
  elements.state.className = `pill ${now === "open" ? "open" : ""}`;
  elements.price.textContent = state.price === null
    ? `시작가 ${coupons(state.startingPrice)}` : coupons(state.price);
  elements.leader.textContent = state.leader === null ? "아직 입찰이 없어요"
    : `${state.leader} · 입찰 ${state.bidCount}회`;
  elements.leading.hidden = !(now === "open" && leading());
  const settled = result();
  if (elements.result.textContent !== settled) elements.result.textContent = settled;
  elements.endsAt.textContent = now === "scheduled"
    ? `${seoulTime(state.startsAt)} 시작 · ${seoulTime(state.endsAt)} 마감`
    : `${seoulTime(state.endsAt)} 마감${now === "open" && state.softCloseSeconds
      ? ` · 마감 ${softClose()} 전부터는 입찰이 들어오면 마감이 그때부터 ${softClose()} 뒤로 늘어나요` : ""}`;
  elements.bidding.hidden = now !== "open";
  elements.minHint.textContent = `최소 입찰가 ${coupons(state.minNextBid)}`;
  elements.amount.min = String(state.minNextBid);
  elements.maxAmount.min = String(state.minNextBid);
  if (!amountTouched || Number(elements.amount.value) < state.minNextBid) {
    elements.amount.value = String(state.minNextBid);
  }
  if (now === "closed" || now === "cancelled") settleSoon();
  tick();
}

function softClose() {
  const seconds = state.softCloseSeconds;
  return seconds % 60 ? duration(seconds * 1000) : `${seconds / 60}분`;
}

// --- what the server says ---------------------------------------------------

function merge(auction) {
  Object.assign(state, {
    title: auction.title, description: auction.description,
    startsAt: new Date(auction.starts_at), startingPrice: auction.starting_price,
    softCloseSeconds: auction.soft_close_seconds,
  });
  const ends = new Date(auction.ends_at);
  if (!state.endsAt || ends > state.endsAt) state.endsAt = ends;
  if (state.price === null || (auction.current_price ?? -1) >= state.price) {
    Object.assign(state, {
      price: auction.current_price, leader: auction.leader_alias, bidCount: auction.bid_count,
      minNextBid: auction.min_next_bid,
    });
  }
  if (auction.status === "cancelled") state.cancelled = true;
  if (auction.final_price !== null) {
    Object.assign(state, { closed: true, winner: auction.winner_alias,
      finalPrice: auction.final_price });
  }
  state.loaded = true;
}

async function loadBids() {
  const { data } = await api("GET", `/api/v1/auctions/${auctionId}/bids`);
  const latest = data.items.slice(0, LATEST_BIDS);
  elements.bids.innerHTML = latest.length ? latest.map((bid) => `<li>
    <strong>${coupons(bid.amount)}</strong> · ${escapeHtml(bid.bidder_alias)}${
      me.alias === bid.bidder_alias ? " (나)" : ""}
    <span class="muted">· ${seoulTime(bid.at)}</span></li>`).join("")
    : "<li class=\"muted\">아직 입찰이 없어요.</li>";
}

async function refresh() {
  const { data } = await api("GET", `/api/v1/auctions/${auctionId}`);
  merge(data);
  render();
  await loadBids();
}

let refreshTimer = null;
let refreshAt = 0;
function refreshSoon(delay = REFRESH_AFTER_MS) {
  const at = Date.now() + delay;
  if (refreshTimer && refreshAt <= at) return;
  clearTimeout(refreshTimer);
  refreshAt = at;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refresh().catch((error) => { elements.live.textContent = error.message; });
  }, delay);
}

let settleTimer = null;
let settleDelay = SETTLE_CHECK_MS;
function settleSoon() {
  const unsettled = !state.cancelled && state.price !== null && state.finalPrice === null;
  if (!unsettled || settleTimer) return;
  settleTimer = setTimeout(() => { settleTimer = null; refreshSoon(0); }, settleDelay);
  settleDelay = Math.min(settleDelay * 2, 30_000);
}

// --- the auction's public stream ---------------------------------------------

function apply(type, id, event) {
  if (id <= lastEventId) return;
  lastEventId = id;
  const ends = new Date(event.ends_at);
  if (ends > state.endsAt) {
    state.endsAt = ends;
    elements.extended.textContent =
      `마감 직전 입찰로 마감이 ${seoulTime(ends)}까지 늘어났어요.`;
  }
  if (type === "auction.bid" && (state.price === null || event.price > state.price)) {
    Object.assign(state, {
      price: event.price, leader: event.leader_alias, bidCount: state.bidCount + 1,
      minNextBid: event.price + step(event.price),
    });
    refreshSoon();
  } else if (type === "auction.closed") {
    Object.assign(state, { closed: true, winner: event.winner_alias ?? null,
      finalPrice: event.final_price ?? null });
  } else if (type === "auction.cancelled") {
    state.cancelled = true;
  }
  render();
  if (state.cancelled || state.finalPrice !== null || (state.closed && state.price === null)) {
    watching.stop();
  }
}

// The browser's own reconnect would do, but a closed or refused stream makes it
// give up: reopen it after the last event seen, so nothing is missed or repeated.
const watching = {
  source: null, delay: 500, stopped: false,
  open() {
    if (this.stopped) return;
    const query = lastEventId ? `?last_event_id=${lastEventId}` : "";
    const source = new EventSource(`/api/v1/auctions/${auctionId}/stream${query}`);
    this.source = source;
    source.onopen = () => { this.delay = 500; elements.live.textContent = "실시간"; };
    source.onerror = () => {
      source.close();
      if (this.stopped) return;
      elements.live.textContent = "다시 연결하는 중…";
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10_000);
    };
    for (const type of STREAM_TYPES) {
      source.addEventListener(type, (message) => {
        apply(type, Number(message.lastEventId), JSON.parse(message.data));
      });
    }
  },
  stop() {
    this.stopped = true;
    if (this.source) this.source.close();
    elements.live.textContent = "";
  },
};

// --- this person's own events: outbid, won --------------------------------------

let events = null;
function startEvents() {
  if (events) return;
  const forThis = (handler) => (event) => {
    if (Number(event.auction_id) === auctionId) handler(event);
  };
  events = openEvents({
    "auction.outbid": forThis((event) => {
      // Told again on a reopened stream, an outbid older than the price shown is news no more.
      if (state.price !== null && event.price < state.price) return;
      state.outbidAt = Math.max(state.outbidAt ?? 0, event.price);
      elements.bidStatus.className = "status";
      elements.bidStatus.textContent = "";
      elements.notice.className = "notice";
      elements.notice.textContent =
        `더 높은 입찰이 들어왔어요 · 현재가 ${coupons(event.price)}. 다시 입찰해 보세요.`;
      render();
    }),
    "auction.won": forThis((event) => {
      elements.notice.className = "notice won";
      elements.notice.textContent = `낙찰! ${coupons(event.final_price)}으로 낙찰되었어요.`;
    }),
    "auction.cancelled": forThis(() => { state.cancelled = true; render(); }),
  });
}

async function learnAlias() {
  const { data } = await api("GET", `/api/v1/auctions/${auctionId}/me`);
  me.alias = data.bidder_alias;
}

// --- bidding ----------------------------------------------------------------

let amountTouched = false;
elements.amount.addEventListener("input", () => { amountTouched = true; });

async function decided(commandId) {
  for (;;) {
    const { data } = await api("GET", `/api/v1/commands/${commandId}`,
      { headers: { Prefer: "wait=8" } });
    if (data.status !== "pending") return data;
  }
}

function refusal(error) {
  elements.bidStatus.className = "status bad";
  elements.bidStatus.textContent = problemMessage(error);
  if (error.code === "insufficient_coupons") {
    elements.bidStatus.insertAdjacentHTML("beforeend",
      ' <a href="/me/wallet">지갑에서 충전하기</a>');
  }
  if (error.code === "bid_too_low") refreshSoon(0);
}

function placed(outcome, proxy) {
  const { leading: leads, price, amount } = outcome;
  elements.bidStatus.className = `status ${leads ? "ok" : ""}`;
  if (leads) {
    state.outbidAt = null;
    elements.notice.textContent = "";
    elements.bidStatus.textContent = proxy
      ? `자동 입찰을 걸었어요 · ${coupons(price)}으로 최고 입찰 중`
      : `${coupons(amount)}으로 입찰했어요 · 최고 입찰 중`;
  } else {
    elements.bidStatus.textContent =
      `입찰했지만 먼저 걸린 자동 입찰이 더 높아요 · 현재가 ${coupons(price)}`;
  }
  amountTouched = false;
  elements.maxAmount.value = "";
}

async function bid(body, button) {
  button.disabled = true;
  elements.bidStatus.className = "status";
  elements.bidStatus.textContent = "";
  try {
    me.user = await requireSession();
    startEvents();
    const { status, data } = await api("POST", `/api/v1/auctions/${auctionId}/bids`, {
      body, headers: { "Idempotency-Key": idempotencyKey() },
    });
    let outcome = { status: "succeeded", result: data };
    if (status === 202) {
      elements.bidStatus.textContent = `접수됨 · 대기 순번 ${data.position}번`;
      outcome = await decided(data.command_id);
    }
    if (outcome.status === "failed") {
      refusal(outcome.error);
      return;
    }
    if (!me.alias) await learnAlias();
    placed(outcome.result, "max_amount" in body);
    if (outcome.result.price > (state.price ?? 0) && outcome.result.leading) {
      Object.assign(state, { price: outcome.result.price, leader: me.alias,
        bidCount: state.bidCount + 1,
        minNextBid: outcome.result.price + step(outcome.result.price) });
    }
    render();
    refreshSoon(0);
  } catch (error) {
    refusal(error.body && error.body.code ? error.body : { title: error.message });
  } finally {
    button.disabled = false;
  }
}

elements.bidForm.addEventListener("submit", (event) => {
  event.preventDefault();
  bid({ amount: Number(elements.amount.value) }, event.submitter || elements.bidForm.querySelector("button"));
});
elements.proxyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  bid({ max_amount: Number(elements.maxAmount.value) },
    event.submitter || elements.proxyForm.querySelector("button"));
});

// --- start --------------------------------------------------------------------

async function start() {
  try {
    const { data } = await api("GET", `/api/v1/auctions/${auctionId}`);
    merge(data);
  } catch (error) {
    elements.state.textContent = "";
    elements.title.textContent = error.status === 404 ? "경매를 찾을 수 없어요" : "경매";
    elements.result.textContent = error.status === 404 ? "" : error.message;
    return;
  }
  render();
  watching.open();
  setInterval(tick, 1000);
  me.user = await currentSession().catch(() => null);
  elements.signedOut.hidden = Boolean(me.user);
  elements.loginLink.href = `/login?next=${encodeURIComponent(location.pathname)}`;
  if (me.user) {
    startEvents();
    await learnAlias().catch((error) => { elements.bidStatus.textContent = error.message; });
    render();
  }
  await loadBids();
}

start().catch((error) => { elements.result.textContent = error.message; });
