// MUTT console: the rule form's live preview. Served by the admin function itself
// (no CDN, no build step). Untrusted text is only ever set with textContent.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function ruleFields(form) {
  const body = {};
  for (const name of ["match_type", "match_string", "trap_oid", "syslog_severity", "priority",
                      "prod_handling", "dev_handling", "team_assignment"]) {
    const field = form.elements.namedItem(name);
    if (!field || field.value === "") continue;
    body[name] = name === "priority" ? Number(field.value) : field.value;
  }
  return body;
}

function show(target, lines, cls) {
  target.replaceChildren();
  for (const text of lines) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    target.appendChild(li);
  }
}

async function refreshPreview(form, target, summary) {
  let answer;
  try {
    const response = await fetch("/api/v2/rules/preview", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(ruleFields(form)),
    });
    answer = await response.json();
    if (!response.ok) {
      summary.textContent = "";
      show(target, [answer.error ? answer.error.message : "preview failed"], "error");
      return;
    }
  } catch (err) {
    show(target, ["preview unavailable: " + err], "error");
    return;
  }
  summary.textContent = answer.matched + " of " + answer.examined +
    " events audited in the last " + answer.hours + " h would match";
  const lines = answer.matches.map((m) => m.hostname + ": " + m.message + "  (was " + m.was + ")");
  for (const u of answer.unhandled_matches) {
    lines.push("unhandled ×" + u.count + " " + u.hostname + ": " + u.message);
  }
  show(target, lines.length ? lines : ["no recent event matches"], "");
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("rule-form");
  const target = document.getElementById("preview");
  const summary = document.getElementById("preview-summary");
  if (!form || !target || !summary) return;
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => refreshPreview(form, target, summary), 300);
  };
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  schedule();
});
