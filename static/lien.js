// Progressive enhancement only: every action also works as a plain form without this script.
"use strict";
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.matches("form.confirm") && !window.confirm(form.dataset.confirm || "Are you sure?")) {
    event.preventDefault();
    return;
  }
  // Every small button on a page (votes, save, hide) submits the one hidden form, to its own
  // formaction; votes are sent in the background.
  if (form.id !== "vote" || !event.submitter || !event.submitter.formAction.endsWith("/vote")) return;
  event.preventDefault();
  const button = event.submitter;
  const body = new URLSearchParams(new FormData(form, button));
  const response = await fetch(button.formAction, {
    method: "POST", body, headers: { Accept: "application/json" }, credentials: "same-origin",
  });
  if (!response.ok) { form.action = button.formAction; form.submit(); return; }
  const { score, vote } = await response.json();
  const item = button.closest("[data-score]");
  if (item) item.dataset.score = score;
  const shown = item && item.querySelector(".score");
  if (shown) shown.textContent = score;
  const up = button.parentElement.querySelector(".up"), down = button.parentElement.querySelector(".down");
  up.classList.toggle("on", vote === 1); up.value = vote === 1 ? "0" : "1";
  down.classList.toggle("on", vote === -1); down.value = vote === -1 ? "0" : "-1";
});

// On the submit form, offer the linked page's title when only the link was typed.
const linkField = document.querySelector('form.story-form[action="/submit"] input[name=url]');
const titleField = linkField && linkField.form.querySelector("input[name=title]");
// Before sharing, say whether the link is already under discussion here (the server's own notice,
// as GET /submit?url= shows it without the script).
if (linkField) {
  linkField.addEventListener("change", async () => {
    const link = linkField.value.trim();
    const old = document.querySelector(".notice.already");
    if (old) old.remove();
    if (!link || !linkField.checkValidity()) return;
    try {
      const response = await fetch("/submit?url=" + encodeURIComponent(link), { credentials: "same-origin" });
      if (!response.ok || linkField.value.trim() !== link) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const notice = page.querySelector(".notice.already");
      if (notice) linkField.form.before(document.adoptNode(notice));
    } catch (_) { /* the form works without the notice */ }
  });
}
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

// "reply" opens the comment's own page; here it brings the page's one comment form under the
// comment instead, set to answer it.
document.addEventListener("click", (event) => {
  const link = event.target.closest(".comment .actions a.reply");
  const main = document.getElementById("comment");
  if (!link || !main || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  let form = document.getElementById("reply-here");
  if (!form) {
    form = main.cloneNode(true);
    form.id = "reply-here";
    form.querySelector("label").firstChild.textContent = "Reply ";
  }
  form.querySelector("input[name=parent_id]").value = link.closest(".comment").dataset.id;
  link.closest(".actions").after(form);
  form.querySelector("textarea").focus();
});
