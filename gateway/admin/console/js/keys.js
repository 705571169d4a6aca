// The keys view: filters and order from the URL, the table (cards on a phone), the pager, and the
// create / rotate / revoke actions where the mode's capabilities allow them. `#/keys?key=<id>` is
// one key alone (the `Link: rel="sunset"` of a key about to expire points there, contract section 10).
import { ApiError, segment } from "./api.js";
import { button, h, heading, truncated } from "./dom.js";
import { date, expiry, maskedSecret, relative } from "./format.js";
import { confirmRevoke, confirmRotate, createKeyDialog, fullTenant } from "./key-dialogs.js";
import { href, intParam, oneOf } from "./router.js";
import { dataTable, sortSelect } from "./table.js";

const STATUSES = ["active", "expired", "revoked"];
const PER_PAGE = 25;

function columns(ctx) {
  const { caps } = ctx;
  const cols = [
    { label: "Name", sort: "name", cls: "cell-name", cell: (k) => h("a", { href: href("usage", { key: k.id }), class: "truncate",
      title: k.name }, k.name) },
    { label: "Secret", sort: "last4", cls: "mono", cell: (k) => maskedSecret(k) },
    { label: "Scope", sort: "scope", cell: (k) => k.scope },
    { label: "Env", sort: "environment", cell: (k) => k.environment },
    caps.tenants ? { label: "Tenant", sort: "tenant_id", cell: (k) => truncated(k.tenant_id, "truncate short") } : null,
    { label: "Created", sort: "created_at", cell: (k) => relative(k.created_at), title: (k) => date(k.created_at) },
    { label: "Last used", sort: "last_used_at", cell: (k) => (k.last_used_at ? relative(k.last_used_at) : "never"),
      title: (k) => date(k.last_used_at) || null },
    { label: "Expires", sort: "expires_at", cls: "expiry", cell: expiryCell, title: (k) => expiry(k).title },
    { label: "Status", sort: "status", cell: statusCell },
  ];
  if (caps.manageKeys) cols.push({ label: "Actions", cls: "cell-actions", cell: (k) => actions(ctx, k) });
  return cols.filter(Boolean);
}

// The status, and its marks: unusual usage the gateway saw lately (its usage view says what), a
// leak it saw (README: Leaked keys), and a canary key (planted to be found: any use is an alarm).
function statusCell(key) {
  const anomaly = key.anomaly ? h("a", { class: "mark warn", href: href("usage", { key: key.id }), "data-anomaly": key.anomaly.kind,
    title: `Unusual usage: ${key.anomaly.message}`, "aria-label": `Unusual usage: ${key.anomaly.message}` }, "⚠") : null;
  const leak = key.exposure ? exposedMark(key.exposure) : null;
  const canary = key.canary ? h("span", { class: "badge badge-canary", "data-canary": "true", title: CANARY,
    "aria-label": CANARY }, "canary") : null;
  return h("span", {}, h("span", { class: `status status-${key.status}` }, key.status), anomaly, leak, canary);
}

const CANARY = "Canary key: planted to be found; every use is refused and raises the alarm";
const LEAKED = { query_string: "sent in a query string", plain_http: "sent over plain HTTP",
  secret_scanning: "reported by a secret scanner" };

function exposedMark(exposure) {
  const where = LEAKED[exposure.reason] || exposure.reason;
  const text = `Exposed: ${where}, ${date(exposure.at)}${exposure.url ? ` (${exposure.url})` : ""}`;
  return h("span", { class: "badge badge-exposed", "data-exposed": exposure.reason, title: text, "aria-label": text },
    "exposed");
}

function expiryCell(key) {
  const exp = expiry(key);
  const mark = exp.mark ? h("span", { class: `mark ${exp.mark.cls}`, title: exp.mark.title, role: "img",
    "aria-label": exp.mark.title, "data-warning": exp.mark.cls }, "⚠") : null;
  return h("span", { class: `expiry-text${key.status === "revoked" ? " status-revoked" : ""}` }, exp.text, mark);
}

// Rotate is offered where the mode's `rotatable` allows (the portal: the person's own keys and the
// operator's, never someone else's: its new secret would act as that person); revoke on any key.
const NOT_YOURS = "Only the key's owner can rotate it; you can revoke it";

function actions(ctx, key) {
  const rotatable = ctx.caps.rotatable ? ctx.caps.rotatable(key) : true;
  return h("div", { class: "row-actions" },
    button("Rotate", () => confirmRotate(ctx, key), { disabled: key.status !== "active" || !rotatable,
      title: rotatable ? null : NOT_YOURS, "data-not-yours": !rotatable, "aria-label": `Rotate ${key.name}` }),
    button("Revoke", () => confirmRevoke(ctx, key), { class: "danger", disabled: key.status === "revoked",
      "aria-label": `Revoke ${key.name}` }));
}

export async function keysView(root, ctx) {
  const { client, caps, params } = ctx;
  const cols = columns(ctx);
  const sorts = cols.filter((c) => c.sort).flatMap((c) => [c.sort, `-${c.sort}`]);
  if (params.key) { await oneKey(root, ctx, cols, String(params.key)); return; }
  const tenants = await ctx.tenants();
  const state = {
    page: intParam(params.page, 1),
    sort: oneOf(params.sort, sorts, "-created_at"),
    status: oneOf(params.status, STATUSES, ""),
    tenant: caps.tenants && tenants.some((t) => t.id === params.tenant) ? params.tenant : "",
  };
  const set = (changes) => ctx.navigate(urlParams({ ...state, page: 1, ...changes }));
  const data = await client.get("/keys", { page: state.page, per_page: PER_PAGE, sort: state.sort,
    tenant_id: state.tenant, status: state.status });
  const meta = data.meta;
  if (!data.data.length && state.page > meta.total_pages) { // e.g. the last key of the last page revoked
    ctx.navigate(urlParams({ ...state, page: meta.total_pages }), { replace: true });
    return;
  }
  root.replaceChildren(
    heading("API keys"),
    toolbar(ctx, state, tenants, set, cols),
    dataTable({ id: "keys", caption: "API keys", columns: cols, rows: data.data, sort: state.sort,
      onSort: (sort) => set({ sort }), rowAttrs: (k) => ({ "data-key-id": k.id }),
      empty: state.tenant || state.status ? "No keys match these filters" : "No keys yet" }),
    h("nav", { class: "pager", "aria-label": "Pages" },
      button("Previous", () => set({ page: state.page - 1 }), { disabled: meta.page <= 1 }),
      h("span", {}, `Page ${meta.page} of ${Math.max(1, meta.total_pages)} · ${meta.total} key${meta.total === 1 ? "" : "s"}`),
      button("Next", () => set({ page: state.page + 1 }), { disabled: meta.page >= meta.total_pages })));
}

// One key, marked, with its actions; a key that is not there (or another tenant's) says so.
async function oneKey(root, ctx, cols, id) {
  let key = null;
  try {
    key = await ctx.client.get(`/keys/${segment(id)}`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  root.replaceChildren(
    heading("API keys"),
    h("p", { class: "notice", role: "status", id: "one-key" },
      key ? `Showing one key: ${key.name}. ` : "This key is not here: it does not exist or is not yours to see. ",
      h("a", { href: href("keys") }, "Show all keys")),
    dataTable({ id: "keys", caption: "API key", columns: cols, rows: key ? [key] : [],
      rowAttrs: (k) => ({ "data-key-id": k.id, class: "selected" }), empty: "No such key" }));
}

// Defaults stay out of the URL, so `#/keys` is the plain list.
function urlParams({ page, sort, status, tenant }) {
  return { tenant, status, sort: sort === "-created_at" ? "" : sort, page: page > 1 ? page : "" };
}

function toolbar(ctx, state, tenants, set, cols) {
  const parts = [];
  if (ctx.caps.tenants) {
    const tenant = h("select", { id: "filter-tenant", onchange: (e) => set({ tenant: e.target.value }) },
      h("option", { value: "" }, "All tenants"), tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
    tenant.value = state.tenant;
    parts.push(h("div", { class: "filter" }, h("label", { for: "filter-tenant" }, "Tenant"), tenant));
  }
  const status = h("select", { id: "filter-status", onchange: (e) => set({ status: e.target.value }) },
    ["", ...STATUSES].map((s) => h("option", { value: s }, s || "Any status")));
  status.value = state.status;
  parts.push(h("div", { class: "filter" }, h("label", { for: "filter-status" }, "Status"), status));
  parts.push(sortSelect({ id: "sort-keys", columns: cols, sort: state.sort, onSort: (sort) => set({ sort }) }));
  if (ctx.caps.createKeys) parts.push(createButton(ctx, state, tenants));
  return h("div", { class: "toolbar" }, parts);
}

function createButton(ctx, state, tenants) {
  const full = state.tenant ? fullTenant(tenants.find((t) => t.id === state.tenant)) : null;
  const why = full || (tenants.length === 0 ? "Create a tenant first." : null);
  return h("div", { class: "toolbar-end" }, button("New key", () => createKeyDialog(ctx, tenants, state.tenant), {
    id: "create-key", class: "primary", disabled: Boolean(why), title: why, "aria-describedby": why ? "create-key-why" : null,
  }), why ? h("span", { class: "hint", id: "create-key-why" }, why) : null);
}
