// The webhooks view: the endpoints (with test, enable/disable, secret rotation and delete where the
// mode allows), and one endpoint's delivery log, newest first, with a retry for each delivery.
import { segment } from "./api.js";
import { button, h, heading, truncated } from "./dom.js";
import { date, relative } from "./format.js";
import { href } from "./router.js";
import { dataTable } from "./table.js";
import { confirmDelete, createWebhookDialog, rotateSecretDialog } from "./webhook-dialogs.js";

const PAGE = 50;

function state(hook) {
  const old = hook.previous_secret_expires_at && new Date(hook.previous_secret_expires_at) > new Date()
    ? ` · old secret signs until ${date(hook.previous_secret_expires_at)}` : "";
  if (!hook.disabled) return (hook.failing_since ? `active · failing since ${date(hook.failing_since)}` : "active") + old;
  return (hook.disabled_reason === "failing" ? "disabled: it kept failing" : "disabled") + old;
}

function endpointColumns(ctx, status) {
  const { caps } = ctx;
  const cols = [
    { label: "URL", cls: "cell-name", cell: (w) => h("a", { href: href("webhooks", { id: w.id }), title: w.url,
      "aria-label": `Deliveries to ${w.url}` }, truncated(w.url)) },
    { label: "Events", cell: (w) => truncated(w.events.includes("*") ? "all" : w.events.join(", ")) },
    caps.tenants ? { label: "Tenant", cell: (w) => (w.tenant_id ? truncated(w.tenant_id, "truncate short") : "every tenant") } : null,
    { label: "State", cell: (w) => h("span", { class: w.disabled ? "status status-revoked" : "status status-active" }, state(w)) },
    { label: "Description", cell: (w) => truncated(w.description || "") },
  ];
  if (caps.manageWebhooks) cols.push({ label: "Actions", cls: "cell-actions", cell: (w) => actions(ctx, w, status) });
  return cols.filter(Boolean);
}

function actions(ctx, hook, status) {
  const path = `/webhooks/${segment(hook.id)}`;
  const run = (work) => async (event) => {
    const control = event.currentTarget;
    control.disabled = true;
    try {
      status.textContent = await work();
    } catch (err) {
      status.textContent = String(err?.message || err);
    } finally {
      control.disabled = false;
    }
  };
  return h("div", { class: "row-actions" },
    button("Test", run(async () => `Test event ${(await ctx.client.post(`${path}/test`)).event_id} sent to ${hook.url}`),
      { disabled: hook.disabled, "aria-label": `Send a test event to ${hook.url}` }),
    button(hook.disabled ? "Enable" : "Disable", run(async () => {
      await ctx.client.patch(path, { disabled: !hook.disabled });
      await ctx.refresh();
      return "";
    }), { "aria-label": `${hook.disabled ? "Enable" : "Disable"} ${hook.url}` }),
    button("Rotate secret", () => rotateSecretDialog(ctx, hook), { "aria-label": `Rotate the signing secret of ${hook.url}` }),
    button("Delete", () => confirmDelete(ctx, hook, () => ctx.navigate({})), { class: "danger", "aria-label": `Delete ${hook.url}` }));
}

export async function webhooksView(root, ctx) {
  if (ctx.params.id) return deliveriesView(root, ctx, ctx.params.id);
  const page = await ctx.client.get("/webhooks", { per_page: 100 });
  const status = h("p", { class: "hint", role: "status", id: "webhooks-status" });
  const tools = ctx.caps.manageWebhooks ? h("div", { class: "toolbar" }, h("div", { class: "toolbar-end" },
    button("New webhook", async () => createWebhookDialog(ctx, ctx.caps.tenants ? await ctx.tenants() : []),
      { id: "create-webhook", class: "primary" }))) : null;
  root.replaceChildren(heading("Webhooks"), tools,
    dataTable({ id: "webhooks", caption: "Webhooks", columns: endpointColumns(ctx, status), rows: page.data,
      rowAttrs: (w) => ({ "data-webhook-id": w.id }), empty: "No webhooks yet" }),
    status,
    h("p", { class: "hint" }, page.meta.total > page.data.length ? `First ${page.data.length} of ${page.meta.total}`
      : `${page.meta.total} webhook${page.meta.total === 1 ? "" : "s"}`));
}

const DELIVERIES = (ctx, retry) => [
  { label: "When", cls: "nowrap", cell: (d) => relative(d.created_at), title: (d) => date(d.created_at) },
  { label: "Event", cell: (d) => d.event_type },
  { label: "Status", cell: (d) => h("span", { class: `status status-${d.status === "delivered" ? "active" : d.status === "failed" ? "revoked" : "pending"}` }, d.status) },
  { label: "Attempts", cell: (d) => String(d.attempts) },
  { label: "Answer", cell: (d) => (d.response_status === null ? "—" : String(d.response_status)) },
  { label: "Error", cell: (d) => truncated(d.error || "") },
  { label: "Last attempt", cell: (d) => (d.last_attempt_at ? relative(d.last_attempt_at) : "—"), title: (d) => date(d.last_attempt_at) || null },
  { label: "Next attempt", cell: (d) => (d.next_attempt_at ? relative(d.next_attempt_at) : "—"), title: (d) => date(d.next_attempt_at) || null },
  { label: "Event id", cls: "mono", cell: (d) => truncated(d.event_id, "truncate short") },
  ctx.caps.manageWebhooks ? { label: "Actions", cls: "cell-actions", cell: (d) => h("div", { class: "row-actions" },
    button("Retry", (e) => retry(e.currentTarget, d), { "aria-label": `Retry ${d.event_type} ${d.event_id}` })) } : null,
].filter(Boolean);

async function deliveriesView(root, ctx, id) {
  const hook = await ctx.client.get(`/webhooks/${segment(id)}`);
  const rows = [];
  let cursor = null;
  let table = null;
  const status = h("p", { class: "hint", role: "status", id: "deliveries-status" });
  const retry = async (control, delivery) => {
    control.disabled = true;
    try {
      await ctx.client.post(`/deliveries/${segment(delivery.id)}/retry`);
      status.textContent = `${delivery.event_type} ${delivery.event_id} will be sent again now`;
    } catch (err) {
      status.textContent = String(err?.message || err);
      control.disabled = false;
    }
  };
  const more = button("Load more", () => load().catch((err) => { status.textContent = String(err?.message || err); }),
    { id: "load-more-deliveries" });
  async function load() {
    const page = await ctx.client.get(`/webhooks/${segment(id)}/deliveries`, { order: "desc", limit: PAGE, after: cursor });
    rows.push(...page.data);
    cursor = page.next_cursor;
    const fresh = dataTable({ id: "deliveries", caption: "Deliveries", columns: DELIVERIES(ctx, retry), rows,
      rowAttrs: (d) => ({ "data-delivery-id": d.id }), empty: "Nothing sent to it yet" });
    if (table) table.replaceWith(fresh);
    table = fresh;
    more.disabled = page.data.length < PAGE;
  }
  await load();
  root.replaceChildren(heading("Deliveries"),
    h("p", { class: "wrap-anywhere" }, h("a", { href: href("webhooks") }, "All webhooks"), " · ", hook.url, " · ",
      hook.events.includes("*") ? "all events" : hook.events.join(", "), " · ", state(hook)),
    h("div", { class: "toolbar" }, h("div", { class: "toolbar-end" }, button("Reload", () => ctx.refresh(), { id: "reload-deliveries" }))),
    table, h("div", { class: "pager" }, more, status));
}
