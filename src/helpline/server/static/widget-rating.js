// Rating in the widget: after the customer says goodbye, or from "Rate this chat" below the
// conversation, the shared rating card (rating-card.js) appears under the messages, inside
// the widget's shadow root and outside the log that the conversation is redrawn into.

import { el } from "./common.js";
import { GOODBYE, RATING_WORDS, ratingCard, sendRating } from "./rating-card.js";

export class WidgetRating {
  /** Adds its place to `container`; `widget` has the open conversation (`session`), the
   * credential that opens it (`credential()`) and the words the site chose (`strings`). */
  constructor(widget, base, container) {
    this.widget = widget;
    this.base = base;
    this.card = null;
    this.cardFor = null; // the conversation the card rates
    this.slot = el("div", "rating-slot");
    this.button = el("button", "text rate-chat", widget.strings.rateChat ?? RATING_WORDS.rateChat);
    this.button.type = "button";
    this.button.hidden = true;
    this.button.addEventListener("click", () => this.ask());
    this.slot.append(this.button);
    container.append(this.slot);
  }

  /** "Rate this chat" shows once the open conversation has messages; a card for another goes. */
  update(hasMessages) {
    const id = this.widget.session?.id ?? null;
    if (this.card && this.cardFor !== id) {
      this.card.remove();
      this.card = null;
    }
    this.button.hidden = !id || !hasMessages || Boolean(this.card);
  }

  /** After the customer's `text` was answered: a goodbye brings up the card. */
  after(text) {
    if (GOODBYE.test(text)) this.ask();
  }

  /** The rating card for the open conversation (one at a time), focused on its first score. */
  ask() {
    const session = this.widget.session;
    if (!session) return;
    if (!this.card) {
      const send = (score, comment) =>
        sendRating(this.base, session.id, this.widget.credential(), score, comment);
      this.card = ratingCard(send, this.widget.strings);
      this.cardFor = session.id;
      this.slot.append(this.card);
      this.button.hidden = true;
    }
    this.card.scrollIntoView({ block: "nearest" });
    this.card.focusFirst();
  }
}
