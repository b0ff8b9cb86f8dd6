// Live updates: one server-sent events stream per open page, over fetch so it can carry the
// bearer credential. It reconnects by itself and resumes after the last event it saw
// (Last-Event-ID), on whichever server answers; while it cannot be opened the page polls.

const FIRST_RETRY_MS = 1000;
const LONGEST_RETRY_MS = 15000;
const FAILURES_BEFORE_POLLING = 2;

/**
 * Follows `path` with `credential`. `onReady()` runs each time the stream (re)opens: the page
 * can stop polling and catch up once; `onEvent(name, data)` for each event;
 * `onUnavailable()` when it cannot be opened (the page polls instead; it keeps trying).
 * Returns `{ close() }`.
 */
export function followLive(path, credential, { onReady, onEvent, onUnavailable }) {
  const controller = new AbortController();
  let lastId = null;
  let retryMs = FIRST_RETRY_MS;
  let failures = 0;
  let open = false;

  function lost(permanently) {
    failures++;
    if (open || failures >= FAILURES_BEFORE_POLLING || permanently) onUnavailable();
    open = false;
  }

  async function connect() {
    const headers = { Authorization: `Bearer ${credential}` };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.startsWith("text/event-stream")) {
      // Refused (signed out, deleted) or not served here: polling will tell the page why.
      return [401, 403, 404].includes(response.status) ? "refused" : "failed";
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "ended";
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of frame.split("\n")) {
          const colon = line.indexOf(":");
          if (colon === 0) continue; // a comment: the server keeping the stream alive
          const field = colon === -1 ? line : line.slice(0, colon);
          const text = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") lastId = text;
          else if (field === "event") name = text;
          else if (field === "data") data.push(text);
          else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
        }
        if (!data.length) continue;
        const payload = JSON.parse(data.join("\n"));
        if (name === "ready") {
          failures = 0;
          open = true;
          onReady();
        } else {
          onEvent(name, payload);
        }
      }
    }
  }

  (async () => {
    let wait = FIRST_RETRY_MS;
    while (!controller.signal.aborted) {
      let outcome;
      try {
        outcome = await connect();
      } catch {
        outcome = "failed";
      }
      if (controller.signal.aborted) return;
      if (outcome === "refused") {
        lost(true);
        return;
      }
      if (outcome === "ended" && open) {
        open = false; // the server closed it (a restart): reconnect at once, quietly
        wait = retryMs;
      } else {
        lost(false);
        wait = Math.min(wait * 2, LONGEST_RETRY_MS);
      }
      await new Promise((resolve) => setTimeout(resolve, outcome === "ended" ? retryMs : wait));
    }
  })();

  return {
    close() {
      controller.abort();
    },
  };
}
