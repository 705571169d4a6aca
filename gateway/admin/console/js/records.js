// The audit trail and the call log, newest first, with "load more" by cursor.
import { api, query } from "./api.js";
import { button, h } from "./dom.js";
import { date } from "./format.js";

const AUDIT = [["at", "When"], ["actor", "Actor"], ["action", "Action"], ["target_type", "Type"], ["target_id", "Target"],
  ["tenant_id", "Tenant"], ["key_name", "Key name"], ["source_ip", "Source"]];
const CALLS = [["at", "When"], ["method", "Method"], ["path", "Path"], ["status", "Status"], ["route", "Route"],
  ["key_name", "Key"], ["tenant_id", "Tenant"], ["latency_ms", "ms"], ["upstream_latency_ms", "Upstream ms"],
  ["rate_limited", "Limited"], ["request_id", "Request id"]];

function cell(field, value) {
  if (field === "at") return date(value);
  if (field === "rate_limited") return value ? "yes" : "";
  return value ?? "";
}

async function listing(root, { title, path, columns, filters }) {
  const body = h("tbody");
  const more = button("Load more", () => load(), { id: "load-more" });
  const filterValues = {};
  let cursor = null;
  async function load(reset = false) {
    if (reset) { cursor = null; body.replaceChildren(); }
    const page = await api("GET", `${path}${query({ order: "desc", limit: 50, after: cursor, ...filterValues })}`);
    body.append(...page.data.map((e) => h("tr", {}, columns.map(([f]) => h("td", {}, cell(f, e[f]))))));
    cursor = page.next_cursor;
    more.disabled = page.data.length < 50;
  }
  const bar = h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); load(true); } },
    filters.map(([name, label, type]) => h("div", {}, h("label", { for: `f-${name}` }, label),
      h("input", { id: `f-${name}`, type, oninput: (e) => { filterValues[name] = e.target.value; } }))),
    filters.length ? h("button", { type: "submit" }, "Apply") : null);
  root.replaceChildren(h("h2", {}, title), bar, h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([, label]) => h("th", { scope: "col" }, label)))), body)),
    h("div", { class: "pager" }, more));
  await load(true);
}

export const auditView = (root) => listing(root, { title: "Audit trail", path: "/admin/audit", columns: AUDIT, filters: [] });
export const callsView = (root) => listing(root, {
  title: "Call log", path: "/admin/calls", columns: CALLS,
  filters: [["key_id", "Key id", "text"], ["status", "Status", "number"]],
});
