// Registering a webhook (URL, events, tenant, description), its signing secret shown once (and
// again a new one at each rotation), and deleting one with a confirmation. The API's 422 details are shown beside the fields they name.
import { ApiError, segment } from "./api.js";
import { busy, button, closeDialog, dialogError, field, h, openDialog } from "./dom.js";
import { date } from "./format.js";

// The contract's event types, in its order; "*" is every one of them, now and later.
export const EVENT_TYPES = ["key.created", "key.rotated", "key.revoked", "key.expiring", "key.expired", "key.exposed",
  "key.canary_used", "key.anomaly", "tenant.created", "tenant.updated", "user.created", "user.updated"];

// tenants: what the mode offers (the operator: every tenant, or all of them at once; the portal: its own).
export function createWebhookDialog(ctx, tenants) {
  const url = h("input", { id: "hook-url", type: "url", required: true, maxlength: 2048, autocomplete: "off",
    spellcheck: "false", placeholder: "https://ops.example.com/gateway-events" });
  const all = h("input", { id: "hook-all", type: "checkbox", checked: true });
  const boxes = EVENT_TYPES.map((t) => h("input", { type: "checkbox", value: t, disabled: true }));
  all.addEventListener("change", () => { for (const b of boxes) b.disabled = all.checked; });
  const events = h("fieldset", { id: "hook-events", class: "group", "aria-describedby": "hook-events-error" },
    h("legend", {}, "Events"), h("label", { class: "check" }, all, "All events, including those added later"),
    h("div", { class: "event-types" }, boxes.map((b) => h("label", { class: "check" }, b, b.value))),
    h("p", { class: "field-error", id: "hook-events-error", role: "alert" }));
  const tenant = h("select", { id: "hook-tenant" }, h("option", { value: "" }, "Every tenant"),
    tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id})`)));
  const description = h("input", { id: "hook-description", type: "text", maxlength: 512, autocomplete: "off" });
  const submit = h("button", { type: "submit", id: "hook-submit", class: "primary" }, "Register");
  openDialog({
    title: "New webhook",
    body: [
      field("hook-url", "URL", url, "https:// only, and no address inside your network (unless the gateway allows it)."),
      events,
      ctx.caps.tenants ? field("hook-tenant", "Tenant", tenant, "Whose events it receives.") : null,
      field("hook-description", "Description (optional)", description),
    ],
    actions: [button("Cancel", () => closeDialog()), submit],
    onSubmit: () => busy(submit, async () => {
      for (const el of document.querySelectorAll("#dialog .field-error")) el.textContent = "";
      const body = { url: url.value.trim(), events: all.checked ? ["*"] : boxes.filter((b) => b.checked).map((b) => b.value) };
      if (ctx.caps.tenants && tenant.value) body.tenant_id = tenant.value;
      if (description.value.trim()) body.description = description.value.trim();
      try {
        showSigningSecret(ctx, await ctx.client.post("/webhooks", body));
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 422) throw err;
        placeErrors(err);
      }
    }),
  });
}

function placeErrors(err) {
  const slots = { url: "hook-url", events: "hook-events", tenant_id: "hook-tenant", description: "hook-description" };
  const loose = [];
  for (const d of err.details) {
    const top = String(d.field || "").split(/[.[]/)[0];
    const slot = slots[top] && document.getElementById(`${slots[top]}-error`);
    if (slot) slot.textContent = d.issue;
    else loose.push(d.field ? `${d.field}: ${d.issue}` : d.issue);
  }
  dialogError(loose.length ? loose.join("; ") : "Check the fields marked above.");
  document.querySelector("#dialog .field-error:not(:empty)")?.closest(".field, fieldset")?.querySelector("input, select")?.focus();
}

// Rotating the signing secret: the old one keeps signing beside the new one for the grace period
// chosen (both signatures on every delivery), so the receiver can switch without missing one.
const GRACE = [["86400", "24 hours"], ["3600", "1 hour"], ["604800", "7 days"], ["0", "No: stop it now (it leaked)"]];

export function rotateSecretDialog(ctx, hook) {
  const grace = h("select", { id: "hook-grace" }, GRACE.map(([value, label]) => h("option", { value }, label)));
  const go = h("button", { type: "submit", class: "primary", id: "confirm-rotate-secret" }, "Rotate");
  openDialog({
    title: "Rotate the signing secret?",
    body: [
      h("p", { class: "wrap-anywhere" }, `A new secret signs every delivery to ${hook.url} from now on.`),
      field("hook-grace", "Old secret keeps signing for", grace,
        "Deliveries carry both signatures meanwhile: the receiver verifies with either secret while you switch it."),
    ],
    actions: [button("Cancel", () => closeDialog()), go],
    onSubmit: () => busy(go, async () => {
      const rotated = await ctx.client.post(`/webhooks/${segment(hook.id)}/rotate-secret`,
        { expires_in: Number(grace.value) });
      showSigningSecret(ctx, rotated, {
        title: "Signing secret rotated",
        notice: rotated.previous_secret_expires_at
          ? `Copy the new signing secret now: it is not shown again. The old one signs too until ${date(rotated.previous_secret_expires_at)}.`
          : "Copy the new signing secret now: it is not shown again. The old one signs nothing any more.",
      });
    }),
  });
}

function showSigningSecret(ctx, hook, { title = "Webhook registered",
  notice = "Copy this signing secret now: your receiver needs it to verify deliveries, and it is not shown again." } = {}) {
  const secret = h("code", { id: "hook-secret" }, hook.secret);
  const copied = h("p", { class: "hint", role: "status" });
  const copy = button("Copy", async () => {
    try {
      await navigator.clipboard.writeText(hook.secret);
      copied.textContent = "Copied";
    } catch {
      copied.textContent = "Select the secret and copy it by hand.";
    }
  }, { id: "copy-hook-secret", "aria-label": "Copy the signing secret" });
  openDialog({
    title,
    body: [
      h("p", { class: "notice" }, notice),
      h("p", { class: "wrap-anywhere" }, hook.url),
      h("div", { class: "secret" }, secret, copy), copied,
    ],
    actions: [h("button", { type: "submit", class: "primary", id: "hook-secret-done" }, "Done")],
    onSubmit: () => closeDialog(),
    onClose: () => ctx.refresh(),
  });
}

export function confirmDelete(ctx, hook, after) {
  const go = h("button", { type: "submit", class: "danger", id: "confirm-delete-hook" }, "Delete");
  openDialog({
    title: "Delete this webhook?",
    body: h("p", { class: "wrap-anywhere" }, `Nothing more is sent to ${hook.url}, and its delivery log goes with it.`),
    actions: [button("Cancel", () => closeDialog()), go],
    onSubmit: () => busy(go, async () => {
      await ctx.client.delete(`/webhooks/${segment(hook.id)}`);
      closeDialog();
      await after();
    }),
  });
}
