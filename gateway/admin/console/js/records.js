// The audit trail and the call log: newest first, "Load more" by cursor, filters in the URL.
import { button, h, heading, truncated } from "./dom.js";
import { date } from "./format.js";
import { dataTable } from "./table.js";

const PAGE = 50;
const text = (f) => (e) => e[f] ?? "";
const cut = (f) => (e) => truncated(String(e[f] ?? ""));
const when = { label: "When", cls: "nowrap", cell: (e) => date(e.at) };

const AUDIT = [
  when, { label: "Actor", cell: (e) => (e.actor_email ? `${e.actor} (${e.actor_email})` : e.actor) },
  { label: "Action", cell: text("action") }, { label: "Type", cell: text("target_type") },
  { label: "Target", cell: cut("target_id") }, { label: "Tenant", tenant: true, cell: cut("tenant_id") },
  { label: "Key name", cell: cut("key_name") }, { label: "Source", cell: text("source_ip") },
  { label: "Details", cls: "cell-details", cell: (e) => details(e.details) },
];

// What else an entry names (a canary key's user agent, method and path; a rotated webhook secret's
// grace period): name and value pairs, as text whatever they hold (h() never parses markup), each
// value cut to one line with the whole of it in its tooltip.
function details(pairs) {
  if (!pairs || typeof pairs !== "object") return "";
  const entries = Object.entries(pairs);
  if (!entries.length) return "";
  return h("dl", { class: "details" }, entries.map(([name, value]) => {
    const shown = typeof value === "string" ? value : JSON.stringify(value);
    return h("div", { "data-detail": name }, h("dt", {}, name), h("dd", {}, truncated(shown)));
  }));
}
const CALLS = [
  when, { label: "Method", cell: text("method") }, { label: "Path", cell: cut("path") },
  { label: "Status", cell: text("status") }, { label: "Route", cell: text("route") }, { label: "Key", cell: cut("key_name") },
  { label: "Tenant", tenant: true, cell: cut("tenant_id") }, { label: "ms", cell: text("latency_ms") },
  { label: "Upstream ms", cell: text("upstream_latency_ms") },
  { label: "Limited", cell: (e) => (e.rate_limited ? "yes" : "") }, { label: "Request id", cls: "mono", cell: text("request_id") },
];

// filters: [{ name, label, type, inputmode?, tenant? }] - each one a query parameter of the API and
// of the URL; a `tenant` one only where there are several tenants to choose from (not the portal).
async function listing(root, ctx, { title, id, path, columns, filters: all }) {
  const cols = columns.filter((c) => !c.tenant || ctx.caps.tenants);
  const filters = all.filter((f) => !f.tenant || ctx.caps.tenants);
  const values = Object.fromEntries(filters.map((f) => [f.name, ctx.params[f.name] || ""]));
  let cursor = null;
  let table = null;
  const status = h("p", { class: "hint", role: "status" });
  const more = button("Load more", () => load().catch((err) => { status.textContent = String(err?.message || err); }),
    { id: "load-more" });
  const rows = [];
  async function load() {
    const page = await ctx.client.get(path, { order: "desc", limit: PAGE, after: cursor, ...values });
    rows.push(...page.data);
    cursor = page.next_cursor;
    const fresh = dataTable({ id, caption: title, columns: cols, rows, empty: "Nothing recorded yet" });
    if (table) table.replaceWith(fresh);
    table = fresh;
    more.disabled = page.data.length < PAGE;
    status.textContent = `${rows.length} shown`;
  }
  const inputs = filters.map((f) => h("input", { id: `f-${f.name}`, type: f.type, inputmode: f.inputmode, value: values[f.name],
    autocomplete: "off" }));
  const bar = filters.length ? h("form", { class: "toolbar", role: "search", "aria-label": `Filter the ${title.toLowerCase()}`,
    onsubmit: (e) => {
      e.preventDefault();
      ctx.navigate(Object.fromEntries(filters.map((f, i) => [f.name, inputs[i].value.trim()])));
    } },
  filters.map((f, i) => h("div", { class: "filter" }, h("label", { for: `f-${f.name}` }, f.label), inputs[i])),
  h("div", { class: "toolbar-end" }, h("button", { type: "submit" }, "Apply"))) : null;
  await load();
  root.replaceChildren(...[heading(title), bar, table, h("div", { class: "pager" }, more, status)].filter(Boolean));
}

const TENANT = { name: "tenant_id", label: "Tenant id", type: "text", tenant: true };
export const auditView = (root, ctx) => listing(root, ctx, {
  title: "Audit trail", id: "audit", path: "/audit", columns: AUDIT,
  filters: [TENANT, { name: "action", label: "Action", type: "text" }],
});
export const callsView = (root, ctx) => listing(root, ctx, {
  title: "Call log", id: "calls", path: "/calls", columns: CALLS,
  filters: [TENANT, { name: "key_id", label: "Key id", type: "text" }, { name: "status", label: "Status", type: "text", inputmode: "numeric" }],
});
