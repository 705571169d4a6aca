// Times and expiry as a person reads them.
const DAY = 86400000;

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function relative(iso, now = Date.now()) {
  if (!iso) return "never";
  const diff = now - Date.parse(iso);
  const abs = Math.abs(diff);
  if (abs < 10000) return "just now";
  const [value, unit] = abs < 60000 ? [Math.round(abs / 1000), "s"] : abs < 3600000 ? [Math.round(abs / 60000), "min"]
    : abs < DAY ? [Math.round(abs / 3600000), "h"] : [Math.round(abs / DAY), "d"];
  return diff >= 0 ? `${value} ${unit} ago` : `in ${value} ${unit}`;
}

// The expiry column: a revoked key no longer expires (it says so), an expired one says since when.
// `mark` is the warning shown beside it: expired, or expiring within the configured days.
export function expiry(key) {
  if (key.status === "revoked") {
    return { text: "revoked", mark: null, title: key.revoked_at ? `Revoked ${date(key.revoked_at)}` : "Revoked" };
  }
  const days = key.expires_in_days;
  if (days === null || days === undefined) return { text: "never", mark: null, title: "No expiry" };
  const title = `Expires ${date(key.expires_at)}`;
  if (days < 0 || key.status === "expired") {
    const ago = Math.floor((Date.now() - Date.parse(key.expires_at)) / DAY);
    const text = ago < 1 ? "expired today" : `expired ${plural(ago, "day")} ago`;
    return { text, mark: { cls: "expired", title: "Expired" }, title: `Expired ${date(key.expires_at)}` };
  }
  const text = days === 0 ? "today" : `in ${plural(days, "day")}`;
  return { text, mark: key.expiring_soon ? { cls: "warn", title: `Expires soon (${text})` } : null, title };
}

export function date(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "";
}

// The masked secret without its dots, and its last four: `gw_live_Ab3d…wxyz`.
export function maskedSecret(key) {
  return `${String(key.masked || "").replace(/•+$/, "")}…${key.last4}`;
}
