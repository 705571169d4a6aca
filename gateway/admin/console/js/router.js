// The view and its filters live in the URL's fragment (`#/keys?tenant=acme&status=active`): a
// reload, a bookmark and back/forward keep them, and the fragment never reaches the server.

export function current() {
  const raw = location.hash.replace(/^#\/?/, "");
  const cut = raw.indexOf("?");
  const name = cut < 0 ? raw : raw.slice(0, cut);
  const params = Object.fromEntries(new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1)));
  return { view: decodeURIComponent(name), params };
}

export function href(view, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return `#/${encodeURIComponent(view)}${s ? `?${s}` : ""}`;
}

// A new history entry (back returns to the previous filters), or with `replace` the same entry
// corrected in place. Answers whether the URL changed.
export function go(view, params, { replace = false } = {}) {
  const target = href(view, params);
  if (location.hash === target) return false;
  if (replace) history.replaceState(history.state, "", target);
  else location.hash = target;
  return true;
}

export function onChange(listener) {
  addEventListener("hashchange", listener);
}

// A positive integer from the URL, or the default.
export function intParam(value, fallback) {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

// One of the allowed values from the URL, or the default.
export function oneOf(value, allowed, fallback) {
  return allowed.includes(value) ? value : fallback;
}
