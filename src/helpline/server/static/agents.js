// The agents' desk: tickets the assistant filed, the conversation behind each, status changes.

import { el, errorMessage, fetchStoredImage, showBidiControls } from "./common.js";
import { ConversationView, loadToolLabels } from "./conversation.js";
import { showCost } from "./usage.js";
import { followLive } from "./live.js";

const KEY_STORAGE = "helpline.adminKey";
const STATUSES = {
  open: "Open",
  in_progress: "In progress",
  waiting_on_customer: "Waiting on customer",
  resolved: "Resolved",
  closed: "Closed",
};

const login = document.getElementById("login");
const loginError = document.getElementById("login-error");
const keyInput = document.getElementById("admin-key");
const desk = document.getElementById("desk");
const list = document.getElementById("tickets");
const filter = document.getElementById("filter");
const panel = document.getElementById("ticket");
const signOut = document.getElementById("sign-out");

const WATCH_EVERY_MS = 4000; // the open ticket's chat, for the customer's new messages

let adminKey = sessionStorage.getItem(KEY_STORAGE);
let selected = null;
let watcher = null;
let live = null; // every conversation's events; while it is open, nothing polls
let liveOpen = false;
let openChat = null; // { conversationId, chat } of the ticket on screen
let listRequest = 0; // only the latest list request may draw (filters can change mid-flight)

class AuthError extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
  });
  if (response.ok) return response.json();
  const message = await errorMessage(response);
  if ([401, 403, 503].includes(response.status)) throw new AuthError(message);
  throw new Error(message);
}

function showLogin(message = "") {
  clearInterval(watcher);
  live?.close();
  live = null;
  liveOpen = false;
  sessionStorage.removeItem(KEY_STORAGE);
  adminKey = null;
  desk.hidden = true;
  signOut.hidden = true;
  login.hidden = false;
  loginError.textContent = message;
  keyInput.focus();
  document.dispatchEvent(new CustomEvent("helpline:signed-out"));
}

function handle(error) {
  if (error instanceof AuthError) showLogin(error.message);
  else panel.prepend(el("p", "form-error", error.message));
}

/** An element showing text a customer (or the model) wrote: isolated from what surrounds it,
 * its bidirectional controls shown as codes so it reads in the order it was written. */
function customerText(tag, className, text) {
  const node = el(tag, className, showBidiControls(text));
  node.dir = "auto";
  return node;
}

function statusBadge(status) {
  return el("span", `status ${status}`, STATUSES[status] ?? status);
}

function formatDate(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function formatAmount(cents) {
  return cents == null ? null : (cents / 100).toFixed(2);
}

async function loadTickets() {
  const request = ++listRequest;
  const query = filter.value ? `?status=${encodeURIComponent(filter.value)}` : "";
  const { tickets } = await api(`/api/tickets${query}`);
  if (request !== listRequest) return;
  list.replaceChildren();
  if (!tickets.length) {
    list.append(el("li", "empty", filter.value ? "No tickets with this status." : "No tickets yet."));
  }
  for (const ticket of tickets) {
    const button = el("button");
    button.type = "button";
    button.dataset.id = ticket.id;
    button.setAttribute("aria-current", String(ticket.id === selected));
    const title = el("span", "title", `#${ticket.id} · `);
    title.append(customerText("bdi", null, ticket.name));
    button.append(title, statusBadge(ticket.status), customerText("span", "sub", ticket.issue));
    button.addEventListener("click", () => openTicket(ticket.id).catch(handle));
    const item = el("li");
    item.append(button);
    list.append(item);
  }
}

async function openTicket(id) {
  selected = id;
  clearInterval(watcher);
  openChat = null;
  for (const button of list.querySelectorAll("button")) {
    button.setAttribute("aria-current", String(Number(button.dataset.id) === id));
  }
  const ticket = await api(`/api/tickets/${id}`);
  const heading = el("h2", null, `#${ticket.id} · `);
  heading.append(customerText("bdi", null, ticket.name));
  heading.tabIndex = -1;
  const meta = el("div", "meta");
  meta.append(
    statusBadge(ticket.status),
    el("span", null, `Category: ${ticket.category}`),
    el("span", null, `Filed ${formatDate(ticket.created_at)}`),
  );
  const amount = formatAmount(ticket.amount_cents);
  if (amount) meta.append(el("span", null, `Amount: ${amount}`));
  if (ticket.conversation_id) showCost(meta, ticket.conversation_id, api).catch(() => {}); // cost is extra
  if (ticket.conversation_id) showCustomer(meta, ticket.conversation_id).catch(() => {}); // so is this

  const statusForm = el("form", "status-form");
  const label = el("label", null, "Status");
  label.htmlFor = "ticket-status";
  const select = el("select");
  select.id = "ticket-status";
  for (const [value, text] of Object.entries(STATUSES)) {
    const option = el("option", null, text);
    option.value = value;
    option.selected = value === ticket.status;
    select.append(option);
  }
  const save = el("button", "primary small", "Update status");
  save.type = "submit";
  const saved = el("span", "saved");
  saved.setAttribute("role", "status");
  statusForm.append(label, select, save, saved);
  statusForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const updated = await api(`/api/tickets/${id}`, {
        method: "PATCH",
        body: JSON.stringify({ status: select.value }),
      });
      meta.firstChild.replaceWith(statusBadge(updated.status));
      saved.textContent = `Saved: ${STATUSES[updated.status]}`;
      await loadTickets();
    } catch (error) {
      handle(error);
    } finally {
      save.disabled = false;
    }
  });

  const transcript = el("section", "transcript");
  transcript.append(el("h3", null, "Conversation"));
  const log = el("div", "log");
  transcript.append(log);
  if (ticket.messages.length) {
    const view = new ConversationView(log, {
      loadImage: (reference) => fetchStoredImage(ticket.conversation_id, reference, adminKey),
      showDetails: true,
    });
    view.renderHistory(ticket.messages);
    const chat = followChat(ticket.conversation_id, view, ticket.messages.length);
    openChat = { conversationId: ticket.conversation_id, chat };
    transcript.append(replyForm(ticket.conversation_id, chat, ticket.conversation_status));
    watcher = setInterval(() => {
      if (document.visibilityState === "visible" && !liveOpen) chat.look().catch(() => {}); // next look will do
    }, WATCH_EVERY_MS);
  } else {
    log.append(el("p", "empty", "This ticket has no conversation behind it."));
  }

  panel.replaceChildren(heading, meta, customerText("p", "issue", ticket.issue), statusForm, transcript);
  document.dispatchEvent(new CustomEvent("helpline:ticket-opened", { detail: { ticket, panel } }));
  heading.focus();
}

/** Whom the conversation belongs to, when the business signed the customer in. */
async function showCustomer(meta, conversationId) {
  const { customer_id: customer } = await api(`/api/conversations/${conversationId}`);
  if (customer) meta.append(customerText("span", "customer", `Signed-in customer: ${customer}`));
}

const WHO_ANSWERS = {
  active: "The assistant answers this chat.",
  waiting_for_agent: "The support team has this chat: the assistant stays quiet.",
};

/** The open ticket's chat as stored: `look()` redraws it when someone added to it, and
 * tells `onStatus` who answers it now. */
function followChat(conversationId, view, shown) {
  let count = shown;
  const chat = {
    onStatus: () => {},
    async look() {
      const conversation = await api(`/api/conversations/${conversationId}`);
      if (conversation.messages.length !== count) view.renderHistory(conversation.messages);
      count = conversation.messages.length;
      chat.onStatus(conversation.status);
    },
  };
  return chat;
}

/** Write to the customer in their chat (the assistant stays quiet), or hand back to it. */
function replyForm(conversationId, chat, status) {
  const form = el("form", "reply-form");
  const who = el("p", "who-answers", WHO_ANSWERS[status] ?? "");
  chat.onStatus = (now) => { who.textContent = WHO_ANSWERS[now] ?? ""; };
  const label = el("label", null, "Reply to the customer");
  label.htmlFor = "agent-reply";
  const text = el("textarea");
  text.id = "agent-reply";
  text.rows = 3;
  text.maxLength = 4000;
  text.required = true;
  const send = el("button", "primary small", "Send reply");
  send.type = "submit";
  const handBack = el("button", "ghost small", "Hand back to the assistant");
  handBack.type = "button";
  const said = el("span", "saved reply-status");
  said.setAttribute("role", "status");
  const actions = el("div", "reply-actions");
  actions.append(send, handBack, said);
  form.append(who, label, text, actions);

  /** Runs `request`, then shows the conversation as it now is; true if it worked. */
  async function act(button, request, done) {
    button.disabled = true;
    said.textContent = "";
    try {
      await request();
      await chat.look();
      said.textContent = done;
      return true;
    } catch (error) {
      handle(error);
      return false;
    } finally {
      button.disabled = false;
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = JSON.stringify({ text: text.value });
    const reply = () => api(`/api/conversations/${conversationId}/replies`, { method: "POST", body });
    if (await act(send, reply, "Sent: the customer sees it in their chat.")) text.value = "";
  });
  handBack.addEventListener("click", () => act(
    handBack,
    () => api(`/api/conversations/${conversationId}`, { method: "PATCH", body: JSON.stringify({ status: "active" }) }),
    "Handed back: the assistant answers the customer again.",
  ));
  return form;
}

/** Follows every conversation live: the open chat redraws as its events arrive, and other
 * parts of the page may listen for `helpline:live` events on the document. */
function goLive() {
  live?.close();
  const lookAtOpenChat = () => openChat?.chat.look().catch(() => {});
  live = followLive("/api/events", adminKey, {
    onReady() {
      liveOpen = true;
      lookAtOpenChat(); // whatever happened while it was closed
    },
    onEvent(name, data) {
      if (data.conversation_id === openChat?.conversationId) lookAtOpenChat();
      document.dispatchEvent(new CustomEvent("helpline:live", { detail: { name, data } }));
    },
    onUnavailable() {
      liveOpen = false; // the open chat is polled instead
    },
  });
}

async function start() {
  try {
    await loadTickets();
    login.hidden = true;
    desk.hidden = false;
    signOut.hidden = false;
    goLive();
    document.dispatchEvent(new CustomEvent("helpline:signed-in", { detail: { api } }));
  } catch (error) {
    if (error instanceof AuthError) showLogin(error.message);
    else showLogin(`Couldn't load tickets: ${error.message}`);
  }
}

login.addEventListener("submit", async (event) => {
  event.preventDefault();
  adminKey = keyInput.value.trim();
  sessionStorage.setItem(KEY_STORAGE, adminKey);
  keyInput.value = "";
  await start();
});
signOut.addEventListener("click", () => {
  panel.replaceChildren(el("p", "empty", "Choose a ticket to read the conversation behind it."));
  showLogin();
});
filter.addEventListener("change", () => loadTickets().catch(handle));
document.getElementById("refresh").addEventListener("click", () => loadTickets().catch(handle));

loadToolLabels().then(() => (adminKey ? start() : showLogin())).finally(() => {
  document.body.dataset.ready = "true";
});
