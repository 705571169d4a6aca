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
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const dialog = () => document.getElementById("dialog");

// One modal at a time, on the native <dialog>: focus moves in, Escape closes, focus returns.
export function openDialog(title, body, actions) {
  const d = dialog();
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-body").replaceChildren(...[body].flat());
  document.getElementById("dialog-actions").replaceChildren(...actions);
  const opener = document.activeElement;
  d.addEventListener("close", () => {
    document.getElementById("dialog-body").replaceChildren(); // the secret leaves the page with it
    if (opener instanceof HTMLElement) opener.focus();
  }, { once: true });
  if (!d.open) d.showModal();
  const first = d.querySelector("input, select, button");
  if (first) first.focus();
  return d;
}

export function closeDialog() {
  const d = dialog();
  document.getElementById("dialog-body").replaceChildren(); // at once: a secret must not outlive its dialog
  if (d.open) d.close();
}

export function button(label, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, label);
}
