const DAY = 86400000;

export function relative(iso, now = Date.now()) {
  if (!iso) return "never";
  const diff = now - Date.parse(iso);
  const abs = Math.abs(diff);
  const [value, unit] = abs < 60000 ? [Math.round(abs / 1000), "s"] : abs < 3600000 ? [Math.round(abs / 60000), "min"]
    : abs < DAY ? [Math.round(abs / 3600000), "h"] : [Math.round(abs / DAY), "d"];
  return diff >= 0 ? `${value} ${unit} ago` : `in ${value} ${unit}`;
}

export function expiry(key) {
  if (key.expires_in_days === null || key.expires_in_days === undefined) return { text: "never", mark: null };
  const days = key.expires_in_days;
  if (days < 0 || key.status === "expired") {
    const ago = Math.max(1, -days);
    return { text: `${ago} day${ago === 1 ? "" : "s"} ago`, mark: { cls: "expired", title: "Expired" } };
  }
  const text = days === 0 ? "today" : `in ${days} day${days === 1 ? "" : "s"}`;
  return { text, mark: key.expiring_soon ? { cls: "warn", title: `Expires soon (${text})` } : null };
}

export function date(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "";
}
