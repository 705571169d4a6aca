// Elements built with textContent only: whatever the API returns is shown as text, never parsed.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false || child === "") continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function button(label, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, label);
}

// A labelled control with its hint and the slot where the API's 422 detail for it appears.
export function field(id, label, control, hint) {
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    h("p", { class: "field-error", id: `${id}-error`, role: "alert" }));
}

// Long names are cut with an ellipsis; the whole name stays in the tooltip and the accessible text.
export function truncated(text, cls = "truncate") {
  return h("span", { class: cls, title: text }, text);
}

let parts = null;

function dialogParts() {
  if (parts) return parts;
  const title = h("h2", { id: "dialog-title" });
  const body = h("div", { id: "dialog-body" });
  const error = h("p", { class: "error", id: "dialog-error", role: "alert" });
  const actions = h("div", { class: "actions", id: "dialog-actions" });
  const form = h("form", { id: "dialog-form", novalidate: true }, title, body, error, actions);
  const dialog = h("dialog", { id: "dialog", "aria-labelledby": "dialog-title" }, form);
  form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter submits the dialog's primary action, never closes it
    if (parts.onSubmit) parts.onSubmit();
  });
  dialog.addEventListener("close", () => {
    body.replaceChildren(); // the secret leaves the page with its dialog
    const { opener, onClose } = parts;
    parts.opener = parts.onClose = parts.onSubmit = null;
    if (onClose) onClose();
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    else document.querySelector("#view h2")?.focus();
  });
  document.body.append(dialog);
  parts = { dialog, title, body, error, actions, opener: null, onClose: null, onSubmit: null };
  return parts;
}

// One modal at a time on the native <dialog>: focus moves in, Escape closes, focus goes back to
// what opened it. `onSubmit` runs for Enter and for the button of type "submit".
export function openDialog({ title, body, actions, onSubmit = null, onClose = null }) {
  const p = dialogParts();
  if (!p.dialog.open) p.opener = document.activeElement;
  p.title.textContent = title;
  p.body.replaceChildren(...[body].flat());
  p.error.textContent = "";
  p.actions.replaceChildren(...actions);
  p.onSubmit = onSubmit;
  p.onClose = onClose;
  if (!p.dialog.open) p.dialog.showModal();
  const first = p.dialog.querySelector("#dialog-body input, #dialog-body select, #dialog-body textarea, #dialog-actions button:not([disabled])");
  if (first) first.focus();
  return p.dialog;
}

export function closeDialog() {
  const p = dialogParts();
  p.body.replaceChildren(); // at once: a secret must not outlive its dialog
  if (p.dialog.open) p.dialog.close();
}

export function dialogError(message) {
  dialogParts().error.textContent = message;
}

// Runs an action from a dialog button: the button is busy meanwhile, an API refusal is shown in
// the dialog instead of escaping as an unhandled rejection.
export async function busy(control, action) {
  control.disabled = true;
  control.setAttribute("aria-busy", "true");
  dialogError("");
  try {
    await action();
  } catch (err) {
    dialogError(String(err?.message || err));
  } finally {
    control.disabled = false;
    control.removeAttribute("aria-busy");
  }
}

// A view's heading: focusable from script, so moving to a view moves a screen reader there too.
export function heading(text) {
  return h("h2", { tabindex: -1 }, text);
}
