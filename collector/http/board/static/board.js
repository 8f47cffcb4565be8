// fleetdesk board: live countdowns, live rows over Server-Sent Events, operator actions.
// Plain EventSource and fetch: no library, no build step.
"use strict";
(function () {
  const loaded = Date.now() / 1000;

  function fmt(s) {
    const neg = s < 0; s = Math.abs(Math.round(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    const m = Math.floor(s % 3600 / 60), sec = s % 60;
    const p = (n) => String(n).padStart(2, "0");
    const text = (d ? d + "d " : "") + p(h) + ":" + p(m) + ":" + p(sec);
    return (neg ? "-" : "") + text;
  }

  function tick() {
    const elapsed = Date.now() / 1000 - loaded;
    document.querySelectorAll(".countdown").forEach((el) => {
      if (!el.dataset.base) el.dataset.base = String(elapsed);
      const left = parseFloat(el.dataset.left) - (elapsed - parseFloat(el.dataset.base));
      el.textContent = fmt(left);
      el.classList.toggle("overdue", left < 0);
      el.setAttribute("aria-label", (left < 0 ? "overdue by " : "left ") + fmt(Math.abs(left)));
    });
  }

  let pending = null;
  function refreshRows() {
    const box = document.getElementById("rows");
    if (!box || pending) return;
    pending = setTimeout(async () => {
      pending = null;
      const reply = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (reply.ok) {
        box.innerHTML = await reply.text();
        const table = box.querySelector("table[data-total]");
        const total = document.getElementById("total");
        if (table && total) total.textContent = table.dataset.total;
        tick();
      }
    }, 200);
  }

  function listen() {
    const live = document.getElementById("live");
    const page = document.body.dataset.page;
    const mine = document.getElementById("ticket");
    const source = new EventSource("/api/v1/events");  // resumes with Last-Event-ID itself
    source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
    const onEvent = (ev) => {
      const data = JSON.parse(ev.data || "{}");
      if (page === "board") refreshRows();
      else if (page === "ticket" && mine && data.number === mine.dataset.number) location.reload();
    };
    ["fault_opened", "ticket", "sla_warning", "maintenance"].forEach((t) => source.addEventListener(t, onEvent));
    source.addEventListener("reset", () => { if (page === "board") refreshRows(); });
  }

  function actions() {
    const form = document.getElementById("actions");
    if (!form) return;
    const out = document.getElementById("action-result");
    form.querySelectorAll("button[data-action]").forEach((button) => {
      button.addEventListener("click", async () => {
        const body = { action: button.dataset.action, reason: form.reason.value };
        if (body.action === "change_level") body.level = form.level.value;
        if (body.action === "mark_exempt" && form.exempt.value) body.exempt = form.exempt.value;
        if (body.action === "change_coverage") body.coverage = form.coverage.value;
        out.textContent = "…";
        const reply = await fetch("/api/v1/tickets/" + encodeURIComponent(form.dataset.number) + "/actions", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-Fleetdesk-Board": "1" },
          body: JSON.stringify(body),
        });
        const answer = await reply.json().catch(() => ({}));
        if (reply.ok) { out.textContent = answer.result + ": " + answer.detail; setTimeout(() => location.reload(), 300); }
        else out.textContent = (answer.error || reply.status) + ": " + (answer.detail || "");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    tick(); setInterval(tick, 1000); listen(); actions();
  });
})();
