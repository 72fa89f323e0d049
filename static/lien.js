// Progressive enhancement only: every action also works as a plain form without this script.
"use strict";
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.matches("form.confirm") && !window.confirm(form.dataset.confirm || "Are you sure?")) {
    event.preventDefault();
    return;
  }
  if (!form.matches("form.vote")) return;
  event.preventDefault();
  const button = event.submitter;
  const body = new URLSearchParams(new FormData(form, button));
  const response = await fetch(form.action, {
    method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin",
  });
  if (!response.ok) { form.submit(); return; }
  const { score, vote } = await response.json();
  const item = form.closest("[data-score]");
  if (item) item.dataset.score = score;
  const shown = item && item.querySelector(".score");
  if (shown) shown.textContent = score;
  const up = form.querySelector(".up"), down = form.querySelector(".down");
  up.classList.toggle("on", vote === 1); up.value = vote === 1 ? "0" : "1";
  down.classList.toggle("on", vote === -1); down.value = vote === -1 ? "0" : "-1";
});

// On the submit form, offer the linked page's title when only the link was typed.
const linkField = document.querySelector('form.story-form[action="/submit"] input[name=url]');
const titleField = linkField && linkField.form.querySelector("input[name=title]");
if (linkField && titleField) {
  linkField.addEventListener("blur", async () => {
    const link = linkField.value.trim();
    if (!link || titleField.value.trim() || !linkField.checkValidity()) return;
    try {
      const response = await fetch("/submit/title?url=" + encodeURIComponent(link), {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (!response.ok) return;
      const { title } = await response.json();
      if (title && !titleField.value.trim() && linkField.value.trim() === link) titleField.value = title;
    } catch (_) { /* the form works without a suggestion */ }
  });
}
