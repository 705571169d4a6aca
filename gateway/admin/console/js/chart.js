// A time-series chart drawn by uPlot (vendored: /admin/console/vendor/uplot/, loaded by the page
// as a classic script that defines `uPlot`), with its table view: the same figures in a real
// <table>, for screen readers, keyboards and anyone who wants the numbers. The chart itself is an
// image to assistive technology, labelled with what it shows and where its table is.
import { h } from "./dom.js";
import { date } from "./format.js";

const HEIGHT = 220;

// points: [{ t, ... }] (the usage API's); series: [{ label, value(point) -> number|null, color }]
// format(value) renders a figure in the table (null: "—").
export function timeChart({ id, title, points, series, unit, format = (v) => String(v) }) {
  const xs = points.map((p) => Date.parse(p.t) / 1000);
  const data = [xs, ...series.map((s) => points.map((p) => s.value(p)))];
  const plot = h("div", { class: "chart-plot", role: "img", "aria-label": `${title}, as a chart; its figures are in the table view` });
  const table = h("table", { id: `${id}-table`, class: "data chart-table" },
    h("caption", { class: "visually-hidden" }, `${title} (table view)`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time (UTC)"), series.map((s) => h("th", { scope: "col" }, s.label)))),
    h("tbody", {}, points.map((p, i) => h("tr", { "data-t": p.t }, h("th", { scope: "row", class: "nowrap" }, date(p.t)),
      series.map((s, j) => h("td", { "data-label": s.label }, data[j + 1][i] === null ? "—" : format(data[j + 1][i])))))));
  const figure = h("figure", { class: "chart", id },
    h("figcaption", {}, title, unit ? h("span", { class: "muted" }, ` (${unit})`) : null),
    plot,
    h("details", { class: "chart-data" }, h("summary", {}, "Table view"), h("div", { class: "table-wrap" }, table)));
  draw(plot, data, series, unit);
  return figure;
}

// uPlot needs the element's width: it draws once the element is laid out, and again when its
// width changes (a window resized, a phone turned).
function draw(plot, data, series, unit) {
  let chart = null;
  const observer = new ResizeObserver(() => {
    const width = Math.floor(plot.clientWidth);
    if (!plot.isConnected) { observer.disconnect(); chart?.destroy(); return; }
    if (width < 50) return;
    if (chart) { chart.setSize({ width, height: HEIGHT }); return; }
    chart = new window.uPlot({
      width, height: HEIGHT,
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // the table's times are UTC too
      fmtDate: (tpl) => window.uPlot.fmtDate(tpl.replace("{h}", "{HH}").replace("{aa}", "")), // 24-hour times
      scales: { x: { time: true } },
      series: [{ label: "Time (UTC)" }, ...series.map((s) => ({
        label: s.label, stroke: s.color, width: 2, fill: s.fill, spanGaps: false,
        points: { show: data[0].length <= 90 },
      }))],
      axes: [{}, { label: unit, size: 60 }],
      legend: { live: true },
    }, data, plot);
  });
  observer.observe(plot);
}
