// The operator's view of tenants: plan, limit, active keys (a link to their keys) and users.
import { h, heading, truncated } from "./dom.js";
import { href } from "./router.js";
import { dataTable } from "./table.js";

const COLUMNS = [
  { label: "Id", cell: (t) => truncated(t.id, "truncate short") },
  { label: "Name", cls: "cell-name tenant-name", cell: (t) => truncated(t.name) },
  { label: "Plan", cell: (t) => t.plan },
  { label: "Limit", cell: (t) => `${t.requests_per_minute ?? "—"} / min` },
  { label: "Active keys", cell: (t) => h("a", { href: href("keys", { tenant: t.id }), "aria-label": `Keys of ${t.name}: ${t.active_keys} of ${t.max_keys} active` },
    `${t.active_keys} of ${t.max_keys}`) },
  { label: "State", cell: state },
  { label: "Usage", cell: (t) => h("a", { href: href("usage", { tenant: t.id }), "aria-label": `Usage of ${t.name}` }, "Usage") },
  { label: "Users", cls: "cell-users", cell: (t) => ((t.users || []).length
    ? h("ul", { class: "users" }, t.users.map((u) => h("li", {}, truncated(`${u.name} (${u.role}${u.status === "invited" ? ", invited" : ""}${u.disabled ? ", disabled" : ""})`))))
    : h("span", { class: "muted" }, "none")) },
];

// Disabled, or active with the operator's gates (contract section 9) when one is closed.
function state(t) {
  if (t.disabled) return "disabled";
  const gates = [t.api_enabled === false ? "API access off" : null, t.write_enabled === false ? "read only" : null].filter(Boolean);
  return gates.length ? `active · ${gates.join(", ")}` : "active";
}

export async function tenantsView(root, ctx) {
  const page = await ctx.client.get("/tenants", { per_page: 100, sort: "id" });
  const details = await Promise.all(page.data.map((t) => ctx.client.get(`/tenants/${encodeURIComponent(t.id)}`)));
  root.replaceChildren(heading("Tenants"),
    dataTable({ id: "tenants", caption: "Tenants", columns: COLUMNS, rows: details, rowAttrs: (t) => ({ "data-tenant-id": t.id }),
      empty: "No tenants yet" }),
    h("p", { class: "hint" }, page.meta.total > details.length ? `First ${details.length} of ${page.meta.total} tenants` : `${page.meta.total} tenant${page.meta.total === 1 ? "" : "s"}`));
}
