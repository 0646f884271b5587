import { api, requireSession } from "app";

// The code rotates every 30 s (TOTP); the server says how long this one has left.
const STEP_SECONDS = 30;
const TICK_MS = 250;
const RETRY_MAX_MS = 10_000;
const WORDS = {
  not_center_owner: "이 센터의 사장님 계정으로 로그인해야 코드를 볼 수 있어요.",
  owner_role_required: "사장님 계정으로 로그인해야 코드를 볼 수 있어요.",
  center_not_found: "없는 센터예요.",
};

const $ = (id) => document.getElementById(id);
const centerId = $("kiosk").dataset.centerId;
const code = $("kiosk-code");
const left = $("kiosk-left");
const bar = $("kiosk-bar");
const problem = $("kiosk-error");

let expiresAt = 0;
let fetching = false;
let retryAt = 0;
let retryDelay = 1000;

const message = (error) => (error.code && WORDS[error.code]) || error.message;

async function fetchCode() {
  fetching = true;
  try {
    const { data } = await api("GET", `/api/v1/centers/${centerId}/check-in-code`);
    const shown = `${data.code.slice(0, 3)} ${data.code.slice(3)}`;
    if (code.textContent !== shown) code.textContent = shown;
    code.classList.remove("stale");
    code.dataset.code = data.code;
    expiresAt = Date.now() + data.valid_for_seconds * 1000;
    problem.textContent = "";
    retryDelay = 1000;
  } catch (error) {
    problem.textContent = message(error);
    code.classList.add("stale");
    // A refused owner will not become the owner by asking again.
    retryAt = error.status === 403 || error.status === 404
      ? Infinity : Date.now() + (retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS));
  } finally {
    fetching = false;
  }
}

function tick() {
  const seconds = Math.ceil((expiresAt - Date.now()) / 1000);
  if (seconds <= 0) {
    left.textContent = "새 코드를 불러오는 중…";
    bar.value = 0;
    if (!fetching && Date.now() >= retryAt) fetchCode();
    return;
  }
  left.textContent = `${seconds}초 뒤 새 코드`;
  bar.value = Math.min(seconds, STEP_SECONDS);
}

async function keepAwake() {
  // A kiosk whose screen sleeps shows nothing; not every browser can prevent it.
  try { if (navigator.wakeLock) await navigator.wakeLock.request("screen"); } catch { /* best effort */ }
}

const fullscreen = $("kiosk-fullscreen");
if (document.documentElement.requestFullscreen) {
  fullscreen.addEventListener("click", () => {
    document.documentElement.requestFullscreen().catch(() => {});
    keepAwake();
  });
} else {
  fullscreen.hidden = true;
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") { expiresAt = 0; keepAwake(); }
});

async function start() {
  await requireSession();
  api("GET", `/api/v1/centers/${centerId}`).then(({ data }) => {
    $("kiosk-center").textContent = `${data.name} 출석 체크`;
    document.title = `${data.name} 키오스크 · FitNus`;
  }).catch(() => {});
  keepAwake();
  await fetchCode();
  setInterval(tick, TICK_MS);
  tick();
}

start().catch((error) => { problem.textContent = message(error); });
