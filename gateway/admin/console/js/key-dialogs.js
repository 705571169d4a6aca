// Creating a key (every option the API takes), the secret shown once, rotate and revoke with a
// confirmation. The API's 422 details are shown beside the fields they name.
import { ApiError, segment } from "./api.js";
import { busy, button, closeDialog, dialogError, field, h, openDialog } from "./dom.js";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const keyPath = (key, action) => `/keys/${segment(key.id)}/${action}`;

// Why a tenant cannot take another key, or null.
export function fullTenant(t) {
  if (!t || t.max_keys === undefined || t.active_keys < t.max_keys) return null;
  return `${t.name} already has ${t.active_keys} of ${t.max_keys} active keys; revoke one first.`;
}

let rowCount = 0;

function permissionRow() {
  const n = ++rowCount;
  const methods = h("fieldset", { class: "methods" }, h("legend", {}, "Methods"),
    METHODS.map((m) => h("label", { class: "check" }, h("input", { type: "checkbox", value: m, checked: m === "GET" }), m)));
  const path = h("input", { id: `perm-path-${n}`, type: "text", class: "perm-path", placeholder: "/api/v1/items/*",
    autocomplete: "off", spellcheck: "false" });
  const line = h("div", { class: "row-group perm" }, methods,
    h("div", { class: "inline-field grow" }, h("label", { for: `perm-path-${n}` }, "Path"), path),
    button("Remove", () => line.remove(), { "aria-label": "Remove this permission" }),
    h("p", { class: "field-error", role: "alert" }));
  return line;
}

function resourceRow() {
  const n = ++rowCount;
  const name = h("input", { id: `res-name-${n}`, class: "res-name", type: "text", placeholder: "location", autocomplete: "off", spellcheck: "false" });
  const values = h("input", { id: `res-values-${n}`, class: "res-values", type: "text", placeholder: "loc_001, loc_002",
    autocomplete: "off", spellcheck: "false" });
  const line = h("div", { class: "row-group resource" },
    h("div", { class: "inline-field" }, h("label", { for: `res-name-${n}` }, "Route parameter"), name),
    h("div", { class: "inline-field grow" }, h("label", { for: `res-values-${n}` }, "Values, comma-separated"), values),
    button("Remove", () => line.remove(), { "aria-label": "Remove this resource limit" }),
    h("p", { class: "field-error", role: "alert" }));
  return line;
}

function userOption(u) {
  return h("option", { value: u.id }, `${u.name}${u.email ? ` <${u.email}>` : ""} · ${u.role}`);
}

// tenants: what the mode offers (the operator: all; the portal: its own). `preset`: the filter's tenant.
export function createKeyDialog(ctx, tenants, preset) {
  const { caps } = ctx;
  const tenant = h("select", { id: "new-tenant" }, tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
  if (preset) tenant.value = preset;
  const owner = h("select", { id: "new-owner" }, h("option", { value: "" }, "No owner (a key of the tenant)"));
  const name = h("input", { id: "new-name", type: "text", required: true, maxlength: 256, autocomplete: "off" });
  const scope = h("select", { id: "new-scope" }, [["read_write", "read_write: every method"], ["read_only", "read_only: GET, HEAD, OPTIONS"],
    ["custom", "custom: the permissions below"]].map(([v, text]) => h("option", { value: v }, text)));
  const permRows = h("div", { class: "rows" }, permissionRow());
  const perms = h("fieldset", { id: "new-permissions", class: "group", hidden: true, "aria-describedby": "new-permissions-error" },
    h("legend", {}, "Permissions"), permRows,
    button("Add permission", () => permRows.append(permissionRow())),
    h("p", { class: "field-error", id: "new-permissions-error", role: "alert" }));
  scope.addEventListener("change", () => { perms.hidden = scope.value !== "custom"; });
  const days = h("input", { id: "new-validity", type: "number", inputmode: "numeric", min: 1, step: 1, placeholder: "the default" });
  const never = h("input", { id: "new-never", type: "checkbox" });
  const until = h("input", { id: "new-expires-at", type: "datetime-local", step: 60 });
  const reflectExpiry = () => {
    days.disabled = never.checked || until.value !== "";
    until.disabled = never.checked;
  };
  never.addEventListener("change", reflectExpiry);
  until.addEventListener("input", reflectExpiry);
  const env = h("select", { id: "new-environment" }, ["live", "test"].map((e) => h("option", { value: e }, e)));
  const rate = h("input", { id: "new-rate", type: "number", inputmode: "numeric", min: 1, step: 1, placeholder: "the plan's limit" });
  const resRows = h("div", { class: "rows" });
  const resources = h("fieldset", { id: "new-resources", class: "group", "aria-describedby": "new-resources-hint new-resources-error" },
    h("legend", {}, "Resources (optional)"),
    h("p", { class: "hint", id: "new-resources-hint" },
      "Limit the key to values of a route parameter, e.g. location: loc_001. Other values get 403."),
    resRows, button("Add resource limit", () => resRows.append(resourceRow()), { id: "add-resource" }),
    h("p", { class: "field-error", id: "new-resources-error", role: "alert" }));
  const canary = h("input", { id: "new-canary", type: "checkbox", "aria-describedby": "new-canary-hint new-canary-error" });
  const submit = h("button", { type: "submit", id: "create-submit", class: "primary" }, "Create");

  const reflectTenant = async () => {
    const full = fullTenant(tenants.find((t) => t.id === tenant.value));
    submit.disabled = Boolean(full);
    const slot = document.getElementById("new-tenant-error");
    if (slot) slot.textContent = full || "";
    if (!caps.chooseOwner) return;
    const wanted = tenant.value;
    let users = [];
    try {
      users = (await ctx.users(wanted)).filter((u) => !u.disabled);
    } catch (err) {
      document.getElementById("new-owner-error").textContent = String(err.message || err);
    }
    if (tenant.value !== wanted) return; // changed again meanwhile
    owner.replaceChildren(owner.options[0], ...users.map(userOption));
  };
  tenant.addEventListener("change", reflectTenant);

  openDialog({
    title: "New API key",
    body: [
      field("new-name", "Name", name, "1–256 characters, none of \\ / [ ] \" ! @ # $ % ^ & ( ) = { } ;"),
      caps.tenants ? field("new-tenant", "Tenant", tenant) : null,
      caps.chooseOwner ? field("new-owner", "Owner", owner, "A key with an owner never allows more than the owner's role.") : null,
      field("new-scope", "Scope", scope), perms,
      expiryField(days, never),
      field("new-expires-at", "Or expires at (your local time)", until, "Instead of days: a moment in the future."),
      h("div", { class: "pair" },
        field("new-environment", "Environment", env),
        caps.rateLimit === false ? null : field("new-rate", "Rate limit (requests per minute)", rate)),
      resources,
      h("div", { class: "field" }, h("label", { class: "check" }, canary, "Canary key"),
        h("p", { class: "hint", id: "new-canary-hint" },
          "A key to plant where a thief would look: it never works, and every use raises an alarm."),
        h("p", { class: "field-error", id: "new-canary-error", role: "alert" })),
    ],
    actions: [button("Cancel", () => closeDialog()), submit],
    onSubmit: () => busy(submit, create),
  });
  reflectTenant();

  async function create() {
    for (const el of document.querySelectorAll("#dialog .field-error")) el.textContent = "";
    const body = { name: name.value, scope: scope.value, environment: env.value };
    if (caps.tenants) body.tenant_id = tenant.value;
    if (caps.chooseOwner && owner.value) body.user_id = owner.value;
    if (never.checked) body.validity_days = null;
    else if (until.value !== "") body.expires_at = localToUtc(until.value);
    else if (days.value.trim() !== "") body.validity_days = numberOrText(days.value);
    if (caps.rateLimit !== false && rate.value.trim() !== "") body.rate_limit_per_minute = numberOrText(rate.value);
    if (canary.checked) body.canary = true;
    if (scope.value === "custom") {
      body.permissions = [...permRows.querySelectorAll(".perm")].map((line) => ({
        methods: [...line.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value),
        path: line.querySelector(".perm-path").value.trim(),
      }));
    }
    const limits = resourceLimits(resRows);
    if (limits === null) return;
    if (Object.keys(limits).length) body.resources = limits;
    try {
      const made = await ctx.client.post("/keys", body);
      showSecret(ctx, made, "Key created");
    } catch (err) {
      if (!(err instanceof ApiError) || !placeErrors(err, permRows, resRows)) throw err;
    }
  }
}

// Days, or no expiry at all: one field, the checkbox beside the number it switches off.
function expiryField(days, never) {
  const f = field("new-validity", "Expires after (days)", days, "Empty: the gateway's default.");
  const line = h("div", { class: "inline-controls" });
  days.replaceWith(line);
  line.append(days, h("label", { class: "check" }, never, "Never expires"));
  return f;
}

// The browser's local "2027-01-31T12:00" as the instant in UTC, as the API takes it ("...Z").
function localToUtc(value) {
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? value : at.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// A typed number as a number; anything else as typed, for the API to name what is wrong.
function numberOrText(raw) {
  const n = Number(raw);
  return raw.trim() !== "" && Number.isFinite(n) ? n : raw;
}

// {"location": ["loc_001", "loc_002"]} from the rows; null (and the row marked) when one is half filled.
function resourceLimits(rows) {
  const out = {};
  let ok = true;
  for (const line of rows.querySelectorAll(".resource")) {
    const key = line.querySelector(".res-name").value.trim();
    const values = line.querySelector(".res-values").value.split(",").map((v) => v.trim()).filter(Boolean);
    if (!key && !values.length) continue;
    if (!key) { line.querySelector(".field-error").textContent = "Name the route parameter these values are for."; ok = false; }
    else out[key] = [...(out[key] || []), ...values];
  }
  if (!ok) focusFirstProblem();
  return ok ? out : null;
}


const SLOTS = { name: "new-name", tenant_id: "new-tenant", user_id: "new-owner", scope: "new-scope",
  validity_days: "new-validity", expires_at: "new-expires-at", environment: "new-environment", rate_limit_per_minute: "new-rate",
  permissions: "new-permissions", resources: "new-resources", canary: "new-canary" };

// Each 422 detail beside its field (a permission's or resource's own row where it names one);
// answers whether the error was a validation error at all.
function placeErrors(err, permRows, resRows) {
  if (err.status !== 422 || !err.details.length) { dialogError(err.message); return true; }
  const loose = [];
  for (const d of err.details) {
    const path = String(d.field || "");
    const top = path.split(/[.[]/)[0];
    let slot = null;
    const perm = path.match(/^permissions\[(\d+)\]/);
    if (perm) slot = permRows.querySelectorAll(".perm")[Number(perm[1])]?.querySelector(".field-error");
    const res = path.match(/^resources\.(.+)$/);
    if (res) {
      const line = [...resRows.querySelectorAll(".resource")].find((l) => l.querySelector(".res-name").value.trim() === res[1]);
      slot = line?.querySelector(".field-error");
    }
    slot = slot || (SLOTS[top] && document.getElementById(`${SLOTS[top]}-error`));
    if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${d.issue}` : d.issue;
    else loose.push(path ? `${path}: ${d.issue}` : d.issue);
  }
  dialogError(loose.length ? loose.join("; ") : "Check the fields marked above.");
  focusFirstProblem();
  return true;
}

// The first field (in reading order) with a problem takes the focus, so the keyboard lands there.
function focusFirstProblem() {
  const first = document.querySelector("#dialog .field-error:not(:empty)");
  if (!first) return;
  const group = first.closest(".field, .row-group, fieldset");
  const control = (first.id && document.querySelector(`#dialog :is(input, select)[aria-describedby~="${first.id}"]`))
    || group?.querySelector("input:not([type=checkbox]), select") || group?.querySelector("input");
  control?.focus();
}

export function showSecret(ctx, key, title) {
  const secret = h("code", { id: "new-secret" }, key.key);
  const copied = h("p", { class: "hint", role: "status", id: "copy-status" });
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
  }, { id: "copy-secret", "aria-label": "Copy the secret" });
  openDialog({
    title,
    body: [
      h("p", { class: "notice" }, "Copy this secret now. You will not see it again: the gateway keeps only a hash."),
      h("p", { class: "wrap-anywhere" }, `${key.name} · ${key.tenant_id} · ${key.scope} · ${key.environment}`),
      h("div", { class: "secret" }, secret, copy), copied,
    ],
    actions: [h("button", { type: "submit", class: "primary", id: "secret-done" }, "Done")],
    onSubmit: () => closeDialog(),
    onClose: () => ctx.refresh(),
  });
}

export function confirmRevoke(ctx, key) {
  const go = h("button", { type: "submit", class: "danger", id: "confirm-revoke" }, "Revoke");
  openDialog({
    title: `Revoke ${key.name}?`,
    body: h("p", { class: "wrap-anywhere" }, `Every request made with ${key.masked.replace(/•+$/, "")}…${key.last4} will get 401 from now on, on every gateway instance. This cannot be undone.`),
    actions: [button("Cancel", () => closeDialog()), go],
    onSubmit: () => busy(go, async () => {
      await ctx.client.post(keyPath(key, "revoke"));
      closeDialog();
      await ctx.refresh();
    }),
  });
}

export function confirmRotate(ctx, key) {
  const go = h("button", { type: "submit", class: "primary", id: "confirm-rotate" }, "Rotate");
  openDialog({
    title: `Rotate ${key.name}?`,
    body: h("p", { class: "wrap-anywhere" }, `A new secret replaces ${key.masked.replace(/•+$/, "")}…${key.last4}. The current secret stops working at once: clients still using it get 401 until they switch to the new one.`),
    actions: [button("Cancel", () => closeDialog()), go],
    onSubmit: () => busy(go, async () => showSecret(ctx, await ctx.client.post(keyPath(key, "rotate")), "Key rotated")),
  });
}
