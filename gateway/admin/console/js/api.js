// The HTTP client every component talks through. A mode creates one with its API base and its
// way of authenticating, so the same components can serve the admin console (a bearer token) and a
// cookie session with a CSRF header (the tenant portal). Nothing secret ever goes into a URL.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.details = Array.isArray(body?.error?.details) ? body.error.details : [];
  }
}

// `Authorization: Bearer <token>` on every call; cookies are never sent.
export function bearerAuth(getToken) {
  return { credentials: "omit", headers: () => ({ Authorization: `Bearer ${getToken() || ""}` }) };
}

// The browser's session cookie, and the session's CSRF token on every state-changing call.
export function cookieAuth(getCsrfToken) {
  return {
    credentials: "same-origin",
    headers: (method) => (method === "GET" || method === "HEAD" ? {} : { "X-CSRF-Token": getCsrfToken() || "" }),
  };
}

export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

// `base` is the API's root ("/admin", "/portal/api"); paths are relative to it ("/keys").
// `onUnauthorized` hears every 401 (the mode signs out and asks again).
export function createClient({ base, auth, onUnauthorized = null }) {
  async function request(method, path, body) {
    const headers = { ...auth.headers(method) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${base}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: auth.credentials, cache: "no-store",
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const err = new ApiError(response.status, data);
      if (response.status === 401 && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    return data;
  }
  return {
    base,
    get: (path, params) => request("GET", `${path}${query(params)}`),
    post: (path, body) => request("POST", path, body),
    patch: (path, body) => request("PATCH", path, body),
    delete: (path) => request("DELETE", path),
  };
}

export const segment = (id) => encodeURIComponent(String(id));
