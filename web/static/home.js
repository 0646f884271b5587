import { api, coupons, currentSession, escapeHtml, seoulTime } from "app";

const user = await currentSession().catch(() => null);
if (user) {
  document.getElementById("signed-out").hidden = true;
  document.getElementById("signed-in").hidden = false;
  const now = new Date();
  const until = new Date(now.getTime() + 14 * 24 * 3600 * 1000);
  const query = new URLSearchParams({ from: now.toISOString(), to: until.toISOString() });
  const [calendar, wallet] = await Promise.all([
    api("GET", `/api/v1/me/calendar?${query}`), api("GET", "/api/v1/me/wallet"),
  ]);
  const items = calendar.data.items.slice(0, 5);
  document.getElementById("upcoming").innerHTML = items.length
    ? items.map((item) => `<li class="card"><strong>${escapeHtml(item.title)}</strong><br>
        <span class="muted">${seoulTime(item.starts_at)}</span></li>`).join("")
    : '<li class="muted">예정된 일정이 없어요. <a href="/centers">센터 찾기</a></li>';
  document.getElementById("balance").textContent = coupons(wallet.data.available);
}
