// IDC console: the network table (sort, filter, pages) and the per-station page, fed by
// /events (the same document as `ims idc status --json`).
"use strict";

const PAGE_ROWS = 50;
const view = { sortKey: "station", sortDesc: false, page: 0, data: null };

function reasons(row) {
  return Object.entries(row.rejected).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
}

function stationLevel(row) {
  if (!row.connected) return "bad";
  if ((row.availability_pct !== null && row.availability_pct < 99) || row.rejected_total > 0) return "warn";
  return "";
}

const STATION_COLUMNS = [
  { key: "station", label: "station", format: (r) => ims.el("a", { href: `/station/${encodeURIComponent(r.station)}`, text: r.station }) },
  { key: "connected", label: "link", format: (r) => (r.connected ? "connected" : "DISCONNECTED"), level: (r) => (r.connected ? "ok" : "bad") },
  { key: "last_heard_ns", label: "last frame", format: (r) => ims.ago(view.data.now_ns, r.last_heard_ns) },
  { key: "availability_pct", label: "avail. %", num: 2 },
  { key: "gaps", label: "gaps", num: 0 },
  { key: "timeliness_s", label: "timeliness s", num: 1 },
  { key: "latency_s", label: "latency s", num: 3 },
  { key: "authenticated_pct", label: "auth. %", num: 1 },
  { key: "status_flags", label: "status flags seen", format: (r) => Object.keys(r.status_flags).join(", ").replaceAll("_", " ") || "none" },
  { key: "frames", label: "frames", num: 0 },
  { key: "rejected_total", label: "rejected", num: 0 },
  { key: "rejected", label: "rejected by reason", format: reasons },
];

function sortValue(row, key) {
  const v = row[key];
  if (key === "rejected") return row.rejected_total;
  if (key === "status_flags") return Object.keys(v).length;
  return v === null || v === undefined ? -Infinity : v;
}

function renderNetwork() {
  const data = view.data;
  const stations = data.stations;
  const connected = stations.filter((s) => s.connected).length;
  const withAvail = stations.filter((s) => s.availability_pct !== null);
  const mean = withAvail.reduce((a, s) => a + s.availability_pct, 0) / (withAvail.length || 1);
  const rejected = stations.reduce((a, s) => a + s.rejected_total, 0);
  const problems = stations.filter((s) => stationLevel(s) !== "").length;
  document.getElementById("summary").replaceChildren(
    ims.card("stations connected", `${connected} / ${stations.length}`, null, connected < stations.length ? "bad" : ""),
    ims.card(`availability, last ${(data.window_s / 3600).toFixed(1)} h`, `${ims.num(mean, 2)} %`, "mean over stations", mean < 99 ? "warn" : ""),
    ims.card("stations needing attention", String(problems), null, problems ? "warn" : ""),
    ims.card("frames rejected", String(rejected), "since the receiver's records began", rejected ? "warn" : ""),
    ims.card("input from no known station", String(Object.values(data.anonymous).reduce((a, v) => a + v, 0)),
      Object.entries(data.anonymous).map(([k, v]) => `${k} ${v}`).join(", ") || "none"),
  );
  const needle = document.getElementById("filter").value.trim().toLowerCase();
  const onlyProblems = document.getElementById("problems").checked;
  let rows = stations.filter((s) => s.station.toLowerCase().includes(needle) && (!onlyProblems || stationLevel(s)));
  rows = rows.slice().sort((a, b) => {
    const x = sortValue(a, view.sortKey), y = sortValue(b, view.sortKey);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return view.sortDesc ? -order : order;
  });
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  view.page = Math.min(view.page, pages - 1);
  const shown = rows.slice(view.page * PAGE_ROWS, (view.page + 1) * PAGE_ROWS);
  ims.table(document.getElementById("stations"), STATION_COLUMNS, shown, {
    rowLevel: stationLevel, sortKey: view.sortKey, sortDesc: view.sortDesc,
    onSort: (key) => { view.sortDesc = view.sortKey === key ? !view.sortDesc : false; view.sortKey = key; renderNetwork(); },
  });
  document.getElementById("pageinfo").textContent =
    `page ${view.page + 1} of ${pages} · ${rows.length} of ${stations.length} stations`;
  document.getElementById("prev").disabled = view.page === 0;
  document.getElementById("next").disabled = view.page >= pages - 1;
}

function startNetwork() {
  for (const id of ["filter", "problems"]) {
    document.getElementById(id).addEventListener("input", () => { view.page = 0; if (view.data) renderNetwork(); });
  }
  document.getElementById("prev").addEventListener("click", () => { view.page -= 1; renderNetwork(); });
  document.getElementById("next").addEventListener("click", () => { view.page += 1; renderNetwork(); });
  ims.live("/events", (data) => { view.data = data; renderNetwork(); });
}

function renderStation(data) {
  const s = data.station;
  document.getElementById("title").textContent = `Station ${s.station}`;
  document.getElementById("summary").replaceChildren(
    ims.card("link", s.connected ? "connected" : "DISCONNECTED", `last frame ${ims.ago(data.now_ns, s.last_heard_ns)}`, s.connected ? "" : "bad"),
    ims.card(`availability, last ${(data.window_s / 3600).toFixed(1)} h`, `${ims.num(s.availability_pct, 2)} %`, `${s.gaps} gaps`, s.availability_pct !== null && s.availability_pct < 99 ? "warn" : ""),
    ims.card("latency", `${ims.num(s.latency_s, 3)} s`, `timeliness ${ims.num(s.timeliness_s, 1)} s`),
    ims.card("frames rejected", String(s.rejected_total), reasons(s), s.rejected_total ? "warn" : ""),
  );
  ims.table(document.getElementById("channels"), [
    { key: "channel", label: "channel" },
    { key: "availability_pct", label: "avail. %", num: 2, level: (r) => (r.availability_pct < 99 ? "warn" : "") },
    { key: "gap_count", label: "gaps", num: 0 },
    { key: "longest_gap_s", label: "longest gap s", num: 1 },
    { key: "timeliness_s", label: "timeliness s", num: 1 },
    { key: "latency_s", label: "latency s", num: 3 },
    { key: "authenticated_pct", label: "auth. %", num: 1 },
  ], data.channels);
  const gaps = data.channels.flatMap((c) => c.gap_list.map((g) => ({ channel: c.channel, ...g })));
  ims.table(document.getElementById("gaps"), [
    { key: "channel", label: "channel" },
    { key: "start_ns", label: "from (UTC)", format: (r) => ims.utc(r.start_ns) },
    { key: "end_ns", label: "to (UTC)", format: (r) => ims.utc(r.end_ns) },
    { key: "seconds", label: "seconds", num: 1 },
  ], gaps);
  ims.table(document.getElementById("flags"), [
    { key: "flag", label: "CD-1.1 status flag" }, { key: "frames", label: "frames carrying it", num: 0 },
  ], Object.entries(s.status_flags).map(([flag, frames]) => ({ flag, frames })));
  ims.table(document.getElementById("keys"), [
    { key: "key_id", label: "key id" }, { key: "algorithm", label: "algorithm" },
    { key: "not_before_ns", label: "valid from (UTC)", format: (r) => ims.utc(r.not_before_ns) },
    { key: "not_after_ns", label: "valid until (UTC)", format: (r) => ims.utc(r.not_after_ns) },
    { key: "valid_now", label: "now", format: (r) => (r.revoked_ns !== null ? `REVOKED ${ims.utc(r.revoked_ns)}` : r.valid_now ? "valid" : "not valid"),
      level: (r) => (r.valid_now ? "ok" : "bad") },
  ], data.keys || [], { empty: "no certificate for this station in the trust store" });
  ims.table(document.getElementById("counters"), [
    { key: "name", label: "counter" }, { key: "value", label: "value", num: 0 },
  ], data.counters);
  ims.table(document.getElementById("rejections"), [
    { key: "received_ns", label: "received (UTC)", format: (r) => ims.utc(r.received_ns) },
    { key: "reason", label: "reason" }, { key: "seq", label: "seq" }, { key: "peer", label: "peer" },
    { key: "size", label: "bytes", num: 0 },
  ], data.rejections);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.view === "network") startNetwork();
  else {
    ims.live(`/events/station/${encodeURIComponent(document.body.dataset.station)}`, (data) => {
      if (data) renderStation(data);
      else document.getElementById("title").textContent = "No such station in the receiver's records";
    });
  }
});
