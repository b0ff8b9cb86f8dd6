// The rating card: a score from 1 to 5 and an optional comment. Shared by the chat page
// (rating.js) and the widget; it looks nothing up in the page, and its words can be replaced.

import { el, errorMessage } from "./common.js";

/** A customer's line that says goodbye: the card is offered after its answer. */
export const GOODBYE = /\b(bye|goodbye|good bye|see you|cheers|that'?s all|that is all|that'?s it for now)\b/i;

export const RATING_WORDS = {
  rateChat: "Rate this chat",
  ratingQuestion: "How did we do? Rate this chat from 1 (poor) to 5 (great).",
  yourRating: "Your rating",
  score1: "Poor",
  score2: "Not good",
  score3: "OK",
  score4: "Good",
  score5: "Great",
  ratingComment: "Anything you'd like to add? (optional)",
  sendRating: "Send rating",
  ratingThanks: "Thanks for your rating: {score} of 5.",
  ratingFailed: "Couldn't send your rating: {message}. Try again in a moment.",
};

/** A rating form. `send(score, comment)` posts it and resolves to the response; `words`
 * replaces any of RATING_WORDS. Focus its first score with `card.focusFirst()`. */
export function ratingCard(send, words = {}) {
  const say = (name, values = {}) =>
    String(words[name] ?? RATING_WORDS[name]).replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
  const card = el("form", "rating-card");
  card.setAttribute("aria-label", say("rateChat"));
  const question = el("p", "rating-question", say("ratingQuestion"));
  const scores = el("div", "rating-scores");
  scores.setAttribute("role", "group");
  scores.setAttribute("aria-label", say("yourRating"));
  let chosen = 0;
  const submit = el("button", "primary", say("sendRating"));
  submit.type = "submit";
  submit.disabled = true;
  for (let score = 1; score <= 5; score += 1) {
    const choice = el("button", "", String(score));
    choice.type = "button";
    choice.title = say(`score${score}`);
    choice.setAttribute("aria-label", `${score}: ${say(`score${score}`)}`);
    choice.setAttribute("aria-pressed", "false");
    choice.addEventListener("click", () => {
      chosen = score;
      for (const other of scores.children) other.setAttribute("aria-pressed", String(other === choice));
      submit.disabled = false;
    });
    scores.append(choice);
  }
  const label = el("label", "", say("ratingComment"));
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
      const response = await send(chosen, comment.value.trim() || null);
      if (!response.ok) {
        note.textContent = await errorMessage(response);
        submit.disabled = false;
        return;
      }
      const thanks = el("p", "rating-thanks", say("ratingThanks", { score: chosen }));
      thanks.setAttribute("role", "status");
      card.replaceChildren(thanks);
    } catch (error) {
      note.textContent = say("ratingFailed", { message: error.message });
      submit.disabled = false;
    }
  });
  card.focusFirst = () => scores.firstChild?.focus();
  return card;
}

/** POST /api/conversations/{id}/rating on `base` with the conversation's `credential`. */
export function sendRating(base, conversationId, credential, score, comment) {
  return fetch(`${base}/api/conversations/${conversationId}/rating`, {
    method: "POST",
    headers: { Authorization: `Bearer ${credential}`, "Content-Type": "application/json" },
    body: JSON.stringify({ score, comment }),
  });
}
