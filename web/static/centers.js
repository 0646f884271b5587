import { api, escapeHtml, problemMessage } from "app";

const SPORTS = JSON.parse(document.getElementById("sport-words").textContent);
const form = document.getElementById("search");
const status = document.getElementById("search-status");
const results = document.getElementById("results");
const more = document.getElementById("more");
let chosenOnMap = null;
let nextCursor = null;
let lastQuery = null;

// The map is an extra: without Leaflet (or its tiles) the list is the page.
const map = window.L ? window.L.map("map").setView([37.5663, 126.9779], 13) : null;
let markers = [];
if (map) {
  window.L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19, attribution: "&copy; OpenStreetMap contributors",
  }).addTo(map);
  map.on("click", (event) => {
    chosenOnMap = [event.latlng.lat, event.latlng.lng];
    form.place.value = "map";
    status.textContent = "지도에서 고른 곳 근처를 찾아요.";
  });
}

function here() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("이 브라우저는 위치를 알려주지 않아요.")); return; }
    navigator.geolocation.getCurrentPosition(
      (position) => resolve([position.coords.latitude, position.coords.longitude]),
      () => reject(new Error("위치를 알 수 없어요. 장소를 골라 주세요.")),
      { timeout: 10_000 });
  });
}

async function point() {
  const place = form.place.value;
  if (place === "here") return here();
  if (place === "map") {
    if (!chosenOnMap) throw new Error("지도에서 한 곳을 눌러 주세요.");
    return chosenOnMap;
  }
  return place.split(",").map(Number);
}

const distance = (m) => (m < 1000 ? `${Math.round(m)}m` : `${(m / 1000).toFixed(1)}km`);

function show(items, { append }) {
  const html = items.map((center) => `<li class="card">
      <a href="/centers/${center.id}"><strong>${escapeHtml(center.name)}</strong></a>
      <span class="muted">${distance(center.distance_m)}</span><br>
      <span>${escapeHtml(center.address)}</span><br>
      <span class="muted">${center.sports.map((s) => escapeHtml(SPORTS[s] || s)).join(" · ")}</span>
    </li>`).join("");
  results.innerHTML = append ? results.innerHTML + html : html;
  if (map) {
    if (!append) { markers.forEach((marker) => marker.remove()); markers = []; }
    for (const center of items) {
      markers.push(window.L.marker([center.latitude, center.longitude])
        .bindPopup(`<a href="/centers/${center.id}">${escapeHtml(center.name)}</a>`).addTo(map));
    }
  }
}

async function search({ append = false } = {}) {
  const query = new URLSearchParams(append ? lastQuery : undefined);
  if (!append) {
    const [lat, lng] = await point();
    query.set("lat", lat.toFixed(6));
    query.set("lng", lng.toFixed(6));
    query.set("radius_m", form.radius_m.value);
    if (form.sport.value) query.set("sport", form.sport.value);
    if (form.q.value.trim()) query.set("q", form.q.value.trim());
    lastQuery = new URLSearchParams(query);
    if (map) map.setView([lat, lng], 14);
  } else {
    query.set("cursor", nextCursor);
  }
  const { data } = await api("GET", `/api/v1/centers?${query}`);
  show(data.items, { append });
  nextCursor = data.next_cursor;
  more.hidden = !nextCursor;
  const count = results.children.length;
  status.textContent = count ? `센터 ${count}곳을 찾았어요.` : "조건에 맞는 센터가 없어요.";
}

function run(options) {
  status.textContent = "찾는 중…";
  search(options).catch((error) => {
    status.textContent = error.body ? problemMessage(error.body) : error.message;
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  // The address keeps the search, so a reload or a shared link shows it again.
  const place = form.place.value;
  if (place !== "here" && place !== "map") {
    const shown = new URLSearchParams(new FormData(form));
    history.replaceState(null, "", `?${shown}`);
  }
  run();
});
// Found by the server already (the search is in the address): the same query
// again through the API, for the map and the next pages.
if (new URLSearchParams(location.search).has("place") && results.children.length) run();
more.addEventListener("click", () => run({ append: true }));
