// The agents' page, desk part: who is signed in, refunds waiting for approval (approve, or
// reject with a reason the customer reads), and what agents did in the open ticket's chat.
// agents.js announces sign-in, sign-out and each opened ticket; the live stream announces
// approvals as they are queued and decided.

import { el, showBidiControls } from "./common.js";

const queue = document.getElementById("approvals");
const who = document.getElementById("signed-in-as");

let api = null; // agents.js's authorised fetch, while signed in
let me = null; // { name, operator }
let openTicket = null; // { conversationId, section } of the ticket on screen
const outcome = el("p", "saved approval-status"); // the latest decision, kept across redraws
outcome.setAttribute("role", "status");

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function textOf(tag, className, text) {
  const node = el(tag, className, showBidiControls(text));
  node.dir = "auto";
  return node;
}

/** One approval with its decision buttons (for named agents) or its outcome. */
function approvalCard(approval, onDecided) {
  const card = el("div", `approval ${approval.status}`);
  card.dataset.approval = approval.id;
  const items = approval.refunds.map((r) => r.item).join(", ");
  const title = el("p", "title", `Refund #${approval.id} · ${approval.amount} · order ${approval.order_id}`);
  card.append(title, textOf("p", "sub", items), el("p", "why", `Waits because ${approval.why}.`));
  const said = el("p", "saved approval-status");
  said.setAttribute("role", "status");
  if (approval.status !== "pending") {
    const by = approval.decided_by ? ` by ${approval.decided_by}` : "";
    said.textContent = `${approval.status[0].toUpperCase()}${approval.status.slice(1)}${by}.`;
    if (approval.decision_note) card.append(textOf("p", "sub", approval.decision_note));
    card.append(said);
    return card;
  }
  if (me?.operator) {
    card.append(el("p", "sub", "Sign in with your own agent key to approve or reject refunds."));
    return card;
  }
  const approve = el("button", "primary small", "Approve refund");
  approve.type = "button";
  const reject = el("button", "ghost small", "Reject…");
  reject.type = "button";
  const actions = el("div", "reply-actions");
  actions.append(approve, reject);
  const why = el("form", "reject-form");
  why.hidden = true;
  const label = el("label", null, "Why (the customer reads this)");
  const reason = el("textarea");
  reason.rows = 2;
  reason.maxLength = 2000;
  reason.required = true;
  reason.id = `reject-reason-${approval.id}`;
  label.htmlFor = reason.id;
  const send = el("button", "primary small", "Reject refund");
  send.type = "submit";
  why.append(label, reason, send);
  card.append(actions, why, said);

  async function decide(path, body, button) {
    for (const b of card.querySelectorAll("button")) b.disabled = true;
    said.textContent = "";
    try {
      const decision = await api(`/api/approvals/${approval.id}/${path}`, {
        method: "POST",
        body: body ? JSON.stringify(body) : undefined,
      });
      const decided = decision.approval;
      const told = decision.customer_told ? " The customer is told in their chat." : " The customer could not be told (the chat is gone).";
      outcome.textContent = `Refund #${decided.id}: ` + (decided.status === "approved"
        ? `Approved: ${decided.amount} refunded.${told}`
        : decided.status === "rejected"
          ? `Rejected: nothing refunded.${told}`
          : `Not refunded: ${decided.decision_note}`);
      actions.hidden = true;
      why.hidden = true;
      onDecided();
    } catch (error) {
      said.textContent = error.message;
      for (const b of card.querySelectorAll("button")) b.disabled = false;
      button.focus();
    }
  }
  approve.addEventListener("click", () => decide("approve", null, approve));
  reject.addEventListener("click", () => {
    why.hidden = false;
    reason.focus();
  });
  why.addEventListener("submit", (event) => {
    event.preventDefault();
    decide("reject", { reason: reason.value }, send);
  });
  return card;
}

/** The queue of refunds waiting for a person, oldest first. */
async function showQueue() {
  if (!api || writing(queue)) return;
  const { approvals } = await api("/api/approvals?status=pending");
  const heading = el("h2", null, `Refunds awaiting approval (${approvals.length})`);
  queue.replaceChildren(heading, outcome);
  if (!approvals.length) queue.append(el("p", "empty", "Nothing waits for approval."));
  for (const approval of approvals) queue.append(approvalCard(approval, refreshAll));
  queue.hidden = false;
}

/** Whether an agent is writing a rejection there (redrawing would lose their words). */
function writing(container) {
  return Boolean(container.querySelector(".reject-form:not([hidden])"));
}

function describe(entry) {
  const d = entry.detail;
  switch (entry.action) {
    case "reply": return "replied in the chat";
    case "take_over": return "took the chat over";
    case "hand_back": return "handed the chat back to the assistant";
    case "ticket_status": return `set ticket #${entry.ticket_id} to ${d.status}`;
    case "delete_conversation": return "deleted the conversation";
    case "approve":
      return d.outcome === "approved"
        ? `approved refund #${entry.approval_id} on order ${d.order_id}`
        : `approved refund #${entry.approval_id}, not paid: ${d.problem}`;
    case "reject": return `rejected refund #${entry.approval_id}: ${d.reason}`;
    default: return entry.action;
  }
}

/** The open ticket's refunds and the audit log of its conversation. */
async function showActivity() {
  if (!api || !openTicket) return;
  const { conversationId, section } = openTicket;
  if (writing(section)) return;
  const query = `conversation_id=${encodeURIComponent(conversationId)}`;
  const [{ approvals }, { entries }] = await Promise.all([
    api(`/api/approvals?${query}`),
    api(`/api/audit?${query}`),
  ]);
  if (openTicket?.section !== section) return; // another ticket opened meanwhile
  const parts = [el("h3", null, "Refund approvals")];
  if (!approvals.length) parts.push(el("p", "empty", "No refund in this chat waits for a person."));
  for (const approval of approvals) parts.push(approvalCard(approval, refreshAll));
  parts.push(el("h3", null, "Activity"));
  const log = el("ol", "audit-log");
  for (const entry of entries) {
    const line = el("li");
    line.append(el("time", null, when(entry.created_at)), " ", el("strong", null, entry.agent), " ");
    line.append(textOf("span", null, describe(entry)));
    log.append(line);
  }
  if (!entries.length) parts.push(el("p", "empty", "No agent has acted in this chat yet."));
  else parts.push(log);
  section.replaceChildren(...parts);
}

function refreshAll() {
  showQueue().catch(() => {});
  showActivity().catch(() => {});
  document.getElementById("refresh")?.click(); // tickets change status with their refund
}

document.addEventListener("helpline:signed-in", async (event) => {
  api = event.detail.api;
  try {
    me = await api("/api/agents/me");
    who.textContent = me.operator ? "Signed in with the admin key" : `Signed in as ${me.name}`;
    who.hidden = false;
    await showQueue();
  } catch {
    // the tickets say what is wrong with the key
  }
});

document.addEventListener("helpline:signed-out", () => {
  api = null;
  me = null;
  openTicket = null;
  who.hidden = true;
  queue.hidden = true;
  queue.replaceChildren();
  outcome.textContent = "";
});

document.addEventListener("helpline:ticket-opened", (event) => {
  const { ticket, panel } = event.detail;
  openTicket = null;
  if (!ticket.conversation_id) return;
  const section = el("section", "desk-activity");
  section.setAttribute("aria-label", "Refund approvals and activity");
  panel.append(section);
  openTicket = { conversationId: ticket.conversation_id, section };
  showActivity().catch(() => {});
});

document.addEventListener("helpline:live", (event) => {
  const { name, data } = event.detail;
  if (name === "approval") showQueue().catch(() => {});
  if (openTicket && data.conversation_id === openTicket.conversationId) showActivity().catch(() => {});
});
