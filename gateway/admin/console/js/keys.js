// The keys view: the table, the create dialog, rotate and revoke, the secret shown once.
import { api, ApiError, query } from "./api.js";
import { button, closeDialog, h, openDialog } from "./dom.js";
import { date, expiry, relative } from "./format.js";

const COLUMNS = [
  ["name", "Name", "name"], ["masked", "Secret", "last4"], ["last4", "Last 4", "last4"], ["scope", "Scope", "scope"],
  ["environment", "Env", "environment"], ["tenant_id", "Tenant", "tenant_id"], ["created_at", "Created", "created_at"],
  ["last_used_at", "Last used", "last_used_at"], ["expires_at", "Expires", "expires_at"], ["status", "Status", "status"],
];
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const state = { page: 1, perPage: 25, sort: "-created_at", tenant: "", status: "", tenants: [] };

export async function keysView(root) {
  state.tenants = (await api("GET", "/admin/tenants?per_page=100&sort=id")).data;
  root.replaceChildren(h("h2", {}, "API keys"), toolbar(), h("div", { class: "table-wrap", id: "keys-table" }),
    h("div", { class: "pager", id: "keys-pager" }));
  await refresh();
}

function tenantInfo(id) {
  return state.tenants.find((t) => t.id === id);
}

function atMax(id) {
  const t = tenantInfo(id);
  return t && t.active_keys >= t.max_keys;
}

function toolbar() {
  const tenant = h("select", { id: "filter-tenant", onchange: (e) => { state.tenant = e.target.value; state.page = 1; refresh(); } },
    h("option", { value: "" }, "All tenants"), state.tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
  tenant.value = state.tenant;
  const status = h("select", { id: "filter-status", onchange: (e) => { state.status = e.target.value; state.page = 1; refresh(); } },
    ["", "active", "expired", "revoked"].map((s) => h("option", { value: s }, s || "Any status")));
  status.value = state.status;
  return h("div", { class: "toolbar" },
    h("div", {}, h("label", { for: "filter-tenant" }, "Tenant"), tenant),
    h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
    h("span", { id: "create-wrap" }, createButton()));
}

function createButton() {
  const full = state.tenant && atMax(state.tenant);
  const t = tenantInfo(state.tenant);
  return button("New key", () => createDialog(), {
    id: "create-key", class: "primary", disabled: full || state.tenants.length === 0,
    title: full ? `${t.name} already has ${t.active_keys} of ${t.max_keys} active keys; revoke one first` : null,
  });
}

async function refresh() {
  const data = await api("GET", `/admin/keys${query({ page: state.page, per_page: state.perPage, sort: state.sort,
    tenant_id: state.tenant, status: state.status })}`);
  const sortField = state.sort.replace(/^-/, "");
  const head = h("tr", {}, COLUMNS.map(([field, label, sortBy]) => {
    const active = sortBy === sortField && (field !== "masked");
    return h("th", { scope: "col", "aria-sort": active ? (state.sort.startsWith("-") ? "descending" : "ascending") : null },
      button(label, () => { state.sort = active && !state.sort.startsWith("-") ? `-${sortBy}` : sortBy; state.page = 1; refresh(); },
        { "data-sort": sortBy }));
  }), h("th", { scope: "col" }, "Actions"));
  const rows = data.data.map(row);
  const table = h("table", { id: "keys" }, h("thead", {}, head), h("tbody", {}, rows.length ? rows :
    h("tr", {}, h("td", { colspan: COLUMNS.length + 1, class: "muted" }, "No keys"))));
  document.getElementById("keys-table").replaceChildren(table);
  const meta = data.meta;
  document.getElementById("keys-pager").replaceChildren(
    button("Previous", () => { state.page -= 1; refresh(); }, { disabled: meta.page <= 1 }),
    h("span", {}, `Page ${meta.page} of ${Math.max(1, meta.total_pages)} · ${meta.total} keys`),
    button("Next", () => { state.page += 1; refresh(); }, { disabled: meta.page >= meta.total_pages }));
  document.getElementById("create-wrap").replaceChildren(createButton());
}

function row(key) {
  const exp = expiry(key);
  const mark = exp.mark ? h("span", { class: exp.mark.cls, title: exp.mark.title, "aria-label": exp.mark.title,
    "data-warning": exp.mark.cls }, " ⚠") : null;
  const live = key.status === "active";
  return h("tr", { "data-key-id": key.id },
    h("td", {}, key.name), h("td", { class: "masked" }, key.masked), h("td", { class: "masked" }, key.last4),
    h("td", {}, key.scope), h("td", {}, key.environment), h("td", {}, key.tenant_id),
    h("td", { title: date(key.created_at) }, relative(key.created_at)),
    h("td", { title: date(key.last_used_at) }, key.last_used_at ? relative(key.last_used_at) : "never"),
    h("td", { class: "expiry", title: key.expires_at ? date(key.expires_at) : "no expiry" }, exp.text, mark),
    h("td", { class: `status-${key.status}` }, key.status),
    h("td", { class: "actions" },
      button("Rotate", () => confirmRotate(key), { disabled: !live, "aria-label": `Rotate ${key.name}` }),
      button("Revoke", () => confirmRevoke(key), { class: "danger", disabled: key.status === "revoked",
        "aria-label": `Revoke ${key.name}` })));
}

function field(id, label, control, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    hint ? h("p", { class: "muted" }, hint) : null, h("p", { class: "field-error", id: `${id}-error`, role: "alert" }));
}

function permissionRow() {
  const methods = h("fieldset", {}, h("legend", { class: "muted" }, "Methods"),
    METHODS.map((m) => h("label", {}, h("input", { type: "checkbox", value: m, checked: m === "GET" }), ` ${m}`)));
  const path = h("input", { type: "text", placeholder: "/api/v1/items/*", "aria-label": "Path", class: "perm-path" });
  const line = h("div", { class: "perm" }, methods, path, button("Remove", () => line.remove()));
  return line;
}

function createDialog() {
  const tenant = h("select", { id: "new-tenant", name: "tenant_id" },
    state.tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
  if (state.tenant) tenant.value = state.tenant;
  const scope = h("select", { id: "new-scope", name: "scope" },
    ["read_write", "read_only", "custom"].map((s) => h("option", { value: s }, s)));
  const perms = h("div", { id: "new-permissions", hidden: true }, h("p", { class: "muted" }, "Permissions"),
    h("div", { id: "perm-rows" }, permissionRow()), button("Add permission", () => document.getElementById("perm-rows").append(permissionRow())),
    h("p", { class: "field-error", id: "new-permissions-error", role: "alert" }));
  scope.addEventListener("change", () => { perms.hidden = scope.value !== "custom"; });
  const name = h("input", { id: "new-name", name: "name", required: true, maxlength: 256, autocomplete: "off" });
  const days = h("input", { id: "new-validity", name: "validity_days", type: "number", min: 10, max: 365, value: 90 });
  const env = h("select", { id: "new-environment", name: "environment" }, ["live", "test"].map((e) => h("option", { value: e }, e)));
  const submit = button("Create", () => create(), { id: "create-submit", class: "primary" });
  const reflectMax = () => {
    const full = atMax(tenant.value);
    const t = tenantInfo(tenant.value);
    submit.disabled = Boolean(full);
    submit.title = full ? `${t.name} already has ${t.active_keys} of ${t.max_keys} active keys; revoke one first` : "";
  };
  tenant.addEventListener("change", reflectMax);
  reflectMax();
  openDialog("New API key", [
    field("new-name", "Name", name, "1–256 characters, none of \\ / [ ] \" ! @ # $ % ^ & ( ) = { } ;"),
    field("new-tenant", "Tenant", tenant), field("new-scope", "Scope", scope), perms,
    field("new-validity", "Valid for (days)", days, "10 to 365"), field("new-environment", "Environment", env),
    h("p", { class: "error", id: "create-error", role: "alert" }),
  ], [button("Cancel", () => closeDialog()), submit]);

  async function create() {
    for (const el of document.querySelectorAll("#dialog .field-error, #create-error")) el.textContent = "";
    const body = { name: name.value, tenant_id: tenant.value, scope: scope.value, environment: env.value,
      validity_days: Number(days.value) };
    if (scope.value === "custom") {
      body.permissions = [...document.querySelectorAll("#perm-rows .perm")].map((line) => ({
        methods: [...line.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value),
        path: line.querySelector(".perm-path").value,
      }));
    }
    try {
      const made = await api("POST", "/admin/keys", body);
      await reloadTenants();
      showSecret(made, "Key created");
    } catch (err) {
      showErrors(err);
    }
  }
}

function showErrors(err) {
  if (!(err instanceof ApiError)) throw err;
  let placed = false;
  for (const d of err.details) {
    const top = String(d.field || "").split(/[.[]/)[0];
    const id = { name: "new-name", tenant_id: "new-tenant", scope: "new-scope", validity_days: "new-validity",
      environment: "new-environment", permissions: "new-permissions" }[top];
    const slot = id && document.getElementById(`${id}-error`);
    if (slot) { slot.textContent = d.issue; placed = true; }
  }
  if (!placed) document.getElementById("create-error").textContent = err.message;
}

async function reloadTenants() {
  state.tenants = (await api("GET", "/admin/tenants?per_page=100&sort=id")).data;
}

function showSecret(key, title) {
  const secret = h("code", { id: "new-secret" }, key.key);
  const copied = h("span", { class: "muted", role: "status", id: "copy-status" });
  const copy = button("Copy", async () => {
    try {
      await navigator.clipboard.writeText(key.key);
    } catch {
      const range = document.createRange();
      range.selectNodeContents(secret);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand("copy");
    }
    copied.textContent = "Copied";
  }, { id: "copy-secret" });
  const done = button("Done", () => closeDialog(), { class: "primary", id: "secret-done" });
  const d = openDialog(title, [
    h("p", { class: "notice" }, "Copy this secret now. You will not see it again: the gateway keeps only a hash."),
    h("p", {}, `${key.name} · ${key.tenant_id} · ${key.scope} · ${key.environment}`),
    h("div", { class: "secret" }, secret, copy), copied,
  ], [done]);
  d.addEventListener("close", () => refresh(), { once: true });
}

function confirmRevoke(key) {
  openDialog(`Revoke ${key.name}?`, [
    h("p", {}, `Every request made with ${key.masked}…${key.last4} will get 401 from now on, on every gateway instance. This cannot be undone.`),
  ], [button("Cancel", () => closeDialog()), button("Revoke", async () => {
    await api("POST", `/admin/keys/${encodeURIComponent(key.id)}/revoke`);
    await reloadTenants();
    closeDialog();
    await refresh();
  }, { class: "danger", id: "confirm-revoke" })]);
}

function confirmRotate(key) {
  openDialog(`Rotate ${key.name}?`, [
    h("p", {}, `A new secret replaces ${key.masked}…${key.last4}. The current secret stops working at once: clients still using it get 401 until they switch to the new one.`),
  ], [button("Cancel", () => closeDialog()), button("Rotate", async () => {
    const made = await api("POST", `/admin/keys/${encodeURIComponent(key.id)}/rotate`);
    showSecret(made, "Key rotated");
  }, { class: "primary", id: "confirm-rotate" })]);
}
