import {
  api, coupons, currentSession, escapeHtml, openEvents, say, seoulTime,
} from "app";

const LIVE = ["waiting", "offered"];

async function showWaitlist() {
  const { data } = await api("GET", "/api/v1/me/waitlist");
  const entries = data.items.filter((entry) => entry.timeslot_id && LIVE.includes(entry.status));
  const sessions = await Promise.all(entries.map(
    (entry) => api("GET", `/api/v1/timeslots/${entry.timeslot_id}`).then(({ data: slot }) => slot)));
  document.getElementById("waitlist-section").hidden = !entries.length;
  document.getElementById("waitlist").innerHTML = entries.map((entry, n) => {
    const when = seoulTime(sessions[n].starts_at);
    const state = entry.status === "offered"
      ? `<strong class="ok">자리가 났어요</strong> · ${seoulTime(entry.offer_expires_at)}까지 확정해 주세요
         <button type="button" class="claim" data-id="${entry.id}"
           aria-label="${escapeHtml(when)} 수업 확정하기">확정하기</button>`
      : `대기 순번 ${entry.position}번`;
    return `<li class="card"><strong>${escapeHtml(when)} 수업</strong><br>${state}</li>`;
  }).join("");
}

document.getElementById("waitlist").addEventListener("click", async (event) => {
  const button = event.target.closest("button.claim");
  if (!button) return;
  button.disabled = true;
  try {
    const answer = await api("POST", `/api/v1/waitlist/${button.dataset.id}/claim`,
      { headers: { Prefer: "wait=10" } });
    say(answer.status === 202 ? `접수됨 · 대기 순번 ${answer.data.position}번` : "예약 확정! 내 일정에 들어갔어요.");
  } catch (error) {
    say(error.message);
  }
  showWaitlist().catch((error) => say(error.message));
});

const user = await currentSession().catch(() => null);
if (user) {
  document.getElementById("signed-out").hidden = true;
  document.getElementById("signed-in").hidden = false;
  const now = new Date();
  const until = new Date(now.getTime() + 14 * 24 * 3600 * 1000);
  const query = new URLSearchParams({ from: now.toISOString(), to: until.toISOString() });
  const [calendar, wallet] = await Promise.all([
    api("GET", `/api/v1/me/calendar?${query}`), api("GET", "/api/v1/me/wallet"),
    showWaitlist(),
  ]);
  const items = calendar.data.items.slice(0, 5);
  document.getElementById("upcoming").innerHTML = items.length
    ? items.map((item) => `<li class="card"><strong>${escapeHtml(item.title)}</strong><br>
        <span class="muted">${seoulTime(item.starts_at)}</span></li>`).join("")
    : '<li class="muted">예정된 일정이 없어요. <a href="/centers">센터 찾기</a></li>';
  document.getElementById("balance").textContent = coupons(wallet.data.available);
  // A place offered, a line moved, an offer gone: the list says so as it happens.
  const refresh = () => showWaitlist().catch((error) => say(error.message));
  openEvents({
    "waitlist.offered": () => { say("대기하던 수업에 자리가 났어요. 확정해 주세요."); refresh(); },
    "waitlist.position_changed": refresh,
    "waitlist.offer_expired": refresh,
  });
}
