import { api, coupons, escapeHtml, seoulTime } from "app";

const SECTIONS = {
  open: {
    list: document.getElementById("open-auctions"),
    status: document.getElementById("open-status"),
    empty: "지금 진행 중인 경매가 없어요.",
  },
  scheduled: {
    list: document.getElementById("scheduled-auctions"),
    status: document.getElementById("scheduled-status"),
    empty: "예정된 경매가 없어요.",
  },
};

function card(auction) {
  const open = auction.status === "open";
  const price = auction.current_price === null
    ? `시작가 ${coupons(auction.starting_price)}` : `현재가 ${coupons(auction.current_price)}`;
  const when = open ? `${seoulTime(auction.ends_at)} 마감` : `${seoulTime(auction.starts_at)} 시작`;
  return `<li class="card auction-card">
    <div class="row"><a href="/auctions/${auction.id}">${escapeHtml(auction.title)}</a>
      <span class="pill ${open ? "open" : ""}">${open ? "진행 중" : "예정"}</span></div>
    <p class="price">${price}</p>
    <p class="muted">${when}${open ? ` · 입찰 ${auction.bid_count}회` : ""}</p>
  </li>`;
}

async function show(status) {
  const section = SECTIONS[status];
  try {
    const { data } = await api("GET", `/api/v1/auctions?status=${status}`);
    section.list.innerHTML = data.items.map(card).join("");
    section.status.textContent = data.items.length ? "" : section.empty;
  } catch (error) {
    section.status.textContent = error.message;
  }
}

show("open");
show("scheduled");
