// Station console: equipment, alarms, link, disk, channels and a live waveform, fed by /events.
"use strict";

const MB = 1e6;

function reading(status, name, source) {
  const r = status.readings.find((x) => x.name === name && x.source === source);
  return r ? r.value : null;
}

function alarmsOf(status, sources) {
  return status.alarms.filter((a) => sources.includes(a.source));
}

function alarmText(a) {
  return a.message || a.name.replaceAll("_", " ");
}

function severityLevel(a) {
  return a.severity === "CRITICAL" ? "bad" : a.severity === "WARNING" ? "warn" : "";
}

function renderSummary(status) {
  const critical = status.alarms.filter((a) => a.severity === "CRITICAL").length;
  const warnings = status.alarms.filter((a) => a.severity === "WARNING").length;
  const now = status.now_ns;
  const link = status.link;
  const connected = link.state === "data";
  const backlog = status.outbox.unacked_frames;
  const oldest = status.oldest_unacked_ns === null ? "none waiting" : `oldest waiting since ${ims.ago(now, status.oldest_unacked_ns)}`;
  const disk = status.disk;
  const used = disk.archive_used_bytes === null ? "not measured yet" : `${(disk.archive_used_bytes / MB).toFixed(0)} MB`;
  const measured = disk.archive_measured_ns === null ? "" : ` · measured ${ims.ago(now, disk.archive_measured_ns)}`;
  const free = disk.free_bytes === null ? "unknown" : `${(disk.free_bytes / MB / 1000).toFixed(1)} GB free on disk`;
  document.getElementById("summary").replaceChildren(
    ims.card("station", critical ? `${critical} CRITICAL` : (warnings ? `${warnings} warning(s)` : "OK"),
      status.alarms.length ? alarmText(status.alarms[0]) : "no active alarms", critical ? "bad" : (warnings ? "warn" : "")),
    ims.card("GCI link to the IDC", connected ? "connected" : link.state.toUpperCase(),
      `last ack after ${link.last_ack_latency_ns === null ? "–" : (link.last_ack_latency_ns / 1e9).toFixed(2)} s · `
      + `sent ${link.frames_sent} · acked ${link.frames_acked} · reconnects ${link.reconnects}`, connected ? "" : "bad"),
    ims.card("outbox backlog", `${backlog} frames`, oldest, backlog > 10 ? "warn" : ""),
    ims.card("local archive", used, `budget ${(disk.archive_budget_bytes / MB).toFixed(0)} MB${measured} · ${free}`,
      disk.archive_used_bytes !== null && disk.archive_used_bytes > disk.archive_budget_bytes ? "warn" : ""),
  );
}

function renderEquipment(status) {
  const rows = Object.entries(status.digitizer_links).map(([name, d]) => {
    const sid = d.system_id;
    const counters = status.digitizers[name] || {};
    const masses = status.readings.filter((r) => r.name === "mass_position" && r.source.startsWith(`${sid}/`))
      .map((r) => r.value.toFixed(2)).join(" ");
    const own = alarmsOf(status, [sid]);
    return { name, sid, silent: d.silent, heard: d.last_heard_ns, counters, masses, own,
      gps: reading(status, "gps_locked", sid), sats: reading(status, "gps_satellites", sid),
      offset: reading(status, "clock_offset_ns", sid), temp: reading(status, "temperature_c", sid),
      volts: reading(status, "supply_volts", sid) };
  });
  ims.table(document.getElementById("equipment"), [
    { key: "name", label: "digitizer", format: (r) => `${r.name} (${r.sid})` },
    { key: "silent", label: "link", format: (r) => (r.silent ? "NO DATA" : "receiving"), level: (r) => (r.silent ? "bad" : "ok") },
    { key: "heard", label: "last data", format: (r) => ims.ago(status.now_ns, r.heard) },
    { key: "gps", label: "GPS", format: (r) => (r.gps === null ? "–" : r.gps ? (r.sats === null ? "locked" : `locked (${r.sats} sat.)`) : "UNLOCKED"), level: (r) => (r.gps === 0 ? "warn" : "") },
    { key: "offset", label: "clock offset µs", format: (r) => (r.offset === null ? "–" : (r.offset / 1000).toFixed(1)) },
    { key: "temp", label: "temp. °C", num: 1 },
    { key: "volts", label: "supply V", num: 2 },
    { key: "masses", label: "mass positions" },
    { key: "counters", label: "blocks / checksum errors", format: (r) => `${r.counters.blocks ?? 0} / ${r.counters.checksum_failures ?? 0}` },
    { key: "own", label: "alarms", format: (r) => r.own.map(alarmText).join("; ") || "none" },
  ], rows, { rowLevel: (r) => (r.silent || r.own.some((a) => a.severity === "CRITICAL") ? "bad" : r.own.length ? "warn" : "") });
  const site = status.readings.filter((r) => r.source === "station").map((r) => ({
    name: r.name.replace("tamper_", "tamper: ").replaceAll("_", " "),
    value: r.name.startsWith("tamper_") ? (r.value ? "OPEN" : "closed") : r.name === "mains_ok" ? (r.value ? "present" : "FAILED") : r.value.toFixed(2),
    bad: (r.name.startsWith("tamper_") && r.value) || (r.name === "mains_ok" && !r.value),
    time_ns: r.time_ns,
  }));
  ims.table(document.getElementById("site"), [
    { key: "name", label: "tamper and power" }, { key: "value", label: "state", level: (r) => (r.bad ? "bad" : "ok") },
    { key: "time_ns", label: "at (UTC)", format: (r) => ims.utc(r.time_ns) },
  ], site, { empty: "no tamper or power inputs reported" });
}

function renderAlarms(status) {
  const columns = [
    { key: "severity", label: "severity", level: severityLevel },
    { key: "name", label: "alarm" }, { key: "source", label: "source" },
    { key: "message", label: "why", format: alarmText },
    { key: "raised_ns", label: "since (UTC)", format: (r) => ims.utc(r.raised_ns) },
  ];
  ims.table(document.getElementById("alarms"), columns, status.alarms, { rowLevel: severityLevel });
  ims.table(document.getElementById("recent"), columns.concat([
    { key: "cleared_ns", label: "cleared (UTC)", format: (r) => ims.utc(r.cleared_ns) }]), status.recent_alarms);
  ims.table(document.getElementById("channels"), [
    { key: "code", label: "channel" }, { key: "samples", label: "samples", num: 0 },
    { key: "gaps", label: "gaps", num: 0 }, { key: "late_packets", label: "late", num: 0 },
    { key: "complete_until", label: "complete until (UTC)" },
  ], Object.entries(status.channels).map(([code, c]) => ({ code, ...c })));
}

function renderRadionuclide(status) {
  const systems = Object.entries(status.radionuclide || {});
  document.getElementById("rn-section").hidden = !systems.length;
  if (!systems.length) return;
  ims.table(document.getElementById("radionuclide"), [
    { key: "name", label: "system" }, { key: "kind", label: "kind" },
    { key: "running", label: "cycle", format: (r) => (r.running ? "running" : "STOPPED"), level: (r) => (r.running ? "ok" : "bad") },
    { key: "count", label: "current count", format: (r) => (r.count ? `${r.count.key} (${ims.utc(r.count.start_ns)} to ${ims.utc(r.count.end_ns)})${r.count.finished ? ", finished" : ""}` : "none") },
    { key: "messages", label: "messages stored / awaiting ack", format: (r) => (r.messages ? `${r.messages.stored} / ${r.messages.pending}` : "–") },
    { key: "quarantined", label: "quarantined", num: 0 },
    { key: "alarms", label: "alarms", format: (r) => (r.alarms || []).map(alarmText).join("; ") || "none", level: (r) => ((r.alarms || []).length ? "warn" : "") },
  ], systems.map(([name, rn]) => ({ name, ...rn })));
}

function renderWave(data) {
  const select = document.getElementById("channel");
  const names = Array.from(select.options).map((o) => o.value);
  if (names.join() !== data.channels.join()) {
    select.replaceChildren(...data.channels.map((c) => ims.el("option", { value: c, text: c })));
    select.value = data.channel || "";
  }
  const canvas = document.getElementById("wave");
  const wave = data.wave;
  if (!wave || !wave.t_ms.length) { document.getElementById("wavespan").textContent = "no samples yet"; return; }
  const points = [];
  wave.t_ms.forEach((t, i) => { points.push([t, wave.min[i]], [t, wave.max[i]]); });
  const end = wave.t_ms[wave.t_ms.length - 1];
  canvas.dataset.end = String(end);
  ims.wave(canvas, points, 300, BigInt(end) * 1000000n);
  document.getElementById("wavespan").textContent =
    `${data.channel}: last 5 min, to ${new Date(end).toISOString().slice(11, 19)} UTC (min/max per 0.5 s)`;
}

let source = null;

function connect(channel) {
  if (source) source.close();
  source = ims.live(`/events${channel ? `?channel=${encodeURIComponent(channel)}` : ""}`, (data) => {
    const status = data.status;
    document.getElementById("title").textContent = `Station ${status.station}`;
    const state = document.getElementById("state");
    state.textContent = status.running ? "running" : "STOPPED";
    state.className = status.running ? "ok" : "bad";
    renderSummary(status);
    renderAlarms(status);
    renderEquipment(status);
    renderRadionuclide(status);
    renderWave(data);
    if (data.availability) {
      ims.strip(document.getElementById("strip-hours"), data.availability.hours);
      ims.strip(document.getElementById("strip-days"), data.availability.days);
    }
    fillCalibrationChannels(status);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("channel").addEventListener("change", (ev) => connect(ev.target.value));
  connect(null);
});

// Calibration: only for a logged-in operator (the daemon checks the session and its CSRF token), and
// only after the operator confirms what will happen.
const operator = { csrf: null };

async function whoami() {
  const me = await (await fetch("/api/whoami")).json();
  operator.csrf = me.csrf;
  document.getElementById("login").hidden = !me.actions || me.operator;
  document.getElementById("calibrate").hidden = !me.operator;
  document.getElementById("cal-note").textContent = !me.actions
    ? "Read-only: no operator credential is configured for this console."
    : (me.operator ? "" : "Log in as operator to start a calibration.");
}

function fillCalibrationChannels(status) {
  const select = document.getElementById("cal-channel");
  const names = status.calibration_channels;
  if (Array.from(select.options).map((o) => o.value).join() !== names.join()) {
    select.replaceChildren(...names.map((n) => ims.el("option", { value: n, text: n })));
  }
}

function setupCalibration() {
  document.getElementById("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = new URLSearchParams({ token: document.getElementById("token").value });
    const response = await fetch("/login", { method: "POST", body });
    document.getElementById("token").value = "";
    if (!response.ok) document.getElementById("cal-note").textContent = "Wrong operator credential.";
    else await whoami();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST" });
    await whoami();
  });
  document.getElementById("calibrate").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const request = {
      channel: document.getElementById("cal-channel").value,
      signal: document.getElementById("cal-signal").value,
      minutes: Number(document.getElementById("cal-minutes").value),
      hz: document.getElementById("cal-hz").value.trim().split(/\s+/).map(Number),
    };
    const at = request.signal === "sine" ? ` at ${request.hz.join(", ")} Hz` : "";
    const what = `${request.signal} calibration of ${request.channel}${at}, for ${request.minutes} min`;
    if (!window.confirm(`Start a ${what}? The data sent meanwhile carries the calibration flag.`)) return;
    const note = document.getElementById("cal-note");
    note.textContent = `Starting a ${what}…`;
    const response = await fetch("/api/calibrate", {
      method: "POST", body: JSON.stringify(request),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": operator.csrf || "" },
    });
    note.textContent = response.ok ? `Station answered: ${(await response.json()).answer}`
      : `Not started: ${await response.text()}`;
  });
  whoami();
}

document.addEventListener("DOMContentLoaded", setupCalibration);
