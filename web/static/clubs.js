import { allPages, api, currentSession, escapeHtml, requireSession } from "app";

const SPORTS = JSON.parse(document.getElementById("sport-words").textContent);
const ROLES = { leader: "크루장", member: "크루원" };
const search = document.getElementById("search");
const searchStatus = document.getElementById("search-status");
const results = document.getElementById("results");
const more = document.getElementById("more");
const create = document.getElementById("create");
const createStatus = document.getElementById("create-status");
let nextCursor = null;
let lastQuery = null;

const sportsOf = (club) => club.sports.map((s) => escapeHtml(SPORTS[s] || s)).join(" · ");
const headcount = (club) => (club.max_members
  ? `크루원 ${club.member_count}/${club.max_members}명` : `크루원 ${club.member_count}명`);

function clubHtml(club, { role } = {}) {
  return `<li class="card">
    <a href="/clubs/${club.id}"><strong>${escapeHtml(club.name)}</strong></a>
    ${role ? `<span class="muted">· ${ROLES[role]}</span>` : ""}<br>
    <span class="muted">${sportsOf(club)} · ${headcount(club)}</span>
    ${club.description ? `<br><span>${escapeHtml(club.description.slice(0, 120))}</span>` : ""}
  </li>`;
}

function searchQuery() {
  const query = new URLSearchParams({ limit: "20" });
  const { q, sport, place, radius_m: radius } = search.elements;
  if (q.value.trim()) query.set("q", q.value.trim());
  if (sport.value) query.set("sport", sport.value);
  if (place.value) {
    const [lat, lng] = place.value.split(",");
    query.set("lat", lat);
    query.set("lng", lng);
    query.set("radius_m", radius.value);
  }
  return query;
}

async function find({ append }) {
  if (!append) {
    lastQuery = searchQuery();
    nextCursor = null;
  }
  const query = new URLSearchParams(lastQuery);
  if (append && nextCursor) query.set("cursor", nextCursor);
  searchStatus.textContent = "찾는 중…";
  const { data } = await api("GET", `/api/v1/clubs?${query}`);
  const html = data.items.map((club) => clubHtml(club)).join("");
  results.innerHTML = append ? results.innerHTML + html : html;
  nextCursor = data.next_cursor;
  more.hidden = !nextCursor;
  const shown = results.children.length;
  searchStatus.textContent = shown ? `크루 ${shown}곳` : "찾는 크루가 없어요. 새 크루를 만들어 보세요.";
}

function showError(error) { searchStatus.textContent = error.message; }

search.addEventListener("submit", (event) => {
  event.preventDefault();
  // The address keeps the search, so a reload or a shared link shows the same.
  const shown = new URLSearchParams(new FormData(search));
  for (const [key, value] of [...shown]) if (!value) shown.delete(key);
  const text = shown.toString();
  history.replaceState(null, "", `/clubs${text ? `?${text}` : ""}`);
  find({ append: false }).catch(showError);
});
more.addEventListener("click", () => find({ append: true }).catch(showError));

async function showMine() {
  const slot = document.getElementById("mine");
  const status = document.getElementById("mine-status");
  const user = await currentSession().catch(() => null);
  if (!user) {
    status.innerHTML = '<a href="/login?next=/clubs">로그인</a>하면 내 크루가 보여요.';
    return;
  }
  const mine = await allPages("/api/v1/me/clubs");
  slot.innerHTML = mine.map((club) => clubHtml(club, { role: club.role })).join("");
  status.textContent = mine.length ? "" : "아직 함께하는 크루가 없어요.";
}

const field = (id) => document.getElementById(id);

create.addEventListener("submit", async (event) => {
  event.preventDefault();
  createStatus.textContent = "";
  const name = field("club-name").value.trim();
  const sports = [...create.querySelectorAll('input[name="sports"]:checked')].map((box) => box.value);
  const cap = field("club-max").value;
  if (!name) { createStatus.textContent = "크루 이름을 적어 주세요."; field("club-name").focus(); return; }
  if (!sports.length) { createStatus.textContent = "종목을 하나 이상 골라 주세요."; return; }
  if (cap && !(Number(cap) >= 2 && Number(cap) <= 10000)) {
    createStatus.textContent = "최대 인원은 2명에서 10,000명 사이로 정해 주세요.";
    return;
  }
  const body = { name, description: field("club-description").value.trim(), sports };
  if (field("club-place").value) {
    const [latitude, longitude] = field("club-place").value.split(",").map(Number);
    Object.assign(body, { latitude, longitude });
  }
  if (cap) body.max_members = Number(cap);
  const button = create.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    await requireSession();
    const { data } = await api("POST", "/api/v1/clubs", { body });
    location.assign(`/clubs/${data.id}`);
  } catch (error) {
    createStatus.textContent = error.message;
    button.disabled = false;
  }
});

// The search in the address (a reload, a shared link) fills the form.
const asked = new URLSearchParams(location.search);
for (const name of ["q", "sport", "place", "radius_m"]) {
  if (asked.has(name)) search.elements[name].value = asked.get(name);
}
if (location.hash === "#create") document.getElementById("create-section").open = true;
find({ append: false }).catch(showError);
showMine().catch((error) => { document.getElementById("mine-status").textContent = error.message; });
