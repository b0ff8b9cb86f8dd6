// The chat widget for a business's own website: a launcher button and a chat panel in a
// shadow root, added by one script tag. Served as /widget.js, one classic script with its
// imports and stylesheet (WIDGET_CSS) bundled in: no inline script, no eval, no framework.
//
//   <script src="https://HELPLINE_HOST/widget.js" async
//           data-customer-token="JWT from your backend (optional)"
//           data-color="#0f766e" data-position="right" data-greeting="Hi!"
//           data-strings='{"send": "Senden"}' data-lang="de"></script>
//
// Helpline.identify(token) signs a customer in later; Helpline.open() and Helpline.close().

import { el, errorMessage, fetchStoredImage } from "./common.js";
import { ConversationView, loadToolLabels } from "./conversation.js";
import { followLive } from "./live.js";
import { postMessage, showAnswer } from "./send.js";
import { WidgetRating } from "./widget-rating.js";

const SCRIPT = document.currentScript ?? document.querySelector('script[src*="/widget.js"]');
const BASE = SCRIPT ? SCRIPT.src.replace(/\/widget\.js(?:[?#].*)?$/, "") : "";
const OPTIONS = { ...(SCRIPT?.dataset ?? {}) };
const STORAGE_KEY = `helpline.widget:${BASE}`;
const MAX_UPLOAD = 10 * 1024 * 1024;
const FOLLOW_WITH_TEAM_MS = 4000;
const FOLLOW_MS = 20000;

const STRINGS = {
  title: "{company} support",
  open: "Open the chat with {company}",
  close: "Close the chat",
  greeting: "Hi! How can we help?",
  intro: "Ask about an order, a delivery, a payment or your account. You can share a photo of a receipt: attach it, drop it here or paste it.",
  choose: "Who would you like to talk to?",
  assistant: "Chat with the assistant",
  person: "Talk to a person",
  placeholder: "Type your message…",
  message: "Your message",
  send: "Send",
  attach: "Attach a photo",
  remove: "Remove",
  attached: "Image to send",
  drop: "Drop the photo to attach it",
  history: "Your conversations",
  noHistory: "No earlier conversations yet.",
  newChat: "New chat",
  back: "Back to the chat",
  signedIn: "Signed in as {name}",
  hours: "Our team works {hours}",
  refused: "We couldn't confirm who you are, so this chat is closed: {message} Sign in on this site again, then reload the page.",
  notImage: '"{name}" is not an image. Attach a photo (JPEG, PNG, WebP…) of your receipt.',
  tooLarge: "That photo is larger than 10 MB. Take a smaller photo or crop it, then attach it again.",
  dropped: "The connection dropped. Your message is saved; the answer will appear when you reopen the chat.",
  notSent: "Couldn't send your message: {message} Check your connection and try again.",
  answered: "{company} support answered: {text}",
  unreachable: "The chat can't reach {server} from this site right now. If this keeps happening, the site's owner must add this site ({site}) to HELPLINE_ALLOWED_ORIGINS on the Helpline server.",
};

const CHAT_ICON =
  "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
const CLOSE_ICON = "M6 6l12 12M18 6 6 18";
const CLIP_ICON =
  "M21 11.5 12.6 19.9a5.5 5.5 0 0 1-7.8-7.8l8.5-8.5a3.7 3.7 0 0 1 5.2 5.2l-8.5 8.5a1.8 1.8 0 0 1-2.6-2.6l7.8-7.8";

function icon(path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "22");
  svg.setAttribute("height", "22");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
  line.setAttribute("d", path);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "2");
  line.setAttribute("stroke-linecap", "round");
  line.setAttribute("stroke-linejoin", "round");
  svg.append(line);
  return svg;
}

function button(className, text, label) {
  const node = el("button", className, text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  return node;
}

class Widget {
  constructor(config) {
    this.config = config;
    let pageStrings = {};
    try {
      pageStrings = OPTIONS.strings ? JSON.parse(OPTIONS.strings) : {};
    } catch {
      console.warn("Helpline widget: data-strings is not JSON; using the default words.");
    }
    this.strings = { ...STRINGS, ...config.strings, ...pageStrings };
    if (OPTIONS.greeting || config.greeting) this.strings.greeting = OPTIONS.greeting || config.greeting;
    this.customerToken = OPTIONS.customerToken || null;
    this.customer = null; // { id, name } once the token is verified
    this.refused = null; // why the customer token was refused
    this.session = null; // { id, token? } the open conversation
    this.pending = null; // { file, url } the image to send with the next message
    this.busy = false;
    this.shown = 0; // stored messages on screen, to notice the team's replies
    this.follower = null;
    this.followEvery = 0;
    this.live = null; // the open conversation's live stream; polling only while it is closed
    this.liveOpen = false;
    this.liveFor = null;
    this.images = new Map();
    this.build();
    this.view = new ConversationView(this.log, { loadImage: (reference) => this.loadImage(reference) });
  }

  t(name, values = {}) {
    const words = { company: this.config.company, ...values };
    return String(this.strings[name] ?? name).replace(/\{(\w+)\}/g, (_, key) => words[key] ?? "");
  }

  build() {
    const host = document.createElement("helpline-widget");
    // Inline !important (set through the CSSOM, which a CSP allows) outranks any host page
    // rule on this one element; inside the shadow root no host rule applies at all.
    host.style.setProperty("all", "initial", "important");
    host.style.setProperty("display", "block", "important");
    const shadow = host.attachShadow({ mode: "open" });
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(WIDGET_CSS);
    shadow.adoptedStyleSheets = [sheet];

    const root = el("div", "root");
    if (OPTIONS.lang) root.lang = OPTIONS.lang;
    root.dataset.position = (OPTIONS.position || this.config.position) === "left" ? "left" : "right";
    const color = OPTIONS.color || this.config.color;
    if (color && CSS.supports("color", color)) root.style.setProperty("--accent", color);

    this.launcher = button("launcher", undefined, this.t("open"));
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.setAttribute("aria-controls", "helpline-panel");
    this.launcher.append(icon(CHAT_ICON));

    const panel = el("section", "panel");
    panel.id = "helpline-panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-labelledby", "helpline-title");
    this.panel = panel;

    const header = el("div", "bar");
    const heading = el("div", "heading");
    const title = el("h2", null, this.t("title"));
    title.id = "helpline-title";
    this.subtitle = el("p", null, this.config.hours ? this.t("hours", { hours: this.config.hours }) : "");
    heading.append(title, this.subtitle);
    this.historyButton = button("text", this.t("history"));
    this.historyButton.hidden = true;
    this.newButton = button("text", this.t("newChat"));
    this.closeButton = button("icon", undefined, this.t("close"));
    this.closeButton.append(icon(CLOSE_ICON));
    header.append(heading, this.historyButton, this.newButton, this.closeButton);

    const body = el("div", "body");
    this.start = el("div", "start");
    this.start.append(el("h3", null, this.t("greeting")), el("p", null, this.t("intro")));
    this.choice = el("div", "choice");
    this.choice.setAttribute("role", "group");
    this.choice.setAttribute("aria-label", this.t("choose"));
    this.assistantChoice = button("primary", this.t("assistant"));
    this.personChoice = button("ghost", this.t("person"));
    this.choice.append(this.assistantChoice, this.personChoice);
    this.choice.hidden = !this.config.offer_person_first;
    this.start.append(this.choice);
    this.history = el("div", "history");
    this.history.hidden = true;
    this.log = el("div", "log");
    this.log.setAttribute("role", "log");
    this.log.setAttribute("aria-live", "off"); // the announcer reads whole answers, not tokens
    this.log.setAttribute("aria-label", this.t("title"));
    body.append(this.start, this.history, this.log);
    this.rating = new WidgetRating(this, BASE, body); // after a goodbye, or when asked
    this.announcer = el("div", "sr-only");
    this.announcer.setAttribute("aria-live", "polite");

    const form = el("form", "composer");
    form.setAttribute("aria-label", this.t("message"));
    this.attachment = el("div", "attachment");
    this.attachment.hidden = true;
    this.preview = el("img");
    this.preview.alt = this.t("attached");
    this.attachmentName = el("span");
    this.removeButton = button("ghost", this.t("remove"));
    this.attachment.append(this.preview, this.attachmentName, this.removeButton);
    const row = el("div", "row");
    this.fileInput = el("input", "sr-only");
    this.fileInput.type = "file";
    this.fileInput.accept = "image/*";
    this.fileInput.tabIndex = -1;
    this.fileInput.setAttribute("aria-hidden", "true");
    this.attachButton = button("icon attach", undefined, this.t("attach"));
    this.attachButton.title = this.t("attach");
    this.attachButton.append(icon(CLIP_ICON));
    const label = el("label", "sr-only", this.t("message"));
    label.htmlFor = "helpline-input";
    this.input = el("textarea");
    this.input.id = "helpline-input";
    this.input.rows = 1;
    this.input.maxLength = 4000;
    this.input.placeholder = this.t("placeholder");
    this.sendButton = el("button", "primary", this.t("send"));
    this.sendButton.type = "submit";
    row.append(this.fileInput, this.attachButton, label, this.input, this.sendButton);
    form.append(this.attachment, row);
    this.form = form;
    this.dropOverlay = el("div", "drop", this.t("drop"));
    this.dropOverlay.hidden = true;

    panel.append(header, body, this.announcer, form, this.dropOverlay);
    root.append(this.launcher, panel);
    shadow.append(root);
    this.root = root;
    this.listen();
    document.body.append(host);
  }

  listen() {
    this.launcher.addEventListener("click", () => (this.panel.hidden ? this.open() : this.close()));
    this.closeButton.addEventListener("click", () => this.close());
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.close();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener("input", () => this.autosize());
    this.attachButton.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => this.attach(this.fileInput.files[0] ?? null));
    this.removeButton.addEventListener("click", () => {
      this.attach(null);
      this.input.focus();
    });
    this.panel.addEventListener("paste", (event) => {
      const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
      if (file) {
        event.preventDefault();
        this.attach(file);
      }
    });
    let depth = 0;
    this.panel.addEventListener("dragenter", (event) => {
      if (![...event.dataTransfer.types].includes("Files")) return;
      depth++;
      this.dropOverlay.hidden = false;
    });
    this.panel.addEventListener("dragleave", () => {
      if (--depth <= 0) {
        depth = 0;
        this.dropOverlay.hidden = true;
      }
    });
    this.panel.addEventListener("dragover", (event) => event.preventDefault());
    this.panel.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      this.dropOverlay.hidden = true;
      const file = event.dataTransfer.files[0];
      if (file) this.attach(file);
    });
    this.assistantChoice.addEventListener("click", () => {
      this.choice.hidden = true;
      this.input.focus();
    });
    this.personChoice.addEventListener("click", () => this.askForPerson());
    this.newButton.addEventListener("click", () => this.startOver());
    this.historyButton.addEventListener("click", () => this.toggleHistory());
  }

  open() {
    this.panel.hidden = false;
    this.root.classList.add("open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.launcher.setAttribute("aria-label", this.t("close"));
    (this.choice.hidden || this.start.hidden ? this.input : this.assistantChoice).focus();
  }

  close() {
    this.panel.hidden = true;
    this.root.classList.remove("open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.setAttribute("aria-label", this.t("open"));
    this.launcher.focus();
  }

  // Who the customer is, and where their conversation is kept.

  credential() {
    return this.customer ? this.customerToken : this.session?.token;
  }

  saved() {
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    } catch {
      return {};
    }
  }

  remember() {
    const saved = this.saved();
    if (this.customer) {
      saved.customers = { ...saved.customers, [this.customer.id]: this.session?.id ?? null };
    } else {
      saved.visitor = this.session;
    }
    localStorage.setItem(STORAGE_KEY, JSON.stringify(saved));
  }

  /** Checks the customer token and lists their conversations; false (and says why) if refused. */
  async identify(token) {
    this.customerToken = token;
    this.customer = null;
    this.refused = null;
    const response = await fetch(`${BASE}/api/customers/me/conversations`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!response.ok) {
      this.refuse(await errorMessage(response));
      return false;
    }
    const mine = await response.json();
    this.customer = { id: mine.customer_id, name: mine.name };
    this.subtitle.textContent = this.t("signedIn", { name: mine.name });
    this.historyButton.hidden = false;
    this.renderHistoryList(mine.conversations);
    this.setComposerEnabled(true);
    const last = this.saved().customers?.[this.customer.id];
    if (last && mine.conversations.some((c) => c.id === last)) await this.resume(last);
    else this.startOver();
    return true;
  }

  refuse(message) {
    this.refused = message;
    this.session = null;
    this.view.clear();
    this.start.hidden = true;
    this.view.notice(this.t("refused", { message }));
    this.setComposerEnabled(false);
  }

  setComposerEnabled(enabled) {
    for (const node of [this.input, this.sendButton, this.attachButton, this.personChoice, this.assistantChoice]) {
      node.disabled = !enabled;
    }
  }

  renderHistoryList(conversations) {
    const list = el("ul");
    for (const conversation of conversations) {
      const item = el("li");
      const open = button(null);
      open.dataset.id = conversation.id;
      const when = new Date(conversation.started).toLocaleString(OPTIONS.lang || undefined, {
        dateStyle: "medium",
        timeStyle: "short",
      });
      open.append(el("span", "when", when), el("span", "last", conversation.last_message ?? "…"));
      open.addEventListener("click", () => this.resume(conversation.id));
      item.append(open);
      list.append(item);
    }
    this.history.replaceChildren(el("h3", null, this.t("history")));
    this.history.append(conversations.length ? list : el("p", "none", this.t("noHistory")));
  }

  async toggleHistory() {
    const showing = this.history.hidden;
    if (showing && this.customer) await this.identifyQuietly();
    this.history.hidden = !showing;
    this.log.hidden = showing;
    this.start.hidden = showing || this.shown > 0;
    this.historyButton.textContent = showing ? this.t("back") : this.t("history");
    for (const item of this.history.querySelectorAll("li button")) {
      item.setAttribute("aria-current", String(item.dataset.id === this.session?.id));
    }
    (showing ? this.history.querySelector("button") ?? this.historyButton : this.input).focus();
  }

  async identifyQuietly() {
    const response = await fetch(`${BASE}/api/customers/me/conversations`, {
      headers: { Authorization: `Bearer ${this.customerToken}` },
    });
    if (response.ok) this.renderHistoryList((await response.json()).conversations);
  }

  startOver() {
    this.session = null;
    this.shown = 0;
    this.remember();
    this.view.clear();
    this.history.hidden = true;
    this.log.hidden = false;
    this.start.hidden = false;
    this.choice.hidden = !this.config.offer_person_first;
    this.historyButton.textContent = this.t("history");
    this.rating.update(false);
    this.follow("active");
  }

  async resume(conversationId) {
    const session = this.customer ? { id: conversationId } : this.saved().visitor;
    if (!session) return;
    this.session = session;
    const conversation = await this.fetchConversation();
    this.history.hidden = true;
    this.log.hidden = false;
    this.historyButton.textContent = this.t("history");
    if (!conversation) {
      this.startOver();
      return;
    }
    this.remember();
    this.draw(conversation);
  }

  draw(conversation) {
    const visible = conversation.messages.filter((m) => m.role !== "system");
    this.start.hidden = visible.length > 0;
    this.view.renderHistory(conversation.messages);
    this.rating.update(visible.length > 0);
    this.follow(conversation.status, conversation.messages.length);
  }

  async fetchConversation() {
    const response = await fetch(`${BASE}/api/conversations/${this.session.id}`, {
      headers: { Authorization: `Bearer ${this.credential()}` },
    });
    if (response.status === 401 && this.customer) {
      this.refuse(await errorMessage(response)); // the signed-in customer's token expired
      return null;
    }
    if ([401, 403, 404].includes(response.status)) {
      this.session = null;
      this.remember();
      return null;
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.json();
  }

  async ensureConversation() {
    if (this.session) return this.session;
    const request = { method: "POST" };
    if (this.customer) {
      request.headers = { "Content-Type": "application/json" };
      request.body = JSON.stringify({ customer_token: this.customerToken });
    }
    const response = await fetch(`${BASE}/api/conversations`, request);
    if (!response.ok) throw new Error(await errorMessage(response));
    const created = await response.json();
    this.session = this.customer ? { id: created.id } : { id: created.id, token: created.token };
    this.remember();
    return this.session;
  }

  async loadImage(reference) {
    if (!this.session) return null;
    if (this.images.has(reference)) return this.images.get(reference);
    const url = await fetchStoredImage(this.session.id, reference, this.credential(), BASE);
    if (url) this.images.set(reference, url);
    return url;
  }

  // The team's replies: looked for every few seconds while a person has the conversation.

  follow(status, shown = this.shown) {
    this.shown = shown;
    this.goLive();
    const every = this.session && !this.liveOpen ? (status === "waiting_for_agent" ? FOLLOW_WITH_TEAM_MS : FOLLOW_MS) : 0;
    if (every === this.followEvery) return;
    clearInterval(this.follower);
    this.follower = every ? setInterval(() => this.lookForReplies(), every) : null;
    this.followEvery = every;
  }

  /** Follows the open conversation live: the team's replies show the moment they are sent. */
  goLive() {
    const id = this.session?.id ?? null;
    if (id === this.liveFor) return;
    this.live?.close();
    this.live = null;
    this.liveOpen = false;
    this.liveFor = id;
    if (!id) return;
    const look = () => this.lookForReplies();
    this.live = followLive(`${BASE}/api/conversations/${id}/events`, this.credential(), {
      onReady: () => {
        this.liveOpen = true;
        look(); // what happened while it was closed; this also stops the polling
      },
      onEvent: look,
      onUnavailable: () => {
        this.liveOpen = false;
        look(); // and polls from now on
      },
    });
  }

  async lookForReplies(force = false) {
    if (this.busy || !this.session || document.visibilityState === "hidden") return;
    try {
      const conversation = await this.fetchConversation();
      if (!conversation || this.busy) return;
      if (force || conversation.messages.length !== this.shown) {
        const before = this.shown;
        this.draw(conversation);
        const last = conversation.messages.at(-1);
        if (before && last?.role === "assistant" && last.content) this.announce(last.content);
      }
      this.follow(conversation.status, conversation.messages.length);
    } catch {
      // Offline for a moment: the next look will do.
    }
  }

  announce(text) {
    this.announcer.textContent = this.t("answered", { text });
  }

  // Talking.

  async askForPerson() {
    this.choice.hidden = true;
    try {
      const { id } = await this.ensureConversation();
      const response = await fetch(`${BASE}/api/conversations/${id}/handoff`, {
        method: "POST",
        headers: { Authorization: `Bearer ${this.credential()}`, "Content-Type": "application/json" },
        body: "{}",
      });
      if (!response.ok) throw new Error(await errorMessage(response));
      const handed = await response.json();
      await this.lookForReplies(true);
      this.announce(handed.message);
    } catch (error) {
      this.view.notice(error.message);
    }
    this.input.focus();
  }

  attach(file) {
    if (this.pending) URL.revokeObjectURL(this.pending.url);
    this.pending = null;
    this.attachment.hidden = true;
    this.fileInput.value = "";
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      this.view.notice(this.t("notImage", { name: file.name }));
      return;
    }
    if (file.size > MAX_UPLOAD) {
      this.view.notice(this.t("tooLarge"));
      return;
    }
    this.pending = { file, url: URL.createObjectURL(file) };
    this.preview.src = this.pending.url;
    this.attachmentName.textContent = file.name || "Pasted image";
    this.attachment.hidden = false;
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 140)}px`;
  }

  setBusy(value) {
    this.busy = value;
    this.sendButton.disabled = value;
    this.form.setAttribute("aria-busy", String(value));
  }

  async send() {
    const text = this.input.value.trim();
    if (this.busy || this.refused || (!text && !this.pending)) return;
    this.setBusy(true);
    this.start.hidden = true;
    const image = this.pending;
    this.input.value = "";
    this.autosize();
    let shown = false;
    try {
      const { id } = await this.ensureConversation();
      const url = `${BASE}/api/conversations/${id}/messages`;
      const response = await postMessage(url, this.credential(), text, image?.file);
      if (!response.ok) {
        this.input.value = text; // nothing was sent: give the words back to fix and resend
        this.autosize();
        this.view.notice(await errorMessage(response));
        return;
      }
      this.view.addUser(text, image?.url ?? null);
      shown = true;
      if (image) {
        this.pending = null;
        this.attachment.hidden = true;
      }
      const turn = this.view.startTurn();
      await showAnswer(response, this.view);
      this.view.render();
      const answer = [...turn.querySelectorAll(".bubble")].map((b) => b.textContent).join(" ");
      if (answer) this.announce(answer);
    } catch (error) {
      if (!shown) {
        this.input.value = text;
        this.autosize();
      }
      this.view.notice(shown ? this.t("dropped") : this.t("notSent", { message: error.message }));
    } finally {
      this.view.finishTurn();
      this.setBusy(false);
      this.input.focus();
    }
    if (shown && this.session) this.lookForReplies(true); // as stored, with the team's replies
    if (shown) this.rating.after(text);
  }
}

async function loadConfig() {
  try {
    const response = await fetch(`${BASE}/api/widget/config`);
    if (response.ok) return response.json();
  } catch {
    // Out of reach, or this site is not an allowed origin: the widget appears and says so.
  }
  return { company: "Support", strings: {}, offer_person_first: false, unreachable: true };
}

async function main() {
  const [config] = await Promise.all([loadConfig(), loadToolLabels(BASE)]);
  const widget = new Widget(config);
  window.Helpline = {
    identify: (token) => widget.identify(token),
    open: () => widget.open(),
    close: () => widget.close(),
  };
  if (config.unreachable) {
    widget.view.notice(widget.t("unreachable", { server: BASE, site: location.origin }));
  } else if (widget.customerToken) await widget.identify(widget.customerToken);
  else if (widget.saved().visitor) await widget.resume(widget.saved().visitor.id);
  widget.root.dataset.ready = "true";
  if (OPTIONS.open === "true") widget.open();
}

if (document.body) main();
else document.addEventListener("DOMContentLoaded", main, { once: true });
