import { api } from "../api.js";
import { throughputChart } from "../chart.js";
import { age, alertBox, announce, errorText, h, pageHeader, poll, replace, table } from "../ui.js";

function pausedCell(item) {
  if (item.paused === undefined) return "—";
  return h("span", { class: item.paused ? "badge status-failed" : "badge status-succeeded" }, item.paused ? "paused" : "running");
}

export function queuesPage(cleanups) {
  // A refresh's error goes once a refresh succeeds; a pause's or resume's stays until the
  // next one (or "Dismiss"), however many refreshes come in between.
  const alert = alertBox();
  const actionAlert = alertBox({ dismissible: true });
  const queues = h("div", { "aria-busy": "true" });
  const types = h("div");
  const chart = h("div", { class: "chart-box" });
  const summary = h("p", { class: "help" });
  // What each part last drew, as JSON: a part is redrawn only when its own data changed.
  const shown = {};
  function changed(part, data) {
    const seen = JSON.stringify(data);
    if (shown[part] === seen) return false;
    shown[part] = seen;
    return true;
  }

  async function toggle(kind, name, paused) {
    const verb = paused ? "resume" : "pause";
    actionAlert.show("");
    try {
      await api("POST", `/v1/${kind}/${name}/${verb}`);
      announce(`${name} ${paused ? "resumed" : "paused"}.`);
      await load();
      // The row was redrawn: keep the keyboard on the same control, now the opposite verb.
      const again = `${paused ? "Pause" : "Resume"} ${name}`;
      [...root.querySelectorAll("button[aria-label]")].find((b) => b.getAttribute("aria-label") === again)?.focus();
    } catch (error) {
      // Named: a refresh failing at the same moment shows the same cause in its own alert.
      actionAlert.show(`${paused ? "Resuming" : "Pausing"} ${name} failed: ${errorText(error)}`);
    }
  }

  function pauseButton(kind, name, item) {
    if (item.paused === undefined) return "—";
    const label = `${item.paused ? "Resume" : "Pause"} ${name}`;
    return h(
      "button",
      { type: "button", class: item.paused ? "" : "secondary", "aria-label": label, onclick: () => toggle(kind, name, item.paused) },
      item.paused ? "Resume" : "Pause",
    );
  }

  async function load() {
    try {
      const [queueList, stats, typeList] = await Promise.all([
        api("GET", "/v1/queues"),
        api("GET", "/v1/stats?window_hours=1&max_age_seconds=5"),
        api("GET", "/v1/job-types"),
      ]);
      queues.setAttribute("aria-busy", "false");
      alert.show("");
      // Unchanged data is not redrawn, so polling never moves the keyboard focus. Each part
      // on its own: the figures' `computed_at` (new whenever they are computed again) or the
      // chart's minutes moving on must not redraw the tables and their buttons.
      if (changed("queues", queueList)) replace(
        queues,
        table(
          "Queues",
          [
            { label: "Queue", cell: (q) => h("strong", {}, q.priority) },
            { label: "Depth", cell: (q) => q.visible },
            { label: "Delayed", cell: (q) => q.delayed },
            { label: "In flight", cell: (q) => q.in_flight },
            { label: "Oldest age", cell: (q) => age(q.oldest_age_seconds) },
            { label: "DLQ depth", cell: (q) => (q.dlq_depth ? h("a", { href: "#/dead-letters", "aria-label": `${q.dlq_depth} dead letters in ${q.priority}` }, q.dlq_depth) : "0") },
            { label: "State", cell: pausedCell },
            { label: "Action", cell: (q) => pauseButton("queues", q.priority, q) },
          ],
          queueList.items,
        ),
      );
      if (changed("types", typeList)) replace(
        types,
        table(
          "Job types",
          [
            { label: "Job type", cell: (t) => t.name },
            { label: "Runs", cell: (t) => (t.external ? "external workers" : "Lambda workers") },
            { label: "State", cell: pausedCell },
            { label: "Action", cell: (t) => pauseButton("job-types", t.name, t) },
          ],
          typeList,
        ),
      );
      const per = stats.throughput_per_minute_last_hour;
      const minutes = stats.throughput_last_hour || [];
      if (changed("chart", [per, minutes])) {
        summary.textContent = `Last hour: ${per.succeeded} succeeded and ${per.failed} failed per minute on average.`;
        replace(chart, throughputChart(minutes), h("p", { class: "legend" }, h("span", { class: "key key-ok" }), " succeeded ", h("span", { class: "key key-failed" }), " failed"));
      }
    } catch (error) {
      alert.show(errorText(error));
    }
  }

  load();
  poll(load, 5000, cleanups);
  const root = h(
    "section",
    {},
    pageHeader("Queues"),
    alert,
    actionAlert,
    queues,
    h("h2", {}, "Throughput"),
    summary,
    chart,
    h("h2", {}, "Job types"),
    types,
  );
  return root;
}
