/* The operator's console: the "admin mode" of the shared components in this folder.
 *
 * Everything else here is mode-free. A view is `render(root, ctx)`; ctx carries
 *   client     createClient({ base, auth }) from api.js: the API root and how calls authenticate
 *   caps       { tenants, createKeys, manageKeys, chooseOwner, manageWebhooks, rateLimit, rotatable? }: what this
 *              person may see and do (rateLimit false: the create dialog leaves out the per-key rate limit;
 *              rotatable(key), where given: whether Rotate is offered on that key, else on every key)
 *   tenants()  the tenants keys may be filtered by / created in; users(tenantId) their users
 * and the shell adds params (from the URL), navigate() and refresh().
 *
 * A second mode, the tenant portal, mounts the same components from its own page and module:
 *   const client = createClient({ base: "/portal/api", auth: cookieAuth(() => me.csrf_token),
 *                                 onUnauthorized: () => shell.expired() });
 *   const writer = ["owner", "admin"].includes(me.user.role);
 *   const shell = mountShell({ title: "API access", session: ...email and password...,
 *     views: [{ name: "keys", label: "Keys", render: keysView }, ...usage, audit, calls, its own members view],
 *     ctx: { client, caps: { tenants: false, createKeys: writer, manageKeys: writer, chooseOwner: false },
 *            tenants: async () => [me.tenant], users: async () => (await client.get("/users")).data } });
 * Its page keeps this page's skeleton (#nav, #sign-out, #sign-in-view, #view) and stylesheet. The portal's
 * page and mode are gateway/portal/page/ (index.html, portal.js, members.js); it serves these files
 * under <portal.path>/console/.
 */
import { bearerAuth, createClient } from "./api.js";
import { auditView, callsView } from "./records.js";
import { keysView } from "./keys.js";
import { mountShell } from "./shell.js";
import { tenantsView } from "./tenants.js";
import { usageView } from "./usage.js";
import { webhooksView } from "./webhooks.js";

const TOKEN = "gateway.adminToken"; // sessionStorage only: gone when the tab closes, never in a URL
const token = {
  get: () => sessionStorage.getItem(TOKEN),
  set: (value) => sessionStorage.setItem(TOKEN, value),
  clear: () => sessionStorage.removeItem(TOKEN),
};
const $ = (id) => document.getElementById(id);

const client = createClient({ base: "/admin", auth: bearerAuth(token.get), onUnauthorized: () => shell.expired() });

const shell = mountShell({
  title: "gateway console",
  views: [
    { name: "keys", label: "Keys", render: keysView },
    { name: "tenants", label: "Tenants", render: tenantsView },
    { name: "usage", label: "Usage", render: usageView },
    { name: "audit", label: "Audit", render: auditView },
    { name: "calls", label: "Calls", render: callsView },
    { name: "webhooks", label: "Webhooks", render: webhooksView },
  ],
  session: {
    isSignedIn: () => Boolean(token.get()),
    signOut: () => token.clear(),
    prompt(message) {
      $("sign-in-error").textContent = message;
      $("token").focus();
    },
  },
  ctx: {
    client,
    caps: { tenants: true, createKeys: true, manageKeys: true, chooseOwner: true, manageWebhooks: true },
    tenants: async () => (await client.get("/tenants", { per_page: 100, sort: "id" })).data,
    users: async (tenantId) => (await client.get(`/tenants/${encodeURIComponent(tenantId)}/users`)).data,
  },
});

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const candidate = $("token").value;
  const submit = event.submitter || $("sign-in").querySelector("button");
  $("sign-in-error").textContent = "";
  if (!candidate) { $("sign-in-error").textContent = "Enter the admin token."; $("token").focus(); return; }
  submit.disabled = true;
  try {
    await createClient({ base: "/admin", auth: bearerAuth(() => candidate) }).get("/version");
  } catch (err) {
    $("sign-in-error").textContent = err.status === 401 ? "That token is not valid." : String(err.message || err);
    return;
  } finally {
    submit.disabled = false;
  }
  token.set(candidate);
  $("token").value = "";
  await shell.signedIn();
});

shell.render();
