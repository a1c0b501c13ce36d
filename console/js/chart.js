// The throughput chart: stacked bars per minute (succeeded, failed) drawn as inline SVG,
// with a text summary for screen readers and the figures in each bar's title.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

export function throughputChart(minutes) {
  // The SVG stretches to its box (preserveAspectRatio none), so it holds shapes only; the
  // axis labels are HTML around it and keep their size at any width.
  const width = 600;
  const height = 160;
  const left = 0;
  const plotW = width;
  const plotH = height - 8;
  const peak = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed));
  const total = minutes.reduce((sum, m) => sum + m.succeeded + m.failed, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-labelledby": "chart-title chart-desc",
    preserveAspectRatio: "none",
  });
  chart.append(
    svg("title", { id: "chart-title" }, "Jobs finished per minute, last hour"),
    svg("desc", { id: "chart-desc" }, `${total} jobs finished in the last hour, ${failed} of them failed; at most ${peak} in one minute.`),
  );
  for (const tick of [0, peak]) {
    const y = 8 + plotH - (tick / peak) * plotH;
    chart.append(svg("line", { x1: 0, x2: width, y1: y, y2: y, class: "grid", "vector-effect": "non-scaling-stroke" }));
  }
  const slot = plotW / Math.max(1, minutes.length);
  minutes.forEach((m, index) => {
    const x = left + index * slot + 1;
    const okH = (m.succeeded / peak) * plotH;
    const failH = (m.failed / peak) * plotH;
    const group = svg("g");
    group.append(svg("title", {}, `${new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${m.succeeded} succeeded, ${m.failed} failed`));
    group.append(svg("rect", { x, y: 8 + plotH - okH, width: Math.max(1, slot - 2), height: okH, class: "bar-ok" }));
    group.append(svg("rect", { x, y: 8 + plotH - okH - failH, width: Math.max(1, slot - 2), height: failH, class: "bar-failed" }));
    chart.append(group);
  });
  const box = document.createElement("div");
  box.className = "chart-frame";
  const yAxis = document.createElement("div");
  yAxis.className = "y-axis";
  yAxis.setAttribute("aria-hidden", "true");
  yAxis.append(label(String(peak)), label("0"));
  const xAxis = document.createElement("div");
  xAxis.className = "x-axis";
  xAxis.setAttribute("aria-hidden", "true");
  xAxis.append(label("60 min ago"), label("now"));
  box.append(yAxis, chart, xAxis);
  return box;
}

function label(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}
