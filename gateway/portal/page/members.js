// The portal's members view: the tenant's people, invitations (the link shown once), role changes
// and disabling, for those whose role allows it; owners alone make or manage owners. The API
// enforces the same rules; this only leaves out controls that would be refused.
import { ApiError, segment } from "../console/js/api.js";
import { button, h, heading } from "../console/js/dom.js";
import { date } from "../console/js/format.js";
import { dataTable } from "../console/js/table.js";

const ROLES = ["owner", "admin", "member", "viewer"];
const ROLE_TEXT = {
  owner: "owner: everything, and the only one who makes or removes owners",
  admin: "admin: keys, members below owner, webhooks",
  member: "member: sees keys, usage and logs",
  viewer: "viewer: sees keys, usage and logs",
};

let pending = null; // an invitation link to show once, after the view is drawn again with its new member

export async function membersView(root, ctx) {
  const { client, me } = ctx;
  const manages = me.capabilities.includes("users");
  const grantable = me.capabilities.includes("owners") ? ROLES : ROLES.filter((r) => r !== "owner");
  const people = (await client.get("/users")).data;
  const editable = (u) => manages && grantable.includes(u.role) && u.id !== me.user.id;
  const once = h("div", { id: "invitation-once" });
  if (pending) {
    once.append(linkNotice(pending));
    pending = null;
  }

  const cols = [
    { label: "Name", cell: (u) => u.name },
    { label: "Email", cell: (u) => u.email || "" },
    { label: "Role", cell: (u) => (editable(u) ? roleSelect(u) : u.role) },
    { label: "Status", cell: (u) => h("span", { class: `status status-${u.status}` }, u.status) },
    { label: "Since", cell: (u) => date(u.created_at) },
  ];
  if (manages) cols.push({ label: "Actions", cls: "cell-actions", cell: (u) => (editable(u) ? actions(u) : "") });

  function roleSelect(u) {
    const select = h("select", { "aria-label": `Role of ${u.email || u.name}`, "data-user-id": u.id },
      grantable.map((r) => h("option", { value: r }, r)));
    select.value = u.role;
    select.addEventListener("change", () => change(u, { role: select.value }, select));
    return select;
  }

  function actions(u) {
    const label = u.disabled ? "Enable" : "Disable";
    const row = [button(label, (e) => change(u, { disabled: !u.disabled }, e.currentTarget),
      { class: u.disabled ? null : "danger", "aria-label": `${label} ${u.email || u.name}` })];
    if (u.status === "invited") {
      row.push(button("New invitation link", (e) => change(u, null, e.currentTarget),
        { "aria-label": `New invitation link for ${u.email || u.name}` }));
    }
    return h("div", { class: "row-actions" }, row);
  }

  // body null: a new invitation link instead of a change
  async function change(u, body, control) {
    status.textContent = "";
    control.disabled = true;
    try {
      if (body === null) pending = await client.post(`/users/${segment(u.id)}/invitation`);
      else await client.patch(`/users/${segment(u.id)}`, body);
      await ctx.refresh();
    } catch (err) {
      status.textContent = problem(err);
      if (control.tagName === "SELECT") control.value = u.role;
    } finally {
      control.disabled = false;
    }
  }

  const status = h("p", { class: "error", role: "alert", id: "members-error" });
  const parts = [heading("Members"), once];
  if (manages) parts.push(inviteForm(client, grantable, ctx));
  parts.push(status, dataTable({ id: "members", caption: "Members", columns: cols, rows: people, empty: "No members yet",
    rowAttrs: (u) => ({ "data-user-id": u.id }) }));
  parts.push(h("details", {}, h("summary", {}, "What each role can do"),
    h("ul", {}, ROLES.map((r) => h("li", {}, ROLE_TEXT[r])))));
  root.replaceChildren(...parts);
}

function problem(err) {
  return err instanceof ApiError && err.details.length
    ? err.details.map((d) => `${d.field}: ${d.issue}`).join("; ") : String(err?.message || err);
}

function linkNotice(made) {
  return h("div", { class: "once", role: "status" },
    h("strong", {}, `Invitation for ${made.email}`),
    h("p", {}, "Send this link to them: it is shown only now, works once and expires in 72 hours."),
    h("code", { id: "invitation-url" }, made.invitation_url));
}

function inviteForm(client, grantable, ctx) {
  const email = h("input", { id: "invite-email", type: "email", autocomplete: "off", required: true });
  const name = h("input", { id: "invite-name", type: "text", autocomplete: "off", maxlength: 256 });
  const role = h("select", { id: "invite-role" }, grantable.map((r) => h("option", { value: r }, r)));
  role.value = "viewer";
  const error = h("p", { class: "field-error", role: "alert", id: "invite-error" });
  const submit = h("button", { type: "submit", class: "primary", id: "invite-submit" }, "Invite");
  const form = h("form", { class: "invite", "aria-label": "Invite a member", novalidate: true },
    h("div", { class: "filter" }, h("label", { for: "invite-email" }, "Email"), email),
    h("div", { class: "filter" }, h("label", { for: "invite-name" }, "Name (optional)"), name),
    h("div", { class: "filter" }, h("label", { for: "invite-role" }, "Role"), role),
    h("div", { class: "toolbar-end" }, submit), error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { email: email.value.trim(), role: role.value };
    if (name.value.trim()) body.name = name.value.trim();
    submit.disabled = true;
    client.post("/users", body).then((made) => {
      pending = made;
      return ctx.refresh();
    }).catch((err) => {
      error.textContent = problem(err);
    }).finally(() => {
      submit.disabled = false;
    });
  });
  return form;
}
