// The customer chat: streams answers over fetch + SSE, keeps the conversation across reloads.

import { errorMessage, fetchStoredImage } from "./common.js";
import { ConversationView, loadToolLabels } from "./conversation.js";
import { followLive } from "./live.js";
import { postMessage, showAnswer } from "./send.js";
import { offerRatingAfter } from "./rating.js";

const STORAGE_KEY = "helpline.conversation";
const MAX_UPLOAD = 10 * 1024 * 1024;

const log = document.getElementById("log");
const form = document.getElementById("composer");
const input = document.getElementById("input");
const sendButton = document.getElementById("send");
const fileInput = document.getElementById("file");
const attachment = document.getElementById("attachment");
const attachmentPreview = document.getElementById("attachment-preview");
const attachmentName = document.getElementById("attachment-name");
const dropOverlay = document.getElementById("drop");
const welcome = document.getElementById("welcome");

// How often to look for the support team's replies: often while a person has the
// conversation, now and then otherwise (a person may join any conversation).
const FOLLOW_WITH_TEAM_MS = 4000;
const FOLLOW_MS = 20000;

let session = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
let shownMessages = 0; // stored messages on screen, to notice the team's new replies
let follower = null;
let followEvery = 0;
let live = null; // the stream of the team's replies and status changes, while it is open
let liveOpen = false; // polling is only the fallback for when it can't be opened
let pending = null; // { file, url } — the image to send with the next message
let busy = false;

const imageUrls = new Map();
const view = new ConversationView(log, { loadImage });

async function loadImage(reference) {
  if (!session) return null;
  if (imageUrls.has(reference)) return imageUrls.get(reference);
  const url = await fetchStoredImage(session.id, reference, session.token);
  if (url) imageUrls.set(reference, url);
  return url;
}

async function ensureConversation() {
  if (session) return session;
  const response = await fetch("/api/conversations", { method: "POST" });
  if (!response.ok) throw new Error(await errorMessage(response));
  session = await response.json();
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  goLive();
  return session;
}

async function fetchConversation() {
  const response = await fetch(`/api/conversations/${session.id}`, {
    headers: { Authorization: `Bearer ${session.token}` },
  });
  if (response.status === 401 || response.status === 403 || response.status === 404) {
    localStorage.removeItem(STORAGE_KEY);
    session = null;
    return null;
  }
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

async function restore() {
  if (!session) return;
  let conversation;
  try {
    conversation = await fetchConversation();
  } catch (error) {
    view.notice(error.message);
    return;
  }
  if (!conversation) return;
  goLive();
  if (conversation.messages.length) {
    welcome.hidden = true;
    view.renderHistory(conversation.messages);
  }
  follow(conversation, conversation.messages.length);
}

/** Looks for the team's replies: every few seconds while they have the conversation. */
function follow(conversation, shown) {
  shownMessages = shown;
  let every = 0;
  if (session && !liveOpen) every = conversation.status === "waiting_for_agent" ? FOLLOW_WITH_TEAM_MS : FOLLOW_MS;
  if (every === followEvery) return;
  clearInterval(follower);
  follower = every ? setInterval(lookForReplies, every) : null;
  followEvery = every;
}

/** Learns who has the conversation now; draws it as stored when `redraw(conversation)`. */
async function catchUp(redraw) {
  try {
    const conversation = await fetchConversation();
    if (!conversation) return;
    if (redraw(conversation)) view.renderHistory(conversation.messages);
    follow(conversation, conversation.messages.length);
  } catch {
    // Offline for a moment: the next look will do.
  }
}

/** Opens the conversation's live stream: the team's replies show the moment they are sent. */
function goLive() {
  live?.close();
  liveOpen = false;
  if (!session) return;
  const lookNow = () => {
    // While an answer streams, the look after it catches up (and starts polling if needed).
    if (!busy && session) catchUp((conversation) => conversation.messages.length !== shownMessages);
  };
  live = followLive(`/api/conversations/${session.id}/events`, session.token, {
    onReady() {
      liveOpen = true;
      lookNow(); // whatever happened while it was closed; this also stops the polling
    },
    onEvent: lookNow,
    onUnavailable() {
      liveOpen = false;
      lookNow(); // and polls from now on
    },
  });
}

function lookForReplies() {
  if (busy || !session || document.visibilityState === "hidden") return;
  catchUp((conversation) => !busy && conversation.messages.length !== shownMessages);
}

function setBusy(value) {
  busy = value;
  sendButton.disabled = value;
  form.setAttribute("aria-busy", String(value));
}

function setAttachment(file) {
  if (pending) URL.revokeObjectURL(pending.url);
  pending = null;
  attachment.hidden = true;
  fileInput.value = "";
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    view.notice(`"${file.name}" is not an image. Attach a photo (JPEG, PNG, WebP…) of your receipt.`);
    return;
  }
  if (file.size > MAX_UPLOAD) {
    view.notice(`That photo is larger than 10 MB. Take a smaller photo or crop it, then attach it again.`);
    return;
  }
  pending = { file, url: URL.createObjectURL(file) };
  attachmentPreview.src = pending.url;
  attachmentName.textContent = file.name || "Pasted image";
  attachment.hidden = false;
}

async function send() {
  const text = input.value.trim();
  if (busy || (!text && !pending)) return;
  setBusy(true);
  welcome.hidden = true;
  const image = pending;
  input.value = "";
  autosize();
  let shown = false;
  try {
    const { id, token } = await ensureConversation();
    const response = await postMessage(`/api/conversations/${id}/messages`, token, text, image?.file);
    if (!response.ok) {
      input.value = text; // nothing was sent: give the words back to fix and resend
      autosize();
      view.notice(await errorMessage(response));
      return;
    }
    view.addUser(text, image?.url ?? null);
    shown = true;
    if (image) {
      pending = null;
      attachment.hidden = true;
    }
    view.startTurn();
    await showAnswer(response, view);
  } catch (error) {
    if (!shown) {
      input.value = text;
      autosize();
    }
    view.notice(
      shown
        ? "The connection dropped. Your message is saved; the answer will appear when you reload."
        : `Couldn't send your message: ${error.message}. Check your connection and try again.`,
    );
  } finally {
    view.finishTurn();
    setBusy(false);
    input.focus();
  }
  if (shown && session) {
    // The answer may have handed the conversation to a person, or it is with one already:
    // then show it as stored, with whatever they wrote while this answer streamed.
    catchUp((conversation) => conversation.status === "waiting_for_agent");
    offerRatingAfter(text);
  }
}

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
input.addEventListener("input", autosize);
document.getElementById("attach").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => setAttachment(fileInput.files[0] ?? null));
document.getElementById("attachment-remove").addEventListener("click", () => {
  setAttachment(null);
  input.focus();
});
document.getElementById("new-chat").addEventListener("click", () => {
  localStorage.removeItem(STORAGE_KEY);
  session = null;
  goLive();
  follow({ status: "active" }, 0);
  view.clear();
  welcome.hidden = false;
  input.focus();
});
document.addEventListener("paste", (event) => {
  const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (file) {
    event.preventDefault();
    setAttachment(file);
  }
});
let dragDepth = 0;
document.addEventListener("dragenter", (event) => {
  if (![...event.dataTransfer.types].includes("Files")) return;
  dragDepth++;
  dropOverlay.hidden = false;
});
document.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    dropOverlay.hidden = true;
  }
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  dropOverlay.hidden = true;
  const file = event.dataTransfer.files[0];
  if (file) setAttachment(file);
});

loadToolLabels().then(restore).finally(() => {
  document.body.dataset.ready = "true";
  input.focus();
});
