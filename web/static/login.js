import { adoptRefreshToken, api, problemMessage, signIn } from "app";

// Where to go after signing in: a page of this site only, as the browser
// itself resolves the address ("/\evil.example" is another site).
function next() {
  const wanted = new URL(new URLSearchParams(location.search).get("next") || "/", location.origin);
  return wanted.origin === location.origin ? wanted.pathname + wanted.search + wanted.hash : "/";
}

function submitting(form, errorSlot, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    errorSlot.textContent = "";
    try {
      await action(new FormData(form));
      location.assign(next());
    } catch (error) {
      errorSlot.textContent = error.body ? problemMessage(error.body) : error.message;
      button.disabled = false;
    }
  });
}

const login = document.getElementById("login");
if (login) {
  submitting(login, document.getElementById("login-error"),
    (fields) => signIn(fields.get("email"), fields.get("password")));
}

const signup = document.getElementById("signup");
if (signup) {
  submitting(signup, document.getElementById("signup-error"), async (fields) => {
    const account = Object.fromEntries(fields.entries());
    await api("POST", "/api/v1/auth/signup", { body: account });
    await signIn(account.email, account.password);
  });
}

const kakao = document.getElementById("kakao-status");
if (kakao) {
  const pair = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);  // the tokens leave the address bar
  adoptRefreshToken(pair.get("refresh_token") || "")
    .then(() => location.assign("/"))
    .catch((error) => { kakao.textContent = error.message; });
}
