// A data table that becomes a list of cards on a narrow screen (each cell labelled by its column,
// see console.css), with sortable headers that say their order to assistive technology.
import { button, h, truncated } from "./dom.js";

// columns: [{ label, cell(row) -> Node|string, sort?: field, cls?, truncate?: bool, title?(row) }]
// sort: "field" or "-field" (the current order); onSort(newSort) when a header is pressed.
export function dataTable({ id, caption, columns, rows, rowAttrs = () => ({}), sort = null, onSort = null, empty }) {
  const field = sort ? sort.replace(/^-/, "") : null;
  const head = h("tr", {}, columns.map((c) => {
    const active = Boolean(c.sort) && c.sort === field;
    const order = active ? (sort.startsWith("-") ? "descending" : "ascending") : null;
    const arrow = order ? h("span", { class: "sort-mark", "aria-hidden": "true" }, order === "ascending" ? "▲" : "▼") : null;
    const label = c.sort && onSort
      ? button([c.label, arrow], () => onSort(active && !sort.startsWith("-") ? `-${c.sort}` : c.sort), { "data-sort": c.sort })
      : c.label;
    return h("th", { scope: "col", class: c.cls, "aria-sort": order }, label);
  }));
  const body = rows.length ? rows.map((r) => h("tr", rowAttrs(r), columns.map((c) => {
    const value = c.cell(r);
    const content = c.truncate && !(value instanceof Node) ? truncated(String(value ?? "")) : value;
    return h("td", { class: c.cls, "data-label": c.label, title: c.title ? c.title(r) : null }, content);
  }))) : h("tr", { class: "empty" }, h("td", { colspan: columns.length, class: "muted" }, empty));
  return h("div", { class: "table-wrap" },
    h("table", { id, class: "data" }, caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, head), h("tbody", {}, body)));
}

// The same orders as a select, for the card layout where there are no column headers.
export function sortSelect({ id, columns, sort, onSort }) {
  const options = [];
  for (const c of columns.filter((x) => x.sort)) {
    options.push(h("option", { value: c.sort }, `${c.label}, ascending`), h("option", { value: `-${c.sort}` }, `${c.label}, descending`));
  }
  const select = h("select", { id, onchange: (e) => onSort(e.target.value) }, options);
  select.value = sort;
  return h("div", { class: "sort-narrow" }, h("label", { for: id }, "Sort by"), select);
}
