/* The tenant portal: the "portal mode" of the console's shared components (console/js/main.js
 * says how a mode mounts them). The session is a cookie the page never sees (HttpOnly); the CSRF
 * token from sign-in lives in this module's memory only and goes out on every state-changing call.
 * What a person may do comes from their role's capabilities in GET /api/me; controls the API would
 * refuse are not shown. Invitation and password-reset links carry their secret in the URL fragment
 * (`#invitation=...`, `#reset=...`), which is read once, taken out of the address bar and posted.
 * Each form's submit button is disabled until the script handles that form: a form submitted
 * natively would put the password in the page's URL.
 * Every URL is relative to the page, so the portal works under any `portal.path`.
 */
import { ApiError, cookieAuth, createClient, segment } from "../console/js/api.js";
import { h } from "../console/js/dom.js";
import { keysView } from "../console/js/keys.js";
import { auditView, callsView } from "../console/js/records.js";
import { mountShell } from "../console/js/shell.js";
import { usageView } from "../console/js/usage.js";
import { webhooksView } from "../console/js/webhooks.js";
import { membersView } from "./members.js";

const $ = (id) => document.getElementById(id);
const BASE = `${location.pathname.replace(/\/[^/]*$/, "")}/api`; // "<portal.path>/api"
let me = null; // GET /api/me's answer while signed in

const client = createClient({ base: BASE, auth: cookieAuth(() => me?.csrf_token), onUnauthorized: () => shell.expired() });
const can = (capability) => Boolean(me?.capabilities.includes(capability));

const VIEWS = [
  { name: "keys", label: "Keys", render: keysView },
  { name: "members", label: "Members", render: membersView },
  { name: "usage", label: "Usage", render: usageView },
  { name: "audit", label: "Audit", render: auditView },
  { name: "calls", label: "Calls", render: callsView },
  { name: "webhooks", label: "Webhooks", render: webhooksView, needs: "webhooks" },
];

// The context every view gets; read afresh at each render, so a change of role shows at once.
const ctx = {
  client,
  get me() { return me; },
  get caps() {
    const keys = can("keys");
    return { tenants: false, createKeys: keys && me.tenant.api_enabled && !me.tenant.disabled, manageKeys: keys,
      chooseOwner: false, rateLimit: false, manageWebhooks: can("webhooks"),
      // only its owner rotates a person's key (the API refuses anyone else); the operator's keys, any owner or admin
      rotatable: (key) => !key.user_id || key.user_id === me.user.id };
  },
  tenants: async () => {
    const active = await client.get("/keys", { status: "active", per_page: 1 });
    return [{ ...me.tenant, active_keys: active.meta.total }];
  },
  users: async () => (await client.get("/users")).data,
};

function notices() {
  const out = [];
  if (me && (!me.tenant.api_enabled || me.tenant.disabled)) {
    out.push(h("div", { class: "banner", role: "status", id: "notice-api" }, h("strong", {}, "API access is not enabled"),
      `${me.tenant.name}'s keys do not work yet and no key can be created. Your operator enables API access.`));
  } else if (me && !me.tenant.write_enabled) {
    out.push(h("div", { class: "banner", role: "status", id: "notice-write" }, h("strong", {}, "Write access is not enabled"),
      "Keys may only read (GET, HEAD, OPTIONS); requests that write are refused until your operator enables it."));
  }
  $("notices").replaceChildren(...out);
  const who = $("who");
  who.hidden = !me;
  who.textContent = me ? `${me.user.email} · ${me.role} · ${me.tenant.name}` : "";
}

// A link opened in a tab that has the page already changes only the fragment. Registered before
// the shell's own listener, so the link is read before the shell takes the fragment for a view;
// a link is someone's own, so whoever was signed in here is signed out first.
addEventListener("hashchange", (event) => {
  const link = linkFromFragment();
  if (!link) return;
  event.stopImmediatePropagation();
  if (me) shell.signOut();
  openLink(link);
});

const shell = mountShell({
  title: "API access",
  views: VIEWS,
  session: {
    isSignedIn: () => Boolean(me),
    signOut: () => {
      if (me) client.delete("/session").catch(() => {}); // ends it server-side, on every instance
      me = null;
      notices();
    },
    prompt(message) {
      $("sign-in-error").textContent = message;
      if (!$("link-view").hidden || !$("forgot-view").hidden) $("sign-in-view").hidden = true;
      else $("email").focus();
    },
  },
  ctx,
});

function navFor(person) {
  for (const v of VIEWS) {
    const link = $("nav").querySelector(`a[data-view="${v.name}"]`);
    if (link) link.parentElement.hidden = Boolean(v.needs) && !person?.capabilities.includes(v.needs);
  }
}

async function signedIn(answer) {
  me = answer;
  navFor(me);
  notices();
  await shell.signedIn();
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = event.submitter || $("sign-in").querySelector("button");
  $("sign-in-error").textContent = "";
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) { $("sign-in-error").textContent = "Enter your email and password."; return; }
  submit.disabled = true;
  try {
    const answer = await createClient({ base: BASE, auth: cookieAuth(() => "") }).post("/session", { email, password });
    $("password").value = "";
    $("sign-in-note").textContent = "";
    await signedIn(answer);
  } catch (err) {
    $("sign-in-error").textContent = err.status === 401 ? "Wrong email or password."
      : err.status === 429 ? "Too many attempts. Wait a few minutes, then try again." : String(err.message || err);
  } finally {
    submit.disabled = false;
  }
});
$("sign-in").querySelector("button[type=submit]").disabled = false;

// Invitation and reset links: the secret is read from the fragment once and leaves the address bar.
function linkFromFragment() {
  const m = /^#(invitation|reset)=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  return { kind: m[1], token: m[2] };
}

function showOnly(id) {
  for (const section of ["sign-in-view", "link-view", "forgot-view"]) $(section).hidden = section !== id;
}

async function openLink({ kind, token }) {
  const open = createClient({ base: BASE, auth: cookieAuth(() => "") });
  const path = kind === "invitation" ? `/invitations/${segment(token)}` : `/password-reset/${segment(token)}`;
  showOnly("link-view");
  $("link-submit").disabled = true; // until its handler is set, below
  $("link-name-field").hidden = kind !== "invitation";
  $("link-title").textContent = kind === "invitation" ? "Accept your invitation" : "Choose a new password";
  $("link-submit").textContent = kind === "invitation" ? "Accept and set password" : "Set new password";
  let info;
  try {
    info = await open.get(path);
  } catch (err) {
    $("link-intro").textContent = "";
    $("link-form").replaceChildren(h("p", { class: "error", role: "alert" },
      err.status === 404 || err.status === 410 || err.status === 409 ? "This link is not valid any more: it was used already or has expired. Ask for a new one."
        : String(err.message || err)), h("p", {}, h("a", { href: "#", onclick: backToSignIn }, "Go to sign in")));
    return;
  }
  $("link-intro").textContent = kind === "invitation"
    ? `You are invited to ${info.tenant.name} as ${info.role}, as ${info.email}.` : `For ${info.email}.`;
  if (kind === "invitation" && info.name) $("link-name").value = info.name;
  $("link-title").focus();
  $("link-form").onsubmit = async (event) => {
    event.preventDefault();
    const password = $("link-password").value;
    $("link-error").textContent = "";
    if (password.length < 12) { $("link-error").textContent = "The password needs at least 12 characters."; return; }
    if (password !== $("link-confirm").value) { $("link-error").textContent = "The two passwords differ."; return; }
    const body = { password };
    if (kind === "invitation" && $("link-name").value.trim()) body.name = $("link-name").value.trim();
    $("link-submit").disabled = true;
    try {
      await open.post(kind === "invitation" ? `${path}/accept` : path, body);
    } catch (err) {
      $("link-error").textContent = err instanceof ApiError && err.details.length ? err.details.map((d) => d.issue).join("; ")
        : String(err.message || err);
      return;
    } finally {
      $("link-submit").disabled = false;
    }
    $("link-password").value = $("link-confirm").value = "";
    $("email").value = info.email;
    $("sign-in-note").textContent = kind === "invitation" ? "Your account is ready. Sign in with your new password."
      : "Your password is changed. Sign in with it.";
    backToSignIn();
  };
  $("link-submit").disabled = false;
}

// A view in the fragment (`#/keys?key=...`, a sunset link) stays: it opens after sign-in.
function backToSignIn(event) {
  event?.preventDefault();
  showOnly("sign-in-view");
  if (location.hash && !location.hash.startsWith("#/")) history.replaceState(history.state, "", location.pathname + location.search);
  ($("email").value ? $("password") : $("email")).focus();
}

$("forgot-link").addEventListener("click", (event) => {
  event.preventDefault();
  $("forgot-email").value = $("email").value;
  showOnly("forgot-view");
  $("forgot-title").focus();
});
$("forgot-back").addEventListener("click", backToSignIn);
$("forgot-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("forgot-email").value.trim();
  if (!email) { $("forgot-status").textContent = "Enter your email."; return; }
  try {
    await createClient({ base: BASE, auth: cookieAuth(() => "") }).post("/password-reset", { email });
    $("forgot-status").textContent = "If this email signs in here, a link to reset its password is on its way.";
  } catch (err) {
    $("forgot-status").textContent = err.status === 429 ? "Too many requests. Try again later." : String(err.message || err);
  }
});
$("forgot-form").querySelector("button[type=submit]").disabled = false;

async function start() {
  const link = linkFromFragment();
  if (link) { await openLink(link); return; }
  try { // a session from before (the cookie is HttpOnly: only asking tells)
    const answer = await createClient({ base: BASE, auth: cookieAuth(() => "") }).get("/me");
    await signedIn(answer);
  } catch {
    shell.render();
  }
}

start();
