// Sign-in, navigation between views, sign-out. The token lives in sessionStorage only.
import { api, ApiError, token } from "./api.js";
import { auditView, callsView } from "./records.js";
import { keysView } from "./keys.js";
import { tenantsView } from "./tenants.js";

const VIEWS = { keys: keysView, tenants: tenantsView, audit: auditView, calls: callsView };
const $ = (id) => document.getElementById(id);

function signedIn(yes) {
  $("sign-in-view").hidden = yes;
  $("nav").hidden = !yes;
  $("sign-out").hidden = !yes;
  if (!yes) $("view").replaceChildren();
}

async function show(name) {
  for (const b of document.querySelectorAll("#nav button")) {
    if (b.dataset.view === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  try {
    await VIEWS[name]($("view"));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      token.clear();
      signedIn(false);
      $("sign-in-error").textContent = "Your session is no longer valid; sign in again.";
      return;
    }
    $("view").replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: String(err.message || err) }));
  }
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  token.set($("token").value);
  try {
    await api("GET", "/admin/version");
  } catch (err) {
    token.clear();
    $("sign-in-error").textContent = err instanceof ApiError && err.status === 401 ? "That token is not valid." : String(err.message);
    return;
  }
  $("token").value = "";
  signedIn(true);
  await show("keys");
});

$("sign-out").addEventListener("click", () => {
  token.clear();
  signedIn(false);
  $("token").focus();
});

for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => show(b.dataset.view));

if (token.get()) {
  signedIn(true);
  show("keys");
} else {
  signedIn(false);
}
