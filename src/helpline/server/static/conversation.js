// Rendering a conversation (stored wire-form messages or a live stream) into the page.
// Shared by the customer chat and the agents' page; everything goes through renderMarkdown
// or textContent, never innerHTML.

import { el } from "./common.js";
import { renderMarkdown, renderInline } from "./markdown.js";

const TOOL_LABELS = new Map(); // tool name → [while it runs, once it has run]
const SHARED_IMAGE = /^\[Shared image: (\S+)\]$/;

/** Loads what customers are shown for each tool (GET /api/tools); without it, generic words.
 * `base`: the Helpline server's address when the page is on another site (the widget). */
export async function loadToolLabels(base = "") {
  try {
    const response = await fetch(`${base}/api/tools`);
    if (!response.ok) return;
    for (const { name, activity, done } of (await response.json()).tools) {
      TOOL_LABELS.set(name, [`${activity}…`, done]);
    }
  } catch {
    // The conversation still renders, with generic labels.
  }
}

function toolLabels(name) {
  return TOOL_LABELS.get(name) ?? ["Working on it…", "Done"];
}

/** Splits a user message into its words and the images it shared. */
export function splitUserContent(content) {
  const text = typeof content === "string"
    ? content
    : (content ?? []).filter((p) => p.type === "text").map((p) => p.text).join("\n");
  const images = [];
  const words = [];
  for (const line of text.split("\n")) {
    const shared = SHARED_IMAGE.exec(line.trim());
    if (shared) images.push(shared[1]);
    else words.push(line);
  }
  return { text: words.join("\n").trim(), images };
}

/**
 * A conversation view over `log`. `loadImage(reference)` returns a URL to show an
 * `image://ID` reference (the page fetches it with its credentials), or null.
 */
export class ConversationView {
  constructor(log, { loadImage = async () => null, showDetails = false } = {}) {
    this.log = log;
    this.loadImage = loadImage;
    this.showDetails = showDetails;
    this.turn = null;
    this.bubble = null;
    this.text = "";
    this.tools = new Map();
    this.unrendered = new Map(); // bubble → its latest text, drawn at the next frame
    this.frame = 0;
  }

  clear() {
    this.log.replaceChildren();
    this.turn = this.bubble = null;
    this.tools.clear();
    this.unrendered.clear();
  }

  scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  row(role) {
    const row = el("div", `message ${role}`);
    const who = { user: "You said:", agent: "Support team:" }[role] ?? "Assistant:";
    row.append(el("span", "sr-only", who));
    this.log.append(row);
    return row;
  }

  /** A reply a person from the support team wrote. */
  addAgent(content) {
    this.finishTurn();
    const row = this.row("agent");
    row.append(el("span", "who", "Support team"));
    const bubble = el("div", "bubble md");
    bubble.append(renderMarkdown(String(content ?? "")));
    row.append(bubble);
    this.scroll();
  }

  /** The customer's message; `preview` is a local object URL for an image being sent. */
  addUser(content, preview = null) {
    const { text, images } = splitUserContent(content);
    const row = this.row("user");
    const bubble = el("div", "bubble");
    row.append(bubble);
    for (const reference of images) bubble.append(this.imageNode(reference, preview));
    if (!images.length && preview) bubble.append(this.imageNode(null, preview));
    if (text) {
      const body = el("div", "md");
      body.append(renderMarkdown(text));
      bubble.append(body);
    }
    this.turn = this.bubble = null;
    this.scroll();
  }

  imageNode(reference, preview) {
    const figure = el("figure", "shared-image");
    if (reference && !reference.startsWith("image://")) {
      figure.append(el("span", "chip", "Shared an image link: "), ...renderInline(reference));
      return figure;
    }
    const img = el("img");
    img.alt = "Shared image";
    img.loading = "lazy";
    figure.append(img);
    if (preview) img.src = preview;
    else if (reference) this.loadImage(reference).then((url) => {
      if (url) img.src = url;
      else figure.replaceChildren(el("span", "chip", "Shared an image"));
    });
    return figure;
  }

  /** Starts the assistant's answer (streamed); returns its row. */
  startTurn() {
    this.turn = this.row("assistant");
    this.turn.setAttribute("aria-busy", "true");
    this.bubble = null;
    this.text = "";
    this.scroll();
    return this.turn;
  }

  ensureTurn() {
    if (!this.turn) this.startTurn();
  }

  appendText(delta) {
    this.ensureTurn();
    if (!this.bubble) {
      this.bubble = el("div", "bubble md");
      this.turn.append(this.bubble);
      this.text = "";
    }
    this.text += delta;
    this.unrendered.set(this.bubble, this.text);
    this.frame ||= requestAnimationFrame(() => this.render());
  }

  /** Draws each streaming bubble once per frame, however many tokens came in between:
   * re-rendering the whole answer on every token would cost the square of its length. */
  render() {
    this.frame = 0;
    for (const [bubble, text] of this.unrendered) bubble.replaceChildren(renderMarkdown(text));
    this.unrendered.clear();
    this.scroll();
  }

  /** The model's stream was retried: drop the text shown since the last tool round. */
  restart() {
    if (this.bubble) {
      this.unrendered.delete(this.bubble);
      this.bubble.remove();
    }
    this.bubble = null;
    this.text = "";
  }

  toolCall(id, name, argumentsText) {
    this.ensureTurn();
    const [running] = toolLabels(name);
    const chip = el("div", "tool running");
    chip.append(el("span", "spinner"), el("span", "label", running));
    if (this.showDetails) chip.append(this.details(name, argumentsText));
    chip.dataset.name = name;
    this.turn.append(chip);
    this.tools.set(id, chip);
    this.bubble = null;
    this.scroll();
  }

  toolProgress(id, text) {
    const chip = this.tools.get(id);
    if (chip) chip.querySelector(".label").textContent = text;
  }

  toolResult(id, name, content) {
    let chip = this.tools.get(id);
    if (!chip) {
      this.toolCall(id, name, "");
      chip = this.tools.get(id);
    }
    const failed = String(content).startsWith("Error:");
    chip.classList.remove("running");
    chip.classList.add(failed ? "failed" : "finished");
    chip.querySelector(".spinner").replaceWith(el("span", "mark", failed ? "!" : "✓"));
    chip.querySelector(".label").textContent = failed ? "That didn't work" : toolLabels(name)[1];
    if (this.showDetails) chip.append(this.details("result", content));
    this.bubble = null;
  }

  details(summary, body) {
    const details = el("details", "tool-details");
    details.append(el("summary", null, summary), el("pre", null, body));
    return details;
  }

  finishTurn() {
    if (this.turn) this.turn.setAttribute("aria-busy", "false");
    for (const chip of this.log.querySelectorAll(".tool.running")) chip.classList.remove("running");
    this.turn = this.bubble = null;
  }

  notice(text, kind = "error") {
    const row = el("div", `notice ${kind}`, text);
    row.setAttribute("role", kind === "error" ? "alert" : "status");
    this.log.append(row);
    this.scroll();
    return row;
  }

  /** Renders stored wire-form messages (as GET /api/conversations/{id} returns them). */
  renderHistory(messages) {
    this.clear();
    const names = new Map();
    for (const message of messages) {
      if (message.role === "system") {
        if (this.showDetails) {
          const row = el("div", "message system");
          row.append(this.details("System prompt", message.content));
          this.log.append(row);
        }
      } else if (message.role === "user") {
        this.finishTurn();
        this.addUser(message.content);
      } else if (message.role === "assistant" && message.name === "agent") {
        this.addAgent(message.content);
      } else if (message.role === "assistant") {
        this.ensureTurn();
        if (message.content) this.appendText(message.content);
        this.bubble = null;
        for (const call of message.tool_calls ?? []) {
          names.set(call.id, call.function.name);
          this.toolCall(call.id, call.function.name, call.function.arguments);
        }
      } else if (message.role === "tool") {
        this.toolResult(message.tool_call_id, names.get(message.tool_call_id) ?? "", message.content);
      }
    }
    this.finishTurn();
    this.scroll();
  }
}
