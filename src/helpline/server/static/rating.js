// Asking the customer to rate the chat from 1 to 5, with an optional comment: after they say
// goodbye, or when they choose "Rate this chat". The card itself is rating-card.js.

import { GOODBYE, ratingCard, sendRating } from "./rating-card.js";

const STORAGE_KEY = "helpline.conversation";

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
  card = ratingCard((score, comment) => sendRating("", current.id, current.token, score, comment));
  log.append(card);
  card.scrollIntoView({ block: "nearest" });
  card.focusFirst();
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
