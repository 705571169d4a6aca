// Usage: a tenant's or one key's requests by status class, rate-limited requests and latency over
// the last hour, day or 30 days, as charts with their table views, from the usage API (rollups,
// not the call log). The same component in every mode: the operator's console picks any tenant
// and key; a mode without `caps.tenants` (the tenant portal) shows its own tenant's, and the API
// answers 404 for any other.
import { segment } from "./api.js";
import { h, heading } from "./dom.js";
import { date } from "./format.js";
import { timeChart } from "./chart.js";

// The API's default span for each granularity is the range: an hour by minute, a day by hour,
// 30 days by day, each up to the gateway's now.
export const RANGES = [
  { name: "hour", label: "Last hour", granularity: "minute" },
  { name: "day", label: "Last day", granularity: "hour" },
  { name: "month", label: "Last 30 days", granularity: "day" },
];
const CLASSES = [["2xx", "#1e7b34"], ["3xx", "#1f5fd1"], ["4xx", "#a35200"], ["5xx", "#b3261e"]];
const count = (n) => n.toLocaleString("en-US");
const ms = (v) => `${v.toLocaleString("en-US", { maximumFractionDigits: 1 })}`;

export async function usageView(root, ctx) {
  const { client, caps, params } = ctx;
  const range = RANGES.find((r) => r.name === params.range) || RANGES[1];
  const key = params.key ? await client.get(`/keys/${segment(params.key)}`) : null;
  const tenants = caps.tenants ? await ctx.tenants() : [];
  const tenantId = key ? key.tenant_id : (tenants.find((t) => t.id === params.tenant) || tenants[0])?.id;
  if (caps.tenants && !tenantId) {
    root.replaceChildren(heading("Usage"), h("p", { class: "muted" }, "No tenants yet."));
    return;
  }
  const tenant = tenants.find((t) => t.id === tenantId);
  const keys = (await client.get("/keys", { tenant_id: caps.tenants ? tenantId : null, per_page: 100, sort: "name" })).data;
  const query = { granularity: range.granularity, ...(key ? { key_id: key.id } : { tenant_id: caps.tenants ? tenantId : null }) };
  const usage = await client.get("/usage", query);
  const points = usage.data;
  const set = (changes) => ctx.navigate({ tenant: caps.tenants && !key ? tenantId : "", key: key?.id || "",
    range: range.name === "day" ? "" : range.name, ...changes });

  root.replaceChildren(...[
    heading(key ? `Usage of ${key.name}` : `Usage of ${tenant ? tenant.name : "your tenant"}`),
    key ? keyFacts(key) : null,
    toolbar(ctx, { tenants, tenantId, keys, key, range }, set),
    summary(points, range),
    h("div", { class: "charts" },
      timeChart({ id: "usage-requests", title: "Requests by status class", unit: "requests", points, format: count,
        series: CLASSES.map(([c, color]) => ({ label: c, color, value: (p) => p.status[c] })) }),
      timeChart({ id: "usage-limited", title: "Rate-limited requests (429)", unit: "requests", points, format: count,
        series: [{ label: "429", color: "#6b3fa0", value: (p) => p.rate_limited }] }),
      timeChart({ id: "usage-latency", title: "Latency", unit: "ms", points, format: ms,
        series: [{ label: "p50", color: "#1f5fd1", value: (p) => p.p50_ms }, { label: "p99", color: "#b3261e", value: (p) => p.p99_ms }] })),
  ].filter(Boolean));
}

function keyFacts(key) {
  const facts = h("p", { class: "hint" }, `Key ${key.masked ? key.masked.replace(/•+$/, "") : ""}…${key.last4} · tenant ${key.tenant_id} · ${key.status}`);
  if (!key.anomaly) return facts;
  return h("div", {}, facts, h("p", { class: "notice", role: "status", id: "usage-anomaly" },
    h("strong", {}, "Unusual usage: "), key.anomaly.message, ` (seen ${date(key.anomaly.at)})`));
}

function toolbar(ctx, { tenants, tenantId, keys, key, range }, set) {
  const parts = [];
  if (ctx.caps.tenants) {
    const tenant = h("select", { id: "usage-tenant", onchange: (e) => set({ tenant: e.target.value, key: "" }) },
      tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
    tenant.value = tenantId;
    parts.push(h("div", { class: "filter" }, h("label", { for: "usage-tenant" }, "Tenant"), tenant));
  }
  const pick = h("select", { id: "usage-key", onchange: (e) => set({ key: e.target.value, tenant: tenantId }) },
    h("option", { value: "" }, "All keys"), keys.map((k) => h("option", { value: k.id }, `${k.name} (…${k.last4})`)));
  pick.value = key ? key.id : "";
  parts.push(h("div", { class: "filter" }, h("label", { for: "usage-key" }, "Key"), pick));
  parts.push(h("fieldset", { class: "range" }, h("legend", {}, "Range"),
    RANGES.map((r) => h("label", { class: "check" },
      h("input", { type: "radio", name: "usage-range", value: r.name, checked: r.name === range.name,
        onchange: () => set({ range: r.name === "day" ? "" : r.name }) }), r.label))));
  return h("div", { class: "toolbar" }, parts);
}

function summary(points, range) {
  const sum = (f) => points.reduce((n, p) => n + f(p), 0);
  const requests = sum((p) => p.requests);
  const errors = sum((p) => p.status["4xx"] + p.status["5xx"]);
  const limited = sum((p) => p.rate_limited);
  const p99s = points.map((p) => p.p99_ms).filter((v) => v !== null);
  const figure = (label, value) => h("div", { class: "figure" }, h("dt", {}, label), h("dd", {}, value));
  return h("dl", { class: "figures", "aria-label": `${range.label}, in figures` },
    figure("Requests", count(requests)),
    figure("Errors (4xx, 5xx)", requests ? `${count(errors)} (${((100 * errors) / requests).toFixed(1)} %)` : "0"),
    figure("Rate-limited", count(limited)),
    figure("Worst p99", p99s.length ? `${ms(Math.max(...p99s))} ms` : "—"));
}
