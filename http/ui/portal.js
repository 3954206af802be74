// The portal: one customer's usage, and nothing of the vendor's
// internals. It opens with a portal link, which carries a signed token
// after the '#', or from the dashboard with a read key pinned to a
// customer (kept in the tab's session storage by the dashboard's sign-in):
// both see this same view of GET /portal/usage.
"use strict";
(function () {
  const view = document.getElementById("view");
  const msg = document.getElementById("msg");
  const hash = decodeURIComponent(location.hash.slice(1));
  const KEY = "odometer.key";
  const key = hash.startsWith("odp_") ? "" : sessionStorage.getItem(KEY) || "";
  const token = hash.startsWith("odp_") ? hash : key;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.append(k);
    return e;
  }

  // signOut forgets the pinned key and goes back to the dashboard's sign-in.
  function signOut() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem("odometer.who");
    location.replace(new URL("./#/signin", location.href).href);
  }

  function fail(text, advice) {
    view.replaceChildren(el("section", { class: "card" },
      el("h1", { text: key ? "This page cannot be opened" : "This link cannot be opened" }),
      el("p", { text: text }),
      el("p", { text: advice || (key ? "Sign in again with your key." : "Ask your provider for a new link.") })));
    document.title = key ? "Usage not available" : "Link not valid";
    document.body.dataset.ready = "portal-error";
  }

  async function get(path) {
    const r = await fetch(path, { headers: { "x-apikey": token }, cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error((body && body.error) || ("The server answered " + r.status));
      e.status = r.status;
      throw e;
    }
    return body;
  }

  const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

  // A cell a spreadsheet would read as a formula (=, +, -, @ before
  // anything but a number) is written as text.
  function csvCell(v) {
    let s = String(v);
    if (/^[=+\-@\t\r]/.test(s) && !/^[-+]?\d/.test(s)) s = "'" + s;
    return /[",\n']/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function download(name, rows) {
    const text = rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name });
    document.body.append(a);
    a.click();
    a.remove();
  }

  async function main() {
    if (key) {
      document.getElementById("who").hidden = false;
      document.getElementById("signout").addEventListener("click", signOut);
    }
    if (!token) {
      fail("This page opens with a usage link; this address has none.");
      return;
    }
    let view0;
    try {
      view0 = await get("/portal/usage");
    } catch (e) {
      // A key that reads every customer names none: the dashboard is its page.
      if (key && e.status === 400) fail("This page shows the usage of the customer a key is pinned to; this key is not pinned to one.", "Open the dashboard instead.");
      else fail(e.message);
      return;
    }
    const customer = view0.customerId;
    if (key) document.getElementById("who-label").textContent = "Customer " + customer;
    const meters = view0.meters.map((m) => ({ name: m.name, description: m.description || "", unit: m.unit ? m.unit + "s" : "" }));
    const aggs = view0.periods.map((p) => Object.assign({ period: view0.period }, p));
    const h1 = el("h1", { text: customer ? "Usage of " + customer : "Usage" });
    const section = el("section", { class: "card" }, h1);
    if (aggs.length === 0) {
      section.append(el("p", { text: "No usage recorded yet." }));
      view.replaceChildren(section);
      document.body.dataset.ready = "portal";
      return;
    }
    const periods = aggs.slice().sort((a, b) => a.periodStart.localeCompare(b.periodStart)).reverse();
    const table = el("table", { class: "data" });
    const unitOf = { monthly: "month", billing: "billing cycle", daily: "day", weekly: "week", yearly: "year", hourly: "hour" };
    table.append(el("caption", { text: "Usage per meter and " + (unitOf[view0.period] || "period") }));
    const head = el("tr", {}, el("th", { scope: "col", text: "Meter" }), el("th", { scope: "col", text: "What it counts" }));
    // The period's first day in the customer's zone is its key (YYYYMMDD or YYYYMM).
    const keyLabel = (a) => (a.periodKey.length === 8 ? a.periodKey.slice(0, 4) + "-" + a.periodKey.slice(4, 6) + "-" + a.periodKey.slice(6) : a.periodKey.length === 6 ? a.periodKey.slice(0, 4) + "-" + a.periodKey.slice(4) : a.periodStart.slice(0, 10)) + (a.complete ? "" : " (in progress)");
    for (const a of periods) head.append(el("th", { scope: "col", class: "num", text: keyLabel(a) }));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    const csv = [["meter", "group", ...periods.map((a) => a.periodKey)]];
    for (const m of meters) {
      if (!periods.some((a) => m.name in a.events)) continue;
      const row = el("tr", { "data-meter": m.name }, el("th", { scope: "row", text: m.name }), el("td", { text: [m.description, m.unit].filter(Boolean).join(", ") }));
      for (const a of periods) {
        const cell = el("td", { class: "num", "data-key": a.periodKey, text: m.name in a.events ? fmt.format(a.events[m.name]) : "" });
        if (m.name in a.events) cell.dataset.value = a.events[m.name];
        row.append(cell);
      }
      body.append(row);
      csv.push([m.name, "", ...periods.map((a) => (m.name in a.events ? a.events[m.name] : ""))]);
      const groups = new Map();
      for (const a of periods) for (const g of ((a.groups || {})[m.name] || [])) groups.set(JSON.stringify(g.group), g.group);
      for (const [key, g] of groups) {
        const name = Object.entries(g).map(([k, v]) => k + " " + (v === "" ? "(none)" : v)).join(", ");
        const grow = el("tr", { class: "group" }, el("th", { scope: "row", text: "\u2003" + name }), el("td"));
        const vals = periods.map((a) => (((a.groups || {})[m.name] || []).find((x) => JSON.stringify(x.group) === key) || {}).value);
        for (const v of vals) grow.append(el("td", { class: "num", text: v === undefined ? "" : fmt.format(v) }));
        body.append(grow);
        csv.push([m.name, name, ...vals.map((v) => (v === undefined ? "" : v))]);
      }
    }
    table.append(body);
    const button = el("button", { type: "button", id: "csv", text: "Download CSV" });
    button.addEventListener("click", () => download("usage" + (customer ? "-" + customer : "") + ".csv", csv));
    section.append(el("div", { class: "scroll" }, table), el("p", {}, button));
    view.replaceChildren(section);
    msg.hidden = true;
    document.body.dataset.ready = "portal";
  }
  // Another link pasted in the same tab: start again with its token.
  window.addEventListener("hashchange", () => location.reload());
  main();
})();
