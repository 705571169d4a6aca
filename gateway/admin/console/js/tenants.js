// Tenants: plan, limit, active keys, and each tenant's users with their roles.
import { api } from "./api.js";
import { h } from "./dom.js";

export async function tenantsView(root) {
  const page = await api("GET", "/admin/tenants?per_page=100&sort=id");
  const details = await Promise.all(page.data.map((t) => api("GET", `/admin/tenants/${encodeURIComponent(t.id)}`)));
  const rows = details.map((t) => h("tr", { "data-tenant-id": t.id },
    h("td", {}, t.id), h("td", { class: "tenant-name" }, t.name), h("td", {}, t.plan),
    h("td", {}, `${t.requests_per_minute ?? "—"} / min`), h("td", {}, `${t.active_keys} of ${t.max_keys}`),
    h("td", {}, t.disabled ? "disabled" : "active"),
    h("td", {}, (t.users || []).length ? h("ul", {}, t.users.map((u) => h("li", {}, `${u.name} (${u.role}${u.disabled ? ", disabled" : ""})`)))
      : h("span", { class: "muted" }, "none"))));
  root.replaceChildren(h("h2", {}, "Tenants"), h("div", { class: "table-wrap" }, h("table", { id: "tenants" },
    h("thead", {}, h("tr", {}, ["Id", "Name", "Plan", "Limit", "Active keys", "State", "Users"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No tenants"))))),
    h("p", { class: "muted" }, `${page.meta.total} tenants`));
}
