// Asking the customer to rate the chat from 1 to 5, with an optional comment: after they say
// goodbye, or when they choose "Rate this chat".

import { el, errorMessage } from "./common.js";

const STORAGE_KEY = "helpline.conversation";
const GOODBYE = /\b(bye|goodbye|good bye|see you|cheers|that'?s all|that is all|that'?s it for now)\b/i;
const LABELS = ["", "Poor", "Not good", "OK", "Good", "Great"];

const log = document.getElementById("log");
const button = document.getElementById("rate-chat");

let card = null;

function session() {
  return JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
}

/** After the customer's `text` was answered: a goodbye brings up the rating card. */
export function offerRatingAfter(text) {
  if (button) button.hidden = !session();
  if (GOODBYE.test(text)) askForRating();
}

/** The rating card at the end of the conversation (one at a time). */
export function askForRating() {
  const current = session();
  if (!current) return;
  if (card?.isConnected) {
    card.querySelector("button").focus();
    return;
  }
  card = el("form", "rating-card");
  card.setAttribute("aria-label", "Rate this chat");
  const question = el("p", "rating-question", "How did we do? Rate this chat from 1 (poor) to 5 (great).");
  const scores = el("div", "rating-scores");
  scores.setAttribute("role", "group");
  scores.setAttribute("aria-label", "Your rating");
  let chosen = 0;
  const submit = el("button", "primary", "Send rating");
  submit.type = "submit";
  submit.disabled = true;
  for (let score = 1; score <= 5; score += 1) {
    const choice = el("button", "", String(score));
    choice.type = "button";
    choice.title = LABELS[score];
    choice.setAttribute("aria-label", `${score}: ${LABELS[score]}`);
    choice.setAttribute("aria-pressed", "false");
    choice.addEventListener("click", () => {
      chosen = score;
      for (const other of scores.children) other.setAttribute("aria-pressed", String(other === choice));
      submit.disabled = false;
    });
    scores.append(choice);
  }
  const label = el("label", "", "Anything you'd like to add? (optional)");
  const comment = el("textarea");
  comment.rows = 2;
  comment.maxLength = 2000;
  label.append(comment);
  const note = el("p", "rating-status");
  note.setAttribute("role", "status");
  card.append(question, scores, label, submit, note);
  card.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen) return;
    submit.disabled = true;
    try {
      const response = await fetch(`/api/conversations/${current.id}/rating`, {
        method: "POST",
        headers: { Authorization: `Bearer ${current.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ score: chosen, comment: comment.value.trim() || null }),
      });
      if (!response.ok) {
        note.textContent = await errorMessage(response);
        submit.disabled = false;
        return;
      }
      card.replaceChildren(el("p", "rating-thanks", `Thanks for your rating: ${chosen} of 5.`));
    } catch (error) {
      note.textContent = `Couldn't send your rating: ${error.message}. Try again in a moment.`;
      submit.disabled = false;
    }
  });
  log.append(card);
  card.scrollIntoView({ block: "nearest" });
  scores.firstChild.focus();
}

if (button) {
  button.hidden = !session();
  button.addEventListener("click", askForRating);
  // A new conversation has nothing to rate yet.
  document.getElementById("new-chat")?.addEventListener("click", () => {
    button.hidden = true;
    card?.remove();
  });
}
